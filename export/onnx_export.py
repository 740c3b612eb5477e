"""ONNX export of AFNet's compact, frame-skipping inference path with static shapes.

The exported graph computes exactly what ``model.configure(execution="compact", selection="topk", ratio=r)`` computes
in PyTorch: per AF stage the ample chain and navigation on every frame, ``TopK`` picks ``k = ceil(r·T)`` frames per
clip, every focal body runs on the compact batch of ``B·k`` frames only, and the unselected frames get their
precomputed constant map (an initializer). Input ``clip`` ``(B, T, 3, H, W)`` float32 (normalised RGB), output
``logits`` ``(B, num_classes)``.

Two flavours (see :mod:`afnet_edge.export.ops`):

* ``portable`` — standard ONNX operators only; runs in ONNX Runtime and in TensorRT without plugins;
* ``plugin``   — the gather/scatter/fusion subgraphs are single ``FocalGather`` / ``FocalScatter`` / ``AmpleFusePool``
  / ``AmpleFuseBlend`` nodes for TensorRT's ONNX parser, which maps them to the plugins of ``csrc/trt``; for
  AdaFocusV2 (a family wrapper) the patch crop is one ``FocusCrop`` node (:func:`~afnet_edge.export.ops.flavour_scope`).

Exporter choice: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). The model's compact path
is plain Python control flow over static shapes, which tracing records exactly; ``autograd.Function.symbolic`` gives
one custom node with exactly the plugin attributes per fused op; it needs no extra package and its opset is chosen
explicitly. The dynamo exporter (``dynamo=True``, torch 2.13's default) was tried too: with ``onnxscript`` installed
it exports the portable AF-MobileNetV3 graph correctly (678 nodes vs 656 here, same ONNX Runtime output to 1e-7),
but it needs that extra dependency plus a translation function per custom op for the plugin flavour, for no gain.
The traced graph is cleaned with onnx-graphsurgeon (constant folding through ONNX Runtime, shapes included; dead-node
removal; topological sort), shape-inferred and checked with ``onnx.checker``.

``threshold`` and ``gumbel`` selection are refused: the number of selected frames, hence the compact batch size,
depends on the data, which would need ``NonZero`` and data-dependent shapes (no CUDA graphs; slow before
TensorRT 10.6, and JetPack 6 ships 10.3).
"""
from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from afnet_edge import __version__

from afnet_edge.kernels import FusedOps, check_ops, use_ops
from afnet_edge.kernels.reference import topk_count
from afnet_edge.models.common import MIN_SIZE, check_ratio
from afnet_edge.models.registry import ExportAdapter, entry_of

from .ops import DYNAMIC_BATCH, FLAVOURS, flavour_scope
from .plugins import BY_NAME, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION

FLAVOUR_NAMES = ("portable", "plugin")
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 21
META_PREFIX = "afnet_edge."
INPUT_NAME, OUTPUT_NAME = "clip", "logits"


def _need(module: str, extra: str = "onnx"):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is required for ONNX export; install it with `pip install afnet_edge[{extra}]` "
                          f"(onnx, onnxruntime, onnx-graphsurgeon)") from None


class ExportWrapper(nn.Module):
    """``clip (B, T, 3, H, W) -> logits (B, classes)`` through the compact ``topk`` path, the fused ops taken from
    ``ops`` (an export flavour, set for the forward with :func:`afnet_edge.kernels.use_ops`)."""

    def __init__(self, model: nn.Module, ops: FusedOps, ratio: float):
        super().__init__()
        self.model = model
        self.ops = check_ops(ops)
        self.ratio = float(ratio)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        T = self.model.num_frames
        frames = clip.reshape(-1, clip.shape[2], clip.shape[3], clip.shape[4])
        with use_ops(self.ops):
            ctx = self.model.make_context(execution="compact", selection="topk", ratio=self.ratio, training=False)
            per_frame = self.model.forward_frames(frames, ctx)
        return per_frame.reshape(-1, T, per_frame.shape[-1]).mean(dim=1)


@dataclass
class ExportResult:
    """What :func:`export_onnx` produced: the file, its metadata, the example input and PyTorch's output for it."""

    path: str
    metadata: dict
    example_clip: torch.Tensor          # (B, T, 3, H, W) float32, the tracing input
    reference_logits: torch.Tensor      # (B, num_classes): the PyTorch output of the same path on example_clip
    op_counts: dict = field(default_factory=dict)
    seconds: float = 0.0


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        h = w = size
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, int) for v in size):
        h, w = size
    else:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}×{MIN_SIZE} (224×224 is the trained size), got {h}×{w}")
    return int(h), int(w)


def export_adapter(model: nn.Module) -> ExportAdapter:
    """The model family's export hook (registry entry found by ``model.arch``; the default adapter otherwise)."""
    entry = entry_of(model)
    return entry.hooks.export if entry is not None else ExportAdapter()


def check_export_args(model, frames, ratio, batch, flavour, opset, selection) -> None:
    """Validate :func:`export_onnx` arguments (ValueError/TypeError naming the argument and the expected form)."""
    adapter = export_adapter(model) if isinstance(model, nn.Module) else None
    if adapter is None or (adapter.wrapper is None and not hasattr(model, "forward_frames")):
        raise TypeError(f"model must be an afnet_edge VideoClassifier, got {type(model).__name__}")
    if not adapter.exportable:
        raise ValueError(f"model {getattr(model, 'arch', type(model).__name__)} cannot be exported: {adapter.reason}")
    if selection != "topk":
        raise ValueError(
            f"selection={selection!r} cannot be exported: with threshold/gumbel selection the number of selected "
            f"frames (the compact batch size) depends on the input, which needs data-dependent shapes (NonZero), "
            f"rules out CUDA graphs and is slow before TensorRT 10.6; export with selection='topk' (--ratio r keeps "
            f"ceil(r·T) frames per clip)")
    if frames != model.num_frames:
        raise ValueError(f"frames={frames} does not match the model (num_frames={model.num_frames}); the navigation "
                         f"weights depend on T: build the model (or load the checkpoint) with --frames {frames}")
    check_ratio(ratio)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if flavour not in FLAVOUR_NAMES:
        raise ValueError(f"flavour must be one of {FLAVOUR_NAMES}, got {flavour!r}")
    if flavour not in adapter.flavours:
        why = f": {adapter.flavour_reason}" if adapter.flavour_reason else ""
        raise ValueError(f"model {getattr(model, 'arch', type(model).__name__)} exports only the "
                         f"{'/'.join(adapter.flavours)} flavour, not {flavour!r}{why}")
    if adapter.wrapper is not None:
        with flavour_scope(flavour):               # (a wrapper may depend on the flavour: full-video clustering)
            adapter.wrapper(model)                 # raises ValueError with the reason where the family cannot
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be an integer in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}")


def export_onnx(model: nn.Module, path: str, frames: int | None = None, ratio: float = 0.5, batch: int = 1,
                dynamic_batch: bool = False, flavour: str = "portable", opset: int = DEFAULT_OPSET,
                size=224, selection: str = "topk", checkpoint: str | None = None, seed: int = 0) -> ExportResult:
    """Export ``model``'s compact ``topk`` inference to ONNX.

    Args:
        model: an afnet_edge video model (weights as they should be deployed; put in eval mode, kept on CPU).
        path: output ``.onnx`` file.
        frames: clip length T (must equal ``model.num_frames``; None: the model's).
        ratio: selection ratio r in (0, 1]; every clip keeps ``k = ceil(r·T)`` frames per navigation module.
        batch: clips per inference B (the static batch, or the example batch with ``dynamic_batch``).
        dynamic_batch: make the batch axis of ``clip``/``logits`` symbolic (``batch``).
        flavour: ``"portable"`` (standard ONNX ops) or ``"plugin"`` (TensorRT plugin nodes).
        opset: default-domain opset (13..21).
        size: input height = width (int) or ``(height, width)`` in pixels.
        selection: must be ``"topk"`` (the only rule with static shapes; others raise ValueError with the reason).
        checkpoint: path of the checkpoint the weights came from (recorded in the metadata), or None.
        seed: seed of the random example clip used for tracing.

    Returns:
        :class:`ExportResult` (the ``reference_logits`` are PyTorch's output of the same computation on the
        ``example_clip``: compare an ONNX Runtime / TensorRT run against them).
    """
    frames = model.num_frames if frames is None and hasattr(model, "num_frames") else frames
    check_export_args(model, frames, ratio, batch, flavour, opset, selection)
    if frames is None:
        raise ValueError("frames: give the clip length T (the model has no num_frames)")
    h, w = _size_pair(size)
    onnx = _need("onnx")
    gs = _need("onnx_graphsurgeon")
    t0 = time.perf_counter()

    param = next(model.parameters())
    if param.dtype != torch.float32 or param.device.type != "cpu":
        raise ValueError(f"export from a float32 CPU model (got {param.dtype} on {param.device}); call "
                         f"model.float().cpu() first — TensorRT chooses fp16 itself with --fp16")
    model.eval()
    adapter = export_adapter(model)
    with flavour_scope(flavour):
        wrapper = (ExportWrapper(model, FLAVOURS[flavour], ratio) if adapter.wrapper is None
                   else adapter.wrapper(model)).eval()
    g = torch.Generator().manual_seed(seed)
    n_in = int(adapter.input_frames(model)) if adapter.input_frames else frames
    clip = torch.randn(batch, n_in, 3, h, w, generator=g)
    with torch.no_grad(), flavour_scope(flavour):
        reference = wrapper(clip)  # eager pass: fills the constant-map caches the trace then reads as constants

    buf = io.BytesIO()
    dyn = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    token = DYNAMIC_BATCH.set(bool(dynamic_batch))
    try:
        with torch.no_grad(), warnings.catch_warnings(), flavour_scope(flavour):
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (clip,), buf, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes=dyn, do_constant_folding=True,
                              custom_opsets={PLUGIN_DOMAIN: 1} if flavour == "plugin" else None)
    finally:
        DYNAMIC_BATCH.reset(token)
    proto = onnx.load_from_string(buf.getvalue())
    if dynamic_batch:
        # The tracer records example-batch shapes for custom-op outputs; let shape inference redo them symbolically.
        del proto.graph.value_info[:]

    proto = _fold(proto, onnx, gs)
    if flavour == "plugin":
        _check_plugin_nodes(proto)
        if not any(op.domain == PLUGIN_DOMAIN for op in proto.opset_import):
            proto.opset_import.append(onnx.helper.make_opsetid(PLUGIN_DOMAIN, 1))
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=flavour == "portable",
                                              data_prop=True)
    proto.producer_name = "afnet_edge"
    proto.producer_version = __version__

    head = {
        "model": getattr(model, "arch", type(model).__name__),
        "num_frames": frames,
        "num_classes": int(getattr(model, "num_classes", reference.shape[-1])),
    }
    tail = {
        "ratio": float(ratio) if adapter.selects_frames else 1.0,
        "k": topk_count(float(ratio), frames) if adapter.selects_frames else frames,
        "selection": "topk" if adapter.selects_frames else "none",
        "batch": "dynamic" if dynamic_batch else batch,
        "example_batch": batch,
        "height": h,
        "width": w,
        "input": (f"{INPUT_NAME} (B, T, 3, H, W) float32, normalised RGB" if n_in == frames else
                  f"{INPUT_NAME} (B, {n_in}, 3, H, W) float32, normalised RGB: the model's {frames}-frame clip, then "
                  f"its other {n_in - frames} frames"),
        "output": f"{OUTPUT_NAME} (B, num_classes) float32",
        "flavour": flavour,
        "opset": opset,
        "plugin_version": PLUGIN_VERSION if flavour == "plugin" else "",
        "plugin_namespace": PLUGIN_NAMESPACE if flavour == "plugin" else "",
        "afnet_edge_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "checkpoint": os.path.basename(checkpoint) if checkpoint else "",
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else "",
    }
    family = adapter.metadata(model)   # the family's entries, e.g. num_navigation, tsm
    clash = set(family) & (set(head) | set(tail))
    if clash:
        raise ValueError(f"the export metadata hook of {head['model']} redefines {sorted(clash)}: a family's entries "
                         f"must not reuse afnet_edge's own metadata keys")
    meta = {**head, **family, **tail}
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + k, _meta_str(v)

    onnx.checker.check_model(proto, full_check=flavour == "portable")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"output folder {parent} does not exist")
    onnx.save(proto, path)
    counts: dict = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return ExportResult(path=path, metadata=meta, example_clip=clip, reference_logits=reference, op_counts=counts,
                        seconds=time.perf_counter() - t0)


def _fold(proto, onnx, gs, max_passes: int = 2):
    """Shape inference + onnx-graphsurgeon constant folding (shapes included). Two passes reach the fixed point on
    all AF models (the second folds what the first's shape inference exposed)."""
    from onnx_graphsurgeon.logger import G_LOGGER
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("onnxruntime is required for ONNX export (constant folding); install it with "
                          "`pip install afnet_edge[onnx]`") from None
    saved = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.ERROR  # its size-threshold notes concern the intended folds of weight tensors
    onnxruntime.set_default_logger_severity(3)  # graphsurgeon folds through ONNX Runtime: keep its notes quiet
    try:
        before = None
        for _ in range(max_passes):
            proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
            graph = gs.import_onnx(proto)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph.fold_constants(fold_shapes=True, error_ok=False).cleanup(remove_unused_graph_inputs=False)
            graph.toposort()
            proto = gs.export_onnx(graph, do_type_check=True)
            if before is not None and len(proto.graph.node) >= before:
                break
            before = len(proto.graph.node)
    finally:
        G_LOGGER.severity = saved
        onnxruntime.set_default_logger_severity(2)
    return proto


def _meta_str(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB chunks): checkpoints, ONNX files and engines."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_plugin_nodes(proto) -> None:
    """Every custom node is a known plugin with exactly its attributes (guards the exporter, not the user)."""
    for node in proto.graph.node:
        if node.domain != PLUGIN_DOMAIN:
            continue
        spec = BY_NAME.get(node.op_type)
        if spec is None:
            raise RuntimeError(f"unknown plugin node {node.op_type} in the exported graph")
        names = [a.name for a in node.attribute]
        expected = ["plugin_version", "plugin_namespace", *spec.fields]
        if sorted(names) != sorted(expected):
            raise RuntimeError(f"plugin node {node.name} ({node.op_type}) has attributes {names}, expected {expected}")


#: metadata keys written for every model (the rest are a family's entries, from its ExportAdapter.metadata)
GENERIC_KEYS = ("model", "num_frames", "num_classes", "ratio", "k", "selection", "batch", "example_batch", "height",
                "width", "input", "output", "flavour", "opset", "plugin_version", "plugin_namespace",
                "afnet_edge_version", "torch_version", "checkpoint", "checkpoint_sha256")
_INT_KEYS = ("num_frames", "num_classes", "num_navigation", "k", "example_batch", "height", "width", "opset",
             "input_frames")


def clip_frames(meta: dict) -> int:
    """Frames of the ``clip`` input an export or engine takes: ``num_frames``, or the family's ``input_frames``
    when its forward takes several clips concatenated along time (ExportAdapter.input_frames)."""
    return int(meta.get("input_frames") or meta["num_frames"])


def read_metadata(source) -> dict:
    """The ``afnet_edge.*`` metadata of an ONNX file or ``ModelProto`` as a typed dict (empty if none).

    Raises FileNotFoundError for a missing file and ValueError for a file that is not ONNX.
    """
    onnx = _need("onnx")
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"ONNX file {source} not found")
        try:
            proto = onnx.load(str(source), load_external_data=False)
        except Exception as e:  # protobuf DecodeError and friends
            raise ValueError(f"{source} is not a readable ONNX model ({type(e).__name__}: {e})") from None
    else:
        proto = source
    meta: dict = {}
    for p in proto.metadata_props:
        if not p.key.startswith(META_PREFIX):
            continue
        k, v = p.key[len(META_PREFIX):], p.value
        if k in _INT_KEYS:
            v = int(v)
        elif k == "ratio":
            v = float(v)
        elif k == "tsm":
            v = v == "1"
        elif k == "batch" and v != "dynamic":
            v = int(v)
        meta[k] = v
    return meta


def check_model_matches(meta: dict, model, what: str = "ONNX file") -> None:
    """Raise ValueError when ``meta`` (from :func:`read_metadata` or an engine sidecar) is not from ``model``."""
    if not meta:
        raise ValueError(f"{what} carries no afnet_edge metadata: it was not written by `afnet-edge export`; "
                         f"re-export it with `afnet-edge export MODEL --onnx ...`")
    arch = getattr(model, "arch", type(model).__name__)
    problems = []
    if meta.get("model") != arch:
        problems.append(f"model {meta.get('model')!r} (expected {arch!r})")
    if meta.get("num_frames") != model.num_frames:
        problems.append(f"T={meta.get('num_frames')} (model has {model.num_frames})")
    if meta.get("num_classes") != model.num_classes:
        problems.append(f"{meta.get('num_classes')} classes (model has {model.num_classes})")
    for k, v in export_adapter(model).metadata(model).items():  # the family's entries (tsm, …) where recorded
        if k in meta and _meta_str(meta[k]) != _meta_str(v):  # read back as text unless read_metadata types the key
            problems.append(f"{k}={meta[k]} (model has {k}={v})")
    if problems:
        raise ValueError(f"{what} was exported from another model: {', '.join(problems)}; pass the matching "
                         f"MODEL/--frames/--classes/--no-tsm or re-export")
