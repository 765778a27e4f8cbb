"""Reliability through the command line (issue 8): bad upstream files, unpaired files, checksums,
unsafe archive members, builds killed mid-way, and byte-identical rebuilds, for every registered source
(the cases every source gets read its fakes module: `SMALL_OPTIONS`, `FIRST_IMAGE`).

Every bad input runs `upload.py build` twice, once into an empty `--out` and once over a previous good
build: exit code 1, an `error:` line that starts with the file (archive or archive:member) and says
what is wrong, no traceback, nothing new under `--out` (the previous build byte-identical) and nothing
written anywhere else. The archives are small fakes (`builders/fakes`) rewritten member by member.
"""

import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import upload
from builders import REGISTRY, staging
from builders.archives import sha256_of
from builders.fakes import fluocells, nucls, write_fakes, write_zip
from conftest import trust as trust_fakes
from test_aitslab_build import tree_bytes
from test_fluocells_build import _zip_members

ROOT = Path(__file__).resolve().parent.parent
FOV = nucls.fov_name("A2", 0, 0)  # the first FOV of the fake NuCLS zip
STEM = "MFGTMPcx7_170700090001_B14f00d0"  # the first training image of the fake Aitslab zips
V1_NAME = fluocells.v1_names(3, 2)["train"][0]
# The archive each source's default config reads first, and an image member of it (its fakes module says).
FIRST = {source: cls.fakes().FIRST_IMAGE for source, cls in REGISTRY.items()}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """Small fake archives of every source in one folder (as a user's --data-dir would be)."""
    folder = tmp_path_factory.mktemp("upstream")
    for cls in REGISTRY.values():
        write_fakes(cls, folder, "small")
    return folder


@pytest.fixture(scope="module")
def good(upstream, tmp_path_factory):
    """Source -> its staged repo built from `upstream` (all configs, --no-verify)."""
    out = tmp_path_factory.mktemp("good")
    return {source: staging.build(cls, out=out, data_dir=upstream, verify=False) for source, cls in REGISTRY.items()}


def cli(capsys, *args) -> tuple[int, str]:
    code = upload.main([str(a) for a in args])
    return code, capsys.readouterr().err


def trust(monkeypatch, upstream):
    """Take the fakes' own SHA-256 as the published ones, so a verified build gets past the checksums."""
    for cls in REGISTRY.values():
        trust_fakes(monkeypatch, cls, upstream)


def files_under(folder: Path) -> set:
    return {p for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def staged_ids(repo: Path, config: str | None = None) -> Counter:
    return Counter(i for p in sorted(repo.glob(f"{config or '**'}/*.parquet"))
                   for i in pq.read_table(p, columns=["image_id"]).column("image_id").to_pylist())


def assert_refused(capsys, tmp_path, args, previous: Path, message: str) -> None:
    """`build *args` fails with `message` into an empty --out and over `previous`, leaving both as they were."""
    outside = files_under(tmp_path)
    for out in (tmp_path / "hub-empty", tmp_path / "hub-previous"):
        if out.name == "hub-previous":
            shutil.copytree(previous, out / previous.name)
        code, err = cli(capsys, "build", *args, "--out", out)
        assert code == 1, err
        assert f"error: {message}" in err, err
        assert "Traceback" not in err
        if out.name == "hub-empty":
            assert os.listdir(out) == []  # no <repo>, no .<repo>.partial-*
        else:
            assert os.listdir(out) == [previous.name] and tree_bytes(out / previous.name) == tree_bytes(previous)
    assert {p for p in files_under(tmp_path) if not p.is_relative_to(tmp_path / "hub-empty")
            and not p.is_relative_to(tmp_path / "hub-previous")} == outside  # nothing written outside --out


# --- editing copies of the fake archives --------------------------------------------------------------

def change(up: Path, archive: str, pattern: str, new) -> str:
    """Replace the first member matching `pattern` by `new` (bytes, or a function of the old bytes; None
    removes it); returns `archive:member` as the builders name it."""
    members = _zip_members(up / archive)
    name = next(n for n in sorted(members) if re.search(pattern, n))
    if new is None:
        del members[name]
    else:
        members[name] = new(members[name]) if callable(new) else new
    write_zip(up / archive, members)
    return f"{archive}:{name}"


def truncate_archive(up: Path, archive: str) -> str:
    path = up / archive
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return archive


def corrupt_member(up: Path, archive: str, pattern: str) -> str:
    """Flip bytes in the middle of a member's compressed data (the zip's directory stays intact)."""
    with zipfile.ZipFile(up / archive) as opened:
        info = next(i for i in opened.infolist() if re.search(pattern, i.filename))
    data = bytearray((up / archive).read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    middle = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    data[middle: middle + 8] = bytes(b ^ 0xA5 for b in data[middle: middle + 8])
    (up / archive).write_bytes(bytes(data))
    return f"{archive}: cannot read member '{info.filename}'"


def add_member(up: Path, archive: str, name: str, data: bytes = b"x", mode: int = 0o644) -> str:
    with zipfile.ZipFile(up / archive, "a") as opened:
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        opened.writestr(info, data)
    return f"{archive}: member {name!r}"


def without_key(path: tuple):
    """A function of COCO bytes removing the key at `path` (e.g. `("annotations", 0, "dots")`)."""
    def edit(data: bytes) -> bytes:
        document = json.loads(data)
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return json.dumps(document).encode()
    return edit


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


# --- bad files: exit 1, the file named, nothing half-written -------------------------------------------

def member(source, archive, pattern, new, problem, case, extra=()):
    """A case that rewrites one member of `archive` (see `change`)."""
    return pytest.param(source, lambda up: change(up, archive, pattern, new), problem, list(extra), id=case)


def every_source(edit, problem, case):
    """A case per source, `edit(up, archive, image member pattern)` applied to the archive its default config
    reads first (only that config is built)."""
    return [pytest.param(s, lambda up, s=s: edit(up, *FIRST[s]), problem, ["--config", REGISTRY[s].config_names()[0]],
                         id=f"{case}-{s}") for s in FIRST]


NOT_AN_IMAGE = b"<html><body>404 Not Found</body></html>\n"
UNREADABLE = ": not a readable image"
AITSLAB, NSD, NUCLS, YELLOW = "training_nuclei.zip", "NucleusSegData.zip", "NuCLS_dataset.zip", "yellow.zip"
V2_YELLOW = ["--config", "v2_yellow"]
BAD = [  # (source, edit of the data folder -> the file as the error names it, what the error says, extra args)
    *every_source(lambda up, archive, image: truncate_archive(up, archive), ": not a readable zip archive", "truncated-zip"),
    *every_source(corrupt_member, "", "corrupt-member"),
    *every_source(lambda up, archive, image: add_member(up, archive, "../escaped.txt"), " has a path outside the archive",
                  "member-dotdot"),
    *every_source(lambda up, archive, image: add_member(up, archive, str(up.parent / "escaped.txt")),
                  " has a path outside the archive", "member-absolute"),
    *every_source(lambda up, archive, image: add_member(up, archive, "images/link.png", str(up.parent / "target").encode(),
                                                        mode=0o120777), " is a symbolic link", "member-symlink"),
    *every_source(lambda up, archive, image: change(up, archive, image, NOT_AN_IMAGE), UNREADABLE, "not-an-image"),
    # in a --num-proc worker too (the error used to come back as a bare DatasetGenerationError)
    *[pytest.param(*case.values[:3], [*case.values[3], "--num-proc", "2"], id=f"{case.id}-num-proc-2")
      for case in every_source(lambda up, archive, image: change(up, archive, image, NOT_AN_IMAGE), UNREADABLE,
                               "not-an-image")],
    member("aitslab-bioimaging1", AITSLAB, "_objects.png", NOT_AN_IMAGE, UNREADABLE, "not-an-image-aitslab-annotation"),
    member("nucls", NUCLS, "/mask/", NOT_AN_IMAGE, UNREADABLE, "not-an-image-nucls-mask"),
    member("fluocells", YELLOW, "masks/", NOT_AN_IMAGE, UNREADABLE, "not-an-image-fluocells-mask", V2_YELLOW),
    member("aitslab-bioimaging1", AITSLAB, "/images/", half, UNREADABLE, "truncated-png-half-aitslab"),
    member("aitslab-bioimaging1", AITSLAB, "_objects.png", lambda b: b[:-12], UNREADABLE, "truncated-png-no-iend-aitslab"),
    member("nucls", NUCLS, "/rgb/", lambda b: b[:-20], UNREADABLE, "truncated-png-tail-nucls"),
    member("fluocells", YELLOW, "masks/", half, UNREADABLE, "truncated-png-half-fluocells-mask", V2_YELLOW),
    member("nucleussegdata", NSD, r"\.jpg$", half, UNREADABLE, "truncated-jpeg-half-nucleussegdata"),
    member("nucleussegdata", NSD, r"\.jpg$", lambda b: b[:-2], UNREADABLE, "truncated-jpeg-no-eoi-nucleussegdata"),
    member("nucls", NUCLS, "/csv/TCGA", lambda b: b.replace(b"\n", b"\n0,tumor,tumor_nonMitotic\n", 1),
           ": line 2: 11 fields expected", "csv-short-row-nucls"),
    member("nucls", NUCLS, "/csv/TCGA", lambda b: re.sub(rb"(?m)^(\d+(,[^,]*){4},)\d+", rb"\g<1>1O", b, count=1),
           ": line 2: xmin '1O' is not a number", "csv-bad-number-nucls"),
    member("fluocells", YELLOW, "COCO/.*test", without_key(("annotations",)), ": missing key 'annotations'",
           "coco-no-annotations-fluocells", V2_YELLOW),
    member("fluocells", YELLOW, "COCO/.*test", without_key(("annotations", 0, "dots")),
           ": annotations[0]: missing key 'dots'", "coco-no-dots-fluocells", V2_YELLOW),
    member("nucleussegdata", NSD, "tr_ann1$", lambda b: b[: b.rindex(b"\n", 0, len(b) - 1) + 1],
           ": 47 lines, expected 48", "matrix-missing-row-nucleussegdata"),
    member("nucleussegdata", NSD, "tr_ann1$", lambda b: b.replace(b" \n", b" 0 \n", 1),
           ": line 1 has 65 values, expected 64", "matrix-extra-column-nucleussegdata"),
]


@pytest.mark.parametrize("source, edit, problem, extra", BAD)
def test_a_bad_file_fails_naming_it_and_leaves_nothing_half_written(tmp_path, upstream, good, capsys, source, edit,
                                                                    problem, extra):
    up = tmp_path / "up"
    shutil.copytree(upstream, up)
    where = edit(up)
    # --no-verify: it relaxes checksums, pairing and counts, never the reading of corrupt data
    assert_refused(capsys, tmp_path, [source, "--data-dir", up, "--no-verify", *extra], good[source], where + problem)


# --- unpaired files: an error, a warning with --no-verify; the known upstream orphan a warning -----------

ORPHANS = [  # (source, archive, member removed, member the message names, problem, image id left out, config)
    pytest.param("aitslab-bioimaging1", "training_nuclei.zip", f"training_nuclei/annotations/{STEM}_objects.png",
        f"training_nuclei/images/{STEM}.png", "image without annotation", STEM, None, id="aitslab-no-annotation"),
    pytest.param("aitslab-bioimaging1", "training_nuclei.zip", f"training_nuclei/images/{STEM}.png",
        f"training_nuclei/annotations/{STEM}_objects.png", "annotation without image", STEM, None, id="aitslab-no-image"),
    pytest.param("nucleussegdata", "NucleusSegData.zip", "NucleusSegData/TrainingSet/tr_ann2", "NucleusSegData/TrainingSet/tr2.jpg",
        "image without annotation", "tr2", None, id="nucleussegdata-no-annotation"),
    pytest.param("nucleussegdata", "NucleusSegData.zip", "NucleusSegData/TrainingSet/tr2.jpg", "NucleusSegData/TrainingSet/tr_ann2",
        "annotation without image", "tr2", None, id="nucleussegdata-no-image"),
    pytest.param("nucls", "NuCLS_dataset.zip", f"NuCLS_dataset/mask/{FOV}.png", f"NuCLS_dataset/csv/{FOV}.csv",
        f"FOV {FOV} has no mask file", FOV, None, id="nucls-no-mask"),
    pytest.param("nucls", "NuCLS_dataset.zip", f"NuCLS_dataset/csv/{FOV}.csv", f"NuCLS_dataset/mask/{FOV}.png",
        f"FOV {FOV} has no csv file", FOV, None, id="nucls-no-csv"),
    pytest.param("nucls", "NuCLS_dataset.zip", f"NuCLS_dataset/rgb/{FOV}.png", f"NuCLS_dataset/csv/{FOV}.csv",
        f"FOV {FOV} has no rgb file", FOV, None, id="nucls-no-rgb"),
    pytest.param("fluocells", "fluocells.zip", f"all_masks/masks/{V1_NAME}", f"all_images/images/{V1_NAME}",
        "image without a mask of the same file name", V1_NAME[:-4], "v1", id="fluocells-v1-no-mask"),
    pytest.param("fluocells", "fluocells.zip", f"all_images/images/{V1_NAME}", f"all_masks/masks/{V1_NAME}",
        "mask without an image of the same file name", V1_NAME[:-4], "v1", id="fluocells-v1-no-image"),
    pytest.param("fluocells", "yellow.zip", "yellow/trainval/ground_truths/masks/1.png", "yellow/trainval/images/1.png",
        "image without a mask of the same file name", "yellow_1", "v2_yellow", id="fluocells-v2-no-mask"),
    pytest.param("fluocells", "yellow.zip", "yellow/trainval/images/1.png", "yellow/trainval/ground_truths/masks/1.png",
        "mask without an image of the same file name", "yellow_1", "v2_yellow", id="fluocells-v2-no-image"),
]


@pytest.mark.parametrize("source, archive, removed, named, problem, image_id, config", ORPHANS)
def test_an_unpaired_file_is_an_error_or_a_warning_with_no_verify(tmp_path, upstream, good, capsys, monkeypatch, source,
                                                                  archive, removed, named, problem, image_id, config):
    up = tmp_path / "up"
    shutil.copytree(upstream, up)
    change(up, archive, f"^{removed}$", None)
    trust(monkeypatch, up)
    args = [source, "--data-dir", up] + (["--config", config] if config else [])
    assert_refused(capsys, tmp_path, args, good[source], f"{archive}:{named}: {problem}")
    code, err = cli(capsys, "build", *args, "--no-verify", "--out", tmp_path / "hub")
    assert code == 0, err
    assert f"warning: {archive}:{named}: {problem}" in err
    expected = staged_ids(good[source], config)
    expected[image_id] -= 1
    assert staged_ids(tmp_path / "hub" / good[source].name) == +expected  # everything but the unpaired image


def test_the_known_green_orphan_mask_stays_a_warning_with_verification_on(tmp_path, upstream, good, capsys, monkeypatch):
    trust(monkeypatch, upstream)
    monkeypatch.setattr(REGISTRY["fluocells"], "OFFICIAL_COUNTS", {})  # the fakes are smaller than the real archives
    code, err = cli(capsys, "build", "fluocells", "--config", "v2_green", "--data-dir", upstream, "--out", tmp_path)
    assert code == 0, err
    assert "warning: green.zip:green/trainval/ground_truths/masks/128.png: mask without image (a known defect" in err
    assert "green/trainval/ground_truths/masks/128.png" in _zip_members(upstream / "green.zip")
    assert staged_ids(tmp_path / "fluocells") == staged_ids(good["fluocells"], "v2_green")
    assert "green_128" not in staged_ids(tmp_path / "fluocells")


@pytest.mark.parametrize("source, key, config", [("aitslab-bioimaging1", "train", []), ("fluocells", "red", ["--config", "v2_red"])])
def test_a_checksum_mismatch_shows_both_hashes_and_no_verify_makes_it_a_warning(tmp_path, upstream, good, capsys, source,
                                                                                 key, config):
    archive = REGISTRY[source].ARCHIVES[key]
    mismatch = f"{archive.name}: checksum mismatch: expected sha256 {archive.sha256}, got {sha256_of(upstream / archive.name)}"
    assert_refused(capsys, tmp_path, [source, "--data-dir", upstream, *config], good[source], mismatch)
    code, err = cli(capsys, "build", source, "--data-dir", upstream, "--no-verify", *config, "--out", tmp_path / "hub")
    assert code == 0 and f"warning: {mismatch}" in err
    assert (tmp_path / "hub" / good[source].name / "README.md").is_file()


# --- determinism and interrupted builds ------------------------------------------------------------------

def build_command(*args):
    return [sys.executable, str(ROOT / "upload.py"), "build", *map(str, args)]


def test_another_process_builds_byte_identical_shards_cards_and_previews_for_every_source(tmp_path, upstream, good):
    # another interpreter with another hash seed: no set or dict order may leak into the bytes
    result = subprocess.run(build_command("--all", "--data-dir", upstream, "--out", tmp_path, "--no-verify"),
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "8"})
    assert result.returncode == 0, result.stderr
    for source, staged in good.items():
        assert tree_bytes(tmp_path / staged.name) == tree_bytes(staged), source
    assert sorted(os.listdir(tmp_path)) == sorted(staged.name for staged in good.values())


def _start_build(out: Path, upstream: Path, repo: str) -> tuple[subprocess.Popen, float]:
    """Start a build; returns the process and when its scratch folder appeared (the build proper began)."""
    process = subprocess.Popen(build_command("aitslab-bioimaging1", "--data-dir", upstream, "--out", out, "--no-verify"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob(f".{repo}.partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return process, time.monotonic()


def test_a_build_killed_at_random_points_leaves_no_half_repo_and_a_re_run_is_byte_identical(tmp_path, upstream, good,
                                                                                             capsys):
    reference = tree_bytes(good["aitslab-bioimaging1"])
    repo = good["aitslab-bioimaging1"].name
    out = tmp_path / "hub"
    process, started = _start_build(tmp_path / "timing", upstream, repo)
    assert process.wait(timeout=120) == 0
    duration = time.monotonic() - started
    interrupted = 0
    for delay in sorted(random.Random(8).uniform(0, 0.8 * duration) for _ in range(3)):
        process, _ = _start_build(out, upstream, repo)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        interrupted += bool(list(out.glob(".*")))
        assert not (out / repo).exists() or tree_bytes(out / repo) == reference  # never a half repo
        code, err = cli(capsys, "build", "aitslab-bioimaging1", "--data-dir", upstream, "--out", out, "--no-verify")
        assert code == 0, err
        assert tree_bytes(out / repo) == reference
        assert os.listdir(out) == [repo]  # no .partial or .previous folder left behind
    assert interrupted, f"no kill landed inside the build ({duration:.2f} s); the test proved nothing"
