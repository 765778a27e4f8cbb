"""Shared fixtures: an isolated Hugging Face cache, the real samples, fake Aitslab archives and builds."""

import os
import subprocess
import sys
import tempfile

# Isolate every cache before `datasets` / `huggingface_hub` are imported (they read these at import).
_CACHE = tempfile.mkdtemp(prefix="mhd-tests-hf-")
os.environ["HF_HOME"] = _CACHE
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "datasets")
os.environ.pop("HF_HUB_OFFLINE", None)  # it would block the loopback Hub too
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_TOKEN", None)  # tests that push set their own

# A loopback Hub (tests/hub_server.py): the libraries read the endpoint at import, so it starts first.
from hub_server import HubServer  # noqa: E402

HUB = HubServer().start()
os.environ["HF_ENDPOINT"] = HUB.url
os.environ["HF_HUB_DISABLE_XET"] = "1"  # classic LFS uploads, which the loopback server speaks

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("MICROSCOPY_SAMPLES", ROOT.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real sample files not found at {SAMPLES} (set MICROSCOPY_SAMPLES)")
    return SAMPLES


def _fake(tmp_path_factory, source: str):
    """(folder, manifest) of the default fake archives of `source` (`builders/fakes/<source>.py`)."""
    import importlib

    folder = tmp_path_factory.mktemp(f"{source}-upstream")
    return folder, importlib.import_module(f"builders.fakes.{source.replace('-', '_')}").write_archives(folder)


def _staged(tmp_path_factory, source: str, upstream, verify: bool):
    from builders import REGISTRY, staging

    return staging.build(REGISTRY[source], out=tmp_path_factory.mktemp(f"{source}-hub"), data_dir=upstream, verify=verify)


@pytest.fixture(scope="session")
def aitslab_fake(tmp_path_factory):
    """Fake Aitslab zips (images/ layout) and the manifest of what they hold."""
    return _fake(tmp_path_factory, "aitslab-bioimaging1")


@pytest.fixture(scope="session")
def aitslab_staged(tmp_path_factory, aitslab_fake):
    """The staged repo built from `aitslab_fake`."""
    return _staged(tmp_path_factory, "aitslab-bioimaging1", aitslab_fake[0], verify=False)


@pytest.fixture(scope="session")
def nsd_fake(tmp_path_factory):
    """Fake NucleusSegData lab zips (both versions, published counts) and their manifest."""
    return _fake(tmp_path_factory, "nucleussegdata")


@pytest.fixture(scope="session")
def nsd_staged(tmp_path_factory, nsd_fake):
    """The staged repo built from `nsd_fake`, with the official counts verified."""
    return _staged(tmp_path_factory, "nucleussegdata", nsd_fake[0], verify=True)


@pytest.fixture(scope="session")
def nucls_fake(tmp_path_factory):
    """The fake NuCLS zip holding every listed quirk, and its manifest."""
    return _fake(tmp_path_factory, "nucls")


@pytest.fixture(scope="session")
def nucls_staged(tmp_path_factory, nucls_fake):
    """The staged repo built from `nucls_fake` (its counts are not the official ones)."""
    return _staged(tmp_path_factory, "nucls", nucls_fake[0], verify=False)


@pytest.fixture(scope="session")
def fluocells_fake(tmp_path_factory):
    """Fake fluocells v1 and v2 zips with the published counts and every quirk, and their manifest."""
    return _fake(tmp_path_factory, "fluocells")


@pytest.fixture(scope="session")
def fluocells_staged(tmp_path_factory, fluocells_fake):
    """All four configs built from `fluocells_fake` with verification on: the fakes' SHA-256 stand in for the
    published ones (v1 publishes none), so the checksums and the official counts are checked."""
    import dataclasses

    from builders import REGISTRY
    from builders.archives import sha256_of

    cls = REGISTRY["fluocells"]
    manifest = fluocells_fake[1]
    archives = {key: dataclasses.replace(a, sha256=a.sha256 and sha256_of(manifest[key]["archive"]))
                for key, a in cls.ARCHIVES.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, "ARCHIVES", archives)
        return _staged(tmp_path_factory, "fluocells", fluocells_fake[0], verify=True)


def cli_build(*args) -> subprocess.CompletedProcess:
    """`python upload.py build ARGS` in a child process, as a user runs it."""
    return subprocess.run([sys.executable, str(ROOT / "upload.py"), "build", *map(str, args)], capture_output=True,
                          text=True, timeout=900)


def built(result, out: Path, repo: str) -> Path:
    assert result.returncode == 0, result.stderr
    return out / repo


@pytest.fixture(scope="session")
def aitslab_real(samples, tmp_path_factory):
    """All 50 real Aitslab images and annotations as the three Zenodo trees (`<split>_nuclei/images`,
    `.../annotations/<stem>_objects.png`), split by the kreshuklab lists: (upstream folder, stems per split)."""
    from builders.fakes.real_samples import write_aitslab

    upstream = tmp_path_factory.mktemp("aitslab-real")
    stems = write_aitslab(samples, upstream)
    return upstream, stems


@pytest.fixture(scope="session")
def aitslab_real_staged(aitslab_real, tmp_path_factory):
    """The whole real Aitslab dataset built by `upload.py build` with verification on (extracted trees
    carry no archive checksum; the official image and object counts are checked)."""
    out = tmp_path_factory.mktemp("aitslab-real-hub")
    return built(cli_build("aitslab-bioimaging1", "--data-dir", aitslab_real[0], "--out", out), out, "aitslab-bioimaging1")


@pytest.fixture(scope="session")
def nsd_real(samples, tmp_path_factory):
    """The 37 real pairs of the original release as the lab's extracted `NucleusSegData/` tree:
    (upstream folder, {image stem: author number})."""
    from builders.fakes.real_samples import write_nsd

    upstream = tmp_path_factory.mktemp("nsd-real")
    numbers = write_nsd(samples, upstream)
    return upstream, numbers


@pytest.fixture(scope="session")
def nsd_real_staged(nsd_real, tmp_path_factory):
    """NucleusSegData `original` built from the 37 real pairs by `upload.py build`, verification on."""
    out = tmp_path_factory.mktemp("nsd-real-hub")
    result = cli_build("nucleussegdata", "--config", "original", "--data-dir", nsd_real[0], "--out", out)
    return built(result, out, "nucleussegdata")


@pytest.fixture
def hub(monkeypatch):
    """The loopback Hub, faults reset, with a dummy token in HF_TOKEN."""
    HUB.reset_faults()
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_0123456789")
    yield HUB
    HUB.reset_faults()
