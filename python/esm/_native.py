"""Loading of the compiled modules with a helpful error when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

_BUILD_HINT = (
    "esm's compiled core is not importable ({err}). Install the package with "
    "`pip install .` (or `pip install esm-nas`) so that the extension is built; running from a "
    "source checkout without building it does not work."
)


def load_core() -> ModuleType:
    """Return ``esm._core``, raising ImportError with build instructions if it is missing."""
    try:
        return importlib.import_module("esm._core")
    except ImportError as err:  # pragma: no cover - only without a build
        raise ImportError(_BUILD_HINT.format(err=err)) from err


if TYPE_CHECKING:  # typed through python/esm/_core.pyi
    from esm import _core as core
else:
    core = load_core()
