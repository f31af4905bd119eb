"""One table of the whole space against the model itself: nb201 predictions per family.

nb201 has 15,625 cells, so once it has been asked for that many genomes,
:class:`esm.predictor.Predictor` predicts every cell once and looks each genome up in that table
(:func:`esm.predictor.fold.whole_space`), whatever the model family; a device that prunes dead
operations or folds constant-output networks (a transfer fit, :mod:`esm.transfer`) has them
in the table too. For each family, trained on 1,000 rows of real latencies
(``../shared/data/nb201_latency.csv``), this prints in one run the rate of the same model with
the table (``table/s``) and without it (``model/s``: folded per-slot tables for a linear
model, else the fused C++ pipeline, plus the pruned forms and folded outputs in Python where
the device has them), their ratio, and the time of the call that builds the table (15,625
genomes asked for, the model run on every cell).

Usage: python benchmarks/bench_whole_space.py [--n 1000000] [--threads 1] [--passes 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from esm.predictor import Predictor, compile, fold
from esm.prior import PriorData
from esm.surrogate import Surrogate
from esm.transfer import PriorModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import load, pruning_stand_in

FAMILIES = (("ridge (fcc, identity)", "fcc", "ridge", {"target": "identity"}),
            ("ridge (fcc, log)", "fcc", "ridge", {"target": "log"}),
            ("gbt (onehot)", "onehot", "gbt", {}),
            ("forest (onehot)", "onehot", "forest", {}),
            ("mlp (fcc)", "fcc", "mlp", {}),
            ("knn (fcc)", "fcc", "knn", {}),
            ("gp (fcc)", "fcc", "gp", {}),
            ("gcn (onehot)", "onehot", "gcn", {}))


def without_table(sur: Any) -> Predictor:
    """The same predictor with the whole-space table off."""
    keep = fold.WHOLE_SPACE_MAX
    fold.WHOLE_SPACE_MAX = 0
    try:
        return compile(sur)
    finally:
        fold.WHOLE_SPACE_MAX = keep


def transfer_models(space: Any, g: np.ndarray, cols: list[str], Y: np.ndarray
                    ) -> list[tuple[str, Any]]:
    """Transfer fits of pixel3 and of its pruning stand-in (each cell's latency is pixel3's
    of its pruned form) on 20 random cells, the other columns as prior; the row names what
    each fit learned of the device's runtime."""
    t = cols.index("lat_pixel3")
    pri = [j for j in range(len(cols)) if j != t]
    model = PriorModel(PriorData(space, g, Y[:, pri], [cols[j] for j in pri],
                                 ["benchmark"] * len(pri)))
    stand_in = pruning_stand_in(space, g, Y[:, t])
    pick = np.random.default_rng(1).choice(len(g), 20, replace=False)
    out = []
    for name, y in (("transfer (pixel3)", Y[:, t]), ("transfer (pixel3 stand-in)", stand_in)):
        fit = model.fit(g[pick], y[pick])
        flags = ", ".join(f for f, on in (("pruned", fit.pruned_),
                                          ("folded", fit.constant_ms_ is not None)) if on)
        out.append((f"{name} [{flags or 'neither'}]", fit.to_surrogate(g[pick])))
    return out


def rate(p: Predictor, g: np.ndarray, threads: int, passes: int) -> float:
    best = float("inf")
    for _ in range(max(passes, 1)):
        t0 = time.perf_counter()
        p.predict(g, threads=threads)
        best = min(best, time.perf_counter() - t0)
    return len(g) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    if args.n < 15_625:
        ap.error("--n must be at least 15,625 (the table is built once that many are asked for)")
    space, g, cols, Y = load("nb201")
    train = np.random.default_rng(0).choice(len(g), 1000, replace=False)
    y = Y[train, cols.index("lat_titanx_32")]
    models = [(name, Surrogate.fit(space, g[train], y, encoding=e, model=m, column="lat_titanx_32",
                                   target=kw.get("target")))
              for name, e, m, kw in FAMILIES]
    models += transfer_models(space, g, cols, Y)
    q = np.ascontiguousarray(space.sample(args.n, seed=7), np.int32)
    print(f"nb201: {args.n:,} random genomes, {args.threads} thread(s), best of {args.passes}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':42s} {'table/s':>13s} {'model/s':>13s} {'ratio':>7s} {'build ms':>9s}")
    for name, sur in models:
        on, off = compile(sur), without_table(sur)
        t0 = time.perf_counter()
        on.predict(q[:15_625])
        build_ms = 1e3 * (time.perf_counter() - t0)
        assert on.whole_space and not off.whole_space, on.fold_reason
        np.testing.assert_allclose(on.predict(q[:20000]), off.predict(q[:20000]), rtol=1e-12)
        a, b = rate(on, q, args.threads, args.passes), rate(off, q, args.threads, args.passes)
        print(f"{name:42s} {a:13,.0f} {b:13,.0f} {a / b:6.1f}x {build_ms:9.1f}", flush=True)
    print("table/s: one lookup per genome in the whole space's predictions; model/s: the same "
          "model without the table; build ms: the call that builds the table (15,625 genomes "
          "asked for; the model on every cell); predictions equal to 1e-12.")


if __name__ == "__main__":
    main()
