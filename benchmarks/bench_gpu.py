"""esm on a CUDA GPU: the compiled predictor on the device, and CUDA-event measurement.

Prints, in one run (needs a GPU and esm built with CUDA):

1. **Predictor** — for ``--n`` random ofa-mbv3 genomes and each device family (LUT, linear,
   gradient-boosted trees, random forest), trained on real latencies when
   ``../shared/data/ofa_mbv3_gpu.csv`` is there: genomes -> latency per second on the CPU
   (compiled, all cores), on the GPU from NumPy genomes (copies included) and from genomes
   already on the GPU (cupy, when installed), the GPU / CPU ratio and the largest relative
   difference between the two paths.
2. **Measurement** — ``--nets`` ofa-mbv3 networks on the GPU at batch 1 and ``--batch``: esm
   ``measure_module`` (CUDA events, adaptive stopping) against
   ``torch.utils.benchmark.Timer.blocked_autorange``: the two medians' relative difference,
   esm's CI, wall time per network, and esm's repeatability over two separate ``collect`` runs.

Usage: ``PYTHONPATH=python python benchmarks/bench_gpu.py [--n 1000000] [--nets 10]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from bench_predict import _train_data
from esm import cuda, spaces
from esm.predictor import Predictor
from esm.predictor.convert import from_estimator
from esm.surrogate import encoders


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def predictor(n: int, train: int, column: str, repeat: int) -> None:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge

    cp = importlib.import_module("cupy") if importlib.util.find_spec("cupy") else None
    space = spaces.get("ofa-mbv3")
    g_train, y_train = _train_data(space, train, column)
    genomes = space.sample(n, seed=123)
    g_dev = cp.asarray(genomes) if cp is not None else None
    print(f"== predictor: {n:,} random ofa-mbv3 genomes, trained on {len(g_train)} rows of "
          f"{column}; {os.cpu_count()} CPUs; cupy {'yes' if cp is not None else 'no'}")
    hdr = (f"{'family':<26} {'cpu/s':>12} {'gpu/s (numpy)':>14} {'gpu/s (cupy)':>13} "
           f"{'gpu/cpu':>8} {'max rel diff':>13}")
    print(hdr + "\n" + "-" * len(hdr))
    families = [
        ("lut (ridge, onehot)", "lut", lambda: Ridge(alpha=1.0)),
        ("linear (ridge, fcc)", "fcc", lambda: Ridge(alpha=1.0)),
        ("gbt 200x d8 (onehot)", "onehot", lambda: GradientBoostingRegressor(
            n_estimators=200, max_depth=8, subsample=0.8, random_state=0)),
        ("gbt 200x d8 (fcc)", "fcc", lambda: GradientBoostingRegressor(
            n_estimators=200, max_depth=8, subsample=0.8, random_state=0)),
        ("random forest 100 (onehot)", "onehot", lambda: RandomForestRegressor(
            n_estimators=100, max_depth=12, n_jobs=-1, random_state=0)),
    ]
    for label, encoding, make in families:
        enc = encoders.get_encoder(encoding, space)
        X = enc.transform(g_train)
        mean, scale = X.mean(0), X.std(0)
        scale[scale <= 1e-12] = 1.0
        est = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit((X - mean) / scale, np.log(y_train))
        pred = Predictor(from_estimator(est, x_mean=mean, x_scale=scale, target="log"), enc)
        pred.predict(genomes[:1000])
        pred.predict(genomes[:1000], device="cuda")  # warm up: device model, kernels
        t_cpu, ref = _best(lambda p=pred: p.predict(genomes), repeat)
        t_gpu, out = _best(lambda p=pred: p.predict(genomes, device="cuda"), repeat)
        diff = float(np.max(np.abs(np.asarray(out) - ref) / np.abs(ref)))
        cupy_rate = "-"
        if cp is not None:
            def on_device(p: Predictor = pred) -> Any:
                res = p.predict(g_dev, device="cuda")
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


def measurement(nets: int, batch: int, max_time: float) -> None:
    import torch
    from torch.utils import benchmark

    from esm.collect import architectures, collect
    from esm.measure import Settings, measure_module
    from esm.store import Store, genome_key

    sp = spaces.get("ofa-mbv3")
    genomes = architectures(sp, nets, seed=0)
    settings = Settings(max_time_s=max_time)
    print(f"== measurement: {nets} ofa-mbv3 networks on {torch.cuda.get_device_name(0)}, "
          f"cap {max_time} s per measurement")
    for bs in (1, batch):
        rows = []
        for g in genomes:
            net = sp.build(g).eval().cuda()
            shape = sp.input_shape(g, bs)
            t0 = time.perf_counter()
            m = measure_module(net, shape, "cuda", settings)
            esm_wall = time.perf_counter() - t0
            x = torch.randn(*shape, device="cuda")
            with torch.inference_mode():
                t0 = time.perf_counter()
                tm = benchmark.Timer("net(x)", globals={"net": net, "x": x}).blocked_autorange(
                    min_run_time=max_time / 3)
                torch_wall = time.perf_counter() - t0
            rows.append((genome_key(g), m.median_ms, m.rel_ci, m.unstable, esm_wall,
                         tm.median * 1e3, torch_wall))
        diff = np.array([r[1] / r[5] - 1 for r in rows])
        ci = np.array([r[2] for r in rows])
        med = np.median([r[1] for r in rows])
        print(f"  batch {bs}: median latency {med:.3f} ms; esm vs torch medians: median |diff| "
              f"{np.median(np.abs(diff)):.2%}, max {np.max(np.abs(diff)):.2%}; esm CI half-width "
              f"median {np.median(ci):.2%}; reached target {sum(not r[3] for r in rows)}/"
              f"{len(rows)}; wall per network esm {np.mean([r[4] for r in rows]):.2f} s, torch "
              f"{np.mean([r[6] for r in rows]):.2f} s", flush=True)
        if bs == 1:
            first = {r[0]: r[1] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rep.sqlite")
        t0 = time.perf_counter()
        res = collect(sp, "cuda", nets, path, settings=settings, progress=False, n_references=0)
        wall = time.perf_counter() - t0
        with Store(path) as st:
            second = {r["key"]: r["median_ms"] for r in st.measurements(res["run_id"])}
    rel = np.array([second[k] / v - 1 for k, v in first.items() if k in second])
    print(f"  repeatability, batch 1 (a separate esm collect run, {wall:.1f} s): median |rel "
          f"diff| {np.median(np.abs(rel)):.2%}, max {np.max(np.abs(rel)):.2%} over {rel.size} "
          f"networks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="genomes to predict")
    ap.add_argument("--train", type=int, default=2000, help="training rows")
    ap.add_argument("--column", default="lat_2080ti_32")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--nets", type=int, default=10, help="networks to measure")
    ap.add_argument("--batch", type=int, default=32, help="the larger measured batch")
    ap.add_argument("--max-time", type=float, default=2.0, help="cap per measurement (s)")
    ap.add_argument("--skip-measure", action="store_true")
    args = ap.parse_args()
    if not cuda.available():
        raise SystemExit(f"no usable CUDA device: {cuda.devices()[1]}")
    print(f"device: {cuda.devices()[0][0]}")
    predictor(args.n, args.train, args.column, args.repeat)
    if not args.skip_measure:
        measurement(args.nets, args.batch, args.max_time)


if __name__ == "__main__":
    main()
