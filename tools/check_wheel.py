"""Install a built esm wheel into a fresh virtual environment and use it from there.

The environment gets the wheel and its runtime dependency (NumPy) as binary wheels only
(``--only-binary :all:``, compilers and CMake pointed at ``false``): nothing is compiled.
Then, from an empty directory outside the source tree and without ``PYTHONPATH``:

1. ``esm info --json``: the package and its compiled core come from the new environment;
2. ``esm.load(MODEL).predict`` on seeded random genomes (and ``esm predict --random``): the
   model file loads and predicts with NumPy and the compiled core alone; where this script's
   own interpreter can import esm, the predictions must equal its own;
3. ``esm search`` for a few seconds under the median predicted latency: it finds a network
   within the budget;
4. the packaged prior of every built-in space that has one (:data:`esm.prior.PACKAGED`, what
   ``esm build --device`` and ``esm demo`` use by default) is in the wheel with its license
   notice, and loads there with NumPy and the compiled core alone; their sizes as the wheel
   stores them are printed.

Usage: python tools/check_wheel.py WHEEL --model MODEL.esm [--keep DIR]
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path
from typing import Any

#: Build tools that must not be in the environment (nothing is built there).
BUILD_TOOLS = ("cmake", "ninja", "scikit_build_core", "pybind11")

PREDICT = """
import json, sys
import numpy as np
import esm
from esm import cuda
m = esm.load(sys.argv[1])
g = m.space.sample(1000, seed=0)
p = np.asarray(m.predict(g), dtype=float)
devices, why = cuda.devices()
with open("/proc/self/maps") as f:
    cudart = "libcudart" in f.read()
print(json.dumps({"file": esm.__file__, "space": m.space.name, "pred": p.tolist(),
                  "heavy": [k for k in ("torch", "sklearn") if k in sys.modules],
                  "cuda_built": cuda.built(), "gpus": len(devices), "cudart_loaded": cudart}))
"""

PRIORS = """
import json
from esm import prior, spaces
out = {}
for name in prior.PACKAGED:
    p = prior.packaged(name)
    d = None if p is None else prior.load(spaces.get(name), [p])
    out[name] = None if d is None else {"path": str(p), "columns": len(d.columns),
                                        "rows": d.n_rows,
                                        "notice": (p.parent / "NOTICE").is_file()
                                        and (p.parent / "LICENSE-Apache-2.0").is_file()}
print(json.dumps(out))
"""


class Failed(Exception):
    pass


def run(cmd: list[str], env: dict[str, str], cwd: Path, expect: int = 0) -> str:
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    shown = " ".join(Path(c).name if i == 0 else "<script>" if "\n" in c else c
                     for i, c in enumerate(cmd))
    print(f"  $ {shown[:150]}  ({time.perf_counter() - t:.1f} s, exit {out.returncode})")
    if out.returncode != expect:
        raise Failed(f"{shown} exited {out.returncode}:\n{out.stdout[-2000:]}\n"
                     f"{out.stderr[-2000:]}")
    return out.stdout


def clean_env(venv_dir: Path) -> dict[str, str]:
    """The new environment first on PATH, no PYTHONPATH, and no way to compile anything."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CMAKE", "SKBUILD"))}
    env.update(PATH=f"{venv_dir / 'bin'}:/usr/bin:/bin", VIRTUAL_ENV=str(venv_dir),
               PIP_ONLY_BINARY=":all:", PIP_DISABLE_PIP_VERSION_CHECK="1",
               CC="false", CXX="false", CUDACXX="false", CMAKE_EXECUTABLE="false")
    return env


def own_predictions(model: Path) -> list[float] | None:
    """This interpreter's predictions of the same genomes, if it can import esm."""
    try:
        import esm
    except ImportError:
        return None
    m = esm.load(str(model))
    return [float(v) for v in m.predict(m.space.sample(1000, seed=0))]


def check(wheel: Path, model: Path, work: Path) -> dict[str, Any]:
    venv_dir, cwd = work / "venv", work / "run"
    cwd.mkdir(parents=True)
    print(f"fresh environment {venv_dir}")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    env = clean_env(venv_dir)
    py, esm_cmd = str(venv_dir / "bin" / "python"), str(venv_dir / "bin" / "esm")
    run([py, "-m", "pip", "install", "--quiet", "--only-binary", ":all:", str(wheel)], env, cwd)
    listed = json.loads(run([py, "-m", "pip", "list", "--format", "json"], env, cwd))
    names = {p["name"].lower().replace("-", "_") for p in listed}
    if names & set(BUILD_TOOLS):
        raise Failed(f"build tools in the environment: {sorted(names & set(BUILD_TOOLS))}")

    info = json.loads(run([esm_cmd, "info", "--json"], env, cwd))
    site = str(venv_dir.resolve())
    if not str(Path(info["core"]).resolve()).startswith(site):
        raise Failed(f"esm._core came from {info['core']}, not the new environment")

    got = json.loads(run([py, "-c", PREDICT, str(model)], env, cwd))
    pred = got["pred"]
    if not str(Path(got["file"]).resolve()).startswith(site) or got["heavy"]:
        raise Failed(f"esm from {got['file']}, heavy modules loaded: {got['heavy']}")
    if got["cuda_built"] and got["cudart_loaded"]:
        raise Failed("esm._cuda loaded a shared CUDA runtime (libcudart): not linked statically")
    if not all(v > 0 and v < float("inf") for v in pred):
        raise Failed("predictions are not finite and positive")
    want = own_predictions(model)
    if want is not None:
        worst = max(abs(a - b) / abs(b) for a, b in zip(pred, want, strict=True))
        if worst > 1e-9:
            raise Failed(f"predictions differ from this interpreter's esm (rel. {worst:.2g})")
    cli = json.loads(run([esm_cmd, "predict", "--model", str(model), "--random", "1000",
                          "--seed", "0", "--out", str(cwd / "pred.npy"), "--json"], env, cwd))

    budget = sorted(pred)[len(pred) // 2]
    found = json.loads(run([esm_cmd, "search", "--model", str(model), "--latency-budget",
                            f"{budget:.6f}", "--seconds", "3", "--seed", "0", "--json"],
                           env, cwd))
    if not found.get("found") or found["latency_ms"] > budget:
        raise Failed(f"esm search found nothing within {budget:.3f} ms")
    priors = json.loads(run([py, "-c", PRIORS], env, cwd))
    for name, got_prior in priors.items():
        if got_prior is None or not str(Path(got_prior["path"]).resolve()).startswith(site):
            raise Failed(f"the packaged {name} prior is not in the installed wheel")
        if got_prior["columns"] < 3 or got_prior["rows"] < 100 or not got_prior["notice"]:
            raise Failed(f"the packaged {name} prior is incomplete: {got_prior}")
    return {"version": info["version"], "cuda_built": info["cuda_built"],
            "cuda_reason": info["cuda_reason"], "space": got["space"],
            "compared_with_own_esm": want is not None, "predict_cli": cli,
            "search": {"budget_ms": budget, "latency_ms": found["latency_ms"],
                       "evaluated": found["evaluated"], "per_second": found["per_second"]},
            "priors": priors}


def packaged_bytes(wheel: Path) -> tuple[int, int]:
    """Bytes of the packaged data (``esm/data/``) in the wheel: as stored, and unpacked."""
    with zipfile.ZipFile(wheel) as z:
        data = [i for i in z.infolist() if i.filename.startswith("esm/data/")]
    return sum(i.compress_size for i in data), sum(i.file_size for i in data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--model", type=Path, required=True, help="a surrogate file to load")
    ap.add_argument("--keep", type=Path, default=None,
                    help="create the environment here and keep it (default: a temporary one)")
    args = ap.parse_args(argv)
    wheel, model = args.wheel.resolve(), args.model.resolve()
    for p in (wheel, model):
        if not p.is_file():
            print(f"check_wheel: {p} not found", file=sys.stderr)
            return 2
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        try:
            res = check(wheel, model, work)
        except Failed as err:
            print(f"check_wheel: FAILED: {err}", file=sys.stderr)
            return 1
    s = res["search"]
    stored, unpacked = packaged_bytes(wheel)
    priors = ", ".join(f"{k} {v['columns']} columns x {v['rows']:,} rows"
                       for k, v in res["priors"].items())
    same = " (equal to this interpreter's esm)" if res["compared_with_own_esm"] else ""
    cuda = "built" if res["cuda_built"] else "not built"
    print(f"check_wheel: ok in {time.perf_counter() - t:.0f} s: esm {res['version']} from "
          f"{wheel.name} in a fresh environment (CUDA module {cuda}; "
          f"{res['cuda_reason'] or 'GPU found'}); the {res['space']} model predicted 1000 "
          f"networks{same}; search found {s['latency_ms']:.3f} ms <= {s['budget_ms']:.3f} ms "
          f"({s['evaluated']:,} candidates, {s['per_second']:,.0f}/s); packaged priors "
          f"load ({priors}): {stored:,} bytes in the wheel ({unpacked:,} unpacked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
