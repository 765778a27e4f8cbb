"""The real upstream sample files (`../shared/samples`, see its README) laid out as the published archives.

The samples are read in place and never copied into the repository: these functions write the upstream
layout into a folder the caller owns (a test's temporary folder, the benchmark's scratch folder), as
extracted trees or as zips.

- Aitslab-bioimaging1: all 50 pre-publication images and annotations, split by the kreshuklab lists, as
  the three Zenodo trees `<split>_nuclei/images/<stem>.png` + `<split>_nuclei/annotations/<stem>_objects.png`
  (or the three zips, deflated).
- NucleusSegData: the 37 pairs of the original release in the lab's layout
  `NucleusSegData/{TrainingSet,HepG2TestSet,Huh7TestSet}/` (`tr1.jpg` + `tr_ann1`, ...), as a tree or as
  `NucleusSegData.zip`.

The samples folder is `$MICROSCOPY_SAMPLES`, else `shared/samples` beside the project folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..aitslab_bioimaging1 import ARCHIVES as AITSLAB_ARCHIVES
from ..nucleussegdata import ARCHIVES as NSD_ARCHIVES
from . import write_zip

PROJECT = Path(__file__).resolve().parents[2]

# The kreshuklab split lists (`dev` is the Zenodo development_nuclei.zip).
AITSLAB_SPLIT_LISTS = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}

# The 37 images of the original NucleusSegData release by the author's numbering (samples README):
# set folder -> (image prefix, annotation prefix, author numbers). The lab's trN / hepg2_tsN / huh7_tsN
# numbering is not published, so they are numbered in this order.
NSD_ORIGINAL = {
    "TrainingSet": ("tr", "tr_ann", (1, 3, 7, 15, 23, 27, 28, 33, 35, 39)),
    "HepG2TestSet": ("hepg2_ts", "hepg2_ts_ann", (2, 4, 5, 6, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 24, 25)),
    "Huh7TestSet": ("huh7_ts", "huh7_ts_ann", (26, 29, 30, 31, 32, 34, 36, 37, 38, 40, 41)),
}


def samples_folder() -> Path:
    """`$MICROSCOPY_SAMPLES`, else `../shared/samples` relative to the project folder (it may not exist)."""
    return Path(os.environ.get("MICROSCOPY_SAMPLES", PROJECT.parent / "shared" / "samples"))


def aitslab_stems(samples) -> dict[str, list[str]]:
    """Split -> the stems of its kreshuklab list, in list order."""
    lists = Path(samples) / "aitslab_bioimaging1" / "splits_kreshuklab_model_ranking"
    return {split: (lists / listing).read_text().split() for split, listing in AITSLAB_SPLIT_LISTS.items()}


def write_aitslab(samples, out_dir, stems: dict | None = None, zipped: bool = False) -> dict[str, list[str]]:
    """The real Aitslab images and annotations as the three Zenodo trees in `out_dir`, or with `zipped` as
    `training_nuclei.zip`, `development_nuclei.zip` and `test_nuclei.zip` (deflated). `stems`: split ->
    stems (default: all 50, by the kreshuklab lists). Returns the stems per split."""
    real = Path(samples) / "aitslab_bioimaging1"
    stems = aitslab_stems(samples) if stems is None else stems
    out_dir = Path(out_dir)
    for split, archive in AITSLAB_ARCHIVES.items():
        members = {}
        for stem in stems.get(split, []):
            members[f"{archive.folder}/images/{stem}.png"] = real / "images_normalized_prepublication" / f"{stem}.png"
            members[f"{archive.folder}/annotations/{stem}_objects.png"] = real / "annotations_prepublication" / f"{stem}.png"
        _write(out_dir, archive.name if zipped else None, members)
    return stems


def write_nsd(samples, out_dir, counts: dict | None = None, zipped: bool = False) -> dict[str, int]:
    """The real NucleusSegData original release as the lab's `NucleusSegData/` tree in `out_dir`, or with
    `zipped` as `NucleusSegData.zip` (deflated). `counts`: set folder -> how many of its images, the first
    ones of `NSD_ORIGINAL` (default: all 37). Returns {image stem: author number}."""
    real = Path(samples) / "nucleussegdata" / "dataset"
    top = NSD_ARCHIVES["original"].folder
    members, numbers = {}, {}
    for folder, (prefix, annotation, chosen) in NSD_ORIGINAL.items():
        for n, number in enumerate(chosen[: None if counts is None else counts[folder]], start=1):
            members[f"{top}/{folder}/{prefix}{n}.jpg"] = real / "images" / f"{number}.jpg"
            members[f"{top}/{folder}/{annotation}{n}"] = real / "annotations" / str(number)
            numbers[f"{prefix}{n}"] = number
    _write(Path(out_dir), NSD_ARCHIVES["original"].name if zipped else None, members)
    return numbers


def _write(out_dir: Path, zip_name: str | None, members: dict[str, Path]) -> None:
    """Copy `members` (name in the archive -> sample file) into a zip `out_dir/zip_name`, or as files below `out_dir`."""
    if zip_name is not None:
        write_zip(out_dir / zip_name, {name: source.read_bytes() for name, source in members.items()})
        return
    for name, source in members.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
