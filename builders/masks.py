"""Masks and geometry shared by every builder.

- decoding: `decode_image` (clear error for unreadable bytes), `labels_from_colours` (colour-coded
  RGB annotation -> uint16 label image);
- per-object records: `objects_from_labels` (`instance_id` 1..N, COCO `bbox`, `area`, `polygons`);
- encoding: `png16` (16-bit PNG bytes of a label image), `png8` (binary mask), `preview_jpeg`
  (image with coloured instance outlines, for the Hub viewer);
- geometry for sources that publish their own outlines: `pixel_boxes`, `polygon_pixels`.

Coordinates (every source, every field): pixel (row r, column c) covers the square [c, c+1] x [r, r+1],
as in COCO, so its centre is (c + 0.5, r + 0.5). A bbox is `[x_min, y_min, width, height]` of the pixels'
cover. `polygons` are COCO polygons: one flat ring `[x1, y1, x2, y2, ...]` per 4-connected part of the
object, traced through the pixel-edge midpoints of the part's outer boundary (holes filled: COCO
polygons cannot carry holes; the mask is the exact truth) and simplified (Douglas-Peucker, tolerance
`OUTLINE_TOLERANCE`). A pixel is inside a polygon when its centre is (`polygon_pixels`).
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
# px: Douglas-Peucker tolerance that drops the staircase vertices of traced outlines. 1.25 keeps the first 10 rows of
# NucleusSegData (about 80 large nuclei each) within the Hub viewer's 200 kB first-rows budget; 0.75 did not.
OUTLINE_TOLERANCE = 1.25
MIN_OUTLINE_IOU = 0.95  # a simplified outline must rasterise to at least this IoU with its part
# What every published outline guarantees (`upload.py check` enforces it): IoU >= this with its object's pixels,
# for objects of at least this many pixels.
OUTLINE_IOU_BOUND, OUTLINE_IOU_MIN_AREA = 0.9, 30
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


def require_image_size(labels: np.ndarray, image: PILImage.Image, name: str, what: str = "mask") -> np.ndarray:
    """`labels` if it has the image's size, else `BuildError` naming the file (`name`) and both sizes."""
    if labels.shape != (image.height, image.width):
        raise BuildError(f"{name}: {what} is {labels.shape[1]}x{labels.shape[0]} but its image is "
                         f"{image.width}x{image.height}")
    return labels


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


def fill_holes(binary: np.ndarray) -> np.ndarray:
    """The binary image with its holes filled (background not 4-connected to the border), as binary_fill_holes."""
    background, _ = ndimage.label(np.pad(~np.asarray(binary, dtype=bool), 1, constant_values=True))
    return (background != background[0, 0])[1:-1, 1:-1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed ring (the last point repeats the first; it is dropped from the result): the
    points kept are those farther than `tolerance` from the segment between the kept points around them.
    Plain Python: rings of tens of corners are faster so than through numpy calls."""
    points = ring.tolist()
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    limit = tolerance * tolerance
    stack = [(0, len(points) - 1)]
    while stack:
        start, end = stack.pop()
        (ar, ac), (br, bc) = points[start], points[end]
        dr, dc = br - ar, bc - ac
        length2 = dr * dr + dc * dc
        farthest, where = limit, -1
        for i in range(start + 1, end):
            pr, pc = points[i][0] - ar, points[i][1] - ac
            t = min(1.0, max(0.0, (pr * dr + pc * dc) / length2)) if length2 else 0.0
            er, ec = pr - t * dr, pc - t * dc
            if er * er + ec * ec > farthest:
                farthest, where = er * er + ec * ec, i
        if where >= 0:
            keep[where] = True
            stack += [(where, end), (start, where)]
    return ring[np.flatnonzero(keep[:-1])]


def _outline(part: np.ndarray) -> np.ndarray:
    """Compact outer boundary (row, col), in the crop's pixel-index frame, of one 4-connected part, holes filled.

    Douglas-Peucker with `OUTLINE_TOLERANCE`; where that would rasterise to less than `MIN_OUTLINE_IOU` of the
    part, the tolerance is halved, then only collinear points are dropped (lossless)."""
    contours = measure.find_contours(np.pad(part, 1).astype(np.uint8), 0.5)
    ring = max(contours, key=_enclosed_area) - 1  # closed: the last point repeats the first
    corners = _drop_collinear(ring[:-1])  # lossless; Douglas-Peucker keeps the same points from fewer
    closed = np.concatenate([corners, corners[:1]])
    for tolerance in (OUTLINE_TOLERANCE, OUTLINE_TOLERANCE / 2):
        simple = _simplify(closed, tolerance)
        if len(simple) >= 3:
            inside = np.zeros(part.shape, dtype=bool)
            inside[polygon_pixels(simple[:, ::-1], part.shape)] = True
            if iou(inside, part) >= MIN_OUTLINE_IOU:
                return simple
    return corners


def outline_polygons(binary: np.ndarray, x0: int = 0, y0: int = 0) -> list[list[float]]:
    """COCO polygons of a binary crop whose top-left pixel is (x0, y0): one flat `[x1, y1, ...]` ring per
    4-connected part (in raster order of the parts' first pixels), holes filled, in the pixel-edge frame."""
    parts, count = ndimage.label(np.asarray(binary, dtype=bool))
    rings = []
    for k, (rows, cols) in enumerate(ndimage.find_objects(parts), start=1):
        ring = _outline(fill_holes(parts[rows, cols] == k))
        xy = np.stack([ring[:, 1] + (cols.start + x0 + 0.5), ring[:, 0] + (rows.start + y0 + 0.5)], axis=1)
        rings.append(xy.astype(np.float32).ravel().tolist())
    return rings


def outline_iou(labels: np.ndarray, k: int, rings: list, bbox: list) -> float:
    """IoU between the pixels inside the COCO `rings` of object k (centre rule, pixel-edge frame) and its pixels
    in `labels`, holes filled; pixels of other objects count for neither (NuCLS: nuclei painted over this one).
    `bbox`: the COCO box of object k's pixels (only the region it and the rings span is looked at)."""
    points = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings] or [np.zeros((0, 2))])
    if not len(points):
        return 0.0
    height, width = labels.shape
    bx, by, bw, bh = (int(v) for v in bbox)
    x0 = max(0, min(int(np.floor(points[:, 0].min())), bx))
    y0 = max(0, min(int(np.floor(points[:, 1].min())), by))
    x1 = min(width, max(int(np.ceil(points[:, 0].max())), bx + bw))
    y1 = min(height, max(int(np.ceil(points[:, 1].max())), by + bh))
    crop = labels[y0:y1, x0:x1]
    inside = np.zeros(crop.shape, dtype=bool)
    for ring in rings:
        inside[polygon_pixels(np.asarray(ring, dtype=np.float64).reshape(-1, 2) - (x0, y0), crop.shape, frame=0.5)] = True
    mine = crop == k
    others = (crop != 0) & ~mine
    return iou(inside & ~others, fill_holes(mine) & ~others)


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
                "polygons": outline_polygons(labels[box] == k, cols.start, rows.start),
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


def polygon_pixels(points: np.ndarray, shape: tuple[int, int], frame: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels of an image of `shape` whose centres lie inside a polygon of `[x, y]`
    points or on its boundary (a flat COCO ring is accepted; even-odd rule), as `skimage.draw.polygon` gives
    them. `frame`: the coordinate of a pixel's centre within it: 0 for pixel indices, 0.5 for the pixel-edge
    frame of `polygons`."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2) - frame
    height, width = shape
    if len(points) < 3:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    first = max(0, int(np.ceil(points[:, 1].min())))
    last = min(height - 1, int(np.floor(points[:, 1].max())))
    inside = np.zeros((max(0, last - first + 1), width), dtype=bool)
    xa, ya = points[:, 0], points[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    y = np.arange(first, last + 1, dtype=np.float64)[:, None]
    low, high = np.minimum(ya, yb), np.maximum(ya, yb)
    # Interior by scanline: an edge crosses the row of centres y when low <= y < high; a centre is inside when
    # an odd number of crossings lie strictly to its right, i.e. crossing x toggles columns 0 .. ceil(x) - 1.
    row, edge = np.nonzero((low <= y) & (y < high))
    x = xa[edge] + (y[row, 0] - ya[edge]) * (xb[edge] - xa[edge]) / (yb[edge] - ya[edge])
    toggles = np.zeros((len(y), width + 1), dtype=np.int32)
    np.add.at(toggles, (row, np.zeros_like(row)), 1)
    np.add.at(toggles, (row, np.clip(np.ceil(x), 0, width).astype(np.intp)), -1)
    inside |= (np.cumsum(toggles[:, :width], axis=1) & 1).astype(bool)
    # Boundary: centres on a sloped edge, then on a horizontal one.
    row, edge = np.nonzero((low <= y) & (y <= high) & (ya != yb))
    x = xa[edge] + (y[row, 0] - ya[edge]) * (xb[edge] - xa[edge]) / (yb[edge] - ya[edge])
    on = (np.abs(x - np.round(x)) < 1e-9) & (np.round(x) >= 0) & (np.round(x) < width)
    inside[row[on], np.round(x[on]).astype(np.intp)] = True
    for k in np.flatnonzero((ya == yb) & (ya == np.round(ya)) & (ya >= first) & (ya <= last)):
        inside[int(ya[k]) - first, max(0, int(np.ceil(min(xa[k], xb[k])))) : max(0, int(np.floor(max(xa[k], xb[k]))) + 1)] = True
    rows, cols = np.nonzero(inside)
    return rows + first, cols


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


def outlined_rgb(image: PILImage.Image, labels: np.ndarray | None, size: tuple[int, int],
                 colours: np.ndarray | None = None) -> np.ndarray:
    """The image as 8-bit RGB resized to `size` (width, height), with each object's outline drawn in its colour:
    `colours[id]` (uint8 RGB per id), or by default `PALETTE[id % len(PALETTE)]`."""
    width, height = image.size
    if image.mode in ("L", "RGB", "RGBA"):  # 8-bit: resize first (box reduce when shrinking), then to RGB
        small = image.resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0) if size != image.size else image
        rgb = np.asarray(small.convert("RGB"))
    else:
        rgb = display_rgb(image)
        if size != image.size:
            rgb = np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR))
    if labels is None:
        return rgb
    # Nearest-neighbour sampling of the labels at the output's pixel centres.
    rows = np.minimum(((np.arange(size[1]) + 0.5) * height / size[1]).astype(np.intp), height - 1)
    cols = np.minimum(((np.arange(size[0]) + 0.5) * width / size[0]).astype(np.intp), width - 1)
    small = np.asarray(labels)[np.ix_(rows, cols)].astype(np.int64)
    edge = np.zeros(small.shape, dtype=bool)
    edge[1:, :] |= small[1:, :] != small[:-1, :]
    edge[:-1, :] |= small[:-1, :] != small[1:, :]
    edge[:, 1:] |= small[:, 1:] != small[:, :-1]
    edge[:, :-1] |= small[:, :-1] != small[:, 1:]
    edge &= small > 0
    rgb = rgb.copy()
    rgb[edge] = PALETTE[small[edge] % len(PALETTE)] if colours is None else colours[small[edge]]
    return rgb


def preview_jpeg(image: PILImage.Image, labels: np.ndarray | None, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """RGB JPEG of the image, at most `max_side` px (never larger than the image), with coloured outlines."""
    width, height = image.size
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    buffer = io.BytesIO()
    PILImage.fromarray(outlined_rgb(image, labels, size)).save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()
