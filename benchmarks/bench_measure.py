"""Benchmark of esm's latency measurement against torch.utils.benchmark.

Prints, in one run:

1. accuracy on a C++ busy-wait of known length (1 ms, 10 ms): esm ``measure`` vs
   ``torch.utils.benchmark.Timer.adaptive_autorange``, and the CPU share the timing thread got
   (a share well below 100% means the machine was oversubscribed and wall times stretch);
2. per-sample overhead of the timers;
3. the same N ``ofa-mbv3`` networks (CPU, batch 1, fixed threads): esm vs torch medians, their
   relative difference against the noise, and wall time per network (ratio torch / esm);
4. repeatability: the N networks collected again by ``esm.collect`` in a separate run; the
   median relative difference of medians between the two esm runs;
5. the same repeatability with ``Settings(clock="thread_cpu")`` (CPU time of the timing
   thread, single-threaded work), two separate collection runs.

Usage: ``PYTHONPATH=python python benchmarks/bench_measure.py [--n 20] [--max-time 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def busy_wait_accuracy(max_time: float) -> list[dict]:
    from torch.utils import benchmark

    from esm._native import core
    from esm.measure import Settings, measure

    bw = core.busy_wait
    over = float(np.median(core.time_callable(lambda: bw(0.0), 200, 20)))
    out = []
    for d in (1e-3, 1e-2):
        truth = (d + over) * 1e3
        w0, c0 = time.perf_counter(), time.thread_time()
        m = measure(lambda d=d: bw(d), Settings(max_time_s=max_time, min_sample_s=0.0))
        wall = time.perf_counter() - w0
        share = (time.thread_time() - c0) / wall
        cpp = core.time_busy_wait(d, 1, 50) * 1e3  # the timing loop alone, no Python call
        t0 = time.perf_counter()
        tm = benchmark.Timer("bw(d)", globals={"bw": bw, "d": d}).adaptive_autorange(
            max_run_time=max_time)
        twall = time.perf_counter() - t0
        out.append({
            "seconds": d, "truth_ms": truth,
            "esm_median_ms": m.median_ms, "esm_err": m.median_ms / truth - 1,
            "esm_min_err": m.min_ms / truth - 1,
            "esm_ci": [m.ci_low_ms, m.ci_high_ms],
            "esm_ci_contains": m.ci_low_ms <= truth <= m.ci_high_ms,
            "esm_n": m.n_samples, "esm_wall_s": wall, "cpu_share": share,
            "cpp_loop_median_err": float(np.median(cpp)) / (d * 1e3) - 1,
            "cpp_loop_min_err": float(np.min(cpp)) / (d * 1e3) - 1,
            "torch_median_ms": tm.median * 1e3, "torch_err": tm.median * 1e3 / truth - 1,
            "torch_wall_s": twall,
        })
    return out


def overheads() -> dict:
    from torch.utils import benchmark

    from esm._native import core

    empty = core.timer_overhead(20000)
    noop = core.time_callable(lambda: None, 10000, 30)
    t = benchmark.Timer("pass").timeit(200000)
    return {"esm_sample_overhead_ns": float(np.median(empty)) * 1e9,
            "esm_python_call_ns": float(np.median(noop)) * 1e9,
            "torch_timer_pass_ns": t.median * 1e9,
            "clock_resolution_ns": core.clock_resolution(1000) * 1e9}


def networks(n: int, max_time: float, threads: int) -> tuple[list[dict], dict]:
    import torch
    from torch.utils import benchmark

    from esm import spaces
    from esm.collect import architectures, collect
    from esm.measure import Settings, measure_module
    from esm.store import Store, genome_key

    torch.set_num_threads(threads)
    sp = spaces.get("ofa-mbv3")
    genomes = architectures(sp, n, seed=0)
    settings = Settings(max_time_s=max_time)
    rows = []
    for i, g in enumerate(genomes):
        net = sp.build(g).eval()
        shape = sp.input_shape(g, 1)
        t0 = time.perf_counter()
        m = measure_module(net, shape, "cpu", settings, threads=threads)
        esm_wall = time.perf_counter() - t0
        x = torch.randn(*shape)
        with torch.inference_mode():
            t0 = time.perf_counter()
            tm = benchmark.Timer("net(x)", globals={"net": net, "x": x},
                                 num_threads=threads).adaptive_autorange(max_run_time=max_time)
            torch_wall = time.perf_counter() - t0
        tmed = tm.median * 1e3
        rows.append({
            "key": genome_key(g), "esm_ms": m.median_ms, "esm_rel_ci": m.rel_ci,
            "esm_n": m.n_samples, "esm_unstable": m.unstable, "esm_wall_s": esm_wall,
            "esm_cpu_share": m.cpu_share,
            "torch_ms": tmed, "torch_iqr_rel": tm.iqr / tm.median,
            "torch_n": len(tm.times), "torch_wall_s": torch_wall,
            "rel_diff": m.median_ms / tmed - 1,
        })
        print(f"  net {i:2d}: esm {m.median_ms:8.2f} ms (+-{m.rel_ci:.1%}, n={m.n_samples}, "
              f"{esm_wall:.1f} s, CPU share {m.cpu_share:.0%})  torch {tmed:8.2f} ms "
              f"(IQR {tm.iqr / tm.median:.1%}, {torch_wall:.1f} s)  "
              f"diff {m.median_ms / tmed - 1:+.1%}", flush=True)
    # repeatability: a separate esm collection run of the same architectures
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rep.sqlite")
        t0 = time.perf_counter()
        res = collect(sp, "cpu", n, path, threads=threads, settings=settings, progress=False,
                      n_references=0)
        wall = time.perf_counter() - t0
        with Store(path) as st:
            second = {r["key"]: r["median_ms"] for r in st.measurements(res["run_id"])}
    rel = np.array([second[r["key"]] / r["esm_ms"] - 1 for r in rows if r["key"] in second])
    rep = {"n": int(rel.size), "median_abs_rel_diff": float(np.median(np.abs(rel))),
           "max_abs_rel_diff": float(np.max(np.abs(rel))), "collect_wall_s": wall}
    # thread-CPU clock: two separate collection runs
    cpu_runs = []
    cpu_settings = settings.replace(clock="thread_cpu")
    for _ in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cpu.sqlite")
            t0 = time.perf_counter()
            res = collect(sp, "cpu", n, path, threads=threads, settings=cpu_settings,
                          progress=False, n_references=0)
            wall = time.perf_counter() - t0
            with Store(path) as st:
                ms = st.measurements(res["run_id"])
            cpu_runs.append(({r["key"]: r["median_ms"] for r in ms}, wall,
                             float(np.mean([not r["unstable"] for r in ms]))))
    a, b = cpu_runs[0][0], cpu_runs[1][0]
    rc = np.array([b[k] / a[k] - 1 for k in a if k in b])
    wall_vs = np.array([a[r["key"]] / r["esm_ms"] - 1 for r in rows if r["key"] in a])
    rep["thread_cpu"] = {
        "n": int(rc.size), "median_abs_rel_diff": float(np.median(np.abs(rc))),
        "max_abs_rel_diff": float(np.max(np.abs(rc))),
        "wall_s": [cpu_runs[0][1], cpu_runs[1][1]],
        "reached_target": [cpu_runs[0][2], cpu_runs[1][2]],
        "median_rel_diff_vs_wall": float(np.median(wall_vs)),
    }
    return rows, rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="ofa-mbv3 networks")
    ap.add_argument("--max-time", type=float, default=3.0,
                    help="time cap per measurement, both tools (s)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write all figures to this JSON file")
    args = ap.parse_args()
    t_all = time.perf_counter()
    print(f"load average at start: {_load():.1f} on {os.cpu_count()} cores")
    print("== busy-wait accuracy (truth = wait + measured call cost)")
    acc = busy_wait_accuracy(args.max_time)
    for a in acc:
        print(f"  {a['seconds'] * 1e3:4.0f} ms: esm median {a['esm_median_ms']:.4f} ms "
              f"({a['esm_err']:+.2%}, min {a['esm_min_err']:+.3%}, CI contains truth: "
              f"{a['esm_ci_contains']}, n={a['esm_n']}, {a['esm_wall_s']:.2f} s, CPU share "
              f"{a['cpu_share']:.0%}) | torch adaptive_autorange {a['torch_median_ms']:.4f} ms "
              f"({a['torch_err']:+.2%}, {a['torch_wall_s']:.2f} s) | C++ loop without Python: "
              f"median {a['cpp_loop_median_err']:+.3%}, min {a['cpp_loop_min_err']:+.4%}")
    print("== timer overhead")
    ov = overheads()
    print(f"  esm per-sample overhead {ov['esm_sample_overhead_ns']:.0f} ns; esm per Python "
          f"call {ov['esm_python_call_ns']:.0f} ns; torch Timer 'pass' "
          f"{ov['torch_timer_pass_ns']:.0f} ns; clock resolution "
          f"{ov['clock_resolution_ns']:.0f} ns")
    print(f"== {args.n} ofa-mbv3 networks, CPU, batch 1, {args.threads} thread(s), "
          f"cap {args.max_time} s per measurement")
    rows, rep = networks(args.n, args.max_time, args.threads)
    diff = np.array([r["rel_diff"] for r in rows])
    noise = np.array([r["esm_rel_ci"] for r in rows])
    ew = sum(r["esm_wall_s"] for r in rows)
    tw = sum(r["torch_wall_s"] for r in rows)
    reached = sum(not r["esm_unstable"] for r in rows)
    print(f"  esm vs torch medians: median |diff| {np.median(np.abs(diff)):.2%}, max "
          f"{np.max(np.abs(diff)):.2%}; within esm's CI half-width (x2): "
          f"{int(np.sum(np.abs(diff) <= 2 * noise))}/{len(rows)}")
    print(f"  wall time: esm {ew:.1f} s, torch {tw:.1f} s, ratio torch/esm {tw / ew:.2f}; "
          f"esm reached its 1% CI target on {reached}/{len(rows)}")
    print(f"  repeatability (two esm runs): median |rel diff| {rep['median_abs_rel_diff']:.2%}, "
          f"max {rep['max_abs_rel_diff']:.2%} over {rep['n']} networks "
          f"(second run {rep['collect_wall_s']:.1f} s)")
    tc = rep["thread_cpu"]
    print(f"  thread-CPU clock, two esm runs: median |rel diff| {tc['median_abs_rel_diff']:.2%}, "
          f"max {tc['max_abs_rel_diff']:.2%} over {tc['n']} networks; reached the 1% target "
          f"{tc['reached_target'][0]:.0%} / {tc['reached_target'][1]:.0%}; wall "
          f"{tc['wall_s'][0]:.1f} s / {tc['wall_s'][1]:.1f} s; its medians vs wall-clock "
          f"medians: {tc['median_rel_diff_vs_wall']:+.1%} (median)")
    print(f"load average at end: {_load():.1f}; total {time.perf_counter() - t_all:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"busy_wait": acc, "overhead": ov, "networks": rows,
                       "repeatability": rep}, fh, indent=1)


if __name__ == "__main__":
    main()
