"""How precisely can this CPU time a network at 1 thread, for how much time?

The same ``n`` random ofa-mbv3 networks (batch 1, one intra-op thread) are measured in two
rounds, each network built afresh in each round (as a build and a check do), each round in
its own random order, with several settings interleaved network by network so that they
share the machine's conditions:

- ``quick``: the demo's old settings (warm-up <= 0.08 s, 3% CI target, 0.25 s cap);
- ``t0.5``, ``t1.0``: the same with a 0.5 s / 1 s cap and a 1% CI target;
- ``quick-cpu``: ``quick`` on the timing thread's CPU time (``--clock thread_cpu``);
- ``2x-quick``: two fresh instances of the network, ``quick`` each, geometric mean: the same
  time as ``t0.5``, spent on two instances (a network's timing also depends on where its
  instance's memory landed, which one long measurement of one instance cannot average out).

For each it prints the seconds one network takes, and how well two rounds agree: the mean
and median of ``|round 1 / round 2 - 1|`` (the "repeat noise"; half the mean is roughly the
MAPE floor it puts under any model validated on two-round means), and the median ratio of
``thread_cpu`` to wall-clock medians. It also reports the process's cold start: the first
timings of the reference network before any warm-up, against the steady ones.

The load average is printed before and after: on a shared machine the figures measure the
other users too. Usage::

    PYTHONPATH=python python benchmarks/cpu_precision.py [--n 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from esm import spaces
    from esm.collect import REFERENCE_SEED, architectures
    from esm.measure import Settings, measure_module
    from esm.measure.warmup import WarmupRule, precise, warm_up

    space = spaces.get("ofa-mbv3")
    print(f"load average before: {_load()}; torch {torch.__version__}, 1 thread")
    ref = architectures(space, 1, REFERENCE_SEED)[0]
    module, shape = space.build(ref), space.input_shape(ref, 1)
    warm = warm_up(lambda: measure_module(module, shape, "cpu", precise(Settings.quick())),
                   WarmupRule(min_s=5.0, max_s=15.0))
    print(f"cold start: {warm.message()}")
    print("  rounds (ms): " + " ".join(f"{v:.2f}" for v in warm.medians_ms))

    configs = {
        "quick": Settings.quick(),
        "t0.5": Settings.quick(max_time_s=0.5, target_rel_ci=0.01),
        "t1.0": Settings.quick(max_time_s=1.0, target_rel_ci=0.01),
        "quick-cpu": Settings.quick(clock="thread_cpu"),
    }
    nets = architectures(space, args.n, 1000 + args.seed)
    names = [*configs, "2x-quick"]
    med = {k: np.zeros((2, args.n)) for k in names}
    secs = dict.fromkeys(names, 0.0)
    build_s = 0.0
    rng = np.random.default_rng(args.seed)
    for r in range(2):
        for i in rng.permutation(args.n):
            t = time.monotonic()
            m, sh = space.build(nets[i]), space.input_shape(nets[i], 1)
            build_s += time.monotonic() - t
            for k in rng.permutation(names):
                t = time.monotonic()
                if k == "2x-quick":
                    other = space.build(nets[i])
                    med[k][r, i] = float(np.sqrt(
                        measure_module(m, sh, "cpu", configs["quick"]).median_ms
                        * measure_module(other, sh, "cpu", configs["quick"]).median_ms))
                else:
                    med[k][r, i] = measure_module(m, sh, "cpu", configs[k]).median_ms
                secs[k] += time.monotonic() - t
    print(f"load average after: {_load()}; {args.n} networks "
          f"({med['t1.0'][0].min():.1f}-{med['t1.0'][0].max():.1f} ms), module build "
          f"{build_s / (2 * args.n):.3f} s per network")
    print(f"{'settings':10s} {'s/network':>10s} {'repeat mean':>12s} {'median':>8s} "
          f"{'floor':>7s} {'ratio r2/r1':>12s}")
    for k in names:
        e = med[k][1] / med[k][0]
        d = 100 * np.abs(e - 1)
        print(f"{k:10s} {secs[k] / (2 * args.n):10.3f} {d.mean():11.2f}% {np.median(d):7.2f}% "
              f"{d.mean() / 2:6.2f}% {np.median(e):12.4f}")
    cw = med["quick-cpu"] / med["quick"]
    print(f"thread_cpu / wall medians (quick): median {np.median(cw):.4f}")


if __name__ == "__main__":
    main()
