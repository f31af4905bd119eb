"""How far a label-knowing design gets on ofa-mbv3, and what its picks have in common.

A bound for issue 6's goal at tight MAPE targets: each pick is the candidate (of ``--cand``
drawn from the unmeasured rows) whose addition gives the lowest true MAPE on ``--eval`` other
unmeasured rows, with the build's step model (:class:`esm.sampling.RidgeModel` on cost
features). No real strategy can do this (it reads the labels); the point is to see how many
networks the step model needs at best and which networks a perfect chooser measures.

Prints, per seed, the true MAPE on every unmeasured row as the set grows, and for the picks
of the bound, of uniform random and of the default strategy: the share of *outliers* and the
mean absolute relative residual against a fit on all rows (how far each network lies from
the relation the whole file supports).

Usage: ``PYTHONPATH=python python benchmarks/oracle_bound.py [--column lat_2080ti_64]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from esm import spaces
from esm.build import CsvOracle
from esm.sampling import DEFAULT_STRATEGY, RidgeModel, features, get_strategy

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ofa_mbv3_gpu.csv"


def _mape(model: RidgeModel, X: np.ndarray, y: np.ndarray) -> float:
    return float(100.0 * np.mean(np.abs(model.predict(X) / y - 1.0)))


def bound(X: np.ndarray, y: np.ndarray, n: int, cand: int, n_eval: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    train = [int(i) for i in rng.choice(len(y), 5, replace=False)]
    t0 = time.perf_counter()
    while len(train) < n:
        free = np.setdiff1d(np.arange(len(y)), train)
        ev, cs = rng.choice(free, n_eval, replace=False), rng.choice(free, cand, replace=False)
        errs = [_mape(RidgeModel().fit(X[[*train, c]], y[[*train, c]]), X[ev], y[ev]) for c in cs]
        train.append(int(cs[int(np.argmin(errs))]))
        if len(train) % 10 == 0:
            rest = np.setdiff1d(np.arange(len(y)), train)
            print(f"  seed {seed}: {len(train):3d} networks, true MAPE "
                  f"{_mape(RidgeModel().fit(X[train], y[train]), X[rest], y[rest]):.2f}% "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--column", default="lat_2080ti_64")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--n", type=int, default=60, help="networks picked by the bound")
    ap.add_argument("--cand", type=int, default=150, help="candidates tried per pick")
    ap.add_argument("--eval", type=int, default=600, help="unmeasured rows scored per pick")
    ap.add_argument("--outlier", type=float, default=0.10,
                    help="relative residual (all-rows fit) that makes a network an outlier")
    args = ap.parse_args()
    space = spaces.get("ofa-mbv3")
    oracle = CsvOracle(space, DATA, args.column)
    y = np.asarray(oracle.truth)
    X = features(space, oracle.pool.genomes, "costs")
    resid = y / RidgeModel().fit(X, y).predict(X) - 1.0
    print(f"{args.column}: {len(y)} rows; outliers (|residual| > {args.outlier:.0%} against a "
          f"fit on all rows): {np.mean(np.abs(resid) > args.outlier):.1%}, mean |residual| "
          f"{np.mean(np.abs(resid)):.2%}")
    picks: dict[str, list[np.ndarray]] = {"bound": [], "random": [], DEFAULT_STRATEGY: []}
    for seed in range(args.seeds):
        picks["bound"].append(np.array(bound(X, y, args.n, args.cand, args.eval, seed)))
        for name in ("random", DEFAULT_STRATEGY):
            st, rng = get_strategy(name, space), np.random.default_rng(seed)
            train = np.zeros(0, np.int64)
            while train.size < args.n:
                train = np.concatenate([train, st.select(
                    oracle.pool, 5, seed=rng, measured=train,
                    y=y[train] if train.size else None)])
            picks[name].append(train)
    for name, sets in picks.items():
        idx = np.concatenate(sets)
        print(f"  {name:>9} picks: outliers {np.mean(np.abs(resid[idx]) > args.outlier):.1%}, "
              f"mean |residual| {np.mean(np.abs(resid[idx])):.2%}")


if __name__ == "__main__":
    main()
