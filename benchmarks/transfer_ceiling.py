"""How far can any model go on each visible column, given thousands of its rows?

``benchmarks/transfer.py`` judges few-shot transfer on the visible columns of
``../shared/data``, each left out in turn, and its ``ceiling`` is the transfer model itself
fitted on 1,000 target rows (its fit takes minutes there, so it is not repeated here). A
column whose ceiling is below a goal may still be held there by the model's form rather than
by the column's noise. This script asks the question of other model families. Per column,
one split: ``--rows`` random rows (at most 80 % of the file) to fit, every other row to score
(Spearman rho, MAPE):

- ``ridge``: a relative-error ridge (weights 1 / y^2, alpha by 3-fold cross-validation: how
  :mod:`esm.transfer` fits each prior column) on the same features, without a prior: a
  per-layer cost and operation table;
- ``pairs``: the ridge plus one-hot pairs of genes (every pair of choices of every pair of
  genes), on spaces of at most 8 genes (nb201: 375 interactions within a cell);
- ``hgb``: histogram gradient boosting on the log-latency of the one-hot genes and the same
  features: any interaction, learned from the rows.

The ``best`` column is the best rho of the three per column. Its mean is an estimate of the
most a few-shot method could reach on these columns: the few shots cannot beat the same
column's own thousands of rows, by any of these models.

Usage::

    python benchmarks/transfer_ceiling.py [--spaces nb201,fbnet,ofa-mbv3,anb-mnasnet]
        [--rows 4000] [--out benchmarks/results/transfer_ceiling.md]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as bench  # noqa: E402
from esm.transfer import _fit_device, feature_encoder  # noqa: E402

MODELS = ("ridge", "pairs", "hgb")
#: Genomes of at most this many genes also get the ``pairs`` model.
PAIR_GENES = 8
#: The issue's rho goals on the visible stand-ins (``transfer.py``'s ``main`` tables).
GOALS = {"nb201": "mean rho >= 0.97 at 10 networks and >= 0.975 at 20",
         "fbnet": "mean rho >= 0.97 at 10 networks"}


def pair_features(genomes: np.ndarray, choices: int) -> np.ndarray:
    """One-hot pairs of genes: gene i takes a and gene j takes b, for every i < j."""
    g = genomes.shape[1]
    cols = [(genomes[:, i] * choices + genomes[:, j])[:, None] == np.arange(choices**2)
            for i in range(g) for j in range(i + 1, g)]
    return np.hstack(cols).astype(np.float64)


def standardise(X: np.ndarray, tr: np.ndarray) -> np.ndarray:
    sd = X[tr].std(axis=0)
    keep = sd > 1e-12
    return np.asarray((X[:, keep] - X[tr][:, keep].mean(axis=0)) / sd[keep])


def relative_ridge(X: np.ndarray, y: np.ndarray, tr: np.ndarray) -> np.ndarray:
    """The relative-error ridge a prior column is fitted with (intercept free, alpha by 3-fold
    CV; :func:`esm.transfer._fit_device`), on rows ``tr``; predictions for every row."""
    Z = np.hstack([np.ones((len(X), 1)), X])
    return np.asarray(Z @ _fit_device(Z[tr], y[tr]))


def hgb(X: np.ndarray, y: np.ndarray, tr: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=0)
    return np.exp(model.fit(X[tr], np.log(y[tr])).predict(X))


def column(space: Any, g: np.ndarray, cols: list[str], Y: np.ndarray, t: int, rows: int
           ) -> dict[str, tuple[float, float]]:
    """Every model on column ``t``: rho and MAPE on the rows it was not fitted on."""
    y = Y[:, t]
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:min(rows, int(0.8 * len(y)))], idx[min(rows, int(0.8 * len(y))):]
    F = feature_encoder(space).transform(g).astype(np.float64)
    choices = int(space.choices.max())
    models: dict[str, Callable[[], np.ndarray]] = {
        "ridge": lambda: relative_ridge(standardise(F, tr), y, tr),
        "hgb": lambda: hgb(np.hstack([bench.onehot(g, choices), F]), y, tr),
    }
    if g.shape[1] <= PAIR_GENES:
        models["pairs"] = lambda: relative_ridge(
            standardise(np.hstack([F, pair_features(g, choices)]), tr), y, tr)
    out = {}
    for name, predict in models.items():
        out[name] = bench.scores(y[te], predict()[te])
    return out


def table(sname: str, rows: int) -> list[str]:
    space, g, cols, Y = bench.load(sname)
    g = np.asarray(g, np.int64)
    n_fit = min(rows, int(0.8 * len(g)))
    lines = [f"## {sname}: {n_fit:,} rows fitted, {len(g) - n_fit:,} scored", "",
             "| target | " + " | ".join(f"{m} ρ / MAPE" for m in MODELS) + " | best ρ |",
             "|---|" + "---|" * (len(MODELS) + 1)]
    best: list[float] = []
    per_model: dict[str, list[float]] = {m: [] for m in MODELS}
    for t, col in enumerate(cols):
        res = column(space, g, cols, Y, t, rows)
        cells = [f"{res[m][0]:.4f} / {res[m][1]:.2f}" if m in res else "—" for m in MODELS]
        best.append(max(r[0] for r in res.values()))
        for m, r in res.items():
            per_model[m].append(r[0])
        lines.append(f"| {bench.short(col)} | " + " | ".join(cells) + f" | {best[-1]:.4f} |")
        print(lines[-1], flush=True)
    means = [f"**{np.mean(per_model[m]):.4f}**" if per_model[m] else "—" for m in MODELS]
    lines.append("| **mean ρ** | " + " | ".join(means) + f" | **{np.mean(best):.4f}** |")
    if sname in GOALS:
        lines += ["", f"Goal on these columns: {GOALS[sname]}."]
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spaces", default="nb201,fbnet,ofa-mbv3,anb-mnasnet")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "transfer_ceiling.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    lines = ["# What any model reaches with thousands of a column's own rows", "",
             f"Command: `python benchmarks/transfer_ceiling.py --spaces {args.spaces} "
             f"--rows {args.rows}`. Models and protocol: the script's docstring. One split "
             "(seed 0) per column; Spearman ρ and MAPE (%) on the rows not fitted.", ""]
    for sname in args.spaces.split(","):
        lines += table(sname, args.rows)
    lines.append(f"Run time {time.perf_counter() - t0:.0f} s.")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
