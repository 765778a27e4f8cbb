"""The core schema, `core_view`, and the metadata constants every registered builder carries."""

import re

import datasets
import numpy as np
import pytest

from builders import REGISTRY, core_view, schema
from builders.archives import Archive
from builders.base import Imaging, OfficialCounts, SegmentationBuilder
from builders.cards import HUB_LICENSES
from builders.masks import png16


def test_core_features_are_exactly_the_design():
    f = schema.CORE_FEATURES
    assert list(f) == ["image_id", "preview", "image", "instance_mask", "objects", "num_objects", "pixel_size_um"]
    assert f["num_objects"] == datasets.Value("int32") and f["pixel_size_um"] == datasets.Value("float32")
    assert f["image_id"] == datasets.Value("string")
    assert f["image"] == f["instance_mask"] == f["preview"] == datasets.Image()
    assert isinstance(f["objects"], datasets.List)
    assert f["objects"].feature == {
        "instance_id": datasets.Value("int32"),
        "bbox": datasets.List(datasets.Value("float32"), length=4),
        "area": datasets.Value("int32"),
        "polygons": datasets.List(datasets.List(datasets.Value("float32"))),
    }


def test_sources_append_fields_but_cannot_redefine_core_ones():
    f = schema.features({"plate": datasets.Value("string")}, {"label": datasets.ClassLabel(names=["a"])})
    assert list(f)[-1] == "plate" and list(f["objects"].feature)[-1] == "label"
    with pytest.raises(ValueError, match="image"):
        schema.features({"image": datasets.Value("string")})
    with pytest.raises(ValueError, match="area"):
        schema.features(extra_object_fields={"area": datasets.Value("float32")})


def _tiny(extra_columns, extra_fields, extra_values, field_values):
    features = schema.features(extra_columns, extra_fields)
    obj = {"instance_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0], "area": 1, "polygons": [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]], **field_values}
    png = {"bytes": png16(np.ones((2, 2), dtype=np.uint16)), "path": "x.png"}
    row = {"image_id": "a", "preview": png, "image": png, "instance_mask": png, "objects": [obj], "num_objects": 1,
           "pixel_size_um": None, **extra_values}
    return datasets.Dataset.from_list([row, {**row, "image_id": "b", "objects": [], "num_objects": 0}], features=features)


def test_core_view_of_two_sources_concatenates():
    a = _tiny({"plate": datasets.Value("string")}, {}, {"plate": "p"}, {})
    b = _tiny({"cell_line": datasets.ClassLabel(names=["HepG2", "Huh7"])},
              {"label": datasets.ClassLabel(names=["x", "y"])}, {"cell_line": 1}, {"label": 1})
    joined = datasets.concatenate_datasets([core_view(a), core_view(b)])
    assert joined.features == schema.CORE_FEATURES
    assert len(joined) == 4 and joined[2]["objects"][0]["bbox"] == [0.0, 0.0, 1.0, 1.0]
    assert joined[1]["objects"] == []
    assert joined["image_id"] == ["a", "b", "a", "b"]
    raw = joined.cast_column("image", datasets.Image(decode=False))
    assert all(r["bytes"] == png16(np.ones((2, 2), dtype=np.uint16)) for r in raw["image"])
    for column in ("instance_mask", "preview"):
        assert all(np.asarray(img).tolist() == [[1, 1], [1, 1]] for img in joined[column])
    # a view (select), a DatasetDict and a stream keep everything too
    assert core_view(b.select([1, 0]))["image_id"] == ["b", "a"]
    assert core_view(datasets.DatasetDict({"train": a}))["train"]["image_id"] == ["a", "b"]
    streamed = next(iter(core_view(b.to_iterable_dataset())))
    assert streamed["image_id"] == "a" and list(streamed["objects"][0]) == list(schema.CORE_OBJECT_FIELDS)


@pytest.mark.parametrize("source", sorted(REGISTRY))
def test_registered_builder_metadata_is_complete(source):
    cls = REGISTRY[source]
    assert issubclass(cls, SegmentationBuilder) and cls.SOURCE_ID == source
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", cls.REPO_NAME)
    assert cls.PRETTY_NAME and cls.DESCRIPTION and cls.HOMEPAGE.startswith("https://")
    assert cls.LICENSE in HUB_LICENSES
    if cls.LICENSE == "other":
        assert cls.LICENSE_NAME and cls.LICENSE_LINK.startswith("https://")
    assert cls.CITATION.lstrip().startswith("@") and cls.CITATION.count("{") == cls.CITATION.count("}")
    assert cls.ARCHIVES and all(isinstance(a, Archive) for a in cls.ARCHIVES.values())
    for archive in cls.ARCHIVES.values():
        assert archive.url.startswith("https://") or archive.manual.startswith("https://")
        assert archive.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", archive.sha256)
        assert archive.contains or archive.holds  # an extracted folder is recognised by its contents, not its name
    assert set(cls.OFFICIAL_COUNTS) <= set(cls.config_names())
    assert all(isinstance(c, OfficialCounts) for c in cls.OFFICIAL_COUNTS.values())
    assert cls.NOTES and all(len(note) > 20 for note in cls.NOTES)
    assert cls.card_template().is_file()
    fakes = cls.fakes()  # what the generic tests and the demo need of its fakes module
    assert callable(fakes.write_archives) and callable(fakes.expected_counts)
    archive, image = fakes.FIRST_IMAGE
    assert archive in {a.name for a in cls.ARCHIVES.values()} and re.compile(image)
    assert all(callable(parser) and re.compile(pattern) for pattern, parser in cls.PARSERS.items())
    assert cls.CLASS_LABEL is None or isinstance(cls.features()["objects"].feature[cls.CLASS_LABEL], datasets.ClassLabel)
    documented = set(cls.EXTRA_COLUMNS) | {f"objects.{name}" for name in cls.EXTRA_OBJECT_FIELDS}
    assert set(cls.COLUMN_DOCS) == documented and all(cls.COLUMN_DOCS.values())
    features = cls.features()
    assert {k: features[k] for k in schema.CORE_COLUMNS if k != "objects"} == {
        k: v for k, v in schema.CORE_FEATURES.items() if k != "objects"}
    assert list(features["objects"].feature)[: len(schema.CORE_OBJECT_FIELDS)] == list(schema.CORE_OBJECT_FIELDS)
    for name in schema.CORE_OBJECT_FIELDS:
        assert features["objects"].feature[name] == schema.CORE_OBJECT_FIELDS[name]
    assert 1 <= cls.DEFAULT_WRITER_BATCH_SIZE * cls.BYTES_PER_EXAMPLE <= 100_000_000 or cls.DEFAULT_WRITER_BATCH_SIZE == 1
    # Imaging facts for every config, each value stated (a string) or unknown (None), never empty, with sources.
    assert set(cls.IMAGING) <= set(cls.config_names()) | {"*"}
    for config in cls.config_names():
        imaging = cls.imaging(config)
        assert isinstance(imaging, Imaging)
        assert all(isinstance(getattr(imaging, k), str) and getattr(imaging, k).strip()
                   for k in ("modality", "stain", "organism", "sample"))
        assert imaging.magnification is None or imaging.magnification.strip()
        assert imaging.pixel_size_um is None or 0.01 < imaging.pixel_size_um < 10
        assert imaging.sources and all(what and url.startswith("https://") for what, url in imaging.sources)


def test_aitslab_extra_columns_are_the_designed_ones():
    features = REGISTRY["aitslab-bioimaging1"].features()
    assert list(features)[len(schema.CORE_COLUMNS):] == ["plate", "well", "field"]
    assert all(features[c] == datasets.Value("string") for c in ("plate", "well", "field"))


def test_metadata_is_written_once_and_derived_by_the_base():
    """Builders declare module constants and a docstring; the base derives the rest (no rebinding in the class)."""
    import inspect
    import sys

    from builders.base import LICENSES, MODULE_CONSTANTS

    for source, cls in REGISTRY.items():
        module = sys.modules[cls.__module__]
        body = inspect.getsource(cls)
        for name in MODULE_CONSTANTS:
            assert f"    {name} = {name}\n" not in body
            if hasattr(module, name):
                assert getattr(cls, name) is getattr(module, name)
        assert "DESCRIPTION =" not in body and "NOTES =" not in body and "REPO_NAME =" not in body
        assert cls.REPO_NAME == source
        assert cls.DESCRIPTION == " ".join(module.__doc__.split("\n\n")[1].split())
        assert cls.NOTES == tuple(" ".join(n.split()) for n in module.__doc__.split("NOTE:")[1:]) and cls.NOTES
        if cls.LICENSE != "other":
            assert (cls.LICENSE_NAME, cls.LICENSE_LINK) == (LICENSES[cls.LICENSE].name, LICENSES[cls.LICENSE].link)
