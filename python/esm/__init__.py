"""esm: latency surrogate models for hardware-aware neural architecture search.

Importing esm needs only NumPy and the compiled core; torch, scikit-learn and the CUDA module
are loaded where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esm import spaces
from esm._native import core as _core
from esm.errors import EsmError, InputError
from esm.info import info

if TYPE_CHECKING:
    from os import PathLike

    from esm.surrogate.surrogate import Surrogate

__version__: str = _core.__version__


def load(path: str | PathLike[str]) -> Surrogate:
    """Load a surrogate model file; returns an :class:`esm.surrogate.Surrogate`.

    Needs only NumPy and the compiled core (no torch, no scikit-learn).
    """
    from esm.surrogate.surrogate import load as _load

    return _load(path)


__all__ = ["EsmError", "InputError", "__version__", "info", "load", "spaces"]
