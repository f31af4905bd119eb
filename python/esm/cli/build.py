"""``esm build``, ``esm demo`` and ``esm report``."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from esm.cli.output import add_json_flag, emit_json
from esm.errors import InputError


def register(sub: Any) -> None:
    from esm.sampling import DEFAULT_STRATEGY, names

    p = sub.add_parser(
        "build", help="build a surrogate at the least measurement cost (device or dataset file)",
        description="Iterative dataset expansion: measure a validation set and an initial batch, "
        "train, estimate the error, pick the next batch with a sampling strategy, until the "
        "target MAPE or the budget. On a device (--device, --store, --out) or on a dataset "
        "file as the device (--from-csv FILE --target COLUMN).")
    p.add_argument("--space", metavar="NAME|PATH", required=True,
                   help="search space: a built-in name (esm spaces) or a spec file")
    p.add_argument("--device", help="cpu or cuda[:i] (measure on this device)")
    p.add_argument("--store", help="SQLite store for the measurements (device builds)")
    p.add_argument("--out", help="surrogate model file to write")
    p.add_argument("--from-csv", dest="from_csv", metavar="FILE",
                   help="dataset CSV used as the device (lookup oracle)")
    p.add_argument("--target", metavar="COLUMN", help="latency column of --from-csv")
    _common(p, names(), DEFAULT_STRATEGY)
    add_json_flag(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("demo", help="the main job on defaults: an ofa-mbv3 surrogate for this "
                       "machine in minutes, with report (and a short search when available)")
    p.add_argument("--dir", default="esm-demo", help="output directory (default: esm-demo)")
    p.add_argument("--device", default="auto", help="auto (GPU if usable, else CPU), cpu, cuda")
    p.add_argument("--budget-seconds", type=float, default=150.0,
                   help="device seconds for measuring (default 150)")
    p.add_argument("--target-mape", type=float, default=5.0, help="percent (default 5)")
    p.add_argument("--seed", type=int, default=0)
    _device_opts(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="regenerate the report of a build directory")
    p.add_argument("directory", help="directory holding build.json")
    add_json_flag(p)
    p.set_defaults(func=cmd_report)


def _common(p: argparse.ArgumentParser, strategies: list[str], default: str) -> None:
    p.add_argument("--strategy", default=default, choices=[*strategies, "default"],
                   help=f"sampling strategy (default: {default})")
    p.add_argument("--target-mape", type=float, default=5.0,
                   help="stop when the estimated MAPE (percent) is at most this (default 5)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--budget-seconds", type=float, help="device seconds budget")
    b.add_argument("--budget-samples", type=int, help="measured networks budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--initial", type=int, default=20, help="initial batch (default 20)")
    p.add_argument("--batch", type=int, default=20, help="networks per step (default 20)")
    p.add_argument("--validation", default=None, choices=["holdout", "cv", "holdout+cv", "none"],
                   help="error estimate: a separately measured uniform set, cross-validation "
                   "on the training set, or both pooled (default: the BuildConfig default)")
    p.add_argument("--val-size", type=int, default=None,
                   help="holdout size (default: the BuildConfig default)")
    p.add_argument("--trainer", default="ridge", choices=["ridge", "surrogate"],
                   help="model trained at every step (default: fast ridge on cost features)")
    p.add_argument("--model", default="auto", help="esm.surrogate model of the saved file")
    p.add_argument("--encoding", default="fcc", help="esm.surrogate encoding (default fcc)")
    p.add_argument("--report", metavar="DIR", help="report directory (default: next to --out, "
                   "else esm-build-report)")
    p.add_argument("--no-report", action="store_true", help="write no report")
    p.add_argument("--batch-size", type=int, default=1, help="network input batch (device)")
    p.add_argument("--threads", type=int, help="CPU threads for measuring (device)")
    p.add_argument("--settings", default="quick", choices=["quick", "default"],
                   help="measurement settings preset (device; default quick)")
    p.add_argument("--pool-size", type=int, default=5000,
                   help="candidates sampled uniformly from the space (device)")
    _device_opts(p)


def _device_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"],
                   help="CPU timer clock (device): wall = latency (default); thread_cpu = the "
                   "timing thread's CPU time, for --threads 1 on a machine shared with others")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="on a CUDA device, time replays of the forward captured as a CUDA graph: "
                   "the GPU's execution without Python's kernel-launch overhead, which dominates "
                   "and makes eager timings noisy for small networks on fast GPUs (default: on "
                   "for esm demo, off for esm build)")
    p.add_argument("--no-drift-correction", dest="drift_correction", action="store_false",
                   help="keep raw latencies (default: normalise every measurement to the "
                   "run's first reference-network check, see esm.drift)")


def _config(args: argparse.Namespace) -> Any:
    from esm.build import BuildConfig

    return BuildConfig(
        strategy=args.strategy, initial=args.initial, batch=args.batch,
        target_mape=args.target_mape, budget_samples=args.budget_samples,
        budget_seconds=args.budget_seconds,
        validation=args.validation or BuildConfig.validation,
        val_size=args.val_size if args.val_size is not None else BuildConfig.val_size,
        seed=args.seed, trainer=args.trainer)


def _warn_if_busy(device: str, clock: str) -> None:
    """A CPU build on a machine that other work keeps busy measures the other work too."""
    if not device.startswith("cpu") or clock != "wall" or not hasattr(os, "getloadavg"):
        return
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.75 * cores:
        print(f"esm: warning: load average {load:.1f} on {cores} cores: other work shares "
              "the CPU, so latencies will drift (the build corrects uniform drift by a "
              "reference network; --clock thread_cpu times CPU time instead)", file=sys.stderr)


def _cuda_graph(device: str, asked: bool | None, default: bool) -> bool:
    """Whether to time CUDA-graph replays: only on CUDA devices (asked for on a CPU: error)."""
    from esm.measure import parse_device

    on_gpu = parse_device(device)[0] == "cuda"
    if asked and not on_gpu:
        raise InputError(f"--cuda-graph times CUDA devices; the device is {device!r}")
    return on_gpu and (default if asked is None else asked)


def _say(quiet: bool) -> Any:
    return (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr))


def _save_model(result: dict[str, Any], model: Any, oracle: Any, out: str, args: Any) -> None:
    """Fit the final esm.surrogate on the training set, state its error, save it to ``out``.

    The error is measured on the validation set (device builds) or on every row not measured
    (dataset builds) and stored as ``metrics["validation"]`` in the file, which is the error
    ``esm search --verify`` holds the model to.
    """
    import numpy as np

    from esm.build import surrogate_available

    if model.kind == "surrogate":
        s = model.model_
    else:
        if not surrogate_available():
            raise InputError("--out needs esm.surrogate to write a model file (not installed)")
        from esm.surrogate import Surrogate

        m = result["measured"]
        train = np.asarray(m["train"], np.int64)
        t = time.monotonic()
        s = Surrogate.fit(oracle.space, oracle.pool.genomes[train],
                          np.asarray(m["y_train"], np.float64),
                          encoding=args.encoding, model=args.model, seed=args.seed)
        result["seconds"]["train"] += time.monotonic() - t
    if oracle.truth is not None:  # lookup: every row not measured
        rest = np.ones(len(oracle.pool), bool)
        rest[np.asarray(result["measured"]["train"] + result["measured"]["validation"],
                        np.int64)] = False
        on, idx, y = "unmeasured rows", np.flatnonzero(rest), oracle.truth[rest]
    else:
        idx = np.asarray(result["measured"]["validation"], np.int64)
        on, y = "validation set", np.asarray(result["measured"]["y_validation"], np.float64)
    if idx.size:
        from esm.surrogate.metrics import evaluate

        pred = np.asarray(s.predict(oracle.pool.genomes[idx]), np.float64)
        metrics = evaluate(y, pred)
        ape95 = float(np.percentile(100 * np.abs(pred / y - 1), 95))
        s.info["metrics"]["validation"] = {**metrics, "ape95": ape95, "on": on}
        result["model_mape"], result["model_mape_on"] = metrics["mape"], on
    d = oracle.describe()
    if d["kind"] == "device":  # how to measure it again (esm search --verify)
        s.info["target"]["measurement"] = {k: d[k] for k in ("device", "batch_size",
                                                               "threads", "settings")}
        if d["drift_correction"]:
            s.info["target"]["drift_reference"] = d["reference"]
    s.save(out)
    result["model_file"] = str(out)
    result["model_kind"] = f"esm.surrogate {args.encoding}/{args.model}" \
        if model.kind != "surrogate" else "esm.surrogate (step model)"


def cmd_build(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.build import CsvOracle, DeviceOracle, build

    if args.from_csv and args.device:
        raise InputError("give either --from-csv (dataset as device) or --device, not both")
    if not args.from_csv and not args.device:
        raise InputError("give --device cpu|cuda (with --store and --out) or --from-csv FILE")
    if args.from_csv and not args.target:
        raise InputError("--from-csv needs --target COLUMN")
    if args.device and (not args.store or not args.out):
        raise InputError("a device build needs --store PATH and --out MODEL")
    cfg = _config(args)
    cfg.check()
    space = spaces.get(args.space)
    say = _say(args.json)
    store = None
    if args.from_csv:
        oracle: Any = CsvOracle(space, args.from_csv, args.target)
    else:
        from esm.measure import Settings
        from esm.store import Store

        settings = Settings.preset(args.settings).replace(
            clock=args.clock, cuda_graph=_cuda_graph(args.device, args.cuda_graph, False))
        _warn_if_busy(args.device, args.clock)
        store = Store(args.store)
        oracle = DeviceOracle(space, args.device, store, pool_size=args.pool_size,
                              seed=args.seed, batch_size=args.batch_size, threads=args.threads,
                              settings=settings, drift_correction=args.drift_correction)
    try:
        result, model = build(oracle, cfg, encoding=args.encoding, model=args.model, log=say)
        if args.out:
            _save_model(result, model, oracle, args.out, args)
        report = None
        if not args.no_report:
            from esm.report import write_report

            rdir = args.report or (str(Path(args.out).with_suffix("")) + "-report"
                                   if args.out else "esm-build-report")
            report = write_report(result, rdir)
            result["report"] = str(report)
    finally:
        if store is not None:
            store.close()
    _emit(result, args.json)
    return 0


def _emit(result: dict[str, Any], as_json: bool) -> None:
    keys = ("space", "strategy", "samples_used", "train_samples", "val_samples", "failed",
            "mape", "mape_estimate", "mape_true", "target_mape", "target_reached",
            "stop_reason", "device_seconds", "seconds", "model_file", "model_mape",
            "report", "oracle", "search")
    summary = {k: result[k] for k in keys if k in result}
    if as_json:
        emit_json(summary)
        return
    m = result["mape"]
    print(f"{result['space']}: {result['samples_used']} networks measured "
          f"({result['train_samples']} training, {result['val_samples']} validation), "
          f"strategy {result['strategy']}")
    print(f"MAPE {m:.2f}%" if m is not None and math.isfinite(m) else "MAPE n/a",
          f"(target {result['target_mape']}%: "
          f"{'reached' if result['target_reached'] else 'not reached'}, "
          f"stopped: {result['stop_reason']})")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    if result.get("model_file"):
        extra = (f" (MAPE {result['model_mape']:.2f}% on the {result['model_mape_on']})"
                 if result.get("model_mape") is not None else "")
        print(f"model: {result['model_file']}{extra}")
    if result.get("report"):
        print(f"report: {result['report']}")


def cmd_demo(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.build import BuildConfig, DeviceOracle, build, surrogate_available
    from esm.measure import Settings
    from esm.report import write_report
    from esm.store import Store

    t0 = time.monotonic()
    device = args.device
    if device == "auto":
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            raise InputError("esm demo measures networks and needs torch") from None
    graph = _cuda_graph(device, args.cuda_graph, True)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    say = _say(args.json)
    space = spaces.get("ofa-mbv3")
    # one intra-op thread: on a small or shared CPU, more threads make every forward slower
    # and noisier (OpenMP spin-waits); `esm build --threads N` builds for N threads
    threads = 1
    say(f"esm demo: ofa-mbv3 surrogate for {device}{' (CUDA-graph timing)' if graph else ''}, "
        f"~{args.budget_seconds:.0f} device seconds")
    cfg = BuildConfig(initial=20, batch=20, target_mape=args.target_mape,
                      budget_seconds=args.budget_seconds, val_size=30, seed=args.seed)
    _warn_if_busy(device, args.clock)
    with Store(out / "store.sqlite") as store:
        oracle = DeviceOracle(space, device, store, pool_size=2000, seed=args.seed,
                              threads=threads if device.startswith("cpu") else None,
                              settings=Settings.quick().replace(clock=args.clock,
                                                                cuda_graph=graph),
                              drift_correction=args.drift_correction,
                              progress=None if args.json else _progress_line)
        result, model = build(oracle, cfg, log=say)
        if surrogate_available():
            ns = argparse.Namespace(encoding="fcc", model="auto", seed=args.seed)
            _save_model(result, model, oracle, str(out / "model.esm"), ns)
        extra = _demo_search(space, result, out, say)
        report = write_report(result, out / "report", extra=extra)
    result["report"] = str(report)
    result["seconds"]["wall"] = time.monotonic() - t0
    _emit(result, args.json)
    return 0


def _progress_line(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _demo_search(space: Any, result: dict[str, Any], out: Path, say: Any) -> str:
    """A short evolutionary search with the built model, when esm.search exists."""
    import numpy as np

    try:
        from esm.search import search
    except ImportError:
        return "## Search\n\n`esm.search` is not installed in this build; skipped.\n"
    if not result.get("model_file"):
        return "## Search\n\nNo model file was written; skipped.\n"
    budget = float(np.median(np.asarray(result["predictions"]["measured"], np.float64)))
    res = search(result["model_file"], objective="macs", latency_budget=budget, seconds=10.0,
                 seed=0)
    if not res.found:
        info: dict[str, Any] = {"latency_budget_ms": budget, "found": False,
                                "evaluated": res.evaluated}
        say(f"search: nothing under {budget:.1f} ms found")
    else:
        g = res.best
        info = {"latency_budget_ms": budget, "found": True, "evaluated": res.evaluated,
                "seconds": res.wall_s, "arch": space.to_str(g),
                "predicted_ms": float(res.values["latency_ms"][res.best_index]),
                "macs": int(space.costs(g).macs[0])}
        say(f"search: best under {budget:.1f} ms: {info['macs'] / 1e6:.0f} MMACs, predicted "
            f"{info['predicted_ms']:.1f} ms ({res.evaluated} candidates in {res.wall_s:.1f} s)")
    result["search"] = info
    lines = ["## Search", "", f"Regularized evolution for 10 s, maximizing MACs under a "
             f"predicted latency of {budget:.1f} ms (the median measured network): "]
    if info["found"]:
        lines.append(f"{info['evaluated']} candidates; best predicted {info['predicted_ms']:.1f}"
                     f" ms at {info['macs'] / 1e6:.0f} MMACs: `{info['arch']}`")
    else:
        lines.append("no feasible network found.")
    return "\n".join(lines) + "\n"


def cmd_report(args: argparse.Namespace) -> int:
    from esm.report import load_result, write_report

    result = load_result(args.directory)
    path = write_report(result, args.directory)
    if args.json:
        emit_json({"report": str(path)})
    else:
        print(f"report: {path}")
    return 0
