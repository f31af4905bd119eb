"""esm: latency surrogate models for hardware-aware neural architecture search.

Importing esm needs only NumPy and the compiled core; torch, scikit-learn and the CUDA module
are loaded where they are used.
"""

from __future__ import annotations

from esm import spaces
from esm._native import core as _core
from esm.errors import EsmError, InputError
from esm.info import info

__version__: str = _core.__version__

__all__ = ["EsmError", "InputError", "__version__", "info", "spaces"]
