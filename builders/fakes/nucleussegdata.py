"""Fake NucleusSegData lab zips: `<top>/{TrainingSet,HepG2TestSet,Huh7TestSet}/<prefix><N>.jpg` + text matrices.

Images are RGB JPEGs (the nuclear signal in the blue channel); annotations are plain-text id matrices
with LF endings, a trailing space on every line and no extension, named `<prefix>_ann<N>` as in the lab
zip, or `<stem>_gold` / `<stem>_ann`, optionally with `.txt`. By default each image holds exactly the
published number of nuclei, so the official counts verify: the ten training images carry the author's
per-image counts in a shuffled order (the real order is unknown). Ids are 1..N in shuffled order, so
they are not in raster order, and the first two nuclei of every image touch.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ..nucleussegdata import ARCHIVES
from . import write_zip

DEMO_OPTIONS = {}
# The smallest archives with every quirk, for the generic tests (the default ones carry the published counts).
SMALL_OPTIONS = {"size": (64, 48), "counts": {"original": {"train": [3, 5], "test_hepg2": [4], "test_huh7": [2]},
                                              "extended": {"train": [2], "test_hepg2": [1], "test_huh7": [3]}}}
OFFICIAL = True  # the default archives hold the official counts: a build of them is verified
FIRST_IMAGE = ("NucleusSegData.zip", r"\.jpg$")  # the archive read first, and an image member of it
PITCH = 8  # one nucleus per PITCH x PITCH cell

# Nuclei per image in the author's numbering (specs, NucleusSegData official counts).
TRAIN_HEPG2, TRAIN_HUH7 = [10, 30, 45, 37, 176], [27, 52, 146, 19, 243]
ORIGINAL = {
    "train": TRAIN_HEPG2 + TRAIN_HUH7,
    "test_hepg2": [7, 57, 56, 21, 14, 24, 18, 21, 40, 25, 21, 26, 69, 189, 190, 207],
    "test_huh7": [41, 21, 84, 117, 79, 29, 27, 12, 24, 210, 247],
}
# Extended: the same images plus added ones whose counts are unpublished; these sum to the official totals.
EXTENDED = {
    "train": ORIGINAL["train"] + [22] * 14 + [33],  # 1126 nuclei
    "test_hepg2": ORIGINAL["test_hepg2"] + [36] * 8 + [39],  # 1312
    "test_huh7": ORIGINAL["test_huh7"],  # 891
}
FOLDERS = {"train": ("TrainingSet", "tr"), "test_hepg2": ("HepG2TestSet", "hepg2_ts"), "test_huh7": ("Huh7TestSet", "huh7_ts")}


def annotation(rng: np.random.Generator, count: int, size: tuple[int, int]) -> np.ndarray:
    """A (height, width) id matrix with `count` nuclei, ids 1..count in shuffled order; nuclei 1-2 touch."""
    width, height = size
    rows, cols = height // PITCH, width // PITCH
    if count > rows * cols - 1:
        raise ValueError(f"{count} nuclei do not fit in {width}x{height}")
    labels = np.zeros((height, width), dtype=np.int64)
    if count == 0:
        return labels
    ids = rng.permutation(np.arange(1, count + 1))
    yy, xx = np.mgrid[0:PITCH, 0:2 * PITCH]
    pair = ((yy - 3.5) / 3.2) ** 2 + ((xx - 7.5) / 6.5) ** 2 <= 1  # one ellipse over two cells, split in halves
    labels[:PITCH, :2 * PITCH][pair & (xx < PITCH)] = ids[0]
    if count > 1:
        labels[:PITCH, :2 * PITCH][pair & (xx >= PITCH)] = ids[1]
    slots = rng.permutation(np.arange(2, rows * cols))[: max(0, count - 2)]
    yy, xx = np.mgrid[0:PITCH, 0:PITCH]
    for nucleus, slot in zip(ids[2:], slots):
        ry, rx = rng.uniform(1.5, 3.4, 2)
        blob = ((yy - 3.5) / ry) ** 2 + ((xx - 3.5) / rx) ** 2 <= 1
        row, col = divmod(int(slot), cols)
        labels[row * PITCH:(row + 1) * PITCH, col * PITCH:(col + 1) * PITCH][blob] = nucleus
    return labels


def matrix_text(labels: np.ndarray) -> bytes:
    """The lab's text format: values separated by single spaces, a trailing space, LF line endings."""
    return "".join(" ".join(map(str, row)) + " \n" for row in labels.tolist()).encode("ascii")


def image_for(labels: np.ndarray, rng: np.random.Generator) -> bytes:
    """RGB JPEG bytes: dim noise, nuclei bright in the blue channel (as in the Hoechst images)."""
    signal = np.where(labels > 0, 190.0, 15.0)
    rgb = np.stack([signal * 0.15, signal * 0.5, signal], axis=-1) + rng.normal(0, 6, labels.shape + (3,))
    buffer = io.BytesIO()
    PILImage.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def annotation_name(prefix: str, n: int, naming: str, txt: bool) -> str:
    name = {"ann": f"{prefix}_ann{n}", "gold": f"{prefix}{n}_gold", "stem_ann": f"{prefix}{n}_ann"}[naming]
    return name + (".txt" if txt else "")


def cell_line(config: str, split: str, index: int) -> str | None:
    """What the builder should find: the folder's line for test images; for training images the
    author's line in `original` (known by count), None in `extended` (added images are unidentified)."""
    if split != "train":
        return {"test_hepg2": "HepG2", "test_huh7": "Huh7"}[split]
    if config == "original":
        return "HepG2" if index < len(TRAIN_HEPG2) else "Huh7"
    return None


def write_archives(out_dir, configs=("original", "extended"), size: tuple[int, int] = (256, 192),
                   naming: str = "ann", txt: bool = False, top: str | None = "default", seed: int = 0,
                   counts: dict | None = None) -> dict:
    """Write `NucleusSegData.zip` and/or `NucleusSegDataExtended.zip` into `out_dir`.

    `naming`: "ann" (`tr_ann1`), "gold" (`tr1_gold`) or "stem_ann" (`tr1_ann`); `txt` adds `.txt`.
    `top`: the zip's top folder ("default": the archive's folder name; None: no top folder).
    `counts`: {config: {split: [nuclei per image]}} instead of the published counts.
    Returns `{"archives": {config: path}, "objects": {config: {split: {stem: n}}},
    "cell_line": {config: {split: {stem: name or None}}}}`.
    """
    rng = np.random.default_rng(seed)
    counts = counts or {"original": ORIGINAL, "extended": EXTENDED}
    result = {"archives": {}, "objects": {}, "cell_line": {}}
    for config in configs:
        archive = ARCHIVES[config]
        root = "" if top is None else (archive.folder if top == "default" else top) + "/"
        members, objects, cell_lines = {}, {}, {}
        for split, per_image in counts[config].items():
            folder, prefix = FOLDERS[split]
            order = rng.permutation(len(per_image)) if split == "train" else range(len(per_image))
            objects[split], cell_lines[split] = {}, {}
            for n, index in enumerate(order, start=1):
                stem, nuclei = f"{prefix}{n}", per_image[index]
                labels = annotation(rng, nuclei, size)
                members[f"{root}{folder}/{stem}.jpg"] = image_for(labels, rng)
                members[f"{root}{folder}/{annotation_name(prefix, n, naming, txt)}"] = matrix_text(labels)
                objects[split][stem] = nuclei
                cell_lines[split][stem] = cell_line(config, split, index)
        result["archives"][config] = write_zip(Path(out_dir) / archive.name, members)
        result["objects"][config] = objects
        result["cell_line"][config] = cell_lines
    return result


def expected_counts(manifest: dict) -> dict:
    """{config: {split: (images, objects)}} that a build of `write_archives`' archives holds."""
    return {config: {split: (len(objects), sum(objects.values())) for split, objects in splits.items()}
            for config, splits in manifest["objects"].items()}
