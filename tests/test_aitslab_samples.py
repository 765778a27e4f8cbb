"""Aitslab-bioimaging1 on the real upstream files in ../shared/samples/aitslab_bioimaging1."""

import io
import shutil

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage
from skimage.measure import label as connected

from builders import REGISTRY, masks, staging
from builders.aitslab_bioimaging1 import ARCHIVES, decode_annotation

SPLIT_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}
EXPECTED_OBJECTS = {"train": 1283, "validation": 375, "test": 438}
SAMPLE_IMAGES = {"MFGTMPcx7_170702000001_B14f07d0": ("train", 41),
                 "MFGTMPcx7_170702000001_B23f07d0": ("validation", 34),
                 "MFGTMPcx7_170702000001_G14f03d0": ("test", 21)}


@pytest.fixture(scope="module")
def aitslab(samples):
    return samples / "aitslab_bioimaging1"


def split_stems(aitslab):
    folder = aitslab / "splits_kreshuklab_model_ranking"
    return {split: (folder / name).read_text().split() for split, name in SPLIT_FILES.items()}


def colour_keys(path):
    rgb = np.asarray(PILImage.open(path).convert("RGB")).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def check_objects(labels, stem):
    """Records of a real annotation: areas sum to the foreground, bboxes and outer polygons agree."""
    objects = masks.objects_from_labels(labels)
    assert sum(o["area"] for o in objects) == (labels > 0).sum(), stem
    for obj in objects:
        x, y, w, h = obj["bbox"]
        polygon = np.array(obj["polygon"])
        # every Aitslab object is one 4-connected component without holes: its outline spans its bbox
        assert (polygon[:, 0].min(), polygon[:, 0].max()) == (x, x + w), (stem, obj["instance_id"])
        assert (polygon[:, 1].min(), polygon[:, 1].max()) == (y, y + h), (stem, obj["instance_id"])


def test_all_50_annotations_give_the_published_object_counts(aitslab):
    stems = split_stems(aitslab)
    assert sum(len(s) for s in stems.values()) == 50
    totals = {}
    for split, names in stems.items():
        total = 0
        for stem in names:
            path = aitslab / "annotations_prepublication" / f"{stem}.png"
            labels = decode_annotation(path.read_bytes(), str(path))
            keys = colour_keys(path)
            colours = len(np.unique(keys[keys != 0]))
            assert labels.max() == colours, stem  # one object per distinct non-black colour
            # the instance partition equals the colour partition, pixel for pixel
            pairs = np.unique((keys << 16) | labels.astype(np.int64))
            assert len(pairs) == colours + 1, stem  # a bijection colour <-> id ...
            assert (((pairs >> 16) == 0) == ((pairs & 0xFFFF) == 0)).all(), stem  # ... black <-> 0
            check_objects(labels, stem)
            total += colours
        totals[split] = total
    assert totals == EXPECTED_OBJECTS


def test_touching_objects_stay_separate(aitslab):
    path = aitslab / "annotations_prepublication" / "MFGTMPcx7_170702000001_B14f07d0.png"
    labels = decode_annotation(path.read_bytes(), str(path))
    a, b = labels[:, :-1], labels[:, 1:]
    touching = (a != b) & (a > 0) & (b > 0)
    assert touching.any()  # this image has objects that touch horizontally ...
    assert connected(labels > 0, connectivity=1).max() < labels.max()  # ... so binarising would merge them


@pytest.fixture(scope="module")
def real_build(aitslab, tmp_path_factory):
    """The three real images with their real annotations, in the Zenodo layout (extracted trees)."""
    upstream = tmp_path_factory.mktemp("aitslab-real")
    for stem, (split, _) in SAMPLE_IMAGES.items():
        top = upstream / ARCHIVES[split].folder
        (top / "images").mkdir(parents=True, exist_ok=True)
        (top / "annotations").mkdir(exist_ok=True)
        shutil.copy(aitslab / "images_normalized_prepublication" / f"{stem}.png", top / "images" / f"{stem}.png")
        shutil.copy(aitslab / "annotations_prepublication" / f"{stem}.png", top / "annotations" / f"{stem}_objects.png")
    out = tmp_path_factory.mktemp("aitslab-real-hub")
    return staging.build(REGISTRY["aitslab-bioimaging1"], out=out, data_dir=upstream, verify=False)


def test_real_images_build_exactly(aitslab, real_build):
    for stem, (split, count) in SAMPLE_IMAGES.items():
        ds = load_dataset(str(real_build), split=split)
        raw = ds.cast_column("image", Image(decode=False))
        assert len(ds) == 1 and ds[0]["image_id"] == stem
        published = (aitslab / "images_normalized_prepublication" / f"{stem}.png").read_bytes()
        assert raw[0]["image"]["bytes"] == published  # stored exactly as published
        row = ds[0]
        mask = np.asarray(row["instance_mask"])
        assert row["instance_mask"].mode == "I;16" and mask.shape == (1104, 1104)
        assert len(row["objects"]) == count == mask.max()
        keys = colour_keys(aitslab / "annotations_prepublication" / f"{stem}.png")
        for obj in row["objects"]:
            pixels = mask == obj["instance_id"]
            assert obj["area"] == pixels.sum() > 0
            assert len(np.unique(keys[pixels])) == 1 and (keys[pixels] != 0).all()
        assert (row["plate"], row["well"]) == (stem[:22], stem[23:26]) and row["field"] == stem[26:29]
        preview = PILImage.open(io.BytesIO(ds.cast_column("preview", Image(decode=False))[0]["preview"]["bytes"]))
        assert preview.format == "JPEG" and preview.mode == "RGB" and max(preview.size) <= 1104
