"""``esm build``, ``esm demo`` and ``esm report``: argument parsing and printing only.

The work is in the library: :func:`esm.build.build` (the loop), :func:`esm.final.finalize`
(the model file), :func:`esm.demo.run_demo` and :func:`esm.report.write_report`. Defaults
are read from :class:`esm.build.BuildConfig`, never repeated here.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from esm.cli.output import add_json_flag, emit_json
from esm.errors import InputError

# BuildConfig fields set from options of the same name (None: keep BuildConfig's default)
_CONFIG_OPTIONS = ("strategy", "initial", "batch", "target_mape", "budget_samples",
                   "budget_seconds", "validation", "val_size", "seed", "trainer")


def register(sub: Any) -> None:
    from esm.build import VALIDATIONS, BuildConfig
    from esm.final import CHOICES
    from esm.sampling import names

    d = BuildConfig()
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
    _prior_opts(p, "esm build --device uses the packaged prior of the space where there is "
                "one; --from-csv uses none unless given")
    p.add_argument("--strategy", choices=[*names(), "default", "transfer"],
                   help=f"sampling strategy (default: {d.strategy})")
    p.add_argument("--target-mape", type=float, default=d.target_mape,
                   help="stop when the estimated MAPE (percent) is at most this "
                   f"(default {d.target_mape:g})")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--budget-seconds", type=float, help="device seconds budget")
    b.add_argument("--budget-samples", type=int, help="measured networks budget")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--initial", type=int, help=f"initial batch (default {d.initial})")
    p.add_argument("--batch", type=int, help=f"networks per step (default {d.batch})")
    p.add_argument("--validation", choices=list(VALIDATIONS),
                   help="error estimate: a separately measured uniform set, cross-validation "
                   "on the training set, the transfer model's posterior expected error "
                   f"(with --prior), or a holdout pooled with one of them (default "
                   f"{d.validation}; with a prior holdout+posterior, posterior on a CSV)")
    p.add_argument("--val-size", type=int, help=f"holdout size (default {d.val_size})")
    p.add_argument("--trainer", choices=["ridge", "surrogate", "transfer"],
                   help=f"model trained at every step (default {d.trainer}: fast ridge on cost "
                   "features)")
    p.add_argument("--final", choices=list(CHOICES), default="best",
                   help="model file of --out: the better of the step model and the "
                   "--encoding/--model surrogate on the validation set (best, default), "
                   "or one of them")
    p.add_argument("--no-refit", dest="refit", action="store_false",
                   help="keep the chosen model as fitted on the training networks (default: "
                   "refit it on every measured network, validation included, once the "
                   "validation networks have chosen it and stated its error)")
    p.add_argument("--model", default="auto", help="esm.surrogate model (default auto)")
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
    add_json_flag(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("demo", help="the main job on defaults: an ofa-mbv3 surrogate for this "
                       "machine in minutes, with report (and a short search when available)")
    p.add_argument("--dir", default="esm-demo", help="output directory (default: esm-demo)")
    p.add_argument("--device", default="auto", help="auto (GPU if usable, else CPU), cpu, cuda")
    p.add_argument("--budget-seconds", type=float, default=150.0,
                   help="device seconds for measuring (default 150); on a CPU it also sets "
                   "how long each network is timed (see esm.demo)")
    p.add_argument("--target-mape", type=float, default=d.target_mape,
                   help=f"percent (default {d.target_mape:g})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-prior", dest="no_prior", action="store_true",
                   help="build from zero (default: learn from the packaged prior, other "
                   "devices' ofa-mbv3 latencies from HELP, see esm.prior)")
    _device_opts(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="regenerate the report of a build directory")
    p.add_argument("directory", help="directory holding build.json")
    add_json_flag(p)
    p.set_defaults(func=cmd_report)


def _prior_opts(p: argparse.ArgumentParser, default: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prior", action="append", metavar="FILE",
                   help="other devices' latencies for the space (dataset CSV, .csv.gz or esm "
                   "store; repeatable; 'packaged' names the space's packaged prior, so "
                   "'--prior packaged --prior mine.db' adds your devices to it): the build "
                   f"chooses and fits the target's networks with them ({default}). A column "
                   "named like --target is left out, and so is any column holding the "
                   "target's own values")
    g.add_argument("--no-prior", dest="no_prior", action="store_true",
                   help="build from zero, without the packaged prior")


def _prior(args: argparse.Namespace, space: Any, oracle: Any, say: Any) -> Any:
    """The :class:`esm.transfer.PriorModel` of this build, or None (see --prior)."""
    from esm import prior as prior_mod

    paths = list(args.prior or [])
    if "packaged" in paths:  # the keyword; a file of that name is ./packaged
        packaged = prior_mod.packaged(space.name)
        why = prior_mod.packaged_unusable(space.name) or (
            f"{space.name} has none (packaged priors: {', '.join(prior_mod.PACKAGED)})"
            if packaged is None else None)
        if why:
            raise InputError(f"--prior packaged: {why}")
        paths = [str(packaged) if p == "packaged" else p for p in paths]
    if not paths and args.device and not args.no_prior:
        unusable = prior_mod.packaged_unusable(space.name)
        if unusable:
            print(f"esm: warning: no prior: {unusable}; building from zero (--prior FILE "
                  "gives one; --no-prior silences this)", file=sys.stderr)
        elif (packaged := prior_mod.packaged(space.name)) is not None:
            paths = [str(packaged)]
    if not paths:
        return None
    from esm.transfer import PriorModel

    exclude = [args.target] if args.from_csv and args.target else []
    data = prior_mod.load(space, paths, exclude=exclude)
    if oracle.truth is not None:  # the dataset as the device: never its own prior
        data.drop_duplicates_of(oracle.pool.genomes, oracle.truth)
        if not data.columns:
            raise InputError("every prior column holds the target's own values")
    say(f"prior: {len(data.columns)} columns of {data.n_rows} architectures from "
        f"{', '.join(map(str, paths))}" + (f" (left out: {', '.join(data.dropped)})"
                                          if data.dropped else ""))
    return PriorModel(data)


def _device_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"],
                   help="CPU timer clock (device): wall = latency (default); thread_cpu = the "
                   "timing thread's CPU time, for --threads 1 on a machine shared with others: "
                   "it repeats better under load but is not the latency a wall-clock user "
                   "sees (benchmarks/results/cpu_precision.md)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="on a CUDA device, time replays of the forward captured as a CUDA graph: "
                   "the GPU's execution without Python's kernel-launch overhead, which dominates "
                   "and makes eager timings noisy for small networks on fast GPUs (default: on "
                   "for esm demo, off for esm build)")
    p.add_argument("--no-drift-correction", dest="drift_correction", action="store_false",
                   help="keep raw latencies (default: correct drift where the reference "
                   "network's checks show it beyond their noise, see esm.drift)")


def _config(args: argparse.Namespace, with_prior: bool = False) -> Any:
    from esm.build import BuildConfig, prior_config

    given = {k: getattr(args, k) for k in _CONFIG_OPTIONS if getattr(args, k) is not None}
    return prior_config(lookup=bool(args.from_csv), **given) if with_prior \
        else BuildConfig(**given)


def _warn_if_busy(device: str, clock: str) -> None:
    """A CPU build on a machine that other work keeps busy measures the other work too."""
    if not device.startswith("cpu") or clock != "wall" or not hasattr(os, "getloadavg"):
        return
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.75 * cores:
        print(f"esm: warning: load average {load:.1f} on {cores} cores: other work shares "
              "the CPU, so latencies will be noisy and may drift (the build corrects drift "
              "that its reference checks show beyond their noise; the report says how well "
              "the timer repeated itself)", file=sys.stderr)


def _cuda_graph(device: str, asked: bool | None, default: bool) -> bool:
    """Whether to time CUDA-graph replays: only on CUDA devices (asked for on a CPU: error)."""
    from esm.measure import parse_device

    on_gpu = parse_device(device)[0] == "cuda"
    if asked and not on_gpu:
        raise InputError(f"--cuda-graph times CUDA devices; the device is {device!r}")
    return on_gpu and (default if asked is None else asked)


def _say(quiet: bool) -> Any:
    return (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr))


def cmd_build(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.build import build
    from esm.oracles import CsvOracle, DeviceOracle

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
                              seed=cfg.seed, batch_size=args.batch_size, threads=args.threads,
                              settings=settings, drift_correction=args.drift_correction,
                              progress=None if args.json else _progress_line)
    try:
        prior = _prior(args, space, oracle, say)
        if prior is not None:
            cfg = _config(args, with_prior=True)
            cfg.check()
        result, step = build(oracle, cfg, encoding=args.encoding, model=args.model, log=say,
                             prior=prior)
        if args.out:
            from esm.final import finalize

            sur = finalize(result, step, oracle, choice=args.final, encoding=args.encoding,
                           model=args.model, seed=cfg.seed, say=say, refit=args.refit)
            sur.save(args.out)
            result["model_file"] = str(args.out)
        if not args.no_report:
            from esm.report import write_report

            rdir = args.report or (str(Path(args.out).with_suffix("")) + "-report"
                                   if args.out else "esm-build-report")
            result["report"] = str(write_report(result, rdir))
    finally:
        if store is not None:
            store.close()
    _emit(result, args.json)
    return 0


def _emit(result: dict[str, Any], as_json: bool) -> None:
    from esm.prior import n_devices
    from esm.report import noise_notice, target_outcome

    keys = ("space", "strategy", "samples_used", "measurements", "train_samples",
            "val_samples", "failed", "mape", "mape_estimate", "mape_true", "target_mape",
            "target_reached", "stop_reason", "device_seconds", "seconds", "model_file",
            "model_mape", "model_mape_on", "model", "step_model", "noise", "drift", "warmup",
            "report", "oracle", "search", "demo", "prior")
    summary = {k: result[k] for k in keys if k in result}
    notice = noise_notice(result)
    if as_json:
        emit_json({**summary, "noise_notice": notice})
        return
    rep = result["measurements"] - result["samples_used"]
    prior = result.get("prior")
    print(f"{result['space']}: {result['samples_used']} networks measured "
          f"({result['train_samples']} training, {result['val_samples']} validation"
          + (f", {rep} measured again" if rep else "") + f"), strategy {result['strategy']}"
          + (f", prior of {n_devices(len(prior['columns']))}" if prior else ""))
    model = result.get("model")
    if result.get("model_file") and model:
        met = model.get("metrics") or {}
        print(f"model: {result['model_file']}: {model['kind']}"
              + (f", MAPE {met['mape']:.2f}% (ape95 {met['ape95']:.1f}%, acc10 "
                 f"{met['acc10']:.0f}%) on the {met['on']}" if met else ""))
        cands = model["selection"]["candidates"]
        if len(cands) > 1:
            print("  chosen on the validation set: " + ", ".join(
                f"{k} {_pct(v['validation_mape'])}" for k, v in cands.items()))
        v = model["validation"]
        if v["used"] == "corrected":
            print(f"  validation MAPE drift-corrected {_pct(v.get('corrected'))} (used), raw "
                  f"{_pct(v.get('raw'))}")
    target = f"target {result['target_mape']}%: {target_outcome(result)}"
    print(target if model else f"MAPE {_pct(result['mape'])} ({target})")
    drift = result.get("drift")
    if drift:
        print(f"drift: {drift['reason']}")
    noise = result.get("noise") or {}
    if noise.get("n"):
        print(f"measurement noise: {noise['n']} networks measured twice differ by "
              f"{noise['mean']:.1f}% on average (a floor of ~{noise['floor']:.1f}% under any "
              "model's error)")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    if result.get("report"):
        print(f"report: {result['report']}")
    if notice:
        print(f"warning: {notice}", file=sys.stderr)


def _pct(v: Any) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}%"


def cmd_demo(args: argparse.Namespace) -> int:
    from esm.demo import resolve_device, run_demo

    device = resolve_device(args.device)
    _cuda_graph(device, args.cuda_graph, True)  # refuse --cuda-graph on a CPU early
    _warn_if_busy(device, args.clock)
    result = run_demo(args.dir, device=device, budget_seconds=args.budget_seconds,
                      target_mape=args.target_mape, seed=args.seed, clock=args.clock,
                      cuda_graph=args.cuda_graph, drift_correction=args.drift_correction,
                      prior=not args.no_prior,
                      say=_say(args.json), progress=None if args.json else _progress_line)
    _emit(result, args.json)
    return 0


def _progress_line(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def cmd_report(args: argparse.Namespace) -> int:
    from esm.report import load_result, write_report

    result = load_result(args.directory)
    path = write_report(result, args.directory)
    if args.json:
        emit_json({"report": str(path)})
    else:
        print(f"report: {path}")
    return 0
