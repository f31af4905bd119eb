"""Warm a device up before anything is timed, and the precise settings of reference timings.

A fresh process does not time a device at its steady speed: on an H200 the first CUDA-graph
timings of a network ran 7-13% fast (the GPU had not heated up and ran at its boost clock),
and on this project's 2-core CPU, nearly idle, the first network timed in a process ran
15-17% slow (the first of six fresh instances of the same network 14.7-15.6 ms in three
processes, the others 12.5-13.3 ms). Every command that times networks for a dataset or a
check (``esm demo``, ``build``, ``collect``, ``check``, ``search --verify``) first runs
:func:`warm_up`.

The rule
--------
Time the reference network in *rounds*, each one precise measurement (:func:`precise`:
about a second of samples on a CPU, a 0.5% confidence interval). The device is **steady**
once at least ``min_s`` seconds have passed and the medians of the last ``window`` (3) rounds
lie within ``tol`` of each other (``max / min - 1``; never tighter than twice the rounds' own
confidence half-width, which itself must be within ``tol``: rounds too noisy to tell a trend
cannot show a steady device). The warm-up ends when steady, or at the ``max_s`` cap; then it
reports that the device did not settle and by how much its timings still moved, which on a
CPU means other work shares the machine. Defaults (:meth:`WarmupRule.for_device`): CPU 2-10
s, tolerance 2%; CUDA 5-30 s (the GPU's clock falls over seconds of work), tolerance 1%.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.measure.settings import Settings
from esm.measure.timer import Measurement, parse_device

__all__ = ["WarmupReport", "WarmupRule", "precise", "warm_up"]


def precise(settings: Settings, seconds: float = 1.0) -> Settings:
    """Settings for reference timings (warm-up rounds, drift checks): up to ``seconds`` of
    sampling (at least as long as ``settings``), a 0.5% CI target, at least 20 samples.

    A drift check must be measured more precisely than the networks it corrects, or its own
    noise is added to every network (a 0.25 s check on a shared 2-core CPU ranged over
    +-25%)."""
    return settings.replace(max_time_s=max(settings.max_time_s, seconds),
                            target_rel_ci=min(settings.target_rel_ci, 0.005),
                            min_samples=max(settings.min_samples, 20),
                            warmup_max_s=max(settings.warmup_max_s, 0.2))


@dataclass(frozen=True)
class WarmupRule:
    """When a device counts as warm (see the module docs).

    Attributes
    ----------
    min_s, max_s : float
        Warm up at least / at most this long (seconds).
    window : int
        Consecutive rounds whose medians must agree.
    tol : float
        Their allowed relative spread (``max / min - 1``).
    """

    min_s: float = 2.0
    max_s: float = 10.0
    window: int = 3
    tol: float = 0.02

    def __post_init__(self) -> None:
        if not (0 <= self.min_s <= self.max_s) or self.window < 2 or not self.tol > 0:
            raise InputError("warm-up rule: need 0 <= min_s <= max_s, window >= 2, tol > 0")

    @classmethod
    def for_device(cls, device: str) -> WarmupRule:
        """The default rule of a device: CPU 2-10 s at 2%, CUDA 5-30 s at 1%."""
        if parse_device(device)[0] == "cuda":
            return cls(min_s=5.0, max_s=30.0, tol=0.01)
        return cls()


@dataclass
class WarmupReport:
    """What a warm-up did: rounds, their medians, and whether the device became steady."""

    steady: bool
    seconds: float
    medians_ms: list[float] = field(default_factory=list)
    spread: float = math.nan
    tol: float = math.nan
    rule: dict[str, Any] = field(default_factory=dict)
    round_ci: float = math.nan

    @property
    def rounds(self) -> int:
        return len(self.medians_ms)

    @property
    def first_vs_steady(self) -> float:
        """First round's median over the last round's, minus 1 (how cold the device was)."""
        if len(self.medians_ms) < 2:
            return math.nan
        return self.medians_ms[0] / self.medians_ms[-1] - 1.0

    def message(self) -> str:
        """One line for people."""
        if not self.medians_ms:
            return "warm-up: nothing timed"
        w = int(self.rule.get("window", 3))
        head = (f"warm-up {self.seconds:.1f} s, {self.rounds} rounds of the reference network: "
                f"first {self.medians_ms[0]:.4g} ms, last {self.medians_ms[-1]:.4g} ms "
                f"({100 * self.first_vs_steady:+.1f}%)")
        if self.steady:
            return f"{head}; steady (last {w} within {100 * self.spread:.1f}%)"
        if not math.isfinite(self.spread):
            why = f"only {self.rounds} round(s) fit in the time cap"
        elif self.spread <= self.tol:
            why = (f"the rounds' own confidence intervals (+-{100 * self.round_ci:.1f}%) are "
                   f"wider than the {100 * float(self.rule.get('tol', 0)):.0f}% tolerance, "
                   "too noisy to tell")
        else:
            why = (f"the last {w} rounds still differ by {100 * self.spread:.1f}% (allowed "
                   f"{100 * self.tol:.1f}%)")
        return (f"{head}; NOT steady after {self.seconds:.0f} s: {why}: the device's speed "
                "is changing or noisy, e.g. other work shares it")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(rounds=self.rounds, first_vs_steady=self.first_vs_steady,
                 message=self.message())
        return d


def warm_up(measure_once: Callable[[], Measurement], rule: WarmupRule | None = None, *,
            clock: Callable[[], float] = time.monotonic) -> WarmupReport:
    """Time ``measure_once`` (one precise measurement of the reference) in rounds until the
    device is steady by ``rule`` or the cap; see the module docs."""
    r = rule or WarmupRule()
    t0 = clock()
    meds: list[float] = []
    cis: list[float] = []
    spread = tol = math.nan
    while True:
        m = measure_once()
        meds.append(float(m.median_ms))
        cis.append(float(m.rel_ci) if math.isfinite(m.rel_ci) else 0.0)
        elapsed = clock() - t0
        if len(meds) >= r.window:
            last = np.asarray(meds[-r.window:])
            spread = float(last.max() / last.min() - 1.0) if last.min() > 0 else math.inf
            ci = float(np.median(cis[-r.window:]))
            tol = max(r.tol, 2.0 * ci)
            if elapsed >= r.min_s and spread <= tol and ci <= r.tol:
                return WarmupReport(True, elapsed, meds, spread, tol, asdict(r), ci)
        if elapsed >= r.max_s:
            ci = float(np.median(cis[-r.window:]))
            return WarmupReport(False, elapsed, meds, spread, tol, asdict(r), ci)
