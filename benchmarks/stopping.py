"""The build's stopping estimate: how many networks each error estimate makes the build
measure, and how far the true error is from the target when it stops.

For every ofa-mbv3 large-batch column, both uniform random and the default strategy, and every
seed, :func:`esm.build.build` runs on the dataset file as the device (a lookup oracle) until the
*estimated* MAPE meets the target (or the budget). The true MAPE on every row not measured is
known, so each estimate is judged by the networks it measured (validation included) and by the
true error at the stop: an estimate that is too optimistic stops early with the target missed,
a noisy or pessimistic one measures more than needed. Data: HELP (Lee et al., NeurIPS 2021).

Usage::

    python benchmarks/stopping.py [--seeds 5] [--target-mape 5] [--budget-samples 400]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import esm  # noqa: E402
from esm.build import BuildConfig, CsvOracle, build  # noqa: E402
from esm.sampling import DEFAULT_STRATEGY  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "ofa_mbv3_gpu.csv"
COLUMNS = ["lat_2080ti_64", "lat_titan_xp_32", "lat_titan_xp_64"]
#: (label, validation, val_size)
ESTIMATES = [("holdout 50", "holdout", 50), ("holdout 100", "holdout", 100),
             ("5-fold CV", "cv", 50), ("holdout 25 + CV", "holdout+cv", 25),
             ("holdout 50 + CV", "holdout+cv", 50)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--columns", default=",".join(COLUMNS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--target-mape", type=float, default=5.0)
    ap.add_argument("--budget-samples", type=int, default=400)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "stopping.md")
    args = ap.parse_args(argv)
    sp = esm.spaces.get("ofa-mbv3")
    lines = [f"# Stopping estimate\n\n`esm build` on {args.data.name}, target MAPE "
             f"{args.target_mape:g}%, initial 20, steps of 20, budget {args.budget_samples}, "
             f"{args.seeds} seeds per cell. networks: measured, validation included (mean); "
             "true: MAPE on every unmeasured row at the stop (mean); ok: runs whose true "
             "MAPE at the stop meets the target; over: mean true MAPE minus target over the "
             "runs that missed it.", "",
             "| column | strategy | estimate | networks | true MAPE | ok | over |",
             "|---|---|---|---|---|---|---|"]
    summary: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for col in filter(None, args.columns.split(",")):
        oracle = CsvOracle(sp, args.data, col)
        for strat in ("random", DEFAULT_STRATEGY):
            for label, validation, val_size in ESTIMATES:
                used, true = [], []
                for s in range(args.seeds):
                    cfg = BuildConfig(strategy=strat, target_mape=args.target_mape,
                                      budget_samples=args.budget_samples,
                                      validation=validation, val_size=val_size, seed=s)
                    res, _ = build(oracle, cfg)
                    used.append(res["samples_used"])
                    true.append(res["mape_true"])
                t = np.asarray(true)
                miss = t > args.target_mape
                over = f"{(t[miss] - args.target_mape).mean():.2f}" if miss.any() else "-"
                lines.append(f"| {col} | {strat} | {label} | {np.mean(used):.0f} | "
                             f"{t.mean():.2f}% | {int((~miss).sum())}/{t.size} | {over} |")
                summary.setdefault((strat, label), []).extend(
                    zip(used, true, strict=True))
                print(lines[-1], file=sys.stderr, flush=True)
    lines += ["", "Over all columns:", "",
              "| strategy | estimate | networks | true MAPE | ok |", "|---|---|---|---|---|"]
    for (strat, label), v in summary.items():
        a = np.asarray(v)
        ok = int((a[:, 1] <= args.target_mape).sum())
        lines.append(f"| {strat} | {label} | {a[:, 0].mean():.0f} | {a[:, 1].mean():.2f}% | "
                     f"{ok}/{len(a)} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
