#!/usr/bin/env python
"""Outline report: vertex counts and IoU of the published `polygons` on the real sample masks.

Not part of the test suite. For every object of the real masks in `../shared/samples` (Aitslab: 50
annotations; NucleusSegData: the 41 label matrices; fluocells: the lab's 8-bit yellow and red masks), read
with the builders' own functions, it compares three outlines of each 4-connected part:

- traced: every point `find_contours` puts on the part's outer boundary (every staircase vertex: what the
  builds published before outlines were simplified);
- corners: the same ring with collinear points dropped (lossless);
- published: `masks.outline_polygons`, Douglas-Peucker at `masks.OUTLINE_TOLERANCE`, halved and then lossless
  where the ring would rasterise below `masks.MIN_OUTLINE_IOU`.

IoU is `masks.outline_iou` of the object's published rings against its pixels (holes filled), for objects of
30 pixels or more (the bound `upload.py check` enforces is 0.9). Writes benchmarks/OUTLINES.md.

    python benchmarks/outlines.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builders import masks  # noqa: E402
from builders.aitslab_bioimaging1 import decode_annotation  # noqa: E402
from builders.fakes.real_samples import samples_folder  # noqa: E402
from builders.fluocells import components, read_binary_mask  # noqa: E402
from builders.nucleussegdata import parse_matrix  # noqa: E402


def aitslab(samples: Path):
    for path in sorted((samples / "aitslab_bioimaging1" / "annotations_prepublication").glob("*.png")):
        yield decode_annotation(path.read_bytes(), path.name)


def nucleussegdata(samples: Path):
    folder = samples / "nucleussegdata" / "dataset"
    for path in sorted((folder / "annotations").iterdir(), key=lambda p: int(p.name)):
        width, height = Image.open(folder / "images" / f"{path.name}.jpg").size
        yield masks.relabel_sequential(parse_matrix(path.read_bytes(), path.name, (height, width)), path.name)


def fluocells(samples: Path):
    for colour in ("yellow", "red"):
        for path in sorted((samples / "fluocells_lab_samples" / colour / "sample" / "masks").iterdir()):
            size = Image.open(path).size
            yield components(read_binary_mask(path.read_bytes(), path.name, size), path.name)


SOURCES = {"aitslab-bioimaging1": aitslab, "nucleussegdata": nucleussegdata, "fluocells": fluocells}


def traced_counts(binary: np.ndarray) -> tuple[list[int], list[int]]:
    """Vertices per 4-connected part: every traced boundary point, and corners only."""
    parts, _ = ndimage.label(binary)
    traced, corners = [], []
    for k, box in enumerate(ndimage.find_objects(parts), start=1):
        part = masks.fill_holes(parts[box] == k)
        ring = max(measure.find_contours(np.pad(part, 1).astype(np.uint8), 0.5), key=masks._enclosed_area)[:-1]
        traced.append(len(ring))
        corners.append(len(masks._drop_collinear(ring)))
    return traced, corners


def summary(values) -> str:
    values = np.asarray(values)
    return f"{np.median(values):.0f} / {np.percentile(values, 95):.0f} / {values.max()}"


def main() -> int:
    samples = samples_folder()
    if not samples.is_dir():
        print(f"no samples folder at {samples}", file=sys.stderr)
        return 2
    lines = ["# Outlines on the real sample masks", "",
             f"Produced by `python benchmarks/outlines.py`: tolerance {masks.OUTLINE_TOLERANCE} px, ring IoU floor "
             f"{masks.MIN_OUTLINE_IOU}. Vertices per ring: median / p95 / max. IoU of each object's published rings "
             "with its pixels (holes filled), objects of 30 px or more: min / p1 / p5 / median.", "",
             "| source | images | objects | rings | traced vertices | corners (lossless) | published vertices | "
             "IoU >= 30 px | outline time per object |", "|---|---|---|---|---|---|---|---|---|"]
    for name, read in SOURCES.items():
        images = objects = 0
        traced, corners, published, ious, seconds = [], [], [], [], 0.0
        for labels in read(samples):
            images += 1
            start = time.perf_counter()
            records = masks.objects_from_labels(labels)
            seconds += time.perf_counter() - start
            for obj in records:
                objects += 1
                x, y, w, h = (int(v) for v in obj["bbox"])
                t, c = traced_counts(labels[y : y + h, x : x + w] == obj["instance_id"])
                traced += t
                corners += c
                published += [len(ring) // 2 for ring in obj["polygons"]]
                if obj["area"] >= 30:
                    ious.append(masks.outline_iou(labels, obj["instance_id"], obj["polygons"], obj["bbox"]))
        iou = np.asarray(ious)
        lines.append(f"| {name} | {images} | {objects} | {len(published)} | {summary(traced)} | {summary(corners)} | "
                     f"{summary(published)} | {iou.min():.3f} / {np.percentile(iou, 1):.3f} / {np.percentile(iou, 5):.3f}"
                     f" / {np.median(iou):.3f} | {1000 * seconds / max(objects, 1):.1f} ms |")
        print(lines[-1])
    (ROOT / "benchmarks" / "OUTLINES.md").write_text("\n".join(lines) + "\n")
    print("wrote benchmarks/OUTLINES.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
