"""Does the demo's stated error hold? The must-show procedure of issue 15, as one script.

For each run: README's first command (``esm demo``) in a fresh directory, then, in a separate
process, ``esm check --n 60`` on the model it wrote (60 fresh random networks, each timed in
two rounds, under the conditions stored in the model file). It prints the figures and the
criteria:

1. fresh MAPE <= 1.25 x stated MAPE + 0.5 points + the checking timer's repeat noise (the mean
   ``|round 1 / round 2 - 1|`` of the fresh networks);
2. median predicted/measured within 1 +- 0.03;
3. on a CPU: fresh MAPE <= 6% (on a quiet machine); on a GPU: fresh MAPE <= 2.5%.

The load average (1 minute) is recorded before and after each command: a run on a machine
others are using measures them too, and its figures say so.

Usage::

    PYTHONPATH=python python benchmarks/trust_check.py [--runs 3] [--n 60] [--device auto]
        [--budget-seconds 150] [--dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _esm(args: list[str], log: Path) -> tuple[int, dict[str, Any] | None, float]:
    """Run ``python -m esm ARGS --json``; stderr to ``log``. (exit code, JSON, seconds)."""
    t = time.monotonic()
    with open(log, "w") as err:
        p = subprocess.run([sys.executable, "-m", "esm", *args, "--json"], stdout=subprocess.PIPE,
                           stderr=err, text=True, check=False)
    try:
        data = json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    return p.returncode, data, time.monotonic() - t


def one_run(directory: Path, device: str, budget: float, n: int, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"dir": str(directory), "load_before_demo": _load()}
    demo_args = ["demo", "--dir", str(directory / "esm-demo"), "--seed", str(seed)]
    if device != "auto":
        demo_args += ["--device", device]
    if budget != 150:
        demo_args += ["--budget-seconds", str(budget)]
    rc, demo, secs = _esm(demo_args, directory / "demo.log")
    out.update(demo_rc=rc, demo_seconds=secs, load_after_demo=_load())
    if rc != 0 or demo is None or not demo.get("model_file"):
        out["error"] = f"esm demo failed (exit {rc}); see {directory / 'demo.log'}"
        return out
    model = demo.get("model") or {}
    out.update(stated=(model.get("metrics") or {}), model_kind=model.get("kind"),
               selection=model.get("selection"), demo_noise=demo.get("noise"),
               drift=demo.get("drift"), warmup=(demo.get("warmup") or {}).get("message"),
               noise_notice=demo.get("noise_notice"), networks=demo.get("samples_used"),
               device=(demo.get("oracle") or {}).get("device"))
    out["load_before_check"] = _load()
    rc, chk, secs = _esm(["check", "--model", demo["model_file"], "--n", str(n), "--seed",
                          str(seed)], directory / "check.log")
    out.update(check_rc=rc, check_seconds=secs, load_after_check=_load())
    if chk is None:
        out["error"] = f"esm check failed (exit {rc}); see {directory / 'check.log'}"
        return out
    fresh, stated, rep = chk["fresh"], chk["stated"], chk["repeat"]
    gpu = str(chk["device"]).startswith("cuda")
    cap = 2.5 if gpu else 6.0
    out.update(fresh=fresh, repeat=rep, limit=chk["limit"], check_warmup=chk.get("warmup"),
               reference=chk.get("reference"), criteria={
                   "within_stated": bool(chk["within_stated"]),
                   "median_ratio_within_3pct": bool(abs(fresh["median_ratio"] - 1) <= 0.03),
                   f"fresh_mape_at_most_{cap:g}pct": bool(fresh["mape"] <= cap)},
               stated_mape=stated["mape"])
    return out


def _line(i: int, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"run {i}: {r['error']}"
    c = r["criteria"]
    ok = ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in c.items())
    s, f = r["stated"], r["fresh"]
    return (f"run {i}: {r['device']}, {r['networks']} networks, {r['model_kind']}\n"
            f"  stated MAPE {s.get('mape', float('nan')):.2f}% (ape95 {s.get('ape95', 0):.1f}%,"
            f" acc10 {s.get('acc10', 0):.0f}%, median ratio {s.get('median_ratio', 0):.3f}, "
            f"on the {s.get('on')})\n"
            f"  fresh  MAPE {f['mape']:.2f}% (ape95 {f['ape95']:.1f}%, acc10 {f['acc10']:.0f}%, "
            f"median ratio {f['median_ratio']:.3f}, n={f['n']})\n"
            f"  checking timer repeat noise: mean {r['repeat']['mean']:.2f}%, median "
            f"{r['repeat']['median']:.2f}%; limit {r['limit']:.2f}%\n"
            f"  demo: {r['demo_seconds']:.0f} s, noise {r['demo_noise']}, drift "
            f"{(r['drift'] or {}).get('reason')}\n"
            f"  {r['warmup']}\n"
            f"  load average: demo {r['load_before_demo']:.2f} -> {r['load_after_demo']:.2f}, "
            f"check {r['load_before_check']:.2f} -> {r['load_after_check']:.2f}\n"
            f"  {ok}" + (f"\n  demo warned: {r['noise_notice']}" if r.get("noise_notice")
                         else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=0, help="seed of the demo and the check")
    ap.add_argument("--dir", help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="esm-trust-"))
    runs = []
    for i in range(args.runs):
        d = root / f"run{i}"
        d.mkdir(parents=True, exist_ok=False)
        r = one_run(d, args.device, args.budget_seconds, args.n, args.seed)
        runs.append(r)
        print(_line(i, r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2, default=str))
    ok = all("criteria" in r and all(r["criteria"].values()) for r in runs)
    print(f"{sum('criteria' in r and all(r['criteria'].values()) for r in runs)} of "
          f"{len(runs)} runs pass every criterion; files in {root}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
