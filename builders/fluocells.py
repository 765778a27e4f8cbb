"""Fluorescent Neuronal Cells: stained neurons in mouse and rat brain slices, v1 and the v2 collections.

What: fluorescence microscopy images of brain slices (200x; 250x for red) in which neurons were marked
with one of three stains, each with a binary mask of the stained cells drawn by the authors; instances
are the mask's connected components. v1: 283 images of CTb-stained neurons (yellowish cytoplasm),
1600x1200 RGB PNG. v2: three collections by marker: green (c-FOS, nuclei), yellow (CTb, cytoplasm)
and red (Orx, cytoplasm), 1,874 images of which 750 are labelled; red images come in two sizes.
Where: AMS Acta (University of Bologna): record 6706 (v1, `fluocells.zip` with `all_images/images/`
and `all_masks/masks/`) and record 7347 (v2: `green.zip`, `yellow.zip`, `red.zip`, each
`<collection>/{trainval,test,unlabelled}/images/<n>.png` with `ground_truths/masks/<n>.png`).
Configs: `v1` (`train` = the 213 images outside the official test list, `test` = its 70 images) and
`v2_green`, `v2_yellow`, `v2_red` (`train` = upstream `trainval`, `test`, `unlabelled`).
Counts: v1 283 images (50 with empty masks), about 5,533 cells; v2 green 282 labelled (the archive's
283rd mask has no image) + 408 unlabelled, yellow 283 + 354, red 184 (138 / 46) + 362.
Licence: CC BY-SA 4.0. Cite the AMS Acta record and Morelli et al. 2021 (v1), Clissa et al. 2024 (v2).

NOTE: masks are binary (0 / 255) but some copies have 3 or 4 channels and grey values along edges
      (image-editor artefacts): channel 0 is taken, then `> 127`; a warning is given when the channels
      disagree. Instances are the 8-connected components, numbered in raster order.
NOTE: some lab copies store masks as 16-bit PNG (0 / 65535): a 16- or 32-bit integer mask is taken when its
      only values are 0 and 65535 (all-background and all-foreground masks too), or 0 and 1 (with the warning an
      8-bit 0 / 1 mask gets); any other value is an error naming the file and the values found.
NOTE: cells that touch in the mask are one component, so one object (upstream encodes no instances).
NOTE: 50 v1 masks are empty: those images are kept, with zero objects and an all-zero `instance_mask`.
NOTE: v1 has no split folders: the official split is the list of 70 test images of the c-ResUnet paper
      (Morelli et al. 2021), built into the builder; every other image is `train`.
NOTE: some v1 copies (a Kaggle mirror) name files `<name>.png.tiff`: files ending in `.png`, `.png.tif(f)`
      or `.tif(f)` are read, `image_id` drops those endings, and image and mask pair by exact file name.
NOTE: the v1 zip may or may not have a top folder: `all_images/` and `all_masks/` are found at any depth.
NOTE: v2 stems are numbers that repeat across collections, so `image_id` is `<collection>_<stem>`.
NOTE: `green/trainval` holds the mask `128.png` without its image: it is skipped with a warning, so green
      has 282 labelled images (the datasheet's 283 counts it); any other unpaired file is an error.
NOTE: red images are 1600x1200 or 2272x1704 (two microscopes): sizes are never assumed.
NOTE: `unlabelled/` images have no ground truth: `instance_mask`, `num_objects` are null and `objects` is empty.
NOTE: v2 `objects[].dot_x`, `dot_y` are the cell centre from the authors' COCO file (`ground_truths/COCO/*.json`,
      one annotation per image with parallel lists). Its lists are not zipped with the components: a dot
      is paired with the component whose centroid, truncated to whole pixels, it equals (how the authors
      computed it); remaining dots are paired one-to-one by least total distance to the remaining
      components' centroids, within 2 px. A dot no component takes is reported; a component without a
      dot has `dot_x`, `dot_y` null. v1 publishes no dots. The authors' dot is a pixel (column, row): it is
      stored as that pixel's centre in the pixel-edge frame of `bbox` and `polygons` (column + 0.5, row + 0.5).
"""

from __future__ import annotations

import json
import re

import datasets
import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from . import masks
from .archives import Archive, Tree
from .base import Imaging, OfficialCounts, SegmentationBuilder, SourceConfig
from .errors import BuildError, check_or_warn, warn

V1_RECORD = "https://amsacta.unibo.it/id/eprint/6706/"
V2_RECORD = "https://amsacta.unibo.it/id/eprint/7347/"

ARCHIVES = {
    "v1": Archive("fluocells.zip", V1_RECORD + "1/fluocells.zip", None, "fluocells", manual=V1_RECORD,
                  contains=("all_images", "all_masks")),
    "green": Archive("green.zip", V2_RECORD + "28/green.zip",
                     "7760c3c55d236c17f2225a0a63e8e61a86c93d0645c7188bbe9652f22f520517", "green", manual=V2_RECORD,
                     holds=("trainval", "images")),
    "yellow": Archive("yellow.zip", V2_RECORD + "27/yellow.zip",
                      "08048f5c71d4afa726cc54fd887a06cc6894aff62f6704ff5a8c15aa2f9946ca", "yellow", manual=V2_RECORD,
                      holds=("trainval", "images")),
    "red": Archive("red.zip", V2_RECORD + "29/red.zip",
                   "0a9a2ac9dbdd7222cadf44a7846f61f9d0adb08cf09b801efb917a76e8704533", "red", manual=V2_RECORD,
                   holds=("trainval", "images")),
}

# collection -> (marker, marked structure)
MARKERS = {"v1": ("CTb", "cytoplasm"), "green": ("c-FOS", "nucleus"), "yellow": ("CTb", "cytoplasm"),
           "red": ("Orx", "cytoplasm")}
V2_SPLITS = {"trainval": "train", "test": "test", "unlabelled": "unlabelled"}  # upstream folder -> split
KNOWN_ORPHANS = {("green", "trainval", "128.png")}  # masks without an image in the published archives

OFFICIAL_COUNTS = {
    "v1": OfficialCounts({"train": (213, 4822), "test": (70, 711)}, objects_approximate=True,
                         empty={"train": 38, "test": 12}),
    # Green: the datasheet says 283 labelled images; the archive has 282 pairs and the orphan mask.
    "v2_green": OfficialCounts({"train+test": (282, None), "unlabelled": (408, None)}, tolerance={"train+test": 1}),
    "v2_yellow": OfficialCounts({"train+test": (283, None), "unlabelled": (354, None)}),
    "v2_red": OfficialCounts({"train": (138, None), "test": (46, None), "unlabelled": (362, None)}),
}

# The official v1 test split (c-ResUnet paper; `test_img_names` of robomorelli/cell_counting_yellow):
# 5 irregular names and 65 of the form <group><stem>_200x_y.png.
V1_TEST_IRREGULAR = ("39_y.png", "MAR38S1C3R1_LHR_20_o.png", "MAR55S1C5R3_DMR_20_o.png", "Mar42S2C2R2_DMr_200x_o.png",
                     "Mar42S2C4R2_VLPAGr_200x_o.png")
V1_TEST_GROUPS = {
    "Mar19b": "S1C1R2_VLPAGr S1C1R3_VLPAGl S1C2R3_VLPAGr S1C3R2_VLPAGl S1C3R2_VLPAGr S1C4R1_VLPAGr S1C4R2_LHr "
              "S1C4R3_DMr S1C4R3_LHr S1C5R2_DMl S1C5R2_DMr S1C5R2_LHl S1C5R3_DMr S1C5R3_LHl",
    "Mar20b": "S1C1R3_VLPAGr S1C2R1_VLPAGl S1C2R2_VLPAGl S1C2R3_VLPAGr S1C3R2_VLPAGl S1C4R1_DMr S1C4R1_LHl S1C4R3_DMl "
              "S1C4R3_DMr S2C1R1_LHl S2C1R3_DMl S2C2R3_LHl S2C2R3_LHr",
    "Mar21b": "S1C1R3_VLPAGr S1C2R1_VLPAGl S1C2R2_VLPAGl S1C2R3_VLPAGr S2C1R1_LHr S2C1R2_LHl S2C2R2_LHr S2C2R3_LHl",
    "Mar22b": "S1C2R1_VLPAGl S1C3R2_DMr S1C4R1_LHl S1C4R2_LHr S2C1R1_LHr",
    "Mar23b": "S1C1R4_VLPAGl S1C6R1_DMr S2C1R1_LHl",
    "Mar24b": "S1C1R1_LHl S1C1R2_DMr S1C2R1_DMl S1C2R2_LHl S1C3R1_LHr S1C3R2_LHr S2C2R3_VLPAGl S2C4R3_DMr",
    "Mar26b": "S1C4R2_LHl S1C4R3_DMl S2C1R1_DMr S2C2R1_DMl S2C2R2_DMr S2C2R2_LHr",
    "Mar27b": "S1C2R1_LHl S1C3R1_LHr",
    "Mar31b": "S2C1R2_VLPAGr S2C3R4_DMr",
    "Mar32b": "S2C2R2_DMl",
    "Mar33b": "S1C4R2_DMl S2C1R1_DMl",
    "Mar36b": "S1C6R2_DMr",
}
V1_TEST = frozenset(V1_TEST_IRREGULAR) | {f"{group}{stem}_200x_y.png" for group, stems in V1_TEST_GROUPS.items()
                                          for stem in stems.split()}

CITATION = """\
@unpublished{amsacta6706,
  title     = {Fluorescent Neuronal Cells},
  author    = {Clissa, Luca and Morelli, Roberto and Squarcio, Fabio and Hitrec, Timna and Luppi, Marco and Rinaldi, Lorenzo and Cerri, Matteo and Amici, Roberto and Bastianini, Stefano and Berteotti, Chiara and Lo Martire, Viviana and Martelli, Davide and Occhinegro, Alessandra and Tupone, Domenico and Zoccoli, Giovanna and Zoccoli, Antonio},
  year      = {2021},
  publisher = {University of Bologna},
  url       = {https://amsacta.unibo.it/id/eprint/6706/},
  doi       = {10.6092/unibo/amsacta/6706}
}
@article{morelli2021cresunet,
  author  = {Morelli, Roberto and Clissa, Luca and Amici, Roberto and Cerri, Matteo and Hitrec, Timna and Luppi, Marco and Rinaldi, Lorenzo and Squarcio, Fabio and Zoccoli, Antonio},
  title   = {Automating cell counting in fluorescent microscopy through deep learning with c-ResUnet},
  journal = {Scientific Reports},
  volume  = {11},
  pages   = {22920},
  year    = {2021},
  doi     = {10.1038/s41598-021-01929-5}
}
@article{clissa2024fnc2,
  author  = {Clissa, Luca and Macaluso, Antonio and Morelli, Roberto and Occhinegro, Alessandra and Piscitiello, Emiliana and Taddei, Ludovico and Luppi, Marco and Amici, Roberto and Cerri, Matteo and Hitrec, Timna and Rinaldi, Lorenzo and Zoccoli, Antonio},
  title   = {Fluorescent Neuronal Cells v2: multi-task, multi-format annotations for deep learning in microscopy},
  journal = {Scientific Data},
  volume  = {11},
  pages   = {184},
  year    = {2024},
  doi     = {10.1038/s41597-024-03005-9}
}
"""


IMAGE_ENDINGS = (".png.tiff", ".png.tif", ".png", ".tiff", ".tif")  # longest first
DOT_TOLERANCE = 2.0  # px between an upstream dot and its component's centroid


def file_id(filename: str) -> str | None:
    """The id of an image or mask file name (`.png`, `.png.tiff`, `.tif` ... dropped), None for other files."""
    lower = filename.lower()
    for ending in IMAGE_ENDINGS:
        if lower.endswith(ending) and len(filename) > len(ending):
            return filename[: -len(ending)]
    return None


def _order(text: str):
    """Natural order (`2` before `10`), ties (`1`, `01`) broken by the text itself."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)], text


def folder_files(tree: Tree, tail: str) -> tuple[str | None, dict[str, str]]:
    """The one folder of `tree` whose path ends with `tail` (e.g. `all_images/images`): (path, file name -> member)."""
    found = {}
    for name in tree.files:
        folder, _, filename = name.rpartition("/")
        if folder == tail or folder.endswith("/" + tail):
            found.setdefault(folder, {})[filename] = name
    if len(found) > 1:
        raise BuildError(f"{tree.label}: several folders {tail}/ ({', '.join(sorted(found))}); expected one")
    return next(iter(found.items()), (None, {}))


def drop_non_images(tree: Tree, files: dict) -> None:
    """Remove (with a warning) the entries of a file name -> member table that are not image files."""
    for filename in sorted(f for f in files if file_id(f) is None):
        warn(f"{tree.where(files.pop(filename))}: not a .png or .tif file; ignored")


def pair_files(tree: Tree, images: dict, masks_: dict, known_orphans=frozenset()) -> list[tuple]:
    """`(id, image member, mask member)` paired by exact file name, in natural order of the id.

    A mask in `known_orphans` (published without its image) is skipped with a warning; any other
    unpaired file is an error (a warning with --no-verify)."""
    for table in (images, masks_):
        drop_non_images(tree, table)
    ids = {}
    for filename in images:
        if file_id(filename) in ids:
            raise BuildError(f"{tree.label}: {ids[file_id(filename)]} and {filename} are the same image id")
        ids[file_id(filename)] = filename
    for filename in sorted(images.keys() - masks_.keys(), key=_order):
        check_or_warn(False, f"{tree.where(images[filename])}: image without a mask of the same file name")
    for filename in sorted(masks_.keys() - images.keys(), key=_order):
        if filename in known_orphans:
            warn(f"{tree.where(masks_[filename])}: mask without image (a known defect of the published archive); skipped")
        else:
            check_or_warn(False, f"{tree.where(masks_[filename])}: mask without an image of the same file name")
    return sorted(((file_id(f), images[f], masks_[f]) for f in images.keys() & masks_.keys()), key=lambda p: _order(p[0]))


def read_binary_mask(data: bytes, name: str, size: tuple[int, int]) -> np.ndarray:
    """Mask bytes -> bool array: channel 0 of a grey, RGB or RGBA 8-bit mask, `> 127`, or a 16- or 32-bit
    integer mask holding only 0 and 65535 (or 0 and 1; see the NOTE). `size` is (width, height)."""
    mask = masks.decode_image(data, name)
    if mask.size != size:
        raise BuildError(f"{name}: mask is {mask.size[0]}x{mask.size[1]} but its image is {size[0]}x{size[1]}")
    if mask.mode in ("1", "P"):
        mask = mask.convert("RGB" if mask.mode == "P" else "L")
    if mask.mode in ("I", "I;16", "I;16L", "I;16B"):
        values = np.asarray(mask)
        found = np.unique(values)
        if not (np.isin(found, (0, 65535)).all() or np.isin(found, (0, 1)).all()):
            shown = ", ".join(map(str, found[:6].tolist())) + (f", ... ({len(found)} values)" if len(found) > 6 else "")
            raise BuildError(f"{name}: PIL mode {mask.mode} mask with values {shown}; expected a binary mask of "
                             f"0 and 65535 (or 0 and 1)")
        channel0, colours = np.minimum(values, 255).astype(np.uint8), []  # 65535 -> 255; 0 / 1 stay
    elif mask.mode in ("L", "LA", "RGB", "RGBA"):
        channel0, *colours = (np.asarray(mask.getchannel(i)) for i in range(1 if mask.mode in ("L", "LA") else 3))
    else:
        raise BuildError(f"{name}: PIL mode {mask.mode}; expected a binary mask (8-bit grey, RGB or RGBA, or 16-bit)")
    if channel0.max(initial=0) == 1:  # a 0/1 mask: `> 127` would lose every cell
        warn(f"{name}: mask values are 0 and 1, not 0 and 255; every non-zero pixel is taken")
        return channel0 > 0
    binary = channel0 > 127
    # Identical channels (the usual grey mask saved as RGB) agree without thresholding them.
    if any(not np.array_equal(c, channel0) and ((c > 127) != binary).any() for c in colours):
        warn(f"{name}: the mask's colour channels disagree; channel 0 is used")
    return binary


def components(binary: np.ndarray, name: str) -> np.ndarray:
    """8-connected components of a binary mask as a uint16 label image, ids 1..N in raster order."""
    labels, count = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
    if count > masks.MAX_INSTANCES:
        raise BuildError(f"{name}: {count} objects, more than a 16-bit mask can hold")
    return labels.astype(np.uint16)


def read_coco_dots(data: bytes, name: str) -> dict[str, list[list[int]]]:
    """The authors' COCO file (one annotation per image, parallel lists) -> image stem -> dots `[x, y]`."""
    try:
        coco = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        raise BuildError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(coco, dict) or not isinstance(coco.get("annotations"), list):
        raise BuildError(f"{name}: missing key 'annotations' (a list with one entry per image)")
    dots = {}
    for i, annotation in enumerate(coco["annotations"]):
        where = f"{name}: annotations[{i}]"
        if not isinstance(annotation, dict):
            raise BuildError(f"{where}: expected an object, got {type(annotation).__name__}")
        for key in ("image_id", "dots"):
            if key not in annotation:
                raise BuildError(f"{where}: missing key {key!r}")
        stem, points = str(annotation["image_id"]), annotation["dots"]
        if not isinstance(points, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
                for p in points):
            raise BuildError(f"{where}: 'dots' must be a list of [x, y] integer pairs")
        if stem in dots:
            raise BuildError(f"{where}: a second annotation for image {stem!r}")
        dots[stem] = points
    return dots


def align_dots(labels: np.ndarray, dots: list, name: str) -> list:
    """Per instance 1..N, the upstream dot `[x, y]` paired with it, or None (see the dots NOTE)."""
    count = int(labels.max(initial=0))
    aligned = [None] * count
    if not count or not dots:
        if dots:
            warn(f"{name}: {len(dots)} dots but the mask has no object; dots left out")
        return aligned
    centres = np.array(ndimage.center_of_mass(labels > 0, labels, range(1, count + 1)))[:, ::-1]  # (x, y)
    truncated = {}  # the authors' dot of each component: int() of its centroid
    for k, (x, y) in enumerate(np.floor(centres).astype(np.int64).tolist()):
        truncated.setdefault((x, y), []).append(k)
    left = []
    for d, (x, y) in enumerate(dots):
        free = [k for k in truncated.get((x, y), []) if aligned[k] is None]
        if free:
            aligned[free[0]] = [x, y]
        else:
            left.append(d)
    free = [k for k in range(count) if aligned[k] is None]
    if left and free:  # dots computed another way (contour moments): least total distance, one-to-one
        distance = np.linalg.norm(np.asarray([dots[d] for d in left], dtype=np.float64)[:, None, :]
                                  - centres[free][None, :, :], axis=2)
        far = distance > DOT_TOLERANCE
        rows, cols = linear_sum_assignment(np.where(far, 1e9, distance))
        placed = {int(r) for r, c in zip(rows, cols) if not far[r, c]}
        for r, c in zip(rows, cols):
            if r in placed:
                aligned[free[c]] = list(dots[left[r]])
        left = [d for i, d in enumerate(left) if i not in placed]
    if left:
        warn(f"{name}: {len(left)} of {len(dots)} dots are not within {DOT_TOLERANCE:g} px of a free "
             f"component's centre; left out")
    return aligned


def find_v1(tree: Tree) -> dict[str, list[tuple]]:
    """Split -> `(id, image member, mask member)` for `all_images/images/` and `all_masks/masks/`."""
    image_folder, images = folder_files(tree, "all_images/images")
    mask_folder, masks_ = folder_files(tree, "all_masks/masks")
    if image_folder is None or mask_folder is None:
        raise BuildError(f"{tree.label}: no {'all_images/images' if image_folder is None else 'all_masks/masks'}/ "
                         f"folder found (expected the layout of the AMS Acta zip)")
    if image_folder.rpartition("all_images")[0] != mask_folder.rpartition("all_masks")[0]:
        raise BuildError(f"{tree.label}: {image_folder}/ and {mask_folder}/ are not in the same folder")
    pairs = pair_files(tree, images, masks_)
    names = {f"{image_id}.png" for image_id, _, _ in pairs}
    missing = sorted(V1_TEST - names)
    check_or_warn(not missing, f"{tree.label}: {len(missing)} images of the official test list are missing "
                               f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return {"train": [p for p in pairs if f"{p[0]}.png" not in V1_TEST],
            "test": [p for p in pairs if f"{p[0]}.png" in V1_TEST]}


def find_v2(tree: Tree, collection: str) -> dict[str, tuple[list[tuple], str | None]]:
    """Split -> (`(stem, image member, mask member or None)` list, COCO file member or None)."""
    found, roots = {}, set()
    for folder, split in V2_SPLITS.items():
        image_folder, images = folder_files(tree, f"{folder}/images")
        if image_folder is None:
            check_or_warn(False, f"{tree.label}: no {folder}/images/ folder; split {split} left out")
            continue
        root = image_folder[: -len(f"{folder}/images")]
        roots.add(root)
        if split == "unlabelled":
            drop_non_images(tree, images)
            ids = sorted(((file_id(f), m) for f, m in images.items()), key=lambda p: _order(p[0]))
            found[split] = ([(stem, member, None) for stem, member in ids], None)
            continue
        _, masks_ = folder_files(tree, f"{root}{folder}/ground_truths/masks")
        orphans = {name for c, f, name in KNOWN_ORPHANS if (c, f) == (collection, folder)}
        coco = sorted(m for m in tree.files if m.startswith(f"{root}{folder}/ground_truths/COCO/")
                      and m.lower().endswith(".json"))
        if len(coco) > 1:
            raise BuildError(f"{tree.label}: several COCO files in {root}{folder}/ground_truths/COCO/; expected one")
        found[split] = (pair_files(tree, images, masks_, orphans), coco[0] if coco else None)
    if len(roots) > 1:
        raise BuildError(f"{tree.label}: the split folders appear under several parents ({', '.join(sorted(roots))})")
    seen = {}
    for split, (items, _) in found.items():
        for stem, member, _ in items:
            if stem in seen:
                raise BuildError(f"{tree.label}: image {stem} appears twice ({seen[stem]} and {member}): "
                                 f"its id {collection}_{stem} would name two images")
            seen[stem] = member
    return found


_DATASHEET = ("the v2 datasheet (AMS Acta 7347) and the v1 record (AMS Acta 6706)", V2_RECORD)
_MICROSCOPE = "widefield fluorescence (Nikon Eclipse 80i, Nikon Digital Sight DS-Vi1 camera)"
_CTB = Imaging(modality=_MICROSCOPE, stain="cholera toxin subunit b (CTb) retrograde tracer, cytoplasm", organism="mouse",
               sample="brain slices", magnification="200x", pixel_size_um=None, sources=(_DATASHEET,))
IMAGING = {
    "v1": _CTB,  # v1 is the yellow (CTb) collection
    "v2_yellow": _CTB,
    "v2_green": Imaging(modality=_MICROSCOPE, stain="c-FOS, nuclei", organism="mouse", sample="brain slices",
                        magnification="200x", pixel_size_um=None, sources=(_DATASHEET,)),
    "v2_red": Imaging(modality=_MICROSCOPE + "; some images on an ausJENA JENAVAL with a Nikon Coolpix E4500",
                      stain="orexin (Orx), cytoplasm", organism="rat and mouse", sample="brain slices",
                      magnification="250x", pixel_size_um=None, sources=(_DATASHEET,)),
}

class FluorescentNeuronalCells(SegmentationBuilder):
    """Fluorescent Neuronal Cells (AMS Acta 6706 and 7347): v1 and the v2 green / yellow / red collections."""

    SOURCE_ID = "fluocells"
    PRETTY_NAME = "Fluorescent Neuronal Cells (v1 and v2)"
    HOMEPAGE = V2_RECORD
    LICENSE = "cc-by-sa-4.0"
    LICENSE_TERMS = (
        "The v1 archive's README (\"All images in this archive are licensed under the Creative Commons Attribution "
        "Share Alike 4.0 International License\") and the v2 authors' datasheet and COCO files say CC BY-SA 4.0. "
        "Some third-party loaders and READMEs say CC BY 4.0 for v2; this card follows the authors."
    )
    EXTRA_COLUMNS = {
        "collection": datasets.Value("string"),
        "marker": datasets.Value("string"),
        "marked_structure": datasets.Value("string"),
    }
    # Two nullable scalars, not a fixed-size list: pyarrow < 26 cannot read a null fixed-size list.
    EXTRA_OBJECT_FIELDS = {"dot_x": datasets.Value("float32"), "dot_y": datasets.Value("float32")}
    COLUMN_DOCS = {
        "collection": "`v1`, `green`, `yellow` or `red`",
        "marker": "the stain: `CTb` (v1, yellow), `c-FOS` (green) or `Orx` (red)",
        "marked_structure": "what the marker stains: `nucleus` (c-FOS) or `cytoplasm` (CTb, Orx; upstream spells "
                            "it `citoplasm`)",
        "objects.dot_x": "v2: the cell centre from the authors' COCO file, x of the dotted pixel's centre (its column "
                         "+ 0.5); null for v1 and where no dot pairs with the object",
        "objects.dot_y": "v2: y of the same dot (its row + 0.5); null where `dot_x` is",
    }
    BYTES_PER_EXAMPLE = 8_000_000  # up to 2272x1704 RGB PNG (~6 MB) + mask, preview, polygons
    TAGS = ("fluorescence-microscopy", "neurons", "cell-counting", "brain", "mouse", "rat")
    BUILDER_CONFIGS = [
        SourceConfig(name="v1", description="v1 (AMS Acta 6706): 283 CTb images; train 213 / test 70 (official list)"),
        *[SourceConfig(name=f"v2_{c}", description=f"v2 (AMS Acta 7347) {c} collection ({MARKERS[c][0]}): "
                                                   f"train (upstream trainval) / test / unlabelled")
          for c in ("green", "yellow", "red")],
    ]
    DEFAULT_CONFIG_NAME = "v1"
    OBJECT_CATEGORY = "cell"
    PARSERS = {r"/COCO/.*\.json$": read_coco_dots}

    @property
    def collection(self) -> str:
        return self.config.name.removeprefix("v2_")

    def _split_generators(self, dl_manager):
        collection = self.collection
        tree = self.locate(dl_manager, self.ARCHIVES[collection])
        found = ({split: (items, None) for split, items in find_v1(tree).items()} if collection == "v1"
                 else find_v2(tree, collection))
        generators = []
        for split, (items, coco) in found.items():
            if not items:  # a split without rows would make the whole config unloadable
                check_or_warn(False, f"{tree.label}: no images for split {split}; left out")
                continue
            dots = None
            if coco is not None:
                dots = read_coco_dots(tree.read(coco), tree.where(coco))
            elif split != "unlabelled" and collection != "v1":
                warn(f"{tree.label}: no ground_truths/COCO/*.json for split {split}; objects get no dots")
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"tree": tree, "items": items, "dots": dots}))
        if not generators:
            raise BuildError(f"{tree.label}: no images found for {self.config.name}")
        return generators

    def _generate_examples(self, tree: Tree, items: list, dots: dict | None):
        collection = self.collection
        marker, structure = MARKERS[collection]
        for stem, image_name, mask_name in items:
            image_id = stem if collection == "v1" else f"{collection}_{stem}"
            image_bytes = tree.read(image_name)
            image = masks.decode_image(image_bytes, tree.where(image_name))
            labels, objects = None, []
            if mask_name is not None:
                labels = components(read_binary_mask(tree.read(mask_name), tree.where(mask_name), image.size),
                                    tree.where(mask_name))
                objects = masks.objects_from_labels(labels)
                if dots is not None and stem not in dots:
                    warn(f"{tree.where(mask_name)}: no entry for {stem} in the COCO file; objects get no dots")
                cell_dots = [None] * len(objects) if dots is None or stem not in dots else align_dots(
                    labels, dots[stem], tree.where(mask_name))
                for record, dot in zip(objects, cell_dots):
                    record["dot_x"], record["dot_y"] = (None, None) if dot is None else (dot[0] + 0.5, dot[1] + 0.5)
            yield image_id, self.row(image_id, image_bytes, image_name, image, labels, objects=objects,
                                     collection=collection, marker=marker, marked_structure=structure)
