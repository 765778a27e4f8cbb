"""Benchmarks on the real data where it exists, full-size replicas elsewhere: build, floor, naive peer, scaling, streaming.

    python benchmarks/run.py                         # full size, every source; writes benchmarks/RESULTS.md
                                                     # (about 16 min, plus about 13 min to write the data the first time)
    python benchmarks/run.py --tiny --out /tmp/b     # a few real files and tiny replicas, seconds (run by the tests)
    python benchmarks/run.py --sources nucls         # one source

What each source is built from (written into `--out`, kept for the next run):

- Aitslab-bioimaging1: the 50 real pre-publication images and annotations of the samples folder, split by
  the kreshuklab lists and zipped as on Zenodo (`training_nuclei.zip` ..., deflated);
- NucleusSegData: the 37 real pairs of the original release in the lab's `NucleusSegData/` layout, zipped;
- NuCLS: a replica made by `builders.fakes.nucls.write_from_qc` from the real QC database and fold files:
  the real FOV names, sizes and nuclei (boxes, types, classes), synthetic H&E-like pixels;
- fluocells v1: a replica (only 8 real images exist), 283 x 1600x1200 with the published counts.
- any other registered source (one without an entry in `SOURCES`, such as the tests' own): its fakes module's
  archives (demo options; `--tiny`: small options), and a floor read by the builder's own split and example
  generators (`builder_reader`; no scaling, the fakes have one size).

The samples folder is `$MICROSCOPY_SAMPLES`, else `../shared/samples` beside the project folder; without
it the first three fall back to replicas written by the test generators (`builders/fakes`: Aitslab
50 x 1104x1104, NucleusSegData 37 text matrices, NuCLS 1,744 FOVs / 59,485 nuclei), as the report says.
`--tiny` takes a few real files (3 to 5 per source) and tiny replicas. Per source, in one run:

- build: `upload.py build --no-verify` in a child process (the zips written here are not the published
  files, so their checksums differ); wall time, images/s, peak RSS (largest process), staged size vs the archives;
- floor: the work no builder can avoid, on the same files, with the builders' own functions: find the
  members, read them, decode the annotations (the image's size from `masks.decode_image`, as the builders
  take it) and encode the 16-bit instance-mask PNGs; decoding the images is timed apart (`image decode s`);
- naive peer: `Dataset.from_generator` yielding decoded numpy images and masks (`Image()` features),
  then `to_parquet`;
- scaling: builds of about 1/4, 1/2 and all of the images; `--num-proc 2` against 1 on all;
- reading: `load_dataset(<staged>, streaming=True)` decoding image and mask, against decoding the
  same PNG/JPEG bytes from files on disk; and `split_dataset_by_node` for 2 ranks (halves disjoint
  and complete);
- training: the README's "Train with PyTorch" DataLoader, run as written on the staged repo (batches of 4,
  the augmentation on) with 0 and 2 workers: seconds to the first batch and samples/s over the split,
  against reading's files on disk.

Timings are single runs on a noisy machine: compare the ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np
import pyarrow.parquet as pq
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builders import REGISTRY, masks  # noqa: E402
from builders.archives import Tree  # noqa: E402
from builders.errors import verification  # noqa: E402
from builders.fakes import aitslab_bioimaging1 as fake_aitslab  # noqa: E402
from builders.fakes import fluocells as fake_fluocells  # noqa: E402
from builders.fakes import nucleussegdata as fake_nsd  # noqa: E402
from builders.fakes import nucls as fake_nucls  # noqa: E402
from builders.fakes import real_samples, write_fakes  # noqa: E402

FRACTIONS = (0.25, 0.5, 1.0)
TARGETS = {"build/floor": 1.5, "naive/build": 3.0, "nucls peak RSS MB": 1024, "num-proc speed-up": 1.7,
           "streaming/disk": 0.8}
NUCLS_QC = "nucls/qc_core_2020-04-05/v4_2020-04-05_FINAL_CORE.sqlite"
NUCLS_FOLDS = "nucls/train_test_splits"


# ---- the data: write(out, fraction, tiny, samples) writes the archives; read(out) yields, per image as the
# ---- builder meets it, (id, image member, image bytes, labels_of) where labels_of(decoded image) -> labels

def _share(count: int, fraction: float) -> int:
    return max(1, round(count * fraction))


def read_aitslab(out: Path):
    from builders.aitslab_bioimaging1 import ARCHIVES, decode_annotation, find_pairs

    for archive in ARCHIVES.values():
        tree = Tree(out / archive.name)
        with verification(False):  # replicas and subsets are not the official data
            pairs = find_pairs(tree)
        for stem, image_name, annotation_name in pairs:
            yield stem, tree.where(image_name), tree.read(image_name), \
                lambda image, tree=tree, name=annotation_name: decode_annotation(tree.read(name), tree.where(name))


AITSLAB_TINY = {"train": 3, "validation": 1, "test": 1}  # real images; each zip needs one


def write_aitslab_real(out: Path, fraction: float, tiny: bool, samples: Path) -> None:
    stems = real_samples.aitslab_stems(samples)
    chosen = {split: names[:_share(AITSLAB_TINY[split] if tiny else len(names), fraction)] for split, names in stems.items()}
    real_samples.write_aitslab(samples, out, chosen, zipped=True)


def write_aitslab_replica(out: Path, fraction: float, tiny: bool, samples: Path | None = None) -> None:
    counts = {"train": 30, "validation": 10, "test": 10}
    fake_aitslab.write_archives(out, counts={s: _share(n, fraction) for s, n in counts.items()},
                                size=128 if tiny else 1104)


def read_nsd(out: Path):
    from builders.nucleussegdata import ARCHIVES, find_sets, parse_matrix

    tree = Tree(out / ARCHIVES["original"].name)

    def labels_of(image, name):
        where = tree.where(name)
        return masks.relabel_sequential(parse_matrix(tree.read(name), where, (image.height, image.width)), where)

    with verification(False):
        sets = find_sets(tree)
    for pairs in sets.values():
        for stem, image_name, annotation_name in pairs:
            yield stem, tree.where(image_name), tree.read(image_name), \
                lambda image, name=annotation_name: labels_of(image, name)


NSD_TINY = {"TrainingSet": 1, "HepG2TestSet": 3, "Huh7TestSet": 1}  # real pairs; HepG2 is the split streamed


def write_nsd_real(out: Path, fraction: float, tiny: bool, samples: Path) -> None:
    counts = {folder: _share(NSD_TINY[folder] if tiny else len(numbers), fraction)
              for folder, (_, _, numbers) in real_samples.NSD_ORIGINAL.items()}
    real_samples.write_nsd(samples, out, counts, zipped=True)


def write_nsd_replica(out: Path, fraction: float, tiny: bool, samples: Path | None = None) -> None:
    counts = {split: per_image[:_share(len(per_image), fraction)] for split, per_image in fake_nsd.ORIGINAL.items()}
    fake_nsd.write_archives(out, configs=("original",), counts={"original": counts},
                            size=(256, 192) if tiny else (1024, 768))


def read_nucls(out: Path):
    from builders.nucls import ARCHIVES, decode_mask, find_fovs, match_nuclei, read_nuclei

    tree = Tree(out / ARCHIVES["all"].name)

    def labels_of(image, members):
        ids, _ = decode_mask(tree.read(members["mask"]), tree.where(members["mask"]), (image.height, image.width))
        nuclei = read_nuclei(tree.read(members["csv"]), tree.where(members["csv"]))
        return match_nuclei(ids, nuclei, tree.where(members["mask"]))

    with verification(False):
        fovs = find_fovs(tree)[1]
    for fov, members in sorted(fovs.items()):
        yield fov, tree.where(members["rgb"]), tree.read(members["rgb"]), \
            lambda image, members=members: labels_of(image, members)


NUCLS_TINY_PER_SLIDE = 4  # FOVs of each of the 5 tiny slides (one per test fold)


def _qc_slides(sqlite_path: Path) -> dict[str, int]:
    """Slide -> number of FOVs (distinct names) in the QC database."""
    per_slide = {}
    for fov in fake_nucls.qc_fovs(sqlite_path):
        per_slide[fov["slide"]] = per_slide.get(fov["slide"], 0) + 1
    return per_slide


def _qc_subset(sqlite_path: Path, target: Path, slides: list[str]) -> Path:
    """A copy of the QC database's two tables cut to the FOVs of `slides` (the tiny run)."""
    con = sqlite3.connect(target.resolve().as_uri(), uri=True)  # uri: ATTACH then reads the URI below
    try:
        con.execute("ATTACH DATABASE ? AS qc", (f"{sqlite_path.resolve().as_uri()}?mode=ro",))
        marks = ",".join("?" * len(slides))
        con.execute(f"CREATE TABLE fov_meta AS SELECT * FROM qc.fov_meta WHERE slide_name IN ({marks})", slides)
        con.execute("CREATE TABLE annotation_elements AS SELECT * FROM qc.annotation_elements "
                    "WHERE fov_id IN (SELECT fov_id FROM fov_meta)")
        con.commit()
    finally:
        con.close()
    return target


def _tiny_slides(sqlite_path: Path, folds: Path) -> list[str]:
    """One slide per test fold (so that every fold keeps a train and a test FOV), the first by name with
    at least `NUCLS_TINY_PER_SLIDE` FOVs."""
    per_slide = _qc_slides(sqlite_path)
    chosen = []
    for fold in range(1, 6):
        test = sorted(fake_nucls.fold_members((folds / f"fold_{fold}_test.csv").read_bytes()))
        chosen.append(next(s for s in test if per_slide.get(s, 0) >= NUCLS_TINY_PER_SLIDE))
    return chosen


def write_nucls_qc(out: Path, fraction: float, tiny: bool, samples: Path) -> None:
    """Every FOV of the QC database (tiny: 4 FOVs of 5 slides); a fraction keeps the first `per_slide` FOVs of
    every slide, the smallest number that keeps at least that fraction of them (every slide stays, so every fold)."""
    sqlite_path, folds = samples / NUCLS_QC, samples / NUCLS_FOLDS
    with tempfile.TemporaryDirectory() as scratch:
        if tiny:
            sqlite_path = _qc_subset(sqlite_path, Path(scratch) / "tiny.sqlite", _tiny_slides(sqlite_path, folds))
            per_slide = max(1, round(NUCLS_TINY_PER_SLIDE * fraction))
        elif fraction == 1.0:
            per_slide = None
        else:
            counts = list(_qc_slides(sqlite_path).values())
            per_slide = next(k for k in range(1, max(counts) + 1)
                             if sum(min(n, k) for n in counts) >= fraction * sum(counts))
        fake_nucls.write_from_qc(out, sqlite_path, folds, per_slide=per_slide, realistic=True)


NUCLS_FOVS, NUCLS_NUCLEI = 1744, 59485


def write_nucls_replica(out: Path, fraction: float, tiny: bool, samples: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as scratch:  # the fake's FOVs with quirks, which come first
        quirks = fake_nucls.write_archives(scratch)["fovs"].values()
    first_fovs, first_nuclei = len(quirks), sum(len(fov["classes"]) for fov in quirks)
    fovs = _share(12, fraction) if tiny else _share(NUCLS_FOVS, fraction) - first_fovs
    # The other FOVs share the rest of the published total (exactly, at full size).
    nuclei = np.full(fovs, (NUCLS_NUCLEI - first_nuclei) // (NUCLS_FOVS - first_fovs))
    nuclei[: (NUCLS_NUCLEI - first_nuclei) % (NUCLS_FOVS - first_fovs)] += 1
    sizes = np.random.default_rng(1).integers(300, 701, (fovs, 2))  # about 300-700 px per side, as published
    fake_nucls.write_archives(out, extra=[(int(w), int(h), int(k)) for (w, h), k in zip(sizes, nuclei)])


def read_fluocells(out: Path):
    from builders.fluocells import ARCHIVES, components, find_v1, read_binary_mask

    tree = Tree(out / ARCHIVES["v1"].name)

    def labels_of(image, name):
        return components(read_binary_mask(tree.read(name), tree.where(name), image.size), tree.where(name))

    with verification(False):
        found = find_v1(tree)
    for items in found.values():
        for stem, image_name, mask_name in items:
            yield stem, tree.where(image_name), tree.read(image_name), lambda image, name=mask_name: labels_of(image, name)


def write_fluocells_replica(out: Path, fraction: float, tiny: bool, samples: Path | None = None) -> None:
    train, test = fake_fluocells.PUBLISHED["v1"]
    if tiny:
        fake_fluocells.write_v1(out, _share(6, fraction), _share(4, fraction))
    else:
        fake_fluocells.write_v1(out, _share(train, fraction), _share(test, fraction), size=(1600, 1200), slot=200,
                                grain=2)  # about 20 cells and 1.4 MB per image, as published


@dataclass(frozen=True)
class Data:
    """One way of making a source's archives: `kind` names it in the report and in the scratch folder."""
    kind: str  # "real": the real files; "qc": a replica from real metadata; "replica": synthetic; "fake": its fakes
    write: Callable[[Path, float, bool, Path | None], None]
    made_of: str  # what the full-size data is, for the report
    tiny: str  # what the --tiny data is
    needs: tuple[str, ...] = ()  # sample paths it reads (relative to the samples folder)
    scales: bool = True  # whether `write` honours the fraction (else scaling builds only the whole)


@dataclass(frozen=True)
class Source:
    read: Callable[[Path], Iterator[tuple[str, str, bytes, Callable]]]
    config: str  # the config built and read
    split: str | None  # the split streamed (None: the config's first)
    data: tuple[Data, ...]  # the first whose samples are present is used; the last needs none

    def choose(self, samples: Path | None) -> Data:
        return next(d for d in self.data
                    if not d.needs or (samples is not None and all((samples / p).exists() for p in d.needs)))


SOURCES = {
    "aitslab-bioimaging1": Source(read_aitslab, "default", "train", (
        Data("real", write_aitslab_real,
             "the 50 real pre-publication images (1104x1104 grey PNG) and annotations (RGB colour-coded PNG), split "
             "30 / 10 / 10 by the kreshuklab lists and zipped as on Zenodo (three deflated zips)",
             "3 / 1 / 1 real images and annotations, zipped as on Zenodo",
             ("aitslab_bioimaging1/images_normalized_prepublication", "aitslab_bioimaging1/annotations_prepublication",
              "aitslab_bioimaging1/splits_kreshuklab_model_ranking")),
        Data("replica", write_aitslab_replica,
             "replica (real samples absent): 50 synthetic 1104x1104 grey PNG with colour-coded masks, 30 / 10 / 10",
             "replica (real samples absent): 50 synthetic 128x128 images"),
    )),
    "nucleussegdata": Source(read_nsd, "original", "test_hepg2", (
        Data("real", write_nsd_real,
             "the 37 real pairs of the original release (1024x768 JPEG + text matrices, 2,661 nuclei) in the lab's "
             "NucleusSegData/{TrainingSet,HepG2TestSet,Huh7TestSet}/ layout, one deflated zip",
             "1 / 3 / 1 real pairs in the lab's layout, zipped",
             ("nucleussegdata/dataset/images", "nucleussegdata/dataset/annotations")),
        Data("replica", write_nsd_replica,
             "replica (real samples absent): 37 synthetic 1024x768 JPEG + text matrices with the published counts",
             "replica (real samples absent): 37 synthetic 256x192 JPEG + text matrices"),
    )),
    "nucls": Source(read_nucls, "all", "train", (
        Data("qc", write_nucls_qc,
             "replica from the real QC database (`write_from_qc`): the 1,744 real FOV names and sizes (median "
             "355x354 px, 257 to 876 px a side) with their 59,485 nuclei (boxes, annotation types, raw classes) and "
             "the authors' fold files, with synthetic H&E-like pixels (noise in 2-px squares); no real NuCLS pixels "
             "are available",
             "replica from the real QC database: 4 FOVs of each of 5 slides (one per test fold), real sizes and nuclei",
             (NUCLS_QC, NUCLS_FOLDS)),
        Data("replica", write_nucls_replica,
             "replica (real samples absent): 1,744 synthetic FOVs of 300-700 px, 59,485 nuclei",
             "replica (real samples absent): 24 synthetic FOVs, 12 of them with the quirks"),
    )),
    "fluocells": Source(read_fluocells, "v1", "train", (
        Data("replica", write_fluocells_replica,
             "replica: 283 synthetic RGB PNG 1600x1200 (noise in 2-px squares, about 1.4 MB each) + binary masks, "
             "213 / 70 as published; only 8 real images exist, too few to measure",
             "replica: 10 synthetic 64x48 images"),
    )),
}


def builder_reader(name: str) -> Callable[[Path], Iterator[tuple[str, str, bytes, Callable]]]:
    """The floor's reader for a source without one of its own: the builder's own split and example generators,
    with `row` keeping the decoded label image instead of assembling a row (no outlines, previews or masks).
    Unlike the readers above, it decodes the labels before the floor asks for them, and whatever the builder
    does before `row` (for NuCLS: the outline check) is counted in the floor."""
    def read(out: Path):
        cls = REGISTRY[name]
        with tempfile.TemporaryDirectory() as cache, verification(False):
            builder = cls(config_name=cls.config_names()[0], data_dir=str(out), cache_dir=cache)
            builder.row = lambda image_id, image_bytes, image_name, image, labels, **_: (image_name, image_bytes, labels)
            for generator in builder._split_generators(SimpleNamespace(manual_dir=str(out))):
                for image_id, (image_name, image_bytes, labels) in builder._generate_examples(**generator.gen_kwargs):
                    yield image_id, image_name, image_bytes, lambda image, labels=labels: labels
    return read


def source_of(name: str) -> Source:
    """The benchmark of a registered source: its entry above, else its fakes module's archives (demo options;
    small ones with --tiny) read by the builder itself."""
    if name in SOURCES:
        return SOURCES[name]

    def write(out: Path, fraction: float, tiny: bool, samples: Path | None = None) -> None:
        write_fakes(REGISTRY[name], out, "small" if tiny else "demo")
    return Source(builder_reader(name), REGISTRY[name].config_names()[0], None, (
        Data("fake", write, "its fakes module's archives (demo options): no full-size data is written for it",
             "its fakes module's archives (small options)", scales=False),))


def first_split(staged: Path, config: str) -> str:
    from huggingface_hub import DatasetCard

    configs = DatasetCard.load(staged / "README.md").data.to_dict()["configs"]
    return next(c for c in configs if c["config_name"] == config)["data_files"][0]["split"]


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


def archives(name: str, data: Data, work: Path, fraction: float, tiny: bool, samples: Path | None) -> Path:
    """The folder of the archives the source is built from, written on first use (kept for the next run)."""
    folder = work / "data" / f"{name}-{data.kind}-{'tiny' if tiny else 'full'}-{fraction:g}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        start = time.perf_counter()
        data.write(folder, fraction, tiny, samples)
        (folder / ".complete").write_text(f"{time.perf_counter() - start:.1f}\n")
    return folder


def build(name: str, data: Path, out: Path, num_proc: int = 1) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, str(ROOT / "upload.py"), "build", name, "--data-dir", str(data), "--out", str(out),
               "--no-verify", "--num-proc", str(num_proc)]
    if REGISTRY[name].PARTS_CONFIG is None:
        command += ["--config", source_of(name).config]
    result = timed_child(command, ROOT)
    staged = out / REGISTRY[name].REPO_NAME
    result["staged_mb"] = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file()) / 1e6
    result["rows"] = sum(pq.ParquetFile(p).metadata.num_rows for p in staged.rglob("*.parquet"))  # each image once
    return result


def start_up() -> float:
    """Seconds to start the interpreter and import what a build imports (part of every build's wall time)."""
    return timed_child([sys.executable, "-c", "import upload, builders.staging, datasets"], ROOT)["seconds"]


def floor(name: str, data: Path) -> dict:
    """Find and read every member, decode the annotations, encode the 16-bit masks: the unavoidable work, done
    by the builders' own functions. The images are decoded by `masks.decode_image`, as the builders do (their
    size shapes the annotation), but timed apart: that decoding is not in the floor."""
    start, decoding, count = time.perf_counter(), 0.0, 0
    for _, image_name, image_bytes, labels_of in source_of(name).read(data):
        started = time.perf_counter()
        image = masks.decode_image(image_bytes, image_name)
        decoding += time.perf_counter() - started
        masks.png16(labels_of(image))
        count += 1
    return {"seconds": time.perf_counter() - start - decoding, "image_decode_s": decoding, "images": count}


def naive(name: str, data: Path, work: Path) -> dict:
    """What a user would write: decoded numpy images and masks through `from_generator`, then `to_parquet`."""
    import datasets

    features = datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                                  "mask": datasets.Image()})

    def generate(data):
        for image_id, _, image_bytes, labels_of in source_of(name).read(data):
            image = PILImage.open(io.BytesIO(image_bytes))
            yield {"image_id": image_id, "image": np.asarray(image), "mask": labels_of(image)}

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

    source = source_of(name)
    split = source.split or first_split(staged, source.config)

    def stream(**options):
        return datasets.load_dataset(str(staged), source.config, split=split, streaming=True, **options)

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


README = ROOT / "README.md"
TRAIN_HEADING = "Train with PyTorch"
TARGET_LINE = re.compile(r'^REPO, CONFIG, SPLIT = "[^"]+", "[^"]+", "[^"]+"$', re.M)
LABEL_LINE = re.compile(r"^LABEL = .*$", re.M)
WORKERS_LINE = re.compile(r"\bnum_workers=2\b")
WORKERS = (0, 2)


def python_blocks(markdown: str, heading: str) -> list[str]:
    """The ```python blocks of the `## heading` section, as tests/test_recipes.py extracts them."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def loader_code(name: str, staged: Path, workers: int) -> str:
    """The README's DataLoader code with only the repo (the staged folder), config, split, the source's `LABEL`
    (from its own card: the README's is NuCLS's) and, for 0 workers, `num_workers` substituted."""
    source = source_of(name)
    split = source.split or first_split(staged, source.config)
    code = python_blocks(README.read_text(encoding="utf-8"), TRAIN_HEADING)[0]
    label = LABEL_LINE.search(python_blocks((staged / "README.md").read_text(encoding="utf-8"), TRAIN_HEADING)[0])
    for pattern, replacement in ((TARGET_LINE, f"REPO, CONFIG, SPLIT = {str(staged)!r}, {source.config!r}, {split!r}"),
                                 (LABEL_LINE, label.group(0)), (WORKERS_LINE, f"num_workers={workers}")):
        code, count = pattern.subn(lambda _: replacement, code)
        assert count == 1, f"the README's {TRAIN_HEADING!r} code no longer has one {pattern.pattern!r}"
    return code


def training(name: str, staged: Path) -> dict | None:
    """The README's "Train with PyTorch" DataLoader over the streamed split (batches of 4, the augmentation on),
    with 0 and 2 workers: seconds from running its code to the first batch, and samples/s over the whole split
    (from running the code to the last batch). None without torch."""
    try:
        import torch  # noqa: F401  (imported before the clock starts, as a training script would have)
        import torchvision  # noqa: F401
    except ImportError:
        return None
    import datasets

    measured = {}
    # `shuffle` reads the Parquet files through datasets' interleaving iterator (even one file), which sleeps
    # SLEEP_TIME_ON_THREADS_SHUTDOWN (5 s) when it ends, in each worker, to let PyArrow's threads close
    # (apache/arrow#45214): a fixed pause per pass, not reading; tests/test_recipes.py sets it to 0 too. The
    # workers fork with it.
    sleep, datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN, 0
    try:
        for workers in WORKERS:
            code = compile(loader_code(name, staged, workers), f"README.md: {TRAIN_HEADING}", "exec")
            start, first, samples, namespace = time.perf_counter(), None, 0, {}
            exec(code, namespace)
            for images, targets in namespace["loader"]:
                first = time.perf_counter() - start if first is None else first
                samples += len(images)
            seconds, loader = time.perf_counter() - start, namespace["loader"]
            assert loader.num_workers == workers
            measured[str(workers)] = {"first_batch_s": first, "samples": samples, "seconds": seconds,
                                      "per_s": samples / seconds, "batch_size": loader.batch_size}
    finally:
        datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = sleep
    return measured


def archive_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.zip")) / 1e6


def run_source(name: str, work: Path, tiny: bool, samples: Path | None, log) -> dict:
    data = source_of(name).choose(samples)
    full = archives(name, data, work, 1.0, tiny, samples)
    fallback = data is not source_of(name).data[0]
    log(f"{name}: {data.kind} data in {full}" + (" (its real samples were not found: replica)" if fallback else ""))
    result = {"data": data.kind, "made_of": data.tiny if tiny else data.made_of, "archive_mb": archive_mb(full),
              "load_at_start": os.getloadavg(), "start_up_s": start_up()}
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
    result["training"] = training(name, staged)
    if result["training"]:
        log(f"{name}: DataLoader " + ", ".join(f"{w} workers {m['per_s']:.1f}/s (first batch {m['first_batch_s']:.1f} s)"
                                              for w, m in result["training"].items()))
    result["num_proc_2"] = build(name, full, work / "hub-np2", num_proc=2)
    shutil.rmtree(work / "hub-np2", ignore_errors=True)
    result["scaling"] = []
    for fraction in FRACTIONS if data.scales else (1.0,):
        folder = full if fraction == 1.0 else archives(name, data, work, fraction, tiny, samples)
        measured = result["build"] if fraction == 1.0 else build(name, folder, work / "hub-scale")
        result["scaling"].append({"images": measured["rows"], "seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_mb"]})
    shutil.rmtree(work / "hub-scale", ignore_errors=True)
    result["load_at_end"] = os.getloadavg()
    log(f"{name}: done (load average {' / '.join(f'{v:.1f}' for v in result['load_at_end'])})")
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


def code_state() -> dict:
    """The commit checked out and the uncommitted changes to the code a build runs (builders/, upload.py)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
        except OSError:
            return ""

    changed = sorted(line[3:] for line in git("status", "--porcelain", "--", "builders", "upload.py").splitlines())
    digest = hashlib.sha256(git("diff", "HEAD", "--", "builders", "upload.py").encode())
    for path in changed:  # untracked files too
        if (ROOT / path).is_file():
            digest.update((ROOT / path).read_bytes())
    return {"commit": git("rev-parse", "HEAD").strip() or "unknown", "uncommitted": changed,
            "digest": digest.hexdigest()}


def describe_code(run: dict) -> str:
    start, end = run["code"], run["code_at_end"]
    text = f"commit `{start['commit']}`"
    if start["uncommitted"]:
        text += f" with uncommitted changes in {', '.join(start['uncommitted'])}"
    if end["digest"] != start["digest"] or end["commit"] != start["commit"]:
        text += " (**the code changed during the run**: the sources measured late may have run newer code)"
    return text


def report(results: dict, info: dict, run: dict, tiny: bool) -> str:
    lines = ["# Benchmark results", "",
             f"`python benchmarks/run.py{' --tiny' if tiny else ''}` on {info['date']}, {run['seconds'] / 60:.0f} min: "
             "one run per source; timings are single measurements on a noisy machine, ratios come from the same run.",
             "", f"Code measured: {describe_code(run)}.", "",
             f"Samples folder: `{run['samples']}`"
             + ("" if run["samples_found"] else " (**not found**: every source was built from synthetic replicas)") + ".",
             "", "## Data", "", "What each source was built from:", "", "| source | data | made of | images | archives MB |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['data']} | {r['made_of']} | {r['images']} | {r['archive_mb']:.1f} |"
              for name, r in results.items()]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items() if key != "date"]
    lines += ["", "Load average (1 / 5 / 15 min) at the start and the end of each source: the benchmark alone keeps "
                  "about 1 (2 during `--num-proc 2`); more means other work shared the cores.", ""]
    lines += [f"- {name}: {' / '.join(f'{v:.1f}' for v in r['load_at_start'])} at the start, "
              f"{' / '.join(f'{v:.1f}' for v in r['load_at_end'])} at the end" for name, r in results.items()]
    lines += ["", "## Targets", "", "| target | source | figure | met |", "|---|---|---|---|"]
    lines += [f"| {t} | {s} | {f} | {'yes' if ok else '**no**'} |" for t, s, f, ok in targets(results)]
    lines += ["", "## Build, floor and naive peer", "",
              "Build: `upload.py build` in a child process, wall time including the interpreter start-up and imports "
              "(timed alone in the `start-up s` column); the ratio to the floor leaves the start-up out. Floor: "
              "finding and reading the members, decoding the annotations and encoding the 16-bit masks with the "
              "builders' own functions; `image decode s` is `masks.decode_image` on the images, which the builders "
              "do too (to catch corrupt files, and for the preview) but the floor leaves out.", "",
              "| source | data | images | archives MB | build s | start-up s | images/s | peak RSS MB | staged MB "
              "| floor s | image decode s | (build - start-up) / floor | naive s | naive / build | naive MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = r["build"]
        lines.append(f"| {name} | {r['data']} | {r['images']} | {r['archive_mb']:.1f} | {b['seconds']:.1f} "
                     f"| {r['start_up_s']:.1f} | {b['images_per_s']:.1f} | {b['peak_rss_mb']:.0f} | {b['staged_mb']:.1f} "
                     f"| {r['floor']['seconds']:.1f} | {r['floor']['image_decode_s']:.1f} "
                     f"| {(b['seconds'] - r['start_up_s']) / r['floor']['seconds']:.2f} "
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
    lines += ["", "## Training (PyTorch DataLoader)", "",
              f"The README's \"{TRAIN_HEADING}\" code run as written on the staged repo, with only the repo (the staged "
              "folder), config, split, the source's `LABEL` (from its card) and `num_workers` substituted: "
              "`DataLoader(ds.shuffle(seed=0, buffer_size=64), batch_size=4, collate_fn=collate)`, the augmentation "
              "on (flips, 256-px crop); each row becomes a float image and one boolean mask per object. First batch: "
              "seconds from running the code (`load_dataset`, the DataLoader, the workers' start) to the first batch. "
              "Samples/s: the whole split, from running the code to the last batch. Disk: PIL decoding the same image "
              "and mask files (the Reading table, same run). A worker reads whole Parquet files, so with one file "
              "the second idles. `datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN` is 0, as in the tests: otherwise a "
              "shuffled stream pauses 5 s at its end (apache/arrow#45214), in every worker, every pass.", "",
              "| source | split rows | files | first batch s, 0 / 2 workers | samples/s, 0 workers | samples/s, 2 workers "
              "| files on disk /s | 0 workers / disk | 2 workers / disk | 2 / 0 workers |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        t, g = r["training"], r["reading"]
        if not t:
            lines.append(f"| {name} | {g['rows']} | {g['shards']} | torch not installed: not measured | | | | | | |")
            continue
        zero, two = t["0"], t["2"]
        lines.append(f"| {name} | {zero['samples']} | {g['shards']} | {zero['first_batch_s']:.1f} / {two['first_batch_s']:.1f} "
                     f"| {zero['per_s']:.1f} | {two['per_s']:.1f} | {g['disk_per_s']:.1f} "
                     f"| {zero['per_s'] / g['disk_per_s']:.2f} | {two['per_s'] / g['disk_per_s']:.2f} "
                     f"| {two['per_s'] / zero['per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few real files and tiny replicas (seconds), for the tests")
    parser.add_argument("--sources", nargs="+", choices=list(REGISTRY), default=list(REGISTRY),
                        help="registered source ids (default: all; those without an entry in SOURCES use their fakes)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "scratch"), help="archives written and builds (kept)")
    parser.add_argument("--results", default=None, help="markdown report (default benchmarks/RESULTS.md, "
                                                        "or <out>/RESULTS.md with --tiny)")
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()
    logging.getLogger("builders").setLevel(logging.ERROR)  # subsets and replicas differ from the official counts
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    samples = real_samples.samples_folder()
    found = samples.is_dir()
    if not found:
        print(f"real samples not found at {samples} (set MICROSCOPY_SAMPLES): replicas only", file=sys.stderr)
    shown = os.path.relpath(samples, ROOT) if ROOT.parent in samples.resolve().parents else str(samples)
    run = {"code": code_state(), "samples": shown, "samples_found": found}
    start = time.perf_counter()
    results = {}
    for name in args.sources:
        results[name] = run_source(name, work, args.tiny, samples if found else None,
                                   lambda message: print(message, file=sys.stderr, flush=True))
    run["seconds"], run["code_at_end"] = time.perf_counter() - start, code_state()
    info = machine()
    target = Path(args.results) if args.results else (work if args.tiny else ROOT / "benchmarks") / "RESULTS.md"
    target.write_text(report(results, info, run, args.tiny))
    target.with_suffix(".json").write_text(json.dumps({"machine": info, "run": run, "results": results}, indent=1) + "\n")
    print(f"wrote {target}")
    return 0 if all(r["reading"]["ranks_disjoint"] and r["reading"]["ranks_complete"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
