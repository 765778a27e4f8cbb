"""Aitslab-bioimaging1 on the real upstream files in ../shared/samples/aitslab_bioimaging1."""

import io

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage
from skimage.measure import label as connected

from builders import masks
from builders.check import object_problems
from builders.aitslab_bioimaging1 import decode_annotation

EXPECTED_OBJECTS = {"train": 1283, "validation": 375, "test": 438}


@pytest.fixture(scope="module")
def aitslab(samples):
    return samples / "aitslab_bioimaging1"


def colour_keys(path):
    rgb = np.asarray(PILImage.open(path).convert("RGB")).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def check_objects(labels, stem):
    """Records of a real annotation: areas sum to the foreground, and `upload.py check`'s rules hold (ids,
    areas and boxes equal to the mask, outlines inside the image agreeing with the pixels)."""
    objects = masks.objects_from_labels(labels)
    assert sum(o["area"] for o in objects) == (labels > 0).sum(), stem
    assert object_problems(labels, objects) == [], stem


def test_all_50_annotations_give_the_published_object_counts(aitslab, aitslab_real):
    stems = aitslab_real[1]
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


def test_the_whole_real_dataset_builds_exactly_with_verification_on(aitslab, aitslab_real, aitslab_real_staged):
    """`upload.py build` of the 50 real images in the Zenodo layout: 30 / 10 / 10 images, 1283 / 375 / 438
    objects (the official counts, checked by the build itself), bytes as published, colour partitions kept."""
    stems = aitslab_real[1]
    for split, expected in EXPECTED_OBJECTS.items():
        ds = load_dataset(str(aitslab_real_staged), split=split)
        raw = ds.cast_column("image", Image(decode=False)).cast_column("instance_mask", Image(decode=False))
        assert sorted(ds["image_id"]) == sorted(stems[split])
        objects = 0
        for i, row in enumerate(ds):
            stem = row["image_id"]
            published = (aitslab / "images_normalized_prepublication" / f"{stem}.png").read_bytes()
            assert raw[i]["image"]["bytes"] == published  # stored exactly as published
            mask = np.asarray(PILImage.open(io.BytesIO(raw[i]["instance_mask"]["bytes"])))
            assert mask.dtype == np.uint16 and mask.shape == (1104, 1104)
            keys = colour_keys(aitslab / "annotations_prepublication" / f"{stem}.png")
            # the instance partition is the colour partition, pixel for pixel, black <-> 0
            pairs = np.unique((keys << 16) | mask.astype(np.int64))
            assert len(pairs) == len(np.unique(keys)) == mask.max() + 1, stem
            assert (((pairs >> 16) == 0) == ((pairs & 0xFFFF) == 0)).all(), stem
            assert [o["instance_id"] for o in row["objects"]] == list(range(1, mask.max() + 1))
            areas = np.bincount(mask.ravel(), minlength=mask.max() + 1)[1:]
            assert [o["area"] for o in row["objects"]] == areas.tolist()
            assert (row["plate"], row["well"]) == (stem[:22], stem[23:26]) and row["field"] == stem[26:29]
            objects += len(row["objects"])
        assert objects == expected, split
        preview = ds[0]["preview"]
        assert preview.format == "JPEG" and preview.mode == "RGB" and max(preview.size) <= 1104
