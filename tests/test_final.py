"""The delivered model: the step model as a model file, the choice against the full surrogate,
the stated figures, and ``esm check`` on fake devices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm import spaces
from esm.build import BuildConfig, CsvOracle, _RidgeSurrogate, build
from esm.cli import main
from esm.errors import InputError
from esm.final import finalize, step_surrogate
from esm.measure import Measurement, Settings
from esm.sampling import RidgeModel, feature_sets, features


@pytest.mark.parametrize("name", spaces.names())
def test_step_model_file_predicts_what_the_step_model_predicts(name: str,
                                                               tmp_path: Path) -> None:
    """Every feature set of every space: the converted file (compiled and NumPy paths, and
    after a save/load round trip) predicts the step model's latencies to 1e-12."""
    sp = spaces.get(name)
    g = sp.sample(120, seed=1)
    y = 1 + sp.costs(g).macs / 1e8 * (1 + 0.1 * np.random.default_rng(0).random(120))
    probe = sp.sample(300, seed=2)
    for fs in feature_sets(sp):
        step = _RidgeSurrogate(sp)
        step.model_, step.feature_set_ = RidgeModel().fit(features(sp, g, fs), y), fs
        sur = step_surrogate(sp, step, g, y)
        want = step.predict(probe)
        assert sur.compile_error is None or sur.compile() is not None
        np.testing.assert_allclose(sur.predict(probe), want, rtol=1e-12)
        np.testing.assert_allclose(sur.predict_reference(probe), want, rtol=1e-12)
        sur.save(tmp_path / f"{fs}.esm")
        from esm.surrogate import load

        back = load(tmp_path / f"{fs}.esm")
        np.testing.assert_allclose(back.predict(probe), want, rtol=1e-12)
        assert back.info["model"]["params"]["feature_set"] == fs
        assert back.trained_on(g).all()


@pytest.fixture(scope="module")
def csv_oracle(data_dir: Path) -> CsvOracle:
    return CsvOracle(spaces.get("ofa-mbv3"), data_dir / "ofa_mbv3_gpu.csv", "lat_titan_xp_64")


def test_finalize_saves_the_better_of_both_and_states_its_figures(csv_oracle: CsvOracle,
                                                                    tmp_path: Path) -> None:
    cfg = BuildConfig(strategy="random", target_mape=None, budget_samples=90, val_size=25,
                      seed=0)
    res, step = build(csv_oracle, cfg)
    step_mape = res["mape"]
    sur = finalize(res, step, csv_oracle, model="ridge")
    sel = res["model"]["selection"]
    assert sel["on"] == "validation set" and set(sel["candidates"]) == {"step", "fcc/ridge"}
    scores = {k: v["validation_mape"] for k, v in sel["candidates"].items()}
    assert sel["chosen"] == min(scores, key=lambda k: (scores[k], k != "step"))
    # never worse on validation than the step model it replaces
    assert scores[sel["chosen"]] <= scores["step"]
    # one model, one number: the headline and the plots' rows are the saved model's
    met = sur.info["metrics"]["validation"]
    assert met["on"] == "unmeasured rows" and res["mape"] == met["mape"]
    assert res["step_model"]["mape"] == step_mape
    meas = np.asarray(res["measured"]["train"] + res["measured"]["validation"])
    rest = np.setdiff1d(np.arange(len(csv_oracle.pool)), meas)
    pred = sur.predict(csv_oracle.pool.genomes[rest])
    assert met["mape"] == pytest.approx(100 * np.mean(np.abs(pred / csv_oracle.truth[rest] - 1)))
    np.testing.assert_allclose(res["predictions"]["predicted"], pred[:5000], rtol=1e-12)
    assert res["model"]["validation"] == {"used": "raw", "raw": met["mape"],
                                          "corrected": met["mape"]}
    assert len(sur.info["build"]["validation_archs"]) == 25
    # --final step / surrogate keep one candidate
    only = finalize(dict(res), step, csv_oracle, choice="step")
    assert only.info["model"]["name"] == "step"
    with pytest.raises(InputError):
        finalize(res, step, csv_oracle, choice="nope")


def test_step_model_wins_when_the_full_surrogate_is_worse(csv_oracle: CsvOracle) -> None:
    """A full surrogate on the one-hot genes alone (no costs) loses to the step model on
    validation, and the step model is saved."""
    cfg = BuildConfig(strategy="random", target_mape=None, budget_samples=90, val_size=25)
    res, step = build(csv_oracle, cfg)
    sur = finalize(res, step, csv_oracle, encoding="onehot", model="ridge")
    assert res["model"]["chosen"] == "step" and sur.info["model"]["name"] == "step"
    assert res["model_kind"].startswith("step model")


# ------------------------------------------------------------------------- esm check
class Fake:
    """A device whose latency is the MACs-based truth times noise (one call, one draw)."""

    def __init__(self, space: Any, noise: float, seed: int = 0) -> None:
        self.space, self.noise = space, noise
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def truth(self, g: np.ndarray) -> np.ndarray:
        g = np.atleast_2d(g)
        c = self.space.costs(g)
        return 1.0 + c.macs / 1e8 + c.activation_bytes / 2e7

    def __call__(self, g: np.ndarray, settings: Settings) -> Measurement:
        self.calls += 1
        v = float(self.truth(g)[0]) * float(np.exp(self.noise * self.rng.standard_normal()))
        return Measurement.from_samples(np.full(5, v), settings)


def _model(space: Any, fake: Fake, stated: float, tmp_path: Path, bias: float = 1.0) -> Path:
    g = space.sample(200, seed=11)
    y = fake.truth(g) * bias
    step = _RidgeSurrogate(space).fit(g, y)
    sur = step_surrogate(space, step, g, y)
    sur.info["metrics"]["validation"] = {"mape": stated, "ape95": 3 * stated, "acc10": 90.0,
                                         "n": 30, "on": "validation set"}
    sur.info["target"]["measurement"] = {"device": "cpu", "batch_size": 1, "threads": 1,
                                         "settings": Settings.quick().to_dict()}
    path = tmp_path / f"m{stated}.esm"
    sur.save(path)
    return path


def test_check_within_and_outside_the_stated_error(tmp_path: Path) -> None:
    from esm.check import check, within_stated

    space = spaces.get("ofa-mbv3")
    fake = Fake(space, noise=0.02)
    honest = _model(space, fake, stated=2.5, tmp_path=tmp_path)
    r = check(honest, n=40, seed=1, measure=fake, warmup=None)
    assert r["n"] == 40 and r["rounds"] == 2 and fake.calls == 2 * 40 + 3
    assert 0.5 < r["repeat"]["mean"] < 5  # two draws of 2% noise
    assert r["within_stated"] and r["ratio_within_3pct"]
    assert r["fresh"]["mape"] == pytest.approx(np.mean(np.abs(
        [row["predicted_ms"] / np.sqrt(np.prod(row["measured_ms"])) - 1
         for row in r["rows"]])) * 100)
    # fresh networks are never training or validation networks, and depend on the seed
    from esm.surrogate import load

    sur = load(honest)
    fresh = space.from_strs([row["arch"] for row in r["rows"]])
    assert not sur.trained_on(fresh).any()
    assert r["rows"][0]["arch"] != check(honest, n=5, seed=2, measure=fake,
                                         warmup=None)["rows"][0]["arch"]
    # a model stating 1% when it is 10% off is outside
    boast = _model(space, fake, stated=1.0, tmp_path=tmp_path, bias=1.1)
    r2 = check(boast, n=30, measure=fake, warmup=None)
    assert not r2["within_stated"] and r2["limit"] == pytest.approx(
        1.25 * 1.0 + 0.5 + r2["repeat"]["mean"])
    assert r2["fresh"]["median_ratio"] == pytest.approx(1.1, rel=0.02)
    assert within_stated(3.0, 2.0, 0.5) and not within_stated(3.1, 2.0, 0.0)


def test_check_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    import esm.check

    space = spaces.get("ofa-mbv3")
    fake = Fake(space, noise=0.01)
    monkeypatch.setattr(esm.check, "_device_measure", lambda *a: fake)
    honest = _model(space, fake, stated=2.0, tmp_path=tmp_path)
    boast = _model(space, fake, stated=1.0, tmp_path=tmp_path, bias=1.1)
    assert main(["check", "--model", str(honest), "--n", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["within_stated"] and out["stated"]["mape"] == 2.0 and out["warmup"]["steady"]
    assert main(["check", "--model", str(boast), "--n", "20"]) == 1
    text = capsys.readouterr().out
    assert "OUTSIDE the stated error" in text and "stated" in text
    assert main(["check", "--model", str(tmp_path / "missing.esm")]) == 2
    assert main(["check", "--model", str(honest), "--n", "1"]) == 2
    # a dataset-file model does not say which device: --device is needed
    from esm.surrogate import load

    sur = load(honest)
    del sur.info["target"]["measurement"]
    sur.save(tmp_path / "nodev.esm")
    assert main(["check", "--model", str(tmp_path / "nodev.esm")]) == 2
    assert "--device" in capsys.readouterr().err


def test_refit_on_every_measured_network_keeps_the_stated_error_honest(
        csv_oracle: CsvOracle) -> None:
    """The chosen model is refitted on training + validation networks with the features it
    chose. On a dataset file its error is stated on the rows nobody measured; on a device
    (no truth) the stated figure is the validation error of the same kind fitted without the
    validation networks, i.e. the figure that chose it, never an in-sample one."""
    import copy

    cfg = BuildConfig(strategy="random", target_mape=None, budget_samples=90, val_size=25,
                      seed=1)
    res, step = build(csv_oracle, cfg)
    meas = res["measured"]
    tr, va = np.asarray(meas["train"]), np.asarray(meas["validation"])
    g = csv_oracle.pool.genomes
    kept = finalize(dict(res), step, csv_oracle, choice="step", refit=False)
    assert kept.trained_on(g).sum() == tr.size
    out = dict(res)
    sur = finalize(out, step, csv_oracle, choice="step")
    assert out["model"]["trained_on"] == {"networks": tr.size + va.size, "refit": True}
    assert sur.trained_on(g).sum() == tr.size + va.size == 90
    assert sur.measured_on(g).sum() == 90
    assert sur.info["model"]["params"]["feature_set"] == step.feature_set_
    # the refit is the step model's ridge on every measured network, nothing else
    want = RidgeModel().fit(features(csv_oracle.space, g[np.r_[tr, va]], step.feature_set_),
                            np.r_[meas["y_train"], meas["y_validation"]])
    probe = csv_oracle.space.sample(50, seed=4)
    np.testing.assert_allclose(
        sur.predict(probe), want.predict(features(csv_oracle.space, probe, step.feature_set_)),
        rtol=1e-9)
    # dataset file: stated on the unmeasured rows only
    rest = csv_oracle.unmeasured(np.asarray(meas["all"]))
    met = sur.info["metrics"]["validation"]
    assert met["on"] == "unmeasured rows" and met["n"] == rest.size
    assert met["mape"] == pytest.approx(
        100 * np.mean(np.abs(sur.predict(g[rest]) / csv_oracle.truth[rest] - 1)))
    # device: the validation figure of the model fitted on the training networks
    device = copy.copy(csv_oracle)
    device.truth = None
    out2 = dict(res)
    dev = finalize(out2, step, device, choice="step")
    stated = dev.info["metrics"]["validation"]
    assert stated["on"] == "validation set" and "refitted" in stated["model"]
    assert stated["mape"] == pytest.approx(
        100 * np.mean(np.abs(kept.predict(g[va]) / np.asarray(meas["y_validation"]) - 1)))
    np.testing.assert_allclose(dev.predict(probe), sur.predict(probe), rtol=1e-12)
