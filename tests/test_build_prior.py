"""``esm build --prior``: the budget counts every measured network, the prior never holds the
target, the model file lists every measured network and ``esm evaluate`` never scores one;
device builds and the demo use the packaged prior unless ``--no-prior``."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

import esm
from esm.build import prior_config
from esm.cli import main
from esm.errors import InputError

pytest.importorskip("sklearn")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def files(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """600 nb201 rows: the target (titanx_256) alone, and a prior file that also holds the
    target column and a renamed copy of it."""
    with open(data_dir / "nb201_latency.csv", newline="") as fh:
        rows = list(csv.reader(fh))[:601]
    head, body = rows[0], rows[1:]
    t = head.index("lat_titanx_256")
    d = tmp_path_factory.mktemp("prior")
    with open(d / "target.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["arch", "lat_titanx_256"], *([r[0], r[t]] for r in body)])
    with open(d / "prior.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([[*head, "lat_copy"], *([*r, r[t]] for r in body)])
    return {"target": d / "target.csv", "prior": d / "prior.csv", "dir": d}


def test_issue_flow_budget_and_held_out_evaluation(files: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = files["dir"] / "m.esm"
    res = _cli(capsys, "build", "--from-csv", str(files["target"]), "--target",
               "lat_titanx_256", "--space", "nb201", "--prior", str(files["prior"]),
               "--budget-samples", "10", "--out", str(model), "--json")
    assert res["samples_used"] == 10 and res["strategy"] == "transfer"
    report = (files["dir"] / "m-report" / "report.md").read_text()  # it says what the prior is
    assert "- prior: 15 devices (lat_1080ti_1, " in report and "`prior.csv`" in report
    assert "lat_copy (same values as the target)" in report
    # the estimate it stops on is the posterior's, not a pessimistic cross-validation
    assert prior_config(lookup=True).validation == "posterior"
    assert prior_config().validation == "holdout+posterior"
    assert 0 < res["mape_estimate"] < 3 * res["mape_true"]
    assert "transfer model" in res["model"]["kind"]
    sur = esm.load(model)
    prior = sur.info["model"]["prior"]
    assert "lat_titanx_256" not in prior["columns"] and "lat_copy" not in prior["columns"]
    assert any("lat_copy" in d for d in prior["dropped"])
    assert len(prior["columns"]) == 15
    ev = _cli(capsys, "evaluate", "--model", str(model), "--data", str(files["target"]),
              "--target", "lat_titanx_256", "--json")
    assert ev["n"] == 600 - 10 and ev["excluded_measured_rows"] == 10
    assert ev["spearman"] > 0.95 and ev["mape"] < 5  # 10 networks and the prior


def test_evaluation_never_scores_a_network_the_build_measured(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """A build without a prior (holdout + training networks) and one with a prior: every
    network the build measured is in the file, and evaluate excludes exactly those."""
    for extra in ([], ["--prior", str(files["prior"]), "--validation", "holdout+cv",
                       "--val-size", "6"]):
        model = files["dir"] / f"m{len(extra)}.esm"
        res = _cli(capsys, "build", "--from-csv", str(files["target"]), "--target",
                   "lat_titanx_256", "--space", "nb201", "--budget-samples", "30",
                   "--target-mape", "0.01", "--out", str(model), "--no-report", "--json",
                   *extra)
        assert res["val_samples"] > 0
        sur = esm.load(model)
        space = esm.spaces.get("nb201")
        with open(files["target"], newline="") as fh:
            archs = [r[0] for r in list(csv.reader(fh))[1:]]
        g = space.from_strs(archs)
        measured = sur.measured_on(g)
        assert measured.sum() == res["samples_used"] == 30
        assert res["train_samples"] < 30  # the loop trained on the training networks only
        # the chosen model is refitted on every measured network once validation stated it
        assert sur.trained_on(g).sum() == res["model"]["trained_on"]["networks"] == 30
        ev = _cli(capsys, "evaluate", "--model", str(model), "--data", str(files["target"]),
                  "--target", "lat_titanx_256", "--json")
        assert ev["n"] == 600 - 30 and ev["excluded_measured_rows"] == 30


def test_prior_of_only_the_target_is_refused(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["build", "--from-csv", str(files["target"]), "--target", "lat_titanx_256",
               "--space", "nb201", "--prior", str(files["target"]), "--budget-samples", "10",
               "--no-report", "--json"])
    assert rc == 2 and "no usable prior column" in capsys.readouterr().err
    rc = main(["build", "--from-csv", str(files["target"]), "--target", "lat_titanx_256",
               "--space", "nb201", "--prior", str(tmp_path / "nope.csv"),
               "--budget-samples", "10", "--no-report"])
    assert rc == 2 and "no such prior file" in capsys.readouterr().err


def test_device_build_uses_the_packaged_prior(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A fake device (latency from MACs and layers, 2% noise): the packaged nb201 prior is
    used by default and every network counts against the budget; --no-prior builds from
    zero."""
    pytest.importorskip("torch")
    from esm.measure import Measurement
    from esm.measure.warmup import WarmupRule
    from esm.oracles import DeviceOracle

    rng = np.random.default_rng(0)

    def fake(self: DeviceOracle, g: np.ndarray, settings: object) -> tuple[Measurement, tuple]:
        c = self.space.costs(g[None])
        v = (0.5 + c.macs[0] / 2e7 + 0.01 * c.layers[0]) * float(np.exp(0.02 *
                                                                        rng.standard_normal()))
        return Measurement.from_samples(np.full(5, v), settings), (1, 3, 32, 32)

    monkeypatch.setattr(DeviceOracle, "_measure_one", fake)
    monkeypatch.setattr(WarmupRule, "for_device",
                        classmethod(lambda cls, d: cls(min_s=0.0, max_s=1.0, tol=0.1)))
    common = ["build", "--space", "nb201", "--device", "cpu", "--pool-size", "400",
              "--budget-samples", "24", "--target-mape", "0.01", "--no-report", "--json"]
    res = _cli(capsys, *common, "--store", str(tmp_path / "a.sqlite"), "--out",
               str(tmp_path / "a.esm"))
    assert res["strategy"] == "transfer" and res["samples_used"] == 24
    assert len(res["prior"]["columns"]) == 16  # the packaged nb201 prior
    sel = res["model"]["selection"]
    assert sel["on"] == "validation set" and "step" in sel["candidates"]  # transfer vs fcc
    sur = esm.load(tmp_path / "a.esm")
    assert sur.measured_on(sur.train_genomes).all()
    # the holdout, listed (trained on since the refit of the chosen model on every network)
    val = sur.space.from_strs(sur.info["build"]["validation_archs"])
    assert len(val) >= 8 and sur.measured_on(val).all()
    assert len(sur.measured_genomes) + len(sur.train_genomes) >= 24  # + the drift reference
    chosen = res["model"]["chosen"]  # both are at the device's noise here: either may win
    assert sur.info["metrics"]["validation"]["mape"] == pytest.approx(
        res["mape_estimate"] if chosen == "step" else sel["candidates"][chosen]["validation_mape"])
    # the transfer model states the build's figure
    res = _cli(capsys, *common, "--store", str(tmp_path / "s.sqlite"), "--out",
               str(tmp_path / "s.esm"), "--final", "step")
    stated = esm.load(tmp_path / "s.esm").info["metrics"]["validation"]
    assert res["model"]["chosen"] == "step"
    assert "posterior" in stated["on"] and "mape_holdout" in stated
    assert stated["mape"] == pytest.approx(res["mape_estimate"])
    res0 = _cli(capsys, *common, "--store", str(tmp_path / "b.sqlite"), "--out",
                str(tmp_path / "b.esm"), "--no-prior")
    assert res0["strategy"] != "transfer" and res0["samples_used"] <= 24
    assert res0.get("prior") is None


def test_device_build_says_when_the_packaged_prior_cannot_be_used(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A wheel without the packaged file: the device build warns and builds from zero."""
    from esm import prior
    from esm.cli.build import _prior

    monkeypatch.setitem(prior.PACKAGED, "nb201", "gone.csv.gz")
    args = argparse.Namespace(prior=None, device="cpu", no_prior=False, from_csv=None,
                              target=None)
    assert _prior(args, esm.spaces.get("nb201"), None, print) is None
    assert "warning: no prior: the packaged nb201 prior" in capsys.readouterr().err
    args.no_prior = True  # asked for: nothing to warn about
    assert _prior(args, esm.spaces.get("nb201"), None, print) is None
    assert capsys.readouterr().err == ""


def test_prior_packaged_names_the_packaged_prior(files: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--prior packaged`` is the space's packaged prior, alone or beside a user's file
    (whose copies of packaged columns count once); where there is none, a clear error."""
    from esm import prior
    from esm.cli.build import _prior

    space, csv_oracle = esm.spaces.get("nb201"), argparse.Namespace(truth=None)
    args = argparse.Namespace(prior=["packaged"], device=None, no_prior=False,
                              from_csv="t.csv", target="lat_titanx_256")
    alone = _prior(args, space, csv_oracle, print).prior
    assert alone.columns == prior.load(space, [prior.packaged("nb201")],
                                       exclude=["lat_titanx_256"]).columns
    args.prior = ["packaged", str(files["prior"])]
    both = _prior(args, space, csv_oracle, print).prior
    assert both.columns == [*alone.columns, "lat_copy"]  # the file's other columns are copies
    assert sum("a copy of" in d for d in both.dropped) == 15
    monkeypatch.setitem(prior.PACKAGED, "nb201", "gone.csv.gz")
    with pytest.raises(InputError, match="--prior packaged: the packaged nb201 prior"):
        _prior(args, space, csv_oracle, print)
    monkeypatch.delitem(prior.PACKAGED, "nb201")
    with pytest.raises(InputError, match="nb201 has none"):
        _prior(args, space, csv_oracle, print)
    capsys.readouterr()


def test_demo_learns_from_the_packaged_prior(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first command on a fake CPU (latency from the costs, 2% noise) with the
    packaged ofa-mbv3 prior: it reaches the target with a few dozen networks."""
    pytest.importorskip("torch")
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
                   search_seconds=1.0)
    assert res["strategy"] == "transfer" and len(res["prior"]["columns"]) == 6
    assert res["stop_reason"] == "target" and res["samples_used"] <= 40
    sur = esm.load(res["model_file"])
    assert res["mape"] == sur.info["metrics"]["validation"]["mape"] <= 5.0
    assert res["search"]["found"]


@pytest.mark.parametrize("true,says", [(7.35, "the true MAPE on the unmeasured rows, 7.35%, is "
                                               "above it"), (4.0, None), (float("nan"), None)])
def test_output_says_when_the_truth_is_above_a_target_the_estimate_reached(
        capsys: pytest.CaptureFixture[str], true: float, says: str | None) -> None:
    """On a dataset file the truth is known: a build that stopped on its estimate says so
    when the truth is above the target (a device build, NaN truth, cannot), in its output
    and its report."""
    from esm.cli.build import _emit
    from esm.report import target_outcome

    result = {"space": "nb201", "strategy": "transfer", "samples_used": 10, "measurements": 10,
              "train_samples": 10, "val_samples": 0, "mape": true, "mape_estimate": 2.87,
              "mape_true": true, "target_mape": 5.0, "target_reached": True,
              "stop_reason": "target", "seconds": {"total": 0.1}}
    _emit(result, as_json=False)
    out = capsys.readouterr().out
    assert "reached by the build's estimate 2.87% (stopped: target)" in out
    assert target_outcome(result) in out
    assert (says in out) if says else "true MAPE" not in out
