"""Fluorescent Neuronal Cells built from fake v1 and v2 archives holding every quirk of the specs."""

import dataclasses
import io
import json
import logging
import zipfile
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
from datasets import load_dataset
from PIL import Image as PILImage
from skimage import measure

from builders import REGISTRY, staging
from builders.errors import BuildError
from builders.fakes import fluocells as fake
from builders.fakes import write_zip
from builders.fluocells import (DOT_TOLERANCE, V1_TEST, FluorescentNeuronalCells, align_dots, file_id,
                                read_binary_mask, read_coco_dots)

CONFIGS = ["v1", "v2_green", "v2_yellow", "v2_red"]
SMALL = {"v1": (8, 5), "green": (5, 3, 2), "yellow": (3, 2, 2), "red": (4, 2, 2)}


def _zip_members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def _ids(path, config) -> dict:
    return {split: list(ds["image_id"]) for split, ds in load_dataset(str(path), config).items()}


def test_the_built_in_test_list_is_the_official_one(samples):
    folder = samples / "fluocells_v1"
    official = set((folder / "lule04_splits" / "test_image_ids.txt").read_text().split())
    train_val = {n for f in ("train", "val") for n in (folder / "lule04_splits" / f"{f}_image_ids.txt").read_text().split()}
    empty = set((folder / "empty_masks.txt").read_text().split())
    assert V1_TEST == official and len(V1_TEST) == 70
    assert len(train_val) == 213 and not train_val & V1_TEST
    assert len(empty & V1_TEST) == 12 and len(empty & train_val) == 38  # the official empty-mask split
    assert {file_id(n) + ".png" for n in train_val | V1_TEST} == train_val | V1_TEST  # ids drop only `.png`
    assert sum(n.endswith("_o.png") for n in train_val | V1_TEST) == len(fake.V1_O_NAMES) == 20
    assert set(fake.V1_O_NAMES) <= train_val | V1_TEST


def test_file_ids_drop_png_and_tiff_endings():
    assert file_id("Mar21bS1C2R2_VLPAGl_200x_y.png") == "Mar21bS1C2R2_VLPAGl_200x_y"
    assert file_id("MAR38S1C3R1_LHR_20_o.png.tiff") == file_id("MAR38S1C3R1_LHR_20_o.PNG.TIF") == "MAR38S1C3R1_LHR_20_o"
    assert file_id("128.png") == "128" and file_id("scan.tif") == "scan"
    assert file_id("README.md") is None and file_id(".png") is None


def test_all_configs_have_the_published_counts_and_the_drawn_objects(fluocells_staged, fluocells_fake):
    _, manifest = fluocells_fake
    assert FluorescentNeuronalCells.config_names() == CONFIGS
    for config in CONFIGS:
        collection = config.removeprefix("v2_")
        expected = manifest[collection]["objects"]
        ds = load_dataset(str(fluocells_staged), config)
        assert list(ds) == list(expected)
        seen = set()
        for split, rows in ds.items():
            prefix = "" if collection == "v1" else f"{collection}_"
            assert {r["image_id"]: r["num_objects"] for r in rows} == {prefix + s: n for s, n in expected[split].items()}
            assert all(r["num_objects"] is None or r["num_objects"] == len(r["objects"]) for r in rows)
            assert {(r["collection"], r["marker"], r["marked_structure"]) for r in rows} == {
                {"v1": ("v1", "CTb", "cytoplasm"), "green": ("green", "c-FOS", "nucleus"),
                 "yellow": ("yellow", "CTb", "cytoplasm"), "red": ("red", "Orx", "cytoplasm")}[collection]}
            assert not seen & set(rows["image_id"])  # no image in two splits
            seen |= set(rows["image_id"])
    v1 = load_dataset(str(fluocells_staged), "v1")
    assert {f"{i}.png" for i in v1["test"]["image_id"]} == V1_TEST and len(v1["train"]) == 213


def test_v1_masks_become_8_connected_components_of_channel_0_above_127(fluocells_staged, fluocells_fake):
    _, manifest = fluocells_fake
    members = _zip_members(manifest["v1"]["archive"])
    masks = {name.rsplit("/", 1)[1][:-4]: data for name, data in members.items() if "all_masks/masks/" in name}
    modes = set()
    for split in ("train", "test"):
        for row in load_dataset(str(fluocells_staged), "v1", split=split):
            upstream = PILImage.open(io.BytesIO(masks[row["image_id"]]))
            modes.add(upstream.mode)
            values = np.asarray(upstream)
            binary = (values if values.ndim == 2 else values[..., 0]) > 127
            stored = np.asarray(row["instance_mask"])
            assert row["instance_mask"].mode == "I;16" and stored.shape == binary.shape
            assert np.array_equal(stored > 0, binary)  # grey rims (90) and specks (100) are background
            # ids are the 8-connected components in raster order, as an independent labelling finds them
            assert np.array_equal(stored, measure.label(binary, connectivity=2))
            assert [o["instance_id"] for o in row["objects"]] == list(range(1, stored.max() + 1))
            assert all(o["dot_x"] is None and o["dot_y"] is None for o in row["objects"])  # v1 publishes no dots
    assert modes == {"L", "RGB", "RGBA"}


def test_v1_keeps_the_50_empty_masks(fluocells_staged, fluocells_fake):
    _, manifest = fluocells_fake
    empty = {}
    for split in ("train", "test"):
        for row in load_dataset(str(fluocells_staged), "v1", split=split):
            if not row["objects"]:
                assert row["instance_mask"] is not None and not np.asarray(row["instance_mask"]).any()
                assert row["num_objects"] == 0
                empty.setdefault(split, set()).add(row["image_id"])
    assert {k: len(v) for k, v in empty.items()} == {"train": 38, "test": 12}
    assert empty["train"] | empty["test"] == manifest["v1"]["empty"]


def test_unlabelled_images_have_no_mask_objects_or_count_but_a_preview(fluocells_staged, fluocells_fake):
    _, manifest = fluocells_fake
    members = _zip_members(manifest["red"]["archive"])
    rows = load_dataset(str(fluocells_staged), "v2_red", split="unlabelled").cast_column("image", datasets.Image(decode=False))
    assert len(rows) == 362
    for row in rows.select(range(20)):
        assert row["instance_mask"] is None and row["objects"] == [] and row["num_objects"] is None
        assert row["preview"].mode == "RGB"
        assert row["image"]["bytes"] == members[f"red/unlabelled/images/{row['image_id'].removeprefix('red_')}.png"]


def test_red_images_come_in_two_sizes_and_each_mask_fits_its_image(fluocells_staged):
    sizes = set()
    for split in ("train", "test"):
        for row in load_dataset(str(fluocells_staged), "v2_red", split=split):
            sizes.add(row["image"].size)
            assert row["instance_mask"].size == row["image"].size
    assert sizes == {(64, 48), (91, 68)}


def dot_pixel(record) -> list | None:
    """The upstream dot `[column, row]` of an object, from its centre `dot_x`, `dot_y` in the pixel-edge frame."""
    if record["dot_x"] is None:
        return None
    assert record["dot_x"] % 1 == record["dot_y"] % 1 == 0.5  # a pixel's centre
    return [int(record["dot_x"]), int(record["dot_y"])]


def test_v2_dots_are_paired_with_their_components(fluocells_staged, fluocells_fake):
    _, manifest = fluocells_fake
    outside = 0
    for config in CONFIGS[1:]:
        collection = config.removeprefix("v2_")
        for split in ("train", "test"):
            for row in load_dataset(str(fluocells_staged), config, split=split):
                stem = row["image_id"].removeprefix(f"{collection}_")
                mask = np.asarray(row["instance_mask"])
                dots = [dot_pixel(o) for o in row["objects"]]
                assert sorted(dots) == sorted(manifest[collection]["dots"][stem])  # every dot placed once
                for record in row["objects"]:
                    rows, cols = np.nonzero(mask == record["instance_id"])
                    x, y = dot_pixel(record)
                    assert [x, y] == [int(cols.mean()), int(rows.mean())]  # this component's truncated centroid
                    outside += mask[y, x] != record["instance_id"]
    assert outside > 0  # crescents: the dot lies outside its cell and was still paired with it


def test_the_green_orphan_mask_is_skipped_with_a_warning(tmp_path, caplog):
    manifest = fake.write_archives(tmp_path / "up", sizes=SMALL)
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path / "up",
                               configs=["v2_green"], verify=False)
    assert any("green/trainval/ground_truths/masks/128.png: mask without image" in r.message for r in caplog.records)
    assert "green/trainval/ground_truths/masks/128.png" in _zip_members(manifest["green"]["archive"])
    ids = _ids(staged, "v2_green")
    assert "green_128" not in ids["train"] and len(ids["train"]) == SMALL["green"][0]


@pytest.mark.parametrize("kind", ["mask", "image"])
def test_any_other_unpaired_file_is_an_error_or_a_warning_without_verify(tmp_path, caplog, kind):
    manifest = fake.write_archives(tmp_path / "up", sizes=SMALL)
    members = _zip_members(manifest["yellow"]["archive"])
    extra = "yellow/test/ground_truths/masks/999.png" if kind == "mask" else "yellow/test/images/999.png"
    members[extra] = members["yellow/test/images/4.png"]
    write_zip(manifest["yellow"]["archive"], members)
    archives = {**FluorescentNeuronalCells.ARCHIVES,
                "yellow": dataclasses.replace(FluorescentNeuronalCells.ARCHIVES["yellow"], sha256=None)}
    cls = type("Patched", (FluorescentNeuronalCells,), {"ARCHIVES": archives})
    with pytest.raises(BuildError, match=f"yellow.zip:{extra}: {kind} without an? (mask|image) of the same file name"):
        staging.build(cls, out=tmp_path / "hub", data_dir=tmp_path / "up", configs=["v2_yellow"], verify=True)
    assert not (tmp_path / "hub" / "fluocells").exists()
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = staging.build(cls, out=tmp_path / "hub", data_dir=tmp_path / "up", configs=["v2_yellow"], verify=False)
    assert any(extra in r.message for r in caplog.records)
    assert "yellow_999" not in _ids(staged, "v2_yellow")["test"]


def test_kaggle_png_tiff_names_and_a_top_folder_give_the_same_rows(tmp_path, fluocells_fake):
    fake.write_v1(tmp_path / "kaggle", *fake.PUBLISHED["v1"], top="fluocells", naming="kaggle")
    members = _zip_members(tmp_path / "kaggle" / "fluocells.zip")
    tiffs = [n for n in members if n.endswith(".png.tiff")]
    assert len(tiffs) == 2 * 20 and all(n.startswith("fluocells/") for n in members)
    kaggle = staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path / "kaggle",
                           configs=["v1"], verify=False)
    plain = staging.build(FluorescentNeuronalCells, out=tmp_path / "hub-plain", data_dir=fluocells_fake[0],
                          configs=["v1"], verify=False)
    for split in ("train", "test"):
        ours = load_dataset(str(kaggle), "v1", split=split).cast_column("image", datasets.Image(decode=False))
        theirs = load_dataset(str(plain), "v1", split=split)
        assert ours["image_id"] == theirs["image_id"]
        assert [r["objects"] for r in ours] == [r["objects"] for r in theirs]
        for row in ours:
            if row["image_id"].endswith("_o"):  # stored as published: TIFF bytes under the mirror's name
                assert row["image"]["path"] == row["image_id"] + ".png.tiff"
                assert row["image"]["bytes"] == members[f"fluocells/all_images/images/{row['image_id']}.png.tiff"]
                assert row["image"]["bytes"][:4] in (b"II*\x00", b"MM\x00*")


def test_a_stem_repeated_across_splits_of_one_collection_is_an_error(tmp_path):
    manifest = fake.write_archives(tmp_path / "up", sizes=SMALL)
    members = _zip_members(manifest["red"]["archive"])
    members["red/unlabelled/images/1.png"] = members["red/trainval/images/1.png"]
    write_zip(manifest["red"]["archive"], members)
    with pytest.raises(BuildError, match=r"image 1 appears twice .*red_1 would name two images"):
        staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path / "up", configs=["v2_red"],
                      verify=False)


def _png(array, mode=None) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_read_binary_mask_takes_channel_0_above_127():
    grey = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    expected = [[False, False, True, True]]
    assert read_binary_mask(_png(grey), "m.png", (4, 1)).tolist() == expected
    rgb = np.dstack([grey, grey, grey])
    assert read_binary_mask(_png(rgb), "m.png", (4, 1)).tolist() == expected
    rgba = np.dstack([grey, grey, grey, np.zeros_like(grey)])  # alpha ignored
    assert read_binary_mask(_png(rgba), "m.png", (4, 1)).tolist() == expected
    assert read_binary_mask(_png(grey > 127), "m.png", (4, 1)).tolist() == expected  # 1-bit PNG


def test_a_0_1_mask_is_taken_with_a_warning_not_emptied(caplog):
    with caplog.at_level(logging.WARNING, logger="builders"):
        assert read_binary_mask(_png(np.array([[0, 1, 1, 0]], np.uint8)), "m.png", (4, 1)).tolist() == [
            [False, True, True, False]]
    assert "m.png: mask values are 0 and 1, not 0 and 255" in caplog.text


def test_read_binary_mask_refuses_wrong_sizes_and_16_bit_and_warns_on_disagreeing_channels(caplog):
    with pytest.raises(BuildError, match=r"m.png: mask is 4x1 but its image is 5x1"):
        read_binary_mask(_png(np.zeros((1, 4), np.uint8)), "m.png", (5, 1))
    with pytest.raises(BuildError, match=r"m.png: PIL mode I;16"):
        read_binary_mask(_png(np.full((1, 4), 40000, np.uint16)), "m.png", (4, 1))
    rgb = np.zeros((1, 4, 3), np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 2] = 255
    with caplog.at_level(logging.WARNING, logger="builders"):
        assert read_binary_mask(_png(rgb), "m.png", (4, 1)).tolist() == [[True, False, False, False]]
    assert "m.png: the mask's colour channels disagree; channel 0 is used" in caplog.text


def test_align_dots_pairs_by_centroid_not_by_list_order(caplog):
    labels = np.zeros((20, 30), np.uint16)
    labels[2:6, 2:6] = 1  # centroid (3.5, 3.5) -> dot (3, 3)
    labels[10:16, 20:28] = 2  # centroid (23.5, 12.5) -> dot (23, 12)
    assert align_dots(labels, [[23, 12], [3, 3]], "m") == [[3, 3], [23, 12]]
    with caplog.at_level(logging.WARNING, logger="builders"):
        assert align_dots(labels, [[23, 12], [15, 15], [3, 3], [4, 4]], "m") == [[3, 3], [23, 12]]
    assert "m: 2 of 4 dots are not within 2 px" in caplog.text
    assert align_dots(labels, [[23, 12]], "m") == [None, [23, 12]]  # a component without a dot
    far = [[3 + int(DOT_TOLERANCE) + 1, 3]]
    assert align_dots(labels, far, "m") == [None, None]


def test_align_dots_pairs_a_ring_and_the_cell_in_its_hole():
    labels = np.zeros((30, 30), np.uint16)
    labels[5:25, 5:25] = 1
    labels[8:22, 8:22] = 0
    labels[15:17, 15:17] = 2  # centroid (15.5, 15.5); the ring's (14.5, 14.5)
    for dots in ([[14, 14], [15, 15]], [[15, 15], [14, 14]]):
        assert align_dots(labels, dots, "m") == [[14, 14], [15, 15]]
    # dots from contour moments rather than pixel centroids: least total distance, one-to-one
    assert align_dots(labels, [[16, 16], [13, 15]], "m") == [[13, 15], [16, 16]]


def test_read_coco_dots_reads_the_authors_layout_and_names_what_is_wrong():
    coco = {"images": [], "annotations": [{"image_id": "7", "dots": [[1, 2], [3, 4]], "count": 2}], "licenses": []}
    assert read_coco_dots(json.dumps(coco).encode(), "c.json") == {"7": [[1, 2], [3, 4]]}
    with pytest.raises(BuildError, match=r"c.json: annotations\[0\]: missing key 'dots'"):
        read_coco_dots(json.dumps({"annotations": [{"image_id": "7"}]}).encode(), "c.json")
    with pytest.raises(BuildError, match=r"c.json: missing key 'annotations'"):
        read_coco_dots(b'{"images": []}', "c.json")
    with pytest.raises(BuildError, match=r"c.json: not valid JSON"):
        read_coco_dots(b'{"annotations": [', "c.json")
    with pytest.raises(BuildError, match=r"c.json: annotations\[0\]: 'dots' must be a list of \[x, y\] integer pairs"):
        read_coco_dots(json.dumps({"annotations": [{"image_id": "7", "dots": [[1.5, 2]]}]}).encode(), "c.json")
    with pytest.raises(BuildError, match=r"c.json: annotations\[1\]: a second annotation for image '7'"):
        read_coco_dots(json.dumps({"annotations": [{"image_id": "7", "dots": []}] * 2}).encode(), "c.json")


def _result(config, counts, empty=None):
    return staging.ConfigResult(config, config, datasets.DatasetInfo(), [], counts=counts, empty=empty or {})


def test_official_counts_check_totals_over_splits_empty_masks_and_the_green_tolerance(caplog):
    verify = staging.verify_counts
    cls = FluorescentNeuronalCells
    verify(cls, _result("v1", {"train": (213, 4822), "test": (70, 711)}, {"train": 38, "test": 12}))
    with pytest.raises(BuildError, match=r"fluocells v1/test: 11 labelled images without objects, the official count is 12"):
        verify(cls, _result("v1", {"train": (213, 4822), "test": (70, 711)}, {"train": 38, "test": 11}))
    with pytest.raises(BuildError, match=r"fluocells v2_yellow/train\+test: 282 images, the official count is 283"):
        verify(cls, _result("v2_yellow", {"train": (212, 0), "test": (70, 0), "unlabelled": (354, 0)}))
    with caplog.at_level(logging.WARNING, logger="builders"):  # the datasheet's 283 green labelled images: warned
        verify(cls, _result("v2_green", {"train": (212, 0), "test": (71, 0), "unlabelled": (408, 0)}))
    assert "v2_green/train+test: 283 images, the official count is 282 (within the published uncertainty)" in caplog.text
    with pytest.raises(BuildError, match=r"v2_green/train\+test: 284 images"):
        verify(cls, _result("v2_green", {"train": (213, 0), "test": (71, 0), "unlabelled": (408, 0)}))
    with pytest.raises(BuildError, match=r"fluocells v2_red/test: 45 images, the official count is 46"):
        verify(cls, _result("v2_red", {"train": (138, 0), "test": (45, 0), "unlabelled": (362, 0)}))


def test_the_counts_table_of_the_card_shows_totals_published_over_several_splits(fluocells_staged):
    card = (fluocells_staged / "README.md").read_text()
    assert "| v2_green | train+test | 282 | 282 |" in card and "| v2_yellow | train+test | 283 | 283 |" in card
    assert "| v1 | test | 70 | 70 | " in card and "| v2_red | test | 46 | 46 |" in card


def test_a_copy_without_test_images_builds_train_only_without_verify(tmp_path, caplog):
    fake.write_v1(tmp_path / "up", 6, 0)
    with pytest.raises(BuildError, match=r"70 images of the official test list are missing"):
        staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path / "up", configs=["v1"])
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path / "up",
                               configs=["v1"], verify=False)
    assert "fluocells.zip: no images for split test; left out" in caplog.text
    assert {split: len(ids) for split, ids in _ids(staged, "v1").items()} == {"train": 6}


def test_a_staged_fluocells_folder_under_data_dir_is_not_taken_for_the_v1_archive(tmp_path):
    fake.write_v1(tmp_path, 6, 4)
    (tmp_path / "fluocells.zip").rename(tmp_path / "archive.zip")  # a mirror's name: found by its contents
    for _ in range(2):  # the second build sees the first one's output, tmp_path/hub/fluocells, under --data-dir
        staged = staging.build(FluorescentNeuronalCells, out=tmp_path / "hub", data_dir=tmp_path, configs=["v1"],
                               verify=False)
        assert {split: len(ids) for split, ids in _ids(staged, "v1").items()} == {"train": 6, "test": 4}


def test_ids_that_tie_in_natural_order_keep_one_order(tmp_path):
    from builders.archives import Tree
    from builders.fluocells import pair_files

    names = {"10.png": "a/10.png", "01.png": "a/01.png", "1.png": "a/1.png", "2.png": "a/2.png"}
    assert [p[0] for p in pair_files(Tree(tmp_path), dict(names), dict(names))] == ["01", "1", "2", "10"]


def test_an_image_with_an_exif_rotation_is_reported(caplog):
    from builders.base import SegmentationBuilder

    image = PILImage.new("RGB", (4, 2))
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    decoded = PILImage.open(io.BytesIO(buffer.getvalue()))
    with caplog.at_level(logging.WARNING, logger="builders"):
        row = SegmentationBuilder.row(SimpleNamespace(config=SimpleNamespace(name="v1"), imaging=REGISTRY["fluocells"].imaging),
                                      "x", buffer.getvalue(), "x.png", decoded, np.zeros((2, 4), np.uint16))
    assert "x.png: EXIF orientation 6: `datasets` rotates the image when decoding it, but not its instance_mask" in caplog.text
    assert row["num_objects"] == 0 and row["pixel_size_um"] is None
