"""Builders that publish public microscopy segmentation datasets to the Hugging Face Hub as Parquet.

`REGISTRY` maps each source id (the CLI name) to its builder class, in source-id order: every
`SegmentationBuilder` subclass with a `SOURCE_ID` defined in a module of this package, so a source is
added by adding its module (see CONTRIBUTING.md), plus those defined in the Python files listed in
`$MICROSCOPY_HUB_SOURCES` (separated by `os.pathsep`; the tests add a source of their own this way).
The class carries the Hub repo name (`REPO_NAME`), its metadata, its card template and its fakes module.
"""

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

from .base import SegmentationBuilder
from .errors import BuildError
from .schema import CORE_COLUMNS, CORE_FEATURES, core_view

EXTRA_SOURCES = "MICROSCOPY_HUB_SOURCES"


def _load_file(path: str):
    """The module of a Python file outside this package, importable by its name (its builder's pickles need it)."""
    name = f"microscopy_source_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not Path(path).is_file():
        raise BuildError(f"{EXTRA_SOURCES}: {path}: no such Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _discover() -> dict:
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
               if not info.ispkg]
    modules += [_load_file(path) for path in os.environ.get(EXTRA_SOURCES, "").split(os.pathsep) if path]
    found = {}
    for module in modules:
        for cls in vars(module).values():
            if (isinstance(cls, type) and issubclass(cls, SegmentationBuilder) and cls.__module__ == module.__name__
                    and cls.SOURCE_ID):
                if cls.SOURCE_ID in found:
                    raise BuildError(f"two builders have the source id {cls.SOURCE_ID!r}: "
                                     f"{found[cls.SOURCE_ID].__module__} and {cls.__module__}")
                found[cls.SOURCE_ID] = cls
    return dict(sorted(found.items()))


REGISTRY = _discover()

__all__ = ["REGISTRY", "BuildError", "CORE_COLUMNS", "CORE_FEATURES", "core_view"]
