"""Drift correction from evidence: the rule on synthetic checks, and builds on fake devices.

The two device tests are the issue's: a device with a cold first call and a noisy reference,
where the correction must do no harm, and a device with a real step drift, where it must
still repair the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm.drift import chi2_limit, estimate, factors, interpolate, qn_scale, running_median
from tests.conftest import HAVE_TORCH


def _checks(values: np.ndarray, every: int = 10, rel_ci: float = 0.002) -> list[dict[str, Any]]:
    return [{"seq": k, "key": "r", "done": every * k, "median_ms": float(v), "rel_ci": rel_ci}
            for k, v in enumerate(values)]


def test_steady_noisy_checks_are_not_corrected() -> None:
    """1000 steady runs of 30 checks with 4% noise (normal, and heavy-tailed: t with 3 dof),
    with a cold first check 12% off in every run: the rule corrects at most 3 of them."""
    for df in (3, 1000):
        applied = 0
        for seed in range(1000):
            rng = np.random.default_rng(seed)
            v = 10.0 * np.exp(0.04 * rng.standard_t(df, 30) / np.sqrt(df / (df - 2)))
            v[0] *= 0.88
            applied += estimate(_checks(v)).applied
        assert applied <= 3, df


def test_step_drift_is_corrected_and_steady_stretches_are_not() -> None:
    rng = np.random.default_rng(0)
    speed = np.where(np.arange(30) < 12, 1.0, 1.3)
    v = 10.0 * speed * np.exp(0.01 * rng.standard_normal(30))
    d = estimate(_checks(v))
    assert d.applied and "corrected" in d.reason and d.sigma < 0.02
    # the baseline is the median check (the slow level: 18 of 30 checks), so rows measured
    # while fast are scaled up by 1/1.3 and the others are left alone
    assert d.baseline_ms["r"] == pytest.approx(13.0, rel=0.02)
    r = d.ratio(np.array([5, 60, 115, 200, 290]))
    np.testing.assert_allclose(r[:2], 1 / 1.3, rtol=0.02)
    assert r[3] == pytest.approx(1.0) and r[4] == pytest.approx(1.0)


def test_linear_trend_is_followed_and_few_checks_correct_nothing() -> None:
    v = 10.0 * 1.02 ** np.arange(12)
    d = estimate(_checks(v, rel_ci=0.0))
    assert d.applied
    got = d.ratio(np.arange(12) * 10 - 0.5) * d.baseline_ms["r"]
    np.testing.assert_allclose(got[2:-2], v[2:-2], rtol=1e-9)  # exact inside
    np.testing.assert_allclose(got, v, rtol=0.05)  # the ends take their window's median
    few = estimate(_checks(v[:4]))
    assert not few.applied and "too few" in few.reason
    assert np.all(few.ratio(np.arange(50)) == 1.0)


def test_running_median_and_qn() -> None:
    rm = running_median
    np.testing.assert_allclose(rm(np.array([0, 0, 5, 6, 0, 0, 0.0])), 0)  # two odd checks
    np.testing.assert_allclose(rm(np.array([9, 9, 0, 0, 0, 0.0])), 0)  # at an end
    np.testing.assert_allclose(rm(np.array([0, 0, 0, 0, 1, 1, 1, 1.0])),
                               [0, 0, 0, 0, 1, 1, 1, 1])  # a step stays a step
    np.testing.assert_allclose(rm(np.arange(9.0))[2:-2], np.arange(9.0)[2:-2])
    np.testing.assert_allclose(rm(np.arange(3.0)), np.arange(3.0))
    x = np.random.default_rng(0).standard_normal(4000)
    assert qn_scale(x) == pytest.approx(1.0, abs=0.05)
    assert qn_scale(np.concatenate([x, np.full(400, 1e6)])) < 1.2  # robust to 10% outliers


def test_chi2_limit_and_interpolation() -> None:
    from scipy.stats import chi2

    for k in (2, 4, 10, 30, 100):
        assert chi2_limit(k) == pytest.approx(chi2.ppf(0.999, k), rel=0.03)
    done = np.array([0, 10, 10, 20])
    ratio = np.array([1.0, 1.5, 1.5, 1.5 * 2.0])
    r = interpolate(np.array([0, 4, 9, 15, 25]), done, ratio)
    # log-linear between (0, 1) and (10, 1.5); duplicate checks at 10 are averaged
    assert r[0] == pytest.approx(np.exp(0.05 * np.log(1.5)))
    assert r[2] == pytest.approx(np.exp(0.95 * np.log(1.5)))
    assert r[3] == pytest.approx(1.5 * np.exp(0.55 * np.log(2.0)))
    assert r[4] == pytest.approx(3.0)  # after the last check: the last ratio
    assert np.all(interpolate(np.arange(5), np.zeros(0), np.zeros(0)) == 1.0)


def test_factors_by_key() -> None:
    v = 10.0 * np.where(np.arange(20) < 12, 1.0, 2.0)  # baseline: the median, 10 ms
    f = factors([f"k{i}" for i in range(200)], _checks(v))
    assert f["k5"] == pytest.approx(1.0) and f["k150"] == pytest.approx(2.0)


# ------------------------------------------------------------------------ fake devices
class FakeDevice:
    """Latency = a function of the network's MACs x the device's speed at that call x noise.

    ``speed(call)`` is the speed factor of the call-th measurement (calls count every
    measurement: warm-up rounds, reference checks and networks); ``ref_noise`` and
    ``noise`` are the relative noise of reference and network measurements.
    """

    def __init__(self, space: Any, speed: Any, noise: float, ref_noise: float,
                 seed: int = 0) -> None:
        self.space, self.speed = space, speed
        self.noise, self.ref_noise = noise, ref_noise
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def true_ms(self, g: np.ndarray) -> float:
        return 1.0 + float(self.space.costs(g[None]).macs[0]) / 1e8

    def measure(self, oracle: Any, g: np.ndarray, settings: Any) -> tuple[Any, tuple[int, ...]]:
        from esm.measure import Measurement

        ref = np.array_equal(g, oracle._ref)
        v = self.true_ms(g) * self.speed(self.calls) * float(
            np.exp((self.ref_noise if ref else self.noise) * self.rng.standard_normal()))
        self.calls += 1
        return Measurement.from_samples(np.full(5, v), settings), (1, 3, 224, 224)


def _fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dev: FakeDevice,
                correction: bool, name: str, final: bool = False) -> tuple[dict[str, Any], Any]:
    from esm import spaces
    from esm.build import BuildConfig, build
    from esm.measure import Settings
    from esm.measure.warmup import WarmupRule
    from esm.oracles import DeviceOracle
    from esm.store import Store

    monkeypatch.setattr(DeviceOracle, "_measure_one",
                        lambda self, g, s: dev.measure(self, g, s))
    space = spaces.get("ofa-mbv3")
    store = Store(tmp_path / f"{name}.sqlite")
    oracle = DeviceOracle(space, "cpu", store, pool_size=300, seed=0, threads=1,
                          settings=Settings.quick(), reference_every=5,
                          drift_correction=correction,
                          warmup=WarmupRule(min_s=0.0, max_s=0.5, tol=0.12))
    cfg = BuildConfig(strategy="random", initial=30, batch=30, val_size=30, target_mape=None,
                      budget_samples=150, validation="holdout", seed=0)
    res, step = build(oracle, cfg)
    if final:
        from esm.final import finalize

        finalize(res, step, oracle, model="ridge")
    store.close()
    truth = np.array([dev.true_ms(g) for g in oracle.pool.genomes])
    return res, truth


def _consistency(res: dict[str, Any], truth: np.ndarray) -> float:
    """How far the training labels are from one common scale of the truth: the spread
    (90th over 10th percentile, minus 1) of label / truth."""
    r = np.asarray(res["measured"]["y_train"]) / truth[res["measured"]["train"]]
    return float(np.percentile(r, 90) / np.percentile(r, 10) - 1)


@pytest.mark.skipif(not HAVE_TORCH, reason="DeviceOracle needs torch")
def test_cold_first_call_and_noisy_reference_correction_does_no_harm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first call of the process is 15% slow (a cold device), the reference checks
    repeat within 4% and the networks within 1%: no row is corrected, the labels are the
    raw measurements, and the model is the one built without correction."""
    results = []
    for correction in (True, False):
        dev = FakeDevice(None, lambda c: 1.15 if c == 0 else 1.0, noise=0.01, ref_noise=0.04)
        from esm import spaces

        dev.space = spaces.get("ofa-mbv3")
        res, truth = _fake_build(tmp_path, monkeypatch, dev, correction, f"cold{correction}")
        results.append((res, truth))
    (on, truth), (off, _) = results
    assert on["warmup"]["rounds"] >= 4 and on["warmup"]["first_vs_steady"] > 0.1
    assert on["drift"]["applied"] is False and on["drift"]["labels"] == "raw"
    assert on["measured"]["y_train"] == on["measured"]["y_train_raw"]
    assert on["measured"] == off["measured"] and on["mape"] == off["mape"]
    assert _consistency(on, truth) < 0.04  # the networks' 1% noise
    # the validation networks were measured twice: the noise estimate is the networks' 1%
    assert on["noise"]["n"] == 30 and 0.5 < on["noise"]["mean"] < 2.5


@pytest.mark.skipif(not HAVE_TORCH, reason="DeviceOracle needs torch")
def test_step_drift_is_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device becomes 30% slower half-way through (a co-tenant starts); the reference
    checks repeat within 1%: the correction brings the rows back onto one scale, the raw
    data are not, and the model built on them is better than without correction."""
    from esm import spaces

    space = spaces.get("ofa-mbv3")
    out = {}
    for correction in (True, False):
        dev = FakeDevice(space, lambda c: 1.0 if c < 110 else 1.3, noise=0.01, ref_noise=0.01)
        out[correction] = _fake_build(tmp_path, monkeypatch, dev, correction, f"step{correction}",
                                      final=True)
    (on, truth), (off, _) = out[True], out[False]
    assert on["drift"]["applied"] and on["drift"]["labels"] == "corrected"
    assert _consistency(on, truth) < 0.05 < 0.25 < _consistency(off, truth)
    assert on["mape_estimate"] < 0.5 * off["mape_estimate"]
    raw = np.asarray(on["measured"]["y_train_raw"]) / truth[on["measured"]["train"]]
    assert np.max(raw) / np.min(raw) > 1.25  # the store keeps the raw measurements
    # the model file states both validation errors, and which one its model used
    v = on["model"]["validation"]
    assert v["used"] == "corrected" and v["corrected"] == on["model"]["metrics"]["mape"]
    assert v["raw"] > 2 * v["corrected"]
    assert off["model"]["validation"]["used"] == "raw"
