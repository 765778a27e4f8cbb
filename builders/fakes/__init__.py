"""Fake upstream archives in the exact published layouts, for the tests and `upload.py demo`.

One module per source (its builder's `FAKES`); each writes small archives whose layout, names and
encodings follow `specs/upstream-formats.md`, including the quirks a loader must handle. The output is
deterministic for a given seed (zip entries carry a fixed timestamp). What the generic tests and the
demo use of a source's fakes module:

- `write_archives(out_dir, **options) -> manifest`: the archives, and what they hold;
- `expected_counts(manifest) -> {config: {split: (images, objects)}}`: what a build of them must hold;
- `FIRST_IMAGE = (archive name, regex)`: the archive the default config reads first, and an image member of it
  (the reliability tests corrupt it);
- `DEMO_OPTIONS`, `SMALL_OPTIONS` (optional): options of `write_archives` for the demo, and the smallest
  archives holding every quirk for the generic tests (else the defaults);
- `OFFICIAL = True` (optional): the default archives hold the official counts, so their build is verified.
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


def write_fakes(builder_cls, out_dir, options: str = "default") -> dict:
    """The fake archives of `builder_cls` (its fakes module) into `out_dir`, with the defaults or the module's
    `DEMO_OPTIONS` ("demo") or `SMALL_OPTIONS` ("small"; the defaults where it has none); returns the manifest."""
    module = builder_cls.fakes()
    chosen = {} if options == "default" else getattr(module, f"{options.upper()}_OPTIONS", {})
    return module.write_archives(out_dir, **chosen)


def write_demo_archives(source_id: str, out_dir) -> dict:
    """Fake archives of `source_id` for the demo (its fakes module's `DEMO_OPTIONS`)."""
    from .. import REGISTRY

    return write_fakes(REGISTRY[source_id], out_dir, "demo")
