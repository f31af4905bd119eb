"""`esm build --from-csv` with uniform random vs the default strategy on every ofa-mbv3 column.

Each run is the real command with its defaults (error estimate: the build's default, a
holdout of 25 pooled with 5-fold CV on the training set; initial batch 20, steps of 20; stop at
the target MAPE by that estimate or at the sample budget); the table gives the measured
networks used (validation included), the true MAPE on every row not measured, and how many
runs stopped with the target reached by the estimate and by the truth, as the mean over seeds.
Data: HELP (Lee et al., NeurIPS 2021).

Usage::

    python benchmarks/build_from_csv.py [--seeds 3] [--target-mape 5] [--budget-samples 400]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from esm.cli import main as esm_main  # noqa: E402
from esm.sampling import DEFAULT_STRATEGY  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "ofa_mbv3_gpu.csv"


def run(path: Path, column: str, strategy: str, seed: int, target: float,
        budget: int) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = esm_main(["build", "--from-csv", str(path), "--target", column, "--space",
                       "ofa-mbv3", "--strategy", strategy, "--seed", str(seed),
                       "--target-mape", str(target), "--budget-samples", str(budget),
                       "--no-report", "--json"])
    if rc != 0:
        raise SystemExit(f"esm build failed ({rc}) on {column} {strategy}")
    return json.loads(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--target-mape", type=float, default=5.0)
    ap.add_argument("--budget-samples", type=int, default=400)
    ap.add_argument("--columns", default="", help="comma-separated columns (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "build_from_csv.md")
    args = ap.parse_args(argv)
    with open(args.data, newline="") as f:
        columns = [c for c in next(csv.reader(f)) if c != "arch"]
    if args.columns:
        columns = [c for c in args.columns.split(",") if c]
    from esm.build import BuildConfig

    lines = [f"`esm build --from-csv` on {args.data.name}, target MAPE {args.target_mape:g}%, "
             f"budget {args.budget_samples} networks, mean of {args.seeds} seeds; error "
             f"estimate {BuildConfig.validation} (holdout {BuildConfig.val_size}). networks: "
             "measured, validation included; MAPE: true, on every unmeasured row; reached: "
             "runs stopped by the estimate meeting the target; true ok: runs whose true MAPE "
             "at the stop meets it.", "",
             "| column | random: networks | random: MAPE | random: reached | random: true ok "
             f"| {DEFAULT_STRATEGY}: networks | {DEFAULT_STRATEGY}: MAPE "
             f"| {DEFAULT_STRATEGY}: reached | {DEFAULT_STRATEGY}: true ok | networks ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for col in columns:
        cells = []
        used = {}
        for strat in ("random", DEFAULT_STRATEGY):
            rs = [run(args.data, col, strat, s, args.target_mape, args.budget_samples)
                  for s in range(args.seeds)]
            used[strat] = float(np.mean([r["samples_used"] for r in rs]))
            cells += [f"{used[strat]:.0f}", f"{np.mean([r['mape'] for r in rs]):.2f}%",
                      f"{sum(r['target_reached'] for r in rs)}/{len(rs)}",
                      f"{sum(r['mape'] <= args.target_mape for r in rs)}/{len(rs)}"]
        ratio = used[DEFAULT_STRATEGY] / used["random"]
        lines.append(f"| {col} | " + " | ".join(cells) + f" | {ratio:.2f} |")
        print(lines[-1], file=sys.stderr, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")  # after every column: partial runs count
    text = "\n".join(lines) + "\n"
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
