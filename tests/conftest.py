"""Shared fixtures: an isolated Hugging Face cache, the real samples, fake Aitslab archives and builds."""

import os
import tempfile

# Isolate every cache before `datasets` / `huggingface_hub` are imported (they read these at import).
_CACHE = tempfile.mkdtemp(prefix="mhd-tests-hf-")
os.environ["HF_HOME"] = _CACHE
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "datasets")
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("MICROSCOPY_SAMPLES", ROOT.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real sample files not found at {SAMPLES} (set MICROSCOPY_SAMPLES)")
    return SAMPLES


@pytest.fixture(scope="session")
def aitslab_fake(tmp_path_factory):
    """Fake Aitslab zips (images/ layout) and the manifest of what they hold."""
    from builders.fakes import aitslab_bioimaging1 as fake

    folder = tmp_path_factory.mktemp("aitslab-upstream")
    return folder, fake.write_archives(folder)


@pytest.fixture(scope="session")
def aitslab_staged(tmp_path_factory, aitslab_fake):
    """The staged repo built from `aitslab_fake`."""
    from builders import REGISTRY, staging

    upstream, _ = aitslab_fake
    out = tmp_path_factory.mktemp("aitslab-hub")
    return staging.build(REGISTRY["aitslab-bioimaging1"], out=out, data_dir=upstream, verify=False)


@pytest.fixture(scope="session")
def nsd_fake(tmp_path_factory):
    """Fake NucleusSegData lab zips (both versions, published counts) and their manifest."""
    from builders.fakes import nucleussegdata as fake

    folder = tmp_path_factory.mktemp("nsd-upstream")
    return folder, fake.write_archives(folder)


@pytest.fixture(scope="session")
def nsd_staged(tmp_path_factory, nsd_fake):
    """The staged repo built from `nsd_fake`, with the official counts verified."""
    from builders import REGISTRY, staging

    upstream, _ = nsd_fake
    out = tmp_path_factory.mktemp("nsd-hub")
    return staging.build(REGISTRY["nucleussegdata"], out=out, data_dir=upstream, verify=True)
