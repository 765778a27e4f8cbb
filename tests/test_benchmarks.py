"""The benchmark script runs in --tiny mode on a few real sample files and tiny replicas, and writes every figure
(timings are not asserted; the full run is in the README)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
TORCH = all(importlib.util.find_spec(name) for name in ("torch", "torchvision"))  # the torch extra


@pytest.fixture(scope="module")
def run():
    """benchmarks/run.py as a module."""
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _tiny(out: Path, *args, samples: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if samples is not None:
        env["MICROSCOPY_SAMPLES"] = str(samples)
    return subprocess.run([sys.executable, str(RUN), "--tiny", "--out", str(out), *args], capture_output=True, text=True,
                          timeout=900, env=env)


def test_the_benchmark_runs_on_real_samples_and_tiny_replicas_and_reports_every_figure(samples, tmp_path):
    done = _tiny(tmp_path, samples=samples)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "RESULTS.md").read_text()
    for heading in ("## Data", "## Machine", "## Targets", "## Build, floor and naive peer", "## Scaling", "## Reading",
                    "## Training (PyTorch DataLoader)"):
        assert heading in report
    assert "Code measured: commit `" in report
    everything = json.loads((tmp_path / "RESULTS.json").read_text())
    results = everything["results"]
    assert sorted(results) == sorted(REGISTRY)  # every registered source, the one of tests/sources too
    # The real files where they exist: Aitslab and NucleusSegData pixels, the NuCLS QC database; fluocells a replica;
    # a source without an entry of its own (the test source), its fakes.
    assert {name: r["data"] for name, r in results.items()} == {
        "aitslab-bioimaging1": "real", "nucleussegdata": "real", "nucls": "qc", "fluocells": "replica",
        **{name: "fake" for name in REGISTRY if name not in ("aitslab-bioimaging1", "nucleussegdata", "nucls",
                                                             "fluocells")}}
    assert everything["run"]["samples_found"] and everything["run"]["code"]["commit"]
    assert [results["aitslab-bioimaging1"]["images"], results["nucleussegdata"]["images"]] == [5, 5]
    assert results["nucls"]["images"] == 20
    for name, r in results.items():
        assert r["floor"]["images"] == r["images"] == r["build"]["rows"] > 0, name  # the floor read every image
        assert r["floor"]["image_decode_s"] > 0, name
        assert r["build"]["peak_rss_mb"] > 0 and r["naive"]["output_mb"] > 0 and r["num_proc_2"]["rows"] == r["images"]
        assert [s["images"] for s in r["scaling"]] == sorted({s["images"] for s in r["scaling"]}), name  # 3 sizes
        reading = r["reading"]
        assert reading["ranks_disjoint"] and reading["ranks_complete"] and sum(reading["rank_rows"]) == reading["rows"]
        assert f"| {name} | {r['data']} |" in report
        # The README's DataLoader, 0 and 2 workers, batches of 4: every row of the split, positive figures.
        if not TORCH:
            assert r["training"] is None, name  # the report says "torch not installed"
            continue
        assert sorted(r["training"]) == ["0", "2"], name
        for workers, loader in r["training"].items():
            assert loader["samples"] == reading["rows"] and loader["batch_size"] == 4, (name, workers)
            assert loader["first_batch_s"] > 0 and loader["per_s"] > 0 and loader["seconds"] > 0, (name, workers)


def test_without_the_samples_the_benchmark_falls_back_to_replicas_and_says_so(tmp_path):
    done = _tiny(tmp_path / "out", "--sources", "nucleussegdata", samples=tmp_path / "no-samples")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "real samples not found" in done.stderr
    report = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "(**not found**: every source was built from synthetic replicas)" in report
    result = json.loads((tmp_path / "out" / "RESULTS.json").read_text())["results"]["nucleussegdata"]
    assert result["data"] == "replica" and "real samples absent" in result["made_of"]
    assert result["images"] == result["floor"]["images"] == 37


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_way_of_writing_a_source_gives_archives_its_reader_and_the_floor_read(run, name, tmp_path):
    """Each writer (real samples, QC database, replica) at the tiny size: the builder's finders see every image
    and the floor decodes them all with the builders' functions. Real-sample writers skip without the samples."""
    samples = run.real_samples.samples_folder()
    for data in run.source_of(name).data:
        if data.needs and not all((samples / p).exists() for p in data.needs):
            continue  # covered where the samples are present
        folder = tmp_path / data.kind
        folder.mkdir()
        data.write(folder, 1.0, True, samples if data.needs else None)
        ids = [image_id for image_id, *_ in run.source_of(name).read(folder)]
        assert ids and len(ids) == len(set(ids)), (name, data.kind)
        measured = run.floor(name, folder)
        assert measured["images"] == len(ids) and measured["seconds"] > 0, (name, data.kind)
        # a hand-written floor reader decodes exactly what the builder decodes (the generic reader is the builder's)
        if name in run.SOURCES:
            import numpy as np

            from builders import masks

            ours = {i: (b, labels(masks.decode_image(b, n))) for i, n, b, labels in run.SOURCES[name].read(folder)}
            theirs = {i: (b, labels(None)) for i, n, b, labels in run.builder_reader(name)(folder)}
            assert sorted(ours) == sorted(theirs), (name, data.kind)
            assert all(ours[i][0] == theirs[i][0] and np.array_equal(ours[i][1], theirs[i][1]) for i in ours), name
