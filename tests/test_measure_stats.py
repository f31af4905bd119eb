"""Statistics of esm.measure against NumPy / exact-binomial references."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from esm.measure import stats


def _ref_ranks(n: int, confidence: float) -> tuple[int, int, float]:
    """Exact order-statistic CI ranks with rational arithmetic (the oracle)."""
    half_alpha = Fraction(1 - confidence).limit_denominator(10**6) / 2
    total = 2**n
    cdf = Fraction(0)
    best = None
    for j in range(n // 2):  # j = k - 1
        cdf += Fraction(math.comb(n, j), total)
        if cdf <= half_alpha:
            best = (j, float(1 - 2 * cdf))
        else:
            break
    if best is None:
        return 0, n - 1, (1 - 2 * 0.5**n) if n > 1 else 0.0
    return best[0], n - 1 - best[0], best[1]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_median_ci_ranks_match_exact_binomial(confidence):
    for n in [*range(1, 80), 100, 257, 1000]:
        lo, hi, cov = stats._median_ci_ranks(n, confidence)
        rlo, rhi, rcov = _ref_ranks(n, confidence)
        assert (lo, hi) == (rlo, rhi), n
        assert cov == pytest.approx(rcov, abs=1e-9)
        if n >= 10:
            assert cov >= confidence


def test_median_ci_values_and_coverage():
    rng = np.random.default_rng(1)
    x = rng.lognormal(0, 0.5, 41)
    lo, hi, _ = stats.median_ci(x, 0.95)
    s = np.sort(x)
    rlo, rhi, _ = _ref_ranks(41, 0.95)
    assert (lo, hi) == (s[rlo], s[rhi])
    # coverage by simulation: the true median of a lognormal(0, .5) is 1
    hits = 0
    trials = 2000
    for _ in range(trials):
        y = rng.lognormal(0, 0.5, 25)
        a, b, _ = stats.median_ci(y, 0.95)
        hits += a <= 1.0 <= b
    assert hits / trials >= 0.95 - 0.015


def test_summarize_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.gamma(2.0, 3.0, 333)
    x[5] = 500.0  # an outlier
    st = stats.summarize(x, 0.95, "iqr", 3.0)
    q = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert st["median"] == pytest.approx(np.median(x))
    assert [st["q05"], st["q25"], st["q75"], st["q95"]] == pytest.approx(q[[0, 1, 3, 4]])
    assert st["mean"] == pytest.approx(x.mean())
    assert st["min"] == x.min() and st["max"] == x.max()
    assert st["cv"] == pytest.approx(x.std(ddof=1) / x.mean())
    iqr = q[3] - q[1]
    ref_out = int(np.sum((x < q[1] - 3 * iqr) | (x > q[3] + 3 * iqr)))
    assert st["outliers"] == ref_out >= 1
    assert st["rel_ci"] == pytest.approx((st["ci_high"] - st["ci_low"]) / 2 / st["median"])
    assert stats.summarize(x, outlier_rule="none")["outliers"] == 0


def test_summarize_refuses_bad_samples():
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0, float("nan")])
