"""NuCLS built from a fake archive holding every quirk of the specs."""

import glob
import io
import logging

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from builders import core_view, schema, staging
from builders.errors import BuildError
from builders.fakes import nucls as fake
from builders.fakes import write_zip
from builders.nucls import (MAIN_CLASSES, RAW_CLASSES, SUPER_CLASSES, NuCLS, decode_mask, fold_layout, match_nuclei,
                           objects_of, read_fold, read_nuclei)

CONFIGS = ["all", "fold_1", "fold_2", "fold_3", "fold_4", "fold_5", "fold_999"]


@pytest.fixture(scope="module")
def nucls(nucls_staged, nucls_fake):
    return nucls_staged, nucls_fake[1]


def test_every_config_has_the_fold_membership_of_the_split_files(nucls):
    staged, manifest = nucls
    assert NuCLS.config_names() == CONFIGS
    for config in CONFIGS:
        ds = load_dataset(str(staged), config)
        if config == "all":
            assert list(ds) == ["train"] and sorted(ds["train"]["image_id"]) == sorted(manifest["fovs"])
            continue
        fold = manifest["folds"][int(config.split("_")[1])]
        assert {split: sorted(ds[split]["image_id"]) for split in ds} == fold
        assert not set(fold["train"]) & set(fold["test"])
    tests = [fov for k in (1, 2, 3, 4, 5) for fov in manifest["folds"][k]["test"]]
    assert sorted(tests) == sorted(manifest["fovs"])  # the five test folds partition the FOVs


def test_fold_2_loads_train_and_test_with_no_fov_in_both(nucls):
    staged, manifest = nucls
    ds = load_dataset(str(staged), "fold_2")
    train, test = set(ds["train"]["image_id"]), set(ds["test"]["image_id"])
    assert train and test and not train & test and train | test == set(manifest["fovs"])
    assert {row["hospital"] for row in ds["test"]} == {"E2"}  # the hospital of test fold 2


def test_no_image_is_stored_twice(nucls):
    staged, manifest = nucls
    shards = sorted(glob.glob(str(staged / "**" / "*.parquet"), recursive=True))
    images = [cell["bytes"] for path in shards for cell in pq.read_table(path, columns=["image"]).column("image").to_pylist()]
    assert len(images) == len(set(images)) == len(manifest["fovs"])


def test_masks_objects_and_classes_are_exact(nucls):
    staged, manifest = nucls
    ds = load_dataset(str(staged), "all", split="train")
    raw = ds.cast_column("image", Image(decode=False))
    features = ds.features["objects"].feature
    assert ds.features == NuCLS.features()
    assert [features[f].names for f in ("raw_classification", "main_classification", "super_classification")] == [
        list(RAW_CLASSES), MAIN_CLASSES, SUPER_CLASSES]
    assert "other_nucleus" in MAIN_CLASSES and "other_nucleus" in SUPER_CLASSES
    seen_raw, seen_types, covered, rgba = set(), set(), 0, 0
    for i, row in enumerate(ds):
        expected = manifest["fovs"][row["image_id"]]
        image = PILImage.open(io.BytesIO(raw[i]["image"]["bytes"]))
        rgba += image.mode == "RGBA"
        assert image.mode == ("RGBA" if expected["rgba"] else "RGB")  # bytes as published
        mask = np.asarray(row["instance_mask"])
        assert mask.shape == (image.height, image.width)
        assert np.array_equal(mask, expected["labels"])  # the instance partition, ids = CSV rows
        assert np.array_equal(np.asarray(row["roi_mask"]) == 255, expected["roi"])
        assert row["slide"] == expected["slide"] and row["hospital"] == expected["hospital"]
        assert len(row["objects"]) == len(expected["classes"])
        for k, (obj, classes) in enumerate(zip(row["objects"], expected["classes"]), start=1):
            names = tuple(features[f].int2str(obj[f]) for f in
                          ("raw_classification", "main_classification", "super_classification", "annotation_type"))
            assert obj["instance_id"] == k and names == classes
            seen_raw.add(names[0])
            seen_types.add(names[3])
            ys, xs = np.nonzero(mask == k)
            assert obj["area"] == len(xs)
            if len(xs):
                assert obj["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            else:  # completely painted over: kept, with its CSV box
                covered += 1
                assert obj["bbox"][2] > 0 and obj["bbox"][3] > 0
            (ring,) = obj["polygons"]
            polygon = np.array(ring).reshape(-1, 2)
            assert polygon.min() >= 0 and (polygon[:, 0] <= image.width).all() and (polygon[:, 1] <= image.height).all()
    assert seen_raw == set(RAW_CLASSES) and seen_types == {"polyline", "rectangle"}
    assert covered >= 1 and rgba == 1


def test_the_box_centre_pixel_would_pick_the_wrong_nucleus(nucls):
    """In the overlap quirk the big nucleus's box centre lies in the small one: matching by overlap is right."""
    staged, manifest = nucls
    ds = load_dataset(str(staged), "all", split="train")
    checked = 0
    for row in ds:
        mask = np.asarray(row["instance_mask"])
        for obj in row["objects"]:
            x, y, w, h = obj["bbox"]
            if obj["area"] and w > 20:  # the big overlapped nucleus
                centre = mask[int(y + h / 2), int(x + w / 2)]
                assert centre not in (0, obj["instance_id"])
                checked += 1
    assert checked >= 3


def test_mask_decoding_rules():
    mask = np.zeros((4, 5, 4), np.uint8)
    mask[..., 3] = 255  # alpha: ignored
    mask[:3, :4, :3] = (253, 1, 2)  # the FOV rectangle with its own id pair
    mask[0, 0, :3] = (1, 2, 128)  # 256: 0 in uint8
    mask[0, 1, :3] = (3, 3, 86)  # 258: the FOV's 2 in uint8
    mask[1, 1, :3] = (99, 20, 30)  # unlabeled nucleus, 600
    data = io.BytesIO()
    PILImage.fromarray(mask, "RGBA").save(data, format="PNG")
    ids, code = decode_mask(data.getvalue(), "m.png", (5, 6))  # image 2 px larger in each direction: padded
    assert ids.shape == (5, 6) and ids.dtype == np.int32
    assert ids[0, 0] == 256 and ids[0, 1] == 258 and ids[1, 1] == 600
    assert (ids[(code == 253) | (code == 0)] == 0).all() and ids[2, 2] == 0 and code[2, 2] == 253
    assert (code[3:, :] == 0).all() and (code[:, 4:] == 0).all()
    small, _ = decode_mask(data.getvalue(), "m.png", (2, 2))  # cropped, top-left aligned
    assert small.tolist() == [[256, 258], [0, 600]]


def test_csv_quirks_and_malformed_rows():
    header = ",raw_classification,main_classification,super_classification,type,xmin,ymin,xmax,ymax,coords_x,coords_y\n"
    good = header + '0,correction_tumor,tumor_nonMitotic,tumor_any,polyline,1,1,5.0,5,"1,5.0,,5,1","1,1,,5,1"\n'
    nuclei = read_nuclei(good.encode(), "f.csv")
    assert nuclei[0]["raw"] == "tumor" and nuclei[0]["points"].tolist() == [[1, 1], [5, 1], [5, 5]]  # closing point dropped
    for row, message in [
        ('0,tumour,tumor_nonMitotic,tumor_any,polyline,1,1,5,5,"1,5","1,5"', r"f.csv: line 2: unknown raw_classification 'tumour'"),
        ('0,tumor,tumor_nonMitotic,tumor_any,polygon,1,1,5,5,"1,5","1,5"', r"line 2: unknown type 'polygon'"),
        ('0,tumor,tumor_nonMitotic,tumor_any,polyline,1,x,5,5,"1,5","1,5"', r"line 2: ymin 'x' is not a number"),
        ('0,tumor,tumor_nonMitotic,tumor_any,polyline,1,1,5,5,"1,5,6","1,5"', r"line 2: 3 x but 2 y coordinates"),
        ('0,tumor,tumor_nonMitotic,tumor_any,polyline,1,1,5', r"line 2: 11 fields expected"),
    ]:
        with pytest.raises(BuildError, match=message):
            read_nuclei((header + row + "\n").encode(), "f.csv")
    with pytest.raises(BuildError, match=r"f.csv: missing column\(s\) coords_y"):
        read_nuclei(header.replace(",coords_y", "").encode(), "f.csv")


def test_a_mask_instance_without_csv_row_is_dropped_with_a_warning(caplog):
    ids = np.zeros((10, 10), np.int32)
    ids[1:4, 1:4] = 300
    ids[6:9, 6:9] = 500
    nucleus = {"points": np.array([(1, 1), (3, 1), (3, 3), (1, 3), (1, 1)], float), "box": [1, 1, 3, 3], "type": "rectangle"}
    with caplog.at_level(logging.WARNING, logger="builders"):
        labels = match_nuclei(ids, [nucleus], "m.png")
    assert labels.max() == 1 and (labels[6:9, 6:9] == 0).all() and "1 mask instance(s) overlap no CSV row" in caplog.text


def test_a_broken_fold_file_fails_with_a_clear_message(tmp_path):
    import zipfile

    manifest = fake.write_archives(tmp_path / "zips")
    with zipfile.ZipFile(manifest["archives"]["all"]) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    test_1 = "NuCLS_dataset/train_test_splits/fold_1_test.csv"
    train_1 = "NuCLS_dataset/train_test_splits/fold_1_train.csv"
    moved = members[test_1].decode().splitlines()[1]
    members[train_1] += (moved + "\n").encode()  # one slide in both train and test of fold 1
    write_zip(tmp_path / "up" / "NuCLS_dataset.zip", members)
    with pytest.raises(BuildError, match=r"fold 1: slides in both train and test: TCGA-A2-"):
        staging.build(NuCLS, out=tmp_path / "hub", data_dir=tmp_path / "up", verify=False)
    assert not (tmp_path / "hub" / "nucls").exists()


def test_official_counts_and_hospitals_are_verified(tmp_path, nucls):
    _, manifest = nucls
    with pytest.raises(BuildError, match=r"FOVs per hospital differ from the official counts: A1: 0 \(official 23\)"):
        staging.build(NuCLS, out=tmp_path / "hub", data_dir=manifest["archives"]["all"].parent, verify=True)


def test_a_config_subset_stores_only_its_parts(tmp_path, nucls):
    staged, manifest = nucls
    upstream = manifest["archives"]["all"].parent
    subset = staging.build(NuCLS, out=tmp_path / "hub", data_dir=upstream, configs=["fold_999"], verify=False)
    ds = load_dataset(str(subset), "fold_999")
    assert {s: sorted(ds[s]["image_id"]) for s in ds} == manifest["folds"][999]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in glob.glob(str(subset / "data" / "*.parquet")))
    assert rows == len(manifest["folds"][999]["train"]) + len(manifest["folds"][999]["test"])


def test_core_columns_are_the_shared_schema(nucls):
    staged, _ = nucls
    ds = load_dataset(str(staged), "fold_1", split="test")
    assert [ds.features[name] for name in schema.CORE_COLUMNS if name != "objects"] == [
        schema.CORE_FEATURES[name] for name in schema.CORE_COLUMNS if name != "objects"]
    assert core_view(ds).features == schema.CORE_FEATURES
    assert core_view(ds)[0]["objects"][0]["bbox"] == ds[0]["objects"][0]["bbox"]


def test_fold_files_tolerate_blank_lines_and_need_a_slide_name_column():
    assert read_fold(b",slide_name,hospital,type,fold\r\n0,TCGA-A1-X,A1,train,1\r\n\r\n", "f") == {"TCGA-A1-X"}
    with pytest.raises(BuildError, match="f: no header with a slide_name column"):
        read_fold(b"0,TCGA-A1-X,A1,train,1\n", "f")


def test_fold_checks_name_the_fold_and_the_slide():
    slides = [f"TCGA-{h}-A00{i}-DX1" for i, h in enumerate(("A2", "E2", "D8", "EW", "GM"))]
    fovs = [f"{slide}_id-{i}" for i, slide in enumerate(slides)]

    def folds(debug_test):
        table = {k: {"test": {slides[k - 1]}, "train": set(slides) - {slides[k - 1]}} for k in (1, 2, 3, 4, 5)}
        table[999] = {"train": {slides[0]}, "test": debug_test}
        return table

    parts, layout = fold_layout(fovs, folds({slides[1]}), "splits")
    assert sorted(len(members) for members in parts.values()) == [1] * 5  # every FOV has its own membership
    assert [fov for part in layout["fold_999"]["train"] for fov in parts[part]] == [fovs[0]]
    assert [fov for part in layout["fold_999"]["test"] for fov in parts[part]] == [fovs[1]]
    assert sorted(layout["all"]["train"]) == sorted(parts)
    with pytest.raises(BuildError, match="splits: fold 999 test: none of its slides has a FOV"):
        fold_layout(fovs, folds({"TCGA-XX-0000-DX1"}), "splits")
    broken = folds({slides[1]})
    broken[2]["test"] = {slides[0], slides[1]}
    broken[2]["train"] -= {slides[0]}
    with pytest.raises(BuildError, match=r"FOV TCGA-A2-A000-DX1_id-0 \(slide TCGA-A2-A000-DX1\) is in the test set of 2"):
        fold_layout(fovs, broken, "splits")
    broken = folds({slides[1]})
    broken[3]["train"] -= {slides[0]}
    with pytest.raises(BuildError, match=r"slide TCGA-A2-A000-DX1\) is in neither train nor test of fold 3"):
        fold_layout(fovs, broken, "splits")


def test_a_covered_nucleus_keeps_its_csv_box_clipped_to_the_image():
    labels = np.zeros((10, 10), np.uint16)
    nucleus = {"raw": "tumor", "main": "tumor_nonMitotic", "super": "tumor_any", "type": "rectangle",
               "box": [-3.0, 6.0, 2.0, 12.0], "points": None}
    (obj,) = objects_of(labels, [nucleus])
    assert obj["area"] == 0 and obj["bbox"] == [0.0, 6.0, 3.0, 4.0]
    assert obj["polygons"] == [[0.0, 6.0, 3.0, 6.0, 3.0, 10.0, 0.0, 10.0]]  # the box's edges, clipped


def test_a_csv_outline_that_disagrees_with_the_mask_is_replaced_by_the_traced_mask():
    from builders.masks import outline_iou

    labels = np.zeros((30, 30), np.uint16)
    labels[5:15, 5:15] = 1  # nucleus 1: a 10 x 10 block, its CSV outline on it
    labels[18:28, 10:20] = 2  # nucleus 2: its CSV outline 6 px to the right (a FOV-edge defect)
    square = lambda x0, y0: np.array([(x0, y0), (x0 + 9, y0), (x0 + 9, y0 + 9), (x0, y0 + 9)], dtype=np.float64)
    nuclei = [{"raw": "tumor", "main": "tumor_nonMitotic", "super": "tumor_any", "type": "polyline",
               "box": [x, y, x + 9, y + 9], "points": square(x, y)} for x, y in ((5, 5), (16, 18))]
    kept, traced = objects_of(labels, nuclei)
    assert kept["polygons"] == [[5.5, 5.5, 14.5, 5.5, 14.5, 14.5, 5.5, 14.5]]  # the CSV outline, pixel centres
    assert traced["polygons"] != [(square(16, 18) + 0.5).ravel().tolist()]
    assert outline_iou(labels, 2, traced["polygons"], traced["bbox"]) == 1.0
    assert len(traced["polygons"]) == 1 and traced["bbox"] == [10.0, 18.0, 10.0, 10.0]
