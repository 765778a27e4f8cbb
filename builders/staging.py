"""Staging: build a source into a scratch folder, then put a complete Hub repo folder in place.

`build(builder_cls, out, ...)` runs the builder's `download_and_prepare` to Parquet for each
config inside `<out>/.<repo>.partial-*`, moves the shards into the Hub layout
`<folder>/<split>-NNNNN-of-NNNNN.parquet` (`data/` for a config named `default`, else the config
name), verifies the official counts, writes the card and the preview figure, checks the row
groups, and only then replaces `<out>/<repo>` by the finished folder. On any error the scratch
folder is removed: `<out>/<repo>` is either the previous complete version or the new one. Scratch
folders of killed builds are removed by the next build; those of builds still running (locked) are not.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow.parquet as pq
from datasets.download import DownloadConfig

from . import cards, schema
from .archives import same_copies
from .stats import split_stats
from .base import MAX_ROW_GROUP_BYTES, split_total
from .errors import BuildError, check_or_warn, no_progress_bars, raise_build_error, relaxed_checks, verification, warn

try:
    import fcntl
except ImportError:  # Windows: a concurrent build of the same repo may remove this one's scratch folder
    fcntl = None

HARD_ROW_GROUP_LIMIT = 300_000_000  # the viewer's scan limit per request


@dataclass
class ConfigResult:
    name: str
    folder: str
    info: datasets.DatasetInfo
    data_files: list  # [{"split": ..., "path": ...}]
    counts: dict = field(default_factory=dict)  # split -> (images, objects)
    empty: dict = field(default_factory=dict)  # split -> labelled images without objects
    used_archives: dict = field(default_factory=dict)  # archive name -> sha256 of the copy built (None: extracted)
    used_copies: dict = field(default_factory=dict)  # archive name -> (path, archives.fingerprint)
    layout: dict = field(default_factory=dict)  # PARTS_CONFIG builds: config -> split -> parts


def downloads_cache() -> str:
    """Where downloaded upstream archives are kept between builds (the `datasets` downloads cache)."""
    return os.path.join(datasets.config.HF_DATASETS_CACHE, "downloads")


def config_folder(config_name: str) -> str:
    return "data" if config_name == "default" else config_name


def row_group_problems(path: str, metadata) -> tuple[list, list]:
    """(errors, warnings) about the row-group sizes of one Parquet file, as the Hub viewer sees them."""
    errors, warnings = [], []
    for i in range(metadata.num_row_groups):
        size = metadata.row_group(i).total_byte_size
        if size > HARD_ROW_GROUP_LIMIT:
            errors.append(f"{path}: row group {i} holds {size:,} bytes, above the viewer's 300 MB scan limit")
        elif size > MAX_ROW_GROUP_BYTES * 1.5:
            warnings.append(f"{path}: row group {i} holds {size:,} bytes (target about {MAX_ROW_GROUP_BYTES:,})")
    return errors, warnings


def check_shards(paths: list[str]) -> None:
    """Row groups the viewer can scan, and no null fixed-size list (unreadable before pyarrow 26)."""
    for path in paths:
        errors, warnings = row_group_problems(path, pq.ParquetFile(path).metadata)
        for message in warnings:
            warn(message)
        if errors:
            raise BuildError(errors[0])
        problem = schema.null_fixed_list_problem(path)
        if problem:
            raise BuildError(problem)


def verify_counts(builder_cls, result: ConfigResult) -> None:
    official = builder_cls.OFFICIAL_COUNTS.get(result.name)
    if official is None:
        return
    for split, (images, objects) in official.splits.items():
        got_images, got_objects = split_total(result.counts, split)
        message = f"{builder_cls.SOURCE_ID} {result.name}/{split}: {got_images} images, the official count is {images}"
        if got_images != images and abs(got_images - images) <= official.tolerance.get(split, 0):
            warn(message + " (within the published uncertainty)")
        else:
            check_or_warn(got_images == images, message)
        if objects is not None and got_objects != objects:
            message = f"{builder_cls.SOURCE_ID} {result.name}/{split}: {got_objects} objects, the official count is {objects}"
            if official.objects_approximate:
                warn(message + " (approximate: published from an earlier copy of the labels)")
            else:
                check_or_warn(False, message)
    for split, empty in official.empty.items():
        got = sum(result.empty.get(s, 0) for s in split.split("+"))
        check_or_warn(got == empty, f"{builder_cls.SOURCE_ID} {result.name}/{split}: {got} labelled images without "
                                    f"objects, the official count is {empty}")


@contextlib.contextmanager
def _inside(folder: str):
    # `datasets` drops the bytes of an Image value whose `path` names an existing file relative to the
    # working directory and embeds that file instead; our paths are bare names such as `<id>_mask.png`,
    # so generation runs in an empty folder where no such file can exist.
    os.makedirs(folder, exist_ok=True)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _prepare_config(builder_cls, config_name, scratch, repo_dir, data_dir, num_proc, verify, folder=None) -> ConfigResult:
    builder = builder_cls(
        config_name=config_name,
        cache_dir=os.path.join(scratch, "cache"),
        dataset_name=builder_cls.REPO_NAME.replace("-", "_"),
        data_dir=data_dir,
        verify=verify,
    )
    build_dir = os.path.join(scratch, "build", config_name)
    # Parts (NuCLS) are internal splits: their bars would show names no user knows.
    bars = no_progress_bars() if config_name == builder_cls.PARTS_CONFIG else contextlib.nullcontext()
    with _inside(os.path.join(scratch, "cwd")), bars:
        builder.download_and_prepare(
            build_dir,
            file_format="parquet",
            num_proc=num_proc if num_proc and num_proc > 1 else None,
            download_config=DownloadConfig(cache_dir=downloads_cache()),
        )
    folder = folder or config_folder(config_name)
    result = ConfigResult(config_name, folder, builder.info.copy(), [], used_archives=dict(builder.used_archives),
                          used_copies=dict(builder.used_copies),
                          layout=builder.parts_layout() if config_name == builder_cls.PARTS_CONFIG else {})
    written = []
    for split in builder.info.splits:
        prefix = os.path.join(build_dir, f"{builder.dataset_name}-{split}")
        shards = sorted(glob.glob(prefix + ".parquet") + glob.glob(prefix + "-[0-9]*.parquet"))  # not `test_x` for `test`
        targets = []
        for i, source in enumerate(shards):
            target = os.path.join(repo_dir, folder, f"{split}-{i:05d}-of-{len(shards):05d}.parquet")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(source, target)
            targets.append(target)
        check_shards(targets)
        written += targets
        stats = split_stats(targets)
        images, objects, result.empty[split] = stats.images, stats.objects, stats.empty
        result.counts[split] = (images, objects)
        result.data_files.append({"split": split, "path": f"{folder}/{split}-*"})
    result.info.config_name = config_name
    result.info.download_size = sum(os.path.getsize(p) for p in written)
    result.info.dataset_size = sum(s.num_bytes for s in result.info.splits.values())
    result.info.size_in_bytes = None
    result.info.download_checksums = None
    return result


def _configs_from_parts(parts: ConfigResult, configs: list[str], repo_dir: str, asked: bool) -> list[ConfigResult]:
    """Published configs whose splits list the parts built once; parts no config uses are removed.

    A config the archive has no data for (the layout lacks it) is left out, or an error if it was `asked` for."""
    absent = [name for name in configs if name not in parts.layout]
    if absent and asked:
        raise BuildError(f"{', '.join(sorted(parts.used_archives))}: no data for config {', '.join(absent)} "
                         f"(see the warnings above); build the other configs")
    configs = [name for name in configs if name in parts.layout]
    files = {part: glob.glob(os.path.join(repo_dir, parts.folder, f"{part}-[0-9]*.parquet")) for part in parts.counts}
    results = []
    for name in configs:
        info = parts.info.copy()
        info.config_name, info.splits = name, datasets.SplitDict()
        result = ConfigResult(name, parts.folder, info, [], used_archives=parts.used_archives,
                              used_copies=parts.used_copies)
        for split, members in parts.layout[name].items():
            images = sum(parts.counts[m][0] for m in members)
            result.counts[split] = (images, sum(parts.counts[m][1] for m in members))
            result.empty[split] = sum(parts.empty[m] for m in members)
            info.splits.add(datasets.SplitInfo(name=split, num_examples=images,
                                               num_bytes=sum(parts.info.splits[m].num_bytes for m in members)))
            result.data_files.append({"split": split, "path": [f"{parts.folder}/{m}-*" for m in members]})
        used = {m for members in parts.layout[name].values() for m in members}
        info.dataset_size = sum(s.num_bytes for s in info.splits.values())
        info.download_size = sum(os.path.getsize(f) for m in used for f in files[m])
        results.append(result)
    used = {m for result in results for members in parts.layout[result.name].values() for m in members}
    for part in set(files) - used:  # only a subset of the configs was asked for
        for path in files[part]:
            os.remove(path)
    return results


def _hold(scratch: str) -> int:
    """Lock a scratch folder for as long as its build runs (the OS releases it if the build is killed)."""
    handle = os.open(os.path.join(scratch, ".lock"), os.O_CREAT | os.O_RDWR)
    if fcntl:
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _in_use(scratch: Path) -> bool:
    """Whether another build still runs in this scratch folder (then it is not stale)."""
    if fcntl is None:
        return False
    try:
        handle = os.open(scratch / ".lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(handle)


def build(builder_cls, out="hub", data_dir=None, configs=None, num_proc=None, verify=True) -> Path:
    """Build `builder_cls` into `<out>/<repo name>` and return that path."""
    names = builder_cls.config_names()
    unknown = set(configs or []) - set(names)
    if unknown:
        raise BuildError(f"{builder_cls.SOURCE_ID}: no config named {sorted(unknown)}; configs are {names}")
    asked = configs
    configs = [c for c in names if c in set(configs)] if configs else names
    out = Path(out).resolve()
    data_dir = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None
    out.mkdir(parents=True, exist_ok=True)
    final = out / builder_cls.REPO_NAME
    previous = out / f".{builder_cls.REPO_NAME}.previous"
    if previous.exists() and not final.exists():  # a build killed between the two renames below
        os.replace(previous, final)
    shutil.rmtree(previous, ignore_errors=True)
    for stale in out.glob(f".{builder_cls.REPO_NAME}.partial-*"):  # left by a killed build
        if not _in_use(stale):
            shutil.rmtree(stale, ignore_errors=True)
    scratch = tempfile.mkdtemp(prefix=f".{builder_cls.REPO_NAME}.partial-", dir=out)
    lock = _hold(scratch)
    try:
        with verification(verify), relaxed_checks() as relaxed:  # relaxed: what --no-verify lets through, for the card
            repo_dir = os.path.join(scratch, "repo")
            os.makedirs(repo_dir)
            try:
                if builder_cls.PARTS_CONFIG:
                    parts = _prepare_config(builder_cls, builder_cls.PARTS_CONFIG, scratch, repo_dir, data_dir, num_proc,
                                            verify, folder="data")
                    results = _configs_from_parts(parts, configs, repo_dir, asked=bool(asked))
                else:
                    results = [_prepare_config(builder_cls, c, scratch, repo_dir, data_dir, num_proc, verify) for c in configs]
            except Exception as exc:  # `datasets` wraps errors raised while generating: surface ours as they are
                raise_build_error(exc)
                raise
            problem = same_copies({name: copy for r in results for name, copy in r.used_copies.items()})
            if problem:  # configs built from one file copied under two archives' names
                raise BuildError(problem)
            for result in results:
                verify_counts(builder_cls, result)
            cards.write_card(builder_cls, results, repo_dir, unverified=None if verify else relaxed)
            if final.exists():
                os.replace(final, previous)
            os.replace(repo_dir, final)
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.close(lock)
    return final
