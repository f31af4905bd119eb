"""``esm predict``: latencies of architectures from a saved surrogate, compiled."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from esm.cli.output import add_json_flag, emit_json
from esm.cli.ray_args import add_ray_args
from esm.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="predict latencies with a saved surrogate (compiled, chunked, threaded)",
        description="Predict latencies (ms) of the architectures of a CSV file (column 'arch') "
        "or of N random genomes, with a model file written by `esm train`.",
    )
    p.add_argument("--model", required=True, type=Path, help="model file (from esm train)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="CSV with an 'arch' column")
    src.add_argument("--random", type=int, metavar="N", help="predict N random genomes")
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--out", type=Path, help="write predictions: .csv (arch,latency_ms) or .npy")
    p.add_argument("--threads", type=int, default=0, help="worker threads (0 = all cores)")
    p.add_argument("--chunk", type=int, default=65536, help="rows per piece (bounds memory)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run")
    add_ray_args(p, "predict")
    p.add_argument("--shard-rows", type=int, default=None,
                   help="Ray backend: rows per shard (default min(262144, N / workers))")
    p.add_argument("--shards-dir", type=Path, default=None,
                   help="Ray backend: write one .npy per shard and manifest.json here instead "
                   "of gathering the results (for ranges larger than memory)")
    add_json_flag(p)
    p.set_defaults(func=cmd_predict)


def _load(path: Path) -> Any:
    import esm

    load = getattr(esm, "load", None)
    if load is None:
        raise InputError("this esm has no model-file support (esm.load is missing)")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    return load(path)


def _read_archs(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"data file not found: {path}")
    from esm.surrogate.dataset import open_csv

    try:
        with open_csv(path, "CSV") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "arch" not in reader.fieldnames:
                raise InputError(f"{path}: no 'arch' column")
            return [row["arch"] for row in reader]
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV: {err}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from esm.predictor import compile as compile_predictor

    if args.random is not None and args.random < 0:
        raise InputError(f"--random must be >= 0, got {args.random}")
    if args.chunk <= 0:
        raise InputError(f"--chunk must be positive, got {args.chunk}")
    surrogate = _load(args.model)
    space = surrogate.space
    if args.backend == "ray":
        return _predict_ray(args, space)
    predictor = compile_predictor(surrogate)
    archs: list[str] | None = None
    if args.data is not None:
        archs = _read_archs(args.data)
        genomes = space.from_strs(archs)
    else:
        genomes = space.sample(int(args.random), seed=args.seed)
    t0 = time.perf_counter()
    pred = predictor.predict(genomes, threads=args.threads, chunk=args.chunk, device=args.device)
    seconds = time.perf_counter() - t0
    pred = np.asarray(pred.get() if hasattr(pred, "get") else pred, dtype=np.float64)
    _report(args, space, pred, seconds, archs, genomes,
            {"model": predictor.kind, "fused": predictor.fused, "folded": predictor.folded,
             "whole_space": predictor.whole_space, "fold_reason": predictor.fold_reason},
            repr(predictor))
    return 0


def _predict_ray(args: argparse.Namespace, space: Any) -> int:
    """The same predictions, sharded over the workers of a Ray cluster."""
    from esm.distributed import predict as ray_predict

    if args.device != "cpu":
        raise InputError("--backend ray predicts on the workers' CPUs; leave out --device")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.shard_rows is not None and args.shard_rows < 1:
        raise InputError(f"--shard-rows must be >= 1, got {args.shard_rows}")
    if args.shards_dir is not None and args.out is not None:
        raise InputError("give --out or --shards-dir, not both")
    archs: list[str] | None = None
    genomes = None
    if args.data is not None:
        archs = _read_archs(args.data)
        genomes = space.from_strs(archs)
    pred, info = ray_predict(
        args.model, genomes, random=None if genomes is not None else int(args.random),
        seed=args.seed, address=args.address, workers=args.workers,
        threads=args.threads or 1, shard_rows=args.shard_rows, chunk=args.chunk,
        out_dir=args.shards_dir)
    extra = {"backend": "ray", "workers": info["workers"], "shards": info["shards"],
             "compiled": info["compiled"], "retried": info["retried"],
             "startup_s": info["startup_s"], "shards_dir": info.get("out_dir")}
    if pred is None:
        if args.json:
            emit_json({"count": info["count"], "seconds": info["seconds"],
                       "per_second": info["per_second"], "space": space.name, **extra})
        else:
            print(f"predicted {info['count']} architectures in {info['seconds']:.3f} s on "
                  f"{info['workers']} Ray worker(s); {info['shards']} shard(s) in "
                  f"{info['out_dir']}")
        return 0
    if genomes is None and args.out is not None and args.out.suffix != ".npy":
        genomes = space.sample(int(args.random), seed=args.seed)  # texts for the CSV
    _report(args, space, pred, info["seconds"], archs, genomes, extra,
            f"{info['workers']} Ray worker(s)")
    return 0


def _report(args: argparse.Namespace, space: Any, pred: np.ndarray, seconds: float,
            archs: list[str] | None, genomes: Any, extra: dict[str, Any], how: str) -> None:
    n = len(pred)
    if args.out is not None:
        if args.out.suffix == ".npy":
            np.save(args.out, pred)
        else:
            texts = archs if archs is not None else space.to_strs(genomes)
            with args.out.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["arch", "latency_ms"])
                w.writerows(zip(texts, (f"{v:.6g}" for v in pred), strict=True))
    summary = {
        "count": n,
        "seconds": seconds,
        "per_second": n / seconds if seconds > 0 else None,
        "space": space.name,
        **extra,
        "device": args.device,
        "mean_ms": float(pred.mean()) if n else None,
        "min_ms": float(pred.min()) if n else None,
        "max_ms": float(pred.max()) if n else None,
        "out": str(args.out) if args.out else None,
    }
    if args.json:
        emit_json(summary)
        return
    rate = f"{n / seconds:,.0f}/s" if seconds > 0 else "-"
    print(f"predicted {n} architectures in {seconds:.3f} s ({rate}, {how})")
    if n:
        print(f"latency ms: mean {pred.mean():.4g}, min {pred.min():.4g}, max {pred.max():.4g}")
    if args.out:
        print(f"wrote {args.out}")
