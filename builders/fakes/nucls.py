"""A fake NuCLS zip: `NuCLS_dataset/{rgb,mask,visualization,csv,train_test_splits}/` with every quirk.

Masks are painted as HistomicsTK does: the FOV rectangle first (channel 0 = 253, with its own id
pair), then each nucleus (channel 0 = its class code, ids as channel-1 x channel-2 pairs with unique
products, many above 255 and some that wrap to another id or to 0 in uint8). The archive holds
overlapping nuclei where the box-centre pixel belongs to the other nucleus, rectangle nuclei, a
nucleus completely covered by others, an unlabeled (99) nucleus and every raw class, a border outside
the FOV, an RGBA image and an RGBA mask, masks 2 px smaller and 2 px larger than their image,
`ALL_FOV_LOCATIONS.csv`, a `correction_` prefix, float and empty coordinates. Folds split six
hospitals; the debug fold 999 cuts across them.

`write_from_qc` writes the same layout from the real NuCLS QC database and fold files instead: the
real FOV names, sizes, nuclei, classes and folds, with synthetic pixels.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from itertools import combinations
from pathlib import Path

import numpy as np

from ..masks import polygon_pixels
from ..nucls import ARCHIVES, RAW_CLASSES
from . import noise, png_bytes, write_zip

DEMO_OPTIONS = {}
FIRST_IMAGE = ("NuCLS_dataset.zip", r"/rgb/.*\.png$")  # the archive read first, and an image member of it
HOSPITALS = ("A2", "E2", "D8", "EW", "A7", "GM")
TEST_FOLD = {"A2": 1, "E2": 2, "D8": 3, "EW": 4, "A7": 4, "GM": 5}  # each hospital in one test fold
# Id pairs with unique products, those whose uint8 product would wrap onto 0 or small ids first.
PAIRS = sorted(
    (pair for pair in combinations(range(1, 256), 2) if pair[0] * pair[1] > 255),
    key=lambda pair: ((pair[0] * pair[1]) % 256, pair),
)
_seen = set()
PAIRS = [pair for pair in PAIRS if not (pair[0] * pair[1] in _seen or _seen.add(pair[0] * pair[1]))][:2000]


def fov_name(hospital: str, slide: int, fov: int) -> str:
    left, top = 30000 + 400 * fov, 20000 + 300 * fov
    return (f"TCGA-{hospital}-A{slide:03X}-DX1_id-5ea40b25ddda5f83989{fov:05x}_"
            f"left-{left}_top-{top}_bottom-{top + 300}_right-{left + 310}")


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 12) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    points = np.round(np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1))
    return np.vstack([points, points[:1]])  # closed: first point = last point


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], dtype=np.float64)


class _FOV:
    """One FOV being painted: mask channels, the expected labels and the CSV rows."""

    def __init__(self, width: int, height: int, margin: int, rng: np.random.Generator, rect: tuple | None = None):
        """`rect`: the FOV rectangle (xmin, ymin, xmax, ymax, inclusive); else `margin` px inside the image."""
        self.width, self.height, self.rng = width, height, rng
        self.mask = np.zeros((height, width, 3), dtype=np.uint8)
        x0, y0, x1, y1 = rect or (margin, margin, width - margin - 1, height - margin - 1)
        self.mask[y0:y1 + 1, x0:x1 + 1] = (253, 1, 2)  # the FOV rectangle, its own id
        self.paint = np.full((height, width), -1, dtype=np.int64)  # index of the nucleus painted last
        self.nuclei = []
        self.pairs = iter(PAIRS[rng.integers(0, 40):])

    def add(self, raw: str, points: np.ndarray, kind: str = "polyline", written: str | None = None) -> int:
        """Paint a nucleus (a `rectangle` or `point` as its filled box, clipped to the image); `written`: its
        raw class as the CSV spells it (e.g. with a `correction_` prefix)."""
        code = RAW_CLASSES[raw][0]
        pair = next(self.pairs)
        if kind == "polyline":
            rr, cc = polygon_pixels(points, (self.height, self.width))
        else:
            x0, y0 = np.maximum(points.min(axis=0).astype(int), 0)
            x1, y1 = points.max(axis=0).astype(int)
            rr, cc = np.mgrid[y0:min(y1 + 1, self.height), x0:min(x1 + 1, self.width)].reshape(2, -1)
        self.mask[rr, cc] = (code, *pair)
        self.paint[rr, cc] = len(self.nuclei)
        self.nuclei.append({"raw": raw, "type": kind, "points": points, "written": written or raw})
        return len(self.nuclei) - 1


def paint_fov(rng: np.random.Generator, raws: list[str], width: int, height: int, quirks: set, scale: int = 1) -> _FOV:
    """Nuclei in slots `12 * scale` px apart (radius 3-5 px times `scale`), after the quirks."""
    fov = _FOV(width, height, margin=4, rng=rng)
    raws = list(raws)
    if "overlap" in quirks:  # a big nucleus, then a small one over its box centre
        fov.add(raws.pop(), ellipse(24, 24, 12, 10))
        fov.add(raws.pop(), ellipse(24, 24, 4, 4))
    if "covered" in quirks:  # a thin sliver, then small boxes until none of it is visible
        sliver = fov.add(raws.pop(), np.array([(50, 10), (53, 10), (63, 20), (63, 23), (60, 23), (50, 13), (50, 10)], float))
        while (fov.paint == sliver).any():
            r, c = np.argwhere(fov.paint == sliver)[0]
            fov.add(raws.pop() if raws else "lymphocyte", box(c - 2, r - 2, c + 2, r + 2), "rectangle")
    step = 12 * scale
    slots = [(x, y) for y in range(32 + step, height - 8 * scale, step) for x in range(step, width - 10 * scale, step)]
    if len(slots) < len(raws):
        raise ValueError(f"{len(raws)} nuclei do not fit in {width}x{height} at scale {scale}")
    for raw, (x, y) in zip(raws, slots):
        if rng.random() < 0.3:
            fov.add(raw, box(x - 4 * scale, y - 3 * scale, x + 4 * scale, y + 3 * scale), "rectangle")
        else:
            fov.add(raw, ellipse(x, y, rng.uniform(3, 5) * scale, rng.uniform(3, 5) * scale))
    return fov


def csv_text(fov: _FOV, order: list[int], quirks: set) -> bytes:
    lines = [",raw_classification,main_classification,super_classification,type,xmin,ymin,xmax,ymax,coords_x,coords_y"]
    for row, index in enumerate(order):
        nucleus = fov.nuclei[index]
        _, main, sup = RAW_CLASSES[nucleus["raw"]]
        raw = ("correction_" if "correction" in quirks and row == 0 else "") + nucleus["written"]
        points = nucleus["points"].astype(int)
        xs, ys = [str(v) for v in points[:, 0]], [str(v) for v in points[:, 1]]
        if "float" in quirks and row == 1:
            xs = [f"{v}.0" for v in xs]
        if "empty" in quirks and row == 2 and len(xs) > 4:
            xs[1] = ys[1] = ""
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        lines.append(f'{row},{raw},{main},{sup},{nucleus["type"]},{x0},{y0},{x1},{y1},"{",".join(xs)}","{",".join(ys)}"')
    return ("\n".join(lines) + "\n").encode()


def image_for(fov: _FOV, rng: np.random.Generator, rgba: bool, grain: int = 1, sigma: float = 8) -> bytes:
    """An H&E-like RGB(A) PNG: pink stroma, purple nuclei, noise in `grain`-px squares (none: flat colours)."""
    pink = np.array([235, 170, 200], dtype=np.float64)
    purple = np.array([90, 50, 140], dtype=np.float64)
    rgb = np.where((fov.paint >= 0)[..., None], purple, pink)
    if sigma:
        rgb = rgb + noise(rng, fov.height, fov.width, sigma, grain)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if rgba:
        rgb = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    return png_bytes(rgb)


def write_archives(out_dir, seed: int = 0, extra: list | None = None) -> dict:
    """Write `NuCLS_dataset.zip` into `out_dir`. Returns `{"archives": {"all": path}, "fovs": {fov: {...}},
    "folds": {fold: {"train": [fov], "test": [fov]}}}`; each FOV entry has `labels` (the expected
    instance mask, CSV row k+1 on the pixels it owns), `classes` (per CSV row: raw, main, super, type),
    `hospital`, `slide` and `rgba`.

    `extra`: more FOVs after the 12 with quirks, as `(width, height, nuclei)`, with nuclei of the
    real size (scale 3) and PNGs of the real size (noise grain 2), spread over the six hospitals and
    20 more slides each (benchmark replicas).
    """
    rng = np.random.default_rng(seed)
    root = ARCHIVES["all"].folder
    members = {f"{root}/csv/ALL_FOV_LOCATIONS.csv": b",fovname,xmin,ymin,xmax,ymax\n"}
    every_raw = list(RAW_CLASSES)
    result = {"archives": {}, "fovs": {}, "folds": {}}
    slides = {}

    def add_fov(n, hospital, slide, width, height, raws, quirks, scale=1, grain=1):
        fov = paint_fov(rng, raws, width, height, quirks, scale)
        name = fov_name(hospital, slide, n)
        order = [int(i) for i in rng.permutation(len(fov.nuclei))]  # CSV order is not paint order
        row_of = {index: row for row, index in enumerate(order)}
        labels = np.zeros(fov.paint.shape, np.uint16)
        painted = fov.paint >= 0
        labels[painted] = [row_of[i] + 1 for i in fov.paint[painted]]
        mask = fov.mask
        if n == 2:
            mask = mask[:-2, :-2]  # 2 px smaller than the image
            labels[-2:, :] = 0
            labels[:, -2:] = 0
        elif n == 4:
            mask = np.pad(mask, ((0, 2), (0, 2), (0, 0)), constant_values=7)  # 2 px larger
        rgba = n == 3
        if n == 5:
            mask = np.dstack([mask, np.full(mask.shape[:2], 255, np.uint8)])  # RGBA mask
        members[f"{root}/rgb/{name}.png"] = image_for(fov, rng, rgba, grain)
        members[f"{root}/mask/{name}.png"] = png_bytes(mask)
        members[f"{root}/visualization/{name}.png"] = image_for(fov, rng, False, grain)
        members[f"{root}/csv/{name}.csv"] = csv_text(fov, order, quirks)
        classes = [(fov.nuclei[i]["raw"], *RAW_CLASSES[fov.nuclei[i]["raw"]][1:], fov.nuclei[i]["type"]) for i in order]
        roi = np.zeros((height, width), bool)
        roi[: mask.shape[0], : mask.shape[1]] = mask[:height, :width, 0] != 0
        result["fovs"][name] = {"labels": labels, "classes": classes, "hospital": hospital,
                                "slide": name.split("_id")[0], "rgba": rgba, "roi": roi}
        slides.setdefault(hospital, set()).add(name.split("_id")[0])

    n = 0
    for h, hospital in enumerate(HOSPITALS):
        for slide in range(1 + (h < 2)):
            for _ in range(1 + (slide == 0 and h % 2 == 0)):
                quirks = {"overlap", "covered"} if n % 3 == 0 else set()
                quirks |= {"correction", "float", "empty"} if n == 1 else set()
                width, height = 96 + 8 * (n % 3), 80 + 8 * (n % 2)
                raws = [every_raw[(n * 5 + i) % len(every_raw)] for i in range(10)]
                if n == 0:
                    raws = every_raw[::-1] + raws  # every raw class in the first FOV
                add_fov(n, hospital, 16 * h + slide, width, height, raws, quirks)
                n += 1
    for width, height, nuclei in extra or []:
        h = n % len(HOSPITALS)
        raws = [every_raw[(n * 5 + i) % len(every_raw)] for i in range(nuclei)]
        add_fov(n, HOSPITALS[h], 16 * h + 2 + (n // len(HOSPITALS)) % 20, width, height, raws, set(), scale=3, grain=2)
        n += 1
    debug_train = {sorted(slides["A2"])[0], sorted(slides["D8"])[0]}
    debug_test = {sorted(slides["GM"])[0]}
    for fold in (1, 2, 3, 4, 5, 999):
        if fold == 999:
            train, test = debug_train, debug_test
        else:
            test = {s for h, ss in slides.items() if TEST_FOLD[h] == fold for s in ss}
            train = {s for ss in slides.values() for s in ss} - test
        for split, chosen in (("train", train), ("test", test)):
            rows = [",slide_name,hospital,type,fold"] + [
                f"{i},{s},{s.split('-')[1]},{split},{fold}" for i, s in enumerate(sorted(chosen))]
            members[f"{root}/train_test_splits/fold_{fold}_{split}.csv"] = ("\n".join(rows) + "\n").encode()
        result["folds"][fold] = {split: sorted(f for f, e in result["fovs"].items() if e["slide"] in chosen)
                                 for split, chosen in (("train", train), ("test", test))}
    result["archives"]["all"] = write_zip(Path(out_dir) / ARCHIVES["all"].name, members)
    return result


def qc_fovs(sqlite_path, per_slide: int | None = None) -> list[dict]:
    """The FOVs of a NuCLS QC database (`fov_meta`) with their nuclei (`annotation_elements`), in `fov_id`
    order, one per name (the April 2020 database lists two A2 FOVs twice: 1,746 rows, 1,744 names). Each:
    `name`, `slide`, `rect` (xmin, ymin, xmax, ymax) and `nuclei` [(group, type, (xmin, ymin, xmax, ymax))]
    in `ann_id` order. `per_slide`: only the first so many FOVs of each slide."""
    con = sqlite3.connect(f"{Path(sqlite_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        nuclei = {}
        for fov_id, *nucleus, x0, y0, x1, y1 in con.execute(
                'SELECT fov_id, "group", type, xmin, ymin, xmax, ymax FROM annotation_elements ORDER BY ann_id'):
            nuclei.setdefault(fov_id, []).append((*nucleus, (x0, y0, x1, y1)))
        fovs, per = {}, {}
        for fov_id, name, slide, *rect in con.execute(
                "SELECT fov_id, fovname, slide_name, xmin, ymin, xmax, ymax FROM fov_meta ORDER BY fov_id"):
            if name in fovs or per.get(slide, 0) == per_slide:
                continue
            per[slide] = per.get(slide, 0) + 1
            fovs[name] = {"name": name, "slide": slide, "rect": tuple(rect), "nuclei": nuclei.get(fov_id, [])}
    finally:
        con.close()
    return list(fovs.values())


def paint_qc_fov(rng: np.random.Generator, fov: dict) -> tuple[_FOV, list[int]]:
    """(painted FOV, nucleus index per CSV row) of a `qc_fovs` entry. The image has the FOV rectangle in
    the middle (margins of xmin / ymin on both sides: the NuCLS code says the annotated FOV is slightly
    smaller than the RGB), so nuclei overhanging the far sides are clipped. Nuclei are painted largest box
    first, as HistomicsTK does; a polyline is the ellipse inscribed in its box, a point a 1-px box."""
    x0, y0, x1, y1 = fov["rect"]
    painted = _FOV(x1 + 1 + x0, y1 + 1 + y0, 0, rng, rect=fov["rect"])
    areas = [(bx1 - bx0) * (by1 - by0) for _, _, (bx0, by0, bx1, by1) in fov["nuclei"]]
    index = {}
    for i in sorted(range(len(areas)), key=lambda i: -areas[i]):
        group, kind, (bx0, by0, bx1, by1) = fov["nuclei"][i]
        points = (ellipse((bx0 + bx1) / 2, (by0 + by1) / 2, (bx1 - bx0) / 2, (by1 - by0) / 2) if kind == "polyline"
                  else box(bx0, by0, bx1, by1))
        index[i] = painted.add(group.removeprefix("correction_"), points, kind, written=group)
    return painted, [index[i] for i in range(len(fov["nuclei"]))]


def fold_members(data: bytes) -> set[str]:
    """Slide names of a fold file (column `slide_name`)."""
    return {row["slide_name"] for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}


def write_from_qc(out_dir, sqlite_path, fold_folder, per_slide: int | None = None, realistic: bool = False,
                  seed: int = 0) -> dict:
    """Write `NuCLS_dataset.zip` into `out_dir` from a NuCLS QC database and the fold files in `fold_folder`
    (copied byte for byte): every FOV of the database (or the first `per_slide` of each slide) under its
    real name, with its real size and nuclei (box, type and raw class as recorded, `correction_` prefixes
    kept; main and super class from the builder's table), and `ALL_FOV_LOCATIONS.csv` with the real FOV
    rectangles. Pixels are flat colours, or noisy like real micrographs with `realistic` (benchmark replicas).
    Returns `{"archives": {"all": path}, "fovs": {fov: {"slide", "hospital", "size": (w, h), "classes"}},
    "folds": {fold: {"train": [fov], "test": [fov]}}}`; `classes` per CSV row: raw, main, super, type.
    """
    rng = np.random.default_rng(seed)
    root = ARCHIVES["all"].folder
    fovs = qc_fovs(sqlite_path, per_slide)
    locations = [",fovname,xmin,ymin,xmax,ymax"] + [f"{i},{fov['name']},{','.join(map(str, fov['rect']))}"
                                                      for i, fov in enumerate(fovs)]
    members = {f"{root}/csv/ALL_FOV_LOCATIONS.csv": ("\n".join(locations) + "\n").encode()}
    result = {"archives": {}, "fovs": {}, "folds": {}}
    for fov in fovs:
        painted, order = paint_qc_fov(rng, fov)
        name = fov["name"]
        image = image_for(painted, rng, False, grain=2, sigma=8 if realistic else 0)
        members[f"{root}/rgb/{name}.png"] = members[f"{root}/visualization/{name}.png"] = image
        members[f"{root}/mask/{name}.png"] = png_bytes(painted.mask)
        members[f"{root}/csv/{name}.csv"] = csv_text(painted, order, set())
        result["fovs"][name] = {
            "slide": fov["slide"], "hospital": fov["slide"].split("-")[1], "size": (painted.width, painted.height),
            "classes": [(painted.nuclei[i]["raw"], *RAW_CLASSES[painted.nuclei[i]["raw"]][1:], painted.nuclei[i]["type"])
                        for i in order]}
    for path in sorted(Path(fold_folder).glob("fold_*_*.csv")):
        members[f"{root}/train_test_splits/{path.name}"] = data = path.read_bytes()
        fold, split = path.stem.split("_")[1:]
        slides = fold_members(data)
        result["folds"].setdefault(int(fold), {})[split] = sorted(f for f, e in result["fovs"].items()
                                                                   if e["slide"] in slides)
    result["archives"]["all"] = write_zip(Path(out_dir) / ARCHIVES["all"].name, members)
    return result


def expected_counts(manifest: dict) -> dict:
    """{config: {split: (images, objects)}} that a build of `write_archives`' archives holds."""
    fovs = manifest["fovs"]

    def counts(names):
        return len(names), sum(len(fovs[name]["classes"]) for name in names)
    return {"all": {"train": counts(list(fovs))},
            **{f"fold_{fold}": {split: counts(names) for split, names in splits.items()}
               for fold, splits in manifest["folds"].items()}}
