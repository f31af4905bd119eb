"""The sampling-strategy study: measured samples needed to reach an accuracy target.

For every strategy of :mod:`esm.sampling`, every dataset column and every seed, the build loop
of :mod:`esm.build` runs on the dataset file as the device (a lookup oracle): it starts with
``--step`` networks chosen by the strategy, adds ``--step`` more per step up to
``--max-samples``, and after every step trains the study's fast regressor (ridge on the
compiled per-slot cost features) and computes the true error on every row it has not revealed.
The samples needed for a target are the first training-set size whose error meets it (MAPE at
most the target on ofa-mbv3 large-batch columns; Kendall tau at least the target on nb201, when
that space is registered). Results: a Markdown table and learning-curve plots.

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
from esm.build import BuildConfig, CsvOracle, build  # noqa: E402

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


def needed(sizes: np.ndarray, metric: np.ndarray, target: float, rank: bool) -> list[float]:
    """Per seed: first training size meeting the target (NaN if never)."""
    res = []
    for row in metric:
        ok = row >= target if rank else row <= target
        res.append(float(sizes[int(np.argmax(ok))]) if ok.any() else math.nan)
    return res


def fmt(vals: list[float], max_samples: int) -> str:
    v = np.asarray(vals)
    if np.isnan(v).all():
        return f">{max_samples}"
    m = float(np.nanmean(v))
    miss = int(np.isnan(v).sum())
    return f"{m:.0f}" + (f" ({miss}/{v.size} not reached)" if miss else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--max-samples", type=int, default=300)
    ap.add_argument("--strategies", default=",".join(sampling.names()))
    ap.add_argument("--columns", default=",".join(OFA_COLUMNS))
    ap.add_argument("--mape-targets", default="5,3")
    ap.add_argument("--tau-target", type=float, default=0.9)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "analysis")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = args.strategies.split(",")
    targets = [float(t) for t in args.mape_targets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, str, list[float], bool]] = []
    ofa = args.data / "ofa_mbv3_gpu.csv"
    for col in filter(None, args.columns.split(",")):
        jobs.append(("ofa-mbv3", str(ofa), col, targets, False))
    if "nb201" in esm.spaces.names() and (args.data / "nb201_latency.csv").is_file():
        for col in NB201_COLUMNS:
            jobs.append(("nb201", str(args.data / "nb201_latency.csv"), col,
                         [args.tau_target], True))
    else:
        print("nb201: space not registered here, skipped", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for space_name, path, col, tgts, rank in jobs:
        sp = esm.spaces.get(space_name)
        oracle = CsvOracle(sp, path, col)
        fig, ax = plt.subplots(figsize=(6, 4))
        for strat in strategies:
            sizes, metric, secs = curves(oracle, strat, args.seeds, args.step,
                                         args.max_samples, rank)
            mean = metric.mean(axis=0)
            ax.plot(sizes, mean, label=strat, lw=2 if strat in ("random",
                                                               sampling.DEFAULT_STRATEGY) else 1)
            for t in tgts:
                rows.append({"space": space_name, "column": col, "strategy": strat,
                             "metric": "tau" if rank else "mape", "target": t,
                             "needed": needed(sizes, metric, t, rank), "seconds": secs,
                             "curve": {"sizes": sizes.tolist(), "mean": mean.tolist()}})
            print(f"{space_name} {col} {strat}: final {'tau' if rank else 'MAPE'} "
                  f"{mean[-1]:.3f} ({secs:.1f} s)", file=sys.stderr)
        for t in tgts:
            ax.axhline(t, color="grey", ls=":", lw=1)
        ax.set_xlabel("measured training samples")
        ax.set_ylabel("Kendall tau (unmeasured rows)" if rank else "MAPE % (unmeasured rows)")
        if not rank:
            ax.set_yscale("log")
        ax.set_title(f"{space_name} {col} (mean of {args.seeds} seeds)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out / f"curve_{space_name}_{col}.png", dpi=110)
        plt.close(fig)

    # the table: mean samples needed, and the ratio to random (a seed that never reaches the
    # target counts as the budget, so ratios involving misses are bounds)
    lines = ["| space | column | target | " + " | ".join(strategies) + " |",
             "|---|---|---|" + "---|" * len(strategies)]
    for space_name, _path, col, tgts, rank in jobs:
        for t in tgts:
            sel = {r["strategy"]: r for r in rows
                   if r["column"] == col and r["space"] == space_name and r["target"] == t}
            base = np.asarray(sel["random"]["needed"]) if "random" in sel else None
            cells = []
            for s in strategies:
                cell = fmt(sel[s]["needed"], args.max_samples)
                if base is not None and s != "random":
                    d = np.asarray(sel[s]["needed"])
                    dv = np.where(np.isnan(d), args.max_samples, d).mean()
                    rv = np.where(np.isnan(base), args.max_samples, base).mean()
                    cell += f" ({dv / rv:.2f})"
                cells.append(cell)
            name = ("tau >= " if rank else "MAPE <= ") + f"{t:g}" + ("" if rank else "%")
            lines.append(f"| {space_name} | {col} | {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (args.out / "analysis.md").write_text(
        f"# Sampling-strategy study\n\nTraining samples needed (mean over {args.seeds} seeds, "
        f"steps of {args.step}, budget {args.max_samples}; ridge on cost features, or costs + "
        "one-hot genes where its leave-one-out error is lower; error on every unmeasured "
        "row). Data: HELP (Lee et al., NeurIPS 2021), HW-NAS-Bench (Li et "
        f"al., ICLR 2021).\n\n{table}\n")
    (args.out / "analysis.json").write_text(json.dumps(rows, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
