"""NucleusSegData: Hoechst-stained nuclei of the liver cancer cell lines Huh7 and HepG2.

What: fluorescence microscopy images (20x objective, Hoechst 33258) of Huh7 and HepG2 hepatocellular
carcinoma cells, 1024x768 RGB JPEG (the nuclear signal is mostly in the blue channel), each with a
manual instance annotation by a biologist: a plain-text matrix of nucleus ids, 0 = background.
Where: the Gunduz-Demir lab page, one zip per version holding the folders `TrainingSet/`,
`HepG2TestSet/` and `Huh7TestSet/`; images `<prefix><N>.jpg`, annotations `<prefix>_ann<N>` (no extension).
Versions: `original` (37 images, 2661 nuclei; Koyuncu et al. 2018) and `extended` (61 images, 3329
nuclei; Gunesli et al. 2020).
Splits: `train`, `test_hepg2`, `test_huh7`: the three folders, as published.
Counts: original 10 / 16 / 11 images and 785 / 985 / 891 nuclei; extended 25 / 25 / 11 images and
1126 / 1312 / 891 nuclei.
Licence: none; research use only ("This dataset is provided for research purposes only. The authors
have no responsibility for any consequences of use of this dataset."). Cite Koyuncu et al. 2018 and
Arslan et al. 2013 (and Gunesli et al. 2020 for the extended version).

NOTE: annotations are text files without extension, named `<prefix>_ann<N>` (`tr_ann1` for `tr1.jpg`),
      `<stem>_gold` in one copy, or `<stem>_ann`; all three are accepted, with or without `.txt`.
NOTE: every matrix line ends with a trailing space (a reader splitting on single spaces sees a 1025th
      empty column): values are split on whitespace; otherwise the parser is strict: exactly one line
      per image row and one value per image column, digits only; an error names the file, line and column.
NOTE: neighbouring nuclei touch (adjacent pixels with different ids): the id matrix is kept as is, never
      binarised; ids are renumbered 1..N in raster order of each nucleus's first pixel.
NOTE: `cell_line` comes from the folder for the test sets. `TrainingSet` mixes HepG2 and Huh7 in an
      unpublished order: in `original`, each training image is matched by its number of nuclei to the
      author's per-image counts, which are all distinct (HepG2 10, 30, 45, 37, 176; Huh7 27, 52, 146, 19,
      243). In `extended` the counts of the 15 added training images are not published, so a count cannot
      tell an original image from a new one, and `cell_line` is null for all training images.
NOTE: the archives' file names and checksums are not published: the build takes `NucleusSegData.zip` /
      `NucleusSegDataExtended.zip`, their extracted folders, or a zip or folder of another name below
      `--data-dir` holding the three set folders, recognised as the original (10 training images) or the
      extended version (25); it records the SHA-256 of the copy it built in the card.
"""

from __future__ import annotations

import re
from functools import partial

import datasets
import numpy as np

from . import masks
from .archives import Archive, Tree
from .base import Imaging, OfficialCounts, SegmentationBuilder, SourceConfig
from .errors import BuildError, check_or_warn, warn

HOMEPAGE = "https://mysite.ku.edu.tr/cgunduz/downloads/nucleussegdata/"
IMAGE = re.compile(r"^(?P<stem>.+)\.jpe?g$", re.IGNORECASE)  # applied to file names
SETS = {"TrainingSet": "train", "HepG2TestSet": "test_hepg2", "Huh7TestSet": "test_huh7"}


def training_images(tree: Tree, count: int) -> bool:
    """Whether `tree` holds `count` TrainingSet images: 10 in the original version, 25 in the extended one."""
    return sum(1 for name in tree.files if name.split("/")[-2:-1] == ["TrainingSet"] and IMAGE.match(name)) == count


# The zips' names are not published; these URLs are the best guess (see NOTES). A copy under another
# name is recognised by its set folders and told apart from the other version by its training images.
ARCHIVES = {
    "original": Archive("NucleusSegData.zip", HOMEPAGE + "NucleusSegData.zip", None, "NucleusSegData",
                        manual=HOMEPAGE, contains=tuple(SETS), identify=partial(training_images, count=10)),
    "extended": Archive("NucleusSegDataExtended.zip", HOMEPAGE + "NucleusSegDataExtended.zip", None,
                        "NucleusSegDataExtended", manual=HOMEPAGE, contains=tuple(SETS),
                        identify=partial(training_images, count=25)),
}

OFFICIAL_COUNTS = {
    "original": OfficialCounts({"train": (10, 785), "test_hepg2": (16, 985), "test_huh7": (11, 891)}),
    "extended": OfficialCounts({"train": (25, 1126), "test_hepg2": (25, 1312), "test_huh7": (11, 891)}),
}

# Nuclei per training image in the author's numbering (HepG2 1, 3, 7, 15, 23; Huh7 27, 28, 33, 35, 39).
TRAINING_CELL_LINES = {
    "original": {10: "HepG2", 30: "HepG2", 45: "HepG2", 37: "HepG2", 176: "HepG2",
                 27: "Huh7", 52: "Huh7", 146: "Huh7", 19: "Huh7", 243: "Huh7"},
    "extended": {},  # 15 added training images with unpublished counts: a match proves nothing
}
TEST_CELL_LINES = {"test_hepg2": "HepG2", "test_huh7": "Huh7"}

CITATION = """\
@article{koyuncu2018object,
  author  = {Koyuncu, Can Fahrettin and Cetin-Atalay, Rengul and Gunduz-Demir, Cigdem},
  title   = {Object-oriented segmentation of cell nuclei in fluorescence microscopy images},
  journal = {Cytometry Part A},
  volume  = {93},
  number  = {10},
  pages   = {1019--1028},
  year    = {2018},
  doi     = {10.1002/cyto.a.23594}
}
@article{arslan2013attributed,
  author  = {Arslan, Salim and Ersahin, Tulin and Cetin-Atalay, Rengul and Gunduz-Demir, Cigdem},
  title   = {Attributed relational graphs for cell nucleus segmentation in fluorescence microscopy images},
  journal = {IEEE Transactions on Medical Imaging},
  volume  = {32},
  number  = {6},
  pages   = {1121--1131},
  year    = {2013},
  doi     = {10.1109/TMI.2013.2255309}
}
@article{gunesli2020attentionboost,
  author  = {Gunesli, Gozde N. and Sokmensuer, Cenk and Gunduz-Demir, Cigdem},
  title   = {AttentionBoost: Learning what to attend for gland segmentation in histopathological images by boosting fully convolutional networks},
  journal = {IEEE Transactions on Medical Imaging},
  volume  = {39},
  number  = {12},
  pages   = {4262--4273},
  year    = {2020},
  doi     = {10.1109/TMI.2020.3015198}
}
"""


ANNOTATION = (  # name without `.txt` -> the image stem it annotates
    (re.compile(r"^(?P<prefix>.+)_ann(?P<n>\d+)$"), lambda m: m["prefix"] + m["n"]),  # tr_ann1 -> tr1
    (re.compile(r"^(?P<stem>.+)_(gold|ann)$"), lambda m: m["stem"]),  # huh7_ts6_gold, tr1_ann -> the stem
)


def annotated_stem(filename: str) -> str | None:
    """The image stem an annotation file name refers to, or None if it is not an annotation name."""
    name = filename[:-4] if filename.lower().endswith(".txt") else filename
    for pattern, stem in ANNOTATION:
        match = pattern.match(name)
        if match:
            return stem(match)
    return None


def _natural(stem: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", stem)]


def find_sets(tree: Tree) -> dict[str, list[tuple[str, str, str]]]:
    """Split -> `(stem, image member, annotation member)` in natural order, for the three set folders.

    The set folders may sit at any depth, but all under one parent. Unpaired files are errors
    (warnings with --no-verify).
    """
    members = {}  # set folder path -> file names in it
    for name in tree.files:
        folder, _, filename = name.rpartition("/")
        if folder.rpartition("/")[2] in SETS:
            members.setdefault(folder, []).append(filename)
    roots = sorted({folder.rpartition("/")[0] for folder in members})
    if not roots:
        raise BuildError(f"{tree.label}: none of the folders {', '.join(SETS)} found")
    if len(roots) > 1:
        raise BuildError(f"{tree.label}: the set folders appear under several parents ({', '.join(r or '.' for r in roots)})")
    root = roots[0] + "/" if roots[0] else ""
    found = {}
    for folder_name, split in SETS.items():
        folder = root + folder_name
        if folder not in members:
            check_or_warn(False, f"{tree.where(folder)}: folder missing; split {split} left out")
            continue
        images, annotations = {}, {}
        for filename in members[folder]:
            match = IMAGE.match(filename)
            table, stem = (images, match["stem"]) if match else (annotations, annotated_stem(filename))
            if stem is None:
                warn(f"{tree.where(f'{folder}/{filename}')}: neither an image nor an annotation name; ignored")
                continue
            if stem in table:
                raise BuildError(f"{tree.where(folder)}: two files for {stem}: {table[stem]} and {filename}")
            table[stem] = filename
        for stem in sorted(images.keys() - annotations.keys(), key=_natural):
            check_or_warn(False, f"{tree.where(f'{folder}/{images[stem]}')}: image without annotation "
                                 f"(looked for {stem}_gold, {stem}_ann or <prefix>_ann<N>)")
        for stem in sorted(annotations.keys() - images.keys(), key=_natural):
            check_or_warn(False, f"{tree.where(f'{folder}/{annotations[stem]}')}: annotation without image {stem}.jpg")
        found[split] = [(stem, f"{folder}/{images[stem]}", f"{folder}/{annotations[stem]}")
                        for stem in sorted(images.keys() & annotations.keys(), key=_natural)]
    return found


MAX_DIGITS = 9  # ids stay far below 10**9 (max < 300 upstream); longer tokens could overflow


def _position(data: bytes, offset: int) -> tuple[int, int, str]:
    """1-based line and column (value index) of the token at byte `offset`, and the token."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    line = data[line_start:len(data) if line_end < 0 else line_end]
    start, end = offset - line_start, offset - line_start
    while start > 0 and line[start - 1:start] not in b" \t\r":
        start -= 1
    while end < len(line) and line[end:end + 1] not in b" \t\r":
        end += 1
    return data.count(b"\n", 0, offset) + 1, len(line[:start].split()) + 1, line[start:end].decode("latin-1")


def parse_matrix(data: bytes, name: str, shape: tuple[int, int]) -> np.ndarray:
    """A whitespace-separated text matrix of non-negative integers -> int64 array of `shape` (rows, cols).

    Strict: one line per row (a final newline is optional), `cols` values per line, digits only.
    Errors name the file, line and column.
    """
    rows, cols = shape
    raw = np.frombuffer(data, dtype=np.uint8)
    digit = (raw >= ord("0")) & (raw <= ord("9"))
    bad = ~(digit | (raw == ord(" ")) | (raw == ord("\n")) | (raw == ord("\t")) | (raw == ord("\r")))
    if bad.any():
        line, column, token = _position(data, int(np.argmax(bad)))
        raise BuildError(f"{name}: line {line}, column {column}: {token!r} is not a non-negative integer")
    starts = digit.copy()  # the first digit of each value
    starts[1:] &= ~digit[:-1]
    newlines = np.flatnonzero(raw == ord("\n"))
    if data.endswith(b"\n"):
        newlines = newlines[:-1]  # the last line's terminator, not an empty line after it
    if len(newlines) + 1 != rows:
        raise BuildError(f"{name}: {len(newlines) + 1} lines, expected {rows} (one per image row)")
    line_starts = np.concatenate(([0], newlines + 1))
    per_line = np.add.reduceat(np.append(starts, False).view(np.uint8), line_starts, dtype=np.int64)
    per_line[line_starts == np.append(newlines, len(raw))] = 0  # reduceat yields the element itself for empty lines
    wrong = np.flatnonzero(per_line != cols)
    if wrong.size:
        line = int(wrong[0])
        where = f"column {cols + 1} is one too many" if per_line[line] > cols else f"column {per_line[line] + 1} is missing"
        raise BuildError(f"{name}: line {line + 1} has {per_line[line]} values, expected {cols} (one per image column; "
                         f"{where})")
    first = np.flatnonzero(starts)
    lengths = np.flatnonzero(digit & ~np.append(digit[1:], False)) + 1 - first
    if lengths.max() > MAX_DIGITS:
        line, column, token = _position(data, int(first[np.argmax(lengths)]))
        raise BuildError(f"{name}: line {line}, column {column}: {token!r} is too large for an instance id")
    # Decimal values, one digit position at a time; most values are a single "0".
    values = (raw[first] - ord("0")).astype(np.int64)
    longer = np.flatnonzero(lengths > 1)
    for k in range(1, int(lengths.max())):
        longer = longer[lengths[longer] > k]
        values[longer] = values[longer] * 10 + (raw[first[longer] + k] - ord("0"))
    return values.reshape(rows, cols)


_LAB_PAGE = ("the dataset page of the Gunduz-Demir lab", "https://mysite.ku.edu.tr/cgunduz/downloads/nucleussegdata/")
IMAGING = {"*": Imaging(
    modality="fluorescence microscopy", stain="Hoechst 33258 (nuclei)", organism="human",
    sample="Huh7 and HepG2 liver cancer cell lines", magnification="20x objective", pixel_size_um=None,
    sources=(_LAB_PAGE,),
)}

class NucleusSegData(SegmentationBuilder):
    """NucleusSegData (Gunduz-Demir lab): Huh7 and HepG2 nuclei, `original` 37 and `extended` 61 images."""

    SOURCE_ID = "nucleussegdata"
    PRETTY_NAME = "NucleusSegData: Hoechst-stained Huh7 and HepG2 nuclei"
    LICENSE = "other"
    LICENSE_NAME = "nucleussegdata-research-only"  # a Hub licence name is an id (lower case, digits, - and .)
    LICENSE_LINK = HOMEPAGE
    LICENSE_TERMS = (
        "This is not an open licence. The authors state: \"This dataset is provided for research purposes only. "
        "The authors have no responsibility for any consequences of use of this dataset.\" and ask users to cite "
        "Koyuncu et al. 2018 and Arslan et al. 2013."
    )
    GATED_PROMPT = (
        "The authors provide NucleusSegData for research purposes only and take no responsibility for any "
        "consequences of its use. Accept to use it for research only and to cite Koyuncu et al. 2018 and "
        "Arslan et al. 2013."
    )
    GATED_REASON = "for research purposes only (no open licence)"
    EXTRA_COLUMNS = {"cell_line": datasets.ClassLabel(names=["HepG2", "Huh7"])}
    COLUMN_DOCS = {
        "cell_line": "`HepG2` or `Huh7`: from the folder for the test sets, from the per-image nuclei count "
                     "for `original` training images, null where it cannot be established (`extended` training)",
    }
    BYTES_PER_EXAMPLE = 1_000_000  # 1024x768 JPEG ~20 kB, 16-bit mask ~40 kB, preview, up to ~300 polygons
    TAGS = ("fluorescence-microscopy", "nuclei", "HepG2", "Huh7", "Hoechst")
    BUILDER_CONFIGS = [
        SourceConfig(name="original", description="37 images: train 10, test_hepg2 16, test_huh7 11 (Koyuncu et al. 2018)"),
        SourceConfig(name="extended", description="61 images: train 25, test_hepg2 25, test_huh7 11 (Gunesli et al. 2020)"),
    ]
    DEFAULT_CONFIG_NAME = "original"

    def _split_generators(self, dl_manager):
        tree = self.locate(dl_manager, self.ARCHIVES[self.config.name])
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"tree": tree, "pairs": pairs, "split": split})
            for split, pairs in find_sets(tree).items()
        ]

    def _generate_examples(self, tree: Tree, pairs: list, split: str):
        counts = TRAINING_CELL_LINES[self.config.name]
        for stem, image_name, annotation_name in pairs:
            image_bytes = tree.read(image_name)
            image = masks.decode_image(image_bytes, tree.where(image_name))
            matrix = parse_matrix(tree.read(annotation_name), tree.where(annotation_name), (image.height, image.width))
            labels = masks.relabel_sequential(matrix, tree.where(annotation_name))
            cell_line = TEST_CELL_LINES.get(split) or counts.get(int(labels.max()))
            if split == "train" and counts and cell_line is None:
                warn(f"{tree.where(annotation_name)}: {int(labels.max())} nuclei matches no published training "
                     f"image count; cell_line left empty")
            yield stem, self.row(stem, image_bytes, image_name, image, labels, cell_line=cell_line)
