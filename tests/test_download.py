"""The default download path: a loopback HTTP server serves the fake zips; the builder downloads and verifies."""

import dataclasses
import functools
import http.server
import threading
from pathlib import Path

import pytest
from datasets import load_dataset

from builders import staging
from builders.aitslab_bioimaging1 import ARCHIVES, AitslabBioimaging1
from builders.archives import sha256_of
from builders.base import OfficialCounts
from builders.errors import BuildError


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = []  # paths of GET requests, for tests that count downloads

    def do_GET(self):
        QuietHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(aitslab_fake):
    """(base URL, manifest): an HTTP server on 127.0.0.1 serving the fake Aitslab zips."""
    folder, manifest = aitslab_fake
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", manifest
    server.shutdown()
    server.server_close()


def point_at(monkeypatch, base, manifest, checksums):
    archives = {
        split: dataclasses.replace(a, url=base + a.name, sha256=checksums(manifest["archives"][split]))
        for split, a in ARCHIVES.items()
    }
    monkeypatch.setattr(AitslabBioimaging1, "ARCHIVES", archives)
    counts = {split: (len(objects), sum(objects.values())) for split, objects in manifest["objects"].items()}
    monkeypatch.setattr(AitslabBioimaging1, "OFFICIAL_COUNTS", {"default": OfficialCounts(counts)})
    return archives


def downloaded_files():
    return [p for p in Path(staging.downloads_cache()).rglob("*")
            if p.is_file() and not p.name.endswith((".json", ".lock"))]


def test_download_verify_and_build(tmp_path, served, monkeypatch):
    base, manifest = served
    point_at(monkeypatch, base, manifest, sha256_of)
    staged = staging.build(AitslabBioimaging1, out=tmp_path / "hub", verify=True)  # every check on
    for split, objects in manifest["objects"].items():
        ds = load_dataset(str(staged), split=split)
        assert sorted(ds["image_id"]) == sorted(objects)
        assert sum(len(o) for o in ds["objects"]) == sum(objects.values())


def test_a_rebuild_reuses_the_downloaded_archives(tmp_path, served, monkeypatch):
    base, manifest = served
    point_at(monkeypatch, base, manifest, sha256_of)
    staging.build(AitslabBioimaging1, out=tmp_path / "hub", verify=True)
    QuietHandler.requests.clear()
    staging.build(AitslabBioimaging1, out=tmp_path / "hub", verify=True)
    assert not [r for r in QuietHandler.requests if r.endswith(".zip")]


def test_wrong_checksum_names_the_file_and_both_hashes_and_stages_nothing(tmp_path, served, monkeypatch):
    base, manifest = served
    wrong = "0" * 64
    point_at(monkeypatch, base, manifest, lambda path: wrong if path.name == "development_nuclei.zip" else sha256_of(path))
    actual = sha256_of(manifest["archives"]["validation"])
    before = set(downloaded_files())
    with pytest.raises(BuildError) as info:
        staging.build(AitslabBioimaging1, out=tmp_path / "hub", verify=True)
    message = str(info.value)
    assert "development_nuclei.zip" in message and wrong in message and actual in message
    assert not (tmp_path / "hub" / "aitslab-bioimaging1").exists()
    assert not list((tmp_path / "hub").glob(".*"))
    assert all(sha256_of(p) != actual for p in set(downloaded_files()) - before)  # the bad download is not kept


def test_unreachable_url_says_how_to_download_by_hand(tmp_path, served, monkeypatch):
    base, manifest = served
    point_at(monkeypatch, base + "missing/", manifest, sha256_of)
    with pytest.raises(BuildError, match=r"training_nuclei.zip: download from http://127.0.0.1:\d+/.*failed.*--data-dir"):
        staging.build(AitslabBioimaging1, out=tmp_path / "hub", verify=True)
    assert not (tmp_path / "hub" / "aitslab-bioimaging1").exists()
