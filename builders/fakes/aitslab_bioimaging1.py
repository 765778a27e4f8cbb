"""Fake Aitslab-bioimaging1 zips: `<folder>/images[/png]/<stem>.png` + `<folder>/annotations/<stem>_objects.png`.

Each annotation has nuclei on a grid of cells, a pair of touching nuclei (two colours sharing an
edge), a one-pixel micronucleus, and colours that differ in a single channel; images are 8-bit
greyscale. With `layout="images/png"` the PNGs sit in `images/png/` beside `images/C01/*.C01`
originals, as one description of the record suggests; a `readme.md` lies at the top of each zip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..aitslab_bioimaging1 import ARCHIVES
from . import png_bytes, write_zip

DEMO_OPTIONS = {"size": 256}  # larger images make a nicer demo preview
FIRST_IMAGE = ("training_nuclei.zip", r"/images/.*\.png$")  # the archive read first, and an image member of it
WELLS = ("B14", "D13", "F24", "G07", "A02", "K22", "P08", "C09")


def annotation(rng: np.random.Generator, size: int, empty: bool = False) -> tuple[np.ndarray, int]:
    """A colour-coded annotation (size x size x 3, uint8) and its number of objects."""
    rgb = np.zeros((size, size, 3), dtype=np.uint8)
    if empty:
        return rgb, 0
    colours = iter(_unique_colours(rng))
    cell = size // 4
    yy, xx = np.mgrid[0:cell, 0:cell]
    count = 0
    for row in range(4):
        for col in range(4):
            if (row, col) == (3, 3) or rng.random() < 0.25:
                continue
            ry, rx = rng.uniform(0.2, 0.42, 2) * cell
            cy, cx = cell / 2 + rng.uniform(-0.05, 0.05, 2) * cell
            blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            view = rgb[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell]
            if (row, col) == (0, 0):  # two touching nuclei: the blob's halves get different colours
                view[blob & (xx < cell // 2)] = next(colours)
                view[blob & (xx >= cell // 2)] = next(colours)
                count += 2
            else:
                view[blob] = next(colours)
                count += 1
    rgb[3 * cell + cell // 2, 3 * cell + cell // 2] = next(colours)  # a one-pixel micronucleus
    return rgb, count + 1


def _unique_colours(rng: np.random.Generator) -> list[tuple[int, int, int]]:
    # Colours that differ in one channel only come first: a loader summing channels would merge them.
    first = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1)]
    rest = {tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(64)} - set(first) - {(0, 0, 0)}
    return first + sorted(rest, key=lambda c: rng.random())


def image_for(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8-bit greyscale 'Hoechst' image: dim noisy background, bright nuclei."""
    signal = np.where(rgb.any(axis=2), 180, 20).astype(np.float64)
    return np.clip(signal + rng.normal(0, 12, signal.shape), 0, 255).astype(np.uint8)


def write_archives(out_dir, counts=None, size: int = 128, layout: str = "images", seed: int = 0,
                   empty_image: bool = True, stems: dict | None = None) -> dict:
    """Write `training_nuclei.zip`, `development_nuclei.zip`, `test_nuclei.zip` into `out_dir`.

    `counts`: images per split (default 3 / 2 / 2), or `stems`: the file stems per split. With
    `empty_image`, the first test image has an all-black annotation (a labelled image without
    objects). Returns
    `{"archives": {split: path}, "objects": {split: {stem: n}}}`.
    """
    if layout not in ("images", "images/png"):
        raise ValueError("layout is 'images' or 'images/png'")
    counts = counts or {"train": 3, "validation": 2, "test": 2}
    if stems is None:
        stems = {
            split: [f"MFGTMPcx7_17070{i}090001_{WELLS[n % len(WELLS)]}f{n:02d}d0" for n in range(counts.get(split, 0))]
            for i, split in enumerate(ARCHIVES)
        }
    rng = np.random.default_rng(seed)
    result = {"archives": {}, "objects": {}}
    for split, archive in ARCHIVES.items():
        members, objects = {f"{archive.folder}/readme.md": b"Fake archive for tests.\n"}, {}
        for n, stem in enumerate(stems.get(split, [])):
            rgb, objects[stem] = annotation(rng, size, empty=empty_image and split == "test" and n == 0)
            members[f"{archive.folder}/{layout}/{stem}.png"] = png_bytes(image_for(rgb, rng))
            members[f"{archive.folder}/annotations/{stem}_objects.png"] = png_bytes(rgb)
            if layout == "images/png":
                members[f"{archive.folder}/images/C01/{stem}.C01"] = rng.bytes(256)
        result["archives"][split] = write_zip(Path(out_dir) / archive.name, members)
        result["objects"][split] = objects
    return result


def expected_counts(manifest: dict) -> dict:
    """{config: {split: (images, objects)}} that a build of `write_archives`' archives holds."""
    return {"default": {split: (len(objects), sum(objects.values())) for split, objects in manifest["objects"].items()}}
