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

import glob
import inspect
import json
import math
import os
import statistics
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..models import create_model, model_entry
from ..models.common import VideoClassifier
from .devices import DEVICES, DeviceSpec, spec_from_ceilings
from .grid import PRECISIONS

__all__ = ["DeviceSpec", "DEVICES", "OpRecord", "PLANS", "trace_ops", "record_ops", "count_bytes", "counting_ops",
           "configure_plan", "project_ops", "project", "projection_error",
           "spec_from_ceilings", "find_results", "format_projection", "format_error", "LABEL", "SCENARIOS"]

LABEL = "PROJECTION (roofline estimate from device specs; not a measurement)"
SCENARIOS = ("eager", "cudagraph", "fused")
GIGA = 1e9


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
    """Dispatch mode + module hooks: ops of one forward with the module they ran in. Aten ops that run inside a
    fused-op call counted by :func:`counting_ops` (``inside > 0``) are that op's implementation and are not
    recorded."""

    def __init__(self, model: nn.Module):
        self.records: list[OpRecord] = []
        self.stack: list[str] = []
        self.inside = 0
        rec = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                name = func._schema.name.split("::")[-1]
                if rec.inside or getattr(func, "is_view", False) or name in _NO_KERNEL:
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


# ------------------------------------------------------------------------------- fused ops counted as one kernel
def _chain_bytes(chain) -> float:
    """Chain state one kernel reads: ``start`` and the constant maps of blocks ``< upto`` (module doc of
    :mod:`.ledger`)."""
    if chain is None:
        return 0.0
    return _nbytes(chain.start) + _nbytes(chain.consts[:chain.upto])


def _rows(t: torch.Tensor, n: int) -> float:
    """Bytes of ``n`` rows (frames) of ``t``."""
    return float(n * (t[0].numel() if t.shape[0] else math.prod(t.shape[1:])) * t.element_size())


def _opt(t) -> float:
    return _nbytes(t) if isinstance(t, torch.Tensor) else 0.0


def _fused_rule(op: str, a: dict, out) -> tuple[float, float, float, str, str]:
    """``(bytes read, bytes written, MACs, class, matrix kind)`` of one fused-op call from its arguments ``a``."""
    chain = a.get("chain")
    cb = _chain_bytes(chain)
    if op == "focal_gather":
        x, index = a["x"], a["index"]
        return _rows(x, index.shape[0]) + _nbytes(index) + cb, _nbytes(out), 0.0, "data", ""
    if op == "focal_scatter":
        res, y, index = a["residual"], a["y"], a["index"]
        if chain is not None and a.get("inplace"):
            k = index.shape[0]
            return _rows(res, k) + _nbytes(y) + _nbytes(index) + cb, _rows(res, k), 0.0, "data", ""
        return (_nbytes(res) + _nbytes(y) + _opt(a.get("const")) + _nbytes(index) + cb, _nbytes(res), 0.0, "data",
                "")
    if op in ("ample_fuse_pool", "ample_fuse_blend"):
        read = _nbytes(a["xl"]) + _nbytes(a["xb"]) + _opt(a.get("a")) + cb
        return read, _nbytes(out), 0.0, "reduction" if op == "ample_fuse_pool" else "data", ""
    if op == "gather_conv1x1":
        x, index, w = a["x"], a["index"], a["weight"]
        read = _rows(x, index.shape[0]) + _nbytes(index) + _nbytes(w) + _opt(a["scale"]) + _opt(a["bias"]) + cb
        return read, _nbytes(out), float(out.numel() * w.shape[1]), "matrix", "conv"
    if op == "conv1x1_scatter":
        h, w, res, index = a["h"], a["weight"], a["residual"], a["index"]
        k = index.shape[0]
        read = _nbytes(h) + _nbytes(w) + _opt(a["scale"]) + _opt(a["bias"]) + _nbytes(index) + cb
        mac = float(h.shape[0] * math.prod(h.shape[2:]) * w.shape[0] * w.shape[1])
        if a.get("inplace"):
            return read + _rows(res, k), _rows(res, k), mac, "matrix", "conv"
        return read + _nbytes(res), _nbytes(res), mac, "matrix", "conv"
    ins = [v for v in tree_flatten(list(a.values()))[0] if isinstance(v, torch.Tensor)]  # select_frames, others
    outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
    return sum(map(_nbytes, ins)), sum(map(_nbytes, outs)), 0.0, "data", ""


def counting_ops(base, rec: "_Recorder"):
    """``base`` (a :class:`afnet_edge.kernels.FusedOps`) wrapped so that each fused-op call is recorded in ``rec``
    as ONE kernel, its bytes from :func:`_fused_rule` on its actual arguments, and the aten ops it runs internally
    are not recorded (they are that kernel's implementation)."""
    from ..kernels import wrap_ops

    def wrap(name, fn):
        sig = inspect.signature(fn)

        def counted(*args, **kwargs):
            rec.inside += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                rec.inside -= 1
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            read, written, macs, cls, mk = _fused_rule(name, bound.arguments, out)
            vflops = 0.0 if cls == "matrix" else float(sum(o.numel() for o in tree_flatten(out)[0]
                                                          if isinstance(o, torch.Tensor)))
            rec.records.append(OpRecord(name, rec.stack[-1] if rec.stack else "", macs, vflops, read, written, cls,
                                        mk))
            return out
        return counted
    return wrap_ops(base, wrap)


def record_ops(module: nn.Module, *inputs, ops=None) -> list[OpRecord]:
    """Kernels of ``module(*inputs)`` (any device; use ``meta`` tensors to record without computing). ``ops``: a
    :class:`afnet_edge.kernels.FusedOps` implementation whose calls are each counted as one kernel
    (:func:`counting_ops`); None records every aten op, fused-op internals included."""
    from ..kernels import use_ops
    rec = _Recorder(module)
    try:
        with torch.no_grad(), rec.mode:
            if ops is None:
                module(*inputs)
            else:
                with use_ops(counting_ops(ops, rec)):
                    module(*inputs)
    finally:
        rec.close()
    return rec.records


PLANS = ("masked", "compact-eager", "compact-lazy", "compact-fused")


def configure_plan(model: VideoClassifier, plan: str, **config) -> VideoClassifier:
    """``model.configure(...)`` for a bench/projection plan name (:data:`PLANS`): ``masked`` → masked execution,
    ``compact-<p>`` → compact execution with the model's ``plan=<p>``. Dense models ignore the plan. Raises
    NotImplementedError when the model has no such plan yet (``plan=`` of issue 16 not merged)."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
    if plan == "masked":
        return model.configure(execution="masked", **config)
    sub = plan.split("-", 1)[1]
    if "plan" in inspect.signature(model.configure).parameters:
        return model.configure(execution="compact", plan=sub, **config)
    if sub != "eager":
        raise NotImplementedError(f"plan {plan!r} needs model.configure(plan={sub!r}) (issue 16); this build's "
                                  f"models only run the eager compact plan")
    return model.configure(execution="compact", **config)


def trace_ops(model_name: str, frames: int | None = None, ratio: float = 0.5, batch: int = 1, size: int = 224,
              precision: str = "fp32", execution: str = "compact", kernels: str = "torch",
              num_classes: int = 174, plan: str | None = None, **options) -> list[OpRecord]:
    """Kernels of one inference forward of ``model_name`` (built on the meta device), as :class:`OpRecord` s.

    ``execution``: ``"compact"`` or ``"masked"`` (ignored by dense baselines); selection is ``topk`` with ``ratio``.
    ``kernels``: ``"torch"`` (pure-PyTorch fused ops) or ``"ext"`` (each extension op counted as one kernel via its
    fake implementation; requires the extension). Input ``(batch, T, 3, size, size)``.
    ``plan`` (:data:`PLANS`; overrides ``execution``): count at the fused-op level — every fused-op call is one kernel
    whose bytes follow the per-op rule of :func:`counting_ops` (the rules of :mod:`.ledger`), aten ops outside fused
    ops as before. ``None``: every aten op (the fused ops' internals included), as before issue 16.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if execution not in ("compact", "masked"):
        raise ValueError(f"execution must be 'compact' or 'masked', got {execution!r}")
    with torch.device("meta"):
        model = create_model(model_name, num_classes=num_classes, num_frames=frames, **options)
    model = model.to(PRECISIONS[precision]).eval()
    if plan is None:
        model.configure(execution=execution, selection="topk", ratio=ratio, kernels=kernels)
    else:
        configure_plan(model, plan, selection="topk", ratio=ratio, kernels=kernels)
    x = torch.empty(batch, model.num_frames, 3, size, size, device="meta", dtype=PRECISIONS[precision])
    with torch.no_grad():
        model(x)  # fills the constant-map caches (computed once per input size in a deployed model)
    return record_ops(model, x, ops=None if plan is None else _kernel_ops(kernels))


def _kernel_ops(kernels: str):
    from ..kernels import ops
    return ops(kernels)


def count_bytes(model_name: str, plan: str = "masked", frames: int | None = None, ratio: float = 0.4,
                batch: int = 1, size: int = 224, precision: str = "fp32", kernels: str = "torch", seed: int = 0,
                num_classes: int = 174, **options) -> list[OpRecord]:
    """COUNTED kernels of one real forward on the CPU (real tensors, random weights and input from ``seed``), with
    the same recorder and per-op rules as :func:`trace_ops` at the fused-op level: bytes of the tensors each kernel
    actually received (index sizes, chain state) rather than shapes propagated on the meta device. Selection is
    ``topk`` with ``ratio``; ``plan`` in :data:`PLANS`. Input ``(batch, T, 3, size, size)``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=num_classes, num_frames=frames, **options)
    model = model.to(PRECISIONS[precision]).eval()
    configure_plan(model, plan, selection="topk", ratio=ratio, kernels=kernels)
    x = torch.randn(batch, model.num_frames, 3, size, size, generator=g).to(PRECISIONS[precision])
    with torch.no_grad():
        model(x)  # fills the constant-map caches, as in trace_ops
    return record_ops(model, x, ops=_kernel_ops(kernels))


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
    tot: dict[str, Any] = {"compute_ms": 0.0, "memory_ms": 0.0, "launch_ms": 0.0, "total_ms": 0.0, "kernels": 0,
                           "gmacs": 0.0, "gbytes": 0.0, "compute_bound_ms": 0.0, "memory_bound_ms": 0.0}
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
    dense = not model_entry(model_name).bench.skips_frames
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
        plan = row.get("plan", "eager")
        plan = None if execution == "masked" or plan == "eager" else f"compact-{plan}"  # rows before issue 16: eager
        key = (row["model"], row["frames"], row.get("ratio"), row["batch"], row["size"], row["precision"], execution,
               plan)
        if key not in cache:
            cache[key] = trace_ops(row["model"], row["frames"], 1.0 if row.get("ratio") is None else row["ratio"],
                                   row["batch"], row["size"], row["precision"], execution, plan=plan)
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
    summary: dict[str, float] = {"n": len(errs)}
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
    """Text table of :func:`project` results on ``spec`` (with the spec's sources; ``top_layers`` slowest layers)."""
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
        lines.append(f"{c['model']:15s} {c['frames'] or '':>3} {c.get('plan', c['execution']):8s} {c['scenario']:9s} "
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
    """Text table of :func:`projection_error`'s rows and its summary."""
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
