"""Tiny Cells: a minimal source defined only in the tests, to prove that a source is its own files.

What: a made-up set of small greyscale cell images with 16-bit label masks, laid out as BBBC039 is
(fixed split lists, PNG label images). It is not published; `tests/conftest.py` adds this file to the
registry through `$MICROSCOPY_HUB_SOURCES`, and every generic test (build, determinism, atomicity,
reliability, card, check, push and load, recipes) runs on it as on the four real sources.
Where: one zip, `tiny_cells.zip`: `tiny_cells/images/<stem>.png` (8-bit), `tiny_cells/masks/<stem>.png`
(16-bit label image, 0 = background) and `tiny_cells/metadata/{training,test}.txt` (one image file name a line).
Licence: CC0 1.0.

NOTE: mask ids have gaps (the annotation tool never reuses the id of a deleted object): ids are renumbered
      1..N in raster order of first appearance.
NOTE: images and masks are paired by the file names in the split lists; a listed image without its image or
      mask file is an error (a warning with --no-verify, the image left out).

This module is also the source's fakes module (`FAKES`): `write_archives`, `expected_counts`, `FIRST_IMAGE`.
"""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
from PIL import Image as PILImage

from builders import masks
from builders.archives import Archive, Tree
from builders.base import Imaging, SegmentationBuilder, SourceConfig
from builders.errors import BuildError, check_or_warn
from builders.fakes import png_bytes, write_zip

HOMEPAGE = "https://example.org/tiny-cells"
ARCHIVES = {"default": Archive("tiny_cells.zip", "https://example.org/tiny-cells/tiny_cells.zip", None, "tiny_cells",
                               manual=HOMEPAGE, holds=("images", "masks", "metadata"))}
CITATION = """\
@misc{tinycells,
  title = {Tiny Cells, a test source},
  year  = {2026}
}
"""
IMAGING = {"*": Imaging(modality="widefield fluorescence (synthetic)", stain="none (synthetic)", organism="none",
                        sample="synthetic cells", magnification=None, pixel_size_um=None,
                        sources=(("this test source", HOMEPAGE),))}
SPLITS = {"train": "training.txt", "test": "test.txt"}


def read_split_lists(tree: Tree, root: str) -> dict[str, list[str]]:
    """Split -> listed image stems, from `metadata/<list>.txt` (blank lines skipped)."""
    found = {}
    for split, name in SPLITS.items():
        member = f"{root}/metadata/{name}"
        if member not in tree.files:
            raise BuildError(f"{tree.where(member)}: split list missing")
        try:
            lines = tree.read(member).decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise BuildError(f"{tree.where(member)}: not UTF-8 text ({exc.reason})") from None
        found[split] = [line.strip().removesuffix(".png") for line in lines if line.strip()]
    return found


def decode_labels(data: bytes, where: str) -> np.ndarray:
    """A 16-bit (or 8-bit) greyscale label image -> uint16 ids 1..N."""
    image = masks.decode_image(data, where)
    if image.mode not in ("I;16", "I", "L"):
        raise BuildError(f"{where}: expected a greyscale label image, got PIL mode {image.mode}")
    return masks.relabel_sequential(np.asarray(image), where)


class TinyCells(SegmentationBuilder):
    """Tiny Cells (tests only): small synthetic cell images with label masks and fixed split lists."""

    SOURCE_ID = "tiny-cells"
    PRETTY_NAME = "Tiny Cells: a test source"
    LICENSE = "cc0-1.0"
    CARD_TEMPLATE = str(Path(__file__).with_suffix(".md"))
    FAKES = __name__
    OBJECT_CATEGORY = "cell"
    BYTES_PER_EXAMPLE = 100_000
    PARSERS = {r"/masks/.*\.png$": decode_labels}
    TAGS = ("fluorescence-microscopy", "cells")
    BUILDER_CONFIGS = [SourceConfig(name="default", description="the split lists as published")]

    def _split_generators(self, dl_manager):
        archive = self.ARCHIVES["default"]
        tree = self.locate(dl_manager, archive)
        lists = read_split_lists(tree, archive.folder)
        generators = []
        for split, stems in lists.items():
            pairs = []
            for stem in stems:
                members = [f"{archive.folder}/{kind}/{stem}.png" for kind in ("images", "masks")]
                missing = [m for m in members if m not in tree.files]
                if missing:
                    check_or_warn(False, f"{tree.where(missing[0])}: listed in {SPLITS[split]} but missing")
                    continue
                pairs.append((stem, *members))
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"tree": tree, "pairs": pairs}))
        return generators

    def _generate_examples(self, tree: Tree, pairs: list):
        for stem, image_name, mask_name in pairs:
            image_bytes = tree.read(image_name)
            image = masks.decode_image(image_bytes, tree.where(image_name))
            where = tree.where(mask_name)
            labels = masks.require_image_size(decode_labels(tree.read(mask_name), where), image, where)
            yield stem, self.row(stem, image_bytes, image_name, image, labels)


# --- fakes --------------------------------------------------------------------------------------------------

FIRST_IMAGE = ("tiny_cells.zip", r"/images/.*\.png$")
DEMO_OPTIONS = {}


def write_archives(out_dir, counts=None, size: int = 48, seed: int = 0) -> dict:
    """`tiny_cells.zip` with `counts` images per split (default 3 train, 2 test), discs on a grid with gapped ids
    (0, 2, 5, ...) and the first test image without objects; returns {"archive": path, "objects": {split: {stem: n}}}."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train": 3, "test": 2}
    members, objects, n = {}, {}, 0
    yy, xx = np.mgrid[0:size, 0:size]
    for split, count in counts.items():
        objects[split], names = {}, []
        for i in range(count):
            stem = f"cells_{n:03d}"
            n += 1
            labels = np.zeros((size, size), np.uint16)
            objects[split][stem] = 0
            if not (split == "test" and i == 0):
                for k, (cy, cx) in enumerate((y, x) for y in range(8, size, 16) for x in range(8, size, 16)):
                    if rng.random() < 0.7:
                        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(9, 36)] = 3 * k + 2  # ids with gaps
                        objects[split][stem] += 1
            image = np.clip((labels > 0) * 160 + rng.normal(30, 8, labels.shape), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            PILImage.fromarray(labels).save(buffer, format="PNG")
            members[f"tiny_cells/images/{stem}.png"] = png_bytes(image)
            members[f"tiny_cells/masks/{stem}.png"] = buffer.getvalue()
            names.append(f"{stem}.png")
        members[f"tiny_cells/metadata/{SPLITS[split]}"] = ("\n".join(names) + "\n").encode()
    return {"archive": write_zip(Path(out_dir) / ARCHIVES["default"].name, members), "objects": objects}


def expected_counts(manifest: dict) -> dict:
    return {"default": {split: (len(objects), sum(objects.values())) for split, objects in manifest["objects"].items()}}
