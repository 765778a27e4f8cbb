"""The generic base every source builder subclasses.

A source module starts with its metadata constants (homepage, licence, citation, archives with
SHA-256, official counts, known quirks as `NOTES`) and defines a short subclass of
`SegmentationBuilder` that sets them as class attributes and implements `_split_generators` and
`_generate_examples`. The base provides `_info` (core schema + the source's extra fields), the
`verify` config flag (off with `--no-verify`) as the verification policy of the builder's work, Parquet
row groups bounded in bytes, `locate` (an archive's files, recorded for the card), and `row`, which
assembles one example from the published image bytes and a label image. A source's card template and
fakes module are found from its names (`card_template`, `fakes`); sources whose configs overlap
implement `parts_layout`. See CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from . import masks, schema
from .archives import Archive, Tree, fingerprint, locate, same_copies
from .errors import BuildError, note, raise_build_error, verification, warn

VERSION = "1.0.0"
MAX_ROW_GROUP_BYTES = 100_000_000  # the Hub viewer scans at most 300 MB per request
CARD_TEMPLATES = Path(__file__).resolve().parent.parent / "dataset_cards"
EXIF_ORIENTATION = 0x0112  # EXIF tag that `datasets` applies (rotates the image) when decoding


@dataclass
class SourceConfig(datasets.BuilderConfig):
    verify: bool = True  # checksum and official-count mismatches are errors (warnings when False)


@dataclass(frozen=True)
class License:
    name: str
    link: str
    duties: str  # what the licence asks of a user who shares the data or work derived from it (a summary)


# One table for the licences our sources use: a builder names only the Hub licence id.
LICENSES = {
    "cc-by-4.0": License(
        "Creative Commons Attribution 4.0 International", "https://creativecommons.org/licenses/by/4.0/",
        "You may share and adapt the data for any purpose, if you give appropriate credit (cite the authors and "
        "the record), link to the licence and say whether you changed the data."),
    "cc-by-sa-4.0": License(
        "Creative Commons Attribution Share Alike 4.0 International", "https://creativecommons.org/licenses/by-sa/4.0/",
        "You may share and adapt the data for any purpose, if you give appropriate credit, link to the licence and "
        "say whether you changed it; what you share of the data, changed or not, must carry the same licence "
        "(share-alike)."),
    "cc0-1.0": License(
        "Creative Commons Zero v1.0 Universal", "https://creativecommons.org/publicdomain/zero/1.0/",
        "Public domain dedication: no conditions. The authors ask to be cited."),
}
# Module-level constants a builder's module declares (TensorFlow Datasets style) and its class picks up.
MODULE_CONSTANTS = ("HOMEPAGE", "CITATION", "ARCHIVES", "OFFICIAL_COUNTS", "IMAGING")


@dataclass(frozen=True)
class Imaging:
    """How a source's images were taken, as its authors state it; None where they do not say (never a guess)."""

    modality: str  # e.g. "widefield fluorescence", "brightfield whole-slide imaging"
    stain: str  # stain or marker
    organism: str
    sample: str  # cell line or tissue
    magnification: str | None  # as stated, e.g. "20x objective", "200x"
    pixel_size_um: float | None  # micrometres per pixel, as published
    sources: tuple  # where the values come from: (what, URL) pairs


@dataclass(frozen=True)
class OfficialCounts:
    """Published split sizes: images exactly, objects exactly unless `objects_approximate`.

    A key of `splits` (and of `empty`, `tolerance`) is a split name, or split names joined by `+`
    where only their total is published (e.g. `"train+test"`).
    """

    splits: dict  # split key -> (images, objects or None)
    objects_approximate: bool = False
    empty: dict = field(default_factory=dict)  # split key -> labelled images without any object
    tolerance: dict = field(default_factory=dict)  # split key -> image-count difference only warned about


def split_total(counts: dict, key: str) -> tuple[int, int]:
    """(images, objects) of a split in `counts`, or summed over the splits of a key such as `"train+test"`."""
    found = [counts.get(split, (0, 0)) for split in key.split("+")]
    return sum(images for images, _ in found), sum(objects for _, objects in found)


class SegmentationBuilder(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = SourceConfig
    VERSION = datasets.Version(VERSION)

    # Metadata every source sets (validated by tests/test_schema.py).
    SOURCE_ID: str = ""  # CLI id, e.g. "aitslab-bioimaging1"
    REPO_NAME: str = ""  # Hub repo name
    PRETTY_NAME: str = ""
    DESCRIPTION: str = ""
    HOMEPAGE: str = ""
    LICENSE: str = ""  # Hub licence id (SPDX lower-case) or "other"
    LICENSE_NAME: str = ""  # for LICENSE == "other"; else from LICENSES
    LICENSE_LINK: str = ""  # for LICENSE == "other"; else from LICENSES
    LICENSE_TERMS: str = ""  # the terms in words, for the card, where the licence is not a standard one
    GATED_PROMPT: str = ""  # terms users must accept on the Hub before downloading (a gated repo); "" for none
    GATED_REASON: str = ""  # why, completing "because the authors provide the data ..."
    CITATION: str = ""  # BibTeX
    ARCHIVES: dict = {}  # split or config key -> archives.Archive
    OFFICIAL_COUNTS: dict = {}  # config name -> OfficialCounts
    IMAGING: dict = {}  # config name, or "*" for every config -> Imaging
    NOTES: tuple = ()  # known upstream quirks and how the builder handles them
    EXTRA_COLUMNS: dict = {}  # source columns after the core ones
    EXTRA_OBJECT_FIELDS: dict = {}  # source object fields after the core ones
    COLUMN_DOCS: dict = {}  # meaning of each extra column / "objects.<field>", for the card's schema table
    BYTES_PER_EXAMPLE: int = 4_000_000  # upper estimate of one row, uncompressed, for row-group sizing
    TAGS: tuple = ()
    PARSERS: dict = {}  # archive member regex -> the function(bytes, where) parsing such files (fuzzed by the tests)
    CLASS_LABEL: str | None = None  # the ClassLabel field of `objects` the recipes, figure and statistics use
    OBJECT_CATEGORY: str = "nucleus"  # the one category of a source without CLASS_LABEL (recipes, COCO)
    CARD_TEMPLATE: str = ""  # the card's prose (Markdown); default dataset_cards/<REPO_NAME>.md
    FAKES: str = ""  # module of the fake archives (tests, demo); default builders.fakes.<module name>
    # Sources whose configs overlap (NuCLS folds) are generated once, as the splits of this hidden
    # config ("parts"); staging asks the built builder's `parts_layout` which parts make each published
    # config's splits, and each config's data_files list its parts, so nothing is stored twice.
    PARTS_CONFIG: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.used_archives = {}  # archive name -> sha256 of the copy used (None: an extracted folder)
        self.used_copies = {}  # archive name -> (path, archives.fingerprint) of the copy used

    def __init_subclass__(cls, **kwargs):
        """Metadata written once: the module's constants, its docstring's second paragraph (DESCRIPTION) and
        `NOTE:` lines (NOTES), the repo name from the source id, the licence's name and link from LICENSES."""
        super().__init_subclass__(**kwargs)
        module = sys.modules[cls.__module__]
        for name in MODULE_CONSTANTS:
            if name not in cls.__dict__ and hasattr(module, name):
                setattr(cls, name, getattr(module, name))
        doc = module.__doc__ or ""
        if "DESCRIPTION" not in cls.__dict__ and "\n\n" in doc:
            cls.DESCRIPTION = " ".join(doc.split("\n\n")[1].split())
        if "NOTES" not in cls.__dict__:
            cls.NOTES = tuple(" ".join(note.split()) for note in doc.split("NOTE:")[1:])
        cls.REPO_NAME = cls.__dict__.get("REPO_NAME") or cls.SOURCE_ID
        package, _, name = cls.__module__.rpartition(".")
        if not cls.__dict__.get("FAKES") and package:  # a module of the builders package: builders/fakes/<module>.py
            cls.FAKES = f"{package}.fakes.{name}"
        if cls.LICENSE in LICENSES:
            cls.LICENSE_NAME, cls.LICENSE_LINK = LICENSES[cls.LICENSE].name, LICENSES[cls.LICENSE].link
        cls.DEFAULT_WRITER_BATCH_SIZE = max(1, MAX_ROW_GROUP_BYTES // cls.BYTES_PER_EXAMPLE)

    @classmethod
    def features(cls) -> datasets.Features:
        return schema.features(cls.EXTRA_COLUMNS, cls.EXTRA_OBJECT_FIELDS)

    @classmethod
    def license_label(cls) -> str:
        """The Hub licence id, or for "other" the licence's name (`other: <name>`)."""
        return cls.LICENSE if cls.LICENSE != "other" else f"other: {cls.LICENSE_NAME}"

    @classmethod
    def card_template(cls) -> Path:
        return Path(cls.CARD_TEMPLATE) if cls.CARD_TEMPLATE else CARD_TEMPLATES / f"{cls.REPO_NAME}.md"

    @classmethod
    def fakes(cls):
        """The module writing this source's fake archives: `write_archives(folder, **options) -> manifest`,
        `expected_counts(manifest)`, `DEMO_OPTIONS` (see builders/fakes/__init__.py)."""
        return importlib.import_module(cls.FAKES)

    @classmethod
    def imaging(cls, config: str) -> Imaging:
        return cls.IMAGING.get(config) or cls.IMAGING["*"]

    @classmethod
    def config_names(cls) -> list[str]:
        """Published config names, default first."""
        names = [c.name for c in cls.BUILDER_CONFIGS if c.name != cls.PARTS_CONFIG]
        default = cls.DEFAULT_CONFIG_NAME or names[0]
        return [default] + [n for n in names if n != default]

    def parts_layout(self) -> dict:
        """PARTS_CONFIG sources, after `download_and_prepare`: {config: {split: [part, ...]}} of the data found;
        a published config the data has nothing for is absent."""
        raise NotImplementedError(f"{type(self).__name__} sets PARTS_CONFIG but does not define parts_layout")

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            features=self.features(),
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
            citation=self.CITATION,
        )

    # The verification policy (errors.verification) from this config's `verify` flag, around the builder's own
    # work: split generators and generation here, and generation again inside each --num-proc worker process.
    def _download_and_prepare(self, *args, **kwargs):
        with verification(self.config.verify):
            return super()._download_and_prepare(*args, **kwargs)

    def _prepare_split_single(self, *args, **kwargs):
        with verification(self.config.verify):
            try:
                yield from super()._prepare_split_single(*args, **kwargs)
            except Exception as exc:
                # `datasets` wraps it in a DatasetGenerationError whose cause is lost on the way back from a
                # --num-proc worker: ours goes back instead, so the message still names the file.
                raise_build_error(exc)
                raise

    def locate(self, dl_manager, archive: Archive) -> Tree:
        """The archive's files (from --data-dir or downloaded), verified; records what was used for the card."""
        others = {name for other in self.ARCHIVES.values() if other != archive for name in (other.name, other.folder)}
        tree = locate(dl_manager, archive, exclude=others)
        self.used_archives[archive.name] = tree.sha256  # None: an extracted folder
        self.used_copies[archive.name] = (tree.path, fingerprint(tree))
        note(f"{archive.name}: using {tree.path}" + (f" (sha256 {tree.sha256})" if tree.sha256 else " (extracted folder)"))
        problem = same_copies(self.used_copies)
        if problem:
            raise BuildError(problem)
        return tree

    def row(self, image_id: str, image_bytes: bytes, image_name: str, image, labels: np.ndarray | None,
            objects: list | None = None, **extra) -> dict:
        """One example: the published image bytes, the label image as a 16-bit PNG, its objects and a preview.

        `image` is the decoded image (for the preview); `labels` a label image with ids 1..N (every id
        present), or None for an unlabelled image. `objects`: records made by the builder (for sources
        that publish their own outlines), instead of those traced from `labels`.
        """
        if objects is None:
            objects = [] if labels is None else masks.objects_from_labels(labels)
        orientation = image.getexif().get(EXIF_ORIENTATION)
        if labels is not None and orientation not in (None, 1):
            warn(f"{image_name}: EXIF orientation {orientation}: `datasets` rotates the image when decoding it, "
                 f"but not its instance_mask")
        return {
            "image_id": image_id,
            "preview": {"bytes": masks.preview_jpeg(image, labels), "path": f"{image_id}_preview.jpg"},
            "image": {"bytes": image_bytes, "path": image_name.rsplit("/", 1)[-1]},
            "instance_mask": None if labels is None else {"bytes": masks.png16(labels), "path": f"{image_id}_mask.png"},
            "objects": objects,
            "num_objects": None if labels is None else len(objects),
            "pixel_size_um": self.imaging(self.config.name).pixel_size_um,
            **extra,
        }
