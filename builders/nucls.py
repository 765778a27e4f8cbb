"""NuCLS (corrected single-rater): breast-cancer H&E nuclei with a three-level class hierarchy.

What: 1,744 fields of view (FOVs) from 124 TCGA breast-cancer slides scanned at 0.2 um/px, RGB PNG of
variable size (about 250-800 px per side), with 59,485 nuclei outlined (polylines), boxed (rectangles)
or, for 111 corrections, clicked (points) by pathologists and non-pathologists and corrected by a
study coordinator. Each nucleus has a raw class (13), a main class (7 + AMBIGUOUS) and a super class
(4 + AMBIGUOUS).
Where: the NuCLS site (Google Drive; archive names unknown) and a mirror zip `NuCLS_dataset.zip` that
unpacks to `NuCLS_dataset/{rgb,mask,csv,visualization,train_test_splits}/`.
Configs: `all` (every FOV in `train`), `fold_1` ... `fold_5` (`train` / `test`, split by hospital)
and `fold_999` (the authors' tiny debug fold, where the archive has it). Each FOV is stored once; the
configs list the parts they use.
Counts: 1,744 FOVs and 59,485 nuclei from 18 hospitals.
Licence: CC0 1.0 (data). Cite Amgad et al., GigaScience 11 (2022) giac037.

NOTE: the mask encodes the class code in channel 0 (0 = outside the FOV, 253 = inside the FOV on no
      nucleus) and the instance as channel 1 x channel 2, computed in int32 (a uint8 product overflows);
      pixels whose channel 0 is 0 or 253 are zeroed first, since the FOV rectangle carries its own id.
NOTE: a mask can be a few pixels smaller or larger than its image: it is padded with zeros or cropped,
      top-left aligned. A 4th (alpha) channel of an image or mask is ignored when decoding; the image
      bytes are stored as published (RGBA where upstream is RGBA).
NOTE: objects are the rows of the FOV's CSV, in CSV order: `instance_id` k is `objects[k-1]`. Each row
      is matched one-to-one to the mask instance its polygon (or box) overlaps best, by intersection over
      union, never by the pixel at its box centre, which belongs to another nucleus where nuclei overlap.
NOTE: nuclei are painted largest first, so small nuclei cover large ones; a nucleus completely covered
      by others keeps its record with `area` 0, its CSV box as `bbox` and its CSV outline as `polygons`.
      A mask instance that no CSV row overlaps is dropped from the mask, with a warning.
NOTE: `rectangle` nuclei (`annotation_type`) were only boxed: their mask is the filled box. Exclude
      them from segmentation losses if box outlines would mislead the model. `point` nuclei were only
      clicked: their box is one pixel.
NOTE: `polygons` holds the CSV outline, converted to the pixel-edge frame of `bbox` and clipped to the image.
      CSV coordinates are pixel indices. The masks were painted with HistomicsTK, which fills a polyline's
      pixels whose index lies inside it and a rectangle's box inclusively: so a polyline point (x, y)
      becomes (x + 0.5, y + 0.5), the pixel's centre, and its outline rasterises (centre rule) to exactly
      the pixels painted; a rectangle becomes its box edges (xmin, ymin)-(xmax + 1, ymax + 1), exactly its
      `bbox`; a point, its pixel's square. `bbox` and `area` come from the stored mask. Empty coordinate
      fields are skipped and float ones kept; a polyline with fewer than 3 points is outlined by its box.
NOTE: where a CSV outline disagrees with the mask (IoU below 0.9 with the nucleus' own pixels, for nuclei of
      30 pixels or more: seen at FOV edges), `polygons` is traced from the mask instead, as in the other
      sources, so that every outline agrees with `instance_mask`.
NOTE: `csv/ALL_FOV_LOCATIONS.csv` (any case) is not a nucleus table and is skipped; a `correction_`
      prefix on a raw class is removed. Fold membership is by exact slide name (the FOV name before
      `_id`), never by substring.
NOTE: the main and super vocabularies include `other_nucleus` (the mirror's loading script omits it).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import datasets
import numpy as np

from . import masks
from .archives import Archive, Tree
from .base import Imaging, OfficialCounts, SegmentationBuilder, SourceConfig
from .errors import BuildError, check_or_warn, warn

HOMEPAGE = "https://sites.google.com/view/nucls"
MIRROR = "https://huggingface.co/datasets/minhanhto09/NuCLS_dataset"

ARCHIVES = {
    "all": Archive("NuCLS_dataset.zip", "", None, "NuCLS_dataset", manual=f"{HOMEPAGE} (or the mirror {MIRROR})",
                   contains=("rgb", "mask", "csv", "train_test_splits")),
}

# raw class -> (mask channel-0 code, main class, super class)
RAW_CLASSES = {
    "tumor": (1, "tumor_nonMitotic", "tumor_any"),
    "fibroblast": (2, "nonTILnonMQ_stromal", "nonTIL_stromal"),
    "lymphocyte": (3, "lymphocyte", "sTIL"),
    "plasma_cell": (4, "plasma_cell", "sTIL"),
    "macrophage": (5, "macrophage", "nonTIL_stromal"),
    "mitotic_figure": (6, "tumor_mitotic", "tumor_any"),
    "vascular_endothelium": (7, "nonTILnonMQ_stromal", "nonTIL_stromal"),
    "myoepithelium": (8, "other_nucleus", "other_nucleus"),
    "apoptotic_body": (9, "AMBIGUOUS", "AMBIGUOUS"),
    "neutrophil": (10, "other_nucleus", "other_nucleus"),
    "ductal_epithelium": (11, "other_nucleus", "other_nucleus"),
    "eosinophil": (12, "other_nucleus", "other_nucleus"),
    "unlabeled": (99, "AMBIGUOUS", "AMBIGUOUS"),
}
MAIN_CLASSES = ["tumor_nonMitotic", "tumor_mitotic", "nonTILnonMQ_stromal", "macrophage", "lymphocyte",
                "plasma_cell", "other_nucleus", "AMBIGUOUS"]
SUPER_CLASSES = ["tumor_any", "nonTIL_stromal", "sTIL", "other_nucleus", "AMBIGUOUS"]
ANNOTATION_TYPES = ["polyline", "rectangle", "point"]  # point: a zero-size box (HistomicsTK's point element)
OUTSIDE, FOV_REGION = 0, 253  # mask channel-0 codes that carry no nucleus

FOLDS = (1, 2, 3, 4, 5, 999)
DEBUG_FOLD = 999  # optional: the authors' published fold files are folds 1-5 only
HOSPITAL_FOVS = {
    "A2": 336, "E2": 209, "D8": 183, "EW": 138, "A7": 134, "GM": 126, "OL": 114, "AN": 108, "BH": 108,
    "AR": 85, "S3": 43, "AO": 42, "LL": 28, "C8": 26, "A1": 23, "AC": 18, "AQ": 18, "GI": 5,
}
OFFICIAL_COUNTS = {"all": OfficialCounts({"train": (1744, 59485)})}
CSV_COLUMNS = ("raw_classification", "main_classification", "super_classification", "type",
               "xmin", "ymin", "xmax", "ymax", "coords_x", "coords_y")

CITATION = """\
@article{amgad2022nucls,
  author  = {Amgad, M. and Atteya, L. A. and Hussein, H. and Mohammed, K. H. and Hafiz, E. and Elsebaie, M. A. and Alhusseiny, A. M. and AlMoslemany, M. A. and Elmatboly, A. M. and Pappalardo, P. A. and Sakr, R. A. and others},
  title   = {{NuCLS}: A scalable crowdsourcing approach and dataset for nucleus classification and segmentation in breast cancer},
  journal = {GigaScience},
  volume  = {11},
  pages   = {giac037},
  year    = {2022},
  doi     = {10.1093/gigascience/giac037}
}
"""



def slide_of(fov: str) -> str:
    return fov.split("_id")[0]


def hospital_of(fov: str) -> str:
    parts = slide_of(fov).split("-")
    return parts[1] if len(parts) > 1 else ""


def find_fovs(tree: Tree) -> tuple[str, dict, dict]:
    """(root, {fov: {"rgb", "mask", "csv"} member names}, {fold: {"train"|"test": member}}) of the archive."""
    roots = sorted({n.rsplit("/", 2)[0] if n.count("/") >= 2 else "" for n in tree.files
                    if n.rsplit("/", 2)[-2:-1] == ["rgb"] and n.lower().endswith(".png")})
    if len(roots) != 1:
        raise BuildError(f"{tree.label}: expected one folder holding rgb/<fov>.png, found {len(roots) or 'none'}"
                         + (f" ({', '.join(r or '.' for r in roots)})" if roots else ""))
    root = roots[0] + "/" if roots[0] else ""
    kinds = {"rgb": ".png", "mask": ".png", "csv": ".csv"}
    found, folds = {}, {}
    for name in tree.files:
        if not name.startswith(root):
            continue
        folder, _, filename = name[len(root):].rpartition("/")
        if folder in kinds and filename.lower().endswith(kinds[folder]):
            if folder == "csv" and filename.lower() == "all_fov_locations.csv":
                continue  # FOV regions, not a nucleus table
            found.setdefault(filename[: -len(kinds[folder])], {})[folder] = name
        elif folder == "train_test_splits":
            match = re.fullmatch(r"fold_(\d+)_(train|test)\.csv", filename)
            if match:
                folds.setdefault(int(match[1]), {})[match[2]] = name
    complete = {}
    for fov, members in sorted(found.items()):
        missing = [kind for kind in kinds if kind not in members]
        if missing:
            present = next(iter(members.values()))
            check_or_warn(False, f"{tree.where(present)}: FOV {fov} has no {' or '.join(missing)} file")
            continue
        complete[fov] = members
    for fold in FOLDS:
        for split in ("train", "test"):
            if split not in folds.get(fold, {}) and (fold != DEBUG_FOLD or fold in folds):
                raise BuildError(f"{tree.label}: {root}train_test_splits/fold_{fold}_{split}.csv is missing")
    return root, complete, {fold: folds[fold] for fold in FOLDS if fold in folds}


def read_fold(data: bytes, name: str) -> set[str]:
    """Slide names listed in a fold file (column `slide_name`)."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BuildError(f"{name}: not a readable CSV file ({exc})") from exc
    if not rows or "slide_name" not in rows[0]:
        raise BuildError(f"{name}: no header with a slide_name column")
    column = rows[0].index("slide_name")
    slides = set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) <= column or not row[column].strip():
            raise BuildError(f"{name}: line {line}: no slide name")
        slides.add(row[column].strip())
    return slides


def fold_layout(fovs: list[str], folds: dict, where: str) -> tuple[dict, dict]:
    """Parts of FOVs with the same membership in every fold, and {config: {split: [parts]}}.

    `folds`: {fold: {"train": slides, "test": slides}} for folds 1-5 and, if the archive has it, 999.
    Checks that every fold's train and test are disjoint and that the five test folds partition the FOVs.
    """
    present = [fold for fold in FOLDS if fold in folds]
    for fold in present:
        both = folds[fold]["train"] & folds[fold]["test"]
        if both:
            raise BuildError(f"{where}: fold {fold}: slides in both train and test: {', '.join(sorted(both)[:5])}")
    membership = {}
    for fov in fovs:
        slide = slide_of(fov)
        membership[fov] = tuple(
            "train" if slide in folds[k]["train"] else "test" if slide in folds[k]["test"] else "-" for k in present)
        if "-" in membership[fov][:5]:
            missing = [str(k) for k, split in zip(FOLDS[:5], membership[fov]) if split == "-"]
            raise BuildError(f"{where}: FOV {fov} (slide {slide}) is in neither train nor test of fold {', '.join(missing)}")
        if membership[fov][:5].count("test") != 1:
            raise BuildError(f"{where}: FOV {fov} (slide {slide}) is in the test set of {membership[fov][:5].count('test')} "
                             f"of folds 1-5; the five test folds must partition the FOVs")
    signatures = sorted(set(membership.values()))
    names = {signature: f"part_{i:02d}" for i, signature in enumerate(signatures)}
    parts = {names[sig]: [fov for fov in fovs if membership[fov] == sig] for sig in signatures}
    layout = {"all": {"train": list(parts)}}
    for i, fold in enumerate(present):
        layout[f"fold_{fold}"] = {}
        for split in ("train", "test"):
            members = [names[sig] for sig in signatures if sig[i] == split]
            if not members:
                raise BuildError(f"{where}: fold {fold} {split}: none of its slides has a FOV")
            layout[f"fold_{fold}"][split] = members
    return parts, layout


def _number(value: str, name: str, line: int, column: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise BuildError(f"{name}: line {line}: {column} {value!r} is not a number")
    return number


def read_nuclei(data: bytes, name: str) -> list[dict]:
    """The nucleus rows of a FOV CSV: classes, type, box and outline points."""
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BuildError(f"{name}: not a readable CSV file ({exc})") from exc
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BuildError(f"{name}: missing column(s) {', '.join(missing)}")
    nuclei = []
    for line, row in enumerate(rows, start=2):
        if None in row or any(row[c] is None for c in CSV_COLUMNS):
            raise BuildError(f"{name}: line {line}: {len(reader.fieldnames)} fields expected")
        raw = row["raw_classification"].strip().removeprefix("correction_")
        main, sup, kind = (row[c].strip() for c in ("main_classification", "super_classification", "type"))
        for column, value, vocabulary in (("raw_classification", raw, RAW_CLASSES), ("main_classification", main, MAIN_CLASSES),
                                          ("super_classification", sup, SUPER_CLASSES), ("type", kind, ANNOTATION_TYPES)):
            if value not in vocabulary:
                raise BuildError(f"{name}: line {line}: unknown {column} {value!r}")
        box = [_number(row[c], name, line, c) for c in ("xmin", "ymin", "xmax", "ymax")]
        if None in box:
            raise BuildError(f"{name}: line {line}: empty box coordinate")
        xs = [_number(v, name, line, "coords_x") for v in row["coords_x"].split(",")]
        ys = [_number(v, name, line, "coords_y") for v in row["coords_y"].split(",")]
        if len(xs) != len(ys):
            raise BuildError(f"{name}: line {line}: {len(xs)} x but {len(ys)} y coordinates")
        points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()  # closed: the last point repeats the first
        points = np.array(points) if kind == "polyline" and len(points) >= 3 else None  # else the box stands for it
        nuclei.append({"raw": raw, "main": main, "super": sup, "type": kind, "box": box, "points": points})
    return nuclei


def decode_mask(data: bytes, name: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(instance ids int32 with 0 = none, channel 0) of a NuCLS mask, padded or cropped to `shape`."""
    image = masks.decode_image(data, name)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] < 3:
        raise BuildError(f"{name}: expected an 8-bit RGB(A) mask, got PIL mode {image.mode}")
    height, width = shape
    mask = np.zeros((height, width, 3), dtype=np.uint8)  # top-left aligned pad / crop
    mask[: min(height, array.shape[0]), : min(width, array.shape[1])] = array[:height, :width, :3]
    code = mask[..., 0]
    ids = mask[..., 1].astype(np.int32) * mask[..., 2].astype(np.int32)
    ids[(code == OUTSIDE) | (code == FOV_REGION)] = 0
    return ids, code


def footprint(nucleus: dict, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels a CSV row covers: its filled box for a rectangle (as the mask paints it), else its outline's
    interior (the box when the outline is degenerate)."""
    if nucleus["points"] is not None:
        rr, cc = masks.polygon_pixels(nucleus["points"], shape)
        if rr.size:
            return rr, cc
    x0, y0, x1, y1 = (int(round(v)) for v in nucleus["box"])
    y0, y1, x0, x1 = max(y0, 0), min(y1 + 1, shape[0]), max(x0, 0), min(x1 + 1, shape[1])
    rr, cc = np.mgrid[y0:max(y0, y1), x0:max(x0, x1)]
    return rr.ravel(), cc.ravel()


def match_nuclei(ids: np.ndarray, nuclei: list[dict], name: str) -> np.ndarray:
    """uint16 labels where k marks the pixels of `nuclei[k-1]`.

    Each row takes the mask instance it overlaps best (intersection over union of its footprint and the
    instance, then the overlap in pixels), greedily and one-to-one; never the pixel at its box centre.
    """
    if len(nuclei) > masks.MAX_INSTANCES:
        raise BuildError(f"{name}: {len(nuclei)} nuclei, more than a 16-bit mask can hold")
    present, sizes = np.unique(ids, return_counts=True)
    size_of = dict(zip(present.tolist(), sizes.tolist()))
    candidates = []
    for row, nucleus in enumerate(nuclei):
        rr, cc = footprint(nucleus, ids.shape)
        values, counts = np.unique(ids[rr, cc], return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            if value:
                iou = count / (len(rr) + size_of[value] - count)
                candidates.append((-iou, -count, row, value))
    owner, taken = {}, set()  # mask id -> row
    for _, _, row, value in sorted(candidates):
        if row not in taken and value not in owner:
            owner[value] = row
            taken.add(row)
    orphans = [v for v in size_of if v and v not in owner]
    if orphans:
        warn(f"{name}: {len(orphans)} mask instance(s) overlap no CSV row; dropped from the mask")
    lookup = np.array([owner.get(v, -1) + 1 for v in present.tolist()], dtype=np.uint16)  # 0: background, orphans
    return lookup[np.searchsorted(present, ids)]


def outline(nucleus: dict, width: int, height: int) -> list[float]:
    """The nucleus' CSV outline as a flat COCO ring in the pixel-edge frame, clipped to the image (see NOTES)."""
    if nucleus["points"] is not None:
        points = nucleus["points"] + 0.5
    else:
        x0, y0, x1, y1 = nucleus["box"]
        points = np.array([(x0, y0), (x1 + 1, y0), (x1 + 1, y1 + 1), (x0, y1 + 1)])
    return np.clip(points, 0, [width, height]).astype(np.float32).ravel().tolist()


def objects_of(labels: np.ndarray, nuclei: list[dict]) -> list[dict]:
    height, width = labels.shape
    objects = []
    for k, (nucleus, (bbox, area)) in enumerate(zip(nuclei, masks.pixel_boxes(labels, len(nuclei))), start=1):
        if bbox is None:  # painted over by other nuclei: the CSV box (inclusive, as painted) stands in
            x0, y0 = np.clip(nucleus["box"][:2], 0, [width, height])
            x1, y1 = np.clip(np.add(nucleus["box"][2:], 1), 0, [width, height])
            bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        polygons = [outline(nucleus, width, height)]
        if area >= masks.OUTLINE_IOU_MIN_AREA and masks.outline_iou(labels, k, polygons, bbox) < masks.OUTLINE_IOU_BOUND:
            x0, y0, w, h = (int(v) for v in bbox)  # the CSV outline disagrees with the mask: trace the mask
            polygons = masks.outline_polygons(labels[y0:y0 + h, x0:x0 + w] == k, x0, y0)
        objects.append({
            "instance_id": k, "bbox": bbox, "area": area, "polygons": polygons,
            "raw_classification": nucleus["raw"], "main_classification": nucleus["main"],
            "super_classification": nucleus["super"], "annotation_type": nucleus["type"],
        })
    return objects


IMAGING = {"*": Imaging(
    modality="brightfield whole-slide imaging (scanned diagnostic slides of The Cancer Genome Atlas)",
    stain="hematoxylin and eosin (H&E)", organism="human", sample="breast cancer tissue",
    magnification=None, pixel_size_um=0.2,  # the FOV images are resampled to 0.2 um per pixel
    sources=(("Amgad et al. 2022, GigaScience 11:giac037, and the NuCLS data page", "https://sites.google.com/view/nucls"),),
)}

class NuCLS(SegmentationBuilder):
    """NuCLS corrected single-rater: 1,744 H&E FOVs, 59,485 classified nuclei, hospital-wise folds."""

    SOURCE_ID = "nucls"
    PRETTY_NAME = "NuCLS: classified nuclei in breast-cancer H&E (corrected single-rater)"
    LICENSE = "cc0-1.0"
    EXTRA_COLUMNS = {"slide": datasets.Value("string"), "hospital": datasets.Value("string"), "roi_mask": datasets.Image(),
                     **{f"num_{name}": datasets.Value("int32") for name in SUPER_CLASSES}}
    EXTRA_OBJECT_FIELDS = {
        "raw_classification": datasets.ClassLabel(names=list(RAW_CLASSES)),
        "main_classification": datasets.ClassLabel(names=MAIN_CLASSES),
        "super_classification": datasets.ClassLabel(names=SUPER_CLASSES),
        "annotation_type": datasets.ClassLabel(names=ANNOTATION_TYPES),
    }
    COLUMN_DOCS = {
        "slide": "TCGA slide name, the FOV name before `_id`, e.g. `TCGA-AN-A0XU-DX1`",
        "hospital": "TCGA tissue-source-site code from the slide name, e.g. `AN`; folds are split by hospital",
        "roi_mask": "8-bit PNG of the image size: 255 inside the annotated FOV region (mask channel 0 non-zero), else 0",
        **{f"num_{name}": f"nuclei of super class `{name}` in the FOV (a column the Hub viewer charts and filters)"
           for name in SUPER_CLASSES},
        "objects.raw_classification": "one of 13 raw classes (`unlabeled` = code 99)",
        "objects.main_classification": "7 main classes + `AMBIGUOUS`",
        "objects.super_classification": "4 super classes + `AMBIGUOUS`",
        "objects.annotation_type": "`polyline` (traced outline), `rectangle` (box only: its mask is the filled box) "
                                   "or `point` (clicked: a one-pixel box)",
    }
    BYTES_PER_EXAMPLE = 1_500_000  # ~700x700 RGB PNG ~1 MB + masks, preview, ~35 objects
    TAGS = ("histopathology", "H&E", "breast-cancer", "nuclei", "nucleus-classification")
    CLASS_LABEL = "super_classification"
    PARSERS = {r"/csv/TCGA.*\.csv$": read_nuclei, r"/train_test_splits/fold_.*\.csv$": read_fold}
    PARTS_CONFIG = "parts"
    BUILDER_CONFIGS = [
        SourceConfig(name="all", description="every FOV in split train"),
        *[SourceConfig(name=f"fold_{k}", description=f"cross-validation fold {k}: train / test by hospital") for k in FOLDS[:5]],
        SourceConfig(name="fold_999", description="the authors' tiny debug fold: train / test"),
        SourceConfig(name="parts", description="internal: every FOV once, in parts shared by the configs"),
    ]
    DEFAULT_CONFIG_NAME = "all"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._read = None  # see _folds

    def parts_layout(self) -> dict:
        return self._folds(self.dl_manager)[3]

    def _folds(self, dl_manager) -> tuple:
        """(tree, FOV files, parts, layout) of the archive, found and checked once per builder."""
        if self._read is None:
            tree = self.locate(dl_manager, self.ARCHIVES["all"])
            root, fovs, fold_files = find_fovs(tree)
            folds = {k: {split: read_fold(tree.read(name), tree.where(name)) for split, name in files.items()}
                     for k, files in fold_files.items()}
            if DEBUG_FOLD not in folds:
                warn(f"{tree.label}: no {root}train_test_splits/fold_{DEBUG_FOLD}_*.csv: no config fold_{DEBUG_FOLD}")
            per_hospital = Counter(hospital_of(fov) for fov in fovs)
            differences = [f"{h}: {per_hospital.get(h, 0)} (official {n})" for h, n in sorted(HOSPITAL_FOVS.items())
                           if per_hospital.get(h, 0) != n]
            differences += [f"{h}: {n} (no official count)" for h, n in sorted(per_hospital.items()) if h not in HOSPITAL_FOVS]
            check_or_warn(not differences, f"{tree.label}: FOVs per hospital differ from the official counts: "
                                           f"{'; '.join(differences)}")
            parts, layout = fold_layout(sorted(fovs), folds, tree.label + ":" + root + "train_test_splits")
            self._read = tree, fovs, parts, layout
        return self._read

    def _split_generators(self, dl_manager):
        tree, fovs, parts, layout = self._folds(dl_manager)
        if self.config.name != self.PARTS_CONFIG:  # one config on its own: its splits directly
            parts = {split: sorted(fov for part in members for fov in parts[part])
                     for split, members in layout[self.config.name].items()}
        return [
            datasets.SplitGenerator(name=part, gen_kwargs={"tree": tree, "fovs": [(fov, fovs[fov]) for fov in members]})
            for part, members in parts.items()
        ]

    def _generate_examples(self, tree: Tree, fovs: list):
        for fov, members in fovs:
            image_bytes = tree.read(members["rgb"])
            image = masks.decode_image(image_bytes, tree.where(members["rgb"]))
            ids, code = decode_mask(tree.read(members["mask"]), tree.where(members["mask"]), (image.height, image.width))
            nuclei = read_nuclei(tree.read(members["csv"]), tree.where(members["csv"]))
            labels = match_nuclei(ids, nuclei, tree.where(members["mask"]))
            objects = objects_of(labels, nuclei)
            per_class = Counter(nucleus["super"] for nucleus in nuclei)
            yield fov, self.row(
                fov, image_bytes, members["rgb"], image, labels, objects=objects,
                slide=slide_of(fov), hospital=hospital_of(fov),
                roi_mask={"bytes": masks.png8(code != OUTSIDE), "path": f"{fov}_roi.png"},
                **{f"num_{name}": per_class.get(name, 0) for name in SUPER_CLASSES},
            )
