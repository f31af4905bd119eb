"""NSGA-II through pymoo (esm.integrations.pymoo) and through esm, on one model and budget.

Both search the same problem: minimise the predicted latency and maximise MACs under a latency
budget (the ``--budget-quantile`` of random networks' predicted latency), with the same
compiled surrogate (default: ``esm``'s default surrogate, FCC encoding + ``auto`` model,
fitted to ``--train-size`` measured OFA-MobileNetV3 latencies of ../shared/data/ofa_mbv3_gpu.csv,
saved to a model file and loaded as ``esm search`` loads it), the same population and the same
number of evaluations. Rows:

- ``esm nsga2``: :func:`esm.search.nsga2` (what ``esm search --algorithm nsga2`` runs);
- ``pymoo NSGA2, space operators``: pymoo's NSGA-II on :class:`LatencyProblem` with
  :func:`esm.integrations.pymoo.operators` (the adapter's default);
- ``pymoo NSGA2, integer SBX/PM``: pymoo's own recipe for integer variables (random integer
  sampling, SBX and polynomial mutation with rounding repair) on the same problem.

Quality is the hypervolume of each run's feasible front in (latency / budget, -MACs / the
largest MACs seen in a random sample), reference point (1, 0), computed with pymoo's ``HV``;
throughput is candidates evaluated per second of wall time (and of this process's CPU time),
with the share of the time spent in the predictor. Mean and spread over ``--seeds`` seeds.

Usage: python benchmarks/bench_pymoo.py [--seeds 5] [--population 200] [--generations 50]
       [--model FILE] [--column lat_titan_xp_64] [--train-size 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from esm import spaces
from esm.search import make_problem, nsga2
from esm.search.problem import load_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ofa_mbv3_gpu.csv"


def fit_model(column: str, n: int, out: Path) -> Path:
    """esm's default surrogate on the first ``n`` rows of the HELP OFA-MBv3 data, saved."""
    import csv
    import itertools

    from esm.surrogate import Surrogate

    space = spaces.get("ofa-mbv3")
    with open(DATA, newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), n))
    g = space.from_strs(r["arch"] for r in rows)
    y = np.array([float(r[column]) for r in rows])
    Surrogate.fit(space, g, y, column=column).save(out)
    return out


def hypervolume(lat: np.ndarray, macs: np.ndarray, budget: float, macs_scale: float) -> float:
    from pymoo.indicators.hv import HV

    ok = lat <= budget
    if not ok.any():
        return 0.0
    F = np.stack([lat[ok] / budget, -macs[ok] / macs_scale], axis=1)
    return float(HV(ref_point=np.array([1.0, 0.0]))(F))


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run_esm(model: Any, budget: float, pop: int, evals: int, seed: int) -> dict[str, Any]:
    problem = make_problem(latency_model=model, objective="macs", latency_budget=budget)
    res, wall, cpu = timed(lambda: nsga2(problem, population=pop, max_evaluations=evals,
                                         seed=seed))
    return {"lat": res.values["latency_ms"], "macs": res.values["macs"],
            "evals": problem.counters.evaluated, "wall": wall, "cpu": cpu,
            "predict": problem.counters.predict_s}


def run_pymoo(model: Any, budget: float, pop: int, evals: int, seed: int,
              space_ops: bool) -> dict[str, Any]:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    from esm.integrations.pymoo import LatencyProblem, operators

    problem = LatencyProblem(model, objective="macs", latency_budget=budget)
    if space_ops:
        algo = NSGA2(pop_size=pop, **operators(problem))
    else:
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        algo = NSGA2(pop_size=pop, sampling=IntegerRandomSampling(),
                     crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                     mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
                     eliminate_duplicates=True)
    res, wall, cpu = timed(lambda: minimize(problem, algo, ("n_evals", evals), seed=seed))
    c = problem.esm_problem.counters
    out = {"evals": c.evaluated, "wall": wall, "cpu": cpu, "predict": c.predict_s}
    X = np.zeros((0, problem.n_var)) if res.X is None else np.atleast_2d(res.X)
    vals = problem.values(X.astype(np.int32))  # the final front (not counted above)
    return {**out, "lat": vals["latency_ms"], "macs": vals["macs"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--generations", type=int, default=50)
    ap.add_argument("--model", type=Path, default=None, help="ofa-mbv3 surrogate file")
    ap.add_argument("--column", default="lat_titan_xp_64")
    ap.add_argument("--train-size", type=int, default=500)
    ap.add_argument("--budget-quantile", type=float, default=0.2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or fit_model(args.column, args.train_size, Path(tmp) / "model.esm")
        model = load_model(path)
    space = model.space
    sample = space.sample(100_000, seed=12345)
    budget = float(np.quantile(model.predict(sample), args.budget_quantile))
    macs_scale = float(space.costs(sample, detail=False).macs.max())
    pop, evals = args.population, args.population * (args.generations + 1)
    what = args.model or f"default surrogate on {args.train_size} networks of {args.column}"
    print(f"model: {what}, {'compiled' if model.predictor is not None else 'not compiled'}")
    print(f"problem: min latency, max MACs s.t. latency <= {budget:.3f} ms "
          f"({args.budget_quantile:.0%} of random networks); population {pop}, "
          f"{evals:,} evaluations, {args.seeds} seeds")

    runs: dict[str, Callable[[int], dict[str, Any]]] = {
        "esm nsga2": lambda s: run_esm(model, budget, pop, evals, s),
        "pymoo NSGA2, space operators": lambda s: run_pymoo(model, budget, pop, evals, s,
                                                            True),
        "pymoo NSGA2, integer SBX/PM": lambda s: run_pymoo(model, budget, pop, evals, s,
                                                           False),
    }
    rows: dict[str, dict[str, list[float]]] = {k: {} for k in runs}
    for seed in range(args.seeds):
        for name, fn in runs.items():  # interleaved, so machine noise hits all alike
            r = fn(seed)
            d = rows[name]
            for key, val in (("hv", hypervolume(r["lat"], r["macs"], budget, macs_scale)),
                             ("front", len(r["lat"])), ("evals", r["evals"]),
                             ("wall_rate", r["evals"] / r["wall"]),
                             ("cpu_rate", r["evals"] / max(r["cpu"], 1e-9)),
                             ("pred_share", r["predict"] / r["wall"])):
                d.setdefault(key, []).append(float(val))

    base = rows["esm nsga2"]
    print(f"\n{'':30} {'hypervolume':>16} {'vs esm':>7} {'front':>6} {'evals':>7} "
          f"{'cand/s wall':>12} {'cand/s CPU':>11} {'vs esm':>7} {'in pred.':>8}")
    for name, d in rows.items():
        hv = np.array(d["hv"])
        rate = np.array(d["wall_rate"])
        print(f"{name:30} {hv.mean():9.4f} +-{hv.std():5.4f} "
              f"{hv.mean() / np.mean(base['hv']):6.3f}x {np.mean(d['front']):6.0f} "
              f"{np.mean(d['evals']):7.0f} {np.median(rate):12,.0f} "
              f"{np.median(d['cpu_rate']):11,.0f} "
              f"{np.median(rate) / np.median(base['wall_rate']):6.3f}x "
              f"{np.mean(d['pred_share']):8.0%}")
    wins = sum(a >= b for a, b in zip(rows["pymoo NSGA2, space operators"]["hv"], base["hv"],
                                      strict=True))
    print(f"\npymoo (space operators) hypervolume >= esm's in {wins}/{args.seeds} seeds")


if __name__ == "__main__":
    main()
