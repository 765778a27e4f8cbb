"""Dataset cards: README.md (YAML metadata + body) and a figure per config (`assets/preview-<config>.jpg`),
from a builder's metadata.

The layout (sections, table headers) is `dataset_cards/card.md`, a `string.Template`; the prose (what
the data is, how it was made) comes from the builder's card template (`dataset_cards/<repo name>.md`); everything
else is generated: licence, configs (default first, `default: true`), `dataset_info` with the
builder's features and the split sizes of the staged shards, counts beside the official ones,
the schema, the known quirks (`NOTES`), provenance (archives with SHA-256, builder version) and
the citation.
"""

from __future__ import annotations

import glob
import io
import os
import re
from pathlib import Path
from string import Template

import datasets
import numpy as np
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData
from PIL import Image as PILImage

from .base import CARD_TEMPLATES, LICENSES, VERSION, split_total

CARD = CARD_TEMPLATES / "card.md"  # the card's layout: sections and the tables' headers
RECIPES = CARD_TEMPLATES / "recipes.md"  # "Train with PyTorch" and "COCO", with the repo id, config and classes filled in
FIGURE_TILE, FIGURE_TILES, FIGURE_QUALITY = 256, 4, 90  # per config: its first images, each scaled to a tile
# Outline colours of the classes in the figures (index = class index), distinct on H&E and on dark fluorescence.
CLASS_COLOURS = np.array([(255, 40, 40), (40, 200, 40), (40, 120, 255), (255, 200, 0), (200, 60, 255), (0, 220, 220),
                          (255, 120, 0), (255, 255, 255)], dtype=np.uint8)

CORE_DOCS = {
    "image_id": "upstream file stem; one id always names the same image bytes",
    "image": "the upstream image bytes as published, never re-encoded",
    "instance_mask": "16-bit PNG (PIL mode `I;16`) of the image size: 0 = background, k = `objects[k-1]`",
    "objects": "one record per object, in instance-id order",
    "preview": "small RGB JPEG of the image with coloured instance outlines, for the viewer (second, so it shows first)",
    "num_objects": "number of objects (`len(objects)`); null for an unlabelled image",
    "pixel_size_um": "micrometres per pixel as the authors publish it; null where they do not (see Imaging)",
    "objects.instance_id": "k for `objects[k-1]`: the value of this object in `instance_mask`",
    "objects.bbox": "`[x_min, y_min, width, height]` (COCO) of the object's mask pixels, in the pixel-edge frame: "
                    "pixel (column c, row r) covers [c, c+1] x [r, r+1]",
    "objects.area": "pixel count of this id in `instance_mask`",
    "objects.polygons": "COCO polygons, one flat ring `[x1, y1, x2, y2, ...]` per 4-connected part, in the frame "
                        "of `bbox` (a pixel is inside when its centre is); holes are not cut out (see the mask)",
}


# The Hub's metadata rules for the fields we write (huggingface.co/docs/hub/datasets-cards; the Hub's
# licence list and task taxonomy). A card is checked against them before any upload.
HUB_LICENSES = {
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c",
    "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense",
    "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3", "unknown", "other",
}
TASK_CATEGORIES = {
    "image-segmentation", "object-detection", "image-classification", "image-feature-extraction", "mask-generation",
    "zero-shot-object-detection", "depth-estimation", "image-to-image", "keypoint-detection",
}
TASK_IDS = {"instance-segmentation", "semantic-segmentation", "panoptic-segmentation", "image-colorization",
            "multi-class-image-classification", "multi-label-image-classification", "face-detection",
            "vehicle-detection", "pose-estimation"}
UNVERIFIED_MARKER = "<!-- unverified build -->"  # `publish.push` refuses a card carrying it without --allow-unverified
SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"}


def _listed(value) -> list:
    """A metadata field that may be one value or a list of values, as a list."""
    return value if isinstance(value, list) else [] if value is None else [value]


def metadata_problems(data: dict) -> list[str]:
    """What in a card's YAML metadata breaks the Hub's rules for the fields we write (empty: none)."""
    problems = []
    licences = _listed(data.get("license"))
    if not licences:
        problems.append("license is missing")
    problems += [f"license {licence!r} is not a Hub licence id" for licence in licences
                 if not isinstance(licence, str) or licence not in HUB_LICENSES]
    if "other" in licences and not (data.get("license_name") and data.get("license_link")):
        problems.append("license 'other' needs license_name and license_link")
    name = data.get("license_name")
    if name is not None and not (isinstance(name, str) and re.fullmatch(r"[a-z0-9.-]+", name)):
        problems.append(f"license_name {name!r} must be lower-case letters, digits, '-' and '.'")
    for key, allowed in (("task_categories", TASK_CATEGORIES), ("task_ids", TASK_IDS),
                         ("size_categories", SIZE_CATEGORIES)):
        values = _listed(data.get(key))
        if not values:
            problems.append(f"{key} is missing")
        problems += [f"{key}: {value!r} is not one of the Hub's values" for value in values
                     if not isinstance(value, str) or value not in allowed]
    if not data.get("pretty_name"):
        problems.append("pretty_name is missing")
    configs = data.get("configs")
    if not isinstance(configs, list) or not configs or not all(isinstance(c, dict) for c in configs):
        problems.append("configs must be a non-empty list of mappings")
        return problems
    defaults = [c for c in configs if c.get("default")]
    if defaults != configs[:1] and not (not defaults and configs[0].get("config_name") == "default"):
        problems.append("the first config, and only it, must be marked default: true")
    return problems


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def feature_text(feature) -> str:
    if isinstance(feature, datasets.Image):
        return "Image()"
    text = repr(feature)
    return text if len(text) <= 60 else type(feature).__name__ + "(...)"


def schema_rows(builder_cls) -> list[str]:
    features = builder_cls.features()
    docs = {**CORE_DOCS, **builder_cls.COLUMN_DOCS}
    rows = []
    for name, feature in features.items():
        rows.append(f"| `{name}` | `{feature_text(feature)}` | {docs.get(name, '')} |")
        if name == "objects":
            for field, sub in feature.feature.items():
                rows.append(f"| `objects[].{field}` | `{feature_text(sub)}` | {docs.get('objects.' + field, '')} |")
    return rows


def _number(value) -> str:
    return "–" if value is None else f"{value:,}"


def sources_table(classes) -> str:
    """The README's table of sources, one row per config, from each builder's metadata and official counts."""
    rows = ["| source id | config (default first) | official images (objects) per split | licence | upstream |",
            "|---|---|---|---|---|"]
    for cls in classes:
        for n, config in enumerate(cls.config_names()):
            official = cls.OFFICIAL_COUNTS.get(config)
            counts = ", ".join(f"{split} {images:,}" + (f" ({objects:,}{'~' if official.objects_approximate else ''})"
                                                         if objects is not None else "")
                               for split, (images, objects) in official.splits.items()) if official else "–"
            first = (f"`{cls.SOURCE_ID}`", f"[{cls.license_label()}]({cls.LICENSE_LINK})", cls.HOMEPAGE) if n == 0 else ("", "", "")
            rows.append(f"| {first[0]} | `{config}` | {counts} | {first[1]} | {first[2]} |")
    return "\n".join(rows)


def counts_rows(builder_cls, results) -> list[str]:
    rows = []
    for result in results:
        official = builder_cls.OFFICIAL_COUNTS.get(result.name)
        totals = [key for key in (official.splits if official else {}) if key not in result.counts]
        for split in [*result.counts, *totals]:  # splits, then totals published over several splits
            images, objects = split_total(result.counts, split)
            off_images, off_objects = official.splits.get(split, (None, None)) if official else (None, None)
            approx = "~" if official and official.objects_approximate and off_objects is not None else ""
            rows.append(
                f"| {result.name} | {split} | {images:,} | {_number(off_images)} "
                f"| {objects:,} | {approx}{_number(off_objects)} |"
            )
    return rows


def quick_start(builder_cls, results) -> str:
    default = results[0]
    split = next(iter(default.counts))
    config = "" if default.name == "default" else f', "{default.name}"'
    return f"""```python
import datasets
import numpy as np
from datasets import load_dataset

ds = load_dataset("ORG/{builder_cls.REPO_NAME}"{config}, split="{split}")
row = ds[0]
mask = np.array(row["instance_mask"])          # uint16, 0 = background, k = row["objects"][k-1]
for obj in row["objects"]:
    binary = mask == obj["instance_id"]         # one object's pixels
    x, y, w, h = obj["bbox"]

# streaming, without downloading everything first
stream = load_dataset("ORG/{builder_cls.REPO_NAME}"{config}, split="{split}", streaming=True)
first = next(iter(stream))
```"""


def recipes(builder_cls, results) -> str:
    """The "Train with PyTorch" and "COCO" sections for the default config's first split."""
    default = results[0]
    label, category = builder_cls.CLASS_LABEL, builder_cls.OBJECT_CATEGORY
    others = [name for name, feature in builder_cls.features()["objects"].feature.items()
              if isinstance(feature, datasets.ClassLabel) and name.endswith("_classification") and name != label]
    if label:
        label_line = f'LABEL = "{label}"  # the class column; also {" or ".join(others)}'
        label_note = f"`LABEL` picks the class column of `objects` (`{label}` here); a label is the\n  class index + 1;"
        category_note = "The categories are the class names of `LABEL`, with id = class index + 1."
    else:
        label_line = f"LABEL = None  # one class: {category}"
        label_note = f"one class, `{category}`, label 1;"
        category_note = f"One category, `{category}` (id 1)."
    return Template(RECIPES.read_text(encoding="utf-8")).substitute(
        repo=f"ORG/{builder_cls.REPO_NAME}", config=default.name, split=next(iter(default.counts)),
        label_line=label_line, label_note=label_note, category=category, category_note=category_note,
    ).strip()


def distinct_images(repo_dir: str, results) -> int:
    """Rows over the distinct shard files of every config: configs sharing files (NuCLS folds) count them once."""
    files = {path for r in results for entry in r.data_files for path in split_files(repo_dir, entry)}
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def card_metadata(builder_cls, results, repo_dir: str) -> DatasetCardData:
    license_fields = {"license": builder_cls.LICENSE}
    if builder_cls.GATED_PROMPT:  # users accept the terms on the Hub before they can download
        license_fields.update(extra_gated_prompt=builder_cls.GATED_PROMPT,
                              extra_gated_fields={"I will use this dataset for research purposes only": "checkbox"})
    if builder_cls.LICENSE == "other":
        license_fields.update(license_name=builder_cls.LICENSE_NAME, license_link=builder_cls.LICENSE_LINK)
    data = DatasetCardData(
        **license_fields,
        pretty_name=builder_cls.PRETTY_NAME,
        task_categories=["image-segmentation", "object-detection"],
        task_ids=["instance-segmentation"],
        size_categories=[size_category(distinct_images(repo_dir, results))],
        tags=["biology", "microscopy", "cell-segmentation", *builder_cls.TAGS],
    )
    infos = DatasetInfosDict({r.name: r.info for r in results})
    infos.to_dataset_card_data(data)
    data["configs"] = [
        {"config_name": r.name, "data_files": r.data_files, **({"default": True} if i == 0 else {})}
        for i, r in enumerate(results)
    ]
    return data


def imaging_section(builder_cls, results) -> str:
    """How the images were taken, per config, with where each value comes from; unknown values say so."""
    configs, sources = {}, {}  # Imaging -> the configs it describes (configs alike share a row)
    for result in results:
        configs.setdefault(builder_cls.imaging(result.name), []).append(result.name)
    rows = []
    for imaging, names in configs.items():
        size = "unknown (not published)" if imaging.pixel_size_um is None else f"{imaging.pixel_size_um:g}"
        rows.append(f"| {', '.join(names)} | {imaging.modality} | {imaging.stain} | {imaging.organism} | {imaging.sample} "
                    f"| {imaging.magnification or 'unknown (not published)'} | {size} |")
        sources.update(dict(imaging.sources))
    cited = "; ".join(f"[{what}]({url})" for what, url in sources.items())
    return ("| config | modality | stain or marker | organism | cell line or tissue | magnification | pixel size (µm) |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
            f"\n\nSources: {cited}. The `pixel_size_um` column holds the pixel size where it is published.")


def _figure(value, digits=0) -> str:
    return f"{value:,.{digits}f}"


def statistics_section(builder_cls, results, repo_dir: str) -> str:
    """Per-split statistics computed from the staged shards (`stats.split_stats`)."""
    from .stats import split_stats

    label = builder_cls.CLASS_LABEL
    names = builder_cls.features()["objects"].feature[label].names if label else []
    rows, class_rows = [], []
    for result in results:
        size = builder_cls.imaging(result.name).pixel_size_um
        for entry in result.data_files:
            stats = split_stats(split_files(repo_dir, entry), {label: names} if label else None)
            per_image = " / ".join(_figure(v, d) for v, d in zip(stats.per_image, (0, 1, 0))) if stats.per_image else "–"
            area = " / ".join(_figure(v, 1) for v in stats.area) if stats.area else "–"
            area_um = " / ".join(_figure(v * size * size, 1) for v in stats.area) if stats.area and size else "–"
            rows.append(f"| {result.name} | {entry['split']} | {stats.images:,} | {stats.unlabelled:,} | {stats.empty:,} "
                        f"| {stats.objects:,} | {per_image} | {area} | {area_um} |")
            if label:
                class_rows.append(f"| {result.name} | {entry['split']} | "
                                  + " | ".join(f"{stats.classes[label][n]:,}" for n in names) + " |")
    text = ("Computed from the published files. Objects per image over labelled images; area in pixels "
            "(and in µm² where the pixel size is published) at the 5th percentile, the median and the 95th.\n\n"
            "| config | split | images | unlabelled | labelled, no object | objects | objects per image (min / median / max) "
            "| object area px (p5 / median / p95) | object area µm² (p5 / median / p95) |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    if label:
        text += (f"\n\nObjects per `{label}` class:\n\n| config | split | " + " | ".join(f"`{n}`" for n in names)
                 + " |\n|---|---|" + "---|" * len(names) + "\n" + "\n".join(class_rows))
    return text


def unverified_notice(unverified: list | None) -> str:
    """A visible notice, for a build made without verification (--no-verify, or the demo's fake archives)."""
    if unverified is None:
        return ""
    found = "".join(f"\n> - {message}" for message in unverified[:20])
    more = f"\n> - … and {len(unverified) - 20} more" if len(unverified) > 20 else ""
    what = ("These checks failed and were let through:" + found + more) if unverified else \
        "No check failed, but none was enforced."
    return (f"{UNVERIFIED_MARKER}\n> **Not verified.** This repository was built with `--no-verify` (or from the demo's "
            f"fake archives): archive checksums, image/annotation pairing and the official counts were not enforced. "
            f"{what}\n\n")


def provenance_rows(builder_cls, results) -> str:
    used = {name: sha for r in results for name, sha in r.used_archives.items()}
    return "\n".join(
        f"| `{a.name}` | {a.url or a.manual} | `{a.sha256 or 'not published'}` "
        f"| {'`' + used[a.name] + '`' if used.get(a.name) else 'extracted folder (not hashed)' if a.name in used else '–'} |"
        for a in builder_cls.ARCHIVES.values()
    )


def licence_section(builder_cls) -> str:
    name = f"[{builder_cls.LICENSE_NAME}]({builder_cls.LICENSE_LINK})" if builder_cls.LICENSE_LINK else builder_cls.LICENSE_NAME
    terms = f" {builder_cls.LICENSE_TERMS}" if builder_cls.LICENSE_TERMS else ""
    duties = f" {LICENSES[builder_cls.LICENSE].duties}" if builder_cls.LICENSE in LICENSES else ""
    gated = (f"\n\nThis repository is gated: the Hub asks you to accept the terms above before it lets you download "
             f"the files, because the authors provide the data {builder_cls.GATED_REASON}. Log in "
             f"(`hf auth login`) after accepting them on the dataset page; `load_dataset` then works as usual."
             if builder_cls.GATED_PROMPT else "")
    return f"{name} (`{builder_cls.LICENSE}`).{terms} Cite the authors when you use the data.{duties}{gated}"


def card_body(builder_cls, results, repo_dir: str, unverified: list | None = None) -> str:
    """The card's Markdown: `dataset_cards/card.md` with each section filled in from the builder and the shards."""
    template = builder_cls.card_template()
    prose = template.read_text(encoding="utf-8").strip() if template.exists() else builder_cls.DESCRIPTION
    return Template(CARD.read_text(encoding="utf-8")).substitute(
        pretty_name=builder_cls.PRETTY_NAME,
        unverified=unverified_notice(unverified),
        figures=figures_section(builder_cls, results),
        prose=prose,
        quick_start=quick_start(builder_cls, results),
        recipes=recipes(builder_cls, results),
        counts="\n".join(counts_rows(builder_cls, results)),
        statistics=statistics_section(builder_cls, results, repo_dir),
        imaging=imaging_section(builder_cls, results),
        schema="\n".join(schema_rows(builder_cls)),
        notes="\n".join(f"- {note}" for note in builder_cls.NOTES),
        module=builder_cls.__module__.rsplit(".", 1)[-1],
        version=VERSION,
        homepage=builder_cls.HOMEPAGE,
        archives=provenance_rows(builder_cls, results),
        licence=licence_section(builder_cls),
        citation=builder_cls.CITATION.strip(),
    )


def split_files(repo: str, entry) -> list[str]:
    """The files of one `data_files` entry (`{"split", "path": pattern or [patterns]}`) in a repo folder."""
    patterns = [entry["path"]] if isinstance(entry["path"], str) else entry["path"]
    return sorted({path for pattern in patterns for path in glob.glob(os.path.join(repo, pattern))})


def _first_rows(files: list[str], columns: list[str], count: int) -> list[dict]:
    rows = []
    for path in files:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            if len(rows) < count:
                rows += parquet.read_row_group(group, columns=columns).slice(0, count - len(rows)).to_pylist()
    return rows


def figure_name(config: str) -> str:
    return f"assets/preview-{config}.jpg"


def config_figure(repo_dir: str, result, label: str | None = None, names: list | None = None) -> bytes | None:
    """The first images of a config's first split, each scaled to a FIGURE_TILE px tile with its objects' outlines
    (coloured by `label` class, with a legend, else per object) and a caption: split, image id, objects."""
    from PIL import ImageDraw

    from . import masks

    if not result.data_files:
        return None
    entry = result.data_files[0]
    rows = _first_rows(split_files(repo_dir, entry), ["image_id", "image", "instance_mask", "objects"], FIGURE_TILES)
    if not rows:
        return None
    caption, legend = 34, (len(names) + 1) // 2 * 18 + 8 if label else 0
    canvas = PILImage.new("RGB", (FIGURE_TILE * len(rows), FIGURE_TILE + caption + legend), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        image = PILImage.open(io.BytesIO(row["image"]["bytes"]))
        labels = None if row["instance_mask"] is None else np.asarray(PILImage.open(io.BytesIO(row["instance_mask"]["bytes"])))
        scale = FIGURE_TILE / max(image.size)  # small images are enlarged to the tile, large ones shrunk
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        colours = None
        if label and labels is not None:
            colours = np.zeros((len(row["objects"]) + 1, 3), dtype=np.uint8)
            colours[1:] = [CLASS_COLOURS[obj[label] % len(CLASS_COLOURS)] for obj in row["objects"]]
        tile = masks.outlined_rgb(image, labels, size, colours)
        canvas.paste(PILImage.fromarray(tile), (i * FIGURE_TILE + (FIGURE_TILE - size[0]) // 2, (FIGURE_TILE - size[1]) // 2))
        objects = "unlabelled" if labels is None else f"{len(row['objects'])} objects"
        image_id = row["image_id"] if len(row["image_id"]) <= 38 else row["image_id"][:37] + "…"
        draw.text((i * FIGURE_TILE + 4, FIGURE_TILE + 3), f"{result.name} / {entry['split']}: {objects}", fill="black")
        draw.text((i * FIGURE_TILE + 4, FIGURE_TILE + 17), image_id, fill="black")
    for k, name in enumerate(names or []):  # legend: two columns of colour swatches
        x, y = 4 + (k % 2) * 2 * FIGURE_TILE // 2, FIGURE_TILE + caption + 4 + k // 2 * 18
        draw.rectangle((x, y + 2, x + 12, y + 12), fill=tuple(int(v) for v in CLASS_COLOURS[k % len(CLASS_COLOURS)]))
        draw.text((x + 18, y), f"{label}: {name}", fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=FIGURE_QUALITY)
    return buffer.getvalue()


def figures_section(builder_cls, results) -> str:
    label = builder_cls.CLASS_LABEL
    how = f"outlines coloured by `{label}` (legend below the images)" if label else "one colour per object"
    return "\n\n".join(
        f"![{r.name}: the first images of split {r.data_files[0]['split']} with their objects' outlines]"
        f"({figure_name(r.name)})\n\n*Config `{r.name}`, split `{r.data_files[0]['split']}`: its first "
        f"{min(FIGURE_TILES, next(iter(r.counts.values()))[0])} images, {how}; each caption gives the image id and "
        f"its number of objects.*"
        for r in results if r.data_files)


def write_card(builder_cls, results, repo_dir: str, unverified: list | None = None) -> None:
    """README.md and the preview figure. `unverified`: None for a verified build, else the relaxed checks that
    failed (the card then carries a visible notice, and `push` refuses it without --allow-unverified)."""
    metadata = card_metadata(builder_cls, results, repo_dir)
    card = DatasetCard(f"---\n{metadata.to_yaml()}\n---\n\n{card_body(builder_cls, results, repo_dir, unverified)}")
    card.save(os.path.join(repo_dir, "README.md"))
    label = builder_cls.CLASS_LABEL
    names = builder_cls.features()["objects"].feature[label].names if label else None
    for result in results:
        figure = config_figure(repo_dir, result, label, names)
        if figure:
            os.makedirs(os.path.join(repo_dir, "assets"), exist_ok=True)
            Path(repo_dir, figure_name(result.name)).write_bytes(figure)
