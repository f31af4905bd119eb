"""Issue 16 ("fast by default"): the default model and search, before and after, in one run.

Trains the default surrogate (``esm train``: fcc + auto on 500 rows of ``lat_titan_xp_64``),
then times, alternating OLD and NEW ``--repeat`` times:

* ``esm predict --model M --random 1000000 --json``: predictions per second (the predict call);
* ``esm search --model M --latency-budget 40 --objective macs --seconds 10 --json``:
  candidates per second and the best MACs found.

OLD is a build of an earlier commit (default fbc40be) in a temporary copy (``--old-root``, made
with ``git archive`` + ``tools/build_inplace.sh`` when missing); NEW is this checkout. With
``--bench-predict`` it also runs each tree's ``benchmarks/bench_predict.py`` (every regressor
family) and reports both tables. Writes a markdown summary (``--out``).

Usage: python benchmarks/fast_defaults.py [--repeat 3] [--old-commit fbc40be]
       [--old-root /tmp/esm_old] [--bench-predict] [--out benchmarks/results/fast_defaults.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ofa_mbv3_gpu.csv"


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root / "python")
    return env


def _esm(root: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "esm", *args], env=_env(root), check=True,
                         capture_output=True, text=True, cwd=root)
    return json.loads(out.stdout)


def build_old(commit: str, dest: Path) -> None:
    if (dest / "python" / "esm").is_dir() and list((dest / "python" / "esm").glob("_core*.so")):
        return
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    arch = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True,
                          capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    subprocess.run([str(dest / "tools" / "build_inplace.sh")], cwd=dest, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--old-commit", default="fbc40be")
    ap.add_argument("--old-root", default=str(Path(tempfile.gettempdir()) / "esm_old"))
    ap.add_argument("--model", default=None, help="model file (else trained with esm train)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--bench-predict", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fast_defaults.md"))
    args = ap.parse_args()

    old = Path(args.old_root)
    build_old(args.old_commit, old)
    trees = {"old": old, "new": ROOT}
    model = args.model
    train: dict[str, Any] = {}
    if model is None:
        model = str(Path(tempfile.mkdtemp()) / "default.esm")
        train = _esm(ROOT, "train", "--data", str(DATA), "--space", "ofa-mbv3", "--target",
                     "lat_titan_xp_64", "--train-size", "500", "--out", model, "--json")
        print(f"trained: chosen {train['chosen']}, {train['seconds']:.1f} s", flush=True)
    pred: dict[str, list[float]] = {"old": [], "new": []}
    srch: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    folded = None
    for r in range(args.repeat):
        for name, root in trees.items():
            p = _esm(root, "predict", "--model", model, "--random", "1000000", "--json")
            pred[name].append(float(p["per_second"]))
            if name == "new":
                folded = p.get("folded")
            s = _esm(root, "search", "--model", model, "--latency-budget", "40", "--objective",
                     "macs", "--seconds", str(args.seconds), "--json")
            srch[name].append({"per_second": float(s["per_second"]),
                               "evaluated": int(s["evaluated"]),
                               "best": float(s["objective"]) if s.get("found") else None})
            print(f"[{r}] {name}: predict {pred[name][-1] / 1e6:.2f} M/s, search "
                  f"{srch[name][-1]['per_second'] / 1e6:.3f} M cand/s, best MACs "
                  f"{srch[name][-1]['best']}", flush=True)

    def med(v: list[float]) -> float:
        return float(statistics.median(v))

    lines = [
        "# Fast by default (issue 16): before and after in one run",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        "(shared); OLD = "
        f"{args.old_commit} built in {old}, NEW = this tree; alternated, {args.repeat} repeats, "
        "medians.",
        f"Model: `esm train --data ofa_mbv3_gpu.csv --space ofa-mbv3 --target lat_titan_xp_64 "
        f"--train-size 500` (defaults: fcc + auto) -> {train.get('chosen', model)}; NEW "
        f"predictor folded: {folded}.",
        "",
        "| command | OLD | NEW | ratio |",
        "|---|---|---|---|",
        f"| `esm predict --random 1000000 --json` (M predictions/s) | "
        f"{med(pred['old']) / 1e6:.2f} | {med(pred['new']) / 1e6:.2f} | "
        f"{med(pred['new']) / med(pred['old']):.1f}x |",
        f"| `esm search --latency-budget 40 --objective macs --seconds {args.seconds:g} --json` "
        f"(M candidates/s) | {med([s['per_second'] for s in srch['old']]) / 1e6:.3f} | "
        f"{med([s['per_second'] for s in srch['new']]) / 1e6:.3f} | "
        f"{med([s['per_second'] for s in srch['new']]) / med([s['per_second'] for s in srch['old']]):.1f}x |",  # noqa: E501
        "",
        "Best MACs per repeat: OLD " + ", ".join(f"{s['best']:,.0f}" for s in srch["old"])
        + "; NEW " + ", ".join(f"{s['best']:,.0f}" for s in srch["new"]) + ".",
        "Raw predict rates (M/s): OLD " + ", ".join(f"{v / 1e6:.2f}" for v in pred["old"])
        + "; NEW " + ", ".join(f"{v / 1e6:.2f}" for v in pred["new"]) + ".",
    ]
    if args.bench_predict:
        for name, root in trees.items():
            out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_predict.py"),
                                  "--repeat", "1"], env=_env(root), cwd=root, check=True,
                                 capture_output=True, text=True).stdout
            lines += ["", f"## benchmarks/bench_predict.py, {name.upper()}", "", "```",
                      out.rstrip(), "```"]
            print(out, flush=True)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
