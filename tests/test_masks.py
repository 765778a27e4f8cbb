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


def centre_raster(polygons, shape) -> np.ndarray:
    """Pixels whose centre (c + 0.5, r + 0.5) lies inside any ring, by an independent point-in-polygon test."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    inside = np.zeros(len(centres), dtype=bool)
    for ring in polygons:
        inside |= measure.points_in_poly(centres, np.asarray(ring).reshape(-1, 2))
    return inside.reshape(shape)


def test_polygons_lie_in_the_bbox_and_rasterise_to_the_object():
    labels = ellipse_labels(seed=3)
    for obj in masks.objects_from_labels(labels):
        x, y, w, h = obj["bbox"]
        for ring in obj["polygons"]:
            points = np.asarray(ring).reshape(-1, 2)
            assert len(points) >= 3 and len(ring) % 2 == 0
            assert points[:, 0].min() >= x and points[:, 0].max() <= x + w
            assert points[:, 1].min() >= y and points[:, 1].max() <= y + h
        pixels = labels == obj["instance_id"]
        assert masks.iou(centre_raster(obj["polygons"], labels.shape), pixels) >= masks.MIN_OUTLINE_IOU
        assert masks.outline_iou(labels, obj["instance_id"], obj["polygons"], obj["bbox"]) >= masks.MIN_OUTLINE_IOU


def test_outlines_are_compact_and_lossless_only_where_simplifying_would_lose_pixels():
    yy, xx = np.mgrid[:80, :80]
    disc = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 15 ** 2).astype(np.uint16)  # a 709-pixel nucleus
    (ring,) = masks.objects_from_labels(disc)[0]["polygons"]
    lossless = masks._drop_collinear(measure.find_contours(np.pad(disc, 1), 0.5)[0][:-1])
    assert len(ring) // 2 <= 24 < len(lossless) // 2  # staircase vertices dropped: 84 -> at most 24
    assert masks.iou(centre_raster([ring], disc.shape), disc > 0) >= masks.MIN_OUTLINE_IOU
    tiny = np.zeros((6, 6), dtype=np.uint16)
    tiny[2:4, 2:4] = 1  # 4 pixels: any simplification of its octagon would drop pixels
    (ring,) = masks.objects_from_labels(tiny)[0]["polygons"]
    assert np.array_equal(centre_raster([ring], tiny.shape), tiny > 0)


def test_polygons_of_an_object_with_a_ragged_hole_are_its_outer_boundary():
    labels = np.zeros((42, 42), dtype=np.uint16)
    labels[1:39, 1:39] = 1
    labels[5:35, 5:35] = 0  # a large hole with a comb-shaped edge: its contour has more points than the outer one
    labels[5:35:2, 5:9] = 1
    (obj,) = masks.objects_from_labels(labels)
    (ring,) = obj["polygons"]
    polygon = np.asarray(ring).reshape(-1, 2)
    assert polygon[:, 0].min() == 1.0 and polygon[:, 0].max() == 39.0
    assert polygon[:, 1].min() == 1.0 and polygon[:, 1].max() == 39.0
    assert obj["area"] == (labels == 1).sum()
    assert np.array_equal(centre_raster(obj["polygons"], labels.shape), masks.fill_holes(labels == 1))


def test_two_blocks_touching_at_a_corner_get_one_polygon_each():
    labels = np.zeros((12, 12), dtype=np.uint16)
    labels[1:5, 1:5] = 1
    labels[5:9, 5:9] = 1  # one 8-connected object of two 4x4 parts (the old outline: IoU 0.50)
    (obj,) = masks.objects_from_labels(labels)
    assert len(obj["polygons"]) == 2 and obj["area"] == 32
    assert np.array_equal(centre_raster(obj["polygons"], labels.shape), labels == 1)  # IoU 1.0
    assert masks.outline_iou(labels, 1, obj["polygons"], obj["bbox"]) == 1.0


def test_a_ring_shaped_object_is_outlined_with_its_hole_filled_and_parts_apart_each_outlined():
    yy, xx = np.mgrid[:40, :40]
    radius = np.hypot(yy - 20, xx - 20)
    labels = ((radius <= 12) & (radius >= 7)).astype(np.uint16)  # a ring (the old outline: IoU 0.56)
    labels[(radius < 3)] = 2  # another cell in its hole
    labels[1:4, 30:38] = 1  # and a part of the ring's id apart from it
    ring_cell = masks.objects_from_labels(labels)[0]
    assert len(ring_cell["polygons"]) == 2
    covered = centre_raster(ring_cell["polygons"], labels.shape)
    assert masks.iou(covered, masks.fill_holes(labels == 1)) >= masks.MIN_OUTLINE_IOU  # the hole is not cut out
    assert covered[1:4, 30:38].mean() >= masks.MIN_OUTLINE_IOU  # the part apart has its own polygon
    assert masks.outline_iou(labels, 1, ring_cell["polygons"], ring_cell["bbox"]) >= masks.MIN_OUTLINE_IOU


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
    assert masks.outline_polygons(crop) == masks.outline_polygons(filled)


@pytest.mark.parametrize("grid", [None, 2, 1], ids=["float", "half-pixel", "integer"])
def test_polygon_pixels_agrees_with_skimage_draw_polygon_boundary_included(grid):
    """Our scanline fill (the outline check runs it once per object) gives skimage's pixels, boundary centres
    included, on simple polygons: generic, with half-pixel vertices (traced outlines) and integer ones (NuCLS)."""
    from builders.masks import polygon_pixels

    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(300):
        k = int(rng.integers(3, 14))
        angles, radii = np.sort(rng.uniform(0, 2 * np.pi, k)), rng.uniform(2, 12, k)
        points = np.stack([10 + radii * np.cos(angles), 9 + radii * np.sin(angles)], axis=1)
        if grid:
            points = np.round(points * grid) / grid
            turn = np.cross(points - np.roll(points, 1, axis=0), np.roll(points, -1, axis=0) - points)
            if not np.all(turn != 0):
                continue  # rounding made a spike or a flat corner, where the two rules may differ
        ours, theirs = np.zeros((18, 21), bool), np.zeros((18, 21), bool)
        ours[polygon_pixels(points, ours.shape)] = True
        theirs[draw.polygon(points[:, 1], points[:, 0], theirs.shape)] = True
        assert np.array_equal(ours, theirs), points.tolist()
        compared += int(theirs.sum())
    assert compared > 10000
    square = np.zeros((6, 6), bool)
    square[polygon_pixels([1, 1, 5, 1, 5, 4, 1, 4], square.shape, frame=0.5)] = True
    assert square[1:4, 1:5].all() and square.sum() == 12  # pixel-edge frame: the cover of columns 1-4, rows 1-3
