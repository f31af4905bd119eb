"""``esm collect``, ``esm export`` and ``esm import``: the measurement store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from esm.cli.output import add_json_flag, emit_json
from esm.cli.ray_args import add_ray_args
from esm.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser("collect", help="measure architectures of a space into a store",
                       description="Measure N architectures of a space on a device into an "
                       "SQLite store. Resumable: running it again measures only what is "
                       "missing.")
    p.add_argument("--space", required=True, help="search space name (see `esm spaces`)")
    p.add_argument("--space-params", default=None, metavar="JSON",
                   help='space parameters as a JSON object, e.g. \'{"width_mult": 1.0}\'')
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index> (default cpu)")
    p.add_argument("--n", type=int, required=True, help="number of distinct architectures")
    p.add_argument("--store", required=True, help="SQLite store path (created if missing)")
    p.add_argument("--batch-size", type=int, default=1, help="input batch size (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture list")
    p.add_argument("--threads", type=int, default=None, help="CPU intra-op threads")
    p.add_argument("--settings", default="default", metavar="PRESET|FILE",
                   help="measurement settings: 'default', 'quick' or a JSON file")
    p.add_argument("--clock", choices=("wall", "thread_cpu"), default=None,
                   help="CPU clock (overrides the settings): wall (latency, default) or "
                   "thread_cpu (CPU time of the timing thread; needs --threads 1)")
    p.add_argument("--references", type=int, default=3,
                   help="reference architectures re-measured for the drift guard (0: off)")
    p.add_argument("--reference-every", type=int, default=50,
                   help="re-measure the references after this many architectures")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip warming the device up on the first reference network (default: "
                   "time it until steady, see esm.measure.warmup)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_args(p, "collect")
    p.add_argument("--resources", default=None, metavar="JSON",
                   help="Ray backend: custom resources per worker, e.g. '{\"jetson_orin\": 1}' "
                   "(replaces num_gpus=1 of cuda workers; names the run's device)")
    p.add_argument("--shard-size", type=int, default=4,
                   help="Ray backend: architectures per shard (unit of work and retry)")
    add_json_flag(p)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("export", help="write a store's measurements as a Dataset CSV")
    p.add_argument("--store", required=True, help="SQLite store path")
    p.add_argument("--out", required=True, help="output .csv (or .parquet, needs pyarrow)")
    p.add_argument("--run", type=int, default=None, help="only this run (default: all runs)")
    p.add_argument("--drift-corrected", action="store_true",
                   help="correct latencies where each run's reference-network checks show "
                   "drift beyond their own noise (esm.drift; unchanged elsewhere)")
    add_json_flag(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="import a Dataset CSV into a store as external runs")
    p.add_argument("file", help="CSV with an 'arch' column and latency columns in ms")
    p.add_argument("--space", required=True, help="search space of the architectures")
    p.add_argument("--store", required=True, help="SQLite store path (created if missing)")
    add_json_flag(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("runs", help="list the runs of a store")
    p.add_argument("--store", required=True, help="SQLite store path")
    add_json_flag(p)
    p.set_defaults(func=cmd_runs)


def _settings(value: str) -> Any:
    from esm.measure import Settings

    if value in ("default", "quick"):
        return Settings.preset(value)
    path = Path(value)
    if not path.is_file():
        raise InputError(f"--settings: {value!r} is neither a preset (default, quick) nor a file")
    try:
        return Settings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise InputError(f"--settings {value}: not JSON: {err}") from None


def _existing_store(path: str) -> Any:
    from esm.store import Store

    if not Path(path).is_file():
        raise InputError(f"store {path} does not exist")
    return Store(path)


def _json_object(text: str | None, flag: str, what: str) -> dict[str, Any] | None:
    """The JSON object given to ``flag`` (None when not given); InputError otherwise."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{flag} is not JSON: {err}") from None
    if not isinstance(value, dict):
        raise InputError(f"{flag} must be {what}")
    return value


def cmd_collect(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.collect import check_device, collect
    from esm.store import Store

    params = _json_object(args.space_params, "--space-params", "a JSON object") or {}
    # validate everything before the store is created, so bad input writes nothing
    space = spaces.get(args.space, **params)
    settings = _settings(args.settings)
    if args.clock is not None:
        settings = settings.replace(clock=args.clock)
    if settings.clock == "thread_cpu" and args.threads != 1:
        raise InputError("--clock thread_cpu measures one thread's CPU time: add --threads 1")
    if args.n < 0 or args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        raise InputError("--n must be >= 0, --batch-size and --threads >= 1")
    if args.backend == "ray":
        return _collect_ray(args, space, settings)
    device = check_device(args.device)
    with Store(args.store) as store:
        summary = collect(space, device, args.n, store, batch_size=args.batch_size,
                          seed=args.seed, threads=args.threads, settings=settings,
                          progress=not (args.no_progress or args.json),
                          n_references=args.references, reference_every=args.reference_every,
                          warmup=None if args.no_warmup else True)
    if args.json:
        emit_json(summary)
    else:
        if summary.get("warmup"):
            print(summary["warmup"]["message"])
        print(f"run {summary['run_id']}: {summary['measured']} measured, {summary['already']} "
              f"already stored, {summary['failed']} failed, {summary['drift_flags']} drift "
              f"flag(s); {summary['elapsed_s']:.1f} s -> {summary['store']}")
    return 0


def _collect_ray(args: argparse.Namespace, space: Any, settings: Any) -> int:
    from esm.distributed import collect as ray_collect
    from esm.distributed._ray import import_ray
    from esm.store import Store

    resources = _json_object(args.resources, "--resources", "a JSON object of name: amount")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.shard_size < 1:
        raise InputError(f"--shard-size must be >= 1, got {args.shard_size}")
    import_ray()  # a clear message before the store is created
    with Store(args.store) as store:
        summary = ray_collect(space, args.device, args.n, store, batch_size=args.batch_size,
                              seed=args.seed, threads=args.threads, settings=settings,
                              progress=not (args.no_progress or args.json),
                              address=args.address, workers=args.workers,
                              resources=resources, shard_size=args.shard_size)
    if args.json:
        emit_json(summary)
    else:
        if summary.get("warmup"):
            print(summary["warmup"]["message"])
        print(f"run {summary['run_id']}: {summary['measured']} measured on "
              f"{len(summary['workers'])} Ray worker(s), {summary['already']} already stored, "
              f"{summary['failed']} failed, {summary['retried']} retried after "
              f"{summary['worker_deaths']} worker death(s); {summary['elapsed_s']:.1f} s -> "
              f"{summary['store']}")
        if summary["remaining"]:
            print(f"{summary['remaining']} architecture(s) not measured (every worker died); "
                  "run the same command again to finish")
    return 0 if not summary["remaining"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    with _existing_store(args.store) as store:
        res = store.export_csv(args.out, run=args.run, drift_corrected=args.drift_corrected)
    if args.json:
        emit_json(res)
    else:
        print(f"wrote {res['rows']} rows x {len(res['columns'])} latency columns to {res['path']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from esm import spaces
    from esm.store import Store

    space = spaces.get(args.space)
    if not Path(args.file).is_file():
        raise InputError(f"{args.file}: no such file")
    with Store(args.store) as store:
        res = store.import_csv(args.file, space)
    if args.json:
        emit_json(res)
    else:
        print(f"imported {res['rows']} rows into {len(res['runs'])} run(s) "
              f"{res['runs']} ({res['duplicates']} duplicate(s) skipped"
              + (f"; already imported: {', '.join(res['skipped_columns'])}"
                 if res["skipped_columns"] else "") + ")")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    with _existing_store(args.store) as store:
        runs = store.runs()
    if args.json:
        emit_json(runs)
        return 0
    for r in runs:
        print(f"{r['id']:>4}  {r['column']:<24} {r['space']:<10} {r['device']:<10} "
              f"b={r['batch_size']:<4} ok={r['n_ok']:<6} failed={r['n_failed']:<4} {r['source']}")
    return 0
