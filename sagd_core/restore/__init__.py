"""Restoring a given image (DESIGN.md §4): the contract (``RestoreRequest``), the dispatcher
(``restore``) and, under :mod:`sagd_core.restore.methods`, one module per method.

Importing this package loads only the torch-free contract; ``restore`` and the model helpers
load on first use (PEP 562), so a process that only builds or validates requests (the API)
never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagd_core.restore.errors import BandError, ModelMismatchError, RestoreError
from sagd_core.restore.request import METHODS, RestoreRequest, RestoreSchedule
from sagd_core.restore.result import RestoreResult

if TYPE_CHECKING:
    from sagd_core.restore.engine import restore
    from sagd_core.restore.models import LoadedModel, ModelSet, load_model

_LAZY = {
    "restore": "sagd_core.restore.engine",
    "LoadedModel": "sagd_core.restore.models",
    "ModelSet": "sagd_core.restore.models",
    "load_model": "sagd_core.restore.models",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups (and monkeypatching) see a plain attribute
    return value


__all__ = [
    "METHODS",
    "BandError",
    "LoadedModel",
    "ModelMismatchError",
    "ModelSet",
    "RestoreError",
    "RestoreRequest",
    "RestoreResult",
    "RestoreSchedule",
    "load_model",
    "restore",
]
