"""Statistics of raw timing samples: quantiles, CV, outliers and a CI of the median.

The confidence interval of the median is the distribution-free order-statistic interval
(e.g. Conover, *Practical Nonparametric Statistics*, sec. 3.2): with ``n`` sorted samples
``x(1) <= ... <= x(n)`` and ``B ~ Binomial(n, 1/2)``, take the largest ``k <= n/2`` with
``P(B <= k-1) <= alpha/2``; then ``[x(k), x(n-k+1)]`` covers the true median with probability
``1 - 2 P(B <= k-1) >= 1 - alpha``, whatever the distribution (timing samples are skewed and
heavy-tailed, so no normality is assumed). With too few samples for the requested confidence
(``n <= 5`` at 95%) the interval is ``[min, max]`` and its actual coverage is reported.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=256)
def _median_ci_ranks(n: int, confidence: float) -> tuple[int, int, float]:
    """0-based ranks ``(lo, hi)`` of the order-statistic CI of the median, and its coverage."""
    if n < 1:
        raise ValueError("need at least one sample")
    alpha = 1.0 - confidence
    k = np.arange(n + 1, dtype=np.float64)
    # log pmf of Binomial(n, 1/2) by the ratio recurrence pmf(k+1)/pmf(k) = (n-k)/(k+1)
    steps = np.log((n - k[:-1]) / (k[:-1] + 1.0))
    logpmf = n * np.log(0.5) + np.concatenate(([0.0], np.cumsum(steps)))
    cdf = np.cumsum(np.exp(logpmf))
    # cdf[j] = P(B <= j); candidate k (1-based rank) needs P(B <= k-1) = cdf[k-1] <= alpha/2
    ok = np.flatnonzero(cdf[: n // 2] <= alpha / 2.0)
    if ok.size == 0:
        return 0, n - 1, float(1.0 - 2.0 * 0.5**n) if n > 1 else 0.0
    j = int(ok[-1])  # = k - 1, the 0-based rank of the lower bound
    return j, n - 1 - j, float(1.0 - 2.0 * cdf[j])


def median_ci(samples: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """Order-statistic confidence interval of the median.

    Returns
    -------
    (low, high, coverage)
        Interval bounds (samples' unit) and the exact coverage probability of the interval.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    lo, hi, cov = _median_ci_ranks(int(x.size), float(confidence))
    return float(x[lo]), float(x[hi]), cov


def rel_half_width(samples: Any, confidence: float = 0.95) -> float:
    """Relative half-width ``(high - low) / 2 / median`` of the CI of the median."""
    x = np.asarray(samples, dtype=np.float64)
    lo, hi, _ = median_ci(x, confidence)
    med = float(np.median(x))
    return (hi - lo) / 2.0 / med if med > 0 else float("inf")


def count_outliers(samples: Any, k: float = 3.0) -> int:
    """Samples outside ``[q25 - k*IQR, q75 + k*IQR]`` (Tukey's fences)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 4:
        return 0
    q25, q75 = np.quantile(x, [0.25, 0.75])
    iqr = q75 - q25
    return int(np.count_nonzero((x < q25 - k * iqr) | (x > q75 + k * iqr)))


def summarize(
    samples: Any, confidence: float = 0.95, outlier_rule: str = "iqr", outlier_k: float = 3.0
) -> dict[str, Any]:
    """Statistics of raw samples (any unit; results in the same unit).

    Returns a dict with ``median, mean, min, max, q05, q25, q75, q95, std, cv, ci_low,
    ci_high, ci_coverage, rel_ci, n, outliers``. Quantiles use NumPy's default (linear)
    interpolation; ``cv`` is the sample standard deviation (ddof=1) over the mean.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    q05, q25, med, q75, q95 = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    lo, hi, cov = median_ci(x, confidence)
    return {
        "median": float(med),
        "mean": mean,
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "q05": float(q05),
        "q25": float(q25),
        "q75": float(q75),
        "q95": float(q95),
        "std": std,
        "cv": std / mean if mean > 0 else float("inf"),
        "ci_low": lo,
        "ci_high": hi,
        "ci_coverage": cov,
        "rel_ci": (hi - lo) / 2.0 / float(med) if med > 0 else float("inf"),
        "n": int(x.size),
        "outliers": count_outliers(x, outlier_k) if outlier_rule == "iqr" else 0,
    }
