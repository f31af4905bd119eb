"""Do device runtimes execute NAS-Bench-201 operations that cannot reach the cell output?

Counts the cells with no input-to-output path at all, then compares three onehot encodings of
the operations on the rows measured at >= 1 ms whose cell output is connected: as written,
with every operation not on an input-to-output path replaced by ``none`` (live ops only), and
both side by side. Each under two 5-fold ridges: on log latency, and additive (the latency
itself weighted by 1 / latency^2, a relative-error fit: latency is a sum of operation times,
which a log target does not keep). If the runtime prunes dead operations, the live encoding
should win; if it prunes some and runs others, both together should. Evidence for
benchmarks/results/accuracy_phones.md.

Usage::

    python benchmarks/nb201_dead_ops.py
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_latency.csv"
EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
COLUMNS = ["lat_pixel3", "lat_samsung_a50", "lat_essential_ph_1", "lat_gold_6240",
           "lat_2080ti_256"]


def parse(s: str) -> list[str]:
    return [o.split("~")[0] for o in re.findall(r"([a-z_0-9]+~\d)", s)]


def live(ops: list[str]) -> list[str]:
    """The operations with every one not on an input-to-output path replaced by none."""
    fwd = {0}
    for (i, j), o in zip(EDGES, ops, strict=True):
        if o != "none" and i in fwd:
            fwd.add(j)
    bwd = {3}
    for (i, j), o in reversed(list(zip(EDGES, ops, strict=True))):
        if o != "none" and j in bwd:
            bwd.add(i)
    return [o if (o != "none" and i in fwd and j in bwd) else "none"
            for (i, j), o in zip(EDGES, ops, strict=True)]


def onehot(cells: list[list[str]]) -> np.ndarray:
    X = np.zeros((len(cells), len(EDGES) * len(OPS)))
    for n, ops in enumerate(cells):
        for e, o in enumerate(ops):
            X[n, e * len(OPS) + OPS.index(o)] = 1
    return X


def main() -> None:
    with open(DATA, newline="") as fh:
        rows = list(csv.reader(fh))
    header, rows = rows[0], rows[1:]
    written = [parse(r[0]) for r in rows]
    pruned = [live(a) for a in written]
    disconnected = np.array([all(o == "none" for o in p) for p in pruned])
    print(f"{sum(a != p for a, p in zip(written, pruned, strict=True))} of {len(rows)} cells "
          f"have dead operations; {int(disconnected.sum())} have no input-to-output path")
    for col in COLUMNS:
        y = np.array([float(r[header.index(col)]) for r in rows])
        print(f"{col}: {int((y < 1).sum())} rows < 1 ms, of them disconnected "
              f"{int((disconnected & (y < 1)).sum())}")
        ok = (y >= 1.0) & ~disconnected
        both = np.hstack([onehot(written), onehot(pruned)])
        for name, X in (("ops as written", onehot(written)), ("live ops only", onehot(pruned)),
                        ("both", both)):
            cells = []
            for target in ("log", "additive"):
                e = _cv_errors(X[ok], y[ok], target)
                cells.append(f"{target} MAPE {100 * e.mean():6.2f} "
                             f"acc10 {100 * np.mean(e <= 0.1):5.1f}")
            print(f"  {name:15s} " + "   ".join(cells))


def _cv_errors(X: np.ndarray, y: np.ndarray, target: str) -> np.ndarray:
    """Relative errors of 5-fold predictions: a ridge on log latency, or an additive one (the
    latency itself, weighted by 1 / latency^2: relative error, as esm's transfer model fits)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    p = np.empty_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
        m = RidgeCV(alphas=np.logspace(-3, 3, 13))
        if target == "log":
            p[te] = np.exp(m.fit(X[tr], np.log(y[tr])).predict(X[te]))
        else:
            p[te] = m.fit(X[tr], y[tr], sample_weight=1 / y[tr] ** 2).predict(X[te])
    return np.asarray(np.abs(p - y) / y)


if __name__ == "__main__":
    main()
