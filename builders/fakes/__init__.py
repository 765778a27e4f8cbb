"""Fake upstream archives in the exact published layouts, for the tests and `upload.py demo`.

One module per source; each writes small archives whose layout, names and encodings follow
`specs/upstream-formats.md`, including the quirks a loader must handle, and returns what the
builder should find in them (per split: stem -> number of objects). The output is deterministic
for a given seed (zip entries carry a fixed timestamp).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

ZIP_DATE = (2022, 6, 17, 0, 0, 0)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def noise(rng: np.random.Generator, height: int, width: int, sigma: float, grain: int = 1) -> np.ndarray:
    """Gaussian noise of shape (height, width, 3), constant over `grain` x `grain` squares: grain 2 makes
    PNGs about as compressible as real micrographs (benchmark replicas)."""
    values = rng.normal(0, sigma, (-(-height // grain), -(-width // grain), 3))
    return values.repeat(grain, 0).repeat(grain, 1)[:height, :width]


def write_zip(path: str | Path, members: dict[str, bytes]) -> Path:
    """A deterministic zip (sorted members, fixed timestamps) with a directory entry per folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folders = sorted({name.rsplit("/", i)[0] + "/" for name in members for i in range(1, name.count("/") + 1)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            archive.writestr(zipfile.ZipInfo(folder, ZIP_DATE), b"")
        for name in sorted(members):
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return path


def write_demo_archives(source_id: str, out_dir) -> dict:
    """Fake archives of `source_id` for the demo, from `builders/fakes/<source id with _>.py`."""
    import importlib

    module = importlib.import_module(f"{__name__}.{source_id.replace('-', '_')}")
    return module.write_archives(out_dir, **getattr(module, "DEMO_OPTIONS", {}))
