#!/usr/bin/env bash
# CI check of the standalone kernel build (CMakeLists.txt): configure + build csrc/kernels with CUDA for
# sm_87 / sm_90 / sm_110, run the CPU self-test (CPU twins vs naive loops; CUDA part skips without a GPU), and verify
# with cuobjdump that every CUDA object carries SASS for exactly those architectures.
#
# Needs: cmake >= 3.24, ninja, a C++17 compiler, CUDA 13 nvcc (default /usr/local/cuda/bin/nvcc, or $CUDACXX).
# Installs cuobjdump from PyPI (nvidia-cuda-cuobjdump) when it is not on PATH. About 2-4 minutes on 2 cores.
# Usage: scripts/ci_cmake_check.sh [build-dir]   (default build/cmake-ci)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build/cmake-ci}
NVCC=${CUDACXX:-/usr/local/cuda/bin/nvcc}
ARCHS=(87 90 110)
JOBS=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

if [[ ! -x "$NVCC" ]]; then
  echo "ci_cmake_check: nvcc not found at $NVCC (set CUDACXX)" >&2
  exit 2
fi
command -v cmake >/dev/null || { echo "ci_cmake_check: cmake not found" >&2; exit 2; }
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

# --- cuobjdump: on PATH, next to nvcc, or from the PyPI wheel (installs nvidia/cu13/bin/cuobjdump) ---------------
find_cuobjdump() {
  if command -v cuobjdump >/dev/null; then command -v cuobjdump; return; fi
  if [[ -x "$(dirname "$NVCC")/cuobjdump" ]]; then echo "$(dirname "$NVCC")/cuobjdump"; return; fi
  python3 - <<'PY'
import os, sys
try:
    import nvidia
except ImportError:
    sys.exit(0)
for root in list(nvidia.__path__):
    for sub in ("cu13/bin", "cuda_cuobjdump/bin"):
        p = os.path.join(root, sub, "cuobjdump")
        if os.access(p, os.X_OK):
            print(p)
            sys.exit(0)
PY
}
CUOBJDUMP=$(find_cuobjdump)
if [[ -z "$CUOBJDUMP" ]]; then
  echo "ci_cmake_check: installing cuobjdump (pip: nvidia-cuda-cuobjdump)"
  python3 -m pip install -q "nvidia-cuda-cuobjdump>=13.2,<14"
  CUOBJDUMP=$(find_cuobjdump)
fi
[[ -n "$CUOBJDUMP" ]] || { echo "ci_cmake_check: cuobjdump not found after install" >&2; exit 2; }
echo "ci_cmake_check: cuobjdump = $CUOBJDUMP"

# --- configure + build (library + self-test only) -------------------------------------------------------------------
t0=$SECONDS
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$NVCC" \
  -DCMAKE_CUDA_ARCHITECTURES="87-real;90-real;110" -DAFNET_EDGE_TRT=OFF >"$BUILD_DIR/configure.log" 2>&1 || {
  cat "$BUILD_DIR/configure.log"; exit 1; }
grep -q "CUDA kernels for architectures" "$BUILD_DIR/configure.log" || {
  cat "$BUILD_DIR/configure.log"; echo "ci_cmake_check: CUDA was not enabled" >&2; exit 1; }
cmake --build "$BUILD_DIR" -j "$JOBS" --target afnet_edge_kernels afnet_edge_kernels_selftest
echo "ci_cmake_check: build took $((SECONDS - t0)) s"

# --- CPU self-test -----------------------------------------------------------------------------------------------------
"$BUILD_DIR/afnet_edge_kernels_selftest" | tail -n 3

# --- architectures in the binary ---------------------------------------------------------------------------------------
LIB="$BUILD_DIR/libafnet_edge_kernels.a"
LISTING=$("$CUOBJDUMP" --list-elf "$LIB")
fail=0
for obj in focal_gather focal_scatter ample_fuse_pool ample_fuse_blend select_frames gather_conv1x1 conv1x1_scatter \
    temporal_aggregate bl_merge fullvideo_cluster focus_crop; do
  elfs=$(awk -v m="$obj.cu.o:" '/^member /{cur=($0 ~ m"$")} cur && /ELF file/{print $NF}' <<<"$LISTING")
  for a in "${ARCHS[@]}"; do
    if ! grep -q "\.sm_${a}\.cubin$" <<<"$elfs"; then
      echo "ci_cmake_check: $obj.cu.o has no sm_$a SASS" >&2
      fail=1
    fi
  done
  extra=$(grep -v -E "\.sm_($(IFS='|'; echo "${ARCHS[*]}"))\.cubin$" <<<"$elfs" || true)
  [[ -z "$extra" ]] || { echo "ci_cmake_check: $obj.cu.o has unexpected SASS: $extra" >&2; fail=1; }
  echo "ci_cmake_check: $obj.cu.o: $(sed -E 's/.*\.(sm_[0-9a-z]+)\.cubin/\1/' <<<"$elfs" | sort -u | tr '\n' ' ')"
done
[[ $fail -eq 0 ]] || exit 1
echo "ci_cmake_check: OK (sm_87, sm_90, sm_110 in every CUDA object; self-test passed) in $((SECONDS - t0)) s"
