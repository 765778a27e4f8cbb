"""Builders that publish public microscopy segmentation datasets to the Hugging Face Hub as Parquet.

`REGISTRY` maps each source id (the CLI name) to its builder class; the class carries the Hub repo
name (`REPO_NAME`), its metadata and its card template (`dataset_cards/<REPO_NAME>.md`).
"""

from .aitslab_bioimaging1 import AitslabBioimaging1
from .errors import BuildError
from .fluocells import FluorescentNeuronalCells
from .nucleussegdata import NucleusSegData
from .nucls import NuCLS
from .schema import CORE_COLUMNS, CORE_FEATURES, core_view

REGISTRY = {cls.SOURCE_ID: cls for cls in (AitslabBioimaging1, NucleusSegData, NuCLS, FluorescentNeuronalCells)}

__all__ = ["REGISTRY", "BuildError", "CORE_COLUMNS", "CORE_FEATURES", "core_view"]
