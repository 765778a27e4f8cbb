"""Masks and geometry shared by every builder.

- decoding: `decode_image` (clear error for unreadable bytes), `labels_from_colours` (colour-coded
  RGB annotation -> uint16 label image);
- per-object records: `objects_from_labels` (`instance_id` 1..N, COCO `bbox`, `area`, `polygon`);
- encoding: `png16` (16-bit PNG bytes of a label image), `png8` (binary mask), `preview_jpeg`
  (image with coloured instance outlines, for the Hub viewer);
- geometry for sources that publish their own outlines: `pixel_boxes`, `polygon_pixels`.

Coordinates: pixel (row r, column c) covers the square [c, c+1] x [r, r+1], as in COCO. A bbox is
`[x_min, y_min, width, height]` of that cover; polygons are traced through the pixel-edge
midpoints of the object's outer boundary, so they lie inside the bbox.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage
from skimage import measure

from .errors import BuildError

MAX_INSTANCES = 65535  # ids must fit a 16-bit PNG
PREVIEW_MAX_SIDE = 512
PREVIEW_QUALITY = 85
# Bright, mutually distinct outline colours; an object's colour is PALETTE[id % len(PALETTE)].
PALETTE = np.array(
    [
        (255, 64, 64), (64, 255, 64), (64, 160, 255), (255, 220, 0), (255, 64, 255), (0, 255, 255),
        (255, 140, 0), (170, 110, 255), (160, 255, 120), (255, 150, 190), (0, 200, 140), (255, 255, 160),
    ],
    dtype=np.uint8,
)


def decode_image(data: bytes, name: str) -> PILImage.Image:
    """Fully decode image bytes; unreadable or truncated data raises `BuildError` naming `name`."""
    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
        if image.format == "PNG":  # `load` stops after the pixel data: a file cut short after it passes, so
            PILImage.open(io.BytesIO(data)).verify()  # check every chunk's CRC up to IEND
    except Exception as exc:  # PIL raises several types (OSError, SyntaxError, ValueError, ...)
        raise BuildError(f"{name}: not a readable image ({exc})") from exc
    return image


def labels_from_colours(rgb: np.ndarray, name: str = "annotation") -> np.ndarray:
    """Colour-coded annotation (H, W, 3) -> uint16 label image; black is background.

    Every distinct non-black colour is one object: touching objects stay separate. Ids are given in
    raster order of each colour's first pixel, so they do not depend on the random colours.
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise BuildError(f"{name}: expected an RGB annotation, got an array of shape {rgb.shape}")
    rgb = rgb[..., :3].astype(np.uint32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return relabel_sequential(keys, name)


def _drop_collinear(points: np.ndarray) -> np.ndarray:
    """Remove points lying on the straight line between their neighbours (lossless)."""
    if len(points) <= 4:
        return points
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return points[cross != 0]


def _enclosed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 1], ring[:, 0]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def trace_outline(binary: np.ndarray, x0: int = 0, y0: int = 0) -> list[list[float]]:
    """Outer boundary `[[x, y], ...]` of the largest part of a binary crop whose corner is (x0, y0).

    Holes are filled first, so no hole's edge can be taken for the outline; of several parts (pixels
    joined only diagonally, or apart), the one enclosing the largest area is outlined.
    """
    background, _ = ndimage.label(np.pad(~np.asarray(binary, dtype=bool), 1, constant_values=True))  # 4-connected,
    padded = (background != background[0, 0]).astype(np.uint8)  # as binary_fill_holes: the object, holes filled
    contours = measure.find_contours(padded, 0.5)
    outline = max(contours, key=_enclosed_area)[:-1]  # closed: the last point repeats the first
    outline = _drop_collinear(outline)
    xy = np.stack([outline[:, 1] + (x0 - 0.5), outline[:, 0] + (y0 - 0.5)], axis=1)
    return xy.astype(np.float32).tolist()


def objects_from_labels(labels: np.ndarray) -> list[dict]:
    """Per-object core records for ids 1..labels.max(), in id order.

    Every id must have pixels (ids are contiguous); use `relabel_sequential` first otherwise.
    """
    labels = np.asarray(labels)
    count = int(labels.max(initial=0))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    records = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            raise ValueError(f"label {k} has no pixels; ids must be contiguous 1..{count}")
        rows, cols = box
        records.append(
            {
                "instance_id": k,
                "bbox": [float(cols.start), float(rows.start), float(cols.stop - cols.start), float(rows.stop - rows.start)],
                "area": int(areas[k]),
                "polygon": trace_outline(labels[box] == k, cols.start, rows.start),
            }
        )
    return records


def relabel_sequential(labels: np.ndarray, name: str = "mask") -> np.ndarray:
    """Renumber the non-zero values of an array to uint16 ids 1..N in raster order of first appearance."""
    values, first, inverse = np.unique(np.asarray(labels).ravel(), return_index=True, return_inverse=True)
    objects = values != 0
    if objects.sum() > MAX_INSTANCES:
        raise BuildError(f"{name}: {int(objects.sum())} objects, more than a 16-bit mask can hold")
    ids = np.zeros(len(values), dtype=np.uint16)
    order = np.argsort(first[objects], kind="stable")
    ids[np.flatnonzero(objects)[order]] = np.arange(1, len(order) + 1)
    return ids[inverse].reshape(np.shape(labels))


def png16(labels: np.ndarray) -> bytes:
    """16-bit greyscale PNG bytes (PIL mode `I;16`) of a label image; values are kept exactly."""
    if labels.max(initial=0) > MAX_INSTANCES:
        raise ValueError("label values exceed 65535")
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(labels, dtype=np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def png8(binary: np.ndarray) -> bytes:
    """8-bit greyscale PNG bytes (PIL mode `L`) of a binary mask: 255 where true, else 0."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.where(np.asarray(binary, dtype=bool), 255, 0).astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def pixel_boxes(labels: np.ndarray, count: int) -> list[tuple[list[float] | None, int]]:
    """`(bbox, area)` of ids 1..count of a label image; `(None, 0)` for an id without pixels."""
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    found = []
    for k, box in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        if box is None:
            found.append((None, 0))
            continue
        rows, cols = box
        found.append(([float(cols.start), float(rows.start), float(cols.stop - cols.start), float(rows.stop - rows.start)],
                      int(areas[k])))
    return found


def polygon_pixels(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels whose centres lie inside a polygon of `[x, y]` points."""
    from skimage.draw import polygon

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return polygon(points[:, 1], points[:, 0], shape)


def display_rgb(image: PILImage.Image) -> np.ndarray:
    """An 8-bit RGB array for display: 16-bit and float images are contrast-stretched (0.5-99.5 %)."""
    if image.mode in ("RGB", "L", "RGBA", "LA", "P", "1", "CMYK", "YCbCr"):  # 8-bit modes
        return np.asarray(image.convert("RGB"))
    values = np.asarray(image).astype(np.float64)
    if values.ndim == 3:
        values = values[..., :3]
    low, high = np.percentile(values, [0.5, 99.5])
    scaled = np.clip((values - low) / max(high - low, 1e-12), 0, 1) * 255
    grey = scaled.round().astype(np.uint8)
    return grey if grey.ndim == 3 else np.repeat(grey[..., None], 3, axis=2)


def preview_jpeg(image: PILImage.Image, labels: np.ndarray | None, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """RGB JPEG of the image, at most `max_side` px (never larger than the image), with coloured outlines."""
    width, height = image.size
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image.mode in ("L", "RGB", "RGBA"):  # 8-bit: shrink first (box reduce, then bilinear), then to RGB
        small = image.resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0) if scale < 1 else image
        rgb = np.asarray(small.convert("RGB"))
    else:
        rgb = display_rgb(image)
        if scale < 1:
            rgb = np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR))
    if labels is not None:
        # Nearest-neighbour sampling of the labels at the preview's pixel centres.
        rows = np.minimum(((np.arange(size[1]) + 0.5) * height / size[1]).astype(np.intp), height - 1)
        cols = np.minimum(((np.arange(size[0]) + 0.5) * width / size[0]).astype(np.intp), width - 1)
        small = np.asarray(labels)[np.ix_(rows, cols)]
        edge = np.zeros(small.shape, dtype=bool)
        edge[1:, :] |= small[1:, :] != small[:-1, :]
        edge[:-1, :] |= small[:-1, :] != small[1:, :]
        edge[:, 1:] |= small[:, 1:] != small[:, :-1]
        edge[:, :-1] |= small[:, :-1] != small[:, 1:]
        edge &= small > 0
        rgb = rgb.copy()
        rgb[edge] = PALETTE[small[edge].astype(np.int64) % len(PALETTE)]
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()
