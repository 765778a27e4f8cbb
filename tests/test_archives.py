"""The shared archives module on its own: reading zips and trees safely, locating and verifying archives."""

import logging
import stat
import zipfile
from types import SimpleNamespace

import pytest

from builders.aitslab_bioimaging1 import find_pairs
from builders.archives import Archive, Tree, locate, sha256_of
from builders.errors import BuildError, verification
from builders.fakes import write_zip

ARCHIVE = Archive("things.zip", "https://example.org/things.zip", None, "things", manual="https://example.org")


def zip_with(path, name, data=b"x", mode=0o644):
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize("name", ["../x", "images/../../x", "/etc/x", "C:/x", "..\\x"])
def test_members_escaping_the_archive_are_refused(tmp_path, name):
    with pytest.raises(BuildError, match=r"evil.zip: member .* has a path outside the archive"):
        Tree(zip_with(tmp_path / "evil.zip", name))


def test_symlink_members_are_refused(tmp_path):
    with pytest.raises(BuildError, match="evil.zip: member 'images/a.png' is a symbolic link"):
        Tree(zip_with(tmp_path / "evil.zip", "images/a.png", b"/etc/passwd", mode=stat.S_IFLNK | 0o777))


def test_a_file_that_is_not_a_zip_is_named(tmp_path):
    (tmp_path / "things.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BuildError, match="things.zip: not a readable zip archive"):
        Tree(tmp_path / "things.zip")


def test_zip_and_extracted_tree_list_the_same_files_with_or_without_a_top_folder(tmp_path):
    members = {"images/png/a.png": b"1", "images/C01/a.C01": b"2", "annotations/a_objects.png": b"3"}
    for top in ("", "things/"):
        path = write_zip(tmp_path / top.strip("/") / "z.zip" if top else tmp_path / "z.zip", {top + k: v for k, v in members.items()})
        zipped = Tree(path)
        zipfile.ZipFile(path).extractall(tmp_path / f"x{len(top)}")
        extracted = Tree(tmp_path / f"x{len(top)}")
        assert zipped.files == extracted.files == sorted(top + k for k in members)
        assert [zipped.read(n) for n in zipped.files] == [extracted.read(n) for n in extracted.files]
        assert find_pairs(zipped) == [("a", f"{top}images/png/a.png", f"{top}annotations/a_objects.png")]


def test_locate_prefers_the_published_archive_then_the_extracted_folder(tmp_path, caplog):
    manager = SimpleNamespace(manual_dir=str(tmp_path))
    with pytest.raises(BuildError, match=r"neither things.zip nor an extracted things/ folder.*https://example.org"):
        locate(manager, ARCHIVE)
    (tmp_path / "deep" / "things").mkdir(parents=True)
    (tmp_path / "deep" / "things" / "f.txt").write_text("x")
    assert Tree(locate(manager, ARCHIVE).path).files == ["f.txt"]
    zip_path = write_zip(tmp_path / "a" / "things.zip", {"things/g.txt": b"y"})
    with caplog.at_level(logging.WARNING, logger="builders"):
        tree = locate(manager, ARCHIVE)
    assert tree.path == str(zip_path) and tree.files == ["things/g.txt"]
    assert f"no published SHA-256 to check against; sha256 of this copy is {sha256_of(zip_path)}" in caplog.text


def test_locate_verifies_a_published_checksum_or_warns_with_no_verify(tmp_path, caplog):
    zip_path = write_zip(tmp_path / "things.zip", {"g.txt": b"y"})
    manager = SimpleNamespace(manual_dir=str(tmp_path))
    wrong = Archive("things.zip", ARCHIVE.url, "f" * 64, "things")
    with pytest.raises(BuildError, match=rf"things.zip: checksum mismatch: expected sha256 f{{64}}, got {sha256_of(zip_path)}"):
        locate(manager, wrong)
    with caplog.at_level(logging.WARNING, logger="builders"), verification(False):
        assert locate(manager, wrong).files == ["g.txt"]
    assert "checksum mismatch" in caplog.text
    right = Archive("things.zip", ARCHIVE.url, sha256_of(zip_path), "things")
    assert locate(manager, right).files == ["g.txt"]
    assert zip_path.exists()  # a user's own file is never deleted, even on mismatch


def test_an_extracted_folder_is_recognised_by_its_contents_not_by_its_name(tmp_path):
    archive = Archive("things.zip", ARCHIVE.url, None, "things", holds=("images", "masks"))
    manager = SimpleNamespace(manual_dir=str(tmp_path))
    (tmp_path / "a" / "things").mkdir(parents=True)  # e.g. a staged output or another source's folder of that name
    (tmp_path / "a" / "things" / "README.md").write_text("not the archive")
    with pytest.raises(BuildError, match=r"neither things.zip nor an extracted things/ folder"):
        locate(manager, archive)
    for sub in ("images", "masks"):
        (tmp_path / "b" / "things" / "set" / sub).mkdir(parents=True)
        (tmp_path / "b" / "things" / "set" / sub / "1.png").write_bytes(b"x")
    assert locate(manager, archive).path == str(tmp_path / "b" / "things")  # the one holding images/ and masks/
