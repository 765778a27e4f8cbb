"""The shared masks/geometry module on its own."""

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from skimage import draw, measure

from builders import masks
from builders.errors import BuildError


def ellipse_labels(shape=(64, 80), seed=0):
    """Non-overlapping ellipses (one is a single pixel), as a label image with ids in raster order."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.uint16)
    k = 0
    for cy in range(8, shape[0] - 8, 16):
        for cx in range(8, shape[1] - 8, 16):
            k += 1
            rr, cc = draw.ellipse(cy, cx, rng.uniform(2, 7), rng.uniform(2, 7), shape=shape)
            labels[rr, cc] = k
    labels[shape[0] - 2, shape[1] - 2] = k + 1  # a one-pixel object
    return masks.relabel_sequential(labels)


def test_colours_differing_in_one_channel_and_touching_objects_stay_separate():
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[1:3, 1:3] = (1, 0, 0)
    rgb[1:3, 3:5] = (0, 0, 1)  # touches the first object, same channel sum
    rgb[4, 1:7] = (0, 1, 0)
    labels = masks.labels_from_colours(rgb)
    assert labels.dtype == np.uint16
    assert labels[1, 1] == 1 and labels[1, 3] == 2 and labels[4, 1] == 3  # raster order of first pixel
    assert (labels == 0).sum() == (rgb.sum(axis=2) == 0).sum()
    assert np.unique(labels).tolist() == [0, 1, 2, 3]


def test_colour_partition_equals_label_partition_on_random_colours():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    palette[0] = 0
    rgb = palette[rng.integers(0, 40, (50, 50))]
    labels = masks.labels_from_colours(rgb)
    keys = rgb[..., 0].astype(np.int64) * 65536 + rgb[..., 1].astype(np.int64) * 256 + rgb[..., 2]
    pairs = set(zip(keys.ravel().tolist(), labels.ravel().tolist()))
    assert len(pairs) == len(np.unique(keys)) == len(np.unique(labels))  # a bijection, pixel for pixel
    assert all((key == 0) == (label == 0) for key, label in pairs)


def test_alpha_channel_is_ignored_and_non_rgb_rejected():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[0, 0] = (9, 9, 9, 255)
    rgba[..., 3] = 255
    assert masks.labels_from_colours(rgba).max() == 1
    with pytest.raises(BuildError, match="ann.png"):
        masks.labels_from_colours(np.zeros((4, 4), dtype=np.uint8), "ann.png")


def test_objects_match_the_mask_exactly():
    labels = ellipse_labels()
    objects = masks.objects_from_labels(labels)
    assert [o["instance_id"] for o in objects] == list(range(1, labels.max() + 1))
    for obj in objects:
        ys, xs = np.nonzero(labels == obj["instance_id"])
        assert obj["area"] == len(xs)
        assert obj["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_polygon_separates_object_pixels_from_all_others():
    labels = ellipse_labels(seed=3)
    for obj in masks.objects_from_labels(labels):
        polygon = np.array(obj["polygon"])
        assert len(polygon) >= 4
        x, y, w, h = obj["bbox"]
        assert polygon[:, 0].min() >= x and polygon[:, 0].max() <= x + w
        assert polygon[:, 1].min() >= y and polygon[:, 1].max() <= y + h
        # pixel (r, c) has its centre at (c + 0.5, r + 0.5) in the COCO frame
        rows, cols = np.mgrid[int(y) - 2:int(y + h) + 2, int(x) - 2:int(x + w) + 2]
        centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
        inside = measure.points_in_poly(centres, polygon)
        valid = (rows.ravel() >= 0) & (cols.ravel() >= 0) & (rows.ravel() < labels.shape[0]) & (cols.ravel() < labels.shape[1])
        truth = np.zeros(len(centres), dtype=bool)
        truth[valid] = labels[rows.ravel()[valid], cols.ravel()[valid]] == obj["instance_id"]
        assert (inside == truth).all()


def test_polygon_of_an_object_with_a_ragged_hole_is_its_outer_boundary():
    labels = np.zeros((42, 42), dtype=np.uint16)
    labels[1:39, 1:39] = 1
    labels[5:35, 5:35] = 0  # a large hole with a comb-shaped edge: its contour has more points than the outer one
    labels[5:35:2, 5:9] = 1
    (obj,) = masks.objects_from_labels(labels)
    polygon = np.array(obj["polygon"])
    assert polygon[:, 0].min() == 1.0 and polygon[:, 0].max() == 39.0
    assert polygon[:, 1].min() == 1.0 and polygon[:, 1].max() == 39.0
    assert obj["area"] == (labels == 1).sum()


def test_polygon_of_a_split_object_outlines_its_largest_part():
    labels = np.zeros((20, 20), dtype=np.uint16)
    labels[2:4, 2:4] = 1  # 4 px
    labels[4:12, 4:12] = 1  # 64 px, touching the first part only diagonally
    (obj,) = masks.objects_from_labels(labels)
    polygon = np.array(obj["polygon"])
    assert obj["bbox"] == [2.0, 2.0, 10.0, 10.0] and obj["area"] == 68
    assert polygon[:, 0].min() == 4.0 and polygon[:, 0].max() == 12.0


def test_non_contiguous_ids_are_refused():
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[0, 0], labels[2, 2] = 1, 3
    with pytest.raises(ValueError, match="label 2"):
        masks.objects_from_labels(labels)
    assert masks.relabel_sequential(labels).max() == 2


def test_png16_round_trips_exactly_as_a_16_bit_png():
    labels = np.zeros((5, 7), dtype=np.uint16)
    labels[1, 2], labels[4, 6], labels[0, 0] = 1, 65000, 300
    data = masks.png16(labels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = PILImage.open(io.BytesIO(data))
    assert image.mode == "I;16" and image.format == "PNG"
    assert np.array_equal(np.asarray(image), labels)


def test_preview_is_a_small_rgb_jpeg_with_coloured_outlines():
    labels = ellipse_labels(shape=(64, 80))
    image = PILImage.fromarray(np.full(labels.shape, 40, dtype=np.uint8))
    data = masks.preview_jpeg(image, labels)
    preview = PILImage.open(io.BytesIO(data))
    assert preview.format == "JPEG" and preview.mode == "RGB" and preview.size == (80, 64)
    pixels = np.asarray(preview).astype(int)
    outline = labels > 0
    assert np.abs(pixels[outline] - pixels[outline][:, :1]).max() > 60  # coloured, not grey
    big = PILImage.fromarray(np.zeros((1200, 1600), dtype=np.uint16) + 700)
    small = PILImage.open(io.BytesIO(masks.preview_jpeg(big, np.zeros((1200, 1600), dtype=np.uint16))))
    assert small.size == (512, 384) and small.mode == "RGB"


def test_truncated_image_raises_an_error_naming_the_file():
    buffer = io.BytesIO()
    PILImage.fromarray(np.arange(4096, dtype=np.uint8).reshape(64, 64)).save(buffer, format="PNG")
    with pytest.raises(BuildError, match=r"x/broken\.png: not a readable image"):
        masks.decode_image(buffer.getvalue()[:60], "x/broken.png")


def test_a_hole_open_only_at_a_corner_is_filled_before_tracing():
    # The hole (2, 2) touches the outside only diagonally, through (3, 3): marching squares would trace
    # into it; as a 4-connected hole it is filled first, so the outline is that of the filled object.
    crop = np.array([[0, 0, 0, 0, 0],
                     [0, 1, 1, 1, 0],
                     [0, 1, 0, 1, 0],
                     [0, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0]], dtype=bool)
    filled = crop.copy()
    filled[2, 2] = True
    assert masks.trace_outline(crop) == masks.trace_outline(filled)
