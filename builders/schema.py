"""The row schema shared by every source (DESIGN.md section 3): one definition, imported by every builder.

Core columns: `image_id`, `preview`, `image`, `instance_mask`, `objects`, `num_objects`, `pixel_size_um`;
each object record starts
with `instance_id`, `bbox`, `area`, `polygons` (COCO polygons in the pixel-edge frame, see `masks`).
No field may be a fixed-size list that can be null: pyarrow before 26 cannot read one. So a source may not
declare one (`features` refuses it; the core `bbox` is one, never null), and the build and `check` refuse a
shard holding one (`null_fixed_list_problem`). Sources append their own columns and object fields after the
core ones with `features(...)`; `core_view(...)` drops them again so that any built source concatenates with
any other.
"""

from __future__ import annotations

import datasets
import pyarrow as pa

from .errors import no_progress_bars

# `preview` second: the Hub viewer shows columns in order and renders the preview best.
# `num_objects` and `pixel_size_um` are top-level scalars: the viewer charts, searches and filters those.
CORE_COLUMNS = ("image_id", "preview", "image", "instance_mask", "objects", "num_objects", "pixel_size_um")
CORE_OBJECT_FIELDS = {
    "instance_id": datasets.Value("int32"),
    "bbox": datasets.List(datasets.Value("float32"), length=4),
    "area": datasets.Value("int32"),
    "polygons": datasets.List(datasets.List(datasets.Value("float32"))),  # one flat [x1, y1, x2, y2, ...] per part
}


def features(extra_columns: dict | None = None, extra_object_fields: dict | None = None) -> datasets.Features:
    """The core features, followed by a source's own columns and object fields (in the given order)."""
    extra_columns = dict(extra_columns or {})
    extra_object_fields = dict(extra_object_fields or {})
    clash = (set(extra_columns) & set(CORE_COLUMNS)) | (set(extra_object_fields) & set(CORE_OBJECT_FIELDS))
    if clash:
        raise ValueError(f"a source may not redefine core fields: {sorted(clash)}")
    declared = {**extra_columns, **{f"objects.{name}": feature for name, feature in extra_object_fields.items()}}
    for name, feature in declared.items():
        if _has_fixed_list(datasets.Features({"x": feature}).arrow_schema.field("x").type):
            raise ValueError(f"{name}: a fixed-size list can be null, which pyarrow before 26 cannot read; "
                             "declare nullable scalars (as fluocells' dot_x, dot_y) or a variable-length list")
    columns = {
        "image_id": datasets.Value("string"),
        "preview": datasets.Image(),
        "image": datasets.Image(),
        "instance_mask": datasets.Image(),
        "objects": datasets.List({**CORE_OBJECT_FIELDS, **extra_object_fields}),
        "num_objects": datasets.Value("int32"),  # null for an unlabelled image
        "pixel_size_um": datasets.Value("float32"),  # micrometres per pixel as published; null where unknown
    }
    return datasets.Features({**columns, **extra_columns})


CORE_FEATURES = features()


def _core_objects(batch: pa.Table) -> pa.Table:
    objects = batch.column("objects").combine_chunks()
    structs = objects.values
    core = pa.StructArray.from_arrays(
        [structs.field(name) for name in CORE_OBJECT_FIELDS], names=list(CORE_OBJECT_FIELDS)
    )
    core_objects = pa.ListArray.from_arrays(objects.offsets, core, mask=objects.is_null())
    # The returned table replaces the batch: keep every other column as it is.
    return batch.set_column(batch.schema.get_field_index("objects"), "objects", core_objects)


def core_view(dataset):
    """The core columns of a built source, with only the core object fields.

    Works on `Dataset`, `DatasetDict`, `IterableDataset` and `IterableDatasetDict`; the result of any
    two sources concatenates with `datasets.concatenate_datasets`.
    """
    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return type(dataset)({split: core_view(ds) for split, ds in dataset.items()})
    dataset = dataset.select_columns(list(CORE_COLUMNS))
    if isinstance(dataset, datasets.IterableDataset):
        names = list(CORE_OBJECT_FIELDS)
        return dataset.map(
            lambda objects: {"objects": [{k: o[k] for k in names} for o in objects]},
            input_columns="objects",
            features=CORE_FEATURES,
        )
    # Arrow-level projection: no image is decoded or re-encoded. A column selection shows no progress bar.
    with no_progress_bars():
        return dataset.with_format("arrow").map(_core_objects, batched=True, features=CORE_FEATURES).with_format(None)


def null_fixed_lists(table: pa.Table) -> list[str]:
    """Paths (`objects.dot`) of fixed-size list columns or fields holding a null, which pyarrow < 26 cannot read."""
    found = []

    def visit(array, path):
        if pa.types.is_fixed_size_list(array.type) and array.null_count:
            found.append(path)
        if pa.types.is_struct(array.type):
            for i, field in enumerate(array.type):
                visit(array.field(i), f"{path}.{field.name}")
        elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
            visit(array.flatten(), path)

    for name in table.column_names:
        visit(table.column(name).combine_chunks(), name)
    return found


def _has_fixed_list(type_) -> bool:
    if pa.types.is_fixed_size_list(type_):
        return True
    if pa.types.is_struct(type_):
        return any(_has_fixed_list(field.type) for field in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _has_fixed_list(type_.value_type)
    return False


def null_fixed_list_problem(path: str) -> str | None:
    """An error naming the Parquet file and field if any fixed-size list in it holds a null, else None."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    columns = [field.name for field in parquet.schema_arrow if _has_fixed_list(field.type)]
    found = null_fixed_lists(parquet.read(columns=columns)) if columns else []
    if found:
        return (f"{path}: {', '.join(found)} is a fixed-size list holding nulls, which pyarrow before 26 (and so "
                f"datasets 4 and the Hub viewer) cannot read; use nullable scalars or a variable-length list")
    return None
