"""Accuracy of surrogate encodings x regressors on the real latency data, vs. the baseline.

For every latency column of ../shared/data/ofa_mbv3_gpu.csv (and the GPU and CPU columns of
nb201_latency.csv and fbnet_latency.csv, and the FPGA and TPU columns of mnasnet_anb.csv, when
those spaces are registered; empty cells are left out), train on 100 and
500 rows drawn per seed and evaluate on all other rows of the file: MAPE, accuracy within
+-10 % and Kendall tau, mean over seeds, for

* the baseline users would otherwise use: ridge regression on total MACs, params and bytes
  (identity target: latency proportional to cost);
* the default: ``fcc`` encoding + ``auto`` model (cross-validation on the training rows only);
* a grid of encodings x regressors.

Usage::

    python benchmarks/bench_accuracy.py               # default grid, 5 seeds
    python benchmarks/bench_accuracy.py --quick       # 2 seeds, small grid, ofa-mbv3 only
    python benchmarks/bench_accuracy.py --grid full   # every encoding x regressor (slow)
    python benchmarks/bench_accuracy.py --markdown out.md   # also write the tables as Markdown

``gcn`` (the BRP-NAS graph network on the onehot encoding) runs on cell spaces (nb201) only.

Credit for the data: HELP (Lee et al., NeurIPS 2021), HW-NAS-Bench (Li et al., ICLR 2021) and
Accel-NASBench (Ahmad et al., DAC 2024).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# thousands of small linear-algebra fits: a multi-threaded BLAS only oversubscribes the cores
# (60x slower on a loaded 2-core machine); run one thread per process
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from esm import spaces
from esm.surrogate.encoders import device_from_column, get_encoder
from esm.surrogate.metrics import accuracy_within, kendall, mape
from esm.surrogate.models import make_regressor
from esm.surrogate.surrogate import default_column_sets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = (
    ("ofa_mbv3_gpu.csv", "ofa-mbv3", None),
    ("nb201_latency.csv", "nb201", ("1080ti", "2080ti", "titanx", "gold", "silver")),
    ("fbnet_latency.csv", "fbnet", ("1080ti", "2080ti", "titanx", "gold", "silver")),
    ("mnasnet_anb.csv", "anb-mnasnet", ("lat_", "ms_per_image_")),
)
GRIDS = {
    "small": [("stats", "ridge"), ("roofline", "ridge"), ("layerwise", "ridge"),
              ("lut", "lut"), ("fcc", "ridge"), ("fcc", "gbt"), ("stats", "gp"),
              ("roofline", "knn")],
    "default": [("stats", "ridge"), ("stats", "gbt"), ("stats", "gp"), ("stats", "knn"),
                ("roofline", "ridge"), ("roofline", "gbt"), ("layerwise", "ridge"),
                ("layerwise", "gbt"), ("onehot", "ridge"), ("lut", "lut"), ("fcc", "ridge"),
                ("fcc", "gbt"), ("fcc", "forest"), ("fcc", "mlp")],
    # the table: every encoding family, each regressor family, in the time of 2 cores
    "issue": [("stats", "ridge"), ("stats", "gbt"), ("stats", "gp"), ("roofline", "ridge"),
              ("roofline", "knn"), ("layerwise", "ridge"), ("onehot", "ridge"), ("lut", "lut"),
              ("fcc", "ridge"), ("fcc", "huber"), ("fcc", "gbt"), ("fcc", "mlp"),
              ("onehot", "gcn")],
}
GRIDS["full"] = [(e, m) for e in ("onehot", "stats", "layerwise", "roofline", "fcc")
                 for m in ("ridge", "forest", "gbt", "mlp", "knn", "gp")] + [("lut", "lut")]


def load(path: Path, space_name: str, keep: tuple[str, ...] | None, max_rows: int | None
         ) -> tuple[spaces.SearchSpace, np.ndarray, list[str], np.ndarray] | None:
    if space_name not in spaces.names():
        print(f"[skip] {path.name}: space {space_name!r} is not registered in this build")
        return None
    if not path.is_file():
        print(f"[skip] {path} not found")
        return None
    space = spaces.get(space_name)
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = next(r)
        rows = [row for _, row in zip(range(max_rows or 10**9), r, strict=False)]
    cols = [c for c in header[1:] if keep is None or any(k in c for k in keep)]
    Y = np.array([[float(row[header.index(c)] or "nan") for c in cols] for row in rows])
    G = space.from_strs([row[0] for row in rows])
    return space, G, cols, Y


def tied_pairs(y: np.ndarray) -> float:
    """Share of row pairs with equal measured latency. A predictor that orders every
    untied pair correctly and ties none reaches Kendall tau-b = sqrt(1 - this share): the
    ceiling of tau on columns stored in whole milliseconds (the phone columns)."""
    _, counts = np.unique(y, return_counts=True)
    n = len(y)
    return float((counts * (counts - 1)).sum() / max(1, n * (n - 1)))


def rounding_floor(y: np.ndarray) -> tuple[float, float, float] | None:
    """For a column stored in whole milliseconds: MAPE, acc10 and tau of a perfect predictor
    of the unrounded latency (simulated as the stored value + U(-0.5, 0.5) ms) against the
    stored values, i.e. what the rounding alone costs every model. None for other columns."""
    if not np.all(y == np.round(y)):
        return None
    p = y + np.random.default_rng(0).uniform(-0.5, 0.5, len(y))
    return evaluate(y, p)


def evaluate(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    return mape(y, p), accuracy_within(y, p, 0.10), kendall(y, p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, small grid, ofa-mbv3 only")
    ap.add_argument("--seeds", type=int, default=None, help="seeds for baseline and default")
    ap.add_argument("--grid-seeds", type=int, default=None, help="seeds for the grid")
    ap.add_argument("--grid", choices=[*GRIDS, "none"], default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--columns", nargs="*", default=None, help="only these columns")
    ap.add_argument("--files", nargs="*", default=None, help="only these data files")
    ap.add_argument("--max-rows", type=int, default=None, help="read at most this many rows")
    ap.add_argument("--min-latency", type=float, default=0.0,
                    help="drop rows measured below this many ms (e.g. nb201 lat_pixel3: "
                         "disconnected cells that the phone runtime constant-folds)")
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    grid_seeds = args.grid_seeds or seeds
    grid = GRIDS.get(args.grid or ("small" if args.quick else "default"), [])
    files = args.files or (["ofa_mbv3_gpu.csv"] if args.quick else [f[0] for f in FILES])
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    summary = []
    tables: list[tuple] = []
    for fname, space_name, keep in FILES:
        if fname not in files:
            continue
        # columns named explicitly (e.g. the phone columns) are read even when the file's
        # default selection leaves them out
        loaded = load(DATA / fname, space_name, None if args.columns else keep, args.max_rows)
        if loaded is None:
            continue
        space, G, cols, Y = loaded
        costs = space.costs(G)
        base_X = np.column_stack([costs.macs, costs.params, costs.activation_bytes,
                                  costs.weight_bytes]).astype(np.float64)
        for j, col in enumerate(cols):
            if args.columns and col not in args.columns:
                continue
            y = Y[:, j]
            ok = np.isfinite(y) & (y > 0) & (y >= args.min_latency)
            dev, batch = device_from_column(col)
            feats: dict[str, tuple[np.ndarray, object]] = {}

            def features(name: str, dev: str | None = dev, batch: int = batch,
                         feats: dict = feats, space: spaces.SearchSpace = space,
                         G: np.ndarray = G, costs: object = costs) -> tuple[np.ndarray, object]:
                if name not in feats:
                    p = {"device": dev, "batch": batch} if name in ("roofline", "fcc") else {}
                    enc = get_encoder(name, space, **p)
                    feats[name] = (enc.transform(G, costs), enc)  # type: ignore[arg-type]
                return feats[name]

            tied = tied_pairs(y[ok])
            print(f"\n### {space.name} {col}  (device spec {dev}, batch {batch}; "
                  f"{int(ok.sum())} rows, {int((~ok).sum())} dropped; {100 * tied:.1f} % of "
                  f"pairs tied, tau-b ceiling {np.sqrt(1 - tied):.3f})\n", flush=True)
            floor = rounding_floor(y[ok])
            if floor is not None:
                print(f"  whole-ms values: a perfect predictor of the unrounded latency scores "
                      f"MAPE {floor[0]:.2f}% acc10 {floor[1]:.1f}% tau {floor[2]:.3f}",
                      flush=True)
            rows: dict[str, dict[int, list[tuple[float, float, float]]]] = {}
            chosen: dict[int, list[str]] = {n: [] for n in args.sizes}
            fcc_X, fcc_enc = features("fcc")
            configs = [("baseline", None, None, seeds), ("default fcc+auto", "fcc", "auto", seeds)]
            configs += [(f"{e} + {m}", e, m, grid_seeds) for e, m in grid
                        if m != "gcn" or space.name == "nb201"]
            for label, enc_name, model, n_seeds in configs:
                rows[label] = {}
                t0 = time.perf_counter()
                for n in args.sizes:
                    res = []
                    for seed in range(n_seeds):
                        idx = np.flatnonzero(ok)
                        idx = idx[np.random.default_rng(seed).permutation(len(idx))]
                        tr, te = idx[:n], idx[n:]
                        if enc_name is None:
                            X = base_X
                            est = make_regressor("ridge", target="identity")
                        else:
                            X, enc = features(enc_name)
                            if model == "auto":
                                est = make_regressor("auto", seed=seed,
                                                     column_sets=default_column_sets(enc))
                            elif model == "gcn":
                                from esm.surrogate.gcn import graph_for_space

                                est = make_regressor("gcn", seed=seed,
                                                     graph=graph_for_space(space))
                            else:
                                est = make_regressor(model, seed=seed)
                        est.fit(X[tr], y[tr])
                        res.append(evaluate(y[te], est.predict(X[te])))
                        if model == "auto":
                            chosen[n].append(est.chosen_)
                    rows[label][n] = res
                print(f"  {label:<22} " + "  ".join(
                    f"n={n}: MAPE {np.mean([r[0] for r in rows[label][n]]):6.2f}% "
                    f"acc10 {np.mean([r[1] for r in rows[label][n]]):5.1f}% "
                    f"tau {np.mean([r[2] for r in rows[label][n]]):.3f}" for n in args.sizes)
                    + f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
            del fcc_X, fcc_enc
            tables.append((space.name, col, dev, batch, int(ok.sum()), (tied, floor),
                           {k: {n: np.mean(v[n], axis=0) for n in v} for k, v in rows.items()},
                           {k: len(v[args.sizes[0]]) for k, v in rows.items()}))
            for n in args.sizes:
                b = np.mean(rows["baseline"][n], axis=0)
                d = np.mean(rows["default fcc+auto"][n], axis=0)
                best = min(rows, key=lambda k, n=n: np.mean([r[0] for r in rows[k][n]]))
                summary.append((space.name, col, n, b, d, best,
                                np.mean([r[0] for r in rows[best][n]]),
                                sorted(set(chosen[n]))))
            if args.markdown:  # after every column, so that a cut-short run keeps its tables
                write_markdown(args.markdown, summary, tables, args.sizes, seeds, grid_seeds,
                               time.perf_counter() - t_start, " ".join(sys.argv[1:]))
    print("\n## Summary: default (fcc + auto) vs baseline (ridge on MACs, params, bytes)\n")
    print(f"seeds: {seeds} (baseline, default), {grid_seeds} (grid); evaluation on every row "
          "not used for training or model selection\n")
    print("| space | column | n | baseline MAPE | default MAPE | baseline acc10 | "
          "default acc10 | baseline tau | default tau | beats baseline | best config "
          "(MAPE) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sp, col, n, b, d, best, best_mape, _ in summary:
        print(f"| {sp} | {col} | {n} | {b[0]:.2f} | {d[0]:.2f} | {b[1]:.1f} | {d[1]:.1f} | "
              f"{b[2]:.3f} | {d[2]:.3f} | {'yes' if d[0] < b[0] else 'NO'} | {best} "
              f"({best_mape:.2f}) |")
    print("\nmodels chosen by auto:")
    for sp, col, n, *_, ch in summary:
        print(f"  {sp} {col} n={n}: {', '.join(ch)}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.markdown:
        write_markdown(args.markdown, summary, tables, args.sizes, seeds, grid_seeds,
                       time.perf_counter() - t_start, " ".join(sys.argv[1:]))


def write_markdown(path: str, summary: list, tables: list, sizes: list[int], seeds: int,
                   grid_seeds: int, seconds: float, argv: str) -> None:
    """The summary and every column's table of configurations, as Markdown."""
    out = ["## Default (fcc + auto) vs baseline (ridge on total MACs, params, bytes)", "",
           f"Mean over {seeds} seeds (baseline, default) / {grid_seeds} seeds (grid); every "
           "metric on all rows not used for training or model selection. MAPE and acc10 "
           "(share within +-10 %) in percent, tau = Kendall tau.", "",
           "| space | column | n | baseline MAPE | default MAPE | baseline acc10 | "
           "default acc10 | baseline tau | default tau | beats baseline |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for sp, col, n, b, d, *_ in summary:
        out.append(f"| {sp} | {col} | {n} | {b[0]:.2f} | {d[0]:.2f} | {b[1]:.1f} | "
                   f"{d[1]:.1f} | {b[2]:.3f} | {d[2]:.3f} | {'yes' if d[0] < b[0] else 'NO'} |")
    out += ["", "Models chosen by auto (one-standard-error rule over 5-fold CV on the training "
            "rows):", ""]
    for sp, col, n, *_, ch in summary:
        out.append(f"- {sp} {col} n={n}: {', '.join(ch)}")
    out += ["", "## Every configuration, per column", ""]
    for sp, col, dev, batch, n_rows, (tied, floor), res, n_seeds in tables:
        tie_note = (f"; {100 * tied:.1f} % of pairs tied in the measurements, so Kendall "
                    f"tau-b is at most {np.sqrt(1 - tied):.3f}" if tied > 0 else "")
        out += [f"### {sp} {col} (device spec {dev}, batch {batch}, {n_rows} rows{tie_note})",
                ""]
        if floor is not None:
            out += [f"Whole-millisecond values: a perfect predictor of the unrounded latency "
                    f"(stored value + U(-0.5, 0.5) ms) scores MAPE {floor[0]:.2f}, acc10 "
                    f"{floor[1]:.1f}, tau {floor[2]:.3f} against them.", ""]
        out += ["| config | seeds | " + " | ".join(f"MAPE n={n} | acc10 n={n} | tau n={n}"
                                                  for n in sizes) + " |",
                "|---|---|" + "---|---|---|" * len(sizes)]
        best = {n: min(res, key=lambda k, n=n: res[k][n][0]) for n in sizes}
        for label, by_n in res.items():
            cells = []
            for n in sizes:
                m, a, t = by_n[n]
                mark = "**" if label == best[n] else ""
                cells.append(f"{mark}{m:.2f}{mark} | {a:.1f} | {t:.3f}")
            out.append(f"| {label} | {n_seeds[label]} | " + " | ".join(cells) + " |")
        out.append("")
    out.append(f"Command: `python benchmarks/bench_accuracy.py {argv}` ({seconds:.0f} s).")
    Path(path).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
