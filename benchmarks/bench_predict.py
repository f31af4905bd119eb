"""Compiled predictor vs. scikit-learn: genomes -> latency for 1,000,000 random ofa-mbv3 genomes.

For each regressor family, trained on real latencies (../shared/data/ofa_mbv3_gpu.csv), this
prints in one run:

* ``compiled/s``  genomes -> latency through the fused C++ pipeline (costs when the encoding
  needs them, compiled encoder, model), all cores;
* ``sklearn/s``   the same model's own ``predict`` on precomputed standardised features (measured
  on ``--sk-rows`` rows, as a rate), and ``ratio`` = compiled / sklearn;
* ``pyfeat/s``    the Python encoder (``encoder.transform``: costs + NumPy) and ``cfeat/s`` the
  compiled encoder alone, genomes -> features;
* peak memory of the compiled call: Python-side peak (tracemalloc) and the process's peak RSS
  growth (getrusage);
* a last row, ``folded default (huber, fcc)``: the model the defaults of ``esm train`` fit
  (``fcc`` features, huber on the identity target), which the predictor folds into lookup
  tables: its compiled rate, whether it folded and the same model unfolded.

Usage: python benchmarks/bench_predict.py [--n 1000000] [--sk-rows 100000] [--threads 0]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import resource
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from esm import spaces
from esm.predictor import Predictor
from esm.predictor.convert import from_estimator
from esm.surrogate import encoders

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ofa_mbv3_gpu.csv"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _train_data(space: Any, rows: int, column: str) -> tuple[np.ndarray, np.ndarray]:
    if DATA.is_file():
        with DATA.open(newline="") as fh:
            recs = [r for r in csv.DictReader(fh) if r.get(column)]
        recs = recs[:rows]
        g = space.from_strs([r["arch"] for r in recs])
        y = np.array([float(r[column]) for r in recs])
        return g, y
    g = space.sample(rows, seed=1)  # synthetic fallback: a cost model with noise
    c = space.costs(g)
    y = 1e-8 * c.macs + 2e-7 * c.activation_bytes + 0.05 * c.layers
    return g, y * np.exp(np.random.default_rng(0).normal(0, 0.03, rows))


def fit_compiled(enc: Any, est: Any, g_train: np.ndarray,
                 y_train: np.ndarray) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Fit ``est`` on the standardised features of ``enc`` (log latency); returns it, its
    compiled model and the standardisation."""
    X = enc.transform(g_train)
    mean, scale = X.mean(0), X.std(0)
    scale[scale <= 1e-12] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit((X - mean) / scale, np.log(y_train))
    return est, from_estimator(est, x_mean=mean, x_scale=scale, target="log"), mean, scale


def _families(have_lgb: bool, have_xgb: bool) -> list[tuple[str, str, Any]]:
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor

    fams: list[tuple[str, str, Any]] = [
        ("lut (ridge, onehot)", "lut", lambda: Ridge(alpha=1.0)),
        ("linear (ridge, fcc)", "fcc", lambda: Ridge(alpha=1.0)),
        ("gbt 200x d8 (onehot)", "onehot",
         lambda: GradientBoostingRegressor(n_estimators=200, max_depth=8, subsample=0.8,
                                           random_state=0)),
        ("gbt 200x d8 (fcc)", "fcc",
         lambda: GradientBoostingRegressor(n_estimators=200, max_depth=8, subsample=0.8,
                                           random_state=0)),
        ("random forest 100 (onehot)", "onehot",
         lambda: RandomForestRegressor(n_estimators=100, max_depth=12, n_jobs=-1,
                                       random_state=0)),
        ("extra trees 100 (onehot)", "onehot",
         lambda: ExtraTreesRegressor(n_estimators=100, max_depth=12, n_jobs=-1, random_state=0)),
        ("hist gbt 200 (onehot)", "onehot",
         lambda: HistGradientBoostingRegressor(max_iter=200, random_state=0)),
        ("mlp 64-64 (fcc)", "fcc",
         lambda: MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=300, random_state=0)),
        ("knn k5 distance (stats)", "stats",
         lambda: KNeighborsRegressor(n_neighbors=5, weights="distance")),
        ("gp rbf (stats)", "stats",
         lambda: GaussianProcessRegressor(C() * RBF(np.ones(8)) + WhiteKernel(),
                                          normalize_y=True, random_state=0)),
    ]
    if have_lgb:
        import lightgbm

        fams.append(("lightgbm 200 (onehot)", "onehot",
                     lambda: lightgbm.LGBMRegressor(n_estimators=200, num_leaves=63, verbose=-1)))
    if have_xgb:
        import xgboost

        fams.append(("xgboost 200x d8 (onehot)", "onehot",
                     lambda: xgboost.XGBRegressor(n_estimators=200, max_depth=8)))
    return fams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="genomes to predict")
    ap.add_argument("--sk-rows", type=int, default=100_000, help="rows for the sklearn rate")
    ap.add_argument("--train", type=int, default=2000, help="training rows")
    ap.add_argument("--column", default="lat_2080ti_32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed passes per rate; the best is reported (shared, noisy machine)")
    ap.add_argument("--only", default="", help="comma-separated substrings of family names")
    args = ap.parse_args()

    import importlib.util

    have_lgb = importlib.util.find_spec("lightgbm") is not None
    have_xgb = importlib.util.find_spec("xgboost") is not None
    space = spaces.get("ofa-mbv3")
    g_train, y_train = _train_data(space, args.train, args.column)
    genomes = space.sample(args.n, seed=123)
    sk_rows = min(args.sk_rows, args.n)
    print(f"ofa-mbv3: {args.n:,} random genomes; trained on {len(g_train)} rows of "
          f"{args.column}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    # Encoders: Python vs compiled, genomes -> features.
    feat: dict[str, tuple[float, float]] = {}
    enc_cache: dict[str, Any] = {}
    for name in ("lut", "onehot", "stats", "fcc"):
        enc = encoders.get_encoder(name, space)
        enc_cache[name] = enc
        t = time.perf_counter()
        enc.transform(genomes[:sk_rows])
        py_rate = sk_rows / (time.perf_counter() - t)
        from esm.predictor import plan

        f = plan.fused(enc)
        t = time.perf_counter()
        f.encode(genomes[:sk_rows], args.threads)
        c_rate = sk_rows / (time.perf_counter() - t)
        feat[name] = (py_rate, c_rate)
    t = time.perf_counter()
    space.costs(genomes[:sk_rows], threads=args.threads)
    cost_rate = sk_rows / (time.perf_counter() - t)
    print(f"cost kernel alone: {cost_rate:,.0f} genomes/s")

    hdr = (f"{'family':<28} {'compiled/s':>12} {'sklearn/s':>11} {'ratio':>7} "
           f"{'pyfeat/s':>10} {'cfeat/s':>10} {'pymem MB':>9} {'rss+ MB':>8} {'nodes':>7}")
    print(hdr)
    print("-" * len(hdr))
    only = [s for s in args.only.split(",") if s]
    for label, encoding, make in _families(have_lgb, have_xgb):
        if only and not any(s in label for s in only):
            continue
        enc = enc_cache[encoding]
        est, model, mean, scale = fit_compiled(enc, make(), g_train, y_train)
        pred = Predictor(model, enc)
        pred.predict(genomes[:1000], threads=args.threads)  # warm up
        tracemalloc.start()
        rss0 = _rss_mb()
        c_time = math.inf
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            out = pred.predict(genomes, threads=args.threads)
            c_time = min(c_time, time.perf_counter() - t)
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = _rss_mb() - rss0
        Xs = (enc.transform(genomes[:sk_rows]) - mean) / scale
        sk_time = math.inf
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            ref = est.predict(Xs)
            sk_time = min(sk_time, time.perf_counter() - t)
        sk_rate = sk_rows / sk_time
        err = float(np.max(np.abs(out[:sk_rows] - np.exp(ref)) / np.exp(ref)))
        tol = 1e-4 if "xgboost" in label else 1e-6
        assert err < tol, f"{label}: compiled differs from the estimator by {err:.2e}"
        c_rate = args.n / c_time
        nodes = len(model.arrays["feature"]) if model.kind == "trees" else 0
        py, cf = feat[encoding]
        print(f"{label:<28} {c_rate:>12,.0f} {sk_rate:>11,.0f} {c_rate / sk_rate:>6.1f}x "
              f"{py:>10,.0f} {cf:>10,.0f} {py_peak / 2**20:>9.1f} {rss_growth:>8.1f} "
              f"{nodes:>7}", flush=True)
    if not only or any(s in FOLDED_LABEL for s in only):
        folded_default_row(space, g_train, y_train, genomes, sk_rows, args.threads,
                           args.repeat, feat["fcc"])
    print("compiled/s: genomes -> latency (fused C++; folded tables where the model folds); "
          "sklearn/s: estimator.predict on precomputed features (folded default: the NumPy "
          "reference model); pyfeat/cfeat: Python/compiled encoder, genomes -> features.")


#: Label of the row of the default model that ``esm train`` fits and the predictor folds.
FOLDED_LABEL = "folded default (huber, fcc)"


def folded_default_row(space: Any, g_train: np.ndarray, y_train: np.ndarray,
                       genomes: np.ndarray, sk_rows: int, threads: int, repeat: int,
                       feat: tuple[float, float]) -> None:
    """The row of the folded default: ``Surrogate.fit`` with fcc features and the huber model
    on the identity target (what the defaults of ``esm train`` choose on this data and what
    :class:`Predictor` folds into lookup tables), compiled rate with the fold, then a line with
    whether it folded, the same model unfolded (fused costs + encode + dot) and the largest
    relative difference from the NumPy reference."""
    from esm.predictor import compile as compile_predictor
    from esm.predictor import plan, reference
    from esm.surrogate import Surrogate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sur = Surrogate.fit(space, g_train, y_train, encoding="fcc", model="huber",
                            model_params={"target": "identity"}, seed=0)
    pred = compile_predictor(sur)
    unfolded = plan.fused(sur.encoder, pred.model.compile())
    n = len(genomes)

    def best(fn: Any) -> tuple[float, Any]:
        t_best, out = math.inf, None
        for _ in range(max(1, repeat)):
            t = time.perf_counter()
            out = fn()
            t_best = min(t_best, time.perf_counter() - t)
        return t_best, out

    pred.predict(genomes[:1000], threads=threads)  # warm up
    tracemalloc.start()
    rss0 = _rss_mb()
    c_time, out = best(lambda: pred.predict(genomes, threads=threads))
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = _rss_mb() - rss0
    u_time, _ = best(lambda: unfolded.predict(genomes, threads, 65536))
    X = sur.encoder.transform(genomes[:sk_rows])
    r_time, ref = best(lambda: reference.predict(pred.model, X))
    err = float(np.max(np.abs(out[:sk_rows] - ref) / np.abs(ref)))
    assert err < 1e-6, f"{FOLDED_LABEL}: compiled differs from the reference by {err:.2e}"
    c_rate, r_rate = n / c_time, sk_rows / r_time
    py, cf = feat
    print(f"{FOLDED_LABEL:<28} {c_rate:>12,.0f} {r_rate:>11,.0f} {c_rate / r_rate:>6.1f}x "
          f"{py:>10,.0f} {cf:>10,.0f} {py_peak / 2**20:>9.1f} {rss_growth:>8.1f} "
          f"{0:>7}", flush=True)
    how = "yes (lookup tables)" if pred.folded else f"no ({pred.fold_reason})"
    print(f"  folded default: folded {how}; model {pred.model.kind}, target "
          f"{pred.model.target}; the same model unfolded (fused costs + encode + dot) "
          f"{n / u_time:,.0f}/s, folded/unfolded {u_time / c_time:.1f}x; max rel diff vs the "
          f"NumPy reference {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
