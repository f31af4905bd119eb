"""Generic spec walker vs the hand-written cost kernels it replaces (ofa-mbv3, ofa-resnet50,
fbnet): genomes per second of ``esm._core.costs`` on the same random genomes, totals only and
with per-slot detail, one thread and all threads. Old and new calls alternate, and each figure
is the best of ``--passes`` passes, so that a shared machine's noise hits both alike; the ratio
column is walker / hand-written (above 1: the walker is faster). Also shown: the walker's
interpreter (the definition it tabulates from), as the rate a spec gets when its tables would be
too large.

Usage: python benchmarks/bench_walker.py [--n 1000000] [--passes 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from esm import spaces
from esm._native import core
from esm.spaces.blocks import mid_channels
from esm.spaces.reference import make_divisible as md

WIDTHS = (0.65, 0.8, 1.0)


def hand_config(name: str) -> np.ndarray:
    """The integer plan the hand-written kernel of ``name`` took (default parameters)."""
    if name == "ofa-mbv3":
        w = [md(c * 1.2, 8) for c in (16, 16, 24, 40, 80, 112, 160, 960, 1280)]
        return np.array([*w, 1000, 25, 128, 4], np.int64)
    if name == "ofa-resnet50":
        stem = [md(64 * m, 8) for m in WIDTHS]
        mid = [md(c // 2, 8) for c in stem]
        widths = [[md(b * m, 8) for m in WIDTHS] for b in (256, 512, 1024, 2048)]
        mids = [mid_channels(o, e, 8) for st in widths for o in st for e in (0.2, 0.25, 0.35)]
        return np.array([*mid, *stem, *sum(widths, []), *mids, 1000, 25, 128, 4], np.int64)
    return np.array([16, 16, 24, 32, 64, 112, 184, 352, 1504, 100, 32, 1,
                     1, 1, 2, 2, 1, 2, 1], np.int64)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--passes", type=int, default=7)
    args = ap.parse_args()
    print(f"{'space':<13}{'detail':<8}{'threads':<9}{'hand M/s':>10}{'walker M/s':>12}"
          f"{'ratio':>8}{'interp M/s':>12}")
    for name in ("ofa-mbv3", "ofa-resnet50", "fbnet"):
        sp = spaces.get(name)
        g = sp.sample(args.n, seed=0)
        cfg = hand_config(name)
        interp = sp.config.copy()
        interp[5] = 0  # header word kHMode: interpret every genome
        small = g[:2000]
        want = core.costs(name, small, cfg, 1, True)
        for prog in (sp.config, interp):
            got = core.costs("spec", small, prog, 1, True)
            assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
        for detail in (False, True):
            for threads in (1, 0):
                old, new, slow = [], [], []
                for _ in range(args.passes):
                    old.append(timed(lambda: core.costs(name, g, cfg, threads, detail)))
                    new.append(timed(lambda: core.costs("spec", g, sp.config, threads, detail)))
                    slow.append(timed(lambda: core.costs("spec", g[: args.n // 10], interp,
                                                         threads, detail)) * 10)
                o, w, s = min(old), min(new), min(slow)
                print(f"{name:<13}{detail!s:<8}{threads or 'all'!s:<9}{args.n / o / 1e6:>10.2f}"
                      f"{args.n / w / 1e6:>12.2f}{o / w:>8.2f}{args.n / s / 1e6:>12.2f}")


if __name__ == "__main__":
    main()
