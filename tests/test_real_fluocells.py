"""Fluorescent Neuronal Cells built by `upload.py build` from the real lab copies in
../shared/samples/fluocells_lab_samples (yellow: the v1 marker CTb; red: v2 Orx, two camera sizes).

The lab copies are not in the AMS Acta layout (samples README), so each test folder lays them out as the
builder expects: the 4 yellow images as the extracted v1 `fluocells/` folder (`all_images/images/<name>_y.png`
and `all_masks/masks/<name>_y.png`, the v1 names) and the 4 red images as the extracted v2 `red/` folder
(`red/{trainval,test}/images/<n>.png` + `ground_truths/masks/<n>.png`). v2 needs no COCO file (without one
the objects get no dots, with a warning); one is written here from the real masks as the authors computed
theirs (one dot per 8-connected component: its centroid truncated to whole pixels), so the dot pairing is
checked on real cells too. Every build passes --no-verify: 4 images are not the published counts (v1 213 / 70,
v2 red 138 / 46 / 362), 68 of the 70 official v1 test images are absent and red has no `unlabelled/` folder.
"""

import csv
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import built, cli_build
from datasets import Image, load_dataset
from PIL import Image as PILImage
from skimage.measure import label, regionprops

from builders.errors import BuildError
from builders.fakes import png_bytes
from builders.fakes.fluocells import _coco, _encode
from builders.fluocells import V1_TEST, read_binary_mask
from test_fluocells_build import dot_pixel

# Published 8-connected component counts (samples README) of the yellow masks.
YELLOW = {"Mar19bS1C4R2_LHr_200x": 13, "Mar23bS1C2R3_VLPAGr_200x": 4, "Mar24bS1C2R3_LHl_200x": 6,
          "Mar32bS2C2R2_DMl_200x": 35}
# v2 split folder -> {stem: lab name}: each split gets one image of each red camera size.
RED = {"trainval": {"1": "MAR31S1C1R2_DMHr_200x_r", "2": "RT353S2C1R5_r1"},
       "test": {"3": "MAR32C2R3_PVHr_200x_r", "4": "RT359S3C1R1_r1"}}
SIXTEEN_BIT = "yellow_16bit_masks_a1421da"
IMAGE_COLUMNS = ("image", "instance_mask", "preview")


@pytest.fixture(scope="module")
def lab(samples):
    return samples / "fluocells_lab_samples"


def reference(mask_bytes: bytes) -> np.ndarray:
    """The instance ids the builder must give: 8-connected components of (channel 0 > 127), raster order."""
    values = np.asarray(PILImage.open(io.BytesIO(mask_bytes)))
    return label((values if values.ndim == 2 else values[..., 0]) > 127, connectivity=2)


def write_v1(root, lab, masks: dict, images=YELLOW):
    """The extracted v1 folder below `root`: the yellow `images` and `masks` (lab name -> bytes), named `_y`."""
    top = root / "fluocells"
    (top / "all_images" / "images").mkdir(parents=True)
    (top / "all_masks" / "masks").mkdir(parents=True)
    for name in images:
        target = top / "all_images" / "images" / f"{name}_y.png"
        shutil.copy(lab / "yellow" / "sample" / "images" / f"{name}.png", target)
    for name, data in masks.items():
        (top / "all_masks" / "masks" / f"{name}_y.png").write_bytes(data)
    return root


def yellow_masks(lab) -> dict:
    return {name: (lab / "yellow" / "sample" / "masks" / f"{name}.png").read_bytes() for name in YELLOW}


def write_red(root, lab):
    """The extracted v2 `red/` folder below `root`, with a COCO file of dots per split."""
    real = lab / "red" / "sample"
    for folder, stems in RED.items():
        base = root / "red" / folder
        for sub in ("images", "ground_truths/masks", "ground_truths/COCO"):
            (base / sub).mkdir(parents=True)
        entries = []
        for stem, name in stems.items():
            shutil.copy(real / "images" / f"{name}.png", base / "images" / f"{stem}.png")
            shutil.copy(real / "masks" / f"{name}.png", base / "ground_truths" / "masks" / f"{stem}.png")
            cells = regionprops(reference((real / "masks" / f"{name}.png").read_bytes()))
            entries.append((stem, PILImage.open(real / "images" / f"{name}.png").size,
                            [[int(c.centroid[1]), int(c.centroid[0])] for c in cells], [box(c) for c in cells]))
        (base / "ground_truths" / "COCO" / f"annotations_red_{folder}.json").write_bytes(_coco("red", folder, entries))
    return root


def box(cell) -> list:
    """COCO `[x, y, w, h]` of a skimage region."""
    top, left, bottom, right = cell.bbox
    return [left, top, right - left, bottom - top]


def build(upstream, out, *configs) -> subprocess.CompletedProcess:
    # --no-verify: the real data is partial (see the module docstring); corrupt data still fails.
    return cli_build("fluocells", *(a for c in configs for a in ("--config", c)), "--data-dir", upstream, "--out", out,
                     "--no-verify")


def raw(staged, config) -> dict:
    """Split -> rows with the image columns as stored bytes."""
    result = {}
    for split, ds in load_dataset(str(staged), config).items():
        for column in IMAGE_COLUMNS:
            ds = ds.cast_column(column, Image(decode=False))
        result[split] = list(ds)
    return result


def instance_ids(row) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(row["instance_mask"]["bytes"])))


def check_rows(rows, files: dict) -> dict:
    """Each row against its upstream files (image id -> (image path, mask bytes)): image bytes as published,
    ids the reference components, each object's area and bbox those of its component; returns id -> count."""
    counts = {}
    for row in rows:
        image_path, mask = files[row["image_id"]]
        assert row["image"]["bytes"] == image_path.read_bytes(), row["image_id"]
        expected = reference(mask)
        stored = instance_ids(row)
        assert stored.dtype == np.uint16 and np.array_equal(stored, expected), row["image_id"]
        cells = regionprops(expected)
        assert [o["instance_id"] for o in row["objects"]] == [c.label for c in cells] == list(range(1, len(cells) + 1))
        assert [o["area"] for o in row["objects"]] == [int(c.area) for c in cells], row["image_id"]
        assert [o["bbox"] for o in row["objects"]] == [box(c) for c in cells], row["image_id"]
        assert row["num_objects"] == len(cells)
        counts[row["image_id"]] = row["num_objects"]
    return counts


def lab_counts(real) -> dict:
    """`n_cells` per image of the lab's `stats_df.csv`."""
    with open(real / "stats_df.csv", newline="") as table:
        return {row["img_name"]: int(row["n_cells"]) for row in csv.DictReader(table)}


@pytest.fixture(scope="module")
def staged_8bit(lab, tmp_path_factory):
    """v1 (the yellow copies, 8-bit masks) and v2_red built in one `upload.py build`: (staged repo, stderr)."""
    upstream = write_red(write_v1(tmp_path_factory.mktemp("fluocells-real"), lab, yellow_masks(lab)), lab)
    out = tmp_path_factory.mktemp("fluocells-real-hub")
    result = build(upstream, out, "v1", "v2_red")
    return built(result, out, "fluocells"), result.stderr


def test_yellow_copies_build_as_v1_with_the_published_component_counts(lab, samples, staged_8bit):
    real = lab / "yellow" / "sample"
    v1_names = {n for f in ("train", "val", "test")
                for n in (samples / "fluocells_v1" / "lule04_splits" / f"{f}_image_ids.txt").read_text().split()}
    assert {f"{name}_y.png" for name in YELLOW} <= v1_names  # the lab names are the v1 names without `_y`
    files = {f"{name}_y": (real / "images" / f"{name}.png", (real / "masks" / f"{name}.png").read_bytes())
             for name in YELLOW}
    rows = raw(staged_8bit[0], "v1")
    assert {split: {r["image_id"] for r in split_rows} for split, split_rows in rows.items()} == {
        "train": {"Mar23bS1C2R3_VLPAGr_200x_y", "Mar24bS1C2R3_LHl_200x_y"},  # the official test list decides
        "test": {"Mar19bS1C4R2_LHr_200x_y", "Mar32bS2C2R2_DMl_200x_y"}}
    assert {f"{r['image_id']}.png" in V1_TEST for r in rows["test"]} == {True}
    counts = {}
    for split_rows in rows.values():
        counts |= check_rows(split_rows, files)
        assert all(o["dot_x"] is None for r in split_rows for o in r["objects"])  # v1 publishes no dots
    assert counts == {f"{name}_y": n for name, n in YELLOW.items()}
    assert counts == {f"{name}_y": n for name, n in lab_counts(real).items()}  # and the lab's own table


def test_red_copies_build_as_v2_red_with_both_camera_sizes_and_their_dots(lab, staged_8bit):
    real = lab / "red" / "sample"
    rows = raw(staged_8bit[0], "v2_red")
    assert list(rows) == ["train", "test"]  # no unlabelled/ folder: that split is left out with a warning
    assert "no unlabelled/images/ folder" in staged_8bit[1]
    names = {f"red_{stem}": name for stems in RED.values() for stem, name in stems.items()}
    files = {image_id: (real / "images" / f"{name}.png", (real / "masks" / f"{name}.png").read_bytes())
             for image_id, name in names.items()}
    counts, sizes = {}, {}
    for split, folder in (("train", "trainval"), ("test", "test")):
        assert {r["image_id"] for r in rows[split]} == {f"red_{stem}" for stem in RED[folder]}
        counts |= check_rows(rows[split], files)
        for row in rows[split]:
            size = PILImage.open(io.BytesIO(row["image"]["bytes"])).size
            assert PILImage.open(io.BytesIO(row["instance_mask"]["bytes"])).size == size
            sizes.setdefault(split, set()).add(size)
            cells = regionprops(reference(files[row["image_id"]][1]))
            assert [dot_pixel(o) for o in row["objects"]] == [[int(c.centroid[1]), int(c.centroid[0])] for c in cells]
            assert (row["collection"], row["marker"], row["marked_structure"]) == ("red", "Orx", "cytoplasm")
    assert sizes == {"train": {(1600, 1200), (2272, 1704)}, "test": {(1600, 1200), (2272, 1704)}}
    assert {names[i]: n for i, n in counts.items()} == lab_counts(real) == {
        "MAR31S1C1R2_DMHr_200x_r": 5, "RT353S2C1R5_r1": 57, "MAR32C2R3_PVHr_200x_r": 73, "RT359S3C1R1_r1": 53}
    assert "dots are not within" not in staged_8bit[1]  # every dot found its component


def test_16_bit_copies_of_the_same_masks_build_the_same_rows(lab, staged_8bit, tmp_path):
    """The 8-bit masks written as 16-bit 0/65535 PNGs (PIL mode I;16, as the lab's 16-bit copies): every v1 row,
    instance mask and object is identical to the 8-bit build."""
    masks16 = {name: png_bytes((np.asarray(PILImage.open(io.BytesIO(data))) > 127).astype(np.uint16) * 65535)
               for name, data in yellow_masks(lab).items()}
    assert {PILImage.open(io.BytesIO(data)).mode for data in masks16.values()} == {"I;16"}
    result = build(write_v1(tmp_path / "up", lab, masks16), tmp_path / "hub", "v1")
    rows16, rows8 = raw(built(result, tmp_path / "hub", "fluocells"), "v1"), raw(staged_8bit[0], "v1")
    assert rows16.keys() == rows8.keys()
    for split in rows8:
        assert len(rows16[split]) == len(rows8[split]) == 2
        for row16, row8 in zip(rows16[split], rows8[split]):
            assert row16 == row8, row8["image_id"]


def test_the_labs_real_16_bit_masks_build_their_own_components(lab, staged_8bit, tmp_path):
    """The lab's first upload (`yellow_16bit_masks_a1421da/`, 0/65535) in place of the 8-bit masks. It is an
    older revision: 3 of its 4 names have the same cells in the same order, each drawn a few pixels larger, and
    the 4th, `Mar23bS1C2R2_VLPAGl_200x`, is the mask of another image (R2, left) that the samples lack."""
    copies = {p.stem: p.read_bytes() for p in (lab / SIXTEEN_BIT).glob("*.png")}
    assert {PILImage.open(io.BytesIO(data)).mode for data in copies.values()} == {"I;16"}
    assert {n for data in copies.values() for n in np.unique(np.asarray(PILImage.open(io.BytesIO(data))))} == {0, 65535}
    assert set(copies) - set(YELLOW) == {"Mar23bS1C2R2_VLPAGl_200x"}
    result = build(write_v1(tmp_path / "up", lab, {**yellow_masks(lab), **copies}), tmp_path / "hub", "v1")
    rows = raw(built(result, tmp_path / "hub", "fluocells"), "v1")
    orphan = [line for line in result.stderr.splitlines() if "Mar23bS1C2R2_VLPAGl_200x_y.png" in line]
    assert len(orphan) == 1 and orphan[0].startswith("warning:") and "mask without an image" in orphan[0]
    files = {f"{name}_y": (lab / "yellow" / "sample" / "images" / f"{name}.png", copies.get(name, mask))
             for name, mask in yellow_masks(lab).items()}
    counts = {}
    for split in rows:
        counts |= check_rows(rows[split], files)
    assert counts == {f"{name}_y": n for name, n in YELLOW.items()}  # the same counts as the 8-bit masks
    rows8 = {r["image_id"]: r for split_rows in raw(staged_8bit[0], "v1").values() for r in split_rows}
    for row in (r for split_rows in rows.values() for r in split_rows):
        labels16, labels8 = instance_ids(row), instance_ids(rows8[row["image_id"]])
        assert np.array_equal(labels16[labels8 > 0], labels8[labels8 > 0])  # each 8-bit cell inside its 16-bit cell
        if row["image_id"] == "Mar23bS1C2R3_VLPAGr_200x_y":  # no 16-bit copy: its 8-bit mask was kept
            assert row == rows8[row["image_id"]]
        else:
            assert (labels16 > 0).sum() > (labels8 > 0).sum()


def test_a_16_bit_mask_with_other_values_fails_the_build_naming_the_file(lab, tmp_path):
    name = "Mar19bS1C4R2_LHr_200x"
    values = np.asarray(PILImage.open(lab / "yellow" / "sample" / "masks" / f"{name}.png")).astype(np.uint16) * 257
    values[:4, :4] = 300  # one value that is neither background nor foreground
    result = build(write_v1(tmp_path / "up", lab, {name: png_bytes(values)}, images=[name]), tmp_path / "hub", "v1")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"all_masks/masks/{name}_y.png" in errors[0], result.stderr
    assert "PIL mode I;16" in errors[0] and "values 0, 300, 65535" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").iterdir())


@pytest.mark.parametrize("values, expected", [
    ([0, 65535, 65535, 0], [False, True, True, False]), ([0, 0, 0, 0], [False] * 4), ([65535] * 4, [True] * 4),
    ([0, 1, 1, 0], [False, True, True, False]),  # 0 / 1 as for 8-bit masks: taken, with a warning
])
def test_a_16_bit_binary_mask_reads_like_its_8_bit_twin(values, expected, monkeypatch):
    warned = []  # the builder's warnings, whatever logging handlers earlier tests left behind
    monkeypatch.setattr("builders.fluocells.warn", warned.append)
    for dtype, fmt in ((np.uint16, "PNG"), (np.int32, "TIFF")):  # PIL modes I;16 and I (32-bit; PIL writes no such PNG)
        assert read_binary_mask(_encode(np.array([values], dtype), fmt), "m.png", (4, 1)).tolist() == [expected]
    assert any("mask values are 0 and 1" in w for w in warned) == (max(values) == 1)


@pytest.mark.parametrize("values, shown", [
    ([0, 1, 65535, 7], "0, 1, 7, 65535"), ([0, 255, 0, 0], "0, 255"),  # 8-bit values in a 16-bit mask are refused
    (list(range(0, 8000, 1000)), "0, 1000, 2000, 3000, 4000, 5000, ... (8 values)"),
])
def test_a_16_bit_mask_with_other_values_is_an_error_naming_them(values, shown):
    with pytest.raises(BuildError, match=rf"^m.png: PIL mode I;16 mask with values {re.escape(shown)};"):
        read_binary_mask(png_bytes(np.array([values], np.uint16)), "m.png", (len(values), 1))


def test_the_staged_repo_fits_the_first_rows_budget_and_its_outlines_match_the_masks(staged_8bit):
    from test_objects import assert_publishable

    assert_publishable(staged_8bit[0])
