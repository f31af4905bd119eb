"""Search throughput and quality on a LUT latency surrogate fitted to real measurements.

1. Fits a LUT surrogate (least squares over one-hot genes) to the measured OFA-MobileNetV3
   latencies of ../shared/data/ofa_mbv3_gpu.csv (HELP data; column --column), twice: as a
   NumPy table (``np.take`` + sum) and as ``esm``'s LUT encoding + ridge compiled by
   ``esm.predictor`` (fused C++ path, all cores); both are benchmarked.
2. Throughput, end to end (sampling, selection, mutation/crossover, validation, prediction,
   archive): candidates evaluated per second by batched regularized evolution and NSGA-II,
   with the share of time spent outside the predictor; side by side with the paper-style
   loop that mutates and predicts one candidate per step (what per-architecture predictor APIs
   force on a search).
3. Quality: at equal numbers of evaluations, the best objective (MACs, maximised) under a
   tight latency budget found by regularized evolution, NSGA-II and random search, mean over
   seeds.

Wall figures on a shared machine are noisy; CPU seconds of this process are printed too.

Usage: python benchmarks/bench_search.py [--evals 3000000] [--seeds 5] [--quality-evals 20000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from esm import spaces
from esm.search import make_problem, nsga2, random_search, regularized_evolution
from esm.search.toy import LutModel

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ofa_mbv3_gpu.csv"


def load_rows(path: Path, column: str, space: spaces.SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    genomes = space.from_strs(r["arch"] for r in rows)
    return genomes, np.array([float(r[column]) for r in rows])


def fit_lut(space: spaces.SearchSpace, genomes: np.ndarray, y: np.ndarray) -> LutModel:
    """Ridge-regularised least squares of latency on one-hot genes -> a per-gene table."""
    width = int(space.choices.max())
    n, g = genomes.shape
    X = np.zeros((n, g * width))
    X[np.repeat(np.arange(n), g), (np.arange(g) * width + genomes).ravel()] = 1.0
    X = np.hstack([X, np.ones((n, 1))])
    lam = 1e-3 * n
    A = X.T @ X + lam * np.eye(X.shape[1])
    A[-1, -1] -= lam  # no penalty on the intercept
    w = np.linalg.solve(A, X.T @ y)
    return LutModel(space, table=w[:-1].reshape(g, width), bias=float(w[-1]))


def esm_lut(space: spaces.SearchSpace, genomes: np.ndarray, y: np.ndarray) -> Any | None:
    """esm's LUT encoding + ridge, compiled (fused C++ LUT path of ``esm.predictor``)."""
    try:
        from sklearn.linear_model import Ridge

        from esm.predictor import Predictor
        from esm.predictor.convert import from_estimator
        from esm.surrogate.encoders import get_encoder
    except ImportError:
        return None
    enc = get_encoder("lut", space)
    est = Ridge(alpha=1.0).fit(enc.transform(genomes), y)
    pred = Predictor(from_estimator(est), enc)
    return pred if pred.fused else None


def cpu_timed(fn: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def sequential_evolution(model: Any, space: spaces.SearchSpace, budget: float, steps: int,
                         population: int = 100, sample_size: int = 25, seed: int = 0) -> float:
    """Real et al.'s loop as usually written: one mutation and one predict call per step."""
    rng = np.random.default_rng(seed)
    pop = [space.sample(1, rng)[0] for _ in range(population)]
    fit = []
    for g in pop:
        lat = float(model.predict(g[None])[0])
        fit.append((lat > budget, -float(space.costs(g[None], detail=False).macs[0])))
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = rng.integers(0, population, sample_size)
        parent = pop[min(idx, key=lambda i: fit[i])]
        child = space.mutate(parent[None], seed=rng)[0]
        lat = float(model.predict(child[None])[0])
        pop.append(child)
        fit.append((lat > budget, -float(space.costs(child[None], detail=False).macs[0])))
        pop.pop(0)
        fit.pop(0)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--column", default="lat_2080ti_64")
    ap.add_argument("--evals", type=int, default=3_000_000, help="throughput run size")
    ap.add_argument("--population", type=int, default=100_000)
    ap.add_argument("--seq-steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quality-evals", type=int, default=20_000)
    args = ap.parse_args()

    space = spaces.get("ofa-mbv3")
    genomes, y = load_rows(Path(args.data), args.column, space)
    lut = fit_lut(space, genomes, y)
    fit_mape = float(np.mean(np.abs(lut.predict(genomes) - y) / y) * 100)
    models: list[tuple[str, Any]] = [("numpy LUT (np.take + sum)", lut)]
    compiled = esm_lut(space, genomes, y)
    if compiled is not None:
        models.append(("esm compiled LUT predictor", compiled))
    print(f"data: {len(y)} measured ofa-mbv3 networks, {args.column}; "
          f"LUT fit MAPE (in-sample) {fit_mape:.1f}%")
    budget = float(np.quantile(lut.predict(space.sample(20000, seed=1)), 0.05))
    print(f"latency budget: {budget:.3f} ms (5% of random networks meet it)\n")

    print("== throughput, end to end (objective: max MACs s.t. latency <= budget)")
    print(f"{'surrogate':<30} {'algorithm':<34} {'evals/s wall':>13} {'evals/s CPU':>12} "
          f"{'outside pred.':>13}")
    p = args.population
    for name, model in models:
        runs = [
            (f"evolution P=B={p:,}", lambda pr: regularized_evolution(
                pr, population=p, batch=p, sample_size=2, max_evaluations=args.evals, seed=0)),
            (f"evolution P={p:,} B={p // 4:,} S=25", lambda pr: regularized_evolution(
                pr, population=p, batch=p // 4, sample_size=25, max_evaluations=args.evals,
                seed=0)),
            ("nsga2 P=B=2,000", lambda pr: nsga2(
                pr, population=2000, max_evaluations=min(args.evals, 200_000), seed=0)),
            (f"nsga2 P=B={p:,}", lambda pr: nsga2(
                pr, population=p, max_evaluations=min(args.evals, 20 * p), seed=0)),
            (f"random B={p:,}", lambda pr: random_search(
                pr, batch=p, max_evaluations=args.evals, seed=0)),
        ]
        base = None
        for label, run in runs:
            prob = make_problem(space=space, latency_model=model, objective="macs",
                                latency_budget=budget)
            res, wall, cpu = cpu_timed(lambda run=run, prob=prob: run(prob))
            rate = res.evaluated / wall
            base = base or rate
            print(f"{name:<30} {label:<34} {rate:>13,.0f} {res.evaluated / cpu:>12,.0f} "
                  f"{res.outside_predictor_share:>12.0%}")
        seq = sequential_evolution(model, space, budget, args.seq_steps)
        print(f"{name:<30} {'evolution, 1 candidate per call':<34} {seq:>13,.0f} "
              f"{'':>12} {'':>13}")
        print(f"{'':<30} batched / per-candidate: {base / seq:,.0f}x\n")

    print(f"== quality at {args.quality_evals:,} evaluations, mean over {args.seeds} seeds "
          "(best MACs under the budget, millions; higher is better)")
    model = models[-1][1]
    results: dict[str, list[float]] = {"evolution": [], "nsga2": [], "random": []}
    for seed in range(args.seeds):
        for alg in results:
            prob = make_problem(space=space, latency_model=model, objective="macs",
                                latency_budget=budget)
            if alg == "evolution":
                r = regularized_evolution(prob, population=200, batch=50, sample_size=25,
                                          max_evaluations=args.quality_evals, seed=seed)
            elif alg == "nsga2":
                r = nsga2(prob, population=200, max_evaluations=args.quality_evals, seed=seed)
            else:
                r = random_search(prob, batch=1000, max_evaluations=args.quality_evals,
                                  seed=seed)
            assert r.evaluated == args.quality_evals
            results[alg].append(r.values["macs"][r.best_index] / 1e6 if r.found else 0.0)
    rnd = np.mean(results["random"])
    for alg, vals in results.items():
        v = np.array(vals)
        wins = int(np.sum(v > np.array(results["random"])))
        print(f"  {alg:<10} {v.mean():8.1f} +- {v.std():5.1f}   vs random {v.mean() / rnd:5.3f}x"
              f"   beats random in {wins}/{len(v)} seeds")


if __name__ == "__main__":
    main()
