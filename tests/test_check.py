"""`upload.py check` on a good staged repo and on broken copies of it."""

import shutil

import pytest

from builders.check import check_repo


@pytest.fixture
def copy(tmp_path, aitslab_staged):
    target = tmp_path / "repo"
    shutil.copytree(aitslab_staged, target)
    return target


def edit_readme(repo, old, new):
    readme = repo / "README.md"
    text = readme.read_text()
    assert old in text
    readme.write_text(text.replace(old, new, 1))


def test_a_built_repo_passes(aitslab_staged, aitslab_fake):
    report = check_repo(str(aitslab_staged))
    assert report.ok, report.errors
    _, manifest = aitslab_fake
    assert report.checked == [("default", split, len(manifest["objects"][split])) for split in ("train", "validation", "test")]


def test_a_wrong_split_count_in_the_readme_fails_with_the_reason(copy):
    edit_readme(copy, "num_examples: 3", "num_examples: 4")
    report = check_repo(str(copy))
    assert not report.ok
    assert any("split train: the card says 4 examples, the Parquet files hold 3" in e for e in report.errors)


def test_missing_configs_leftovers_and_unmatched_patterns_fail(copy):
    edit_readme(copy, "path: data/test-*", "path: data/tset-*")
    (copy / "LICENSE").write_text("x")
    report = check_repo(str(copy), load=False)
    assert any("data/tset-* matches no file" in e for e in report.errors)
    assert any("leftover LICENSE" in e for e in report.errors)
    text = (copy / "README.md").read_text()
    (copy / "README.md").write_text(text[: text.index("configs:")] + text[text.index("---", 4):])
    assert any("no `configs`" in e for e in check_repo(str(copy)).errors)


def test_features_differing_from_the_parquet_fail(copy):
    edit_readme(copy, "  - name: plate\n    dtype: string", "  - name: plate\n    dtype: int32")
    report = check_repo(str(copy), load=False)
    assert any("embedded features differ" in e for e in report.errors)


def test_a_corrupt_shard_is_named(copy):
    shard = copy / "data" / "validation-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:5])
    report = check_repo(str(copy))
    assert any(e.startswith(f"{shard}: not a readable Parquet file") for e in report.errors)



def test_check_reports_card_metadata_the_hub_would_refuse(copy):
    edit_readme(copy, "- object-detection", "- cell-detection")
    report = check_repo(str(copy), load=False)
    assert f"{copy / 'README.md'}: task_categories: 'cell-detection' is not one of the Hub's values" in report.errors


def test_object_records_that_disagree_with_the_mask_are_named_not_a_crash():
    import numpy as np

    from builders.check import object_problems
    from builders.masks import objects_from_labels

    labels = np.zeros((8, 8), dtype=np.uint16)
    labels[2:5, 1:7] = 1
    (good,) = objects_from_labels(labels)
    assert object_problems(labels, [good]) == []
    odd = {**good, "polygons": [good["polygons"][0][:-1]]}  # an odd number of coordinates
    assert object_problems(labels, [odd]) == ["object 1: a polygon with fewer than 3 points or an odd number of coordinates"]
    moved = {**good, "area": good["area"] + 5, "bbox": [good["bbox"][0] + 3, *good["bbox"][1:]]}
    assert object_problems(labels, [moved]) == ["object 1: area 23 but the mask has 18 pixels of id 1",
                                                "object 1: bbox [4.0, 2.0, 6.0, 3.0] but the mask's pixels span "
                                                "[1.0, 2.0, 6.0, 3.0]"]
