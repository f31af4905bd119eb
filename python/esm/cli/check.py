"""``esm check``: measure fresh networks and compare a model's error with its stated one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from esm.cli.output import add_json_flag, emit_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="does a model's stated error hold on networks measured now?",
        description="Measure N fresh random networks of the model's space (never one it was "
        "trained or validated on) under the conditions stored in the model file, each in "
        "--rounds rounds, and compare the model's error on them with its stated error.",
        epilog="exit codes: 0 within the stated error; 1 outside it (fresh MAPE above 1.25 x "
        "stated + 0.5 points + the timer's own repeat noise, see esm.check); 2 bad input.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="PATH", help="model file")
    p.add_argument("--device", help="device to measure on (default: the model file's)")
    p.add_argument("--n", type=int, default=60, help="fresh networks (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed drawing them (default 0)")
    p.add_argument("--rounds", type=int, default=2,
                   help="times each network is measured, in separate rounds (default 2)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the model file's)")
    add_json_flag(p)
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from esm.check import check

    progress = None if args.json else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    res = check(args.model, device=args.device, n=args.n, seed=args.seed, rounds=args.rounds,
                threads=args.threads, progress=progress)
    if args.json:
        emit_json(res)
    else:
        _print(res)
    return 0 if res["within_stated"] else 1


def _print(res: dict[str, Any]) -> None:
    f, s, r = res["fresh"], res["stated"], res["repeat"]

    def pct(v: Any, fmt: str = ".2f") -> str:
        return "n/a" if v is None else format(v, fmt) + "%"

    print(f"{res['space']} on {res['device']}: {res['n']} fresh networks, {res['rounds']} "
          f"rounds ({res['seconds']:.0f} s)")
    print(f"{'':22s}{'fresh':>10s}{'stated':>10s}")
    print(f"{'MAPE':22s}{pct(f['mape']):>10s}{pct(s['mape']):>10s}")
    print(f"{'ape95':22s}{pct(f['ape95'], '.1f'):>10s}{pct(s.get('ape95'), '.1f'):>10s}")
    print(f"{'acc10':22s}{pct(f['acc10'], '.0f'):>10s}{pct(s.get('acc10'), '.0f'):>10s}")
    sr = s.get("median_ratio")
    print(f"{'median pred/measured':22s}{f['median_ratio']:>10.3f}"
          f"{'n/a' if sr is None else format(sr, '.3f'):>10s}")
    print(f"stated on the {s.get('on') or s['from']} (n={s.get('n')}); timer repeat noise: "
          f"rounds differ by {pct(r['mean'])} on average (median {pct(r['median'])})")
    ref = res["reference"]
    if ref.get("speed_ratio"):
        print(f"reference network: {ref['speed_ratio']:.3f}x its latency at build time")
    verdict = "WITHIN" if res["within_stated"] else "OUTSIDE"
    print(f"{verdict} the stated error: fresh MAPE {f['mape']:.2f}% vs limit "
          f"{res['limit']:.2f}% ({res['rule']})")
