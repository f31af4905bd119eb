"""The prior-less default build at a fixed budget: true error, stated error, and a stage ridge.

For every chosen dataset column, ``esm build --from-csv`` without a prior (the default strategy,
step model and final choice; validation ``holdout+cv`` with 25 networks) measures exactly
``--budget`` networks (``--target-mape`` tiny), for ``--seeds`` seeds, and this script reports,
mean over seeds:

- ``true``: MAPE and Spearman rho of the delivered model on every row the build did not
  measure (what the model file states on a dataset file);
- ``stated``: the MAPE the same model file would state on a device, where no truth is known
  (:func:`esm.final.finalize` on the same build with the oracle's truth hidden: the validation
  networks' figure), and ``stated / true`` (issue 15: a stated error is a promise, so the
  ratio should be near 1 and not far below);
- ``stage ridge`` (spaces with stages): :class:`esm.sampling.RidgeModel` on
  :func:`esm.sampling.features` ``"stages"`` of ``--budget`` uniformly random networks, all of
  them trained on (``benchmarks/transfer.py``'s ``stage_ridge``, the reference of issue 17);
- which model the build saved (``step`` or the full surrogate) and the step model's features.

It uses only :func:`esm.build.build` and :func:`esm.final.finalize` as ``esm build`` calls
them, so the same script measures an older esm (put it first on ``PYTHONPATH``) for a
before/after comparison. Results are cached per column and seed in ``--cache`` (JSON, keyed
by ``--tag``), so an interrupted run resumes.

Usage::

    PYTHONPATH=python python benchmarks/noprior.py [--seeds 5] [--budget 100]
        [--columns ofa-mbv3:lat_titan_xp_64,nb201:lat_titanx_256,...] [--tag after]
        [--cache /tmp/noprior-cache.json] [--markdown out.md]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import esm  # noqa: E402
from esm.build import BuildConfig, build  # noqa: E402
from esm.final import finalize  # noqa: E402
from esm.oracles import CsvOracle  # noqa: E402
from esm.sampling import RidgeModel, features, stages  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {"ofa-mbv3": "ofa_mbv3_gpu.csv", "nb201": "nb201_latency.csv",
         "fbnet": "fbnet_latency.csv", "anb-mnasnet": "mnasnet_anb.csv"}
DEFAULT_COLUMNS = (
    [f"ofa-mbv3:lat_{d}_{b}" for d in ("2080ti", "titan_xp") for b in (1, 32, 64)]
    + ["nb201:lat_titanx_256", "nb201:lat_2080ti_32", "nb201:lat_gold_6240",
       "fbnet:lat_2080ti_64", "fbnet:lat_titanx_32", "fbnet:lat_silver_4210r",
       "anb-mnasnet:lat_zcu102_1", "anb-mnasnet:ms_per_image_tpuv3"])


def mape(y: np.ndarray, p: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(p / y - 1)))


def one(space_name: str, column: str, budget: int, seed: int) -> dict[str, Any]:
    """One build: true and stated figures of the delivered model, and the stage ridge."""
    space = esm.spaces.get(space_name)
    oracle = CsvOracle(space, DATA / FILES[space_name], column)
    assert oracle.truth is not None
    cfg = BuildConfig(budget_samples=budget, target_mape=0.01, seed=seed)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        res, step = build(oracle, cfg)
        device = copy.copy(oracle)
        device.truth = None  # finalize as on a device: the error stated on the validation set
        sur = finalize(res, step, device, seed=seed)
    rest = oracle.unmeasured(np.asarray(res["measured"]["all"], np.int64))
    y = oracle.truth[rest]
    pred = np.asarray(sur.predict(oracle.pool.genomes[rest]), np.float64)
    out: dict[str, Any] = {
        "true_mape": mape(y, pred), "true_rho": float(spearmanr(y, pred).statistic),
        "stated_mape": float(sur.info["metrics"]["validation"]["mape"]),
        "chosen": res["model"]["chosen"], "features": getattr(step, "feature_set_", None),
        "trained_on": int(sur.info["training"]["n"]),
    }
    if stages(space) is not None:
        g, truth = oracle.pool.genomes, oracle.truth
        X = features(space, g, "stages")
        m = np.random.default_rng(seed).choice(len(truth), budget, replace=False)
        r = np.setdiff1d(np.arange(len(truth)), m)
        p = RidgeModel().fit(X[m], truth[m]).predict(X[r])
        out["ridge_mape"] = mape(truth[r], p)
        out["ridge_rho"] = float(spearmanr(truth[r], p).statistic)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--columns", default=",".join(DEFAULT_COLUMNS),
                    help="comma-separated space:column pairs")
    ap.add_argument("--tag", default="after", help="cache key of this esm (before/after)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/noprior-cache.json"))
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    cache: dict[str, Any] = json.loads(args.cache.read_text()) if args.cache.is_file() else {}
    rows = ["| space | column | true MAPE | true ρ | stated MAPE | stated / true | "
            "stage ridge MAPE | stage ridge ρ | saved (step features) |",
            "|---|---|---|---|---|---|---|---|---|"]
    t0 = time.time()
    for pair in args.columns.split(","):
        sname, col = pair.split(":")
        runs = []
        for s in range(args.seeds):
            key = f"{args.tag}|{sname}|{col}|{args.budget}|{s}"
            if key not in cache:
                cache[key] = one(sname, col, args.budget, s)
                args.cache.write_text(json.dumps(cache))
            runs.append(cache[key])

        def mean(k: str, runs: list[dict[str, Any]] = runs) -> float:
            v = [r[k] for r in runs if k in r]
            return float(np.mean(v)) if v else float("nan")
        ratio = float(np.mean([r["stated_mape"] / r["true_mape"] for r in runs]))
        saved: dict[str, int] = {}
        for r in runs:
            k = r["chosen"] + (f" ({r['features']})" if r["chosen"] == "step" else "")
            saved[k] = saved.get(k, 0) + 1
        rows.append(f"| {sname} | {col} | {mean('true_mape'):.3f} | {mean('true_rho'):.4f} | "
                    f"{mean('stated_mape'):.3f} | {ratio:.2f} | {mean('ridge_mape'):.3f} | "
                    f"{mean('ridge_rho'):.4f} | "
                    + ", ".join(f"{k} ×{v}" for k, v in sorted(saved.items())) + " |")
        print(rows[-1], f"[{time.time() - t0:.0f}s]", file=sys.stderr, flush=True)
    text = "\n".join(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
