"""The generic battery: what every registered source gets, read from the registry and the source's own files.

A source is its builder module, its fakes module (which declares what its archives hold) and its card
template. These tests, and the generic ones elsewhere (`source` fixture or a loop over `REGISTRY`: reliability,
determinism and atomicity in test_reliability.py, cards in test_cards.py, check in test_objects.py, push and
load in test_push.py, recipes in test_recipes.py, parsers in test_fuzz.py, metadata in test_schema.py), run
on each of them, including `tests/sources/tiny_cells.py`, a source defined only in the tests.
"""

import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from builders import REGISTRY, staging
from builders.cards import split_files
from builders.errors import BuildError, check_or_warn
from builders.stats import split_stats

ROOT = Path(__file__).resolve().parent.parent
TESTS_SOURCES = Path(__file__).resolve().parent / "sources"


def test_a_build_of_the_fakes_holds_what_they_declare_and_no_image_is_in_two_splits(source, fake, staged):
    _, manifest = fake(source)
    expected = REGISTRY[source].fakes().expected_counts(manifest)
    repo = staged(source)
    found = {}
    for config in DatasetCard.load(repo / "README.md").data.to_dict()["configs"]:
        counts, ids = found.setdefault(config["config_name"], {}), Counter()
        for entry in config["data_files"]:
            files = split_files(str(repo), entry)
            stats = split_stats(files)
            counts[entry["split"]] = (stats.images, stats.objects)
            ids.update({i for path in files for i in pq.read_table(path, columns=["image_id"])["image_id"].to_pylist()})
        assert [i for i, n in ids.items() if n > 1] == [], (source, config["config_name"])
    assert found == expected


def test_the_source_defined_in_the_tests_is_registered_here_and_in_the_cli_processes():
    assert {Path(sys.modules[cls.__module__].__file__).parent for s, cls in REGISTRY.items()
            if s == "tiny-cells"} == {TESTS_SOURCES}
    listed = subprocess.run([sys.executable, str(ROOT / "upload.py"), "list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "tiny-cells  (Hub repo: tiny-cells)" in listed.stdout


def test_its_known_quirk_gapped_mask_ids_become_1_to_n(tiny_staged):
    import numpy as np
    from datasets import load_dataset

    for row in load_dataset(str(tiny_staged), split="train"):
        ids = np.unique(np.asarray(row["instance_mask"]))
        assert ids.tolist() == list(range(len(row["objects"]) + 1))  # 0 and 1..N, no gap


@pytest.fixture(scope="module")
def tiny_staged(staged):
    return staged("tiny-cells")


class _CheckingWhileGenerating(REGISTRY["tiny-cells"]):
    """The test source with a check that fails while generating each example (so inside --num-proc workers)."""

    def _generate_examples(self, tree, pairs):
        for example in super()._generate_examples(tree, pairs):
            check_or_warn(False, f"{example[0]}: a check made while generating")
            yield example


@pytest.mark.parametrize("num_proc", [None, 2])
def test_the_verification_policy_reaches_the_checks_made_while_generating(tmp_path, fake, caplog, num_proc):
    folder, _ = fake("tiny-cells")
    with pytest.raises(BuildError, match="a check made while generating"):
        staging.build(_CheckingWhileGenerating, out=tmp_path / "strict", data_dir=folder, num_proc=num_proc)
    assert not (tmp_path / "strict" / "tiny-cells").exists()
    with caplog.at_level(logging.WARNING, logger="builders"):
        repo = staging.build(_CheckingWhileGenerating, out=tmp_path / "relaxed", data_dir=folder, num_proc=num_proc,
                             verify=False)
    assert (repo / "README.md").is_file()


def test_the_core_columns_of_every_split_of_every_source_are_identical_and_concatenate(staged):
    import datasets
    from datasets import load_dataset

    from builders import core_view, schema

    parts = [ds for source in REGISTRY for config in REGISTRY[source].config_names()
             for ds in load_dataset(str(staged(source)), config).values()]
    core = {name: schema.CORE_FEATURES[name] for name in schema.CORE_COLUMNS if name != "objects"}
    for ds in parts:
        assert {name: ds.features[name] for name in core} == core
    joined = datasets.concatenate_datasets([core_view(ds) for ds in parts])
    assert joined.features == schema.CORE_FEATURES and len(joined) == sum(len(ds) for ds in parts)
    assert list(joined["image_id"]) == [i for ds in parts for i in ds["image_id"]]
    offset = 0
    for ds in parts:
        assert joined[offset]["objects"] == [{k: o[k] for k in schema.CORE_OBJECT_FIELDS} for o in ds[0]["objects"]]
        offset += len(ds)
    assert None in joined.with_format("arrow")["instance_mask"].to_pylist()  # unlabelled rows (fluocells v2) too
