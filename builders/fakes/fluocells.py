"""Fake Fluorescent Neuronal Cells archives: v1 `fluocells.zip` and v2 `green.zip`, `yellow.zip`, `red.zip`.

v1: `[<top>/]all_images/images/<name>.png` + `all_masks/masks/<name>.png` (same name) + README.md, with
the official 70 test names and 213 other names (16 of them the real `_o` names). Masks cycle through
grey, RGB and RGBA encodings; `naming="kaggle"` writes the `_o` files as `<name>.png.tiff` (TIFF bytes)
as a mirror does. v2: `<collection>/{trainval,test}/{images,ground_truths/{masks,COCO,rle,Pascal_VOC,
VIA},metadata}` and `<collection>/unlabelled/{images,metadata}`; 8-bit grey 0/255 masks; the authors'
COCO file (one annotation per image, parallel lists, no categories, dots in reverse order); green's
`trainval` has the orphan mask `128.png`; red images come in two sizes.

Every mask is drawn slot by slot (16 x 16 px each) so that its number of 8-connected components is
known by construction: a blob, two touching discs (one component), two squares touching at a corner
(one component), a crescent whose centroid lies outside it, a ring with a cell in its hole (two
components whose centroids are 1.4 px apart), and a blob with a grey rim (value 90, background) beside
a grey speck (value 100, background). The default sizes are the published counts.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ..fluocells import ARCHIVES, OFFICIAL_COUNTS, V1_TEST
from . import noise, png_bytes, write_zip

# The 20 real v1 names ending in `_o` (4 are in the official test list).
V1_O_NAMES = (
    "MAR38S1C3R1_DML_20_o.png", "MAR38S1C3R1_DMR_20_o.png", "MAR38S1C3R1_LHR_20_o.png", "MAR39S2C2R2_DML_200x_o.png",
    "MAR39S2C2R2_DMR_200x_o.png", "MAR52S2C1R3_LHL_20_o.png", "MAR55S1C5R3_DMR_20_o.png", "MAR55S3C2R2_VLPAGL_20_o.png",
    "MAR55S3C2R2_VLPAGR_20_o.png", "Mar37S1C2R1_DMl_200x_o.png", "Mar37S1C2R1_DMr_200x_o.png",
    "Mar40S1C2R2_DMl_200x_o.png", "Mar40S1C2R2_DMr_200x_o.png", "Mar40S3C4R2_VLPAGr_200x_o.png",
    "Mar41S3C1R1_DMl_200x_o.png", "Mar41S3C1R1_DMr_200x_o.png", "Mar41S3C3R3_VLPAGl_200x_o.png",
    "Mar42S2C2R2_DMr_200x_o.png", "Mar42S2C4R2_VLPAGr_200x_o.png", "Mar43S1C5R3_DMr_200x_o.png",
)
# Published sizes, from the builder's official counts: v1 (train, test) and empty masks; v2 (trainval images, test,
# unlabelled). Only the sum of green's and of yellow's trainval and test is published: these test sizes are ours.
V2_TEST = {"green": 71, "yellow": 70}


def _published() -> dict:
    sizes = {"v1": tuple(OFFICIAL_COUNTS["v1"].splits[split][0] for split in ("train", "test"))}
    for collection in ("green", "yellow", "red"):
        splits = {key: images for key, (images, _) in OFFICIAL_COUNTS[f"v2_{collection}"].splits.items()}
        test = splits.get("test", V2_TEST.get(collection))
        sizes[collection] = (splits.get("train", splits.get("train+test", 0) - test), test, splits["unlabelled"])
    return sizes


PUBLISHED = _published()
V1_EMPTY = OFFICIAL_COUNTS["v1"].empty
DEMO_OPTIONS = {"sizes": {"v1": (6, 4), "green": (5, 2, 2), "yellow": (4, 2, 2), "red": (4, 2, 2)}}
# The smallest archives with every quirk, for the generic tests (the default ones carry the published counts).
SMALL_OPTIONS = {"sizes": {"v1": (3, 2), "green": (2, 1, 1), "yellow": (2, 1, 1), "red": (2, 1, 1)}}
OFFICIAL = True  # the default archives hold the official counts: a build of them is verified
FIRST_IMAGE = ("fluocells.zip", r"all_images/.*\.png$")  # the archive read first, and an image member of it
SIZES = {"v1": [(64, 48)], "green": [(64, 48)], "yellow": [(64, 48)], "red": [(64, 48), (91, 68)]}  # (w, h)
ORPHAN = "128"  # green/trainval mask without image
SLOT = 16
KINDS = ("blob", "touching", "diagonal", "crescent", "ring", "grey")


def _shape(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """(values 0-255, pixels of each 8-connected component) of one 12 x 12 slot content."""
    yy, xx = np.mgrid[0:12, 0:12]
    values = np.zeros((12, 12), dtype=np.uint8)
    if kind == "blob":
        ry, rx = rng.uniform(2.5, 5.5, 2)
        values[((yy - 5.5) / ry) ** 2 + ((xx - 5.5) / rx) ** 2 <= 1] = 255
    elif kind == "touching":  # two discs sharing an edge: one component, as in the real masks
        values[((yy - 5.5) ** 2 + (xx - 3) ** 2 <= 7) | ((yy - 5.5) ** 2 + (xx - 8) ** 2 <= 7)] = 255
    elif kind == "diagonal":  # two squares meeting at one corner: one component under 8-connectivity
        values[2:6, 2:6] = values[6:10, 6:10] = 255
    elif kind == "crescent":  # centroid in the hollow, outside the object
        radius = np.hypot(yy - 5.5, xx - 5.5)
        values[(radius >= 3.5) & (radius <= 5.5) & (xx >= 4)] = 255
    elif kind == "ring":  # a ring cell and a cell in its hole: their centroids are 1.4 px apart
        values[:, :] = 255
        values[2:10, 2:10] = 0
        values[6:8, 6:8] = 255
        ring = values > 127
        ring[6:8, 6:8] = False
        return values, [ring, (yy >= 6) & (yy < 8) & (xx >= 6) & (xx < 8)]
    else:  # grey: a blob with a lossy rim (90) and a separate grey speck (100), both background after > 127
        values[((yy - 5) ** 2 + (xx - 5) ** 2) <= 9] = 200
        values[(((yy - 5) ** 2 + (xx - 5) ** 2) > 9) & (((yy - 5) ** 2 + (xx - 5) ** 2) <= 14)] = 90
        values[10:12, 10:12] = 100
    return values, [values > 127]


def mask_for(rng: np.random.Generator, size: tuple[int, int], empty: bool, slot: int = SLOT) -> tuple[np.ndarray, list]:
    """A grey 0-255 mask of `size` (w, h) and the truncated centroid `[x, y]` of each of its components,
    one shape in some of its `slot` x `slot` squares."""
    width, height = size
    values = np.zeros((height, width), dtype=np.uint8)
    dots = []
    if empty:
        return values, dots
    slots = [(r, c) for r in range(height // slot) for c in range(width // slot)]
    chosen = rng.permutation(len(slots))[: int(rng.integers(1, len(slots) + 1))]
    for n, index in enumerate(sorted(chosen)):
        r, c = slots[index]
        kind = KINDS[n % len(KINDS)] if n < len(KINDS) else "blob"
        content, parts = _shape(kind, rng)
        y0, x0 = r * slot + 2, c * slot + 2
        values[y0:y0 + 12, x0:x0 + 12] = content
        for pixels in parts:
            rows, cols = np.nonzero(pixels)
            dots.append([int(x0 + cols.mean()), int(y0 + rows.mean())])
    return values, dots


def image_for(binary: np.ndarray, rng: np.random.Generator, grain: int = 1) -> np.ndarray:
    """An RGB 'fluorescence' image: dark noisy background, yellowish cells; noise in `grain`-px squares
    (2 gives PNGs of the real images' size, about 1.4 MB at 1600x1200)."""
    signal = np.where(binary, 170, 25)[..., None] * np.array([1.0, 0.9, 0.3])
    return np.clip(signal + noise(rng, *binary.shape, 8, grain), 0, 255).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _mask_bytes(values: np.ndarray, encoding: str, fmt: str = "PNG") -> bytes:
    if encoding == "RGB":
        values = np.repeat(values[..., None], 3, axis=2)
    elif encoding == "RGBA":
        values = np.dstack([values, values, values, np.full_like(values, 255)])
    return _encode(values, fmt)


def v1_names(train: int, test: int) -> dict[str, list[str]]:
    """The official test names and other (train) names: the real `_o` names first, then made-up `_y` names."""
    other = [n for n in V1_O_NAMES if n not in V1_TEST]
    other += [f"Fake{i // 20:02d}S1C{i % 20}R1_LHl_200x_y.png" for i in range(max(0, train - len(other)))]
    return {"train": other[:train], "test": sorted(V1_TEST)[:test]}


def write_v1(out_dir, train: int, test: int, seed: int = 0, top: str | None = None, naming: str = "png",
             size: tuple[int, int] | None = None, slot: int = SLOT, grain: int = 1) -> dict:
    """`fluocells.zip` of images of `size` (w, h; the published 1600x1200 in benchmarks), with a shape in
    some of the mask's `slot`-px squares and image noise in `grain`-px squares; returns {split: {id: objects}}
    and the ids with empty masks."""
    rng = np.random.default_rng(seed)
    prefix = f"{top}/" if top else ""
    members = {f"{prefix}README.md": b"Fluorescent Neuronal Cells (fake archive for tests).\n"}
    objects, empty = {}, set()
    encodings = ("L", "RGB", "RGBA")
    n = 0
    for split, names in v1_names(train, test).items():
        objects[split] = {}
        empties = V1_EMPTY[split] if (train, test) == PUBLISHED["v1"] else max(1, len(names) // 6)
        for i, name in enumerate(names):
            stem = name[:-4]
            values, dots = mask_for(rng, size or SIZES["v1"][0], empty=i < empties, slot=slot)
            tiff = naming == "kaggle" and stem.endswith("_o")
            filename, fmt = (name + ".tiff", "TIFF") if tiff else (name, "PNG")
            members[f"{prefix}all_images/images/{filename}"] = _encode(image_for(values > 127, rng, grain), fmt)
            members[f"{prefix}all_masks/masks/{filename}"] = _mask_bytes(values, encodings[n % 3], fmt)
            objects[split][stem] = len(dots)
            if not dots:
                empty.add(stem)
            n += 1
    path = write_zip(Path(out_dir) / ARCHIVES["v1"].name, members)
    return {"archive": path, "objects": objects, "empty": empty}


def _coco(collection: str, folder: str, entries: list) -> bytes:
    """The authors' non-standard COCO file: one annotation per image with parallel lists, no categories."""
    images, annotations = [], []
    for stem, (width, height), dots, boxes in entries:
        images.append({"id": stem, "width": width, "height": height, "file_name": f"{stem}.png", "split": folder,
                       "path": f"{collection}/{folder}/images/{stem}.png", "license": 1})
        annotations.append({
            "image_id": stem, "category_id": {"green": 1, "yellow": 2, "red": 3}[collection],
            "segmentation": [[[x, y], [x + w, y], [x + w, y + h], [x, y + h]] for x, y, w, h in boxes],
            "bbox": boxes, "area": [w * h for _, _, w, h in boxes], "dots": dots[::-1],  # contour order: reversed
            "count": len(dots), "iscrowd": 0, "segmentation_type": "polygon",
        })
    coco = {"info": {"description": "Fluorescent Neuronal Cells", "version": "1.6"}, "images": images,
            "annotations": annotations,
            "licenses": [{"id": 1, "name": "CC-BY-SA 4.0", "url": "https://creativecommons.org/licenses/by-sa/4.0/"}]}
    return json.dumps(coco).encode()


def write_v2(out_dir, collection: str, trainval: int, test: int, unlabelled: int, seed: int = 0) -> dict:
    """`<collection>.zip`; returns {split: {stem: objects or None}} and {stem: dots}."""
    rng = np.random.default_rng([seed, len(collection)])
    members, objects, all_dots = {}, {}, {}
    numbers = iter(n for n in range(1, 10_000) if not (collection == "green" and str(n) == ORPHAN))
    sizes = SIZES[collection]
    n = 0
    for folder, split, count in (("trainval", "train", trainval), ("test", "test", test),
                                 ("unlabelled", "unlabelled", unlabelled)):
        base = f"{collection}/{folder}"
        objects[split], entries = {}, []
        stems = [str(next(numbers)) for _ in range(count)]
        orphan = collection == "green" and folder == "trainval"
        for stem in stems + ([ORPHAN] if orphan else []):
            size = sizes[n % len(sizes)]
            n += 1
            values, dots = mask_for(rng, size, empty=split == "test" and stem == stems[0])
            binary = np.where(values > 127, 255, 0).astype(np.uint8)  # v2 masks are clean 0/255 grey PNGs
            if stem != ORPHAN or not orphan:
                members[f"{base}/images/{stem}.png"] = png_bytes(image_for(binary > 0, rng))
                members[f"{base}/metadata/{stem}.txt"] = b"# metadata from pyexiv2.Image().read_exif()\nExif.Image.Make\tNIKON\n"
            if split == "unlabelled":
                objects[split][stem] = None
                continue
            members[f"{base}/ground_truths/masks/{stem}.png"] = png_bytes(binary)
            members[f"{base}/ground_truths/rle/{stem}.pickle"] = pickle.dumps({"size": [size[1], size[0]], "counts": b"0"})
            members[f"{base}/ground_truths/Pascal_VOC/{stem}.xml"] = f"<annotation><count>{len(dots)}</count></annotation>".encode()
            boxes = [[x - 2, y - 2, 5, 5] for x, y in dots]
            entries.append((stem, size, dots, boxes))
            if stem != ORPHAN or not orphan:
                objects[split][stem] = len(dots)
                all_dots[stem] = dots
        if split != "unlabelled":
            members[f"{base}/ground_truths/COCO/annotations_{collection}_{folder}.json"] = _coco(collection, folder, entries)
            members[f"{base}/ground_truths/VIA/annotations_{collection}_{folder}.json"] = b"{}"
    path = write_zip(Path(out_dir) / ARCHIVES[collection].name, members)
    return {"archive": path, "objects": objects, "dots": all_dots}


def write_archives(out_dir, sizes: dict | None = None, seed: int = 0, top: str | None = None,
                   naming: str = "png") -> dict:
    """All four archives into `out_dir` (published sizes by default); returns what each holds."""
    sizes = {**PUBLISHED, **(sizes or {})}
    result = {"v1": write_v1(out_dir, *sizes["v1"], seed=seed, top=top, naming=naming)}
    for collection in ("green", "yellow", "red"):
        result[collection] = write_v2(out_dir, collection, *sizes[collection], seed=seed)
    return result


def expected_counts(manifest: dict) -> dict:
    """{config: {split: (images, objects)}} that a build of `write_archives`' archives holds (v2 unlabelled
    images count no objects)."""
    return {("v1" if key == "v1" else f"v2_{key}"): {
        split: (len(objects), sum(n for n in objects.values() if n is not None))
        for split, objects in entry["objects"].items() if objects}
        for key, entry in manifest.items()}
