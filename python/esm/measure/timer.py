"""The measurement loop: calibration, warm-up to steady state, sampling to a CI target.

:func:`measure` times any callable on the CPU (monotonic clock in the compiled core) or on a
CUDA device (events recorded on the caller's stream, from ``esm._cuda``) and returns a
:class:`Measurement` with every raw sample and its statistics.

Procedure
---------
1. *Calibrate* ``inner`` (calls per sample): double it until one sample lasts at least
   ``Settings.min_sample_s``.
2. *Warm up* by time, one sample at a time: stop once at least ``warmup_min_s`` passed and
   the median of the newest ``warmup_window`` samples is no longer lower than the median of
   the window before it by more than ``warmup_tol`` (steady state: warm-up effects -- cold
   caches, lazy allocation, frequency ramp-up -- make calls faster over time; noise in
   either direction does not prolong the warm-up), or after ``min(warmup_max_s,
   max_time_s / 2)``. Warm-up samples are dropped; ``inner`` is then re-calibrated from the
   warm-up median.
3. *Sample* in chunks of ``chunk`` until ``min_samples`` are kept and the relative half-width
   of the median's order-statistic CI (:mod:`esm.measure.stats`) is at most
   ``target_rel_ci``, or ``max_samples`` / the ``max_time_s`` cap is reached (then the result
   is flagged ``unstable``). The time cap is checked between chunks and wins over
   ``min_samples``, but at least 3 samples are always kept, so a call slower than the cap
   still yields a result (flagged).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esm._native import core
from esm.errors import InputError
from esm.measure.settings import Settings
from esm.measure.stats import rel_half_width, summarize

_MIN_KEPT = 3


@dataclass
class Measurement:
    """Result of one latency measurement (times in milliseconds per call).

    Attributes
    ----------
    samples_ms : np.ndarray
        Every kept raw sample, float64, in the order drawn (each the time of one block of
        ``inner`` calls divided by ``inner``).
    median_ms, mean_ms, min_ms, q05_ms, q25_ms, q75_ms, q95_ms : float
        Statistics of ``samples_ms`` (NumPy linear-interpolation quantiles).
    cv : float
        Coefficient of variation (std with ddof=1 over mean).
    ci_low_ms, ci_high_ms : float
        Distribution-free order-statistic confidence interval of the median.
    ci_coverage : float
        Exact coverage of that interval (>= ``settings.confidence`` unless too few samples).
    rel_ci : float
        ``(ci_high - ci_low) / 2 / median``.
    n_samples, inner : int
        Kept samples; calls per sample.
    warmup_s, warmup_iters : float, int
        Wall time and number of calls of calibration and warm-up.
    total_s : float
        Wall time of the whole measurement.
    unstable : bool
        The CI target was not reached (time or sample cap hit).
    outliers : int
        Samples outside the outlier fences (kept; see ``Settings.outlier_rule``).
    throttled : int
        Samples taken at a reduced SM clock (CUDA only; 0 on the CPU).
    device : str
        ``"cpu"`` or ``"cuda:<i>"``.
    settings : Settings
        The methodology used.
    sm_clock_mhz : np.ndarray or None
        SM clock of every kept sample (CUDA only).
    cpu_share : float or None
        CPU time of the timing thread over wall time during sampling (CPU only). Well below
        1 means the thread was descheduled (an oversubscribed machine): wall-clock samples
        then include time the code did not run.
    """

    samples_ms: np.ndarray
    median_ms: float
    mean_ms: float
    min_ms: float
    q05_ms: float
    q25_ms: float
    q75_ms: float
    q95_ms: float
    cv: float
    ci_low_ms: float
    ci_high_ms: float
    ci_coverage: float
    rel_ci: float
    n_samples: int
    inner: int
    warmup_s: float
    warmup_iters: int
    total_s: float
    unstable: bool
    outliers: int
    throttled: int
    device: str
    settings: Settings = field(default_factory=Settings)
    sm_clock_mhz: np.ndarray | None = None
    cpu_share: float | None = None

    @classmethod
    def from_samples(
        cls,
        samples_ms: Any,
        settings: Settings,
        *,
        inner: int = 1,
        warmup_s: float = 0.0,
        warmup_iters: int = 0,
        total_s: float = 0.0,
        unstable: bool | None = None,
        throttled: int = 0,
        device: str = "cpu",
        sm_clock_mhz: Any = None,
        cpu_share: float | None = None,
    ) -> Measurement:
        """Build a Measurement (all statistics) from raw per-call samples in milliseconds."""
        x = np.ascontiguousarray(samples_ms, dtype=np.float64).ravel()
        st = summarize(x, settings.confidence, settings.outlier_rule, settings.outlier_k)
        if unstable is None:
            unstable = not (st["rel_ci"] <= settings.target_rel_ci)
        return cls(
            samples_ms=x,
            median_ms=st["median"], mean_ms=st["mean"], min_ms=st["min"],
            q05_ms=st["q05"], q25_ms=st["q25"], q75_ms=st["q75"], q95_ms=st["q95"],
            cv=st["cv"], ci_low_ms=st["ci_low"], ci_high_ms=st["ci_high"],
            ci_coverage=st["ci_coverage"], rel_ci=st["rel_ci"], n_samples=st["n"],
            inner=int(inner), warmup_s=float(warmup_s), warmup_iters=int(warmup_iters),
            total_s=float(total_s), unstable=bool(unstable), outliers=st["outliers"],
            throttled=int(throttled), device=device, settings=settings,
            sm_clock_mhz=None if sm_clock_mhz is None else np.asarray(sm_clock_mhz, np.float64),
            cpu_share=None if cpu_share is None else float(cpu_share),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (arrays become lists)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                out[k] = v.tolist()
            elif isinstance(v, Settings):
                out[k] = v.to_dict()
            else:
                out[k] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        try:
            d["samples_ms"] = np.asarray(d["samples_ms"], dtype=np.float64)
            d["settings"] = Settings.from_dict(d.get("settings") or {})
            if d.get("sm_clock_mhz") is not None:
                d["sm_clock_mhz"] = np.asarray(d["sm_clock_mhz"], dtype=np.float64)
            return cls(**d)
        except (KeyError, TypeError) as err:
            raise InputError(f"not a measurement record: {err}") from None

    def summary(self) -> str:
        """One line: median, CI, samples and flags."""
        flags = [f for f, on in (("unstable", self.unstable), ("throttled", self.throttled))
                 if on]
        return (f"{self.median_ms:.4g} ms [{self.ci_low_ms:.4g}, {self.ci_high_ms:.4g}] "
                f"n={self.n_samples} x{self.inner} cv={self.cv:.2%}"
                + (f" ({', '.join(flags)})" if flags else ""))


# ---------------------------------------------------------------------------------- timers
class CpuTimer:
    """Times blocks of calls on the monotonic clock (or thread CPU time) of the compiled core."""

    device = "cpu"

    def __init__(self, clock: str = "wall") -> None:
        self.clock = clock

    def run(self, fn: Callable[[], Any], inner: int, n: int) -> tuple[np.ndarray, None]:
        """Seconds per call of ``n`` blocks of ``inner`` calls."""
        return core.time_callable(fn, int(inner), int(n), self.clock), None

    def close(self) -> None:
        pass


class CudaTimer:
    """Times blocks of calls with CUDA events recorded on the caller's stream.

    ``fn`` must enqueue its work on ``stream`` (a raw ``cudaStream_t`` as an int, e.g.
    ``torch.cuda.current_stream().cuda_stream``; 0 is the legacy default stream). One
    synchronisation per batch; an SM-clock probe kernel runs before every sample (outside the
    timed region) and reports the clock in MHz.
    """

    def __init__(self, index: int, settings: Settings, stream: int = 0, pool: int = 256) -> None:
        from esm import cuda

        mod = cuda.require()
        n_dev = len(cuda.devices()[0])
        if not 0 <= index < n_dev:
            raise InputError(f"cuda:{index} does not exist ({n_dev} CUDA device(s))")
        self.device = f"cuda:{index}"
        self.stream = int(stream)
        self.settings = settings
        self._timer = mod.EventTimer(int(index), int(pool), bool(settings.cuda_l2_flush))
        self._graph: Any = None

    @property
    def max_clock_mhz(self) -> float:
        return float(self._timer.max_clock_mhz())

    def capture(self, fn: Callable[[], Any], inner: int) -> None:
        """Capture ``inner`` calls of ``fn`` on the stream into a CUDA graph (graph mode)."""
        if self.stream == 0:
            raise InputError("CUDA-graph mode needs a non-default stream (stream handle != 0)")
        self._graph = self._timer.capture_graph(fn, self.stream, int(inner))

    def run(self, fn: Callable[[], Any], inner: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self._graph is not None:
            ms, clk = self._timer.time_graph(self._graph, self.stream, int(n))
            return np.asarray(ms) / 1e3 / inner, np.asarray(clk)
        ms, clk = self._timer.time(fn, self.stream, int(inner), int(n))
        return np.asarray(ms) / 1e3 / inner, np.asarray(clk)

    def close(self) -> None:
        self._graph = None


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"`` -> ("cpu", 0); ``"cuda"``/``"cuda:i"`` -> ("cuda", i). Others: InputError."""
    d = str(device).strip().lower()
    if d == "cpu":
        return "cpu", 0
    if d == "cuda":
        return "cuda", 0
    if d.startswith("cuda:") and d[5:].isdigit():
        return "cuda", int(d[5:])
    raise InputError(f"unknown device {device!r}; use cpu, cuda or cuda:<index>")


def make_timer(device: str, settings: Settings, stream: int | None = None) -> Any:
    """The timer for ``device`` (CpuTimer or CudaTimer)."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return CpuTimer(settings.clock)
    return CudaTimer(index, settings, stream=int(stream or 0))


# ---------------------------------------------------------------------------------- loop
def measure(
    fn: Callable[[], Any],
    settings: Settings | None = None,
    device: str = "cpu",
    *,
    stream: int | None = None,
    timer: Any = None,
) -> Measurement:
    """Measure the latency of ``fn()`` (see the module docs for the procedure).

    Parameters
    ----------
    fn : callable
        Called with no arguments. On CUDA it must enqueue its work on ``stream``.
    settings : Settings, optional
        Methodology (default ``Settings()``).
    device : str
        ``"cpu"`` (monotonic clock) or ``"cuda[:i]"`` (CUDA events).
    stream : int, optional
        CUDA stream handle the events are recorded on (default: the legacy default stream).
    timer : optional
        A timer object to reuse (advanced; must match ``device``).

    Returns
    -------
    Measurement
    """
    if not callable(fn):
        raise InputError("measure: fn must be callable")
    s = settings or Settings()
    tm = timer if timer is not None else make_timer(device, s, stream)
    clock = core.monotonic
    t_start = clock()
    deadline = t_start + s.max_time_s

    # 1. calibrate inner
    inner, calls = 1, 0
    while True:
        per_call = float(tm.run(fn, inner, 1)[0][0])
        calls += inner
        if per_call * inner >= s.min_sample_s or inner >= s.max_inner or clock() >= deadline:
            break
        want = math.ceil(s.min_sample_s / max(per_call, 1e-9))
        inner = int(min(s.max_inner, max(2 * inner, want)))

    # 2. warm up until steady state (one sample at a time, so the caps are checked often)
    warm: list[float] = []
    w = s.warmup_window
    t_warm = clock()
    warm_cap = min(s.warmup_max_s, 0.5 * s.max_time_s)
    while True:
        x, _ = tm.run(fn, inner, 1)
        warm.append(float(x[0]))
        calls += inner
        elapsed = clock() - t_warm
        if elapsed >= warm_cap or clock() >= deadline:
            break
        if elapsed >= s.warmup_min_s and len(warm) >= 2 * w:
            prev, last = float(np.median(warm[-2 * w : -w])), float(np.median(warm[-w:]))
            if last > 0 and (prev - last) / last <= s.warmup_tol:
                break
    med = float(np.median(warm)) if warm else per_call
    inner = int(min(s.max_inner, max(1, math.ceil(s.min_sample_s / max(med, 1e-9)))))
    if isinstance(tm, CudaTimer) and s.cuda_graph:
        tm.capture(fn, inner)
    warmup_s = clock() - t_start

    # 3. sample until the CI target, the sample cap or the time cap
    parts: list[np.ndarray] = []
    clocks: list[np.ndarray] = []
    n = 0
    reached = False
    cpu0, wall0 = time.thread_time(), clock()
    try:
        while True:
            if clock() >= deadline and n >= _MIN_KEPT:
                break
            want_n = s.chunk if n >= s.min_samples else min(s.chunk, s.min_samples - n)
            if clock() >= deadline:
                want_n = _MIN_KEPT - n
            want_n = max(1, min(want_n, s.max_samples - n))
            x, c = tm.run(fn, inner, want_n)
            parts.append(np.asarray(x, dtype=np.float64))
            if c is not None:
                clocks.append(np.asarray(c, dtype=np.float64))
            n += want_n
            if n >= s.min_samples:
                allx = np.concatenate(parts)
                if rel_half_width(allx, s.confidence) <= s.target_rel_ci:
                    reached = True
                    break
            if n >= s.max_samples:
                break
    finally:
        if timer is None:
            tm.close()
    cpu_share = None
    if isinstance(tm, CpuTimer) and clock() > wall0:
        cpu_share = (time.thread_time() - cpu0) / (clock() - wall0)
    samples_ms = np.concatenate(parts) * 1e3
    throttled = 0
    sm = None
    if clocks:
        sm = np.concatenate(clocks)
        top = float(np.max(sm))
        if top > 0:
            throttled = int(np.count_nonzero(sm < (1.0 - s.cuda_throttle_tol) * top))
    return Measurement.from_samples(
        samples_ms, s, inner=inner, warmup_s=warmup_s, warmup_iters=calls,
        total_s=clock() - t_start, unstable=not reached, throttled=throttled,
        device=tm.device, sm_clock_mhz=sm, cpu_share=cpu_share,
    )
