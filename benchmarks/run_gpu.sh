#!/usr/bin/env bash
# GPU results for afnet_edge, run as is by whoever has a CUDA GPU: build the extension for this GPU, the CUDA kernel
# tests, compute-sanitizer on them, the kernel benchmark, the model grids. Everything lands in
# benchmarks/results/<device slug>/ (e.g. h100-sxm): commit that folder.
#
#   bash benchmarks/run_gpu.sh --budget 9m [--mirror DIR]  # budgeted: the most valuable stages first, each under a
#                                                           #   timeout; a stage that no longer fits is skipped
#   bash benchmarks/run_gpu.sh                              # every stage of the full list, no time limit
#   bash benchmarks/run_gpu.sh [--budget D] STAGE...        # the named stages, in the order given
#   bash benchmarks/run_gpu.sh --dry-run [--budget D] [STAGE...]  # CPU check of the script itself (CI runs it)
#   bash benchmarks/run_gpu.sh --list                       # the stages with their estimated times
#
# Budgeted order (--budget without stage names; times are ESTIMATES for an H100/H200 with 16 cores, not yet
# measured: the first run writes the real ones to stages.tsv, then correct EST below):
#   env 10 s | build 90 s | kernel-test 40 s | sanitize-memcheck 90 s | sanitize-racecheck 60 s |
#   sanitize-synccheck 45 s | kernels 45 s | headline-b8 120 s | headline-b1 90 s          (sum 590 s)
# A stage starts only when its estimate fits in what is left of the budget (less a 15 s reserve); it then runs under
# `timeout` for at most the smaller of that remainder and its cap. Each stage writes its own files as it finishes
# (<stage>.log while it runs, its results, a line of stages.tsv), and --mirror DIR copies the results folder to DIR
# after every stage, so a kill at the limit loses only the running stage.
# Full list (no --budget, no stage names): env build test sanitize kernels grid-fp16 grid-fp32 grid-compile
# cross-family project readme (estimated 40-60 min on an H100, not measured). All stages: see STAGE_NAMES below /
# --list. The cross-family comparison (every family at its published operating point, official-style vs fused,
# `afnet-edge bench --cross-family`) is not in the budgeted order (it does not fit a 9-minute lease after the kernel
# stages); name it: `bash benchmarks/run_gpu.sh --budget 6m env build cross-family`.
#
# --dry-run (any machine, no GPU needed; CI runs it through tests/test_run_gpu_dry.py): every stage's command resolves
# (GPU-only tools -- nvidia-smi, nvcc, compute-sanitizer -- are reported when absent, not failed), every Python entry
# point runs in a checking form (pytest --collect-only with the stage's selection; the bench commands with their exact
# options on a tiny CPU grid; bench_kernels.py --smoke; project into a temporary folder; make_readme_table.py
# --print), every output folder is writable, nothing downloads (static: no curl/wget/git fetch/pip install without
# --no-index in the scripts; dynamic: every Python command of the dry run runs with network connections refused).
#
# Environment knobs: PYTHON (default python3), MAX_JOBS (build parallelism, default: all cores), TORCH_CUDA_ARCH_LIST
# (default: the GPU's own compute capability only), AFNET_BENCH_REPEATS (default 50), AFNET_BENCH_EXTRA (extra
# `afnet-edge bench` options appended to every grid stage, overriding its own: e.g. "--models af_resnet50").
#
# The build is `python setup.py build_ext --inplace` (the extension lands in afnet_edge/, imported through PYTHONPATH):
# no pip, no build isolation, no network, nothing installed into the machine's Python, no wheel packaging step.
# Never changes clocks, power limits, persistence or MIG: their state is only read (nvidia-smi --query) and recorded.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
REPEATS=${AFNET_BENCH_REPEATS:-50}
EXTRA=${AFNET_BENCH_EXTRA:-}
JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 8)}

STAGE_NAMES=(env build kernel-test sanitize-memcheck sanitize-racecheck sanitize-synccheck sanitize-initcheck sanitize
             kernels headline-b8 headline-b1 test grid-fp16 grid-fp32 grid-compile cross-family project readme)
BUDGET_STAGES=(env build kernel-test sanitize-memcheck sanitize-racecheck sanitize-synccheck kernels headline-b8
               headline-b1)
FULL_STAGES=(env build test sanitize kernels grid-fp16 grid-fp32 grid-compile cross-family project readme)
# ESTIMATED seconds per stage on an H100/H200 (not measured yet) and the cap of its timeout under --budget
declare -A EST=([env]=10 [build]=90 [kernel-test]=40 [sanitize-memcheck]=90 [sanitize-racecheck]=60
                [sanitize-synccheck]=45 [sanitize-initcheck]=90 [sanitize]=285 [kernels]=45 [headline-b8]=120
                [headline-b1]=90 [test]=300 [grid-fp16]=600 [grid-fp32]=600 [grid-compile]=600 [cross-family]=150 [project]=15
                [readme]=5)
declare -A CAP=([env]=60 [build]=420 [kernel-test]=180 [sanitize-memcheck]=240 [sanitize-racecheck]=180
                [sanitize-synccheck]=150 [sanitize-initcheck]=240 [sanitize]=800 [kernels]=180 [headline-b8]=300
                [headline-b1]=240 [test]=900 [grid-fp16]=900 [grid-fp32]=900 [grid-compile]=900 [cross-family]=420
                [project]=60 [readme]=60)
NEEDS_EXT=" kernel-test sanitize-memcheck sanitize-racecheck sanitize-synccheck sanitize-initcheck sanitize kernels "
RESERVE=15  # seconds kept back from the budget for the summary and the last copy

die() { echo "run_gpu.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
to_seconds() {  # 9m, 540s, 540, 1h, 8m30s -> seconds
  local v=$1
  [[ $v =~ ^([0-9]+h)?([0-9]+m)?([0-9]+s?)?$ && -n $v ]] || return 1
  local h=${BASH_REMATCH[1]%h} m=${BASH_REMATCH[2]%m} s=${BASH_REMATCH[3]%s}
  echo $(( 10#${h:-0} * 3600 + 10#${m:-0} * 60 + 10#${s:-0} ))
}

BUDGET= DRY=0 MIRROR= STAGES=()
while [ $# -gt 0 ]; do
  case $1 in
    --budget) [ $# -ge 2 ] || die "--budget needs a duration (e.g. 9m, 540s)"
              BUDGET=$(to_seconds "$2") || die "--budget: expected a duration like 9m, 540s or 8m30s, got '$2'"
              shift 2 ;;
    --budget=*) BUDGET=$(to_seconds "${1#*=}") || die "--budget: expected a duration like 9m, 540s or 8m30s, got '${1#*=}'"
                shift ;;
    --dry-run) DRY=1; shift ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a folder"; MIRROR=$2; shift 2 ;;
    --mirror=*) MIRROR=${1#*=}; shift ;;
    --list) printf '%-20s %8s %8s\n' stage "est. s" "cap s"
            for s in "${STAGE_NAMES[@]}"; do printf '%-20s %8s %8s\n' "$s" "${EST[$s]}" "${CAP[$s]}"; done
            echo "budgeted order: ${BUDGET_STAGES[*]}"; echo "full order: ${FULL_STAGES[*]}"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (--budget D, --dry-run, --mirror DIR, --list, --help)" ;;
    *) [[ " ${STAGE_NAMES[*]} " == *" $1 "* ]] || die "unknown stage $1 (${STAGE_NAMES[*]})"
       STAGES+=("$1"); shift ;;
  esac
done
[ -n "$BUDGET" ] && [ "$BUDGET" -le "$RESERVE" ] && die "--budget must be more than ${RESERVE}s"
if [ ${#STAGES[@]} -eq 0 ]; then
  if [ -n "$BUDGET" ]; then STAGES=("${BUDGET_STAGES[@]}"); else STAGES=("${FULL_STAGES[@]}"); fi
fi

# ---------------------------------------------------------------------------------------------------- what runs
# pytest selections (the sanitizer runs of racecheck/synccheck cover the kernels with shared memory, barriers or warp
# collectives -- select_frames and ample_fuse_pool; the other kernels have none -- and check only those kernels)
KT_SEL=(tests/test_kernels.py -k cuda -p no:cacheprovider)
SAN_TARGETS=("select|select_t|cuda and select_frames" "pool|ample_fuse_pool_kernel|cuda and ample_fuse_pool")
# the headline grid: AF-ResNet50 T=12 at r 0.25 and 0.4 (the issue targets' ratios), masked and the extension's
# compact path under each execution plan of issue 16 (eager, lazy, fused), against TSM-ResNet50 T=8, fp16, eager and
# CUDA graphs: 16 timed cases, as many as before the plan axis (r = 1.0 and compact-torch moved to grid-fp16), so the
# estimates below still scale from the same case count
HEADLINE=(--precisions fp16 --modes eager,cudagraph --models af_resnet50,tsm_resnet50 --frames 12
          --baseline-frames 8 --ratios 0.25,0.4 --backends masked,compact-ext --plans eager,lazy,fused)
KERNELS_BUDGET=(--dtypes fp16 --batches 1 8)  # the full kernel benchmark (fp16+fp32, B 1/8/32) without --budget
# dry run: the bench commands keep every option and get these appended (later options win): a tiny CPU grid
DRY_BENCH=(--device cpu --size 32 --batches 1 --precisions fp32 --repeats 1 --warmup 1 --threads 1 --no-ceilings
           --no-plots --no-progress)

# ---------------------------------------------------------------------------------------------------- set-up
if [ "$DRY" = 1 ]; then
  DRYTMP=$(mktemp -d) || die "mktemp -d failed: no writable temporary folder"
  trap 'rm -rf "$DRYTMP"' EXIT
  # every Python command of the dry run (and its children) refuses network connections: proof that none downloads
  mkdir -p "$DRYTMP/guard"
  cat > "$DRYTMP/guard/sitecustomize.py" <<'PYGUARD'
import socket

_LOCAL = {None, "localhost", "127.0.0.1", "::1", ""}


def _refuse(what):
    raise OSError(f"run_gpu.sh --dry-run: network access attempted ({what}); the GPU machine has no network")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse(address)
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL:
        _refuse(host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
PYGUARD
  export PYTHONPATH="$DRYTMP/guard:$PYTHONPATH"
  OUT="$DRYTMP/results"
  mkdir -p "$OUT"
  LOG="$OUT/run_gpu.log"
  SLUG=$($PY -c "from afnet_edge.bench import device_slug; print(device_slug('cpu'))" 2>&1) \
    || die "cannot import the device slug helper: $SLUG"
else
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
    || die "needs PyTorch with a visible CUDA GPU ($PY -c 'import torch; print(torch.cuda.is_available())' says no)"
  SLUG=$($PY -c "from afnet_edge.bench import device_slug; print(device_slug('cuda'))") || die "no device slug"
  OUT="benchmarks/results/$SLUG"
  mkdir -p "$OUT" || die "cannot create $OUT"
  LOG="$OUT/run_gpu.log"
fi
if [ -n "$MIRROR" ]; then
  mkdir -p "$MIRROR" && touch "$MIRROR/.run_gpu_probe" && rm -f "$MIRROR/.run_gpu_probe" \
    || die "--mirror $MIRROR is not a writable folder"
fi
START=$(date +%s)
DEADLINE=
[ -n "$BUDGET" ] && DEADLINE=$((START + BUDGET - RESERVE))
status=0 STAGE_RC=0 STAGE_DEADLINE= BUILD_FAILED=0 DRY_FAILS=0

log() { echo "$*" | tee -a "$LOG"; }
mirror() { [ -z "$MIRROR" ] || [ "$DRY" = 1 ] || cp -r "$OUT/." "$MIRROR/" 2>/dev/null || true; }
run() {  # run NAME CMD...: tee output to $OUT/NAME.log, under the stage's deadline; remember failures, keep going
  local name=$1; shift
  local limit=()
  if [ -n "$STAGE_DEADLINE" ]; then
    local left=$((STAGE_DEADLINE - $(date +%s)))
    if [ "$left" -le 0 ]; then log "=== [$name] not started: no time left in this stage"; STAGE_RC=124; return 0; fi
    limit=(timeout -k 10 "$left")
  fi
  log "=== [$name] $*"
  local t0
  t0=$(date +%s)
  ${limit[@]+"${limit[@]}"} "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && log "=== [$name] stopped by its timeout (${left:-?} s)"
  log "=== [$name] exit $rc after $(( $(date +%s) - t0 )) s"
  [ "$rc" -ne 0 ] && [ "$STAGE_RC" -eq 0 ] && STAGE_RC=$rc
  return 0
}
DRY_DONE=$'\n'
drycheck() {  # drycheck WHAT CMD...: run a checking command quietly (once per distinct command), report ok or its tail
  local what=$1; shift
  local out rc
  if [[ "$DRY_DONE" == *$'\n'"$*"$'\n'* ]]; then echo "[dry-run]   ok: $what (same check as above)"; return 0; fi
  DRY_DONE+="$*"$'\n'
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    echo "[dry-run]   ok: $what"
  else
    echo "[dry-run]   FAILED: $what (exit $rc): $*"; echo "$out" | tail -15 | sed 's/^/[dry-run]     | /'
    STAGE_RC=1
  fi
  return 0
}
gpu_tool() {  # gpu_tool NAME: a tool that only the GPU machine must have
  if command -v "$1" >/dev/null; then echo "[dry-run]   ok: $1 resolves ($(command -v "$1"))"
  else echo "[dry-run]   note: $1 is not on PATH here (needed on the GPU machine only)"; fi
}
DRY_SEEN=" "
bench() {  # bench STAGE OPTIONS...: afnet-edge bench on CUDA, or its tiny CPU check in a dry run
  local stage=$1; shift
  local cmd=($PY -m afnet_edge.cli bench --device cuda --repeats "$REPEATS" --out "$OUT" --no-progress "$@" $EXTRA)
  if [ "$DRY" = 1 ]; then
    # stages that differ only in what the tiny grid overrides (--name, --batches, --no-ceilings) are checked once
    local key="" skip=0 a
    for a in "$@"; do
      if [ $skip = 1 ]; then skip=0; continue; fi
      case $a in --name|--batches) skip=1 ;; --no-ceilings) ;; *) key+="${a}_" ;; esac
    done
    if [[ "$DRY_SEEN" == *" $key "* ]]; then echo "[dry-run]   ok: same bench options as a stage checked above"
    else DRY_SEEN+="$key "; drycheck "bench options on a tiny CPU grid" "${cmd[@]}" "${DRY_BENCH[@]}" --name "dry_$stage"; fi
  else
    run "${stage//-/_}" "${cmd[@]}"
  fi
}
# the kernel tests on a GPU right after the build: the extension must load (no skip for it) and every skip must be on
# the allow-list of tests/skip_reasons.py (e.g. "built without CUDA kernels" is not)
STRICT=(env AFNET_EDGE_REQUIRE_EXT=1 AFNET_EDGE_SKIP_ALLOWLIST=1)
pyt() {  # pyt NAME PYTEST-ARGS...: pytest, or its collection (which must select at least one test) in a dry run
  local name=$1; shift
  if [ "$DRY" = 1 ]; then drycheck "pytest collects: $*" $PY -m pytest --collect-only -q "$@"
  elif [ "$name" = pytest ]; then run "$name" env AFNET_EDGE_REQUIRE_EXT=1 $PY -m pytest -q -rs "$@"
  else run "$name" "${STRICT[@]}" $PY -m pytest -q -rs "$@"; fi
}
sanitize() {  # sanitize TOOL [all]: compute-sanitizer TOOL on the CUDA kernel tests
  local tool=$1 scope=${2:-}
  if [ "$DRY" = 1 ]; then gpu_tool compute-sanitizer; fi
  if [ "$tool" = memcheck ] || [ "$tool" = initcheck ] || [ "$scope" = all ]; then
    if [ "$DRY" = 1 ]; then drycheck "pytest collects: ${KT_SEL[*]}" $PY -m pytest --collect-only -q "${KT_SEL[@]}"
    else run "sanitize_$tool" "${STRICT[@]}" compute-sanitizer --tool "$tool" --error-exitcode 1 \
           $PY -m pytest -q -x "${KT_SEL[@]}"; fi
    return 0
  fi
  local t name kns sel
  for t in "${SAN_TARGETS[@]}"; do
    IFS='|' read -r name kns sel <<< "$t"
    if [ "$DRY" = 1 ]; then drycheck "pytest collects: -k '$sel'" $PY -m pytest --collect-only -q tests/test_kernels.py -k "$sel"
    else run "sanitize_${tool}_$name" "${STRICT[@]}" compute-sanitizer --tool "$tool" --error-exitcode 1 --kernel-name "kns=$kns" \
           $PY -m pytest -q -x tests/test_kernels.py -k "$sel" -p no:cacheprovider; fi
  done
}

# ---------------------------------------------------------------------------------------------------- the stages
stage_env() {
  if [ "$DRY" = 1 ]; then
    gpu_tool nvidia-smi; gpu_tool nvcc; gpu_tool compute-sanitizer
    drycheck "python, torch and afnet_edge import" $PY -c "import torch, afnet_edge, afnet_edge.cli; print(torch.__version__)"
    return 0
  fi
  run env bash -c "date -u; uname -a; nproc; free -g | head -2; nvidia-smi; nvidia-smi --query-gpu=name,driver_version,\
clocks.sm,clocks.max.sm,clocks.mem,power.limit,persistence_mode,mig.mode.current --format=csv; $PY -c 'import sys, \
torch; print(sys.executable, sys.version.split()[0]); print(torch.__version__, torch.version.cuda, \
torch.backends.cudnn.version(), torch.cuda.get_device_name(), torch.cuda.get_device_capability())'; \
nvcc --version | tail -2; command -v compute-sanitizer && compute-sanitizer --version | tail -1; ninja --version; \
$PY -m pip list 2>/dev/null | grep -iE '^(torch|numpy|onnx|onnxruntime|pytest|setuptools|ninja) ' || true"
}
stage_build() {
  if [ "$DRY" = 1 ]; then
    gpu_tool nvcc
    drycheck "setup.py loads and has build_ext" $PY setup.py build_ext --help
    drycheck "build tools import" $PY -c "import setuptools, torch.utils.cpp_extension"
    return 0
  fi
  local cc
  cc=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  # this GPU's architecture only, all cores, CUDA kernels required (AFNET_EDGE_CUDA=1 fails loudly if nvcc is absent)
  run build env TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$cc}" MAX_JOBS="$JOBS" AFNET_EDGE_CUDA=1 \
    $PY setup.py build_ext --inplace
  run build_check $PY -c "from afnet_edge.kernels import ext; import sys; ok = ext.has_kernels('cuda'); \
print('afnet_edge._C with CUDA kernels:', ok, ext.import_error() or ''); sys.exit(0 if ok else 1)"
  [ "$STAGE_RC" -ne 0 ] && BUILD_FAILED=1
  return 0
}
stage_kernels() {
  local args=()
  [ -n "$BUDGET" ] && args=("${KERNELS_BUDGET[@]}")
  if [ "$DRY" = 1 ]; then
    if $PY -c "import sys; from afnet_edge.kernels import ext; sys.exit(0 if ext.AVAILABLE else 1)" 2>/dev/null; then
      drycheck "bench_kernels.py ${args[*]} --smoke" $PY benchmarks/bench_kernels.py ${args[@]+"${args[@]}"} --smoke
    else
      drycheck "bench_kernels.py --help (afnet_edge._C not built here: no smoke run)" $PY benchmarks/bench_kernels.py --help
    fi
    return 0
  fi
  local tmpk
  tmpk=$(mktemp -d)
  run bench_kernels $PY benchmarks/bench_kernels.py ${args[@]+"${args[@]}"} --out-dir "$tmpk"
  # bench_kernels.py names its folder after torch's device name; keep everything under one slug
  find "$tmpk" -type f -exec cp {} "$OUT/" \;
  rm -rf "$tmpk"
}
stage_project() {  # roofline PROJECTION of this GPU from its published specs, checked against the grids just measured
  local pdev=$SLUG args=() f
  $PY -c "from afnet_edge.bench.projection import DEVICES; import sys; sys.exit(0 if '$SLUG' in DEVICES else 1)" 2>/dev/null \
    || pdev=h100-sxm
  for f in "$OUT"/models_*.json "$OUT"/headline_*.json; do [ -f "$f" ] && args+=(--results "$f"); done
  local cmd=($PY -m afnet_edge.cli project --device "$pdev" --models af_resnet50,af_mobilenetv3,tsm_resnet50
             --precision fp16 --batch 8 ${args[@]+"${args[@]}"} --json "$OUT/projection_check.json")
  if [ "$DRY" = 1 ]; then drycheck "afnet-edge project (device $pdev)" "${cmd[@]}"; else run project "${cmd[@]}"; fi
}
stage_readme() {
  if [ "$DRY" = 1 ]; then drycheck "make_readme_table.py --print" $PY benchmarks/make_readme_table.py --print
  else run readme $PY benchmarks/make_readme_table.py; fi
}
run_stage() {
  case $1 in
    env) stage_env ;;
    build) stage_build ;;
    kernel-test) pyt kernel_test "${KT_SEL[@]}" ;;
    test) pyt pytest ;;
    sanitize-memcheck|sanitize-racecheck|sanitize-synccheck|sanitize-initcheck) sanitize "${1#sanitize-}" ;;
    sanitize) for tool in memcheck racecheck synccheck initcheck; do sanitize "$tool"; done ;;
    kernels) stage_kernels ;;
    headline-b8) bench headline-b8 --name headline_b8 "${HEADLINE[@]}" --batches 8 ;;
    headline-b1) bench headline-b1 --name headline_b1 "${HEADLINE[@]}" --batches 1 --no-ceilings ;;
    grid-fp16)  # every model, batch 1/8/32, eager + CUDA graphs, torch and extension kernels
      bench grid-fp16 --name models_fp16 --precisions fp16 --modes eager,cudagraph --batches 1,8,32 \
        --models af_resnet50,af_mobilenetv3,tsm_resnet50,tsn_resnet50 --baseline-frames 8,16 \
        --ratios 0.25,0.4,0.5,1.0 --backends masked,compact-torch,compact-ext ;;
    grid-fp32)  # fp32 (TF32 convolutions, PyTorch's default) and ONNX Runtime (CUDA provider when installed)
      bench grid-fp32 --name models_fp32 --precisions fp32 --modes eager,cudagraph --batches 1,8 \
        --models af_resnet50,af_mobilenetv3,tsm_resnet50 --baseline-frames 8,16 \
        --ratios 0.25,0.4,1.0 --backends masked,compact-torch,compact-ext,onnxruntime ;;
    grid-compile)  # torch.compile: compilation dominates, so a smaller grid; failures are recorded as skipped rows
      if [ "$DRY" = 1 ]; then echo "[dry-run]   note: the dry run times eager instead of torch.compile (CPU compile is slow)"; fi
      bench grid-compile --name models_compile --precisions fp16 --modes compile --batches 1,8 \
        --models af_resnet50,tsm_resnet50 --baseline-frames 8 --ratios 0.4,1.0 --backends masked,compact-torch,compact-ext \
        --repeats 50 --no-ceilings $([ "$DRY" = 1 ] && echo --modes eager) ;;
    cross-family)  # every family at its published operating point, official-style vs fused, fp32, batch 1 and 8
      # (the dry run: two cheap families at the tiny size; the AdaFocus models always take 224² frames)
      bench cross-family --cross-family --name cross_family --batches 1,8 \
        $([ "$DRY" = 1 ] && echo --models tsm_resnet50,fullvideo_tsm_r50) ;;
    project) stage_project ;;
    readme) stage_readme ;;
  esac
}

# ---------------------------------------------------------------------------------------------------- dry-run-only checks
no_downloads() {  # static half of "nothing downloads": the scripts this one runs directly
  # shell: commands (not comments) that fetch; python: calls that fetch. A line may opt out with the tag nodl-ok.
  local shell_pat='(^|[^a-z_-])(curl|wget)([^a-z_-]|$)|git +(clone|fetch|pull|submodule)|pip[0-9.]* +(install|download)'  # nodl-ok
  local py_pat='urlopen|urlretrieve|requests\.(get|post)|torch\.hub|hf_hub_download|from_pretrained|load_state_dict_from_url|.pip., *.(install|download).'  # nodl-ok
  local bad
  bad=$(grep -nE "$shell_pat" benchmarks/run_gpu.sh | grep -vE '^[0-9]+:[[:space:]]*#' | grep -v 'nodl-ok' \
          | grep -vE 'pip[0-9.]* +install .*--no-index'
        grep -nE "$py_pat" benchmarks/bench_kernels.py benchmarks/make_readme_table.py | grep -v 'nodl-ok')
  if [ -n "$bad" ]; then
    echo "[dry-run]   FAILED: lines that could download:"; echo "$bad" | sed 's/^/[dry-run]     | /'; DRY_FAILS=$((DRY_FAILS + 1))
  else echo "[dry-run]   ok: no curl/wget/git fetch/pip install without --no-index in run_gpu.sh, no URL fetch in the Python it runs"; fi
  local probe
  probe=$($PY -c "import socket; socket.create_connection(('192.0.2.1', 9), timeout=1)" 2>&1)  # TEST-NET-1, nodl-ok
  if [[ "$probe" == *"network access attempted"* ]]; then
    echo "[dry-run]   ok: Python commands of this dry run cannot open network connections (guard checked)"
  else echo "[dry-run]   FAILED: the network guard is not active: $probe" | tail -3; DRY_FAILS=$((DRY_FAILS + 1)); fi
}
writable() {  # the folders a real run writes
  local d ok=1
  for d in benchmarks/results "$OUT" "${TMPDIR:-/tmp}" ${MIRROR:+"$MIRROR"}; do
    local probe="$d/.run_gpu_dry_probe.$$"
    if mkdir -p "$d" 2>/dev/null && mkdir "$probe" 2>/dev/null && rmdir "$probe"; then :
    else echo "[dry-run]   FAILED: $d is not writable"; ok=0; DRY_FAILS=$((DRY_FAILS + 1)); fi
  done
  [ $ok = 1 ] && echo "[dry-run]   ok: writable: benchmarks/results/ (a real run writes benchmarks/results/<slug>/), \$TMPDIR${MIRROR:+, $MIRROR}"
}

# ---------------------------------------------------------------------------------------------------- main loop
if [ "$DRY" = 1 ]; then
  echo "[dry-run] run_gpu.sh on $(uname -m), $($PY -c 'import sys; print(sys.version.split()[0])'), slug here: $SLUG"
  for tool in bash timeout tee date find cp mktemp nproc "$PY"; do
    command -v "$tool" >/dev/null || { echo "[dry-run] FAILED: $tool does not resolve"; DRY_FAILS=$((DRY_FAILS + 1)); }
  done
  echo "[dry-run] plan: ${STAGES[*]}${BUDGET:+ (budget ${BUDGET} s, ${RESERVE} s reserve)}"
  cum=0
  for stage in "${STAGES[@]}"; do
    cum=$((cum + ${EST[$stage]}))
    fit=
    [ -n "$BUDGET" ] && { [ $cum -le $((BUDGET - RESERVE)) ] && fit="fits" || fit="runs only if earlier stages beat their estimates"; }
    printf '[dry-run]   %-20s est. %4d s, cumulative %4d s%s\n' "$stage" "${EST[$stage]}" "$cum" "${fit:+, $fit}"
  done
  echo "[dry-run] checks: nothing downloads"; no_downloads
  echo "[dry-run] checks: output folders"; writable
  for stage in "${STAGES[@]}"; do
    echo "[dry-run] stage $stage"
    STAGE_RC=0
    run_stage "$stage"
    [ "$STAGE_RC" -ne 0 ] && DRY_FAILS=$((DRY_FAILS + 1))
  done
  if [ "$DRY_FAILS" -eq 0 ]; then echo "[dry-run] PASSED: ${#STAGES[@]} stages checked"; exit 0; fi
  echo "[dry-run] FAILED: $DRY_FAILS check(s) failed"; exit 1
fi

log "=== run_gpu.sh $(date -u +%FT%TZ) stages: ${STAGES[*]}${BUDGET:+ budget ${BUDGET}s} -> $OUT"
[ -f "$OUT/stages.tsv" ] || printf 'date\tstage\testimate_s\tlimit_s\tactual_s\tstatus\n' > "$OUT/stages.tsv"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "${EST[$1]}" "$2" "$3" "$4" >> "$OUT/stages.tsv"; }
for stage in "${STAGES[@]}"; do
  STAGE_RC=0 STAGE_DEADLINE= limit=-
  if [ "$BUILD_FAILED" = 1 ] && [[ "$NEEDS_EXT" == *" $stage "* ]]; then
    log "=== SKIP [$stage]: needs the CUDA extension and the build failed"; record "$stage" - 0 skipped-no-build
    status=1; continue
  fi
  if [ -n "$DEADLINE" ]; then
    left=$((DEADLINE - $(date +%s)))
    if [ "${EST[$stage]}" -gt "$left" ]; then
      log "=== SKIP [$stage]: estimated ${EST[$stage]} s does not fit in the ${left} s left of the budget"
      record "$stage" - 0 skipped-budget; continue
    fi
    cap=${CAP[$stage]}
    limit=$(( left < cap ? left : cap ))
    STAGE_DEADLINE=$(( $(date +%s) + limit ))
    log "=== [$stage] estimated ${EST[$stage]} s, timeout ${limit} s, ${left} s left of the budget"
  fi
  t0=$(date +%s)
  run_stage "$stage"
  case $STAGE_RC in 0) st=ok ;; 124|137) st=timeout ;; *) st="failed($STAGE_RC)" ;; esac
  [ "$STAGE_RC" -ne 0 ] && status=1
  record "$stage" "$limit" $(( $(date +%s) - t0 )) "$st"
  mirror
done
log "=== done after $(( $(date +%s) - START )) s; results in $OUT (exit $status); stage times in $OUT/stages.tsv"
mirror
exit $status
