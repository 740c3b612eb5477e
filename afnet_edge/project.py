"""Latency PROJECTION (not a measurement) of afnet_edge models on devices we cannot run on, from a per-kernel roofline.

``afnet-edge project --device orin-agx|orin-nx|orin-nano|orin-nano-super|thor|h100-sxm|h100-pcie|h200|a100-sxm|cpu``

How a projection is made:

1. **Trace** (:func:`trace_ops`): the model is built on the ``meta`` device (no memory, no arithmetic) in the requested
   configuration and precision and run twice (the first run fills the focal constant-map caches, as a deployed model
   has them); the second run is recorded op by op with a ``TorchDispatchMode``. Every aten op that launches a kernel
   becomes an :class:`OpRecord` with the module (layer) it ran in, its multiply-accumulates (convolutions:
   ``out.numel()·C_in/groups·kh·kw``; matrix products ``M·N·K``) and the bytes it moves (every tensor argument read
   once, every output written once; gathers read only what they gather). Views and allocations move nothing and launch
   nothing. The conv/linear MACs equal :func:`afnet_edge.flops.count_flops`'s executed MACs (tested).
2. **Roofline per kernel** (:func:`project_ops`): ``time = max(2·MACs / peak_matrix, vector FLOPs / peak_vector,
   bytes / bandwidth) + launch overhead``, summed over kernels. Scenarios: ``eager`` (every op a kernel, eager
   per-op overhead), ``cudagraph`` (same kernels, graph-replay overhead), ``fused`` (an ideal graph compiler such as
   TensorRT: element-wise ops, eval BatchNorm included, are fused into their producers and move no extra bytes).
3. **Device specs** (:data:`DEVICES`): published peak dense matrix throughput (fp16/bf16, tf32), fp32 vector
   throughput and DRAM bandwidth, each with its public source; values derived from published numbers say how. The
   per-kernel overheads are *assumptions* (no vendor publishes them) unless a results file of the device carries
   measured ceilings (``afnet-edge bench`` measures matmul GFLOPS, copy GB/s and per-op overhead), in which case a
   second, *calibrated* projection uses those.

A roofline with peak numbers is a lower bound on time for each kernel: small and grouped convolutions do not reach
peak, so projections are expected to be optimistic. :func:`projection_error` compares projections with measurements
whenever a results file for the device exists, and ``afnet-edge project`` prints the error automatically.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics
import sys
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

__all__ = ["DeviceSpec", "DEVICES", "OpRecord", "trace_ops", "record_ops", "project_ops", "project", "projection_error",
           "spec_from_ceilings", "find_results", "format_projection", "register", "LABEL", "SCENARIOS"]

LABEL = "PROJECTION (roofline estimate from device specs; not a measurement)"
SCENARIOS = ("eager", "cudagraph", "fused")
GIGA = 1e9


@dataclass
class DeviceSpec:
    """Peak rates of a device. ``matrix_tflops``: dense tensor-core (or, for a CPU, measured matmul) throughput per
    precision (``fp16``, ``bf16``, ``tf32``, ``fp32``); ``vector_tflops``: fp32 FMA-unit throughput for non-matrix
    work; ``bandwidth_gbs``: DRAM bandwidth (GB/s = 1e9 B/s); ``launch_us``: per-kernel overhead per scenario;
    ``sources``: where each number comes from; ``derived``: how derived numbers were computed."""

    key: str
    name: str
    kind: str
    bandwidth_gbs: float
    matrix_tflops: dict
    vector_tflops: float
    launch_us: dict
    sources: list = field(default_factory=list)
    derived: list = field(default_factory=list)
    conv_fp32_uses_tf32: bool = True
    calibrated: bool = False

    def matrix_peak(self, precision: str, op: str) -> float:
        """FLOP/s for a matrix op (``conv`` or ``mm``) in ``precision``."""
        m = self.matrix_tflops
        if precision in ("fp16", "bf16"):
            return m.get(precision, m.get("fp16", m["fp32"])) * 1e12
        if op == "conv" and self.conv_fp32_uses_tf32 and "tf32" in m:
            return m["tf32"] * 1e12  # PyTorch lets cuDNN use TF32 for fp32 convolutions by default
        return m["fp32"] * 1e12


_ASSUMED_LAUNCH_DGPU = {"eager": 6.0, "cudagraph": 1.5, "fused": 1.5}
_ASSUMED_LAUNCH_JETSON = {"eager": 15.0, "cudagraph": 2.0, "fused": 2.0}
_LAUNCH_NOTE = ("per-kernel overheads are assumptions (eager: PyTorch host dispatch per op; cudagraph/fused: gap "
                "between kernels of a replayed graph), not published numbers; a results file with measured ceilings "
                "replaces them")

H100_SRC = ["NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/ (SXM5: FP16/BF16 "
            "tensor 1,979 TFLOPS with sparsity = 989.4 dense, TF32 989 with sparsity = 494.7 dense, FP32 67 TFLOPS, "
            "HBM3 3.35 TB/s); PCIe: FP16 1,513 sparse = 756 dense, TF32 378 dense, FP32 51, 2.0 TB/s",
            "cross-checked: https://glennklockwood.com/garden/processors/h100 (dense table: FP16 989.4, TF32 494.7, "
            "FP32 66.9)"]
ORIN_SRC = ["NVIDIA Jetson AGX Orin Series Technical Brief v1.2 (2048 CUDA cores = 16 SMs at 1.3 GHz, 5.3 FP32 "
            "TFLOPS, 64 tensor cores, GPU 170 sparse INT8 TOPS), https://www.nvidia.com/content/dam/en-zz/Solutions/"
            "gtcf21/jetson-orin/nvidia-jetson-agx-orin-technical-brief.pdf",
            "Jetson Orin module table (memory bandwidth AGX Orin 64GB 204.8 GB/s, Orin NX 16GB 102.4 GB/s, Orin Nano "
            "8GB 68 GB/s; GPU max frequency NX 918 MHz, Nano 625 MHz), https://www.nvidia.com/en-us/autonomous-"
            "machines/embedded-systems/jetson-orin/",
            "Orin Nano Super (JetPack 6.1+: GPU 1020 MHz, 102 GB/s), https://developer.nvidia.com/blog/nvidia-jetson-"
            "orin-nano-developer-kit-gets-a-super-boost/"]
ORIN_DERIVED = ("Orin fp16 dense tensor peak = GPU sparse INT8 TOPS / 4 (dense = sparse / 2; FP16 = INT8 / 2 on "
                "Ampere tensor cores) = 2048 FLOP/clk/SM: AGX 16 SM × 1.3 GHz → 42.6; the same per-SM rate at the "
                "published clocks for NX (8 SM × 0.918 GHz → 15.0), Nano (8 × 0.625 → 10.2), Nano Super "
                "(8 × 1.02 → 16.7); TF32 = FP16 / 2; FP32 = 2 × CUDA cores × clock")
THOR_SRC = ["NVIDIA Jetson Thor (Jetson AGX Thor developer kit / T5000: 2560-core Blackwell GPU with 96 fifth-"
            "generation tensor cores, up to 2070 FP4 TFLOPS (sparse), 128 GB LPDDR5X 273 GB/s, GPU max 1.57 GHz), "
            "https://www.nvidia.com/en-us/autonomous-machines/embedded-systems/jetson-thor/",
            "20 SMs reported by the CUDA driver on a Thor devkit: https://forums.developer.nvidia.com/t/clarification-"
            "on-cuda-core-and-tensor-core-counts-for-jetson-agx-thor/356355"]
THOR_DERIVED = ("Thor fp16 dense = 2070 FP4 sparse TFLOPS / 8 (÷2 dense, ÷4 FP4→FP16 as on datacenter Blackwell) "
                "≈ 259 — an upper bound, NVIDIA publishes no FP16 figure; FP32 = 2560 cores × 2 × 1.57 GHz = 8.0; "
                "the 1.57 GHz clock and the FP4→FP16 ratio were not re-checked against a primary source here")

DEVICES: dict[str, DeviceSpec] = {
    "h100-sxm": DeviceSpec("h100-sxm", "NVIDIA H100 SXM5 80GB", "gpu", 3350.0,
                           {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}, 66.9,
                           dict(_ASSUMED_LAUNCH_DGPU), list(H100_SRC), [_LAUNCH_NOTE]),
    "h100-pcie": DeviceSpec("h100-pcie", "NVIDIA H100 PCIe 80GB", "gpu", 2000.0,
                            {"fp16": 756.0, "bf16": 756.0, "tf32": 378.0, "fp32": 51.2}, 51.2,
                            dict(_ASSUMED_LAUNCH_DGPU), list(H100_SRC), [_LAUNCH_NOTE]),
    "h200": DeviceSpec("h200", "NVIDIA H200 SXM 141GB", "gpu", 4800.0,
                       {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}, 66.9, dict(_ASSUMED_LAUNCH_DGPU),
                       ["NVIDIA H200 datasheet, https://www.nvidia.com/en-us/data-center/h200/ (same compute as H100 "
                        "SXM, HBM3e 4.8 TB/s)"], [_LAUNCH_NOTE]),
    "a100-sxm": DeviceSpec("a100-sxm", "NVIDIA A100 SXM4 80GB", "gpu", 2039.0,
                           {"fp16": 312.0, "bf16": 312.0, "tf32": 156.0, "fp32": 19.5}, 19.5,
                           dict(_ASSUMED_LAUNCH_DGPU),
                           ["NVIDIA A100 datasheet, https://www.nvidia.com/en-us/data-center/a100/ (FP16 tensor 312 "
                            "dense, TF32 156 dense, FP32 19.5 TFLOPS, 2,039 GB/s)"], [_LAUNCH_NOTE]),
    "orin-agx": DeviceSpec("orin-agx", "Jetson AGX Orin 64GB (MAXN)", "gpu", 204.8,
                           {"fp16": 42.6, "bf16": 42.6, "tf32": 21.3, "fp32": 5.3}, 5.3, dict(_ASSUMED_LAUNCH_JETSON),
                           list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nx": DeviceSpec("orin-nx", "Jetson Orin NX 16GB", "gpu", 102.4,
                          {"fp16": 15.0, "bf16": 15.0, "tf32": 7.5, "fp32": 1.88}, 1.88, dict(_ASSUMED_LAUNCH_JETSON),
                          list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nano": DeviceSpec("orin-nano", "Jetson Orin Nano 8GB", "gpu", 68.0,
                            {"fp16": 10.2, "bf16": 10.2, "tf32": 5.1, "fp32": 1.28}, 1.28,
                            dict(_ASSUMED_LAUNCH_JETSON), list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nano-super": DeviceSpec("orin-nano-super", "Jetson Orin Nano 8GB Super (JetPack 6.1+)", "gpu", 102.0,
                                  {"fp16": 16.7, "bf16": 16.7, "tf32": 8.4, "fp32": 2.09}, 2.09,
                                  dict(_ASSUMED_LAUNCH_JETSON), list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "thor": DeviceSpec("thor", "Jetson AGX Thor (T5000)", "gpu", 273.0,
                       {"fp16": 258.75, "bf16": 258.75, "tf32": 129.4, "fp32": 8.04}, 8.04,
                       dict(_ASSUMED_LAUNCH_JETSON), list(THOR_SRC), [THOR_DERIVED, _LAUNCH_NOTE]),
}


def spec_from_ceilings(ceilings: dict, key: str = "cpu", name: str | None = None,
                       base: DeviceSpec | None = None) -> DeviceSpec:
    """Device spec from measured ceilings (``afnet-edge bench``'s ``ceilings``): matmul GFLOPS as the matrix peak,
    copy GB/s as bandwidth, per-op overhead as the eager launch cost. ``base``: a published spec to calibrate (its
    vector peak and non-eager overheads are kept)."""
    for k in ("matmul_gflops_fp32", "copy_gbs", "op_overhead_us"):
        if not isinstance(ceilings.get(k), (int, float)) or not ceilings[k] > 0:
            raise ValueError(f"ceilings lack a positive {k!r}; run `afnet-edge bench` (without --no-ceilings)")
    m = {"fp32": ceilings["matmul_gflops_fp32"] / 1e3}
    if ceilings.get("matmul_gflops_fp16"):
        m["fp16"] = m["bf16"] = ceilings["matmul_gflops_fp16"] / 1e3
    else:
        m["fp16"] = m["bf16"] = m["fp32"]
    ov = float(ceilings["op_overhead_us"])
    if base is None:
        launch = {"eager": ov, "cudagraph": ov, "fused": ov}
        vector = m["fp32"]
    else:
        launch = {**base.launch_us, "eager": ov}
        vector = base.vector_tflops
    return DeviceSpec(key=key, name=name or (base.name if base else "CPU (measured ceilings)"),
                      kind=base.kind if base else "cpu", bandwidth_gbs=float(ceilings["copy_gbs"]),
                      matrix_tflops=m, vector_tflops=vector, launch_us=launch,
                      sources=[f"measured by afnet-edge bench (ceilings: {json.dumps(ceilings, default=str)[:300]})"],
                      derived=["matrix peak = measured fp32 (and fp16) matmul rate; bandwidth = measured copy "
                               "(read + write) rate; eager per-op overhead = measured tiny-op time"],
                      conv_fp32_uses_tf32=False, calibrated=True)


# ----------------------------------------------------------------------------------------------------- tracing
@dataclass
class OpRecord:
    """One kernel of a forward: aten op, layer (innermost module), MACs, vector FLOPs, bytes read/written, class
    (``matrix``: conv/matmul, ``elementwise``, ``data``: copies, gathers, concatenations, fills, ``reduction``,
    ``other``), and the matrix op kind (``conv``/``mm``) for the peak choice."""

    op: str
    layer: str
    macs: float
    vector_flops: float
    bytes_read: float
    bytes_written: float
    cls: str
    matrix_kind: str = ""


_MATRIX = {"convolution": "conv", "_convolution": "conv", "conv2d": "conv", "mm": "mm", "addmm": "mm", "bmm": "mm",
           "baddbmm": "mm", "matmul": "mm", "linear": "mm"}
_NO_KERNEL = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "_unsafe_view", "lift_fresh",
              "alias", "detach", "set_", "resize_", "_local_scalar_dense", "sym_size", "sym_stride", "is_same_size"}
_WRITE_ONLY = {"zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full",
               "arange", "fill_", "zero_", "scalar_tensor", "randn", "rand", "uniform_", "normal_"}
_GATHER = {"index_select", "gather", "index", "embedding", "take"}
_ELEMENTWISE_EXTRA = {"_native_batch_norm_legit_no_training", "native_batch_norm", "hardswish", "hardswish_",
                      "hardsigmoid", "hardsigmoid_", "relu", "relu_", "sigmoid", "threshold", "where", "clamp",
                      "clamp_min", "clamp_max", "_to_copy", "masked_fill", "rsub", "lerp"}
_DATA = {"cat", "stack", "clone", "copy_", "index_copy", "index_copy_", "index_put", "index_put_", "scatter",
         "scatter_", "constant_pad_nd", "upsample_nearest2d", "_unsafe_index", "select_scatter", "slice_scatter",
         "repeat", "expand_copy", "roll"}
_REDUCTION = {"mean", "sum", "amax", "max", "argmax", "_adaptive_avg_pool2d", "adaptive_avg_pool2d", "avg_pool2d",
              "max_pool2d_with_indices", "sort", "topk", "argsort", "var_mean", "cumsum", "softmax", "_softmax"}


def _nbytes(t: torch.Tensor) -> float:
    return float(t.numel() * t.element_size())


def _classify(func) -> tuple[str, str]:
    name = func._schema.name.split("::")[-1]
    if name in _MATRIX:
        return "matrix", _MATRIX[name]
    if name in _DATA:
        return "data", ""
    if name in _REDUCTION:
        return "reduction", ""
    if name in _ELEMENTWISE_EXTRA or torch.Tag.pointwise in getattr(func, "tags", ()):
        return "elementwise", ""
    if name in _WRITE_ONLY or name in _GATHER:
        return "data", ""
    return "other", ""


def _conv_macs(args, out: torch.Tensor) -> float:
    w = args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    if transposed:
        x = args[0]
        return float(x.numel() * w.shape[1] * math.prod(w.shape[2:]))
    return float(out.numel() * w.shape[1] * math.prod(w.shape[2:]))


def _mm_macs(name: str, args, out: torch.Tensor) -> float:
    if name in ("mm", "bmm", "matmul"):
        a = args[0]
    else:  # addmm(bias, a, b), baddbmm(bias, a, b)
        a = args[1]
    return float(out.numel() * a.shape[-1])


class _Recorder:
    """Dispatch mode + module hooks: ops of one forward with the module they ran in."""

    def __init__(self, model: nn.Module):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten
        self.records: list[OpRecord] = []
        self.stack: list[str] = []
        rec = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                name = func._schema.name.split("::")[-1]
                if getattr(func, "is_view", False) or name in _NO_KERNEL:
                    return out
                ins = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
                outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
                cls, mk = _classify(func)
                written = sum(_nbytes(o) for o in outs)
                if name in _WRITE_ONLY:
                    read = 0.0
                elif name in _GATHER:
                    read = written + sum(_nbytes(a) for a in ins if not a.is_floating_point())
                else:
                    read = sum(_nbytes(a) for a in ins)
                macs = 0.0
                if cls == "matrix" and outs:
                    macs = _conv_macs(args, outs[0]) if mk == "conv" else _mm_macs(name, args, outs[0])
                vflops = 0.0 if cls == "matrix" else float(sum(o.numel() for o in outs))
                rec.records.append(OpRecord(name, rec.stack[-1] if rec.stack else "", macs, vflops, read, written,
                                            cls, mk))
                return out

        self.mode = Mode()
        self.handles = []
        def push(name):
            def hook(mod, inp) -> None:
                rec.stack.append(name)
            return hook

        def pop(mod, inp, out) -> None:  # a hook must return None, or it replaces the module's output
            rec.stack.pop()

        for n, m in model.named_modules():
            self.handles.append(m.register_forward_pre_hook(push(n)))
            self.handles.append(m.register_forward_hook(pop))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def record_ops(module: nn.Module, *inputs) -> list[OpRecord]:
    """Kernels of ``module(*inputs)`` (any device; use ``meta`` tensors to record without computing)."""
    rec = _Recorder(module)
    try:
        with torch.no_grad(), rec.mode:
            module(*inputs)
    finally:
        rec.close()
    return rec.records


_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def trace_ops(model_name: str, frames: int | None = None, ratio: float = 0.5, batch: int = 1, size: int = 224,
              precision: str = "fp32", execution: str = "compact", kernels: str = "torch",
              num_classes: int = 174, **options) -> list[OpRecord]:
    """Kernels of one inference forward of ``model_name`` (built on the meta device), as :class:`OpRecord` s.

    ``execution``: ``"compact"`` or ``"masked"`` (ignored by dense baselines); selection is ``topk`` with ``ratio``.
    ``kernels``: ``"torch"`` (pure-PyTorch fused ops) or ``"ext"`` (each extension op counted as one kernel via its
    fake implementation; requires the extension). Input ``(batch, T, 3, size, size)``.
    """
    from .models import create_model
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(_PRECISIONS)}, got {precision!r}")
    if execution not in ("compact", "masked"):
        raise ValueError(f"execution must be 'compact' or 'masked', got {execution!r}")
    with torch.device("meta"):
        model = create_model(model_name, num_classes=num_classes, num_frames=frames, **options)
    model = model.to(_PRECISIONS[precision]).eval()
    model.configure(execution=execution, selection="topk", ratio=ratio, kernels=kernels)
    x = torch.empty(batch, model.num_frames, 3, size, size, device="meta", dtype=_PRECISIONS[precision])
    with torch.no_grad():
        model(x)  # fills the constant-map caches (computed once per input size in a deployed model)
    return record_ops(model, x)


# ----------------------------------------------------------------------------------------------------- roofline
def _op_time(op: OpRecord, spec: DeviceSpec, precision: str, scenario: str) -> tuple[float, float, float, float]:
    """(compute s, memory s, launch s, total s) of one kernel; fused element-wise ops cost nothing."""
    if scenario == "fused" and op.cls == "elementwise":
        return 0.0, 0.0, 0.0, 0.0
    compute = 2.0 * op.macs / spec.matrix_peak(precision, op.matrix_kind) if op.cls == "matrix" else \
        op.vector_flops / (spec.vector_tflops * 1e12)
    memory = (op.bytes_read + op.bytes_written) / (spec.bandwidth_gbs * 1e9)
    launch = spec.launch_us[scenario] * 1e-6
    return compute, memory, launch, max(compute, memory) + launch


def project_ops(ops: list[OpRecord], spec: DeviceSpec, precision: str = "fp16", scenario: str = "eager",
                per_layer: bool = True) -> dict:
    """Roofline time of a list of kernels on ``spec`` (ms), with the compute/memory/launch split, the kernel count and
    (``per_layer``) the same per layer, slowest first."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    tot = {"compute_ms": 0.0, "memory_ms": 0.0, "launch_ms": 0.0, "total_ms": 0.0, "kernels": 0, "gmacs": 0.0,
           "gbytes": 0.0, "compute_bound_ms": 0.0, "memory_bound_ms": 0.0}
    layers: dict = {}
    for op in ops:
        c, m, l, t = _op_time(op, spec, precision, scenario)
        if t == 0.0:
            continue
        for d in (tot, layers.setdefault(op.layer, {"layer": op.layer, "compute_ms": 0.0, "memory_ms": 0.0,
                                                    "launch_ms": 0.0, "total_ms": 0.0, "kernels": 0, "gmacs": 0.0,
                                                    "gbytes": 0.0, "compute_bound_ms": 0.0,
                                                    "memory_bound_ms": 0.0})):
            d["compute_ms"] += c * 1e3
            d["memory_ms"] += m * 1e3
            d["launch_ms"] += l * 1e3
            d["total_ms"] += t * 1e3
            d["kernels"] += 1
            d["gmacs"] += op.macs / GIGA
            d["gbytes"] += (op.bytes_read + op.bytes_written) / GIGA
            d["compute_bound_ms" if c >= m else "memory_bound_ms"] += max(c, m) * 1e3
    if per_layer:
        tot["per_layer"] = sorted(layers.values(), key=lambda d: -d["total_ms"])
    return tot


def project(model_name: str, spec: DeviceSpec, frames: int | None = None, ratio: float | None = 0.5,
            batch: int = 1, size: int = 224, precision: str = "fp16", execution: str = "compact",
            scenario: str = "eager", kernels: str = "torch", per_layer: bool = True, _ops=None) -> dict:
    """PROJECTION of one configuration on ``spec``: ``{"label", "device", "config", "total_ms", ...}``.
    ``ratio=None`` (masked anchor) projects every focal frame."""
    from .models import model_entry
    dense = model_entry(model_name).family == "dense"
    r = 1.0 if ratio is None else ratio
    ops = _ops if _ops is not None else trace_ops(model_name, frames, r, batch, size, precision,
                                                  "compact" if dense else execution, kernels)
    res = project_ops(ops, spec, precision, scenario, per_layer)
    res.update(label=LABEL, kind="projection", device=spec.key, device_name=spec.name, calibrated=spec.calibrated,
               config={"model": model_name, "frames": frames, "ratio": ratio, "batch": batch, "size": size,
                       "precision": precision, "execution": "dense" if dense else execution, "scenario": scenario,
                       "kernels": kernels})
    return res


# ----------------------------------------------------------------------------------------------------- checking
def _row_scenario(row: dict) -> str | None:
    if row.get("backend") in ("trt", "onnxruntime"):
        return "fused"
    if row.get("mode") == "eager":
        return "eager"
    if row.get("mode") == "cudagraph":
        return "cudagraph"
    return None  # torch.compile: generated kernels, no model here


def projection_error(doc: dict, spec: DeviceSpec, rows: list | None = None) -> dict:
    """Compare PROJECTIONS on ``spec`` with every measured row of a results document that a scenario covers.

    Returns ``{"device", "results", "rows": [{config, measured_ms, projected_ms, error}], "summary": {n,
    median_abs_error, mean_error, max_abs_error}}``; ``error = projected / measured − 1`` (negative: the projection is
    faster than reality, the usual case for a peak-rate roofline).
    """
    out_rows = []
    cache: dict = {}
    for row in rows if rows is not None else doc.get("rows", []):
        if row.get("status") != "ok" or not isinstance(row.get("latency_ms"), dict):
            continue
        scen = _row_scenario(row)
        if scen is None or row.get("backend") == "compact-ext":
            continue
        execution = "masked" if row["backend"] == "masked" else "compact"
        key = (row["model"], row["frames"], row.get("ratio"), row["batch"], row["size"], row["precision"], execution)
        if key not in cache:
            cache[key] = trace_ops(row["model"], row["frames"], 1.0 if row.get("ratio") is None else row["ratio"],
                                   row["batch"], row["size"], row["precision"], execution)
        proj = project(row["model"], spec, row["frames"], row.get("ratio"), row["batch"], row["size"],
                       row["precision"], execution, scen, per_layer=False, _ops=cache[key])
        meas = row["latency_ms"]["p50"]
        out_rows.append({"model": row["model"], "frames": row["frames"], "backend": row.get("label", row["backend"]),
                         "precision": row["precision"], "batch": row["batch"], "ratio": row.get("ratio"),
                         "size": row["size"], "scenario": scen, "measured_ms": meas,
                         "projected_ms": proj["total_ms"], "error": proj["total_ms"] / meas - 1.0,
                         "projected_compute_ms": proj["compute_bound_ms"],
                         "projected_memory_ms": proj["memory_bound_ms"], "projected_launch_ms": proj["launch_ms"],
                         "kernels": proj["kernels"]})
    errs = [r["error"] for r in out_rows]
    summary = {"n": len(errs)}
    if errs:
        summary.update(median_abs_error=statistics.median(abs(e) for e in errs), mean_error=statistics.fmean(errs),
                       max_abs_error=max(abs(e) for e in errs))
    return {"label": LABEL, "device": spec.key, "calibrated": spec.calibrated,
            "results": doc.get("_path") or doc.get("_json_name"), "rows": out_rows, "summary": summary}


def find_results(device: str, root: str = os.path.join("benchmarks", "results")) -> list[str]:
    """Measured results files (kind ``measurement``) for ``device``: ``<root>/<device>/*.json``; for ``cpu`` every
    ``<root>/cpu-*/`` folder."""
    pattern = os.path.join(root, "cpu-*", "*.json") if device == "cpu" else os.path.join(root, device, "*.json")
    out = []
    for p in sorted(glob.glob(pattern)):
        try:
            with open(p) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("kind") == "measurement" and d.get("rows"):
            out.append(p)
    return out


# ----------------------------------------------------------------------------------------------------- printing
def _f(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def format_projection(results: list[dict], spec: DeviceSpec, top_layers: int = 0) -> str:
    lines = [f"{LABEL}", f"device: {spec.name} [{spec.key}]{' — calibrated with measured ceilings' if spec.calibrated else ''}",
             f"  bandwidth {spec.bandwidth_gbs:g} GB/s; matrix peak (TFLOPS) "
             + ", ".join(f"{k} {v:g}" for k, v in spec.matrix_tflops.items())
             + f"; vector fp32 {spec.vector_tflops:g} TFLOPS; per-kernel overhead (µs) "
             + ", ".join(f"{k} {v:g}" for k, v in spec.launch_us.items())]
    for s in spec.sources:
        lines.append(f"  source: {s}")
    for d in spec.derived:
        lines.append(f"  note: {d}")
    lines.append(f"{'model':15s} {'T':>3s} {'exec':8s} {'scen':9s} {'prec':4s} {'b':>3s} {'r':>5s} "
                 f"{'PROJ ms':>9s} {'c-bound':>8s} {'m-bound':>8s} {'launch':>8s} {'kernels':>7s} {'GMACs':>8s} "
                 f"{'GB':>7s}")
    lines.insert(len(lines) - 1, "  (c-bound / m-bound: time of the kernels limited by compute / by memory traffic; "
                                 "launch: per-kernel overheads; all ms per batch)")
    for r in results:
        c = r["config"]
        lines.append(f"{c['model']:15s} {c['frames'] or '':>3} {c['execution']:8s} {c['scenario']:9s} "
                     f"{c['precision']:4s} {c['batch']:>3d} {'-' if c['ratio'] is None else format(c['ratio'], 'g'):>5s} "
                     f"{_f(r['total_ms']):>9s} {_f(r['compute_bound_ms']):>8s} {_f(r['memory_bound_ms']):>8s} "
                     f"{_f(r['launch_ms']):>8s} {r['kernels']:>7d} {r['gmacs']:>8.2f} {r['gbytes']:>7.3f}")
        if top_layers and r.get("per_layer"):
            for layer in r["per_layer"][:top_layers]:
                bound = "compute" if layer["compute_bound_ms"] >= layer["memory_bound_ms"] else "memory"
                lines.append(f"    {layer['layer'] or '(top level)':52s} {_f(layer['total_ms']):>8s} ms  "
                             f"{layer['kernels']:4d} kernels  {bound}-bound")
    return "\n".join(lines)


def format_error(err: dict) -> str:
    s = err["summary"]
    lines = [f"Projection error against measurements in {err['results']} ({LABEL}; error = projected / measured − 1)"]
    lines.append(f"{'model':15s} {'T':>3s} {'backend':24s} {'prec':4s} {'b':>3s} {'r':>5s} {'measured':>9s} "
                 f"{'PROJ':>9s} {'error':>7s}")
    for r in err["rows"]:
        lines.append(f"{r['model']:15s} {r['frames']:>3d} {r['backend']:24s} {r['precision']:4s} {r['batch']:>3d} "
                     f"{'-' if r['ratio'] is None else format(r['ratio'], 'g'):>5s} {_f(r['measured_ms']):>9s} "
                     f"{_f(r['projected_ms']):>9s} {r['error']:>+7.1%}")
    if s["n"]:
        lines.append(f"summary: n={s['n']}, median |error| {s['median_abs_error']:.1%}, mean error "
                     f"{s['mean_error']:+.1%}, max |error| {s['max_abs_error']:.1%}")
    else:
        lines.append("summary: no measured row is covered by a projection scenario")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- CLI
def _load(path: str) -> dict:
    with open(path) as f:
        doc = json.load(f)
    doc["_path"] = path
    return doc


def _cmd_project(args) -> int:
    from .bench import _csv  # noqa: F401  (same list syntax as bench)
    if args.list_devices:
        for k, s in DEVICES.items():
            print(f"{k:16s} {s.name:42s} {s.bandwidth_gbs:>7g} GB/s  fp16 {s.matrix_tflops.get('fp16'):>7g} TFLOPS")
        print(f"{'cpu':16s} {'this CPU, from measured ceilings':42s}")
        return 0
    results_paths = args.results or find_results(args.device, args.results_root)
    for p in results_paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"--results {p}: file not found")
    docs = [_load(p) for p in results_paths]
    specs: list[DeviceSpec] = []
    if args.device == "cpu":
        ce = next((d.get("ceilings") for d in docs if d.get("ceilings")), None)
        if args.measure_ceilings or ce is None:
            if ce is None and not args.measure_ceilings:
                print("afnet-edge project: no results file with measured CPU ceilings found; measuring them now",
                      file=sys.stderr)
            from .bench import measure_ceilings
            ce = measure_ceilings("cpu")
        specs.append(spec_from_ceilings(ce, "cpu"))
    else:
        if args.device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join([*DEVICES, 'cpu'])}, got {args.device!r}")
        specs.append(DEVICES[args.device])
        ce = next((d.get("ceilings") for d in docs if d.get("ceilings")), None)
        if ce:
            specs.append(spec_from_ceilings(ce, args.device, base=DEVICES[args.device]))
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    from .models import model_entry
    out: dict = {"label": LABEL, "kind": "projection", "device": args.device, "projections": [], "errors": []}
    for spec in specs:
        results = []
        for model in args.models:
            dense = model_entry(model).family == "dense"
            frames = args.frames if args.frames else None
            for execution in (["dense"] if dense else args.executions):
                for r in ([None] if dense or execution == "masked" else args.ratios):
                    ops = trace_ops(model, frames, 1.0 if r is None else r, args.batch, args.size, args.precision,
                                    "compact" if execution == "dense" else execution)
                    for scen in scenarios:
                        res = project(model, spec, frames, r, args.batch, args.size, args.precision,
                                      "compact" if execution == "dense" else execution, scen, _ops=ops)
                        res["config"]["frames"] = frames or model_entry(model).default_frames
                        res["per_layer"] = res["per_layer"][:max(20, args.per_layer)]  # the slowest layers only
                        results.append(res)
        print(format_projection(results, spec, args.per_layer))
        print()
        out["projections"].append({"spec": asdict(spec), "results": results})
        for doc in docs:
            err = projection_error(doc, spec)
            out["errors"].append(err)
            print(format_error(err))
            print()
    if not docs:
        print(f"No measured results for {args.device} under {args.results_root}: projection error not computed "
              f"(run `afnet-edge bench` on the device, or pass --results FILE).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
        print(f"wrote {args.json}")
    return 0


def register(sub) -> None:
    from .cli_args import positive_int, ratio_arg
    from .bench import _csv
    from .models import list_models
    p = sub.add_parser("project", help="PROJECTED latency on a device from a per-kernel roofline (not a measurement)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="orin-agx", help=f"one of {', '.join([*DEVICES, 'cpu'])} (default: orin-agx)")
    p.add_argument("--models", type=_csv(str, list_models()), default=["af_resnet50", "tsm_resnet50"],
                   help="comma-separated models (default: af_resnet50,tsm_resnet50)")
    p.add_argument("--frames", type=positive_int, default=None, help="T (default: each model's default)")
    p.add_argument("--ratios", type=_csv(ratio_arg), default=[0.25, 0.4, 0.5], help="compact ratios")
    p.add_argument("--executions", type=_csv(str, ("compact", "masked")), default=["compact", "masked"])
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--size", type=positive_int, default=224)
    p.add_argument("--precision", choices=tuple(_PRECISIONS), default="fp16")
    p.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    p.add_argument("--per-layer", type=int, default=0, metavar="N", help="print the N slowest layers of each")
    p.add_argument("--results", action="append", default=None, metavar="FILE",
                   help="measured results to check the projection against (default: benchmarks/results/<device>/*.json)")
    p.add_argument("--results-root", default=os.path.join("benchmarks", "results"))
    p.add_argument("--measure-ceilings", action="store_true", help="cpu: measure this CPU's ceilings now")
    p.add_argument("--list-devices", action="store_true", help="print the device table and exit")
    p.add_argument("--json", default=None, metavar="FILE", help="write projections and errors as JSON")
    p.set_defaults(func=_cmd_project)
