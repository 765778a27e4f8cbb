"""Aitslab-bioimaging1 built from fake archives in the exact Zenodo layout."""

import dataclasses
import io
import logging
import os
import shutil
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from builders import staging
from builders.aitslab_bioimaging1 import ARCHIVES, AitslabBioimaging1, decode_annotation
from builders.archives import sha256_of
from builders.errors import BuildError, find_build_error
from builders.fakes import aitslab_bioimaging1 as fake
from builders.fakes import png_bytes, write_zip

SPLITS = ("train", "validation", "test")


def build(upstream, out, **kwargs):
    return staging.build(AitslabBioimaging1, out=out, data_dir=upstream, **{"verify": False, **kwargs})


def tree_bytes(folder):
    return {
        os.path.relpath(os.path.join(root, f), folder): open(os.path.join(root, f), "rb").read()
        for root, _, files in os.walk(folder) for f in files
    }


def check_split(staged, split, manifest):
    """Rows, features, masks, objects, previews and image bytes of one split against the archive."""
    ds = load_dataset(str(staged), split=split)
    raw = ds.cast_column("image", Image(decode=False))
    assert ds.features == AitslabBioimaging1.features()
    expected = manifest["objects"][split]
    assert ds["image_id"] == sorted(expected)
    archive = zipfile.ZipFile(manifest["archives"][split])
    for i, row in enumerate(ds):
        stem = row["image_id"]
        member = next(n for n in archive.namelist() if n.endswith(f"/{stem}.png") and "/annotations/" not in n)
        assert raw[i]["image"]["bytes"] == archive.read(member)  # bytes as published
        mask = np.asarray(row["instance_mask"])
        assert row["instance_mask"].mode == "I;16" and mask.dtype == np.uint16
        assert mask.shape == (row["image"].height, row["image"].width)
        assert len(row["objects"]) == expected[stem] == mask.max()
        assert sorted(np.unique(mask)[1:].tolist()) == list(range(1, len(row["objects"]) + 1))
        annotation = f"{member.split('/')[0]}/annotations/{stem}_objects.png"
        colours = np.asarray(PILImage.open(io.BytesIO(archive.read(annotation))))
        for k, obj in enumerate(row["objects"], start=1):
            assert obj["instance_id"] == k
            ys, xs = np.nonzero(mask == k)
            assert obj["area"] == len(xs)
            assert obj["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert len(np.unique(colours[ys, xs].reshape(-1, 3), axis=0)) == 1  # one colour per id
            assert len(obj["polygons"]) >= 1 and all(len(ring) >= 6 for ring in obj["polygons"])
        assert row["preview"].mode == "RGB" and row["preview"].format == "JPEG"
        assert row["preview"].width <= row["image"].width
        assert row["plate"] == stem[:22] and row["well"] == stem.split("_")[2][:3]
    return ds


@pytest.mark.parametrize("layout", ["images", "images/png"])
def test_fake_archives_build_and_load(tmp_path, layout):
    manifest = fake.write_archives(tmp_path / "upstream", layout=layout)
    if layout == "images/png":
        assert any(n.endswith(".C01") for n in zipfile.ZipFile(manifest["archives"]["train"]).namelist())
    staged = build(tmp_path / "upstream", tmp_path / "hub")
    assert staged == (tmp_path / "hub" / "aitslab-bioimaging1").resolve()
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert files == ["README.md", "assets/preview-default.jpg"] + [f"data/{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
    assert not list((tmp_path / "hub").glob(".*"))  # no scratch left behind
    seen = set()
    for split in SPLITS:
        ids = set(check_split(staged, split, manifest)["image_id"])
        assert not ids & seen  # no example in two splits
        seen |= ids
    empty = load_dataset(str(staged), split="test")[0]  # the fake's first test image has no objects
    assert empty["objects"] == [] and np.asarray(empty["instance_mask"]).max() == 0


def test_streaming_yields_the_same_first_rows(aitslab_staged):
    for split in SPLITS:
        loaded = load_dataset(str(aitslab_staged), split=split)
        stream = load_dataset(str(aitslab_staged), split=split, streaming=True)
        for a, b in zip(loaded, stream):
            assert a["image_id"] == b["image_id"] and a["objects"] == b["objects"]
            assert np.array_equal(np.asarray(a["instance_mask"]), np.asarray(b["instance_mask"]))


def test_pairing_is_by_stem_not_by_sort_order(tmp_path):
    # Sorted, images give [X, X_b] but annotations give [X_b_objects, X_objects]: order pairing would swap them.
    stems = {"train": ["MFGTMPcx7_1_A01f00d0", "MFGTMPcx7_1_A01f00d0_b"], "validation": ["MFGTMPcx7_2_A01f00d0"],
             "test": ["MFGTMPcx7_3_A01f00d0"]}
    manifest = fake.write_archives(tmp_path / "up", stems=stems, empty_image=False, seed=5)
    counts = manifest["objects"]["train"]
    assert counts["MFGTMPcx7_1_A01f00d0"] != counts["MFGTMPcx7_1_A01f00d0_b"]
    ds = load_dataset(str(build(tmp_path / "up", tmp_path / "hub")), split="train")
    assert {r["image_id"]: len(r["objects"]) for r in ds} == counts


def test_extracted_trees_give_byte_identical_shards(tmp_path, aitslab_fake, aitslab_staged):
    upstream, manifest = aitslab_fake
    for path in manifest["archives"].values():
        zipfile.ZipFile(path).extractall(tmp_path / "extracted" / "nested")  # a top folder deeper down
    staged = build(tmp_path / "extracted", tmp_path / "hub")
    ours, reference = tree_bytes(staged), tree_bytes(aitslab_staged)
    card = ours.pop("README.md").decode()
    reference.pop("README.md")
    assert ours == reference  # shards and preview figure
    assert "| `training_nuclei.zip` |" in card and "| extracted folder (not hashed) |" in card


def test_two_builds_are_byte_identical_and_num_proc_gives_the_same_rows(tmp_path, aitslab_fake, aitslab_staged):
    upstream, _ = aitslab_fake
    again = build(upstream, tmp_path / "again")
    assert tree_bytes(again) == tree_bytes(aitslab_staged)
    parallel = build(upstream, tmp_path / "parallel", num_proc=2)
    for split in SPLITS:
        a = load_dataset(str(parallel), split=split).cast_column("image", Image(decode=False))
        b = load_dataset(str(aitslab_staged), split=split).cast_column("image", Image(decode=False))
        assert sorted(a["image_id"]) == b["image_id"]
        assert sorted(r["bytes"] for r in a["image"]) == sorted(r["bytes"] for r in b["image"])
    # the card's preview grid shows the same first rows however the splits were sharded
    assert len(list((parallel / "data").glob("train-*"))) == 2
    figure = "assets/preview-default.jpg"
    assert (parallel / figure).read_bytes() == (aitslab_staged / figure).read_bytes()


def trust(monkeypatch, manifest):
    """Record the fake archives' own SHA-256 as the published ones, so verification reaches the data."""
    monkeypatch.setattr(AitslabBioimaging1, "ARCHIVES", {
        split: dataclasses.replace(a, sha256=sha256_of(manifest["archives"][split])) for split, a in ARCHIVES.items()})


def _archive_with(tmp_path, extra_members=None, drop=None):
    """The default fake archives, with the training zip rewritten."""
    manifest = fake.write_archives(tmp_path / "up")
    train = manifest["archives"]["train"]
    members = {n: zipfile.ZipFile(train).read(n) for n in zipfile.ZipFile(train).namelist() if not n.endswith("/")}
    members = {n: b for n, b in members.items() if not (drop and drop in n)}
    members.update(extra_members or {})
    os.remove(train)
    write_zip(train, members)
    return manifest


def test_an_image_without_annotation_is_an_error_or_a_warning_with_no_verify(tmp_path, caplog, monkeypatch):
    manifest = _archive_with(tmp_path, drop="f01d0_objects")
    trust(monkeypatch, manifest)
    stem = sorted(manifest["objects"]["train"])[1]
    with pytest.raises(BuildError, match=rf"training_nuclei.zip:training_nuclei/images/{stem}.png: image without annotation"):
        build(tmp_path / "up", tmp_path / "hub", verify=True)
    assert not (tmp_path / "hub" / "aitslab-bioimaging1").exists() and not list((tmp_path / "hub").glob(".*"))
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = build(tmp_path / "up", tmp_path / "hub", verify=False)
    assert "image without annotation" in caplog.text
    assert stem not in load_dataset(str(staged), split="train")["image_id"]


def test_an_annotation_without_image_is_an_error(tmp_path, monkeypatch):
    orphan = {"training_nuclei/annotations/MFGTMPcx7_9_Z99f01d0_objects.png": png_bytes(np.zeros((8, 8, 3), np.uint8))}
    trust(monkeypatch, _archive_with(tmp_path, extra_members=orphan))
    with pytest.raises(BuildError, match=r"MFGTMPcx7_9_Z99f01d0_objects.png: annotation without image"):
        build(tmp_path / "up", tmp_path / "hub", verify=True)


def test_annotation_of_another_size_than_its_image_is_an_error(tmp_path):
    manifest = fake.write_archives(tmp_path / "up0")
    stem = sorted(manifest["objects"]["train"])[0]
    _archive_with(tmp_path, extra_members={f"training_nuclei/annotations/{stem}_objects.png": png_bytes(np.zeros((8, 9, 3), np.uint8))})
    with pytest.raises(Exception) as info:
        build(tmp_path / "up", tmp_path / "hub")
    assert "annotation is 9x8 but its image is 128x128" in str(find_build_error(info.value))


def test_a_failed_rebuild_keeps_the_previous_staged_repo(tmp_path, aitslab_fake):
    upstream, _ = aitslab_fake
    staged = build(upstream, tmp_path / "hub")
    before = tree_bytes(staged)
    stem = sorted(fake.write_archives(tmp_path / "up0")["objects"]["train"])[1]
    truncated = zipfile.ZipFile(aitslab_fake[1]["archives"]["train"]).read(f"training_nuclei/images/{stem}.png")[:200]
    _archive_with(tmp_path, extra_members={f"training_nuclei/images/{stem}.png": truncated})
    with pytest.raises(Exception) as info:
        build(tmp_path / "up", tmp_path / "hub", verify=False)
    assert find_build_error(info.value) is not None
    assert f"training_nuclei.zip:training_nuclei/images/{stem}.png: not a readable image" in str(find_build_error(info.value))
    assert tree_bytes(staged) == before and not list((tmp_path / "hub").glob(".*"))


def test_official_counts_are_verified(tmp_path, aitslab_fake, monkeypatch):
    upstream, manifest = aitslab_fake
    with pytest.raises(BuildError, match="training_nuclei.zip: checksum mismatch"):
        staging.build(AitslabBioimaging1, out=tmp_path / "hub", data_dir=upstream, verify=True)
    trust(monkeypatch, manifest)  # the archives pass now, and the official image counts fail
    with pytest.raises(BuildError, match="default/train: 3 images, the official count is 30"):
        staging.build(AitslabBioimaging1, out=tmp_path / "hub", data_dir=upstream, verify=True)
    assert not (tmp_path / "hub" / "aitslab-bioimaging1").exists()
    assert AitslabBioimaging1.OFFICIAL_COUNTS["default"].splits == {
        "train": (30, 1283), "validation": (10, 375), "test": (10, 438)}


def test_row_groups_follow_the_byte_budget(tmp_path, aitslab_fake):
    class HeavyRows(AitslabBioimaging1):
        BYTES_PER_EXAMPLE = 60_000_000  # two rows would exceed the 100 MB budget

    assert HeavyRows.DEFAULT_WRITER_BATCH_SIZE == 1 and AitslabBioimaging1.DEFAULT_WRITER_BATCH_SIZE == 50
    staged = staging.build(HeavyRows, out=tmp_path / "hub", data_dir=aitslab_fake[0], verify=False)
    train = pq.ParquetFile(staged / "data" / "train-00000-of-00001.parquet").metadata
    assert train.num_row_groups == train.num_rows == 3
    assert all(train.row_group(i).column(0).has_offset_index for i in range(3))  # page index kept


def test_files_in_the_working_directory_never_replace_generated_bytes(tmp_path, aitslab_fake, aitslab_staged, monkeypatch):
    # `datasets` would embed ./<path> instead of the given bytes if such a file existed in the working directory.
    upstream, manifest = aitslab_fake
    monkeypatch.chdir(tmp_path)
    for stem in manifest["objects"]["train"]:
        for name in (f"{stem}_mask.png", f"{stem}_preview.jpg", f"{stem}.png"):
            (tmp_path / name).write_bytes(png_bytes(np.full((4, 4), 7, np.uint8)))
    staged = staging.build(AitslabBioimaging1, out="hub", data_dir=os.path.relpath(upstream), verify=False)
    assert tree_bytes(staged) == tree_bytes(aitslab_staged)


def test_macos_metadata_entries_are_ignored(tmp_path, monkeypatch):
    manifest = fake.write_archives(tmp_path / "up0")
    stem = sorted(manifest["objects"]["train"])[0]
    junk = {f"__MACOSX/training_nuclei/images/._{stem}.png": b"\x00\x05\x16\x07", "training_nuclei/.DS_Store": b"x",
            f"training_nuclei/images/._{stem}.png": b"\x00\x05\x16\x07"}
    trust(monkeypatch, _archive_with(tmp_path, extra_members=junk))
    monkeypatch.setattr(AitslabBioimaging1, "OFFICIAL_COUNTS", {})
    staged = staging.build(AitslabBioimaging1, out=tmp_path / "hub", data_dir=tmp_path / "up", verify=True)
    assert load_dataset(str(staged), split="train")["image_id"] == sorted(manifest["objects"]["train"])


def png_rgb16(array):
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[r].astype(">u2").tobytes() for r in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_annotation_encodings_that_would_lose_or_invent_objects_are_refused():
    rgb16 = np.zeros((4, 4, 3), np.uint16)
    rgb16[0, 0], rgb16[0, 1], rgb16[0, 2] = (0x0100, 0, 0), (0x0101, 0, 0), (0x0001, 0, 0)  # equal in 8 bits
    with pytest.raises(BuildError, match=r"a_objects.png: 16-bit PNG"):
        decode_annotation(png_rgb16(rgb16), "a_objects.png")
    translucent = np.zeros((4, 4, 4), np.uint8)
    translucent[..., :3] = 200  # a non-black background made transparent
    translucent[1, 1] = (9, 9, 9, 255)
    with pytest.raises(BuildError, match="b_objects.png: annotation has transparent pixels"):
        decode_annotation(png_bytes(translucent), "b_objects.png")


def test_opaque_rgba_and_palette_annotations_decode_like_rgb(tmp_path, aitslab_fake, aitslab_staged):
    upstream, manifest = aitslab_fake
    archive = zipfile.ZipFile(manifest["archives"]["train"])
    members = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    stems = sorted(manifest["objects"]["train"])
    for stem, mode in zip(stems, ("RGBA", "P")):
        name = f"training_nuclei/annotations/{stem}_objects.png"
        rgb = PILImage.open(io.BytesIO(members[name]))
        converted = rgb.convert("RGBA") if mode == "RGBA" else rgb.quantize(colors=256, method=PILImage.Quantize.MAXCOVERAGE)
        assert np.array_equal(np.asarray(converted.convert("RGB")), np.asarray(rgb))  # lossless re-encoding
        buffer = io.BytesIO()
        converted.save(buffer, format="PNG")
        members[name] = buffer.getvalue()
    for split in ("validation", "test"):
        zipfile.ZipFile(manifest["archives"][split]).extractall(tmp_path / "up")
    write_zip(tmp_path / "up" / "training_nuclei.zip", members)
    staged = build(tmp_path / "up", tmp_path / "hub")
    ours = load_dataset(str(staged), split="train").cast_column("instance_mask", Image(decode=False))
    reference = load_dataset(str(aitslab_staged), split="train").cast_column("instance_mask", Image(decode=False))
    assert ours["instance_mask"] == reference["instance_mask"] and ours["objects"] == reference["objects"]


def test_names_outside_the_cellomics_pattern_warn_and_leave_fields_empty(tmp_path, caplog):
    stems = {"train": ["weird-name"], "validation": ["MFGTMPcx7_2_A01f00d0"], "test": ["MFGTMPcx7_3_A01f00d0"]}
    fake.write_archives(tmp_path / "up", stems=stems, empty_image=False)
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = build(tmp_path / "up", tmp_path / "hub")
    assert "images/weird-name.png: name does not follow the Cellomics pattern" in caplog.text
    row = load_dataset(str(staged), split="train")[0]
    assert (row["plate"], row["well"], row["field"]) == (None, None, None)


def test_a_build_killed_between_the_two_renames_recovers_the_previous_repo(tmp_path, aitslab_fake, aitslab_staged):
    out = tmp_path / "hub"
    out.mkdir()
    shutil.copytree(aitslab_staged, out / ".aitslab-bioimaging1.previous")  # the state such a kill leaves
    with pytest.raises(BuildError):
        build(tmp_path / "empty-data-dir-that-does-not-exist", out)
    assert tree_bytes(out / "aitslab-bioimaging1") == tree_bytes(aitslab_staged)
    assert not list(out.glob(".*"))


def test_a_scratch_folder_of_a_killed_build_is_removed_but_not_one_of_a_running_build(tmp_path, aitslab_fake):
    import fcntl

    out = tmp_path / "hub"
    killed, running = out / ".aitslab-bioimaging1.partial-killed", out / ".aitslab-bioimaging1.partial-running"
    for folder in (killed, running):
        (folder / "repo").mkdir(parents=True)
        (folder / ".lock").touch()
    with open(running / ".lock") as handle:  # another build holds its lock while it runs
        fcntl.flock(handle, fcntl.LOCK_EX)
        build(aitslab_fake[0], out)
        assert running.exists() and not killed.exists()
    assert (out / "aitslab-bioimaging1" / "README.md").exists()
    assert sorted(out.glob(".*")) == [running]  # the build's own scratch folder is gone too
