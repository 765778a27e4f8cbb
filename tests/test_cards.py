"""The generated dataset card and preview figure of a staged repo."""

import io

from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from builders.aitslab_bioimaging1 import AitslabBioimaging1
from builders.archives import sha256_of


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


def test_preview_figure_is_a_grid_of_previews(aitslab_staged):
    figure = PILImage.open(io.BytesIO((aitslab_staged / "assets" / "preview.png").read_bytes()))
    assert figure.format == "PNG" and figure.mode == "RGB"
    assert figure.size == (3 * 256, 256)  # the 3 training images, one row of tiles
