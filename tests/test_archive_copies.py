"""Which archive copy a build used: printed for every archive; identical copies under two archives' names
and several different files of one name are errors in every mode, naming the files."""

import shutil
from types import SimpleNamespace

import pytest
from conftest import cli_build

from builders.archives import Archive, locate
from builders.errors import BuildError


def _copy(source, target, names: dict):
    """`target` holding the files of `source` as {name in source: name in target}."""
    target.mkdir()
    for name, as_name in names.items():
        shutil.copy(source / name, target / as_name)
    return target


def test_every_archive_used_is_printed_with_its_path_and_sha256(tmp_path, aitslab_fake):
    result = cli_build("aitslab-bioimaging1", "--no-verify", "--quiet", "--data-dir", aitslab_fake[0], "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("training_nuclei.zip", "development_nuclei.zip", "test_nuclei.zip"):
        assert f"\n{name}: using {aitslab_fake[0] / name} (sha256 " in result.stderr


def test_a_test_archive_copied_in_as_the_training_archive_is_an_error_even_with_no_verify(tmp_path, aitslab_fake):
    upstream = _copy(aitslab_fake[0], tmp_path / "up", {"test_nuclei.zip": "test_nuclei.zip",
                                                        "development_nuclei.zip": "development_nuclei.zip"})
    shutil.copy(upstream / "test_nuclei.zip", upstream / "training_nuclei.zip")
    result = cli_build("aitslab-bioimaging1", "--no-verify", "--data-dir", upstream, "--out", tmp_path / "hub")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: {upstream / 'training_nuclei.zip'}: identical to {upstream / 'test_nuclei.zip'}, but "
            "training_nuclei.zip and test_nuclei.zip are different archives") in result.stderr
    assert not any((tmp_path / "hub").iterdir())


def test_one_release_copied_in_as_the_other_config_is_an_error(tmp_path, nsd_fake):
    upstream = _copy(nsd_fake[0], tmp_path / "up", {"NucleusSegData.zip": "NucleusSegData.zip"})
    shutil.copy(upstream / "NucleusSegData.zip", upstream / "NucleusSegDataExtended.zip")
    result = cli_build("nucleussegdata", "--no-verify", "--data-dir", upstream, "--out", tmp_path / "hub")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: {upstream / 'NucleusSegDataExtended.zip'}: identical to {upstream / 'NucleusSegData.zip'}"
            in result.stderr)
    assert not any((tmp_path / "hub").iterdir())


def test_two_different_files_of_one_archive_name_are_an_error_and_identical_ones_are_not(tmp_path, aitslab_fake):
    upstream = _copy(aitslab_fake[0], tmp_path / "up", {n: n for n in ("training_nuclei.zip", "development_nuclei.zip",
                                                                      "test_nuclei.zip")})
    (upstream / "old").mkdir()
    shutil.copy(upstream / "training_nuclei.zip", upstream / "old" / "training_nuclei.zip")
    same = cli_build("aitslab-bioimaging1", "--no-verify", "--data-dir", upstream, "--out", tmp_path / "hub")
    assert same.returncode == 0, same.stderr
    assert f"training_nuclei.zip: using {upstream / 'training_nuclei.zip'} (sha256" in same.stderr  # the shallowest
    (upstream / "old" / "training_nuclei.zip").write_bytes((upstream / "development_nuclei.zip").read_bytes())
    different = cli_build("aitslab-bioimaging1", "--no-verify", "--data-dir", upstream, "--out", tmp_path / "hub2")
    assert different.returncode == 1 and "Traceback" not in different.stderr
    assert (f"error: --data-dir {upstream}: 2 different files named training_nuclei.zip "
            f"({upstream / 'training_nuclei.zip'}, {upstream / 'old' / 'training_nuclei.zip'}); keep the one to build from"
            in different.stderr), different.stderr


def test_two_different_extracted_folders_of_one_archive_are_an_error(tmp_path):
    archive = Archive("training_nuclei.zip", "", None, "training_nuclei")
    for copy in ("a", "b"):
        (tmp_path / copy / "training_nuclei" / "images").mkdir(parents=True)
        (tmp_path / copy / "training_nuclei" / "images" / "x.png").write_bytes(b"same")
    manager = SimpleNamespace(manual_dir=str(tmp_path))
    assert locate(manager, archive).path == str(tmp_path / "a" / "training_nuclei")  # identical copies: the first
    (tmp_path / "b" / "training_nuclei" / "images" / "y.png").write_bytes(b"more")
    with pytest.raises(BuildError, match=r"2 different folders named training_nuclei \(.*a/training_nuclei, "
                                         r".*b/training_nuclei\); keep the one to build from"):
        locate(manager, archive)
