#!/usr/bin/env bash
# GPU results for afnet_edge, run as is by whoever has a CUDA GPU (H100 preferred): build the extension, run the tests
# (CUDA ones included), compute-sanitizer on the CUDA kernel tests, the kernel benchmark, the model grid and the
# projection check. Everything lands in benchmarks/results/<device slug>/ (e.g. h100-sxm): commit that folder.
#
#   bash benchmarks/run_gpu.sh            # every stage, in order (estimated 40-60 min on an H100, not yet measured)
#   bash benchmarks/run_gpu.sh STAGE...   # some stages: env build test sanitize kernels grid-fp16 grid-fp32
#                                         #   grid-compile project readme   (run stages separately where a session
#                                         #   limits one command's time; grid stages are sized for ~10 min each)
#
# Environment knobs: PYTHON (default python3), MAX_JOBS (build parallelism, default 8), TORCH_CUDA_ARCH_LIST (default:
# the GPU's own compute capability), AFNET_BENCH_REPEATS (default 50), AFNET_BENCH_EXTRA (extra `afnet-edge bench`
# options appended to every grid stage, overriding its own: e.g. "--models af_resnet50" to split a stage in two,
# "--engine af_r50_r0.4_b8_fp16.engine" to time a TensorRT engine too).
#
# Never changes clocks, power limits, persistence or MIG: their state is only read (nvidia-smi --query) and recorded.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
REPEATS=${AFNET_BENCH_REPEATS:-50}
EXTRA=${AFNET_BENCH_EXTRA:-}
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(env build test sanitize kernels grid-fp16 grid-fp32 grid-compile project readme)

die() { echo "run_gpu.sh: $*" >&2; exit 2; }
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
  || die "needs PyTorch with a visible CUDA GPU ($PY -c 'import torch; print(torch.cuda.is_available())' says no)"
SLUG=$($PY -c "from afnet_edge.bench import device_slug; print(device_slug('cuda'))")
OUT="benchmarks/results/$SLUG"
mkdir -p "$OUT"
LOG="$OUT/run_gpu.log"
echo "=== run_gpu.sh $(date -u +%FT%TZ) stages: ${STAGES[*]} -> $OUT" | tee -a "$LOG"
status=0
run() {  # run NAME CMD...: tee output to $OUT/NAME.log, remember failures, keep going
  local name=$1; shift
  echo "=== [$name] $*" | tee -a "$LOG"
  local t0=$(date +%s)
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== [$name] exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
  [ "$rc" -ne 0 ] && status=1
  return 0
}
bench() { $PY -m afnet_edge.cli bench --device cuda --repeats "$REPEATS" --out "$OUT" --no-progress "$@" $EXTRA; }  # EXTRA last: it overrides

for stage in "${STAGES[@]}"; do
  case "$stage" in
    env)
      run env bash -c "nvidia-smi; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,\
power.limit,persistence_mode,mig.mode.current --format=csv; $PY -c 'import torch; print(torch.__version__, \
torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name())'; nvcc --version | tail -2; \
which compute-sanitizer || true" ;;
    build)
      CC_ARCH=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
      export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$CC_ARCH}
      run build env MAX_JOBS="${MAX_JOBS:-8}" $PY -m pip install --no-build-isolation --no-deps -e . ;;
    test)
      run pytest $PY -m pytest -q -rs ;;
    sanitize)
      if command -v compute-sanitizer >/dev/null; then
        for tool in memcheck racecheck synccheck initcheck; do
          run "sanitize_$tool" compute-sanitizer --tool "$tool" --error-exitcode 1 --target-processes all \
            $PY -m pytest -q -x tests/test_kernels.py -k cuda -p no:cacheprovider
        done
      else
        echo "compute-sanitizer not on PATH: sanitizer stage skipped" | tee -a "$LOG"; status=1
      fi ;;
    kernels)
      if [ -f benchmarks/bench_kernels.py ]; then
        TMPK=$(mktemp -d)
        run bench_kernels $PY benchmarks/bench_kernels.py --out-dir "$TMPK"
        # bench_kernels.py names its folder after torch's device name; keep everything under one slug
        find "$TMPK" -type f -exec cp {} "$OUT/" \;
        rm -rf "$TMPK"
      else
        echo "benchmarks/bench_kernels.py missing: kernel benchmark skipped" | tee -a "$LOG"
      fi ;;
    grid-fp16)  # the headline grid: every model, batch 1/8/32, eager + CUDA graphs, torch and extension kernels
      run grid_fp16 bench --name models_fp16 --precisions fp16 --modes eager,cudagraph --batches 1,8,32 \
        --models af_resnet50,af_mobilenetv3,tsm_resnet50,tsn_resnet50 --baseline-frames 8,16 \
        --ratios 0.25,0.4,0.5,1.0 --backends masked,compact-torch,compact-ext ;;
    grid-fp32)  # fp32 (TF32 convolutions, PyTorch's default) and ONNX Runtime (CUDA provider when installed)
      run grid_fp32 bench --name models_fp32 --precisions fp32 --modes eager,cudagraph --batches 1,8 \
        --models af_resnet50,af_mobilenetv3,tsm_resnet50 --baseline-frames 8,16 \
        --ratios 0.25,0.4,1.0 --backends masked,compact-torch,compact-ext,onnxruntime ;;
    grid-compile)  # torch.compile: compilation dominates, so a smaller grid; failures are recorded as skipped rows
      run grid_compile bench --name models_compile --precisions fp16 --modes compile --batches 1,8 \
        --models af_resnet50,tsm_resnet50 --baseline-frames 8 --ratios 0.4,1.0 --backends masked,compact-torch,compact-ext \
        --repeats 50 --no-ceilings ;;
    project)  # roofline PROJECTION of this GPU from its published specs, checked against the grids just measured
      PDEV=$SLUG
      $PY -c "from afnet_edge.bench.projection import DEVICES; import sys; sys.exit(0 if '$SLUG' in DEVICES else 1)" || PDEV=h100-sxm
      args=()
      for f in "$OUT"/models_*.json; do [ -f "$f" ] && args+=(--results "$f"); done
      run project $PY -m afnet_edge.cli project --device "$PDEV" --models af_resnet50,af_mobilenetv3,tsm_resnet50 \
        --precision fp16 --batch 8 "${args[@]}" --json "$OUT/projection_check.json" ;;
    readme)
      run readme $PY benchmarks/make_readme_table.py ;;
    *) die "unknown stage $stage (env build test sanitize kernels grid-fp16 grid-fp32 grid-compile project readme)" ;;
  esac
done
echo "=== done; results in $OUT (exit $status)" | tee -a "$LOG"
exit $status
