"""Per-split statistics for the cards, computed from the written shards (never from what the parser meant to write).

Images (labelled, unlabelled: `instance_mask` and `num_objects` null), labelled images without objects, objects, objects per
labelled image (min / median / max), object area in pixels (p5 / median / p95) and, per class field given
(NuCLS: `super_classification`), the objects of each class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass
class SplitStats:
    images: int = 0
    unlabelled: int = 0
    empty: int = 0  # labelled images without any object
    objects: int = 0
    per_image: tuple = ()  # (min, median, max) objects per labelled image; () without labelled images
    area: tuple = ()  # (p5, median, p95) object area in pixels; () without objects
    classes: dict = field(default_factory=dict)  # class field -> {class name: objects}


def split_stats(paths: list[str], class_fields: dict | None = None) -> SplitStats:
    """Statistics over the Parquet shards of one split. `class_fields`: object field -> its class names."""
    class_fields = class_fields or {}
    counts, areas, labels = [], [], {name: [] for name in class_fields}
    stats = SplitStats()
    for path in paths:
        # `num_objects` is null exactly for unlabelled rows (`check` enforces it): no mask bytes need reading.
        table = pq.read_table(path, columns=["num_objects", "objects"])
        labelled = pc.is_valid(table.column("num_objects")).to_numpy(zero_copy_only=False)
        stats.images += table.num_rows
        stats.unlabelled += int((~labelled).sum())
        counts.append(table.column("num_objects").to_numpy(zero_copy_only=False)[labelled].astype(np.int64))
        objects = pc.list_flatten(table.column("objects"))
        areas.append(pc.struct_field(objects, "area").to_numpy(zero_copy_only=False))
        for name in class_fields:
            labels[name].append(pc.struct_field(objects, name).to_numpy(zero_copy_only=False))
    counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    areas = np.concatenate(areas) if areas else np.zeros(0)
    stats.objects = int(counts.sum())
    stats.empty = int((counts == 0).sum())
    if counts.size:
        stats.per_image = (int(counts.min()), float(np.median(counts)), int(counts.max()))
    if areas.size:
        p5, median, p95 = np.percentile(areas, [5, 50, 95])
        stats.area = (float(p5), float(median), float(p95))
    for name, names in class_fields.items():
        found = np.bincount(np.concatenate(labels[name]).astype(np.int64), minlength=len(names)) if labels[name] else []
        stats.classes[name] = {label: int(n) for label, n in zip(names, found)}
    return stats
