"""Drift correction from evidence: normalise latencies only where the device measurably moved.

A run's reference networks are re-measured now and then (:mod:`esm.collect`,
:class:`esm.oracles.DeviceOracle`); every check is stored with ``done``, the number of rows
the run held when it was taken. This module turns those checks into a speed ratio per row.
It reads no store: its callers pass the checks (and the rows' positions) in.

The rule (:func:`estimate`)
---------------------------
1. **Robust baseline.** Every reference network's baseline is the *median* of all its checks
   in the run, never one check: a first check taken on a cold device (a fresh process's
   first GPU timings run 7-13% fast, a CPU's 10-15% slow) or in a noisy moment would
   otherwise shift the whole dataset. A check's value ``l_k`` is the mean over its reference
   networks of ``log(median_ms / baseline)``.
2. **The checks' own noise** ``sigma``: from the differences of consecutive checks, which a
   slow drift barely moves and a step moves once: ``Qn(diff(l)) / sqrt(2)`` (Rousseeuw and
   Croux's robust scale, 82% efficient where the MAD is 37%: with 30 checks the MAD
   underestimated the noise often enough to call noise drift in 2-7% of steady runs),
   never below the checks' own confidence intervals (``median rel_ci / 1.96``) nor 0.1%.
3. **Smoothing.** ``s`` is the running median of 5 of ``l`` (near each end, that of the
   first or last five): one or two odd checks, e.g. the first one on a cold device or one
   taken while another process ran, never move a row.
4. **Significance.** The correction is applied only when (a) the checks as a whole vary
   beyond their noise: ``sum((l - median l)^2) / sigma^2`` above the 99.9% quantile of
   chi-square with ``K - 1`` degrees of freedom, and (b) only at checks whose smoothed
   value is beyond ``z = 4`` of its own standard deviation (``0.536 sigma`` for a median of
   5), i.e. ``|s_k| > 2.1 sigma``; elsewhere the ratio stays 1. With fewer than
   ``min_checks`` (5) checks there is not enough evidence and nothing is corrected.
   On synthetic runs of 30 checks (``tests/test_drift.py``) this corrects 0-3 in 1000
   steady runs with normal or heavy-tailed (t, 3 dof) noise and a cold first check, and
   finds a 10% step over the last third in every run with 2% check noise (in 4 of 10 with
   4% noise, where correcting would add half the noise it removes).
5. A row stored at position ``p`` (its index among the run's rows, in insertion order) was
   measured between the last check with ``done <= p`` and the first with ``done > p``; its
   log ratio is interpolated linearly between the two (the nearest one at the ends). The
   corrected latency is ``median_ms / ratio``: the latency at the run's typical speed.

Why this default: on a steady device every smoothed check stays within its noise, so the
correction is exactly 1 and the data are the raw measurements: the correction cannot make a
model worse there (``tests/test_drift.py``: a device with a cold first call and a noisy
reference). A real change of speed (thermal throttling, a co-tenant starting) is a step or a
trend many checks agree on, and is repaired (the same tests: a step of +30%). The
precision of the checks themselves is the caller's part: :func:`esm.oracles.
reference_settings` measures each check for longer than a network, so that ``sigma`` is
well below the drift worth correcting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DriftEstimate", "estimate", "factors", "interpolate"]

#: Checks needed before any correction (fewer cannot tell drift from noise).
MIN_CHECKS = 5
#: Standard deviations of a smoothed check beyond which it counts as drift.
Z_LOCAL = 4.0
#: Window of the running median, and the standard deviation of the median of that many
#: normal variables in units of one's.
WINDOW, _MEDIAN_SD = 5, 0.536
#: Floor of a check's noise (relative): no timer is better than this between checks.
_MIN_SIGMA = 1e-3


@dataclass
class DriftEstimate:
    """What the reference checks of a run say about the device's speed.

    Attributes
    ----------
    applied : bool
        Whether any row is corrected (the evidence rule of the module docs held somewhere).
    reason : str
        Why (or why not), in words.
    done : np.ndarray
        Position of every check (rows stored when it was taken), ``[K]``.
    log_ratio, smoothed, correction : np.ndarray
        Per check: log speed vs the baseline, its running median of 5, and the log ratio
        applied (the smoothed value where significant, else 0).
    sigma : float
        Noise of one check (log units, about relative).
    threshold : float
        ``|smoothed|`` beyond which a check counts as drift.
    chi2, chi2_limit : float
        The global test's statistic and its 99.9% limit.
    baseline_ms : dict
        Baseline latency of every reference network (key -> median of its checks).
    """

    applied: bool
    reason: str
    done: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    log_ratio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    smoothed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    correction: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma: float = math.nan
    threshold: float = math.nan
    chi2: float = math.nan
    chi2_limit: float = math.nan
    baseline_ms: dict[str, float] = field(default_factory=dict)

    def ratio(self, positions: Any) -> np.ndarray:
        """Speed ratio (latency now / at the baseline) of rows at ``positions`` (1 where
        nothing is corrected)."""
        pos = np.asarray(positions, np.float64)
        if not self.applied:
            return np.ones(pos.shape)
        return interpolate(pos, self.done, np.exp(self.correction))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for build results, reports and model files)."""
        drift = float(np.max(np.abs(self.smoothed))) if self.smoothed.size else math.nan
        return {"applied": self.applied, "reason": self.reason, "checks": int(self.done.size),
                "sigma": self.sigma, "threshold": self.threshold, "max_drift": drift,
                "corrected_checks": int(np.count_nonzero(self.correction)),
                "chi2": self.chi2, "chi2_limit": self.chi2_limit,
                "baseline_ms": dict(self.baseline_ms)}


def _per_check(checks: Sequence[dict[str, Any]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """``(done [K], log ratio [K], rel_ci [K], baselines)`` of valid checks, by ``seq``."""
    valid = [c for c in checks if c.get("median_ms") is not None and c["median_ms"] > 0]
    by_key: dict[str, list[float]] = {}
    for c in valid:
        by_key.setdefault(str(c["key"]), []).append(float(c["median_ms"]))
    base = {k: float(np.median(v)) for k, v in by_key.items()}
    logs: dict[int, list[float]] = {}
    cis: dict[int, list[float]] = {}
    done: dict[int, int] = {}
    for c in valid:
        s = int(c["seq"])
        logs.setdefault(s, []).append(math.log(float(c["median_ms"]) / base[str(c["key"])]))
        cis.setdefault(s, []).append(float(c.get("rel_ci") or 0.0))
        done[s] = int(c["done"])
    seqs = sorted(logs)
    return (np.asarray([done[s] for s in seqs], np.int64),
            np.asarray([np.mean(logs[s]) for s in seqs], np.float64),
            np.asarray([np.mean(cis[s]) for s in seqs], np.float64), base)


def running_median(x: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Running median over ``window`` (odd) values; near each end the median of the first or
    last full window (``x`` unchanged when shorter than the window)."""
    x = np.asarray(x, np.float64)
    if x.size < window:
        return x.copy()
    h = window // 2
    inner = np.median(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    return np.concatenate([np.full(h, inner[0]), inner, np.full(h, inner[-1])])


def qn_scale(x: np.ndarray) -> float:
    """Rousseeuw and Croux's ``Qn`` estimate of the standard deviation (robust, 82%
    efficient at the normal): ``2.2219`` times the ``h(h-1)/2``-th smallest pairwise
    distance, ``h = n // 2 + 1``."""
    x = np.asarray(x, np.float64)
    n = x.size
    if n < 2:
        return 0.0
    d = np.abs(x[:, None] - x[None, :])[np.triu_indices(n, 1)]
    h = n // 2 + 1
    return float(2.2219 * np.partition(d, h * (h - 1) // 2 - 1)[h * (h - 1) // 2 - 1])


def estimate(checks: Sequence[dict[str, Any]], *, min_checks: int = MIN_CHECKS,
             z: float = Z_LOCAL) -> DriftEstimate:
    """The evidence rule of the module docs on a run's reference checks.

    Parameters
    ----------
    checks : sequence of dict
        Reference checks with ``seq``, ``key``, ``done``, ``median_ms`` and optionally
        ``rel_ci`` (as :meth:`esm.store.Store.reference_checks` returns them); failed checks
        (no median) are ignored.
    min_checks : int
        Checks needed before anything is corrected.
    z : float
        Standard deviations of a smoothed check beyond which it counts as drift.
    """
    done, lr, rel_ci, base = _per_check(checks)
    k = int(lr.size)
    if k < max(3, min_checks):
        return DriftEstimate(False, f"{k} reference checks: too few to tell drift from noise "
                             f"(needs {max(3, min_checks)})", done, lr, lr.copy(),
                             np.zeros(k), baseline_ms=base)
    sigma = qn_scale(np.diff(lr)) / math.sqrt(2.0)
    sigma = max(sigma, float(np.median(rel_ci)) / 1.96, _MIN_SIGMA)
    s = running_median(lr)
    threshold = z * _MEDIAN_SD * sigma
    chi2 = float(np.sum(((lr - np.median(lr)) / sigma) ** 2))
    limit = chi2_limit(k - 1)
    corr = np.where(np.abs(s) > threshold, s, 0.0)
    if chi2 <= limit:
        reason = (f"steady: {k} checks vary by {100 * sigma:.2f}% (one check's noise), "
                  "within what that noise explains")
        corr = np.zeros(k)
    elif not corr.any():
        reason = (f"no sustained drift: the checks vary beyond their noise ({100 * sigma:.2f}%)"
                  f" but no stretch of them moved by more than {100 * threshold:.2f}%")
    else:
        reason = (f"corrected: {np.count_nonzero(corr)} of {k} checks moved beyond "
                  f"{100 * threshold:.2f}% (4 sd of a smoothed check; one check's noise "
                  f"{100 * sigma:.2f}%), by up to {100 * float(np.max(np.abs(s))):.1f}%")
    return DriftEstimate(bool(corr.any()), reason, done, lr, s, corr, sigma, threshold, chi2,
                         limit, base)


def chi2_limit(dof: int, z: float = 3.0902) -> float:
    """The 99.9% quantile (``z`` is its normal quantile) of chi-square with ``dof`` degrees of
    freedom, by the Wilson-Hilferty approximation (NumPy only; within 3% of the exact value
    for ``dof >= 2``, 1% from 4)."""
    a = 2.0 / (9.0 * dof)
    return float(dof * (1.0 - a + z * math.sqrt(a)) ** 3)


def interpolate(positions: np.ndarray, done: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Speed ratio of rows at ``positions`` between checks taken at ``done`` (see module docs).

    Without checks every ratio is 1; checks taken at the same ``done`` are averaged (in log).
    """
    pos = np.asarray(positions, np.float64) + 0.5  # a row is measured after `pos` rows
    if len(done) == 0:
        return np.ones(pos.shape)
    at, inv = np.unique(np.asarray(done, np.int64), return_inverse=True)
    logs = np.bincount(inv, weights=np.log(np.asarray(ratio, np.float64))) / np.bincount(inv)
    return np.exp(np.interp(pos, at.astype(np.float64), logs))


def factors(keys: Sequence[str], checks: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Speed ratio of every row of a run, by key, given its keys in insertion order and its
    reference checks (1.0 wherever the evidence rule corrects nothing)."""
    r = estimate(checks).ratio(np.arange(len(keys)))
    return dict(zip(keys, r.tolist(), strict=True))
