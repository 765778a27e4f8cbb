"""Aitslab-bioimaging1: Hoechst 33342-stained U2OS nuclei with manually labelled outlines.

What: 50 fluorescence microscopy images of U2OS cell nuclei (Hoechst 33342), 1104x1104 8-bit
greyscale PNG (normalised by the authors from Cellomics `.C01` files), each with a colour-coded
instance annotation: one unique RGB colour per nucleus, nuclear fragment or micronucleus, black
background. About 2,100 objects.
Where: Zenodo record 6657260, three zips: `training_nuclei.zip` (30 images), `development_nuclei.zip`
(10) and `test_nuclei.zip` (10); each holds `<split>_nuclei/images/**.png` and
`<split>_nuclei/annotations/<stem>_objects.png`.
Splits: `train` / `validation` (upstream "development") / `test`, exactly the three zips.
Counts: 30 / 10 / 10 images; 1283 / 375 / 438 objects in the pre-publication copies (the Zenodo
labels were reviewed again and may differ slightly, so object counts are checked loosely).
Licence: CC BY 4.0. Cite Arvidsson et al., Data in Brief 46 (2023) 108769 and the Zenodo record.

NOTE: images may sit in `images/` or `images/png/` beside the original `.C01` files: PNGs are found
      recursively under `images/` and `.C01` files are skipped.
NOTE: images and annotations are paired by stem (`<stem>.png` <-> `<stem>_objects.png`), never by
      sort order; an unpaired file is an error (a warning with --no-verify).
NOTE: objects touch and colours are random per object: every distinct non-black colour is one
      instance (never binarise + connected components); ids are numbered in raster order.
NOTE: the mask encodes no class: objects are nuclei, nuclear fragments and micronuclei alike.
"""

from __future__ import annotations

import re

import datasets
import numpy as np

from . import masks
from .archives import Archive, Tree
from .base import Imaging, OfficialCounts, SegmentationBuilder, SourceConfig
from .errors import BuildError, check_or_warn, warn

_ZENODO = "https://zenodo.org/records/6657260/files/"

ARCHIVES = {
    "train": Archive(
        "training_nuclei.zip", _ZENODO + "training_nuclei.zip",
        "df075941f4e561f9ef82d4c48d22cf97e3627a0b63fa136675197614813fff90", "training_nuclei",
        manual="https://zenodo.org/records/6657260", holds=("images", "annotations"),
    ),
    "validation": Archive(
        "development_nuclei.zip", _ZENODO + "development_nuclei.zip",
        "722530a93fd5b67f61d52964651c715be6227c1c0508c4c95ef2b04b52fc1dd1", "development_nuclei",
        manual="https://zenodo.org/records/6657260", holds=("images", "annotations"),
    ),
    "test": Archive(
        "test_nuclei.zip", _ZENODO + "test_nuclei.zip",
        "377dc719c4eaf9bfa30273f7e3a4042d98dbbfc4a1c4af2a467879237bff592f", "test_nuclei",
        manual="https://zenodo.org/records/6657260", holds=("images", "annotations"),
    ),
}

OFFICIAL_COUNTS = {
    "default": OfficialCounts({"train": (30, 1283), "validation": (10, 375), "test": (10, 438)}, objects_approximate=True)
}

CITATION = """\
@article{arvidsson2023aitslab,
  author  = {Arvidsson, Malou and Kazemi Rashed, Salma and Aits, Sonja},
  title   = {An annotated high-content fluorescence microscopy dataset with Hoechst 33342-stained nuclei and manually labelled outlines},
  journal = {Data in Brief},
  volume  = {46},
  pages   = {108769},
  year    = {2023},
  doi     = {10.1016/j.dib.2022.108769}
}
@dataset{arvidsson2022zenodo,
  author    = {Arvidsson, Malou and Kazemi Rashed, Salma and Aits, Sonja},
  title     = {An annotated high-content fluorescence microscopy dataset with Hoechst 33342-stained nuclei and manually labelled outlines},
  publisher = {Zenodo},
  year      = {2022},
  doi       = {10.5281/zenodo.6657260}
}
"""


# Cellomics CX7 names: <plate>_<well><field><channel>, e.g. MFGTMPcx7_170702000001_B14f07d0
NAME = re.compile(r"^(?P<plate>.+)_(?P<well>[A-Za-z]{1,2}\d{2})(?P<field>f\d+)(?P<channel>d\d+)$")
ANNOTATION_SUFFIX = "_objects.png"


def find_pairs(tree: Tree) -> list[tuple[str, str, str]]:
    """`(stem, image member, annotation member)` for every image PNG under `images/`, paired by stem."""
    images, annotations = {}, {}
    for name in tree.files:
        parts = name.split("/")
        lower = parts[-1].lower()
        if "annotations" in parts[:-1] and lower.endswith(ANNOTATION_SUFFIX):
            table, stem = annotations, parts[-1][: -len(ANNOTATION_SUFFIX)]
        elif "images" in parts[:-1] and lower.endswith(".png"):
            table, stem = images, parts[-1][:-4]
        else:
            continue  # .C01 originals, readme, conversion script
        if stem in table:
            raise BuildError(f"{tree.label}: {stem} appears twice ({table[stem]} and {name})")
        table[stem] = name
    if not images and not annotations:
        raise BuildError(f"{tree.label}: no images/**.png or annotations/*_objects.png found")
    for stem in sorted(images.keys() - annotations.keys()):
        check_or_warn(False, f"{tree.where(images[stem])}: image without annotation {stem}{ANNOTATION_SUFFIX}")
    for stem in sorted(annotations.keys() - images.keys()):
        check_or_warn(False, f"{tree.where(annotations[stem])}: annotation without image {stem}.png")
    return [(stem, images[stem], annotations[stem]) for stem in sorted(images.keys() & annotations.keys())]


def name_fields(stem: str, where: str) -> dict:
    match = NAME.match(stem)
    if not match:
        warn(f"{where}: name does not follow the Cellomics pattern <plate>_<well><field>d<n>; plate/well/field left empty")
        return {"plate": None, "well": None, "field": None}
    return {key: match[key] for key in ("plate", "well", "field")}


def decode_annotation(data: bytes, name: str) -> np.ndarray:
    """Colour-coded annotation bytes (8-bit RGB; opaque RGBA and palette accepted) -> uint16 label image."""
    annotation = masks.decode_image(data, name)
    if annotation.format == "PNG" and data[24] != 8 and annotation.mode != "P":
        raise BuildError(f"{name}: {data[24]}-bit PNG; the colour-coded annotations are 8 bits per channel")
    if annotation.mode not in ("RGB", "RGBA", "P"):
        raise BuildError(f"{name}: expected an RGB colour-coded annotation, got PIL mode {annotation.mode}")
    rgba = np.asarray(annotation.convert("RGBA"))
    if (rgba[..., 3] != 255).any():
        raise BuildError(f"{name}: annotation has transparent pixels; expected opaque RGB colours")
    return masks.labels_from_colours(rgba[..., :3], name)


_PAPER = ("Arvidsson et al. 2023, Data in Brief 46:108769 (abstract and specifications table)",
          "https://pmc.ncbi.nlm.nih.gov/articles/PMC9727632/")
IMAGING = {"*": Imaging(
    modality="widefield fluorescence (Thermo Fisher CellInsight CX7 high-content imaging system)",
    stain="Hoechst 33342 (nuclei; blue channel)", organism="human", sample="U2OS osteosarcoma cell line (modified)",
    magnification="20x", pixel_size_um=None, sources=(_PAPER,),
)}

class AitslabBioimaging1(SegmentationBuilder):
    """Aitslab-bioimaging1 (Zenodo 6657260): 50 Hoechst-stained U2OS nucleus images with instance outlines."""

    SOURCE_ID = "aitslab-bioimaging1"
    PRETTY_NAME = "Aitslab-bioimaging1: Hoechst-stained U2OS nuclei"
    HOMEPAGE = "https://zenodo.org/records/6657260"
    LICENSE = "cc-by-4.0"
    EXTRA_COLUMNS = {"plate": datasets.Value("string"), "well": datasets.Value("string"), "field": datasets.Value("string")}
    COLUMN_DOCS = {
        "plate": "Cellomics plate id from the file name, e.g. `MFGTMPcx7_170702000001`",
        "well": "well from the file name, e.g. `B14`",
        "field": "field of view from the file name, e.g. `f07`",
    }
    BYTES_PER_EXAMPLE = 2_000_000  # 1104x1104 PNG ~0.7 MB + mask, preview and polygons
    TAGS = ("fluorescence-microscopy", "nuclei", "U2OS", "Hoechst")
    PARSERS = {r"/annotations/.*_objects\.png$": decode_annotation}
    BUILDER_CONFIGS = [SourceConfig(name="default", description="30 / 10 / 10 images as published")]
    DEFAULT_CONFIG_NAME = "default"

    def _split_generators(self, dl_manager):
        generators = []
        for split, archive in self.ARCHIVES.items():
            tree = self.locate(dl_manager, archive)
            pairs = find_pairs(tree)
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"tree": tree, "pairs": pairs}))
        return generators

    def _generate_examples(self, tree: Tree, pairs: list):
        for stem, image_name, annotation_name in pairs:
            image_bytes = tree.read(image_name)
            image = masks.decode_image(image_bytes, tree.where(image_name))
            where = tree.where(annotation_name)
            labels = masks.require_image_size(decode_annotation(tree.read(annotation_name), where), image, where,
                                              "annotation")
            yield stem, self.row(stem, image_bytes, image_name, image, labels, **name_fields(stem, tree.where(image_name)))

