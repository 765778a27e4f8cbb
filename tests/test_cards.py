"""The generated dataset card and preview figure of a staged repo."""

import io

import pytest
from datasets import load_dataset
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from builders import REGISTRY
from builders.aitslab_bioimaging1 import AitslabBioimaging1
from builders.archives import sha256_of
from builders.cards import metadata_problems


def test_card_metadata_matches_the_builder_and_the_data(aitslab_staged, aitslab_fake):
    _, manifest = aitslab_fake
    card = DatasetCard.load(aitslab_staged / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0" and data["pretty_name"] == AitslabBioimaging1.PRETTY_NAME
    assert data["task_categories"] == ["image-segmentation", "object-detection"]
    assert data["size_categories"] == ["n<1K"]
    assert data["configs"][0] == {"config_name": "default", "default": True, "data_files": [
        {"split": s, "path": f"data/{s}-*"} for s in ("train", "validation", "test")]}
    info = DatasetInfosDict.from_dataset_card_data(card.data)["default"]
    assert info.features == AitslabBioimaging1.features()
    assert {s: info.splits[s].num_examples for s in info.splits} == {s: len(o) for s, o in manifest["objects"].items()}


def test_card_body_has_every_section_and_true_counts(aitslab_staged, aitslab_fake):
    _, manifest = aitslab_fake
    body = DatasetCard.load(aitslab_staged / "README.md").text
    for heading in ("## Quick start", "## Configurations and splits", "## Schema", "## Known quirks",
                    "## Provenance", "## Licence", "## Citation"):
        assert heading in body
    for split, objects in manifest["objects"].items():
        official = AitslabBioimaging1.OFFICIAL_COUNTS["default"].splits[split]
        assert f"| default | {split} | {len(objects)} | {official[0]} | {sum(objects.values()):,} | ~{official[1]:,} |" in body
    assert "@article{arvidsson2023aitslab" in body and "10.5281/zenodo.6657260" in body
    assert all(a.sha256 in body for a in AitslabBioimaging1.ARCHIVES.values())
    assert all(f"| `{sha256_of(path)}` |" in body for path in manifest["archives"].values())  # the copies built
    assert all(note in body for note in AitslabBioimaging1.NOTES)
    assert "| `plate` | `Value('string')` | Cellomics plate id" in body


def test_each_config_has_a_captioned_figure_of_its_first_images(aitslab_staged, nucls_staged):
    figure = PILImage.open(aitslab_staged / "assets" / "preview-default.jpg")
    assert figure.format == "JPEG" and figure.mode == "RGB"
    assert figure.size == (3 * 256, 256 + 34)  # the 3 training images, one tile each, and a two-line caption
    card = DatasetCard.load(aitslab_staged / "README.md").text
    assert "![default: the first images of split train" in card and "*Config `default`, split `train`: its first 3" in card
    nucls = DatasetCard.load(nucls_staged / "README.md").text
    names = REGISTRY["nucls"].features()["objects"].feature["super_classification"].names
    for config in REGISTRY["nucls"].config_names():
        path = nucls_staged / "assets" / f"preview-{config}.jpg"
        assert f"(assets/preview-{config}.jpg)" in nucls and path.is_file()
        width, height = PILImage.open(path).size
        assert width % 256 == 0 and height == 256 + 34 + (len(names) + 1) // 2 * 18 + 8  # a legend of the classes
    assert "outlines coloured by `super_classification`" in nucls


def test_figure_outlines_take_their_class_colour():
    import numpy as np

    from builders.cards import CLASS_COLOURS
    from builders.masks import outlined_rgb

    labels = np.zeros((12, 12), dtype=np.uint16)
    labels[2:6, 2:6], labels[7:11, 6:11] = 1, 2
    colours = np.zeros((3, 3), dtype=np.uint8)
    colours[1:] = CLASS_COLOURS[[3, 0]]  # object 1 of class 3, object 2 of class 0
    rgb = outlined_rgb(PILImage.new("L", (12, 12)), labels, (24, 24), colours)
    assert rgb.shape == (24, 24, 3)
    assert tuple(rgb[4, 4]) == tuple(CLASS_COLOURS[3]) and tuple(rgb[14, 12]) == tuple(CLASS_COLOURS[0])
    assert tuple(rgb[0, 0]) == (0, 0, 0) and tuple(rgb[8, 8]) == (0, 0, 0)  # background, object interior


SECTIONS = ("## Quick start", "## Configurations and splits", "## Schema", "## Known quirks", "## Provenance",
            "## Licence", "## Citation")


def test_every_generated_card_parses_follows_the_hub_rules_and_counts_the_data(source, staged):
    cls, staged = REGISTRY[source], staged(source)
    card = DatasetCard.load(staged / "README.md")
    data = card.data.to_dict()
    assert metadata_problems(data) == []
    assert [c["config_name"] for c in data["configs"]] == cls.config_names() and data["configs"][0]["default"]
    assert all(heading in card.text for heading in SECTIONS)
    assert "streaming=True" in card.text and "np.array(row[\"instance_mask\"])" in card.text
    assert all(f"(assets/preview-{c}.jpg)" in card.text and (staged / "assets" / f"preview-{c}.jpg").is_file()
               for c in cls.config_names())
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    for config in cls.config_names():
        assert infos[config].features == cls.features()
        for split, ds in load_dataset(str(staged), config).items():
            objects = sum(len(o) for o in ds.with_format("arrow")["objects"].to_pylist())
            assert infos[config].splits[split].num_examples == len(ds)
            assert f"| {config} | {split} | {len(ds):,} |" in card.text
            row = next(line for line in card.text.splitlines() if line.startswith(f"| {config} | {split} | "))
            assert row.split("|")[5].strip() == f"{objects:,}"


def test_metadata_rules_catch_what_the_hub_refuses():
    good = {"license": "cc-by-4.0", "pretty_name": "x", "task_categories": ["image-segmentation"],
            "task_ids": ["instance-segmentation"], "size_categories": ["n<1K"],
            "configs": [{"config_name": "a", "default": True}, {"config_name": "b"}]}
    assert metadata_problems(good) == []
    assert metadata_problems({**good, "license": "CC-BY-4.0"}) == ["license 'CC-BY-4.0' is not a Hub licence id"]
    assert metadata_problems({**good, "license": "other"}) == ["license 'other' needs license_name and license_link"]
    assert metadata_problems({**good, "license": "other", "license_name": "Research only", "license_link": "https://x"}) \
        == ["license_name 'Research only' must be lower-case letters, digits, '-' and '.'"]
    assert metadata_problems({**good, "task_categories": ["segmentation"]}) == [
        "task_categories: 'segmentation' is not one of the Hub's values"]
    assert metadata_problems({**good, "size_categories": ["1K-10K"]}) == [
        "size_categories: '1K-10K' is not one of the Hub's values"]
    assert metadata_problems({**good, "configs": [{"config_name": "a"}, {"config_name": "b", "default": True}]}) == [
        "the first config, and only it, must be marked default: true"]


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_card_statistics_equal_those_recomputed_from_the_data(source, staged):
    import numpy as np

    cls, staged = REGISTRY[source], staged(source)
    text = DatasetCard.load(staged / "README.md").text
    statistics = _section(text, "Statistics")
    for config in cls.config_names():
        size = cls.imaging(config).pixel_size_um
        for split, ds in load_dataset(str(staged), config).items():
            rows = ds.with_format("arrow").select_columns(["instance_mask", "objects"])[:].to_pylist()
            counts = np.array([len(r["objects"]) for r in rows if r["instance_mask"] is not None])
            areas = np.array([o["area"] for r in rows for o in r["objects"]])
            per_image = f"{counts.min():,} / {np.median(counts):,.1f} / {counts.max():,}" if counts.size else "–"
            area = " / ".join(f"{v:,.1f}" for v in np.percentile(areas, [5, 50, 95])) if areas.size else "–"
            area_um = (" / ".join(f"{v * size * size:,.1f}" for v in np.percentile(areas, [5, 50, 95]))
                       if areas.size and size else "–")
            expected = (f"| {config} | {split} | {len(rows):,} | {len(rows) - counts.size:,} | {int((counts == 0).sum()):,} "
                        f"| {int(counts.sum()):,} | {per_image} | {area} | {area_um} |")
            assert expected in statistics.splitlines(), (expected, statistics)
            if cls.CLASS_LABEL:
                names = ds.features["objects"].feature[cls.CLASS_LABEL].names
                found = [sum(o[cls.CLASS_LABEL] == names.index(n) for r in rows for o in r["objects"]) for n in names]
                assert f"| {config} | {split} | " + " | ".join(f"{n:,}" for n in found) + " |" in statistics


def test_cards_state_imaging_licence_duties_gating_and_size_by_distinct_images(staged, nucls_staged):
    cards = {staged(source).name: DatasetCard.load(staged(source) / "README.md") for source in REGISTRY}
    nucls = cards["nucls"]
    # NuCLS: 7 configs share one copy of each FOV; the size category counts the FOVs once.
    fovs = len(load_dataset(str(nucls_staged), "all", split="train"))
    assert fovs < 1000 and nucls.data.to_dict()["size_categories"] == ["n<1K"]
    assert "| 0.2 |" in _section(nucls.text, "Imaging") and "hematoxylin and eosin" in nucls.text
    assert "unknown (not published)" in _section(cards["aitslab-bioimaging1"].text, "Imaging")
    for name, card in cards.items():
        cls = next(c for c in REGISTRY.values() if c.REPO_NAME == name)
        imaging = _section(card.text, "Imaging")
        assert all(url in imaging for config in cls.config_names() for _, url in cls.imaging(config).sources)
        licence = _section(card.text, "Licence")
        assert {"cc-by-4.0": "give appropriate credit", "cc-by-sa-4.0": "share-alike", "cc0-1.0": "no conditions",
                "other": "research purposes only"}[cls.LICENSE] in licence
        gated = card.data.to_dict().get("extra_gated_prompt")
        assert bool(gated) == bool(cls.GATED_PROMPT) == ("This repository is gated" in licence)
    assert "research purposes only" in cards["nucleussegdata"].data.to_dict()["extra_gated_prompt"]
    assert metadata_problems(cards["nucleussegdata"].data.to_dict()) == []


def test_the_readme_table_of_sources_is_generated_from_the_builders_metadata():
    from builders.cards import sources_table
    from conftest import PUBLISHED, ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- end of the generated table -->")[0].rsplit("tests/test_cards.py checks it -->\n", 1)[1]
    assert block.strip() == sources_table([REGISTRY[s] for s in PUBLISHED]), "run `python upload.py list --markdown`"
