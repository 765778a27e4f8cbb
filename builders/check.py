"""`upload.py check DIR`: validate a staged Hub repo folder offline, as the loader and viewer would see it.

Errors: no README or no YAML; no `configs`; a `data_files` pattern matching nothing; split sizes
in `dataset_info` that differ from the Parquet row counts; README features that differ from the
features embedded in the Parquet files; a row group above the viewer's 300 MB scan limit; a file
without page index; an image cell Pillow cannot decode or save as JPEG/PNG; a fixed-size list holding
nulls; a row whose objects disagree with its instance mask (`num_objects` not their number, ids beyond the
objects, `instance_id`, `area` or `bbox` not those of the mask, outlines outside the image or with an IoU below
`masks.OUTLINE_IOU_BOUND` with the object's pixels, for objects of `masks.OUTLINE_IOU_MIN_AREA` pixels or more);
builder leftovers
(`LICENSE`, `dataset_info.json`, a `.py` script); a config that does not load or stream.
Warnings: row groups above about 100 MB; a split above 5 GB; first rows (without images) above the
viewer's 200 kB first-rows budget, where it cuts cells short.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tempfile
from dataclasses import dataclass, field

import datasets
import numpy as np
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from . import masks
from .cards import metadata_problems, split_files
from .schema import null_fixed_list_problem
from .errors import no_progress_bars
from .staging import row_group_problems

SPLIT_WARN_BYTES = 5_000_000_000
FIRST_ROWS, FIRST_ROWS_BYTES = 10, 200_000  # the Hub viewer's first-rows response: at least 10 rows in 200 kB
MAX_ROW_ERRORS = 20  # per file: a broken build is not listed object by object


@dataclass
class Report:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    checked: list = field(default_factory=list)  # (config, split, rows)

    @property
    def ok(self) -> bool:
        return not self.errors


def parquet_features(parquet: pq.ParquetFile) -> datasets.Features | None:
    metadata = parquet.schema_arrow.metadata or {}
    if b"huggingface" not in metadata:
        return None
    return datasets.Features.from_dict(json.loads(metadata[b"huggingface"])["info"]["features"])


def _check_file(path: str, parquet: pq.ParquetFile, report: Report) -> None:
    metadata = parquet.metadata
    errors, warnings = row_group_problems(path, metadata)
    report.errors.extend(errors)
    report.warnings.extend(warnings)
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        if group.num_columns and not group.column(0).has_offset_index:
            report.errors.append(f"{path}: row group {i} has no page (offset) index")
    if metadata.num_row_groups == 0 or metadata.num_rows == 0:
        return
    problem = null_fixed_list_problem(path)
    if problem:
        report.errors.append(problem)
    else:
        report.errors.extend(row_problems(path, parquet)[:MAX_ROW_ERRORS])
    features = parquet_features(parquet) or {}
    image_columns = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    first = parquet.read_row_group(0, columns=image_columns).slice(0, 2) if image_columns else None
    for name in image_columns:
        for cell in first.column(name).to_pylist():
            if cell is None:
                continue
            try:
                image = PILImage.open(io.BytesIO(cell["bytes"]))
                image.load()
            except Exception as exc:
                report.errors.append(f"{path}: column {name}: first rows do not decode ({exc})")
                break
            if not _viewer_can_save(image):
                report.errors.append(f"{path}: column {name}: image mode {image.mode} cannot be written as JPEG or PNG")


def first_rows_json_bytes(files: list[str], rows: int = FIRST_ROWS) -> int:
    """Bytes of a split's first `rows` rows, without their image columns, serialised to JSON as the Hub viewer
    measures them (orjson: UTF-8, no spaces)."""
    found = []
    for path in files:
        parquet = pq.ParquetFile(path)
        features = parquet_features(parquet) or {}
        columns = [name for name in parquet.schema_arrow.names if not isinstance(features.get(name), datasets.Image)]
        for batch in parquet.iter_batches(batch_size=rows, columns=columns):
            found += batch.to_pylist()[: rows - len(found)]
            break
        if len(found) >= rows:
            break
    return len(json.dumps(found, default=str, separators=(",", ":"), ensure_ascii=False).encode())


def row_problems(path: str, parquet: pq.ParquetFile) -> list[str]:
    """Every row's objects against its instance mask (see the module docstring)."""
    problems = []
    row = 0
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=["image_id", "instance_mask", "objects", "num_objects"])
        for image_id, mask, objects, count in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            where = f"{path}: row {row} ({image_id})"
            row += 1
            if count != (None if mask is None else len(objects)):
                problems.append(f"{where}: num_objects {count} but {len(objects)} objects"
                                + (" and no instance_mask" if mask is None else ""))
            if mask is None:
                if objects:
                    problems.append(f"{where}: {len(objects)} objects but no instance_mask")
                continue
            labels = np.asarray(PILImage.open(io.BytesIO(mask["bytes"])))
            problems += [f"{where}: {problem}" for problem in object_problems(labels, objects)]
            if len(problems) >= MAX_ROW_ERRORS:
                return problems
    return problems


def object_problems(labels: np.ndarray, objects: list[dict]) -> list[str]:
    """What is wrong with the object records of one row, given its instance mask."""
    if int(labels.max(initial=0)) > len(objects):
        return [f"instance_mask holds id {int(labels.max())} but there are {len(objects)} objects"]
    height, width = labels.shape
    problems = []
    for k, (obj, (box, area)) in enumerate(zip(objects, masks.pixel_boxes(labels, len(objects))), start=1):
        what = f"object {k}"
        if obj["instance_id"] != k:
            problems.append(f"{what}: instance_id {obj['instance_id']}, expected {k}")
        if obj["area"] != area:
            problems.append(f"{what}: area {obj['area']} but the mask has {area} pixels of id {k}")
        if box is not None and list(obj["bbox"]) != box:
            problems.append(f"{what}: bbox {list(obj['bbox'])} but the mask's pixels span {box}")
        polygons = obj["polygons"] or []
        if any(len(ring) < 6 or len(ring) % 2 for ring in polygons):
            problems.append(f"{what}: a polygon with fewer than 3 points or an odd number of coordinates")
            continue
        rings = [np.asarray(ring, dtype=np.float64).reshape(-1, 2) for ring in polygons]
        if any(((ring < 0) | (ring > (width, height))).any() for ring in rings):
            problems.append(f"{what}: a polygon point lies outside the {width}x{height} image")
        elif (area >= masks.OUTLINE_IOU_MIN_AREA
              and (overlap := masks.outline_iou(labels, k, polygons, box)) < masks.OUTLINE_IOU_BOUND):
            problems.append(f"{what}: its polygons cover its mask pixels with IoU {overlap:.2f} (< {masks.OUTLINE_IOU_BOUND})")
    return problems


def _viewer_can_save(image) -> bool:
    for fmt in ("JPEG", "PNG"):
        try:
            image.save(io.BytesIO(), format=fmt)
            return True
        except Exception:
            continue
    return False


def check_repo(repo: str, load: bool = True) -> Report:
    """Validate the staged repo folder `repo`; with `load`, also load and stream every config."""
    report = Report()
    card, infos = _check_card(repo, report)
    if card is None:
        return report
    checked_files = set()  # configs sharing shards (NuCLS) have each file checked once
    for config in card.data.to_dict()["configs"]:
        name = config["config_name"]
        info = infos.get(name)
        if info is None:
            report.errors.append(f"{os.path.join(repo, 'README.md')}: config {name} has no `dataset_info` entry")
            continue
        for entry in config.get("data_files", []):
            _check_split(repo, name, info, entry, checked_files, report)
        if load and not report.errors:
            _check_loads(repo, name, report)
    return report


def _check_card(repo: str, report: Report) -> tuple:
    """(card, dataset_info per config) of a staged repo folder, or (None, None) with the reason in `report`:
    no folder, no card, a card or `dataset_info` that does not parse, no `configs`; also the Hub's metadata
    rules and builder leftovers."""
    readme = os.path.join(repo, "README.md")
    if not os.path.isdir(repo):
        report.errors.append(f"{repo}: no such folder")
        return None, None
    if not os.path.isfile(readme):
        below = sorted(os.path.dirname(p) for pattern in ("*/README.md", "*/*/README.md")
                       for p in glob.glob(os.path.join(repo, pattern)))
        hint = f"; staged repos below it: {', '.join(below)}" if below else ""
        report.errors.append(f"{repo}: not a staged repo (no README.md card){hint}")
        return None, None
    try:
        card = DatasetCard.load(readme)
    except Exception as exc:
        report.errors.append(f"{readme}: the card does not parse ({exc})")
        return None, None
    data = card.data.to_dict()
    if not data.get("configs"):
        report.errors.append(f"{readme}: no `configs` in the YAML metadata")
        return None, None
    report.errors += [f"{readme}: {problem}" for problem in metadata_problems(data)]  # the Hub's rules
    for leftover in ("LICENSE", "dataset_info.json"):
        if os.path.exists(os.path.join(repo, leftover)):
            report.errors.append(f"{repo}: builder leftover {leftover} must not be uploaded")
    for script in glob.glob(os.path.join(repo, "*.py")):
        report.errors.append(f"{script}: a script in the repo root makes load_dataset refuse the repo")
    try:
        return card, DatasetInfosDict.from_dataset_card_data(card.data)
    except Exception as exc:
        report.errors.append(f"{readme}: `dataset_info` does not parse ({exc})")
        return None, None


def _check_split(repo: str, name: str, info, entry: dict, checked_files: set, report: Report) -> None:
    """One `data_files` entry: its shards exist and read, hold the rows the card declares and its features,
    and pass the per-file checks; size and first-rows warnings."""
    readme, split = os.path.join(repo, "README.md"), entry["split"]
    files = split_files(repo, entry)
    if not files:
        report.errors.append(f"{readme}: config {name} split {split}: {entry['path']} matches no file")
        return
    parquets = {}
    for path in files:
        try:
            parquets[path] = pq.ParquetFile(path)
        except Exception as exc:
            report.errors.append(f"{path}: not a readable Parquet file ({exc})")
    if len(parquets) < len(files):
        return
    rows = sum(p.metadata.num_rows for p in parquets.values())
    declared = info.splits[split].num_examples if info.splits and split in info.splits else None
    if declared != rows:
        report.errors.append(
            f"{readme}: config {name} split {split}: the card says {declared} examples, the Parquet files hold {rows}"
        )
    size = sum(p.metadata.row_group(i).total_byte_size
               for p in parquets.values() for i in range(p.metadata.num_row_groups))
    if size > SPLIT_WARN_BYTES:
        report.warnings.append(f"config {name} split {split}: {size:,} bytes; viewer search/statistics cover the first 5 GB")
    for path, parquet in parquets.items():
        embedded = parquet_features(parquet)
        if embedded is not None and info.features is not None and embedded != info.features:
            report.errors.append(f"{path}: embedded features differ from the card's `dataset_info` of config {name}")
        if path not in checked_files:
            checked_files.add(path)
            _check_file(path, parquet, report)
    first = first_rows_json_bytes(files)
    if first > FIRST_ROWS_BYTES:
        report.warnings.append(f"config {name} split {split}: the first {FIRST_ROWS} rows take {first:,} bytes "
                               f"of JSON without images; the viewer cuts cells beyond {FIRST_ROWS_BYTES:,}")
    report.checked.append((name, split, rows))


def _check_loads(repo: str, config: str, report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="check-cache-") as cache, no_progress_bars():
        try:
            loaded = datasets.load_dataset(repo, config, cache_dir=cache)
            for split, ds in loaded.items():
                if len(ds) == 0:
                    continue
                stream = datasets.load_dataset(repo, config, split=split, streaming=True)
                if next(iter(stream))["image_id"] != ds[0]["image_id"]:
                    report.errors.append(f"config {config} split {split}: streaming yields a different first row")
        except Exception as exc:
            report.errors.append(f"config {config}: load_dataset fails ({type(exc).__name__}: {exc})")
