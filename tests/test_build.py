"""The build loop on a lookup oracle, its stopping rules and cost accounting; the CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from esm import spaces
from esm.build import BuildConfig, CsvOracle, build
from esm.cli import main
from esm.errors import InputError

SPACE = spaces.get("ofa-mbv3")
COLUMN = "lat_titan_xp_64"


@pytest.fixture(scope="module")
def small_csv(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 600 rows of the ofa-mbv3 file."""
    out = tmp_path_factory.mktemp("data") / "ofa600.csv"
    with open(data_dir / "ofa_mbv3_gpu.csv", newline="") as f, open(out, "w", newline="") as g:
        r = csv.reader(f)
        w = csv.writer(g)
        for i, row in enumerate(r):
            if i > 600:
                break
            w.writerow(row)
    return out


@pytest.fixture(scope="module")
def oracle(small_csv: Path) -> CsvOracle:
    return CsvOracle(SPACE, small_csv, COLUMN)


def test_stops_at_target_and_accounts(oracle: CsvOracle) -> None:
    cfg = BuildConfig(strategy="random", target_mape=8.0, initial=20, batch=10, val_size=30)
    res, model = build(oracle, cfg)
    assert res["stop_reason"] == "target" and res["target_reached"]
    assert res["mape_estimate"] <= 8.0
    assert res["samples_used"] == res["train_samples"] + res["val_samples"]
    assert res["val_samples"] == 30
    h = res["history"]
    assert h[0]["train_samples"] == 20
    assert all(b["train_samples"] - a["train_samples"] == 10 for a, b in itertools.pairwise(h))
    # validation networks come in 3 parts with the first batches; the step before the last
    # did not meet the target or had not measured the whole validation set yet
    assert [s["val_samples"] for s in h[:3]] == [10, 20, 30][:len(h)]
    if len(h) > 1:
        assert h[-2]["mape_estimate"] > 8.0 or h[-2]["val_samples"] < 30
    for stage in ("measure", "train", "select", "evaluate", "total"):
        assert res["seconds"][stage] >= 0
    # the lookup's device time is simulated: overhead + repeats * latency for every row
    used = np.concatenate([res["measured"]["train"], res["measured"]["validation"]])
    expect = float(np.sum(oracle.overhead_s + oracle.repeats * oracle.truth[used] / 1000))
    assert res["seconds"]["measure"] == pytest.approx(expect)
    assert res["device_seconds"] == pytest.approx(expect)
    # the true MAPE is over every row not revealed
    rest = np.setdiff1d(np.arange(len(oracle.pool)), used)
    pred = model.predict(oracle.pool.genomes[rest])
    assert res["mape_true"] == pytest.approx(100 * np.mean(np.abs(pred / oracle.truth[rest] - 1)))
    assert len(res["predictions"]["measured"]) == rest.size


def test_stops_at_sample_budget(oracle: CsvOracle) -> None:
    cfg = BuildConfig(strategy="balanced", target_mape=0.01, budget_samples=75, initial=20,
                      batch=20, val_size=20)
    res, _ = build(oracle, cfg)
    assert res["stop_reason"] == "budget" and not res["target_reached"]
    assert res["samples_used"] == 75
    assert [h["train_samples"] for h in res["history"]] == [20, 40, 55]


def test_stops_at_seconds_budget(oracle: CsvOracle) -> None:
    cfg = BuildConfig(strategy="random", target_mape=None, budget_seconds=200.0,
                      validation="cv", initial=10, batch=10)
    res, _ = build(oracle, cfg)
    assert res["stop_reason"] == "budget"
    per = res["device_seconds"] / res["samples_used"]
    assert res["device_seconds"] <= 200.0 + 2 * per
    assert res["val_samples"] == 0
    assert math.isfinite(res["mape_estimate"])


def test_reproducible(oracle: CsvOracle) -> None:
    cfg = BuildConfig(strategy="active", target_mape=None, budget_samples=70, val_size=20)
    a, _ = build(oracle, cfg)
    b, _ = build(oracle, cfg)
    assert a["measured"] == b["measured"] and a["mape"] == b["mape"]


def test_bad_config(oracle: CsvOracle) -> None:
    for cfg in (BuildConfig(target_mape=None), BuildConfig(strategy="nope"),
                BuildConfig(target_mape=-1), BuildConfig(validation="x"),
                BuildConfig(budget_samples=0), BuildConfig(validation="holdout+posterior")):
        with pytest.raises(InputError):
            build(oracle, cfg)


def test_csv_oracle_errors(small_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown column"):
        CsvOracle(SPACE, small_csv, "lat_nope")
    with pytest.raises(InputError, match="no such"):
        CsvOracle(SPACE, tmp_path / "missing.csv", COLUMN)
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,lat\n" + "".join(f"|x~{i}|,1.0\n" for i in range(20)))
    with pytest.raises(InputError, match="not of space"):
        CsvOracle(SPACE, bad, "lat")


def test_gzipped_dataset_csv(small_csv: Path, tmp_path: Path) -> None:
    """A ``.csv.gz`` dataset reads as its CSV; a corrupt or binary one is a clear InputError."""
    import gzip

    gz = tmp_path / "small.csv.gz"
    gz.write_bytes(gzip.compress(small_csv.read_bytes()))
    a, b = CsvOracle(SPACE, small_csv, COLUMN), CsvOracle(SPACE, gz, COLUMN)
    assert np.array_equal(a.pool.genomes, b.pool.genomes) and np.array_equal(a.truth, b.truth)
    (tmp_path / "cut.csv.gz").write_bytes(gz.read_bytes()[:len(gz.read_bytes()) // 2])
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00 not text")
    for bad in ("cut.csv.gz", "bin.csv"):
        with pytest.raises(InputError, match="not a readable dataset CSV"):
            CsvOracle(SPACE, tmp_path / bad, COLUMN)
    from esm.surrogate.dataset import read_latency_csv

    with pytest.raises(InputError, match="cannot be read"):
        read_latency_csv(tmp_path, COLUMN)  # a directory


def test_cli_from_csv_json(small_csv: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    rep = tmp_path / "rep"
    model = tmp_path / "m.esm"
    rc = main(["build", "--from-csv", str(small_csv), "--target", COLUMN, "--space",
               "ofa-mbv3", "--budget-samples", "60", "--target-mape", "4", "--val-size",
               "20", "--report", str(rep), "--out", str(model), "--model", "ridge",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("samples_used", "mape", "target_reached", "seconds"):
        assert key in out
    assert out["samples_used"] <= 60
    assert set(out["seconds"]) >= {"measure", "train", "select", "evaluate", "total"}
    # the saved surrogate loads and predicts; its error is reported on the unmeasured rows
    from esm.surrogate import load

    s = load(model)
    g = SPACE.sample(5, seed=0)
    assert s.predict(g).shape == (5,)
    assert out["model_file"] == str(model) and 0 < out["model_mape"] < 50
    # the chosen model is refitted on every measured network, unless --no-refit
    assert s.train_genomes.shape[0] == out["model"]["trained_on"]["networks"] \
        == out["samples_used"]
    kept = tmp_path / "kept.esm"
    assert main(["build", "--from-csv", str(small_csv), "--target", COLUMN, "--space",
                 "ofa-mbv3", "--budget-samples", "60", "--target-mape", "4", "--val-size",
                 "20", "--no-report", "--out", str(kept), "--model", "ridge", "--json",
                 "--no-refit"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    assert out2["model"]["trained_on"] == {"networks": out2["train_samples"], "refit": False}
    assert load(kept).train_genomes.shape[0] == out2["train_samples"] < out2["samples_used"]
    for f in ("report.md", "build.json", "pred_vs_measured.png", "learning_curve.png",
              "cost.png", "error_hist.png"):
        assert (rep / f).is_file(), f
    # esm report regenerates from the directory
    (rep / "report.md").unlink()
    assert main(["report", str(rep)]) == 0
    assert "learning curve" in (rep / "report.md").read_text().lower()


@pytest.mark.parametrize("argv", [
    ["build", "--space", "ofa-mbv3"],                                    # no source
    ["build", "--space", "ofa-mbv3", "--from-csv", "x.csv"],             # no --target
    ["build", "--space", "nope", "--from-csv", "x.csv", "--target", "c"],
    ["build", "--space", "ofa-mbv3", "--device", "cpu"],                 # no store/out
    ["build", "--space", "ofa-mbv3", "--from-csv", "missing.csv", "--target", "c"],
    ["build", "--space", "ofa-mbv3", "--from-csv", "x.csv", "--target", "c",
     "--strategy", "nope"],
    ["build", "--space", "ofa-mbv3", "--from-csv", "x.csv", "--target", "c",
     "--budget-samples", "5", "--budget-seconds", "3"],
    ["report", "/nonexistent-dir"],
])
def test_cli_bad_input_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors (bad choice, exclusive options)
        rc = int(e.code or 0)
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_cli_cuda_graph_needs_a_cuda_device(tmp_path: Path) -> None:
    from esm.cli.build import _cuda_graph

    assert main(["build", "--space", "ofa-mbv3", "--device", "cpu", "--store",
                 str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "m.esm"),
                 "--cuda-graph"]) == 2
    assert main(["demo", "--device", "cpu", "--dir", str(tmp_path / "d"), "--cuda-graph"]) == 2
    assert sorted(tmp_path.iterdir()) == []  # nothing written
    # on by default for the demo, off for esm build, only ever on CUDA devices
    assert _cuda_graph("cuda", None, True) and not _cuda_graph("cuda:1", None, False)
    assert _cuda_graph("cuda:0", True, False) and not _cuda_graph("cuda", False, True)
    assert not _cuda_graph("cpu", None, True) and not _cuda_graph("cpu", False, True)


def test_cli_bad_column_exit_2(small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--space", "ofa-mbv3", "--from-csv", str(small_csv), "--target",
                 "lat_nope", "--budget-samples", "50"]) == 2
    assert "lat_titan_xp_64" in capsys.readouterr().err


def test_step_model_picks_features_by_loo(data_dir: Path) -> None:
    """NAS-Bench-201 latency needs the operation identities (skip/pool edges have no MACs), and
    an operation costs about the same on every edge: from 12 networks the step model must pick
    the choice counts there (far better than the one-hot genes at that size); on ofa-mbv3,
    whose genes do not share one menu, the cost features summed per stage."""
    from esm.build import _RidgeSurrogate
    from esm.sampling import RidgeModel, features

    if "nb201" not in spaces.names():
        pytest.skip("nb201 space not registered")
    nb = spaces.get("nb201")
    with open(data_dir / "nb201_latency.csv", newline="") as f:
        rows = [r for _, r in zip(range(300), csv.DictReader(f), strict=False)]
    g = nb.from_strs([r["arch"] for r in rows])
    y = np.asarray([float(r["lat_1080ti_256"]) for r in rows])
    m = _RidgeSurrogate(nb).fit(g[:12], y[:12])
    assert m.feature_set_ == "costs+counts"
    err = np.mean(np.abs(m.predict(g[200:]) / y[200:] - 1))
    genes = RidgeModel().fit(features(nb, g[:12], "costs+genes"), y[:12])
    assert err < 0.03
    assert err < 0.5 * np.mean(np.abs(genes.predict(features(nb, g[200:], "costs+genes"))
                                      / y[200:] - 1))

    # ofa-mbv3: from 30 networks, the costs summed per stage (18 features instead of 63)
    with open(data_dir / "ofa_mbv3_gpu.csv", newline="") as f:
        rows = [r for _, r in zip(range(300), csv.DictReader(f), strict=False)]
    g = SPACE.from_strs([r["arch"] for r in rows])
    y = np.asarray([float(r[COLUMN]) for r in rows])
    m = _RidgeSurrogate(SPACE).fit(g[:30], y[:30])
    assert m.feature_set_ == "stages"
    slots = RidgeModel().fit(features(SPACE, g[:30], "costs"), y[:30])
    assert np.mean(np.abs(m.predict(g[100:]) / y[100:] - 1)) < np.mean(
        np.abs(slots.predict(features(SPACE, g[100:], "costs")) / y[100:] - 1))


def test_holdout_plus_cv_pools_both(oracle: CsvOracle) -> None:
    """``holdout+cv``: one mean over the holdout errors and the training set's out-of-fold
    errors; it measures the holdout like ``holdout`` does."""
    from esm.build import _cv_errors, trainer

    cfg = BuildConfig(strategy="random", target_mape=None, budget_samples=80, initial=20,
                      batch=10, validation="holdout+cv", val_size=20, seed=3)
    res, model = build(oracle, cfg)
    assert res["val_samples"] == 20
    assert oracle.truth is not None
    tr = np.asarray(res["measured"]["train"], np.int64)
    va = np.asarray(res["measured"]["validation"], np.int64)
    g = oracle.pool.genomes
    e_val = np.abs(model.predict(g[va]) / oracle.truth[va] - 1.0)
    e_cv = _cv_errors(trainer("ridge", SPACE), g[tr], oracle.truth[tr], cfg.cv_folds, cfg.seed)
    assert e_cv.size == tr.size
    assert res["mape_estimate"] == pytest.approx(100 * np.concatenate([e_val, e_cv]).mean())
    holdout_only = 100 * e_val.mean()
    assert res["mape_estimate"] != pytest.approx(holdout_only)


def test_step_model_one_standard_error_rule() -> None:
    """Latency exactly linear in the per-stage costs plus 1% noise: the minimum leave-one-out
    error may land on a bigger feature set by luck, the one-standard-error rule keeps the
    per-stage costs (fewest features among those as good as the best); ``min`` keeps the
    minimum; ``sets`` limits what is tried."""
    from esm.build import _RidgeSurrogate
    from esm.sampling import RidgeModel, feature_sets, features

    g = SPACE.sample(80, seed=3)
    X = features(SPACE, g, "stages")
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[1])
    noise = np.exp(0.01 * np.random.default_rng(1).standard_normal(80))
    y = (1.0 + X @ w / X.mean(0).sum()) * noise
    one = _RidgeSurrogate(SPACE).fit(g, y)
    mn = _RidgeSurrogate(SPACE, rule="min").fit(g, y)
    assert set(one.loo_scores_) == set(feature_sets(SPACE)) and one.rule == "1se"
    assert mn.feature_set_ == min(mn.loo_scores_, key=mn.loo_scores_.get)
    assert one.feature_set_ == "stages"
    # the rule's paired losses: their mean is the leave-one-out score
    m = RidgeModel().fit(X, y)
    assert np.mean(m.loo_losses()) == pytest.approx(m.loo_)
    only = _RidgeSurrogate(SPACE, sets=["costs"]).fit(g, y)
    assert only.feature_set_ == "costs" and list(only.loo_scores_) == ["costs"]
    with pytest.raises(InputError):
        _RidgeSurrogate(SPACE, rule="max")
    with pytest.raises(InputError):
        _RidgeSurrogate(SPACE, sets=["costs+counts"])  # ofa-mbv3's genes share no menu
