"""Benchmarks on full-size replicas of the four sources: build, floor, naive peer, scaling, streaming.

    python benchmarks/run.py                         # full size, every source; writes benchmarks/RESULTS.md
                                                     # (about 10 min, plus about 12 min to write the replicas the first time)
    python benchmarks/run.py --tiny --out /tmp/b     # tiny replicas, seconds (run by the tests)
    python benchmarks/run.py --sources nucls         # one source

Replicas are written by the test generators (`builders/fakes`) with the published counts, image sizes
and encodings (NuCLS 1,744 FOVs / 59,485 nuclei, Aitslab 50 x 1104x1104, NucleusSegData 37 text
matrices, fluocells v1 283 x 1600x1200) and kept in `--out` for the next run. Per source, in one run:

- build: `upload.py build --no-verify` in a child process (the replicas' checksums are not the
  published ones); wall time, images/s, peak RSS (largest process), staged size vs the archives;
- floor: the work no builder can avoid, on the same files: read the archive members, decode the
  annotations with the builder's own functions, encode the 16-bit instance-mask PNGs;
- naive peer: `Dataset.from_generator` yielding decoded numpy images and masks (`Image()` features),
  then `to_parquet`;
- scaling: builds of 1/4, 1/2 and all of the images; `--num-proc 2` against 1 on all;
- reading: `load_dataset(<staged>, streaming=True)` decoding image and mask, against decoding the
  same PNG/JPEG bytes from files on disk; and `split_dataset_by_node` for 2 ranks (halves disjoint
  and complete).

Timings are single runs on a noisy machine: compare the ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow.parquet as pq
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builders import REGISTRY, masks  # noqa: E402
from builders.archives import Tree  # noqa: E402
from builders.fakes import aitslab_bioimaging1 as fake_aitslab  # noqa: E402
from builders.fakes import fluocells as fake_fluocells  # noqa: E402
from builders.fakes import nucleussegdata as fake_nsd  # noqa: E402
from builders.fakes import nucls as fake_nucls  # noqa: E402

FRACTIONS = (0.25, 0.5, 1.0)
TARGETS = {"build/floor": 1.5, "naive/build": 3.0, "nucls peak RSS MB": 1024, "num-proc speed-up": 1.7,
           "streaming/disk": 0.8}


# ---- replicas: (write archives, yield (id, image bytes, labels) as the builder decodes them) ----

def _share(count: int, fraction: float) -> int:
    return max(1, round(count * fraction))


def write_aitslab(out: Path, fraction: float, tiny: bool) -> None:
    counts = {"train": 30, "validation": 10, "test": 10}
    fake_aitslab.write_archives(out, counts={s: _share(n, fraction) for s, n in counts.items()},
                                size=128 if tiny else 1104)


def read_aitslab(out: Path) -> Iterator[tuple[str, bytes, np.ndarray]]:
    from builders.aitslab_bioimaging1 import ARCHIVES, decode_annotation, find_pairs

    for archive in ARCHIVES.values():
        tree = Tree(out / archive.name)
        for stem, image_name, annotation_name in find_pairs(tree, verify=False):
            yield stem, tree.read(image_name), decode_annotation(tree.read(annotation_name), annotation_name)


def write_nsd(out: Path, fraction: float, tiny: bool) -> None:
    counts = {split: per_image[:_share(len(per_image), fraction)] for split, per_image in fake_nsd.ORIGINAL.items()}
    fake_nsd.write_archives(out, configs=("original",), counts={"original": counts},
                            size=(256, 192) if tiny else (1024, 768))


def _size(image_bytes: bytes) -> tuple[int, int]:
    return PILImage.open(io.BytesIO(image_bytes)).size  # the header only


def read_nsd(out: Path):
    from builders.nucleussegdata import ARCHIVES, find_sets, parse_matrix

    tree = Tree(out / ARCHIVES["original"].name)
    for pairs in find_sets(tree, verify=False).values():
        for stem, image_name, annotation_name in pairs:
            image_bytes = tree.read(image_name)
            width, height = _size(image_bytes)
            matrix = parse_matrix(tree.read(annotation_name), annotation_name, (height, width))
            yield stem, image_bytes, masks.relabel_sequential(matrix, annotation_name)


NUCLS_FOVS, NUCLS_NUCLEI = 1744, 59485


def write_nucls(out: Path, fraction: float, tiny: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:  # the fake's FOVs with quirks, which come first
        quirks = fake_nucls.write_archives(scratch)["fovs"].values()
    first_fovs, first_nuclei = len(quirks), sum(len(fov["classes"]) for fov in quirks)
    fovs = _share(12, fraction) if tiny else _share(NUCLS_FOVS, fraction) - first_fovs
    # The other FOVs share the rest of the published total (exactly, at full size).
    nuclei = np.full(fovs, (NUCLS_NUCLEI - first_nuclei) // (NUCLS_FOVS - first_fovs))
    nuclei[: (NUCLS_NUCLEI - first_nuclei) % (NUCLS_FOVS - first_fovs)] += 1
    sizes = np.random.default_rng(1).integers(300, 701, (fovs, 2))  # about 300-700 px per side, as published
    fake_nucls.write_archives(out, extra=[(int(w), int(h), int(k)) for (w, h), k in zip(sizes, nuclei)])


def read_nucls(out: Path):
    from builders.nucls import ARCHIVES, decode_mask, find_fovs, match_nuclei, read_nuclei

    tree = Tree(out / ARCHIVES["all"].name)
    for fov, members in sorted(find_fovs(tree, verify=False)[1].items()):
        image_bytes = tree.read(members["rgb"])
        width, height = _size(image_bytes)
        ids, _ = decode_mask(tree.read(members["mask"]), members["mask"], (height, width))
        nuclei = read_nuclei(tree.read(members["csv"]), members["csv"])
        yield fov, image_bytes, match_nuclei(ids, nuclei, members["mask"])


def write_fluocells(out: Path, fraction: float, tiny: bool) -> None:
    train, test = fake_fluocells.PUBLISHED["v1"]
    if tiny:
        fake_fluocells.write_v1(out, _share(6, fraction), _share(4, fraction))
    else:
        fake_fluocells.write_v1(out, _share(train, fraction), _share(test, fraction), size=(1600, 1200), slot=200,
                                grain=2)  # about 20 cells and 1.4 MB per image, as published


def read_fluocells(out: Path):
    from builders.fluocells import ARCHIVES, components, find_v1, read_binary_mask

    tree = Tree(out / ARCHIVES["v1"].name)
    for items in find_v1(tree, verify=False).values():
        for stem, image_name, mask_name in items:
            image_bytes = tree.read(image_name)
            binary = read_binary_mask(tree.read(mask_name), mask_name, _size(image_bytes))
            yield stem, image_bytes, components(binary, mask_name)


@dataclass(frozen=True)
class Replica:
    write: Callable[[Path, float, bool], None]
    read: Callable[[Path], Iterator[tuple[str, bytes, np.ndarray]]]
    config: str  # the config built and read
    split: str  # the split streamed
    published: str  # what the full-size replica reproduces


REPLICAS = {
    "aitslab-bioimaging1": Replica(write_aitslab, read_aitslab, "default", "train", "50 images, 1104x1104 grey PNG"),
    "nucleussegdata": Replica(write_nsd, read_nsd, "original", "test_hepg2", "37 JPEG 1024x768 + text matrices"),
    "nucls": Replica(write_nucls, read_nucls, "all", "train", "1,744 FOVs 300-700 px RGB PNG, 59,485 nuclei"),
    "fluocells": Replica(write_fluocells, read_fluocells, "v1", "train", "283 RGB PNG 1600x1200 + binary masks"),
}


# ---- measurements ----

def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += parents.get(found[-1], [])
    return found


def _high_water_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def timed_child(command: list[str], cwd: Path) -> dict:
    """Run a command; wall seconds and the peak RSS (MB) of its largest process.

    The peak is each process's own high-water mark (`VmHWM`, which starts afresh at exec), read every
    50 ms; `getrusage` would report this process's size instead, which a child inherits across exec.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()))
    reader.start()
    peak = 0.0
    while process.poll() is None:
        peak = max([peak] + [_high_water_mb(pid) for pid in _tree(process.pid)])
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    reader.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[0].decode(errors='replace')[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak}


def replica(name: str, work: Path, fraction: float, tiny: bool) -> Path:
    """The replica's folder, written on first use (kept for the next run)."""
    folder = work / "replicas" / f"{name}-{'tiny' if tiny else 'full'}-{fraction:g}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        start = time.perf_counter()
        REPLICAS[name].write(folder, fraction, tiny)
        (folder / ".complete").write_text(f"{time.perf_counter() - start:.1f}\n")
    return folder


def build(name: str, data: Path, out: Path, num_proc: int = 1) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, str(ROOT / "upload.py"), "build", name, "--data-dir", str(data), "--out", str(out),
               "--no-verify", "--num-proc", str(num_proc)]
    if REGISTRY[name].PARTS_CONFIG is None:
        command += ["--config", REPLICAS[name].config]
    result = timed_child(command, ROOT)
    staged = out / REGISTRY[name].REPO_NAME
    result["staged_mb"] = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file()) / 1e6
    result["rows"] = sum(pq.ParquetFile(p).metadata.num_rows for p in staged.rglob("*.parquet"))  # each image once
    return result


def start_up() -> float:
    """Seconds to start the interpreter and import what a build imports (part of every build's wall time)."""
    return timed_child([sys.executable, "-c", "import upload, builders.staging, datasets"], ROOT)["seconds"]


def floor(name: str, data: Path) -> dict:
    """Read every member, decode the annotations, encode the 16-bit masks: the unavoidable work."""
    start = time.perf_counter()
    count = 0
    for _, _, labels in REPLICAS[name].read(data):
        masks.png16(labels)
        count += 1
    return {"seconds": time.perf_counter() - start, "images": count}


def naive(name: str, data: Path, work: Path) -> dict:
    """What a user would write: decoded numpy images and masks through `from_generator`, then `to_parquet`."""
    import datasets

    features = datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                                  "mask": datasets.Image()})

    def generate(data):
        for image_id, image_bytes, labels in REPLICAS[name].read(data):
            yield {"image_id": image_id, "image": np.asarray(PILImage.open(io.BytesIO(image_bytes))), "mask": labels}

    cache = Path(tempfile.mkdtemp(dir=work, prefix="naive-cache-"))
    target = work / f"naive-{name}.parquet"
    try:
        start = time.perf_counter()
        dataset = datasets.Dataset.from_generator(generate, features=features, cache_dir=str(cache),
                                                  gen_kwargs={"data": data})
        dataset.to_parquet(str(target))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "output_mb": target.stat().st_size / 1e6}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        target.unlink(missing_ok=True)


def _decode_rows(rows) -> tuple[list, float]:
    """Decode image and mask of every row (PIL images, or paths to open) to numpy; the ids seen and the seconds."""
    start, ids = time.perf_counter(), []
    for row in rows:
        for column in ("image", "instance_mask"):
            value = row[column]
            np.asarray(PILImage.open(value) if isinstance(value, Path) else value)
        ids.append(row.get("image_id"))
    return ids, time.perf_counter() - start


def reading(name: str, staged: Path, work: Path) -> dict:
    """Streaming samples/s (image + mask decoded) vs the same bytes decoded from files; 2-rank split."""
    import datasets
    from datasets.distributed import split_dataset_by_node

    replica_ = REPLICAS[name]

    def stream(**options):
        return datasets.load_dataset(str(staged), replica_.config, split=replica_.split, streaming=True, **options)

    ids, stream_seconds = _decode_rows(stream())
    _, columns_seconds = _decode_rows(stream(columns=["image", "instance_mask"]))
    files = Path(tempfile.mkdtemp(dir=work, prefix="files-"))
    try:  # the same image and mask bytes as files, decoded the usual way
        paths = []
        for row in stream(columns=["image_id", "image", "instance_mask"]).decode(False):
            image = files / f"{row['image_id']}-{row['image']['path']}"
            mask = files / f"{row['image_id']}-mask.png"
            image.write_bytes(row["image"]["bytes"])
            mask.write_bytes(row["instance_mask"]["bytes"])
            paths.append({"image": image, "instance_mask": mask})
        _, disk_seconds = _decode_rows(paths)
    finally:
        shutil.rmtree(files, ignore_errors=True)
    resharded = stream().reshard()  # one shard per row group, as in the README's training example
    ranks = [_decode_rows(split_dataset_by_node(resharded, rank=rank, world_size=2)) for rank in range(2)]
    n = len(ids)
    return {
        "rows": n, "shards": stream().num_shards, "row_group_shards": resharded.num_shards,
        "stream_per_s": n / stream_seconds, "stream_columns_per_s": n / columns_seconds, "disk_per_s": n / disk_seconds,
        "rank_rows": [len(r) for r, _ in ranks], "rank_per_s": [len(r) / s for r, s in ranks],
        "ranks_disjoint": not set(ranks[0][0]) & set(ranks[1][0]),
        "ranks_complete": sorted(ranks[0][0] + ranks[1][0]) == sorted(ids),
    }


def archive_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.zip")) / 1e6


def run_source(name: str, work: Path, tiny: bool, log) -> dict:
    full = replica(name, work, 1.0, tiny)
    log(f"{name}: replica in {full}")
    result = {"published": REPLICAS[name].published, "archive_mb": archive_mb(full), "start_up_s": start_up()}
    out = work / "hub"
    result["build"] = build(name, full, out)
    staged = out / REGISTRY[name].REPO_NAME
    result["floor"] = floor(name, full)
    images = result["images"] = result["build"]["rows"]
    result["build"]["images_per_s"] = images / result["build"]["seconds"]
    log(f"{name}: build {result['build']['seconds']:.1f} s, floor {result['floor']['seconds']:.1f} s")
    result["naive"] = naive(name, full, work)
    log(f"{name}: naive {result['naive']['seconds']:.1f} s")
    result["reading"] = reading(name, staged, work)
    log(f"{name}: reading {result['reading']['stream_per_s']:.1f}/s vs disk {result['reading']['disk_per_s']:.1f}/s")
    result["num_proc_2"] = build(name, full, work / "hub-np2", num_proc=2)
    shutil.rmtree(work / "hub-np2", ignore_errors=True)
    result["scaling"] = []
    for fraction in FRACTIONS:
        data = full if fraction == 1.0 else replica(name, work, fraction, tiny)
        measured = result["build"] if fraction == 1.0 else build(name, data, work / "hub-scale")
        result["scaling"].append({"images": measured["rows"], "seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_mb"]})
    shutil.rmtree(work / "hub-scale", ignore_errors=True)
    log(f"{name}: done")
    return result


# ---- report ----

def machine() -> dict:
    import datasets
    import PIL
    import pyarrow

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "os": platform.platform(),
            "python": platform.python_version(), "datasets": datasets.__version__, "pyarrow": pyarrow.__version__,
            "pillow": PIL.__version__, "numpy": np.__version__, "date": time.strftime("%Y-%m-%d")}


def targets(results: dict) -> list[tuple[str, str, str, bool]]:
    """(target, source, figure, met) for every target of the performance issue."""
    rows = []
    for name, r in results.items():
        build_s = r["build"]["seconds"]
        ratio = (build_s - r["start_up_s"]) / r["floor"]["seconds"]
        rows.append((f"build (without the {r['start_up_s']:.1f} s start-up) within {TARGETS['build/floor']}x the floor",
                     name, f"{ratio:.2f}x", ratio <= TARGETS["build/floor"]))
        speed = r["naive"]["seconds"] / build_s
        smaller = r["build"]["staged_mb"] <= r["naive"]["output_mb"]
        rows.append((f"at least {TARGETS['naive/build']:g}x faster than the naive peer, output no larger", name,
                     f"{speed:.2f}x, {r['build']['staged_mb']:.1f} vs {r['naive']['output_mb']:.1f} MB",
                     speed >= TARGETS["naive/build"] and smaller))
        up = build_s / r["num_proc_2"]["seconds"]
        rows.append((f"--num-proc 2 at least {TARGETS['num-proc speed-up']}x faster than 1", name, f"{up:.2f}x",
                     up >= TARGETS["num-proc speed-up"]))
        stream = r["reading"]["stream_columns_per_s"] / r["reading"]["disk_per_s"]
        rows.append((f"streaming image and mask at least {TARGETS['streaming/disk']}x the speed of decoding the files",
                     name, f"{stream:.2f}x", stream >= TARGETS["streaming/disk"]))
    if "nucls" in results:
        peaks = [s["peak_rss_mb"] for s in results["nucls"]["scaling"]]
        rows.append(("NuCLS build peak RSS under 1 GiB, flat as images grow", "nucls",
                     " / ".join(f"{p:.0f}" for p in peaks) + " MB", max(peaks) < TARGETS["nucls peak RSS MB"]))
    return rows


def report(results: dict, info: dict, tiny: bool) -> str:
    lines = ["# Benchmark results", "",
             f"`python benchmarks/run.py{' --tiny' if tiny else ''}` on {info['date']}: one run per source; "
             "timings are single measurements on a noisy machine, ratios come from the same run.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items() if key != "date"]
    lines += ["", "## Targets", "", "| target | source | figure | met |", "|---|---|---|---|"]
    lines += [f"| {t} | {s} | {f} | {'yes' if ok else '**no**'} |" for t, s, f, ok in targets(results)]
    lines += ["", "## Build, floor and naive peer", "",
              "Build: `upload.py build` in a child process, wall time including the interpreter start-up and imports "
              "(timed alone in the `start-up s` column); the ratio to the floor leaves the start-up out.", "",
              "| source | replica | images | archives MB | build s | start-up s | images/s | peak RSS MB | staged MB "
              "| floor s | (build - start-up) / floor | naive s | naive / build | naive MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = r["build"]
        lines.append(f"| {name} | {r['published']} | {r['images']} | {r['archive_mb']:.1f} | {b['seconds']:.1f} "
                     f"| {r['start_up_s']:.1f} | {b['images_per_s']:.1f} | {b['peak_rss_mb']:.0f} | {b['staged_mb']:.1f} "
                     f"| {r['floor']['seconds']:.1f} | {(b['seconds'] - r['start_up_s']) / r['floor']['seconds']:.2f} "
                     f"| {r['naive']['seconds']:.1f} "
                     f"| {r['naive']['seconds'] / b['seconds']:.2f} | {r['naive']['output_mb']:.1f} |")
    lines += ["", "## Scaling", "", "| source | images | build s | s / image | peak RSS MB |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines += [f"| {name} | {s['images']} | {s['seconds']:.1f} | {s['seconds'] / s['images']:.3f} | {s['peak_rss_mb']:.0f} |"
                  for s in r["scaling"]]
    lines += ["", "| source | --num-proc 1 s | --num-proc 2 s | speed-up | peak RSS MB (largest process) |",
              "|---|---|---|---|---|"]
    for name, r in results.items():
        one, two = r["build"], r["num_proc_2"]
        lines.append(f"| {name} | {one['seconds']:.1f} | {two['seconds']:.1f} | {one['seconds'] / two['seconds']:.2f} "
                     f"| {two['peak_rss_mb']:.0f} |")
    lines += ["", "## Reading", "",
              "`load_dataset(<staged>, config, split=..., streaming=True)`, decoding image and mask of every row: with "
              "all columns (every image column is decoded, the preview too), and with `columns=[\"image\", "
              "\"instance_mask\"]` as the README's training example does; disk decodes the same bytes from files "
              "with PIL. Ranks (all columns): "
              "`split_dataset_by_node(ds.reshard(), rank, 2)`, each rank timed alone.", "",
              "| source | split rows | files / row groups | streaming, all columns /s | streaming image + mask /s | files on disk /s "
              "| image + mask / disk "
              "| rank 0 / rank 1 rows | rank /s | disjoint | complete |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        g = r["reading"]
        lines.append(f"| {name} | {g['rows']} | {g['shards']} / {g['row_group_shards']} | {g['stream_per_s']:.1f} | {g['stream_columns_per_s']:.1f} "
                     f"| {g['disk_per_s']:.1f} | {g['stream_columns_per_s'] / g['disk_per_s']:.2f} "
                     f"| {' / '.join(map(str, g['rank_rows']))} | {' / '.join(f'{v:.1f}' for v in g['rank_per_s'])} "
                     f"| {g['ranks_disjoint']} | {g['ranks_complete']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny replicas (seconds), for the tests")
    parser.add_argument("--sources", nargs="+", choices=list(REPLICAS), default=list(REPLICAS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "scratch"), help="replicas and builds (kept)")
    parser.add_argument("--results", default=None, help="markdown report (default benchmarks/RESULTS.md, "
                                                        "or <out>/RESULTS.md with --tiny)")
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()
    logging.getLogger("builders").setLevel(logging.ERROR)  # replicas differ from the official counts on purpose
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.sources:
        results[name] = run_source(name, work, args.tiny, lambda message: print(message, file=sys.stderr, flush=True))
    info = machine()
    target = Path(args.results) if args.results else (work if args.tiny else ROOT / "benchmarks") / "RESULTS.md"
    target.write_text(report(results, info, args.tiny))
    target.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=1) + "\n")
    print(f"wrote {target}")
    return 0 if all(r["reading"]["ranks_disjoint"] and r["reading"]["ranks_complete"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
