"""A tiny build that really measures networks on the CPU into a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HAVE_TORCH, needs_gpu

pytestmark = pytest.mark.skipif(not HAVE_TORCH, reason="measuring needs torch")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu,
                                                                        needs_gpu])])
def test_tiny_device_build(tmp_path: Path, device: str) -> None:
    from esm import spaces
    from esm.build import BuildConfig, DeviceOracle, build
    from esm.measure import Settings
    from esm.measure.warmup import WarmupRule
    from esm.report import quality_summary, write_report
    from esm.store import Store

    space = spaces.get("ofa-mbv3", resolutions=(128, 144, 16))
    settings = Settings.quick(max_time_s=0.05, min_samples=3, warmup_min_s=0.0,
                              warmup_max_s=0.02)
    with Store(tmp_path / "s.sqlite") as store:
        oracle = DeviceOracle(space, device, store, pool_size=40, seed=0, threads=1,
                              settings=settings,
                              warmup=WarmupRule(min_s=0.0, max_s=1.0, tol=0.5))
        run = store.run(oracle.run_id)
        assert run["device"] == ("cpu" if device == "cpu" else "cuda:0")
        assert ("gpu" in run["provenance"]) == (device == "cuda")
        cfg = BuildConfig(strategy="balanced", initial=6, batch=4, val_size=4,
                          target_mape=None, budget_samples=14, seed=0)
        res, model = build(oracle, cfg)
        assert res["stop_reason"] == "budget" and res["warmup"]["rounds"] >= 1
        assert res["samples_used"] == 14
        g, lat, _ = store.dataset(oracle.run_id)
        # every measured network is in the store (none failed), plus nothing else
        assert len(lat) == 14 - res["failed"] and np.all(lat > 0)
        assert res["seconds"]["measure"] > 0
        # reference checks: one before the first batch and one after every batch (batches are
        # shorter than reference_every)
        checks = store.reference_checks(oracle.run_id)
        assert len(checks) == 1 + len(res["history"])
        # validation networks were measured in parts, shuffled into the first batches
        assert res["val_samples"] == 4 and len(res["measured"]["y_validation"]) == 4
        q = quality_summary(res)
        assert q["source"] == "store" and q["measurements"] == len(lat)
        assert len(q["cv"]) == len(lat)
        pred = model.predict(g)
        assert pred.shape == (len(lat),) and np.all(np.isfinite(pred))
        rep = write_report(res, tmp_path / "rep")
        assert (tmp_path / "rep" / "quality.png").is_file()
        assert "Measurement quality" in rep.read_text()
        assert ("eager forward (launch overhead included)" in rep.read_text()) == (
            device == "cuda")

        # building again with the same store re-uses the stored measurements
        oracle2 = DeviceOracle(space, device, store, pool_size=40, seed=0, threads=1,
                               settings=settings)
        assert oracle2.run_id == oracle.run_id
        r2 = oracle2.measure(np.asarray(res["measured"]["train"][:3]))
        assert np.all(np.isfinite(r2.y)) and r2.quality == []


def test_demo_on_a_fake_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's first command end to end on a fake CPU (latency from the costs, 2% noise):
    warm-up, build, the model file, search and report agree on one model and one number."""
    from esm.demo import run_demo
    from esm.measure import Measurement
    from esm.measure.warmup import WarmupRule
    from esm.oracles import DeviceOracle

    rng = np.random.default_rng(0)

    def fake(self: DeviceOracle, g: np.ndarray, settings: object) -> tuple[Measurement, tuple]:
        c = self.space.costs(g[None])
        v = (1.0 + c.macs[0] / 1e8) * float(np.exp(0.02 * rng.standard_normal()))
        return Measurement.from_samples(np.full(5, v), settings), (1, 3, 224, 224)

    monkeypatch.setattr(DeviceOracle, "_measure_one", fake)
    monkeypatch.setattr(WarmupRule, "for_device",
                        classmethod(lambda cls, d: cls(min_s=0.0, max_s=1.0, tol=0.1)))
    res = run_demo(tmp_path / "demo", device="cpu", budget_seconds=60, seed=0, model="ridge",
                   search_seconds=1.0, prior=False)
    assert res["stop_reason"] == "target" and res["warmup"]["steady"]
    assert res["noise"]["n"] == 30 and res["drift"]["applied"] is False
    from esm.surrogate import load

    sur = load(res["model_file"])
    met = sur.info["metrics"]["validation"]
    assert res["mape"] == met["mape"] == res["model"]["metrics"]["mape"]
    assert sur.info["target"]["measurement"]["threads"] == 1
    assert sur.info["target"]["drift_reference"]["applied"] is False
    assert len(sur.info["build"]["validation_archs"]) == 30
    report = Path(res["report"]).read_text()
    assert f"**MAPE {met['mape']:.2f}%**" in report and "measured twice" in report
    assert res["search"]["found"]
