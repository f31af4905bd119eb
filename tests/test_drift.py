"""Drift correction: reference-check ratios, interpolation, and a build on a slowing device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm.drift import check_ratios, interpolate
from tests.conftest import HAVE_TORCH


def test_check_ratios_geometric_mean_per_check() -> None:
    checks = [
        {"seq": 0, "key": "a", "done": 0, "median_ms": 2.0},
        {"seq": 0, "key": "b", "done": 0, "median_ms": 8.0},
        {"seq": 1, "key": "a", "done": 10, "median_ms": 4.0},   # a x2
        {"seq": 1, "key": "b", "done": 10, "median_ms": 16.0},  # b x2
        {"seq": 2, "key": "a", "done": 20, "median_ms": 2.0},   # a x1
        {"seq": 2, "key": "b", "done": 20, "median_ms": 32.0},  # b x4 -> geomean 2
        {"seq": 3, "key": "a", "done": 30, "median_ms": None},  # failed check: ignored
    ]
    done, ratio = check_ratios(checks)
    np.testing.assert_array_equal(done, [0, 10, 20])
    np.testing.assert_allclose(ratio, [1.0, 2.0, 2.0])


def test_interpolate_between_checks_and_clamped_at_ends() -> None:
    done = np.array([0, 10, 10, 20])
    ratio = np.array([1.0, 1.5, 1.5, 1.5 * 2.0])
    r = interpolate(np.array([0, 4, 9, 15, 25]), done, ratio)
    # log-linear between (0, 1) and (10, 1.5); duplicate checks at 10 are averaged
    assert r[0] == pytest.approx(np.exp(0.05 * np.log(1.5)))
    assert r[2] == pytest.approx(np.exp(0.95 * np.log(1.5)))
    assert r[3] == pytest.approx(1.5 * np.exp(0.55 * np.log(2.0)))
    assert r[4] == pytest.approx(3.0)  # after the last check: the last ratio
    assert np.all(interpolate(np.arange(5), np.zeros(0), np.zeros(0)) == 1.0)


@pytest.mark.skipif(not HAVE_TORCH, reason="DeviceOracle needs torch")
def test_device_oracle_corrects_a_slowing_device(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A device that slows down 1% per measurement: the oracle's latencies stay those at the
    speed of the first reference check (within the interpolation error: half a step between
    checks), the raw ones in the store do not."""
    from esm import spaces
    from esm.build import DeviceOracle
    from esm.measure import Measurement, Settings
    from esm.store import Store

    space = spaces.get("ofa-mbv3")
    settings = Settings.quick()
    clock = {"calls": 0}

    def true_ms(g: np.ndarray) -> float:
        return 1.0 + float(space.costs(g[None]).macs[0]) / 1e8

    def fake(self: Any, g: np.ndarray) -> tuple[Measurement, tuple[int, ...]]:
        clock["calls"] += 1
        v = true_ms(g) * 1.01 ** (clock["calls"] - 1)  # the first call is the reference
        return Measurement.from_samples(np.full(5, v), settings), (1, 3, 224, 224)

    monkeypatch.setattr(DeviceOracle, "_measure_one", fake)
    with Store(tmp_path / "s.sqlite") as store:
        oracle = DeviceOracle(space, "cpu", store, pool_size=60, seed=0, threads=1,
                              settings=settings, reference_every=5)
        idx = np.arange(30)
        r = oracle.measure(idx)
        want = np.array([true_ms(g) for g in oracle.pool.genomes[idx]])
        err = np.abs(r.y / want - 1)
        assert err.max() < 0.006
        _, raw, _ = store.dataset(oracle.run_id)
        assert np.abs(raw / want - 1).max() > 0.3  # 1.01**35
        assert all(0.9 < q["speed_ratio"] for q in r.quality)
        # a second call (and a resumed oracle) stay relative to the run's first check
        r2 = oracle.measure(np.arange(30, 40))
        want2 = np.array([true_ms(g) for g in oracle.pool.genomes[30:40]])
        assert np.abs(r2.y / want2 - 1).max() < 0.006
        again = DeviceOracle(space, "cpu", store, pool_size=60, seed=0, threads=1,
                             settings=settings, reference_every=5)
        r3 = again.measure(np.arange(40, 45))
        want3 = np.array([true_ms(g) for g in again.pool.genomes[40:45]])
        assert np.abs(r3.y / want3 - 1).max() < 0.006
        # the export can apply the same correction
        _, rows = store.export_table(oracle.run_id, drift_corrected=True)
        got = {r[0]: r[1] for r in rows}
        first = [got[space.to_str(g)] for g in oracle.pool.genomes[:30]]
        np.testing.assert_allclose(first, r.y, rtol=1e-12)
        # without correction the raw latencies come back
        raw_oracle = DeviceOracle(space, "cpu", store, pool_size=60, seed=0, threads=1,
                                  settings=settings, drift_correction=False)
        r4 = raw_oracle.measure(np.arange(5))
        np.testing.assert_allclose(r4.y, raw[:5])
