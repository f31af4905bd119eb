#!/usr/bin/env bash
# Every check that needs a GPU, in one pass (for a machine with an NVIDIA GPU and the CUDA
# toolkit): build esm with CUDA in place, run the GPU tests, the GPU benchmark, `esm demo` on
# the GPU, then `esm check` on the demo's model (issue 15's must-show: fresh networks, two
# rounds, the stated error), and the whole test suite. Logs go to $OUT (default
# /tmp/esm-gpu-check).
# Usage: tools/gpu_check.sh [STEP ...]   steps: tests bench demo suite (default: all; the build
# always runs; "demo" includes the check). PY=python3, ARCH=90, JOBS=$(nproc), BENCH_ARGS="",
# DEMO_ARGS="", CHECK_N=60 may be overridden.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/esm-gpu-check}
PY=${PY:-python3}
ARCH=${ARCH:-90}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=python:.
step() { echo "== $1 ($(date +%T))"; }
steps=" ${*:-tests bench demo suite} "
want() { [[ $steps == *" $1 "* ]]; }

# The tests and benchmarks read ../shared/data; a copy travels as .devdata where needed.
if [ -d .devdata ] && [ ! -d ../shared/data ]; then mkdir -p ../shared && cp -r .devdata ../shared/data; fi

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
nvcc --version | tail -2
"$PY" -c "import sys, torch, numpy, sklearn; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.is_available(), 'numpy', numpy.__version__, 'sklearn', sklearn.__version__)"

step "cupy (the device pipeline's tests and benchmark need it)"
"$PY" -c "import cupy" 2>/dev/null || timeout 120 "$PY" -m pip install -q cupy-cuda13x 2>&1 | tail -2
"$PY" -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1

step "build (sm_$ARCH)"
t0=$(date +%s)
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if ! { cmake -S . -B build/gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DESM_CUDA=ON \
         -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
         -DPython_EXECUTABLE="$(command -v "$PY")" -DSKBUILD_PROJECT_VERSION=0.1.0 &&
       cmake --build build/gpu -j"$JOBS"; } >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; exit 1
fi
cp build/gpu/_core*.so build/gpu/_cuda*.so python/esm/
echo "built in $(( $(date +%s) - t0 )) s"
"$PY" -c "from esm import cuda; print('esm cuda devices:', cuda.devices())"

if want tests; then
step "GPU tests"
timeout 150 "$PY" -m pytest -p no:cacheprovider -v -rs -m gpu tests 2>&1 | tee "$OUT/gpu_tests.log" | tail -25
fi

if want bench; then
step "GPU benchmark"
# shellcheck disable=SC2086
timeout 200 "$PY" benchmarks/bench_gpu.py ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench_gpu.log"
fi

if want demo; then
step "esm demo on the GPU (README's first command)"
t0=$(date +%s)
rm -rf /tmp/esm-demo
# shellcheck disable=SC2086
timeout 300 "$PY" -m esm demo --dir /tmp/esm-demo ${DEMO_ARGS:-} 2>&1 | tail -30 | tee "$OUT/demo.log"
echo "demo wall: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/demo.log"
step "esm check on the demo's model (fresh networks, two rounds; must be within its stated error, <= 2.5%)"
t0=$(date +%s)
timeout 240 "$PY" -m esm check --model /tmp/esm-demo/model.esm --n "${CHECK_N:-60}" --json \
  >"$OUT/check.json" 2>"$OUT/check.log"; echo "esm check exit $? ($(( $(date +%s) - t0 )) s)" | tee -a "$OUT/demo.log"
"$PY" - "$OUT/check.json" <<'PYEOF' | tee -a "$OUT/demo.log"
import json, sys
c = json.load(open(sys.argv[1]))
f, s, r = c["fresh"], c["stated"], c["repeat"]
print(f"stated MAPE {s['mape']:.2f}% on the {s.get('on')}; fresh MAPE {f['mape']:.2f}% "
      f"(ape95 {f['ape95']:.1f}%, acc10 {f['acc10']:.0f}%, median ratio {f['median_ratio']:.3f}, "
      f"n={f['n']}); repeat noise {r['mean']:.2f}%; limit {c['limit']:.2f}%")
print(f"within_stated {c['within_stated']}; fresh <= 2.5%: {f['mape'] <= 2.5}; "
      f"median ratio within 3%: {c['ratio_within_3pct']}")
PYEOF
tar -C /tmp -czf "$OUT/demo.tgz" --exclude='*.sqlite*' esm-demo 2>/dev/null
fi

if want suite; then
step "whole test suite"
timeout 240 "$PY" -m pytest -p no:cacheprovider -q -rs -n "$JOBS" tests 2>&1 | tee "$OUT/tests.log" | tail -25
fi
step "done"
