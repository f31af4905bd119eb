"""``esm train`` and ``esm evaluate``."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from esm.cli.output import add_json_flag, emit_json
from esm.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train a latency surrogate on a dataset CSV",
        description="Train a surrogate on --train-size rows of a dataset CSV (drawn with "
                    "--seed) and save it to one model file. Rows with a missing, NaN or "
                    "non-positive latency are dropped and counted.")
    p.add_argument("--data", required=True, help="dataset CSV (column arch + latency columns)")
    p.add_argument("--space", metavar="NAME|PATH", required=True,
                   help="search space of the arch column (a name or a spec file)")
    p.add_argument("--target", required=True, help="latency column (ms) to learn")
    p.add_argument("--encoding", default="fcc",
                   help="onehot, stats, layerwise, lut, roofline or fcc (default)")
    p.add_argument("--model", default="auto",
                   help="ridge, huber, lut, forest, gbt, mlp, knn, gp, ... or auto (default: "
                        "picked by cross-validation on the training rows)")
    p.add_argument("--train-size", type=int, default=None,
                   help="number of training rows (default: all usable rows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the row draw and the model")
    p.add_argument("--device", default=None,
                   help="device spec for roofline/fcc features (default: guessed from the "
                        "column name, e.g. lat_2080ti_32 -> rtx2080ti, batch 32)")
    p.add_argument("--batch", type=int, default=None, help="batch size for roofline features")
    p.add_argument("--out", required=True, help="model file to write")
    add_json_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="evaluate a model file on the rows it was not trained on",
        description="Evaluate on the rows of a dataset CSV whose architectures (compared in "
                    "canonical form) were not training rows of the model.")
    p.add_argument("--model", required=True, help="model file written by esm train")
    p.add_argument("--data", required=True, help="dataset CSV")
    p.add_argument("--target", required=True, help="latency column (ms)")
    p.add_argument("--space", metavar="NAME|PATH", default=None,
                   help="refuse unless the model is for this space (a name or a spec file)")
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.surrogate.dataset import parse_archs, read_latency_csv
    from esm.surrogate.surrogate import Surrogate

    space = spaces.get(args.space)
    data = read_latency_csv(args.data, args.target)
    n = len(data.latency_ms)
    if n < 2:
        raise InputError(f"{args.data}: only {n} usable rows in column {args.target!r} "
                         f"({data.dropped} dropped)")
    size = n if args.train_size is None else int(args.train_size)
    if size > n:
        raise InputError(f"--train-size {size} is larger than the {n} usable rows of "
                         f"{args.data} ({data.dropped} dropped)")
    if size < 2:
        raise InputError(f"--train-size must be at least 2, got {size}")
    genomes = parse_archs(space, data.archs, args.data)
    idx = np.sort(np.random.default_rng(args.seed).permutation(n)[:size])
    eparams: dict[str, Any] = {}
    if args.batch is not None:
        eparams["batch"] = int(args.batch)
    t0 = time.perf_counter()
    sur = Surrogate.fit(space, genomes[idx], data.latency_ms[idx], encoding=args.encoding,
                        model=args.model, seed=args.seed, device=args.device,
                        column=args.target, encoding_params=eparams or None)
    seconds = time.perf_counter() - t0
    sur.info["training"].update({"source": str(args.data), "rows_usable": n,
                                 "dropped": data.dropped})
    sur.save(args.out)
    out = {
        "out": str(args.out), "space": space.name, "encoding": sur.encoder.name,
        "model": args.model, "chosen": sur.info["model"].get("chosen", args.model),
        "form": sur.kind, "target": args.target, "train_size": size, "rows_usable": n,
        "dropped": data.dropped, "seed": args.seed, "fingerprint": sur.fingerprint,
        "seconds": seconds, "train_metrics": sur.metrics.get("train", {}),
    }
    if args.json:
        emit_json(out)
        return 0
    print(f"trained {out['chosen']} ({sur.kind}) on {size} of {n} rows of {args.target} "
          f"[{sur.encoder.name}, {sur.encoder.n_features} features] in {seconds:.1f} s")
    if data.dropped:
        print(f"dropped {data.dropped} rows with a missing, NaN or non-positive latency")
    print(f"wrote {args.out}  (fingerprint {sur.fingerprint[:16]})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from esm.surrogate.dataset import parse_archs, read_latency_csv
    from esm.surrogate.surrogate import load

    sur = load(args.model)
    if args.space is not None:
        sur.check_space(args.space)
    data = read_latency_csv(args.data, args.target)
    try:
        genomes = parse_archs(sur.space, data.archs, args.data)
    except InputError as err:
        raise InputError(f"the model is for space {sur.space.name!r} and the data does not "
                         f"match it: {err}") from None
    trained = sur.trained_on(genomes)
    keep = ~sur.measured_on(genomes)  # training rows and every other network the build measured
    if not keep.any():
        raise InputError(f"no rows of {args.data} are left for evaluation: all "
                         f"{len(genomes)} usable rows were measured to build the model")
    t0 = time.perf_counter()
    pred = sur.predict(genomes[keep])
    seconds = time.perf_counter() - t0
    from esm.surrogate.metrics import evaluate

    m = evaluate(data.latency_ms[keep], pred)
    trained_col = sur.info.get("target", {}).get("column")
    out = {**m, "excluded_training_rows": int(trained.sum()),
           "excluded_measured_rows": int((~keep).sum()), "dropped": data.dropped,
           "target": args.target, "model_target": trained_col, "space": sur.space.name,
           "predict_seconds": seconds}
    if args.json:
        emit_json(out)
        return 0
    if trained_col and trained_col != args.target:
        print(f"note: the model was trained on {trained_col}, evaluated on {args.target}")
    print(f"{m['n']} rows (excluded {out['excluded_measured_rows']} rows the build measured, "
          f"{out['excluded_training_rows']} of them training rows; dropped {data.dropped}):")
    print(f"  MAPE {m['mape']:.2f}%  RMSE {m['rmse']:.3f} ms  R2 {m['r2']:.4f}  "
          f"acc5 {m['acc5']:.1f}%  acc10 {m['acc10']:.1f}%")
    print(f"  Kendall {m['kendall']:.4f}  Spearman {m['spearman']:.4f}  "
          f"max error {m['max_error']:.1f}%")
    return 0
