"""Latency measurement: timers, methodology, statistics and provenance.

``measure(fn)`` times a callable, ``measure_module(module, shape)`` a torch network; both
return a :class:`Measurement` with every raw sample. All knobs are in :class:`Settings`; the
procedure is described in :mod:`esm.measure.timer`, the confidence interval of the median in
:mod:`esm.measure.stats`.
"""

from __future__ import annotations

from esm.measure.module import measure_module
from esm.measure.provenance import provenance
from esm.measure.settings import Settings
from esm.measure.stats import median_ci, summarize
from esm.measure.timer import CpuTimer, CudaTimer, Measurement, measure, parse_device

__all__ = [
    "CpuTimer",
    "CudaTimer",
    "Measurement",
    "Settings",
    "measure",
    "measure_module",
    "median_ci",
    "parse_device",
    "provenance",
    "summarize",
]
