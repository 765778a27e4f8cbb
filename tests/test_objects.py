"""Per-object records every tool can read: `upload.py check` validates them row by row, the build refuses a
null fixed-size list, and every staged repo fits the Hub viewer's first-rows budget with faithful outlines."""

import shutil

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builders import schema, staging
from builders.cards import split_files
from builders.check import FIRST_ROWS_BYTES, check_repo, first_rows_json_bytes
from builders.errors import BuildError
from huggingface_hub import DatasetCard


def assert_publishable(repo):
    """`check` finds nothing wrong (ids, areas, boxes, outlines inside the image with IoU >= 0.9 for objects of
    30 px or more, no null fixed-size list), and the first 10 rows of every split fit the viewer's budget."""
    report = check_repo(str(repo), load=False)
    assert report.ok, report.errors[:5]
    for config in DatasetCard.load(repo / "README.md").data.to_dict()["configs"]:
        for entry in config["data_files"]:
            size = first_rows_json_bytes(split_files(str(repo), entry))
            assert size <= FIRST_ROWS_BYTES, (config["config_name"], entry["split"], size)


def test_every_staged_repo_fits_the_first_rows_budget_and_its_outlines_match_the_masks(source, staged):
    assert_publishable(staged(source))


@pytest.mark.parametrize("fixture", ["aitslab_real_staged", "nsd_real_staged"])
def test_the_repos_of_the_real_samples_fit_the_first_rows_budget_and_their_outlines_match_the_masks(fixture, request):
    assert_publishable(request.getfixturevalue(fixture))


def _shard(repo, split="train"):
    (path,) = sorted((repo / "data").glob(f"{split}-*.parquet"))
    return path


def _rewrite_object(path, row, index, change):
    """Rewrite one object of one row of a shard in place, keeping its schema (and embedded features)."""
    table = pq.read_table(path)
    rows = table.to_pylist()
    obj = rows[row]["objects"][index]
    obj.update(change(obj))
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, write_page_index=True)
    return rows[row]["image_id"]


@pytest.fixture
def copy(tmp_path, aitslab_staged):
    target = tmp_path / "repo"
    shutil.copytree(aitslab_staged, target)
    return target


def test_check_names_the_shard_row_and_object_of_a_changed_area(copy):
    assert check_repo(str(copy), load=False).ok
    shard = _shard(copy)
    image_id = _rewrite_object(shard, 1, 2, lambda o: {"area": o["area"] + 5})
    errors = check_repo(str(copy), load=False).errors
    assert len(errors) == 1 and errors[0].startswith(f"{shard}: row 1 ({image_id}): object 3: area "), errors


def test_check_names_the_shard_row_and_object_of_a_shifted_bbox(copy):
    shard = _shard(copy, "validation")
    image_id = _rewrite_object(shard, 0, 0, lambda o: {"bbox": [o["bbox"][0] + 3, *o["bbox"][1:]]})
    errors = check_repo(str(copy), load=False).errors
    assert len(errors) == 1 and errors[0].startswith(f"{shard}: row 0 ({image_id}): object 1: bbox "), errors


def test_check_names_an_outline_that_left_its_object(copy):
    shard = _shard(copy)

    def moved(obj):  # every ring moved 4 px right: inside the image, no longer over the object
        return {"polygons": [[v + 4 if i % 2 == 0 else v for i, v in enumerate(ring)] for ring in obj["polygons"]]}

    image_id = _rewrite_object(shard, 0, 0, moved)
    errors = check_repo(str(copy), load=False).errors
    assert len(errors) == 1 and f"{shard}: row 0 ({image_id}): object 1: its polygons cover its mask pixels with IoU" in errors[0]


def test_check_names_a_row_whose_num_objects_is_not_its_number_of_objects(copy):
    shard = _shard(copy)
    table = pq.read_table(shard)
    counts = table.column("num_objects").to_pylist()
    counts[2] += 1
    table = table.set_column(table.schema.get_field_index("num_objects"), table.schema.field("num_objects"),
                             pa.array(counts, type=pa.int32()))
    pq.write_table(table, shard, write_page_index=True)
    errors = check_repo(str(copy), load=False).errors
    image_id = table.column("image_id")[2].as_py()
    assert errors == [f"{shard}: row 2 ({image_id}): num_objects {counts[2]} but {counts[2] - 1} objects"], errors


def _null_dot_shard(path):
    """A shard whose objects carry `dot`, a fixed-size list of 2 int32, null for the second object."""
    dot = pa.list_(pa.int32(), 2)
    objects = pa.list_(pa.struct([("instance_id", pa.int32()), ("dot", dot)]))
    table = pa.table({"image_id": ["a"], "objects": pa.array([[{"instance_id": 1, "dot": [3, 4]},
                                                              {"instance_id": 2, "dot": None}]], type=objects)})
    pq.write_table(table, path)
    return path


def test_a_null_fixed_size_list_is_refused_by_the_build_and_named_by_check(tmp_path, copy):
    path = _null_dot_shard(tmp_path / "dots.parquet")
    with pytest.raises(BuildError, match=r"dots\.parquet: objects\.dot is a fixed-size list holding nulls"):
        staging.check_shards([str(path)])
    # The same list with no null passes the build's check: only a null breaks pyarrow < 26.
    full = pa.table({"dot": pa.array([[1, 2]], type=pa.list_(pa.int32(), 2))})
    pq.write_table(full, tmp_path / "full.parquet")
    staging.check_shards([str(tmp_path / "full.parquet")])
    # In a staged repo, `check` names the shard and stops there instead of reading its objects.
    shard = _shard(copy, "test")
    table = pq.read_table(shard)
    dots = pa.array([None] * table.num_rows, type=pa.list_(pa.float32(), 2))
    pq.write_table(table.append_column("dot", dots), shard, write_page_index=True)
    errors = check_repo(str(copy), load=False).errors
    assert any(e.startswith(f"{shard}: dot is a fixed-size list holding nulls") for e in errors), errors


def test_a_source_cannot_declare_a_fixed_size_list_field():
    with pytest.raises(ValueError, match="objects.dot: a fixed-size list"):
        schema.features(extra_object_fields={"dot": datasets.List(datasets.Value("int32"), length=2)})
    with pytest.raises(ValueError, match="centre: a fixed-size list"):
        schema.features({"centre": datasets.List(datasets.Value("float32"), length=2)})
    schema.features({"channels": datasets.List(datasets.Value("string"))})  # variable length: fine
