"""Throughput of batched cost features vs. the per-genome ways users would otherwise get them.

Computes costs of 1,000,000 random ``ofa-mbv3`` genomes with the compiled core (totals only,
and with per-slot detail), and compares the per-genome rate with the spec walker's interpreter
(what a spec gets when its cost tables would be too large), the pure-Python reference walk and
counting MACs/params by forward hooks on built torch modules (the usual way: thop/fvcore-style).
Everything is measured in this one run. ``benchmarks/results/bench_walker.txt`` compares the
walker with the hand-written kernels it replaced.

Usage: python benchmarks/bench_features.py [--n 1000000] [--space ofa-mbv3] [--threads 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from esm import spaces


def best_of(fn, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--space", default="ofa-mbv3")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--python-n", type=int, default=2000, help="genomes for the Python walk")
    ap.add_argument("--torch-n", type=int, default=10, help="genomes for torch hook counting")
    args = ap.parse_args()

    space = spaces.get(args.space)
    genomes = space.sample(args.n, seed=0)
    t_sample = best_of(lambda: space.sample(args.n, seed=0), 1)
    t_tot = best_of(lambda: space.costs(genomes, threads=args.threads, detail=False))
    t_det = best_of(lambda: space.costs(genomes, threads=args.threads, detail=True))
    t_one = best_of(lambda: space.costs(genomes, threads=1, detail=False))
    t_interp = None
    if space.kernel == "spec":
        from esm._native import core

        program = space.config.copy()
        program[5] = 0  # header word kHMode: interpret every genome (csrc/include/esm/spec.hpp)
        part = genomes[: max(1, args.n // 10)]
        t_interp = best_of(lambda: core.costs("spec", part, program, 1, False)) / len(part)

    sub = genomes[: args.python_n]
    t0 = time.perf_counter()
    for g in sub:
        space.reference_costs(g)
    per_py = (time.perf_counter() - t0) / len(sub)

    rows = [
        ("compiled, totals, all threads", args.n / t_tot),
        ("compiled, totals, 1 thread", args.n / t_one),
        ("compiled, with per-slot detail", args.n / t_det),
        *([("compiled, interpreter, 1 thread", 1 / t_interp)] if t_interp else []),
        ("Python reference walk (per genome)", 1 / per_py),
    ]
    try:
        from esm.spaces.nets.counting import count_macs_params

        t0 = time.perf_counter()
        for g in genomes[: args.torch_n]:
            count_macs_params(space.build(g), space.input_shape(g))
        per_torch = (time.perf_counter() - t0) / args.torch_n
        rows.append(("torch build + forward hooks (per genome)", 1 / per_torch))
    except ImportError:
        print("(torch not installed: hook counting skipped)")

    # the compiled totals must agree with the reference on the Python subset
    ref = np.array([space.reference_costs(g)["macs"] for g in sub[:200]])
    assert (space.costs(sub[:200]).macs == ref).all()

    print(f"space {args.space}, {args.n:,} random genomes (sampling took {t_sample:.3f} s)")
    print(f"{'method':<44}{'genomes/s':>14}{'vs compiled':>14}")
    best = args.n / t_tot
    for name, rate in rows:
        shown = f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"
        print(f"{name:<44}{shown:>14}{best / rate:>13,.1f}x")
    goal = 2_000_000
    print(f"goal >= {goal:,}/s decode included (totals): {'met' if best >= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
