#!/usr/bin/env bash
# TensorRT plugin check without TensorRT libraries or a GPU, against the published TensorRT headers:
#   1. compile csrc/trt with -Wall -Wextra -Werror against the real CUDA headers (when nvcc's include/ is there; the
#      .cu with nvcc too);
#   2. build the plugin library with the CUDA kernels executed by the CPU emulator (tests/cuda_emu: csrc/kernels/*.cu
#      rewritten by cu2cpp.pl, as scripts/cuda_emu_check.sh does), linked with --no-undefined against a stub libnvinfer
#      (csrc/trt/check/registry_stub.cpp), and show with `nm -D --defined-only` that it exports TensorRT's plugin-library
#      entry points getCreators and setLoggerFinder;
#   3. run the plugin harness (tests/trt_harness): every plugin created through its creator from the fields of an
#      actual ONNX export, shape/format/workspace/serialisation/clone checks, enqueue on the emulated kernels against
#      the PyTorch reference in fp32 and fp16 (and bf16 for FocusCrop and the bLVNet plugins; cases from
#      tests/trt_harness/make_cases.py).
#
# Usage: scripts/trt_plugin_check.sh [TensorRT include dir...]
#   Without arguments: the folders in $TENSORRT_INCLUDE_DIRS (':'-separated), else third_party/TensorRT-*/include.
#   No headers anywhere -> one line "trt_plugin_check: skipped: TensorRT headers not available", exit 0.
#   Headers for CI (never committed; /third_party/ is git-ignored), e.g. for 10.3 (same for v10.13.3, v11.1):
#     git clone --filter=blob:none --no-checkout https://github.com/NVIDIA/TensorRT /tmp/trt && \
#     mkdir -p third_party/TensorRT-10.3 && git -C /tmp/trt archive v10.3.0 include | tar -x -C third_party/TensorRT-10.3
# Needs g++ >= 10, perl, nm, python3 with torch + onnx + onnx-graphsurgeon (the cases are a real ONNX export).
# About 3-5 minutes on 2 cores for three header versions. Build folder: $TRT_CHECK_BUILD_DIR (build/trt-plugin-check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${TRT_CHECK_BUILD_DIR:-build/trt-plugin-check}
CUDA_INCLUDE=${CUDA_INCLUDE:-/usr/local/cuda/include}
KERNELS=(focal_gather focal_scatter ample_fuse_pool ample_fuse_blend focus_crop temporal_aggregate bl_merge
         fullvideo_cluster)

dirs=()
explicit=0
if (($# > 0)); then
  dirs=("$@")
  explicit=1
elif [[ -n "${TENSORRT_INCLUDE_DIRS:-}" ]]; then
  IFS=: read -ra dirs <<<"$TENSORRT_INCLUDE_DIRS"
  explicit=1
else
  for d in third_party/TensorRT-*/include; do [[ -f "$d/NvInferRuntime.h" ]] && dirs+=("$d"); done
fi
incs=()
for d in "${dirs[@]}"; do
  if [[ -f "$d/NvInferRuntime.h" && -f "$d/NvInferVersion.h" ]]; then
    incs+=("$(cd "$d" && pwd)")
  elif ((explicit)); then
    echo "trt_plugin_check: $d has no NvInferRuntime.h / NvInferVersion.h (pass TensorRT include folders)" >&2
    exit 2
  fi
done
if ((${#incs[@]} == 0)); then
  echo "trt_plugin_check: skipped: TensorRT headers not available"
  exit 0
fi

trt_version() {  # major.minor.patch from NvInferVersion.h (10.x defines them directly or via TRT_*_ENTERPRISE)
  local h=$1/NvInferVersion.h out=() p v
  for p in MAJOR MINOR PATCH; do
    v=$(sed -nE "s/^#define TRT_${p}_ENTERPRISE +([0-9]+).*/\1/p" "$h" | head -n1)
    [[ -n "$v" ]] || v=$(sed -nE "s/^#define NV_TENSORRT_${p} +([0-9]+).*/\1/p" "$h" | head -n1)
    out+=("$v")
  done
  (IFS=.; echo "${out[*]}")
}

t0=$SECONDS
mkdir -p "$BUILD/kernels/gen"
CXX=${CXX:-g++}
EMU=(-std=c++17 -fPIC -I"$ROOT/tests/trt_harness/shim" -I"$ROOT/tests/cuda_emu/shim" -DAFN_WITH_CUDA_RUNTIME)

# --- cases: the fields of a real plugin-flavour export, random inputs, PyTorch reference ------------------------------
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python3 tests/trt_harness/make_cases.py "$BUILD/cases"

# --- CUDA kernels under the emulator (independent of the TensorRT version) -------------------------------------------
kobjs=()
for k in "${KERNELS[@]}"; do
  perl tests/cuda_emu/cu2cpp.pl "csrc/kernels/$k.cu" >"$BUILD/kernels/gen/$k.cpp.new"
  # rebuilt only when the rewritten source or a kernel header changed (reruns stay quick)
  if ! cmp -s "$BUILD/kernels/gen/$k.cpp.new" "$BUILD/kernels/gen/$k.cpp" || [[ ! -f "$BUILD/kernels/$k.o" ]] ||
    [[ -n "$(find csrc/kernels tests/cuda_emu/shim -newer "$BUILD/kernels/$k.o" -name '*.h' | head -n1)" ]]; then
    mv "$BUILD/kernels/gen/$k.cpp.new" "$BUILD/kernels/gen/$k.cpp"
    $CXX "${EMU[@]}" -O1 -g -w -I"$ROOT/csrc/kernels" -D__CUDA_ARCH__=900 -c "$BUILD/kernels/gen/$k.cpp" \
      -o "$BUILD/kernels/$k.o"
  fi
  rm -f "$BUILD/kernels/gen/$k.cpp.new"
  kobjs+=("$BUILD/kernels/$k.o")
done
echo "trt_plugin_check: emulated kernels ready ($((SECONDS - t0)) s)"

fail=0
for inc in "${incs[@]}"; do
  ver=$(trt_version "$inc")
  out="$BUILD/trt-$ver"
  mkdir -p "$out/stub" "$out/gen"
  TRT=(-isystem "$inc" -I"$ROOT/csrc/trt")
  srcs=(csrc/trt/*.cpp)

  # 1. compile check against the real CUDA headers
  if [[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ]]; then
    for s in "${srcs[@]}"; do
      $CXX -std=c++17 -Wall -Wextra -Werror -fsyntax-only "${TRT[@]}" -isystem "$CUDA_INCLUDE" \
        -DAFN_WITH_CUDA_RUNTIME "$s"
    done
    NVCC=${CUDACXX:-$(dirname "$CUDA_INCLUDE")/bin/nvcc}
    if [[ -x "$NVCC" ]]; then  # nvcc's host-code rewrite has its own warnings (the CMake build uses these flags)
      "$NVCC" -std=c++17 -arch=sm_90 -Xcompiler=-Wall,-Wextra -Werror=all-warnings -isystem "$inc" -I"$ROOT/csrc/trt" \
        -c csrc/trt/afnIndexWiden.cu -o "$out/afnIndexWiden.nvcc.o"
    fi
    echo "trt_plugin_check: TensorRT $ver: csrc/trt compiles with -Wall -Wextra -Werror against $CUDA_INCLUDE" \
      "$([[ -x "$NVCC" ]] && echo "(afnIndexWiden.cu with $NVCC)")"
  else
    echo "trt_plugin_check: TensorRT $ver: no CUDA headers at $CUDA_INCLUDE: real-CUDA compile check not run"
  fi

  # 2. plugin library over the emulated kernels, linked against a stub libnvinfer
  pobjs=()
  for s in "${srcs[@]}"; do
    o="$out/$(basename "$s" .cpp).o"
    $CXX "${EMU[@]}" -O1 -g -Wall -Wextra -Werror "${TRT[@]}" -c "$s" -o "$o"
    pobjs+=("$o")
  done
  # the int32 -> int64 index widening kernel of csrc/trt, rewritten like the kernels but kept in namespace afn
  perl tests/cuda_emu/cu2cpp.pl csrc/trt/afnIndexWiden.cu | sed -e '/^#define afn afn_dev$/d' -e '/^#undef afn$/d' \
    >"$out/gen/afnIndexWiden.cpp"
  $CXX "${EMU[@]}" -O1 -g -w "${TRT[@]}" -D__CUDA_ARCH__=900 -c "$out/gen/afnIndexWiden.cpp" -o "$out/afnIndexWiden.o"
  pobjs+=("$out/afnIndexWiden.o")
  $CXX "${EMU[@]}" "${TRT[@]}" -shared csrc/trt/check/registry_stub.cpp -o "$out/stub/libnvinfer.so"
  lib="$out/libafnet_edge_trt_plugins_emu.so"
  $CXX -shared -o "$lib" "${pobjs[@]}" "${kobjs[@]}" -Wl,--no-undefined -L"$out/stub" -lnvinfer
  exports=$(nm -D --defined-only "$lib")
  for sym in getCreators setLoggerFinder; do
    line=$(grep -E " T ${sym}$" <<<"$exports" || true)
    if [[ -n "$line" ]]; then
      echo "trt_plugin_check: TensorRT $ver: nm -D --defined-only: $line"
    else
      echo "trt_plugin_check: TensorRT $ver: $lib does not export $sym" >&2
      fail=1
    fi
  done
  nm -D --undefined-only "$lib" | grep -q " U getPluginRegistry$" || {
    echo "trt_plugin_check: TensorRT $ver: getPluginRegistry is not taken from libnvinfer" >&2; fail=1; }

  # 3. the harness: plugin objects + emulated kernels + TensorRT stand-ins
  $CXX "${EMU[@]}" -O1 -g -Wall -Wextra -Werror "${TRT[@]}" -I"$ROOT/tests/trt_harness" \
    -c tests/trt_harness/trt_fakes.cpp -o "$out/trt_fakes.o"
  $CXX "${EMU[@]}" -O1 -g -Wall -Wextra -Werror "${TRT[@]}" -I"$ROOT/tests/trt_harness" \
    -c tests/trt_harness/harness.cpp -o "$out/harness.o"
  $CXX -o "$out/trt_harness" "$out/harness.o" "$out/trt_fakes.o" "${pobjs[@]}" "${kobjs[@]}"
  if "$out/trt_harness" "$BUILD/cases" >"$out/harness.log" 2>&1; then
    grep -E "^(max\|err\||trt_harness:)" "$out/harness.log"
  else
    cat "$out/harness.log"
    echo "trt_plugin_check: TensorRT $ver: harness FAILED" >&2
    fail=1
  fi
done
if ((fail)); then
  echo "trt_plugin_check: FAILED ($((SECONDS - t0)) s)" >&2
  exit 1
fi
echo "trt_plugin_check: OK for TensorRT headers $(for i in "${incs[@]}"; do printf '%s ' "$(trt_version "$i")"; done)($((SECONDS - t0)) s)"
