"""``esm search``: hardware-aware architecture search on a latency surrogate."""

from __future__ import annotations

import argparse
import math
from typing import Any

from esm.cli.output import add_json_flag, emit_json

EPILOG = """\
objective: macs or params (cost proxies; maximised by default, as capacity under a latency
budget), activation_bytes, weight_bytes, layers, latency (minimise the latency itself), or a
second surrogate file (e.g. an accuracy or energy predictor for the same space; minimised unless
--maximize). Constraints: the latency budget plus any --constraint NAME<=VALUE / NAME>=VALUE
(NAME: a proxy or a surrogate file). Infeasible candidates lose to every feasible one
(evolution: feasibility-first penalty; NSGA-II: constraint domination).

device: --device cpu (default) runs the search on the CPU. --device cuda (or cuda:N) runs
every step on the GPU (sampling, crossover, mutation, tournaments and the surrogate as CUDA
kernels, nothing but the best genomes leaves the device): an elitist genetic search, population
65,536 by default, with the objective latency or a cost proxy and the latency budget
(feasibility first). It needs a CUDA GPU, cupy and esm built with CUDA, and a linear latency
surrogate the device pipeline folds (the esm train defaults: fcc with huber or ridge); other
models, a surrogate-file objective, --constraint, --batch, nsga2 and random exit 2 with the
reason. --verify measures on --verify-device (default cpu), whatever --device is.

exit codes: 0 found; 2 bad input (unknown objective, surrogate files of different spaces,
budget <= 0, bad option, --device cuda without a usable GPU or for a model or option the device
search lacks); 1 the search ran but found no architecture within the constraints
(the message says how close it got; --out and --json still get the result with found=false).
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "search", help="evolutionary search under a latency budget on a surrogate",
        description="Search a space for the best architectures under a latency budget, "
                    "using a latency surrogate file (regularized evolution or NSGA-II on the "
                    "CPU, or an elitist genetic search on the GPU with --device cuda).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="PATH", help="latency surrogate file")
    p.add_argument("--latency-budget", required=True, type=float, metavar="MS",
                   help="constraint: predicted latency <= MS milliseconds")
    p.add_argument("--objective", default="macs", metavar="NAME|FILE",
                   help="macs (default), params, activation_bytes, weight_bytes, layers, "
                        "latency, or a surrogate file")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--maximize", action="store_true", default=None,
                   help="maximise the objective (default for macs/params)")
    d.add_argument("--minimize", action="store_false", dest="maximize", default=None,
                   help="minimise the objective (default otherwise)")
    p.add_argument("--constraint", action="append", default=[], metavar="NAME<=VALUE",
                   help="extra constraint on a proxy or a surrogate file (repeatable)")
    p.add_argument("--algorithm", choices=("evolution", "nsga2", "random"), default="evolution",
                   help="regularized evolution (default), NSGA-II (Pareto front of latency "
                        "vs objective) or random search (baseline)")
    p.add_argument("--population", type=int, default=None, metavar="P",
                   help="population (evolution 100, nsga2 200; random: batch, 1000; "
                        "--device cuda: 65536, also the children per generation); with "
                        "--seconds, thousands amortise the predictor's per-call cost")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="children evaluated per generation (evolution: P/4, nsga2: P)")
    p.add_argument("--generations", type=int, default=None, metavar="G",
                   help="stop after G generations (default 100 when no other limit is set)")
    p.add_argument("--seconds", type=float, default=None, metavar="T",
                   help="stop after T seconds of wall time")
    p.add_argument("--max-evaluations", type=int, default=None, metavar="N",
                   help="stop after exactly N evaluated candidates")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="best distinct architectures kept (evolution/random; default 10)")
    p.add_argument("--verify", type=int, default=0, metavar="K",
                   help="build and measure the best K on the local device")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda,cuda:N}",
                   help="where the search runs: cpu (default) or cuda / cuda:N (every step on "
                        "the GPU; see below)")
    p.add_argument("--verify-device", default="cpu", metavar="DEVICE",
                   help="device that --verify measures on (cpu, cuda:0; default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for --verify (default: the model file's, else torch's)")
    p.add_argument("--measure-preset", choices=("default", "quick"), default=None,
                   help="measurement settings for --verify (default: those the model file "
                   "was built with, else default)")
    p.add_argument("--clock", choices=("wall", "thread_cpu"), default=None,
                   help="CPU timer clock for --verify (thread_cpu: single-threaded work on an "
                        "oversubscribed machine; use the surrogate's own clock)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the result as JSON")
    add_json_flag(p)
    p.set_defaults(func=cmd_search)


def _stop(args: argparse.Namespace) -> dict[str, Any]:
    from esm.errors import InputError

    for name in ("population", "batch", "generations", "max_evaluations", "top"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "generations" else 1):
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {v}")
    if args.seconds is not None and not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise InputError(f"--seconds must be positive, got {args.seconds}")
    if args.verify < 0:
        raise InputError(f"--verify must be >= 0, got {args.verify}")
    gens = args.generations
    if gens is None and args.seconds is None and args.max_evaluations is None:
        gens = 100
    return {"generations": gens, "seconds": args.seconds,
            "max_evaluations": args.max_evaluations}


def cmd_search(args: argparse.Namespace) -> int:
    from esm.errors import InputError
    from esm.search import search, verify
    from esm.search.device import parse_device

    if not (args.latency_budget > 0 and math.isfinite(args.latency_budget)):
        raise InputError(f"--latency-budget must be a positive number of ms, "
                         f"got {args.latency_budget}")
    stop = _stop(args)
    options: dict[str, Any] = {}
    on_device = parse_device(args.device) is not None
    if on_device:
        if args.batch is not None:
            raise InputError("--batch is not available with --device cuda (the children per "
                             "generation are the population: use --population)")
        options["top"] = args.top  # nsga2, random and --constraint: search() says why not
    elif args.batch is not None:
        if args.algorithm == "random":
            raise InputError("--batch is for evolution and nsga2; random search uses "
                             "--population as its batch")
        options["batch"] = args.batch
    if not on_device and args.algorithm in ("evolution", "random"):
        options["top"] = args.top
    res = search(args.model, objective=args.objective, maximize=args.maximize,
                 latency_budget=args.latency_budget, constraints=args.constraint,
                 algorithm=args.algorithm, population=args.population, seed=args.seed,
                 device=args.device, **stop, **options)
    data = res.to_dict()
    data["model"] = args.model
    data["device"] = res.settings.get("device", "cpu")
    if res.found and args.verify:
        from esm.measure import Settings

        settings = None if args.measure_preset is None else Settings.preset(args.measure_preset)
        data["verify"] = verify(res, k=args.verify, device=args.verify_device,
                                settings=settings, threads=args.threads, clock=args.clock)
    if args.out:
        import json
        from pathlib import Path

        from esm.jsonable import to_jsonable

        Path(args.out).write_text(json.dumps(to_jsonable(data), indent=2) + "\n")
    if args.json:
        emit_json(data)
    else:
        _print(res, data)
    if not res.found:
        import sys

        print(f"esm search: {res.infeasible_message()}", file=sys.stderr)
        return 1
    return 0


def _print(res: Any, data: dict[str, Any]) -> None:
    prob = res.problem
    obj = prob.objective.name
    lat = prob.latency_name
    print(f"{res.algorithm} on {prob.space.name}: {data['direction']} {obj} subject to "
          f"{'; '.join(str(c) for c in prob.constraints)}")
    if "device" in res.settings:
        print(f"on {res.settings['device']}: evaluated {res.evaluated:,} candidates in "
              f"{res.wall_s:.2f} s ({res.per_second:,.0f}/s), {res.generations} generations "
              f"of {res.settings['population']:,}")
    else:
        share = res.outside_predictor_share * 100
        print(f"evaluated {res.evaluated} candidates in {res.wall_s:.2f} s "
              f"({res.per_second:,.0f}/s; {share:.0f}% of the time outside the predictor), "
              f"{res.generations} generations")
    if not res.found:
        return
    title = "Pareto front (latency vs objective)" if res.algorithm == "nsga2" else "best"
    print(f"{title}:")
    for i, a in enumerate(data["architectures"]):
        if not a["feasible"]:
            continue
        mark = "*" if i == res.best_index else " "
        print(f"{mark} {a[lat]:9.4f} ms  {obj}={a[obj]:<14.6g} {a['arch']}")
    if "verify" in data:
        v = data["verify"]
        if v.get("warmup"):
            print(f"verify: {v['warmup']['message']}")
        print(f"verify on {v['device']}: predicted vs measured")
        for r in v["rows"]:
            print(f"  {r['predicted_ms']:9.4f} ms  {r['measured_ms']:9.4f} ms  "
                  f"{r['rel_error']:+6.1f}%")
        stated = ("n/a" if v["stated_mape"] is None
                  else f"{v['stated_mape']:.2f}% ({v['stated_from']})")
        print(f"  MAPE {v['mape']:.2f}% (max {v['max_abs_rel_error']:.2f}%); surrogate's "
              f"stated MAPE {stated}")
