"""The optional CUDA module, loaded lazily.

``esm._cuda`` exists only where the package was built with a CUDA compiler. Importing ``esm``
never loads it; :func:`module` does, on first use.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Any


@lru_cache(maxsize=1)
def module() -> ModuleType | None:
    """Return ``esm._cuda`` or None when it was not built."""
    try:
        return importlib.import_module("esm._cuda")
    except ImportError:
        return None


def built() -> bool:
    """Whether the CUDA module was compiled into this installation."""
    return module() is not None


def devices() -> tuple[list[dict[str, Any]], str]:
    """Usable CUDA devices and, when there are none, the reason."""
    mod = module()
    if mod is None:
        return [], "esm was built without CUDA (no CUDA compiler at build time or ESM_CUDA=OFF)"
    devs, why = mod.devices()
    return list(devs), str(why)


def available() -> bool:
    """Whether at least one CUDA device can be used by esm's own kernels."""
    return bool(devices()[0])


def require() -> ModuleType:
    """Return the CUDA module, or raise a clear error naming why it cannot be used."""
    from esm.errors import InputError

    devs, why = devices()
    mod = module()
    if mod is None or not devs:
        raise InputError(f"CUDA is not usable here: {why}")
    return mod
