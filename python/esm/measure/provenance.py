"""Provenance of a measurement run: what machine, software and settings produced it."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from esm.measure.timer import parse_device


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def cpu_provenance(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, affinity, threads, governor, OS and Python."""
    from esm.info import cpu_model

    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "affinity": _affinity(),
        "threads": threads,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "os": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "hostname": socket.gethostname(),
    }


def _torch_provenance(threads: int | None) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    out: dict[str, Any] = {
        "torch": torch.__version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    try:
        out["torch_parallel"] = torch.__config__.parallel_info().splitlines()[:6]
    except Exception:  # pragma: no cover - defensive
        pass
    return out


def _gpu_provenance(index: int) -> dict[str, Any]:
    from esm import cuda

    out: dict[str, Any] = {}
    devs, why = cuda.devices()
    mod = cuda.module()
    if mod is not None:
        out["cuda_runtime"] = mod.runtime_version()
        out["cuda_driver"] = mod.driver_version()
    for d in devs:
        if d.get("index") == index:
            out["gpu"] = d
    if not devs:
        out["gpu_reason"] = why
    if mod is not None and hasattr(mod, "nvml_info"):
        try:
            out["nvml"] = mod.nvml_info(index)
        except Exception as err:  # pragma: no cover - depends on the driver
            out["nvml"] = {"error": str(err)}
    try:
        import torch

        if torch.cuda.is_available():
            out["torch_gpu_name"] = torch.cuda.get_device_name(index)
            out["torch_cuda"] = torch.version.cuda
            out["cudnn_version"] = torch.backends.cudnn.version()
            out["cudnn_enabled"] = torch.backends.cudnn.enabled
            out["cudnn_benchmark"] = torch.backends.cudnn.benchmark
            out["cudnn_deterministic"] = torch.backends.cudnn.deterministic
            out["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
            out["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    except ImportError:
        pass
    return out


def provenance(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Describe the machine and software a measurement runs on.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda[:i]"``; on CUDA the GPU's name, driver/runtime versions, clocks,
        power limit (through NVML when the driver has it) and cuDNN settings are added.
    threads : int, optional
        Thread count used for the measurement (recorded as given).

    Returns
    -------
    dict
        JSON-able description (CPU model, cores, affinity, OS, Python, torch and esm
        versions, ...).
    """
    from esm import __version__

    kind, index = parse_device(device)
    out: dict[str, Any] = {"device": device, "esm": __version__}
    out.update(cpu_provenance(threads))
    out.update(_torch_provenance(threads))
    if kind == "cuda":
        out.update(_gpu_provenance(index))
    return out
