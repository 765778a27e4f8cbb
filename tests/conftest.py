"""Shared fixtures: an isolated Hugging Face cache, a loopback Hub, the real samples, and every registered source's
fake archives and staged repo (the generic tests take the `source` fixture, one registered source id at a time)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Isolate every cache before `datasets` / `huggingface_hub` are imported (they read these at import).
_CACHE = tempfile.mkdtemp(prefix="mhd-tests-hf-")
os.environ["HF_HOME"] = _CACHE
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "datasets")
os.environ.pop("HF_HUB_OFFLINE", None)  # it would block the loopback Hub too
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_TOKEN", None)  # tests that push set their own

# The sources defined in tests/sources/ join the registry (builders/__init__.py), here and in the CLI processes
# the tests start, so the generic tests run on them too.
os.environ["MICROSCOPY_HUB_SOURCES"] = os.pathsep.join(sorted(map(str, (Path(__file__).parent / "sources").glob("*.py"))))

# A loopback Hub (tests/hub_server.py): the libraries read the endpoint at import, so it starts first.
from hub_server import HubServer  # noqa: E402

HUB = HubServer().start()
os.environ["HF_ENDPOINT"] = HUB.url
os.environ["HF_HUB_DISABLE_XET"] = "1"  # classic LFS uploads, which the loopback server speaks

import pytest  # noqa: E402

from builders import REGISTRY  # noqa: E402

PUBLISHED = [source for source, cls in REGISTRY.items() if cls.__module__.startswith("builders.")]  # not tests/sources

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("MICROSCOPY_SAMPLES", ROOT.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real sample files not found at {SAMPLES} (set MICROSCOPY_SAMPLES)")
    return SAMPLES


def trust(patch, cls, folder) -> None:
    """Take the fake archives' own SHA-256 (in `folder`) as the published ones, so a verified build of them gets
    past the checksums (archives without a published SHA-256 stay without)."""
    import dataclasses

    from builders.archives import sha256_of

    patch.setattr(cls, "ARCHIVES", {key: dataclasses.replace(a, sha256=a.sha256 and sha256_of(Path(folder) / a.name))
                                    for key, a in cls.ARCHIVES.items()})


@pytest.fixture(scope="session")
def fake(tmp_path_factory):
    """source id -> (folder, manifest) of the source's default fake archives (its fakes module), written once."""
    from builders.fakes import write_fakes

    made = {}

    def get(source: str):
        if source not in made:
            folder = tmp_path_factory.mktemp(f"{source}-upstream")
            made[source] = folder, write_fakes(REGISTRY[source], folder)
        return made[source]
    return get


@pytest.fixture(scope="session")
def staged(tmp_path_factory, fake):
    """source id -> the repo staged from its default fakes, built once: with verification on where the fakes
    hold the official counts (their module's `OFFICIAL`; their own SHA-256 stand in for the published ones),
    else as --no-verify."""
    from builders import staging

    made = {}

    def get(source: str):
        if source not in made:
            cls, (folder, _) = REGISTRY[source], fake(source)
            verify = getattr(cls.fakes(), "OFFICIAL", False)
            with pytest.MonkeyPatch.context() as patch:
                if verify:
                    trust(patch, cls, folder)
                made[source] = staging.build(cls, out=tmp_path_factory.mktemp(f"{source}-hub"), data_dir=folder,
                                             verify=verify)
        return made[source]
    return get


@pytest.fixture(params=sorted(REGISTRY))
def source(request) -> str:
    """Each registered source id in turn (the generic tests): those of the builders package and of tests/sources."""
    return request.param


@pytest.fixture(scope="session")
def aitslab_fake(fake):
    """Fake Aitslab zips (images/ layout) and the manifest of what they hold."""
    return fake("aitslab-bioimaging1")


@pytest.fixture(scope="session")
def aitslab_staged(staged):
    """The staged repo built from `aitslab_fake` (--no-verify: the fakes are not the official counts)."""
    return staged("aitslab-bioimaging1")


@pytest.fixture(scope="session")
def nsd_fake(fake):
    """Fake NucleusSegData lab zips (both versions, published counts) and their manifest."""
    return fake("nucleussegdata")


@pytest.fixture(scope="session")
def nsd_staged(staged):
    """The staged repo built from `nsd_fake`, with the official counts verified."""
    return staged("nucleussegdata")


@pytest.fixture(scope="session")
def nucls_fake(fake):
    """The fake NuCLS zip holding every listed quirk, and its manifest."""
    return fake("nucls")


@pytest.fixture(scope="session")
def nucls_staged(staged):
    """The staged repo built from `nucls_fake` (its counts are not the official ones)."""
    return staged("nucls")


@pytest.fixture(scope="session")
def fluocells_fake(fake):
    """Fake fluocells v1 and v2 zips with the published counts and every quirk, and their manifest."""
    return fake("fluocells")


@pytest.fixture(scope="session")
def fluocells_staged(staged):
    """All four configs built from `fluocells_fake` with verification on: the fakes' SHA-256 stand in for the
    published ones (v1 publishes none), so the checksums and the official counts are checked."""
    return staged("fluocells")


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
