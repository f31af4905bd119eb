#!/usr/bin/env bash
# Developer build: compile the extension into build/inplace and copy it next to the sources,
# so that `PYTHONPATH=python pytest` works from a checkout without reinstalling.
# Usage: tools/build_inplace.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/inplace"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
  -DPython_EXECUTABLE="$(command -v python)" -DSKBUILD_PROJECT_VERSION=0.1.0 "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
cp "$build"/_core*.so "$root/python/esm/"
if ls "$build"/_cuda*.so >/dev/null 2>&1; then cp "$build"/_cuda*.so "$root/python/esm/"; fi
