"""Search quality of the default evolution batch schedule against the historical default.

The historical default of :func:`esm.search.regularized_evolution` evaluated ``P // 4 = 25``
children per generation for the whole run; the new default (``batch=None``) keeps that loop
for the first 4000 generations and then doubles the batch every 8 generations up to 4000, so
long runs evaluate large batches. This script compares the mean best objective over seeds at
equal evaluation counts (20k, 100k, 400k, 1M), reading each run's per-generation history at
the last generation that fits the count.

Cases: ofa-mbv3 with the default model trained on 500 rows of ``lat_titan_xp_64`` (40 ms
budget, maximise MACs), and fbnet with a huber/fcc model on 500 rows of ``lat_2080ti_1``
(budget: the 20% latency quantile of random networks, maximise MACs).

Usage: python benchmarks/search_defaults.py [--seeds 5] [--model PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from esm import spaces
from esm.search import make_problem, regularized_evolution
from esm.search.evolution import default_batch
from esm.surrogate import Surrogate

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COUNTS = (20_000, 100_000, 400_000, 1_000_000)


def _rows(csv_name: str, column: str, space: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    with (DATA / csv_name).open(newline="") as fh:
        recs = [r for r in csv.DictReader(fh) if r.get(column)][:n]
    return space.from_strs([r["arch"] for r in recs]), np.array([float(r[column]) for r in recs])


def _evals_per_generation(population: int, batch: int | None, generations: int) -> np.ndarray:
    """Cumulative evaluations after generation 0..generations (history index)."""
    sizes = [batch if batch is not None else default_batch(population, g)
             for g in range(generations)]
    return population + np.concatenate([[0], np.cumsum(sizes)])


def _best_at(res: Any, population: int, batch: int | None, counts: tuple[int, ...]
             ) -> list[float]:
    hist = np.asarray(res.history, dtype=np.float64)
    cum = _evals_per_generation(population, batch, len(hist) - 1)
    out = []
    for c in counts:
        i = int(np.searchsorted(cum, c, side="right")) - 1
        out.append(float(hist[i]) if i >= 0 else float("nan"))
    return out


def run_case(name: str, model: Any, budget: float, seeds: int, counts: tuple[int, ...]
             ) -> list[dict[str, Any]]:
    rows = []
    for label, batch in (("old (batch 25)", 25), ("new (default)", None)):
        bests, walls = [], []
        for seed in range(seeds):
            prob = make_problem(latency_model=model, objective="macs", maximize=True,
                                latency_budget=budget)
            t0 = time.perf_counter()
            res = regularized_evolution(prob, population=100, batch=batch,
                                        max_evaluations=max(counts), seed=seed)
            walls.append(time.perf_counter() - t0)
            bests.append(_best_at(res, 100, batch, counts))
        mean = np.mean(np.asarray(bests), axis=0)
        rows.append({"case": name, "variant": label, "best": mean.tolist(),
                     "wall_s": float(np.mean(walls)), "per_seed": bests})
        print(f"{name:28s} {label:16s} " + " ".join(f"{v:14.6g}" for v in mean)
              + f"   {np.mean(walls):6.1f} s/run", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--model", default=None, help="ofa-mbv3 model file (else trained here)")
    ap.add_argument("--out", default=None, help="write a markdown table here")
    args = ap.parse_args()
    print(f"{'case':28s} {'variant':16s} " + " ".join(f"{c:>14d}" for c in COUNTS)
          + "   (mean best MACs over seeds at equal evaluations)")
    all_rows = []
    mbv3 = spaces.get("ofa-mbv3")
    if args.model:
        model: Any = Surrogate.load(args.model)
    else:
        g, y = _rows("ofa_mbv3_gpu.csv", "lat_titan_xp_64", mbv3, 500)
        model = Surrogate.fit(mbv3, g, y, column="lat_titan_xp_64")
    all_rows += run_case("ofa-mbv3 titan 40ms macs", model, 40.0, args.seeds, COUNTS)
    fb = spaces.get("fbnet")
    g, y = _rows("fbnet_latency.csv", "lat_2080ti_1", fb, 500)
    fmodel = Surrogate.fit(fb, g, y, encoding="fcc", model="huber", column="lat_2080ti_1")
    budget = float(np.quantile(fmodel.predict(fb.sample(5000, seed=0)), 0.2))
    all_rows += run_case(f"fbnet 2080ti {budget:.2f}ms macs", fmodel, budget, args.seeds,
                         COUNTS)
    ok = all(n >= o for a, b in zip(all_rows[::2], all_rows[1::2], strict=True)
             for o, n in zip(a["best"], b["best"], strict=True))
    print("new >= old at every count:", ok)
    if args.out:
        lines = ["| case | variant | " + " | ".join(f"{c:,} evals" for c in COUNTS)
                 + " | s/run |", "|---|---|" + "---|" * (len(COUNTS) + 1)]
        for r in all_rows:
            lines.append(f"| {r['case']} | {r['variant']} | "
                         + " | ".join(f"{v:,.0f}" for v in r["best"])
                         + f" | {r['wall_s']:.1f} |")
        lines.append(f"\nnew >= old at every count: {ok} ({args.seeds} seeds, mean best)")
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
