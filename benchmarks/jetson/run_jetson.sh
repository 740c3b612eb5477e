#!/usr/bin/env bash
# Jetson results for afnet_edge, run as is on a Jetson (AGX Orin, Orin NX, Orin Nano, Thor) with JetPack and a CUDA
# build of PyTorch (NVIDIA's Jetson wheels): records the JetPack/L4T version and the power/clock state, builds the
# extension for the board's GPU, runs the model grid and checks the roofline PROJECTION for this board against it.
# Results land in benchmarks/results/<board slug>/ (orin-agx, orin-nx, orin-nano, orin-nano-super, thor): commit it.
#
#   bash benchmarks/jetson/run_jetson.sh                 # env build test grid project
#   bash benchmarks/jetson/run_jetson.sh env grid        # some stages
#
# It never changes the power mode or the clocks (no `nvpmodel -m`, no `jetson_clocks` without --show): it records
# `nvpmodel -q` and `jetson_clocks --show` (the latter needs root: run with sudo -E, or it is recorded as unreadable).
# For comparable numbers set the mode you want to report (e.g. MAXN) yourself before running, and say so.
# Knobs: PYTHON (default python3), MAX_JOBS (default 4), AFNET_BENCH_REPEATS (default 50), AFNET_BENCH_EXTRA.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
REPEATS=${AFNET_BENCH_REPEATS:-50}
EXTRA=${AFNET_BENCH_EXTRA:-}
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(env build test grid project)

die() { echo "run_jetson.sh: $*" >&2; exit 2; }
[ -f /etc/nv_tegra_release ] || die "/etc/nv_tegra_release not found: this is not a Jetson (use benchmarks/run_gpu.sh)"
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
  || die "needs a CUDA build of PyTorch for Jetson (torch.cuda.is_available() is False)"
SLUG=$($PY -c "from afnet_edge.bench import device_slug; print(device_slug('cuda'))")
OUT="benchmarks/results/$SLUG"
mkdir -p "$OUT"
LOG="$OUT/run_jetson.log"
echo "=== run_jetson.sh $(date -u +%FT%TZ) stages: ${STAGES[*]} -> $OUT" | tee -a "$LOG"
status=0
run() {
  local name=$1; shift
  echo "=== [$name] $*" | tee -a "$LOG"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== [$name] exit $rc" | tee -a "$LOG"
  [ "$rc" -ne 0 ] && status=1
  return 0
}

jetson_env() {  # read-only snapshot of the board's software and power/clock state
  echo "## /etc/nv_tegra_release"; cat /etc/nv_tegra_release
  echo "## /proc/device-tree/model"; tr -d '\0' < /proc/device-tree/model; echo
  echo "## dpkg nvidia-jetpack"; dpkg-query --showformat='${Version}\n' --show nvidia-jetpack 2>&1 || true
  echo "## nvpmodel -q"; nvpmodel -q 2>&1 || echo "(nvpmodel not readable)"
  echo "## jetson_clocks --show"; jetson_clocks --show 2>&1 || echo "(jetson_clocks --show needs root; not recorded)"
  echo "## tegrastats (one sample)"; timeout 3 tegrastats --interval 1000 2>&1 | head -n 2 || true
  echo "## python/torch"; $PY -c "import torch; print(torch.__version__, torch.version.cuda, \
torch.backends.cudnn.version(), torch.cuda.get_device_name())"
  echo "## TensorRT"; $PY -c "import tensorrt; print(tensorrt.__version__)" 2>&1 || true
}

for stage in "${STAGES[@]}"; do
  case "$stage" in
    env)
      run jetson_env jetson_env
      cp "$OUT/jetson_env.log" "$OUT/jetson_env.txt" ;;
    build)
      CC_ARCH=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
      run build env TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$CC_ARCH}" MAX_JOBS="${MAX_JOBS:-4}" \
        $PY -m pip install --no-build-isolation --no-deps -e . ;;
    test)
      run pytest $PY -m pytest -q -rs tests/test_kernels.py tests/test_compact.py ;;
    grid)  # fp16, the deployment precision on Jetson; batch 1 (latency) and 8; eager and CUDA graphs
      run grid $PY -m afnet_edge.cli bench --device cuda --repeats "$REPEATS" --warmup 10 --out "$OUT" --no-progress \
        --name models_fp16 --precisions fp16 --modes eager,cudagraph --batches 1,8 \
        --models af_resnet50,af_mobilenetv3,tsm_resnet50 --baseline-frames 8,16 --ratios 0.25,0.4,0.5,1.0 \
        --backends masked,compact-torch,compact-ext $EXTRA ;;
    project)  # PROJECTION for this board from published specs, and its error against the grid just measured
      args=()
      for f in "$OUT"/models_*.json; do [ -f "$f" ] && args+=(--results "$f"); done
      run project $PY -m afnet_edge.cli project --device "$SLUG" --models af_resnet50,af_mobilenetv3,tsm_resnet50 \
        --precision fp16 --batch 1 "${args[@]}" --json "$OUT/projection_check.json" ;;
    *) die "unknown stage $stage (env build test grid project)" ;;
  esac
done
echo "=== done; results in $OUT (exit $status)" | tee -a "$LOG"
exit $status
