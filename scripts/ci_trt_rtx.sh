#!/usr/bin/env bash
# Installs what the export tests need beyond the base environment, so that CI (no GPU) exercises TensorRT network
# construction and engine serialisation on every run:
#   * TensorRT for RTX (module tensorrt_rtx_bindings): builds engines without a GPU, for named compute capabilities;
#   * onnxruntime-extensions: binds the plugin nodes of the `plugin` ONNX flavour to the pure-PyTorch reference ops,
#     so ONNX Runtime can run that graph too;
#   * cuda-python: the runner's device-memory binding, so the no-GPU error path of TRTRunner is exercised.
# About 15 s and ~150 MB of wheels. Idempotent. Without network access the tests that need these packages skip with
# a reason instead of failing.
# Usage: bash scripts/ci_trt_rtx.sh [--run-tests]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
PKGS=(tensorrt-rtx-cu13-bindings==1.7.1.116 tensorrt-rtx-cu13-libs==1.7.1.116 onnxruntime-extensions==0.15.2
      cuda-python==13.4.4)

if ! "$PY" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}"; then
  echo "ci_trt_rtx: could not install ${PKGS[*]}; the TensorRT-for-RTX and plugin-graph tests will skip" >&2
fi
"$PY" - <<'PY'
import importlib
for name in ("tensorrt_rtx_bindings", "onnxruntime_extensions", "cuda.bindings", "onnxruntime", "onnx"):
    try:
        m = importlib.import_module(name)
        print(f"ci_trt_rtx: {name} {getattr(m, '__version__', '?')}")
    except ImportError as e:
        print(f"ci_trt_rtx: {name} unavailable ({e})")
PY

if [[ "${1:-}" == "--run-tests" ]]; then
  "$PY" -m pytest -q tests/test_export_onnx.py tests/test_trt_engine.py tests/test_trt_runtime.py \
    tests/test_fullvideo_export.py
fi
