"""Methodology settings of a latency measurement: every knob in one JSON-able object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from esm.errors import InputError

OUTLIER_RULES = ("iqr", "none")
CLOCKS = ("wall", "thread_cpu")


@dataclass(frozen=True)
class Settings:
    """All knobs of :func:`esm.measure.measure`; stored with every run.

    Methodology (see ``esm.measure`` module docs): calibrate the inner iteration count so that
    one sample lasts at least ``min_sample_s``; warm up by time until steady state; then draw
    samples in chunks of ``chunk`` until the relative half-width of the confidence interval
    of the median is at most ``target_rel_ci`` (and at least ``min_samples`` were drawn), or
    ``max_time_s`` / ``max_samples`` is reached (the result is then flagged ``unstable``).

    Attributes
    ----------
    warmup_min_s, warmup_max_s : float
        Warm-up lasts at least / at most this long (seconds of timed calls); it never takes
        more than half of ``max_time_s``.
    warmup_window : int
        Samples per warm-up window. Steady state: the median of the newest window is not
        lower than the median of the window before it by more than ``warmup_tol``
        (relative), i.e. the calls stopped getting faster.
    warmup_tol : float
        Relative tolerance of the steady-state rule.
    target_rel_ci : float
        Target relative half-width of the CI of the median, ``(hi - lo) / 2 / median``.
    confidence : float
        Confidence level of the interval (distribution-free order-statistic interval).
    min_samples, max_samples : int
        Bounds on the number of kept samples.
    max_time_s : float
        Cap on the wall time of one measurement (calibration + warm-up + sampling).
    min_sample_s : float
        A sample (a block of ``inner`` calls) lasts at least this long; ``inner`` is
        calibrated to it (1 for calls longer than this).
    max_inner : int
        Upper bound of the inner iteration count.
    chunk : int
        Samples drawn between two checks of the stopping rule.
    outlier_rule : str
        ``"iqr"``: samples outside ``[q25 - k*IQR, q75 + k*IQR]`` are counted as outliers
        (kept in the raw samples and in every statistic; only counted and flagged).
        ``"none"``: no outlier counting.
    outlier_k : float
        The ``k`` of the IQR rule.
    clock : str
        CPU timer clock. ``"wall"`` (default): the monotonic clock, i.e. latency. ``"thread_cpu"``:
        CPU time of the calling thread, which excludes time the thread was descheduled; use it
        for single-threaded work (``threads=1``) on an oversubscribed machine, where wall-clock
        samples include other processes' time slices. Not latency for multi-threaded work.
    cuda_l2_flush : bool
        On CUDA, overwrite a scratch buffer of twice the L2 size before every sample (outside
        the timed region), so every sample starts with a cold L2.
    cuda_graph : bool
        On CUDA, capture ``inner`` calls into a CUDA graph and time graph replays.
    cuda_throttle_tol : float
        On CUDA, a sample whose SM clock is below ``(1 - tol)`` of the highest SM clock seen
        in the measurement is counted as throttled.
    """

    warmup_min_s: float = 0.2
    warmup_max_s: float = 3.0
    warmup_window: int = 5
    warmup_tol: float = 0.02
    target_rel_ci: float = 0.01
    confidence: float = 0.95
    min_samples: int = 20
    max_samples: int = 10_000
    max_time_s: float = 10.0
    min_sample_s: float = 1e-3
    max_inner: int = 1_000_000
    chunk: int = 10
    outlier_rule: str = "iqr"
    outlier_k: float = 3.0
    clock: str = "wall"
    cuda_l2_flush: bool = False
    cuda_graph: bool = False
    cuda_throttle_tol: float = 0.05
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.warmup_min_s >= 0, "warmup_min_s must be >= 0"),
            (self.warmup_max_s >= self.warmup_min_s, "warmup_max_s must be >= warmup_min_s"),
            (self.warmup_window >= 1, "warmup_window must be >= 1"),
            (self.warmup_tol >= 0, "warmup_tol must be >= 0"),
            (self.target_rel_ci > 0, "target_rel_ci must be > 0"),
            (0 < self.confidence < 1, "confidence must be in (0, 1)"),
            (1 <= self.min_samples <= self.max_samples, "need 1 <= min_samples <= max_samples"),
            (self.max_time_s > 0, "max_time_s must be > 0"),
            (self.min_sample_s >= 0, "min_sample_s must be >= 0"),
            (self.max_inner >= 1, "max_inner must be >= 1"),
            (self.chunk >= 1, "chunk must be >= 1"),
            (self.outlier_rule in OUTLIER_RULES, f"outlier_rule must be one of {OUTLIER_RULES}"),
            (self.outlier_k > 0, "outlier_k must be > 0"),
            (self.clock in CLOCKS, f"clock must be one of {CLOCKS}"),
            (0 <= self.cuda_throttle_tol < 1, "cuda_throttle_tol must be in [0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"measurement settings: {msg}")

    @classmethod
    def quick(cls, **overrides: Any) -> Settings:
        """Fast settings for collecting hundreds of small networks (~0.2-0.4 s each).

        Shorter warm-up, a 3% CI target and a 0.3 s cap; the samples and flags still say how
        precise each result is.
        """
        base: dict[str, Any] = dict(
            warmup_min_s=0.02, warmup_max_s=0.08, warmup_window=2, warmup_tol=0.05,
            target_rel_ci=0.03, min_samples=5, max_time_s=0.25, min_sample_s=1e-3, chunk=3,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def preset(cls, name: str) -> Settings:
        """``"default"`` or ``"quick"``."""
        if name == "default":
            return cls()
        if name == "quick":
            return cls.quick()
        raise InputError(f"unknown settings preset {name!r}; known: default, quick")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        if not isinstance(data, dict):
            raise InputError("measurement settings must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"measurement settings: unknown keys {unknown}")
        try:
            return cls(**data)
        except TypeError as err:
            raise InputError(f"measurement settings: {err}") from None
