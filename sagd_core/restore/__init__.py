"""Restoring a given image (SAGD.md §4): notch, DDNM and SAGD methods, tiling, reports."""

from sagd_core.restore.api import (
    METHODS,
    RestoreRequest,
    RestoreResult,
    restore,
)
from sagd_core.restore.errors import BandError, ModelMismatchError, RestoreError
from sagd_core.restore.models import LoadedModel, ModelSet, load_model

__all__ = [
    "METHODS",
    "BandError",
    "LoadedModel",
    "ModelMismatchError",
    "ModelSet",
    "RestoreError",
    "RestoreRequest",
    "RestoreResult",
    "load_model",
    "restore",
]
