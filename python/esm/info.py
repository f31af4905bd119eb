"""What this installation of esm was built with and which devices it can use."""

from __future__ import annotations

import importlib.util
import os
import platform
from typing import Any

from esm import cuda
from esm._native import core

_OPTIONAL = ("torch", "sklearn", "matplotlib", "rich", "cupy", "ray", "lightgbm", "xgboost")


def info() -> dict[str, Any]:
    """Describe the build and the usable devices.

    Returns
    -------
    dict
        ``version``, ``core`` (path of the compiled module), ``cuda_built``, ``cuda_devices``
        (list of dicts), ``cuda_reason`` (why none are usable), ``cpu`` (model and core
        count), ``spaces`` and ``optional`` (which optional packages are importable).
    """
    from esm import __version__, spaces

    devs, why = cuda.devices()
    mod = cuda.module()
    return {
        "version": __version__,
        "core": getattr(core, "__file__", None),
        "cuda_built": mod is not None,
        "cuda_runtime": mod.runtime_version() if mod is not None else None,
        "cuda_driver": mod.driver_version() if mod is not None else None,
        "cuda_devices": devs,
        "cuda_reason": "" if devs else why,
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()},
        "python": platform.python_version(),
        "spaces": spaces.names(),
        "optional": {name: importlib.util.find_spec(name) is not None for name in _OPTIONAL},
    }


def cpu_model() -> str:
    """The CPU model name as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
