"""esm on a CUDA GPU: the compiled predictor on the device, and CUDA-event measurement.

Prints, in one run (needs a GPU and esm built with CUDA):

0. **Flat pipeline** (issue 16) — the default ``fcc`` encoding with a ridge model on ofa-mbv3:
   genomes already on the device (cupy) -> costs -> encode -> folded linear model in one
   kernel (``_cuda.DevicePipeline.predict_linear``) against the compiled CPU path (all cores),
   the ratio and its verdict against the 20x goal, and the largest relative difference;
   then the device search (``esm.search.device``): unconstrained latency minimisation and
   ``esm search --device cuda``'s macs under a latency budget, candidates/s vs the 10M/s goal.
1. **Predictor** — for ``--n`` random ofa-mbv3 genomes and each device family (LUT, linear,
   gradient-boosted trees, random forest), trained on real latencies when
   ``../shared/data/ofa_mbv3_gpu.csv`` is there: genomes -> latency per second on the CPU
   (compiled, all cores), on the GPU from NumPy genomes (copies included) and from genomes
   already on the GPU (cupy, when installed), the GPU / CPU ratio and the largest relative
   difference between the two paths.
2. **Measurement** — ``--nets`` ofa-mbv3 networks on the GPU at batch 1 and ``--batch``: esm
   ``measure_module`` (CUDA events, adaptive stopping) against
   ``torch.utils.benchmark.Timer.blocked_autorange`` and esm in CUDA-graph mode (launch
   overhead removed), two passes over the networks: each tool's repeatability (pass A vs B),
   the tools' relative difference, esm's CI, the SM clock and wall time per network.

Usage: ``PYTHONPATH=python python benchmarks/bench_gpu.py [--n 1000000] [--nets 10]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench_predict import _families, _train_data, fit_compiled
from esm import cuda, spaces
from esm.predictor import Predictor
from esm.surrogate import encoders

#: The families ``device="cuda"`` runs (bench_predict.py's labels).
DEVICE_FAMILIES = ("lut (ridge, onehot)", "linear (ridge, fcc)", "gbt 200x d8 (onehot)",
                   "gbt 200x d8 (fcc)", "random forest 100 (onehot)")


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def predictor(n: int, train: int, column: str, repeat: int, chunk: int) -> None:
    cp = importlib.import_module("cupy") if importlib.util.find_spec("cupy") else None
    space = spaces.get("ofa-mbv3")
    g_train, y_train = _train_data(space, train, column)
    genomes = space.sample(n, seed=123)
    g_dev = cp.asarray(genomes) if cp is not None else None
    print(f"== predictor: {n:,} random ofa-mbv3 genomes, trained on {len(g_train)} rows of "
          f"{column}; {os.cpu_count()} CPUs; GPU chunk {chunk:,}; cupy {cp is not None}")
    hdr = (f"{'family':<26} {'cpu/s':>12} {'gpu/s (numpy)':>14} {'gpu/s (cupy)':>13} "
           f"{'gpu/cpu':>8} {'max rel diff':>13}")
    print(hdr + "\n" + "-" * len(hdr))
    for label, encoding, make in _families(False, False):
        if label not in DEVICE_FAMILIES:
            continue
        enc = encoders.get_encoder(encoding, space)
        pred = Predictor(fit_compiled(enc, make(), g_train, y_train)[1], enc)
        pred.predict(genomes[:1000])
        pred.predict(genomes[:1000], device="cuda")  # warm up: device model, kernels
        t_cpu, ref = _best(lambda p=pred: p.predict(genomes), repeat)
        t_gpu, out = _best(lambda p=pred: p.predict(genomes, device="cuda", chunk=chunk),
                            repeat)
        diff = float(np.max(np.abs(np.asarray(out) - ref) / np.abs(ref)))
        cupy_rate = "-"
        if cp is not None:
            def on_device(p: Predictor = pred) -> Any:
                res = p.predict(g_dev, device="cuda", chunk=chunk)
                cp.cuda.get_current_stream().synchronize()
                return res
            t_dev, res = _best(on_device, repeat)
            diff = max(diff, float(np.max(np.abs(cp.asnumpy(res) - ref) / np.abs(ref))))
            cupy_rate = f"{n / t_dev:,.0f}"
        print(f"{label:<26} {n / t_cpu:>12,.0f} {n / t_gpu:>14,.0f} {cupy_rate:>13} "
              f"{t_cpu / t_gpu:>7.1f}x {diff:>13.1e}", flush=True)
    print("cpu/s: compiled C++ on all cores; gpu/s (numpy): genomes from host memory, result "
          "back to host; gpu/s (cupy): genomes already on the device (only the LUT stays "
          "on the device end to end; other encodings are encoded on the CPU).")


def flat_pipeline(n: int, train: int, column: str, repeat: int) -> None:
    """Section 0: the device flat pipeline (fused fcc + ridge) vs the compiled CPU predictor."""
    from sklearn.linear_model import Ridge

    from esm import _core
    from esm.predictor.plan import build_plan

    if importlib.util.find_spec("cupy") is None:
        print("== flat pipeline: skipped (cupy not installed)")
        return
    cp = importlib.import_module("cupy")
    from esm import _cuda  # type: ignore[attr-defined]

    space = spaces.get("ofa-mbv3")
    g_train, y_train = _train_data(space, train, column)
    enc = encoders.get_encoder("fcc", space)
    est, model, mean, scale = fit_compiled(enc, Ridge(alpha=1.0), g_train, y_train)
    pred = Predictor(model, enc)
    genomes = space.sample(n, seed=321).astype(np.int32)
    flat = _core.FlatPipeline(space.kernel, space.config, build_plan(enc))
    flat.set_linear(np.asarray(est.coef_, float), mean, scale, float(est.intercept_), "log")
    pipe = _cuda.DevicePipeline.from_twin(flat)
    g_dev = cp.asarray(genomes)
    out, bad = cp.empty(n, cp.float64), cp.empty(n, cp.int64)

    def device() -> Any:
        pipe.predict_linear(g_dev.data.ptr, n, out.data.ptr, bad.data.ptr,
                            cp.cuda.get_current_stream().ptr)
        cp.cuda.get_current_stream().synchronize()
        return out

    pred.predict(genomes[:1000])
    device()
    t_cpu, ref = _best(lambda: pred.predict(genomes), repeat)
    t_gpu, res = _best(device, repeat)
    y = cp.asnumpy(res)
    diff = float(np.max(np.abs(y - ref) / np.abs(ref)))
    ratio = t_cpu / t_gpu
    print(f"== flat pipeline: {n:,} ofa-mbv3 genomes on the device, fcc + ridge (log target)")
    print(f"compiled CPU (all {os.cpu_count()} cores) {n / t_cpu:,.0f}/s; device pipeline "
          f"{n / t_gpu:,.0f}/s; ratio {ratio:.1f}x (goal >= 20x: "
          f"{'met' if ratio >= 20 else 'NOT met'}); bad rows {int((cp.asnumpy(bad) >= 0).sum())}; "
          f"max rel diff {diff:.1e} (limit 1e-6: {'ok' if diff <= 1e-6 else 'FAIL'})", flush=True)

    from esm.search.device import CudaOps, device_evolution

    ops = CudaOps(flat, space.choices)
    device_evolution(ops, population=65_536, generations=1, seed=0)  # warm up
    res = device_evolution(ops, population=65_536, generations=30, seed=1)
    print(f"device search (esm.search.device, CudaOps): population 65,536, 30 generations, "
          f"{res.candidates:,} candidates in {res.seconds:.3f} s = {res.rate:,.0f} cand/s "
          f"(goal >= 10M/s: {'met' if res.rate >= 10e6 else 'NOT met'})", flush=True)

    from esm.search.device import device_search

    budget = float(np.quantile(ref, 0.2))  # a budget a fifth of random networks meet
    kw: dict[str, Any] = {"latency_budget": budget, "objective": "macs",
                          "population": 65_536}
    device_search(pred, generations=1, seed=0, **kw)  # warm up
    found = device_search(pred, generations=30, seed=1, **kw)
    loop = found.evaluated / found.settings["search_s"]
    best = (f"best {found.values['latency_ms'][0]:.4g} ms, macs {found.values['macs'][0]:,.0f}"
            if found.found else "nothing feasible")
    print(f"device search with a budget (esm search --device cuda: macs under "
          f"{budget:.4g} ms, feasibility first): population 65,536, 30 generations, "
          f"{found.evaluated:,} candidates in {found.wall_s:.3f} s = {found.per_second:,.0f} "
          f"cand/s end to end, {loop:,.0f} cand/s in the loop (goal >= 10M/s: "
          f"{'met' if loop >= 10e6 else 'NOT met'}); {best}", flush=True)


def _rep(ab: np.ndarray) -> str:
    d = np.abs(ab[1] / ab[0] - 1)
    return f"{np.median(d):.2%} (max {np.max(d):.2%})"


def measurement(nets: int, batch: int, max_time: float) -> None:
    import torch
    from torch.utils import benchmark

    from esm.collect import architectures
    from esm.measure import Settings, measure_module

    sp = spaces.get("ofa-mbv3")
    genomes = architectures(sp, nets, seed=0)
    eager = Settings(max_time_s=max_time)
    graph = eager.replace(cuda_graph=True)
    print(f"== measurement: {nets} ofa-mbv3 networks on {torch.cuda.get_device_name(0)}, "
          f"cap {max_time} s per measurement, two passes over the networks")
    for bs in (1, batch):
        models = [(sp.build(g).eval().cuda(), sp.input_shape(g, bs)) for g in genomes]
        res: dict[str, np.ndarray] = {k: np.zeros((2, nets)) for k in (
            "esm", "graph", "torch", "esm_ci", "esm_ok", "clock", "esm_s", "torch_s")}
        for p in range(2):
            for i, (net, shape) in enumerate(models):
                t0 = time.perf_counter()
                m = measure_module(net, shape, "cuda", eager)
                res["esm_s"][p, i] = time.perf_counter() - t0
                res["esm"][p, i], res["esm_ci"][p, i] = m.median_ms, m.rel_ci
                res["esm_ok"][p, i] = not m.unstable
                res["clock"][p, i] = np.median(m.sm_clock_mhz)
                res["graph"][p, i] = measure_module(net, shape, "cuda", graph).median_ms
                x = torch.randn(*shape, device="cuda")
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    tm = benchmark.Timer("net(x)", globals={"net": net, "x": x}
                                         ).blocked_autorange(min_run_time=max_time / 3)
                    res["torch_s"][p, i] = time.perf_counter() - t0
                res["torch"][p, i] = tm.median * 1e3
        if bs == 1:
            print("  batch 1, per network (ms), pass A / pass B: esm eager | esm graph | torch "
                  "Timer | SM MHz")
            for i in range(nets):
                print("   " + " | ".join(f"{res[k][0, i]:7.3f} / {res[k][1, i]:7.3f}"
                                         for k in ("esm", "graph", "torch"))
                      + f" | {res['clock'][0, i]:5.0f} / {res['clock'][1, i]:5.0f}")

        d = np.abs(res["esm"][0] / res["torch"][0] - 1)
        print(f"  batch {bs}: median latency esm {np.median(res['esm']):.3f} ms, graph "
              f"{np.median(res['graph']):.3f} ms, torch {np.median(res['torch']):.3f} ms; esm vs "
              f"torch (pass A) median |diff| {np.median(d):.2%}, max {np.max(d):.2%}")
        print("    repeatability A vs B, median |rel diff|: " + ", ".join(
            f"{k} {_rep(res[k])}" for k in ("esm", "graph", "torch")))
        print(f"    esm CI half-width median {np.median(res['esm_ci']):.2%}, reached its target "
              f"{int(res['esm_ok'].sum())}/{2 * nets}; wall per network esm "
              f"{res['esm_s'].mean():.2f} s, torch {res['torch_s'].mean():.2f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="genomes to predict")
    ap.add_argument("--train", type=int, default=2000, help="training rows")
    ap.add_argument("--column", default="lat_2080ti_32")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--chunk", type=int, default=65536, help="rows per GPU chunk")
    ap.add_argument("--nets", type=int, default=10, help="networks to measure")
    ap.add_argument("--batch", type=int, default=32, help="the larger measured batch")
    ap.add_argument("--max-time", type=float, default=2.0, help="cap per measurement (s)")
    ap.add_argument("--skip-measure", action="store_true")
    ap.add_argument("--skip-predict", action="store_true")
    args = ap.parse_args()
    if not cuda.available():
        raise SystemExit(f"no usable CUDA device: {cuda.devices()[1]}")
    print(f"device: {cuda.devices()[0][0]}")
    if not args.skip_predict:
        flat_pipeline(args.n, args.train, args.column, args.repeat)
        predictor(args.n, args.train, args.column, args.repeat, args.chunk)
    if not args.skip_measure:
        measurement(args.nets, args.batch, args.max_time)


if __name__ == "__main__":
    main()
