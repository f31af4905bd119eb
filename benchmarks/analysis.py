"""The sampling-strategy study: measured samples needed to reach an accuracy target.

For every strategy of :mod:`esm.sampling`, every dataset column and every seed, the build loop
of :mod:`esm.build` runs on the dataset file as the device (a lookup oracle): it starts with
``--step`` networks chosen by the strategy, adds ``--step`` more per step up to
``--max-samples``, and after every step trains the build's own step model (``BuildConfig``'s
default trainer, ``ridge``: ridge regression on the compiled per-slot cost features, or costs +
one-hot genes where its leave-one-out error is lower) and computes the true error on every row
it has not revealed. So the learning curve is that of the model ``esm build`` trains and stops
on. The samples needed for a target are the first training-set size whose error meets it (MAPE
at most the target on ofa-mbv3 large-batch columns; Kendall tau at least the target on nb201,
when that space is registered); a seed that never meets it within the budget counts as the
budget in the mean and the ratio (so such ratios are bounds), and the table says how many seeds
reached it.

Reachable targets: each column's *floor* is the error of the same model trained on
``--floor-rows`` uniformly drawn rows (error on the rest, mean of two draws). A MAPE target
below ``1.25 x floor`` cannot be met with a few hundred samples by any strategy; it is replaced
by the smallest multiple of 0.5 % at or above ``1.25 x floor`` and the table says so (tau
targets likewise on ``1 - tau``).

Results: ``analysis.md`` (table), ``analysis.json`` (per-seed numbers and mean curves) and
``curve_*.png`` (mean learning curve per strategy; random and the default with the band of
their seeds) in ``--out``.

Data: ``../shared/data`` from HELP (Lee et al., NeurIPS 2021) and HW-NAS-Bench (Li et al.,
ICLR 2021).

Usage::

    python benchmarks/analysis.py [--seeds 5] [--max-samples 300] [--out DIR]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # many tiny fits: threads only oversubscribe

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import esm  # noqa: E402
from esm import sampling  # noqa: E402
from esm.build import BuildConfig, CsvOracle, build, kendall_tau, mape, trainer  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

OFA_COLUMNS = ["lat_2080ti_32", "lat_2080ti_64", "lat_titan_xp_32", "lat_titan_xp_64"]
NB201_COLUMNS = ["lat_1080ti_256", "lat_2080ti_256", "lat_titanx_256"]


def curves(oracle: CsvOracle, strategy: str, seeds: int, step: int, max_samples: int,
           rank: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(train sizes [T], metric [seeds, T], seconds) of one strategy on one column."""
    out = []
    t0 = time.monotonic()
    sizes: list[int] = []
    for s in range(seeds):
        cfg = BuildConfig(strategy=strategy, initial=step, batch=step, target_mape=None,
                          budget_samples=max_samples, validation="none", seed=s,
                          rank_metric=rank)
        res, _ = build(oracle, cfg)
        h = res["history"]
        sizes = [e["train_samples"] for e in h]
        out.append([e["tau_true" if rank else "mape_true"] for e in h])
    return np.asarray(sizes), np.asarray(out), time.monotonic() - t0


def floor(oracle: CsvOracle, rows: int, rank: bool) -> float:
    """Error of the build's step model trained on ``rows`` uniform rows (mean of 2 draws)."""
    make = trainer(BuildConfig().trainer, oracle.space)
    assert oracle.truth is not None
    vals = []
    for s in range(2):
        perm = np.random.default_rng(1000 + s).permutation(len(oracle.pool))
        tr, te = perm[:rows], perm[rows:]
        m = make().fit(oracle.pool.genomes[tr], oracle.truth[tr])
        pred = m.predict(oracle.pool.genomes[te])
        vals.append(kendall_tau(oracle.truth[te], pred) if rank
                    else mape(oracle.truth[te], pred))
    return float(np.mean(vals))


def reachable(targets: list[float], fl: float, rank: bool) -> list[tuple[float, float | None]]:
    """(target used, target asked where it was replaced) per target, deduplicated."""
    out: list[tuple[float, float | None]] = []
    for t in targets:
        err, ferr = (1.0 - t, 1.0 - fl) if rank else (t, fl)
        if err >= 1.25 * ferr:
            used, asked = t, None
        else:
            e = math.ceil(1.25 * ferr * (200 if rank else 2)) / (200 if rank else 2)
            used, asked = (1.0 - e if rank else e), t
        if all(abs(used - u) > 1e-9 for u, _ in out):
            out.append((used, asked))
    return out


def needed(sizes: np.ndarray, metric: np.ndarray, target: float, rank: bool) -> list[float]:
    """Per seed: first training size meeting the target (NaN if never)."""
    res = []
    for row in metric:
        ok = row >= target if rank else row <= target
        res.append(float(sizes[int(np.argmax(ok))]) if ok.any() else math.nan)
    return res


def mean_needed(vals: list[float], budget: int) -> float:
    """Mean over seeds, a seed that never reached the target counting as the budget."""
    v = np.asarray(vals, np.float64)
    return float(np.where(np.isnan(v), budget, v).mean())


def fmt(vals: list[float], budget: int) -> str:
    v = np.asarray(vals, np.float64)
    hit = int((~np.isnan(v)).sum())
    if hit == 0:
        return f">{budget} (0/{v.size})"
    m = mean_needed(vals, budget)
    return ("" if hit == v.size else ">=") + f"{m:.0f} ({hit}/{v.size})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--step", type=int, default=5)
    ap.add_argument("--max-samples", type=int, default=300)
    ap.add_argument("--strategies", default=",".join(sampling.names()))
    ap.add_argument("--columns", default=",".join(OFA_COLUMNS))
    ap.add_argument("--nb201-columns", default=",".join(NB201_COLUMNS))
    ap.add_argument("--mape-targets", default="5,3")
    ap.add_argument("--tau-targets", default="0.9,0.95,0.98")
    ap.add_argument("--floor-rows", type=int, default=2500)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "analysis")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = args.strategies.split(",")
    if "random" not in strategies:
        strategies.insert(0, "random")
    default = sampling.DEFAULT_STRATEGY
    targets = [float(t) for t in args.mape_targets.split(",")]
    tau_targets = [float(t) for t in args.tau_targets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, str, list[float], bool]] = []
    ofa = args.data / "ofa_mbv3_gpu.csv"
    for col in filter(None, args.columns.split(",")):
        jobs.append(("ofa-mbv3", str(ofa), col, targets, False))
    if "nb201" in esm.spaces.names() and (args.data / "nb201_latency.csv").is_file():
        for col in filter(None, args.nb201_columns.split(",")):
            jobs.append(("nb201", str(args.data / "nb201_latency.csv"), col, tau_targets, True))
    else:
        print("nb201: space not registered here, skipped", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    table_rows: list[tuple[str, str, float, float | None, float, bool]] = []
    for space_name, path, col, tgts, rank in jobs:
        sp = esm.spaces.get(space_name)
        oracle = CsvOracle(sp, path, col)
        fl = floor(oracle, min(args.floor_rows, len(oracle.pool) // 2), rank)
        used_targets = reachable(tgts, fl, rank)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for strat in strategies:
            sizes, metric, secs = curves(oracle, strat, args.seeds, args.step,
                                         args.max_samples, rank)
            mean = metric.mean(axis=0)
            main_line = strat in ("random", default)
            (line,) = ax.plot(sizes, mean, label=strat, lw=2.2 if main_line else 1,
                              alpha=1.0 if main_line else 0.7)
            if main_line:
                ax.fill_between(sizes, metric.min(axis=0), metric.max(axis=0),
                                color=line.get_color(), alpha=0.15, lw=0)
            for t, asked in used_targets:
                rows.append({"space": space_name, "column": col, "strategy": strat,
                             "metric": "tau" if rank else "mape", "target": t,
                             "target_asked": asked, "floor": fl,
                             "needed": needed(sizes, metric, t, rank), "seconds": secs,
                             "curve": {"sizes": sizes.tolist(), "mean": mean.tolist(),
                                       "per_seed": metric.tolist()}})
            print(f"{space_name} {col} {strat}: final {'tau' if rank else 'MAPE'} "
                  f"{mean[-1]:.3f} ({secs:.1f} s)", file=sys.stderr, flush=True)
        for t, asked in used_targets:
            ax.axhline(t, color="grey", ls=":", lw=1)
            table_rows.append((space_name, col, t, asked, fl, rank))
        ax.axhline(fl, color="black", ls="--", lw=0.8, label=f"floor ({args.floor_rows} rows)")
        ax.set_xlabel("measured training samples")
        ax.set_ylabel("Kendall tau (unmeasured rows)" if rank else "MAPE % (unmeasured rows)")
        if rank:
            ax.set_ylim(max(0.5, min(tau_targets) - 0.15), 1.0)
        else:
            ax.set_yscale("log")
            ax.set_ylim(fl * 0.8, max(25.0, 3 * fl))
        ax.set_title(f"{space_name} {col}: mean of {args.seeds} seeds\n"
                     f"(band: min-max over seeds for random and {default})", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(args.out / f"curve_{space_name}_{col}.png", dpi=110)
        plt.close(fig)

    # the table: mean samples needed (a seed that never reaches the target counts as the
    # budget, so a mean with misses is a lower bound, marked >=), seeds that reached it, and the
    # ratio to random
    budget = args.max_samples
    others = [s for s in strategies if s not in ("random", default)]
    lines = [f"| space | column | target | floor | random | {default} | ratio |"
             + "".join(f" {o} |" for o in others),
             "|---|---|---|---|---|---|---|" + "---|" * len(others)]
    for space_name, col, t, asked, fl, rank in table_rows:
        sel = {r["strategy"]: r for r in rows
               if r["column"] == col and r["space"] == space_name and r["target"] == t}
        rv = mean_needed(sel["random"]["needed"], budget)
        cells = [fmt(sel["random"]["needed"], budget), fmt(sel[default]["needed"], budget),
                 f"**{mean_needed(sel[default]['needed'], budget) / rv:.2f}**"]
        for s in others:
            cells.append(f"{fmt(sel[s]['needed'], budget)} "
                         f"[{mean_needed(sel[s]['needed'], budget) / rv:.2f}]")
        name = ("tau >= " if rank else "MAPE <= ") + f"{t:g}" + ("" if rank else "%")
        if asked is not None:
            name += f" (asked {asked:g}: below reach)"
        fls = f"{fl:.3f}" if rank else f"{fl:.2f}%"
        lines.append(f"| {space_name} | {col} | {name} | {fls} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (args.out / "analysis.md").write_text(
        f"# Sampling-strategy study\n\nMeasured training samples needed to reach each target: "
        f"mean over {args.seeds} seeds (seeds that reached it / seeds; a seed that never did "
        f"counts as the budget {budget}, and the mean is then marked >=), steps of "
        f"{args.step}. ratio = {default} (the default) / random; other strategies' ratios in "
        "brackets. Model: the build's step model (ridge on the compiled cost features, or "
        "costs + one-hot genes where its leave-one-out error is lower); error on every "
        f"unmeasured row. floor: the same model trained on {args.floor_rows} uniform rows; "
        "targets below 1.25 x floor are replaced by a reachable one. Produced by "
        "`benchmarks/analysis.py` (command line in the run's stderr/notes). Data: HELP (Lee et "
        f"al., NeurIPS 2021), HW-NAS-Bench (Li et al., ICLR 2021).\n\n{table}\n")
    (args.out / "analysis.json").write_text(json.dumps(rows, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
