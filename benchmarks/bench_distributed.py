"""Wall time of the Ray backend: 1 worker vs 2 workers vs the local backend, in one run.

1. collection: ``--n`` architectures of a tiny NAS-Bench-201 (the fastest networks, fixed
   quick settings) measured by ``esm.collect.collect`` (local) and by
   ``esm.distributed.collect`` with 1 and 2 CPU workers (1 thread each); worker start-up
   (process + torch import) is reported apart from the time spent measuring.
2. prediction: ``--rows`` seeded random ``ofa-mbv3`` genomes through one saved surrogate,
   locally (the same predict function the workers use, 1 thread) and sharded over 1 and 2
   workers (genomes generated in the workers from (seed, shard), nothing shipped but the
   model); the results must equal the local ones.

A private Ray instance with ``--cpus`` CPUs is started on 127.0.0.1 (dashboard off). On a
shared machine the load average (printed) bounds what 2 workers can gain.

Usage: ``PYTHONPATH=python python benchmarks/bench_distributed.py [--n 24] [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TINY = {"channels": 4, "cells": 1, "resolution": 8}


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def bench_collect(n: int, tmp: Path) -> list[dict]:
    from esm.collect import collect
    from esm.distributed import collect as ray_collect
    from esm.measure import Settings
    from esm.store import Store

    s = Settings.quick(max_time_s=0.1)
    out = []
    with Store(tmp / "warm.db") as st:  # torch import and first-network costs, not timed
        collect("nb201", "cpu", 1, st, seed=99, threads=1, settings=s, progress=False,
                n_references=0, space_params=TINY)
    t = time.monotonic()
    with Store(tmp / "local.db") as st:
        r = collect("nb201", "cpu", n, st, seed=1, threads=1, settings=s, progress=False,
                    n_references=0, space_params=TINY)
    out.append({"backend": "local", "workers": 1, "startup_s": 0.0,
                "measure_s": time.monotonic() - t, "measured": r["measured"],
                "load": _load()})
    for w in (1, 2):
        with Store(tmp / f"ray{w}.db") as st:
            r = ray_collect("nb201", "cpu", n, st, seed=1, settings=s, progress=False,
                            workers=w, space_params=TINY)
        out.append({"backend": "ray", "workers": w, "startup_s": r["startup_s"],
                    "measure_s": r["elapsed_s"] - r["startup_s"], "measured": r["measured"],
                    "load": _load()})
    return out


def bench_predict(rows: int, tmp: Path) -> list[dict]:
    from esm import spaces
    from esm.distributed import predict as ray_predict
    from esm.distributed.ray_predict import load_predictor
    from esm.surrogate.surrogate import Surrogate

    sp = spaces.get("ofa-mbv3")
    g = sp.sample(300, seed=0)
    y = 1.0 + sp.costs(g).macs * 1e-7
    path = tmp / "m.esm"
    Surrogate.fit(sp, g, y, encoding="fcc", model="ridge").save(path)
    _, fn, compiled = load_predictor(path.read_bytes())
    t = time.perf_counter()
    want = fn(sp.sample(rows, seed=5), 1, 65536)
    out = [{"backend": "local", "workers": 1, "startup_s": 0.0,
            "predict_s": time.perf_counter() - t, "compiled": compiled, "load": _load()}]
    for w in (1, 2):
        got, info = ray_predict(path, random=rows, seed=5, workers=w, threads=1)
        assert got is not None and np.array_equal(got, want), "sharded != local"
        out.append({"backend": "ray", "workers": w, "startup_s": info["startup_s"],
                    "predict_s": info["seconds"], "shards": info["shards"],
                    "compiled": info["compiled"], "load": _load()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="architectures to collect")
    ap.add_argument("--rows", type=int, default=1_000_000, help="genomes to predict")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import ray

    src = str(Path(__file__).resolve().parents[1] / "python")
    env = {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": env}, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as d:
            res = {"cpus": os.cpu_count(), "ray_cpus": args.cpus,
                   "collect": bench_collect(args.n, Path(d)),
                   "predict": bench_predict(args.rows, Path(d))}
    finally:
        ray.shutdown()
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"machine: {res['cpus']} cores; Ray instance with {args.cpus} CPUs")
    for what, key, unit in (("collect", "measure_s", f"{args.n} archs"),
                            ("predict", "predict_s", f"{args.rows} genomes")):
        rows = res[what]
        one = next(r[key] for r in rows if r["backend"] == "ray" and r["workers"] == 1)
        loc = rows[0][key]
        print(f"\n{what} ({unit}): wall s excluding worker start-up; ratio vs ray x1, vs local")
        for r in rows:
            print(f"  {r['backend']:<5} x{r['workers']}: {r[key]:8.2f} s  start-up "
                  f"{r['startup_s']:5.1f} s  {one / r[key]:5.2f}x  {loc / r[key]:5.2f}x  "
                  f"(load avg {r['load']:.1f})")


if __name__ == "__main__":
    main()
