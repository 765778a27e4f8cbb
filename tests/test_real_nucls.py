"""NuCLS fold logic on the real fold files and the real FOV names, sizes and nuclei of the 2020 QC database.

The samples hold no NuCLS pixels: `builders.fakes.nucls.write_from_qc` writes the upstream layout from the
QC database (synthetic flat-colour pixels) with the authors' fold files copied byte for byte. The real
files differ from the spec in places, checked here: the database lists 1,746 FOV rows but 1,744 names,
111 nuclei are `point`s, the `_id-` part of a FOV name is per slide, and the fold folder has no fold 999.
"""

import csv
import glob
import io
import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import cli_build
from datasets import load_dataset

from builders.fakes import nucls as fake
from builders.nucls import (
    HOSPITAL_FOVS,
    RAW_CLASSES,
    NuCLS,
    fold_layout,
    hospital_of,
    read_fold,
    slide_of,
)

ROOT = Path(__file__).resolve().parent.parent
FOLDS = (1, 2, 3, 4, 5)
CONFIGS = ["all", *(f"fold_{k}" for k in FOLDS)]  # no fold_999: the real fold folder has none
PER_SLIDE = 2  # FOVs per slide in the built archive: 245 of the 1,744, every slide and fold represented
# The spec's figures for the real files (samples README, specs/upstream-formats.md 5.9).
TEST_SLIDES = {1: 22, 2: 27, 3: 32, 4: 25, 5: 18}
SUPER_TOTALS = {"tumor_any": 21296, "sTIL": 19192, "nonTIL_stromal": 10486, "AMBIGUOUS": 7911, "other_nucleus": 600}


def qc_path(samples) -> Path:
    return samples / "nucls" / "qc_core_2020-04-05" / "v4_2020-04-05_FINAL_CORE.sqlite"


def fold_files(samples) -> dict:
    """{fold: {split: slide names}} read by the builder from the real fold files."""
    folder = samples / "nucls" / "train_test_splits"
    return {k: {split: read_fold((folder / f"fold_{k}_{split}.csv").read_bytes(), f"fold_{k}_{split}.csv")
                for split in ("train", "test")} for k in FOLDS}


@pytest.fixture(scope="session")
def nucls_qc(samples) -> list:
    """The FOVs of the real QC database, one per name, with their nuclei (`fake.qc_fovs`)."""
    return fake.qc_fovs(qc_path(samples))


@pytest.fixture(scope="session")
def nucls_real(samples, tmp_path_factory):
    """(upstream folder, manifest) of a NuCLS zip with the real names, sizes, nuclei and fold files: the first
    PER_SLIDE FOVs of every slide, flat-colour pixels."""
    upstream = tmp_path_factory.mktemp("nucls-real")
    manifest = fake.write_from_qc(upstream, qc_path(samples), samples / "nucls" / "train_test_splits",
                                  per_slide=PER_SLIDE)
    return upstream, manifest


@pytest.fixture(scope="session")
def nucls_real_staged(nucls_real, tmp_path_factory) -> Path:
    """The staged repo built from `nucls_real` by `upload.py build nucls`, configs all and fold_1..5."""
    out = tmp_path_factory.mktemp("nucls-real-hub")
    # --no-verify: a subset of the FOVs cannot have the official FOV, nucleus and per-hospital counts
    # (the full database has them exactly, see test_the_qc_database_has_the_published_counts_once_deduplicated).
    result = cli_build("nucls", "--data-dir", nucls_real[0], "--out", out, "--no-verify")  # every config it has
    assert result.returncode == 0, result.stderr
    assert "no config fold_999" in result.stderr
    return out / NuCLS.REPO_NAME


def test_asking_for_fold_999_which_the_real_files_lack_is_a_clear_error(nucls_real, tmp_path):
    result = cli_build("nucls", "--data-dir", nucls_real[0], "--out", tmp_path, "--no-verify", "--config", "fold_999")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: " in result.stderr and "no data for config fold_999" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_the_qc_database_has_the_published_counts_once_deduplicated(samples, nucls_qc):
    with sqlite3.connect(f"{qc_path(samples).as_uri()}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT fovname, slide_name FROM fov_meta").fetchall()
    repeated = {name for name, n in Counter(name for name, _ in rows).items() if n > 1}
    assert len(rows) == 1746 and len(repeated) == 2  # two A2 FOVs listed twice, with the same nuclei
    assert {hospital_of(name) for name in repeated} == {"A2"}
    assert all(slide == slide_of(name) for name, slide in rows)
    assert len(nucls_qc) == 1744 and Counter(hospital_of(f["name"]) for f in nucls_qc) == HOSPITAL_FOVS
    nuclei = [n for fov in nucls_qc for n in fov["nuclei"]]
    assert len(nuclei) == 59485
    assert Counter(RAW_CLASSES[group.removeprefix("correction_")][2] for group, _, _ in nuclei) == SUPER_TOTALS
    assert Counter(kind for _, kind, _ in nuclei) == {"rectangle": 39694, "polyline": 19680, "point": 111}
    points = [(group, b) for group, kind, b in nuclei if kind == "point"]
    assert all(group.startswith("correction_") and b[:2] == b[2:] for group, b in points)  # clicked: zero-size box
    assert sum(group.startswith("correction_") for group, _, _ in nuclei) == 213
    assert {group.removeprefix("correction_") for group, _, _ in nuclei} == set(RAW_CLASSES)
    # `_id-<hex>` names the slide, not the FOV: 124 ids, all the FOVs of a slide share theirs.
    ids = {slide_of(f["name"]): set() for f in nucls_qc}
    for fov in nucls_qc:
        ids[slide_of(fov["name"])].add(fov["name"].split("_id-")[1].split("_")[0])
    assert len(ids) == 124 and all(len(v) == 1 for v in ids.values()) and len(set().union(*ids.values())) == 124


def test_the_real_fold_files_are_as_documented(samples):
    folds = fold_files(samples)
    every = set().union(*(folds[1].values()))
    assert len(every) == 124
    for k in FOLDS:
        assert not folds[k]["train"] & folds[k]["test"] and folds[k]["train"] | folds[k]["test"] == every
        assert len(folds[k]["test"]) == TEST_SLIDES[k]
        text = (samples / "nucls" / "train_test_splits" / f"fold_{k}_test.csv").read_text()
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["", "slide_name", "hospital", "type", "fold"]
        assert all(r[2] == r[1].split("-")[1] and r[3] == "test" and r[4] == str(k) for r in rows[1:])
    test_hospitals = [{s.split("-")[1] for s in folds[k]["test"]} for k in FOLDS]
    assert sum(map(len, test_hospitals)) == len(set().union(*test_hospitals)) == 18  # each hospital in one test fold
    assert not glob.glob(str(samples / "nucls" / "train_test_splits" / "fold_999_*"))


def test_fold_layout_on_every_real_fov_name(samples, nucls_qc):
    fovs = sorted(f["name"] for f in nucls_qc)
    folds = fold_files(samples)
    parts, layout = fold_layout(fovs, folds, "train_test_splits")
    stored = [fov for members in parts.values() for fov in members]
    assert sorted(stored) == fovs  # every FOV stored once
    assert sorted(fov for part in layout["all"]["train"] for fov in parts[part]) == fovs
    assert sorted(layout) == CONFIGS
    tests = []
    for k in FOLDS:
        train, test = ([fov for part in layout[f"fold_{k}"][split] for fov in parts[part]] for split in ("train", "test"))
        assert not set(train) & set(test) and sorted(train + test) == fovs
        assert {slide_of(fov) for fov in test} == folds[k]["test"]
        tests += test
    assert sorted(tests) == fovs  # the five test folds partition the FOVs
    assert [len([f for f in tests if slide_of(f) in folds[k]["test"]]) for k in FOLDS] == [263, 505, 405, 294, 277]
    assert len(parts) == 5  # a FOV's membership is its test fold
    assert set(layout) == {"all", *(f"fold_{k}" for k in FOLDS)}  # no fold_999


def _stored_ids(staged: Path) -> list[str]:
    shards = sorted(glob.glob(str(staged / "data" / "*.parquet")))
    return [i for path in shards for i in pq.read_table(path, columns=["image_id"]).column("image_id").to_pylist()]


def test_the_staged_repo_has_the_real_folds(nucls_real, nucls_real_staged):
    _, manifest = nucls_real
    fovs = sorted(manifest["fovs"])
    assert len(fovs) == 245
    stored = _stored_ids(nucls_real_staged)
    assert len(stored) == len(set(stored)) == len(fovs) and sorted(stored) == fovs  # each FOV exactly once
    card = (nucls_real_staged / "README.md").read_text()
    assert "config_name: fold_5" in card and "config_name: fold_999" not in card
    tests = []
    for config in CONFIGS:
        ds = load_dataset(str(nucls_real_staged), config)
        ids = {split: sorted(ds[split]["image_id"]) for split in ds}
        if config == "all":
            assert ids == {"train": fovs}
            continue
        fold = int(config.split("_")[1])
        assert ids == manifest["folds"][fold]
        assert not set(ids["train"]) & set(ids["test"]) and sorted(ids["train"] + ids["test"]) == fovs
        assert {row["hospital"] for row in ds["test"]} & {row["hospital"] for row in ds["train"]} == set()
        tests += ids["test"]
    assert sorted(tests) == fovs


def test_the_staged_rows_have_the_real_sizes_and_nuclei(nucls_real, nucls_real_staged):
    _, manifest = nucls_real
    ds = load_dataset(str(nucls_real_staged), "all", split="train")
    features = ds.features["objects"].feature
    kinds = Counter()
    for row in ds:
        expected = manifest["fovs"][row["image_id"]]
        assert (row["image"].width, row["image"].height) == expected["size"]
        assert row["slide"] == expected["slide"] and row["hospital"] == expected["hospital"]
        classes = [tuple(features[f].int2str(o[f]) for f in
                         ("raw_classification", "main_classification", "super_classification", "annotation_type"))
                   for o in row["objects"]]
        assert classes == expected["classes"]
        kinds.update(c[3] for c in classes)
    assert set(kinds) == {"polyline", "rectangle", "point"}


def test_the_staged_repo_fits_the_first_rows_budget_and_its_outlines_match_the_masks(nucls_real_staged):
    from test_objects import assert_publishable

    assert_publishable(nucls_real_staged)
