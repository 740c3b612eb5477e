"""Op namespaces used while exporting: the same seven ops the model calls through ``ForwardContext.ops``.

* :data:`PORTABLE` lowers every fused op to standard ONNX operators (TopK, Gather, Mul, Concat, ScatterND, Resize,
  ReduceMean) so that the graph runs in ONNX Runtime and in any TensorRT without plugins.
* :data:`PLUGIN` emits one custom node per fused op (``FocalGather``, ``FocalScatter``, ``AmpleFusePool``,
  ``AmpleFuseBlend`` in the :data:`~afnet_edge.export.plugins.PLUGIN_DOMAIN` domain, with ``plugin_version``,
  ``plugin_namespace`` and the plugin's fields as attributes) for TensorRT's ONNX parser. Outside of an ONNX export
  these ops compute the pure-PyTorch reference, so the exporting forward pass is also the reference forward pass.

AdaFocus' crop is not one of the seven seam ops: the models call it through
:func:`afnet_edge.kernels.adafocus_ops.focus_crop`, and :data:`CROPS` holds what each flavour installs there with
:func:`~afnet_edge.kernels.adafocus_ops.use_crop` while exporting (:func:`flavour_scope`): nothing in ``portable``
(the reference lowers to Pad, Gather(Elements), Floor and a 4-tap blend), one ``FocusCrop`` node per call in
``plugin``. bLVNet-TAM's TAM and merge go the same way (:data:`BLVNET`, through
:func:`afnet_edge.kernels.blvnet_ops.use_impl`): nothing in ``portable`` (depthwise temporal Convs, Resize + Add +
Relu), one ``TemporalAggregate`` / ``TemporalAggregatePair`` / ``BLMerge`` node per call in ``plugin``. Full-video
clustering's step likewise (:data:`FULLVIDEO`, through :func:`afnet_edge.kernels.fullvideo_ops.use_cluster`): the
model's portable slope graph in ``portable``, one ``SegmentCluster`` node (:func:`plugin_segment_cluster`) in ``plugin``.

Lazy constant chains (``chain=``, the ``"lazy"`` / ``"fused"`` plans, issue 16) and the two fused 1×1 GEMMs
(``gather_conv1x1``, ``conv1x1_scatter``) lower in :data:`PORTABLE` to the reference composition in standard ops
(Gather, Add, Relu, Where, Conv, ScatterND). In :data:`PLUGIN` the four frame plugins take the chain as two
trailing inputs (``chain.start`` int32 ``(N,)``, ``chain.consts`` ``(L, C, H, W)``) and the fields
``chain_relu_mask`` / ``chain_upto`` (0 / 0 and no extra inputs without a chain); the two fused GEMMs have no plugin
yet and refuse chains.

Both namespaces implement ``select_frames`` for ``topk`` only: it is the one selection rule with static shapes.
Eagerly it is the reference (stable descending sort: ties go to the lower frame index); under tracing it becomes
ONNX ``TopK``, whose specification breaks ties the same way.

Both satisfy :class:`afnet_edge.kernels.FusedOps` (same parameters as the runtime implementations); export selects
one for the traced forward with :func:`afnet_edge.kernels.use_ops`. The runtime keywords mean little in a graph:
``validate`` is ignored (no host-side checks in a graph), ``inplace`` is declined (the result is always a new tensor,
which the model uses), ``out`` is honoured by a copy.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

from afnet_edge.kernels import LazyChain, SelectResult, adafocus_reference, blvnet_reference, fullvideo_reference, \
    make_ops, reference, torch_ops
from afnet_edge.kernels._common import select_out, to_out

from .plugins import FOCUS_CROP_MODES, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION, PLUGINS, SEGMENT_CLUSTER_RULES


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def select_frames(logits: torch.Tensor, mode: str, k: int = 0, *,
                  out: SelectResult | None = None) -> SelectResult:
    """``topk`` frame selection with static shapes (see :func:`afnet_edge.kernels.reference.select_frames`).

    ``logits`` ``(L, B, T, 2)`` → ``(index (L, B·k) int64 sorted ascending per clip, counts (L,), mask (L, B, T))``.
    ``out``: a preallocated ``(index, counts, mask)`` triple receiving the result.
    """
    res = _select_topk(logits, mode, k)
    return res if out is None else select_out(res, out)


def _select_topk(logits: torch.Tensor, mode: str, k: int) -> SelectResult:
    if mode != "topk":
        raise ValueError(f"export supports topk selection only (static shapes), got selection={mode!r}")
    if not _tracing():
        return reference.select_frames(logits, "topk", k)
    L, B, T, _ = logits.shape
    margin = logits[..., 1] - logits[..., 0]                            # (L, B, T)
    top = torch.topk(margin, k, dim=-1, largest=True, sorted=True).indices  # ties: lower index first (ONNX TopK)
    # Ascending frame order within each clip: a TopK(smallest) of the k positions (exact in float below 2^24).
    top = torch.topk(top.to(torch.float32), k, dim=-1, largest=False, sorted=True).values.to(torch.int64)
    offs = torch.arange(B, device=logits.device).view(1, B, 1) * T
    index = (top + offs).reshape(L, B * k)
    counts = torch.full((L,), B * k, dtype=torch.int64, device=logits.device)
    mask = torch.zeros_like(margin).scatter(-1, top, 1.0)                # unused by the exported outputs
    return index, counts, mask


def _gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
            chain: LazyChain | None) -> torch.Tensor:
    if chain is None:
        return reference.focal_gather(x, index, num_frames, shift)
    return torch_ops._lazy_gather(x, index, num_frames, shift, chain)  # Gather, Add, Relu, Where, Mul, Concat


def _scatter_rows(residual: torch.Tensor, index: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    return residual.index_put((index,), sel)  # ScatterND


def portable_focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *,
                          chain: LazyChain | None = None, validate: bool = True,
                          out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.focal_gather` ``(K, C, H, W)`` (with ``chain``:
    :func:`~afnet_edge.kernels.reference.lazy_focal_gather` on the gathered rows); ``validate`` is ignored (graph)."""
    return to_out(_gather(x, index, num_frames, shift, chain), out, x)


def portable_focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                           const: torch.Tensor | None, relu: bool, *, chain: LazyChain | None = None,
                           validate: bool = True, inplace: bool = False,
                           out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.focal_scatter` ``(N, C, H, W)`` written with ``index_put`` (→ ONNX
    ``ScatterND``); with ``chain`` (``const`` None) :func:`~afnet_edge.kernels.reference.lazy_focal_scatter`.
    ``validate`` is ignored and ``inplace`` declined (a new tensor is returned)."""
    if chain is not None:
        if const is not None:
            raise ValueError("focal_scatter: const must be None with a chain")
        sel = reference.chain_apply(residual.index_select(0, index), index, chain) + y
        res = _scatter_rows(residual, index, torch.relu(sel) if relu else sel)
        return to_out(res, out, residual, y)
    base = residual if const is None else residual + const.unsqueeze(0)
    sel = residual.index_select(0, index) + y
    res = base.index_put((index,), sel)
    return to_out(torch.relu(res) if relu else res, out, residual, y, const)


def portable_ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, chain: LazyChain | None = None,
                             out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.ample_fuse_pool` ``(N, C)`` (Resize, Add, ReduceMean) of the logical
    ``xb``."""
    return to_out(reference.ample_fuse_pool(xl, reference.chain_materialize(xb, chain)), out, xl, xb)


def portable_ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                              chain: LazyChain | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.ample_fuse_blend` ``(N, C, H, W)`` (Resize, Mul, Add, Relu) of the
    logical ``xb``."""
    res = reference.ample_fuse_blend(xl, reference.chain_materialize(xb, chain), a, relu)
    return to_out(res, out, xl, xb, a)


def portable_gather_conv1x1(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
                            weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool, *,
                            chain: LazyChain | None = None, validate: bool = True,
                            out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.gather_conv1x1` ``(K, O, H, W)`` as the gather then a float32 Conv,
    Mul, Add (, Relu) and a Cast back."""
    y = reference._conv1x1_fp32(_gather(x, index, num_frames, shift, chain), weight, groups, scale, bias)
    return to_out((torch.relu(y) if relu else y).to(x.dtype), out, x, weight, scale, bias)


def portable_conv1x1_scatter(h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor,
                             bias: torch.Tensor, residual: torch.Tensor, index: torch.Tensor, relu: bool, *,
                             chain: LazyChain | None = None, validate: bool = True, inplace: bool = False,
                             out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~afnet_edge.kernels.reference.conv1x1_scatter` ``(N, C, H, W)``: float32 Conv, Mul, Add of the
    selected residual rows (chains applied), Relu, Cast, ScatterND; ``inplace`` declined."""
    r = residual.index_select(0, index)
    if chain is not None:
        r = reference.chain_apply(r, index, chain)
    s = reference._conv1x1_fp32(h, weight, groups, scale, bias) + r.float()
    res = _scatter_rows(residual, index, (torch.relu(s) if relu else s).to(residual.dtype))
    return to_out(res, out, h, weight, scale, bias, residual)


PORTABLE = make_ops("export-portable", focal_gather=portable_focal_gather, focal_scatter=portable_focal_scatter,
                    ample_fuse_pool=portable_ample_fuse_pool, ample_fuse_blend=portable_ample_fuse_blend,
                    select_frames=select_frames, gather_conv1x1=portable_gather_conv1x1,
                    conv1x1_scatter=portable_conv1x1_scatter)


# ------------------------------------------------------------------------------------------------ plugin markers
#: Set by export_onnx while tracing a dynamic-batch graph: the frame axis of plugin outputs is then left symbolic
#: (a static size there would be folded into the Reshapes downstream and break other batch sizes).
DYNAMIC_BATCH = contextvars.ContextVar("afnet_edge_export_dynamic_batch", default=False)


def _plugin_node(g, op: str, inputs: list, like, sizes: list, **fields):
    """Emit the custom node of ``op`` with the plugin attributes; set the output's type and sizes (frame axis
    symbolic under :data:`DYNAMIC_BATCH`)."""
    spec = PLUGINS[op]
    assert tuple(fields) == spec.fields, (op, tuple(fields), spec.fields)
    attrs = {f"{k}_i": int(v) for k, v in fields.items()}
    n_out = len(spec.outputs)  # TemporalAggregatePair: two outputs of the same type and sizes
    out = g.op(f"{PLUGIN_DOMAIN}::{spec.name}", *inputs, plugin_version_s=PLUGIN_VERSION,
               plugin_namespace_s=PLUGIN_NAMESPACE, outputs=n_out, **attrs)
    if sizes is not None and DYNAMIC_BATCH.get():
        sizes = [None] + list(sizes[1:])
    for o in (out if n_out > 1 else (out,)):
        try:
            o.setType(like.type().with_sizes(sizes))
        except (RuntimeError, AttributeError):  # sizes unknown (dynamic batch): TensorRT computes them itself
            pass
    return out


def _sizes(v) -> list:
    try:
        s = v.type().sizes()
    except (RuntimeError, AttributeError):
        return None
    return list(s) if s is not None else None


# Lazy constant chains travel as two trailing plugin inputs (start, consts) and two fields; the markers take them as
# their last four arguments (start=None: no chain, no extra inputs, both fields 0).
def _absent(v) -> bool:
    return v is None or (hasattr(v, "node") and v.node().mustBeNone())


def _chain_of(start, consts, relu_mask: int, upto: int) -> LazyChain | None:
    return None if start is None else LazyChain(start, consts, int(relu_mask), int(upto))


def _chain_io(start, consts, relu_mask, upto) -> tuple[list, dict]:
    """(extra plugin inputs, chain fields) of a marker's chain arguments."""
    if _absent(start):
        return [], {"chain_relu_mask": 0, "chain_upto": 0}
    return [start, consts], {"chain_relu_mask": int(relu_mask), "chain_upto": int(upto)}


def _chain_args(chain: LazyChain | None) -> tuple:
    return (None, None, 0, 0) if chain is None else (chain.start, chain.consts, int(chain.relu_mask), int(chain.upto))


class _FocalGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, index, num_frames: int, shift: bool, start=None, consts=None, relu_mask: int = 0,
                upto: int = 0):
        return reference.lazy_focal_gather(x, index, num_frames, shift, _chain_of(start, consts, relu_mask, upto))

    @staticmethod
    def symbolic(g, x, index, num_frames, shift, start=None, consts=None, relu_mask=0, upto=0):
        xs, ks = _sizes(x), _sizes(index)
        sizes = [ks[0]] + xs[1:] if xs and ks else None
        extra, cf = _chain_io(start, consts, relu_mask, upto)
        return _plugin_node(g, "focal_gather", [x, index, *extra], x, sizes, **cf, num_frames=num_frames, shift=shift)


class _FocalScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, residual, y, index, const, relu: bool, start=None, consts=None, relu_mask: int = 0,
                upto: int = 0):
        chain = _chain_of(start, consts, relu_mask, upto)
        if chain is None:
            return reference.focal_scatter(residual, y, index, const, relu)
        return reference.lazy_focal_scatter(residual, y, index, relu, chain)  # const: not read (see the plugin)

    @staticmethod
    def symbolic(g, residual, y, index, const, relu, start=None, consts=None, relu_mask=0, upto=0):
        extra, cf = _chain_io(start, consts, relu_mask, upto)
        return _plugin_node(g, "focal_scatter", [residual, y, index, const, *extra], residual, _sizes(residual),
                            **cf, relu=relu)


class _AmpleFusePool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xl, xb, start=None, consts=None, relu_mask: int = 0, upto: int = 0):
        return reference.ample_fuse_pool(xl, reference.chain_materialize(xb, _chain_of(start, consts, relu_mask,
                                                                                       upto)))

    @staticmethod
    def symbolic(g, xl, xb, start=None, consts=None, relu_mask=0, upto=0):
        s = _sizes(xb)
        extra, cf = _chain_io(start, consts, relu_mask, upto)
        return _plugin_node(g, "ample_fuse_pool", [xl, xb, *extra], xb, s[:2] if s else None, **cf)


class _AmpleFuseBlend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xl, xb, a, relu: bool, start=None, consts=None, relu_mask: int = 0, upto: int = 0):
        logical = reference.chain_materialize(xb, _chain_of(start, consts, relu_mask, upto))
        return reference.ample_fuse_blend(xl, logical, a, relu)

    @staticmethod
    def symbolic(g, xl, xb, a, relu, start=None, consts=None, relu_mask=0, upto=0):
        extra, cf = _chain_io(start, consts, relu_mask, upto)
        return _plugin_node(g, "ample_fuse_blend", [xl, xb, a, *extra], xb, _sizes(xb), **cf, relu=relu)


def _dynamic(y: torch.Tensor, *sizes) -> torch.Tensor:
    """Dynamic-batch export: re-derive ``y``'s shape from traced sizes. The tracer does not trace ``size()`` of an
    autograd.Function output, so a consumer reading ``y.shape`` would bake the example batch into a constant."""
    return y.reshape(*sizes) if DYNAMIC_BATCH.get() and _tracing() else y


def _no_chain(op: str, chain: LazyChain | None) -> None:
    # Issue 16 stop-gap (lazy-py): the fused GEMMs have no plugin yet.
    if chain is not None:
        raise NotImplementedError(f"export-plugin: {op} with a lazy chain has no TensorRT plugin yet; export with "
                                  f"plan='eager' or the portable flavour")


# The runtime keywords of the eager ops: validate= is ignored and inplace= declined (a graph has no host-side checks
# and the plugin writes its own output); out= is honoured by a copy.
def _plugin_focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *,
                         chain: LazyChain | None = None, validate: bool = True,
                         out: torch.Tensor | None = None) -> torch.Tensor:
    y = _FocalGather.apply(x, index, int(num_frames), bool(shift), *_chain_args(chain))
    return to_out(_dynamic(y, index.shape[0], x.shape[1], x.shape[2], x.shape[3]), out, x)


def _plugin_focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const: torch.Tensor | None,
                          relu: bool, *, chain: LazyChain | None = None, validate: bool = True,
                          inplace: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    if chain is not None and const is not None:
        raise ValueError("focal_scatter: const must be None with a chain")
    if const is None:  # the plugin always takes a constant map; zeros are the "no constant" case (unread with a chain)
        const = residual.new_zeros(residual.shape[1:])
    res = _FocalScatter.apply(residual, y, index, const, bool(relu), *_chain_args(chain))
    res = _dynamic(res, residual.shape[0], residual.shape[1], residual.shape[2], residual.shape[3])
    return to_out(res, out, residual, y, const)


def _plugin_ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, chain: LazyChain | None = None,
                            out: torch.Tensor | None = None) -> torch.Tensor:
    res = _AmpleFusePool.apply(xl, xb, *_chain_args(chain))
    return to_out(_dynamic(res, xb.shape[0], xb.shape[1]), out, xl, xb)


def _plugin_ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                             chain: LazyChain | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    res = _AmpleFuseBlend.apply(xl, xb, a, bool(relu), *_chain_args(chain))
    return to_out(_dynamic(res, xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]), out, xl, xb, a)


def _plugin_gather_conv1x1(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
                           weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool, *,
                           chain: LazyChain | None = None, validate: bool = True,
                           out: torch.Tensor | None = None) -> torch.Tensor:
    # Issue 16 stop-gap (lazy-py): no fused-GEMM plugin yet; chains refused as for the other plugin ops.
    _no_chain("gather_conv1x1", chain)
    return portable_gather_conv1x1(x, index, num_frames, shift, weight, groups, scale, bias, relu, out=out)


def _plugin_conv1x1_scatter(h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor,
                            bias: torch.Tensor, residual: torch.Tensor, index: torch.Tensor, relu: bool, *,
                            chain: LazyChain | None = None, validate: bool = True, inplace: bool = False,
                            out: torch.Tensor | None = None) -> torch.Tensor:
    _no_chain("conv1x1_scatter", chain)
    return portable_conv1x1_scatter(h, weight, groups, scale, bias, residual, index, relu, out=out)


class _FocusCrop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, centres, patch: int, mode: int):
        name = next(k for k, v in FOCUS_CROP_MODES.items() if v == mode)
        return adafocus_reference.focus_crop(x, centres, patch, name)

    @staticmethod
    def symbolic(g, x, centres, patch, mode):
        xs = _sizes(x)
        sizes = [xs[0], xs[1], patch, patch] if xs else None
        return _plugin_node(g, "focus_crop", [x, centres], x, sizes, mode=mode, patch_size=patch)


def plugin_focus_crop(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str = "bilinear") -> torch.Tensor:
    """:func:`~afnet_edge.kernels.adafocus_reference.focus_crop` ``(N, C, P, P)`` as one ``FocusCrop`` plugin node
    (fields ``mode`` 0 bilinear / 1 floor, ``patch_size`` P; ``centres`` cast to float32, as the plugin takes them).
    Eagerly (outside an export) it is the reference. ValueError for bad arguments, as the reference."""
    adafocus_reference._check_crop_args(x, centres, patch, mode)
    centres = centres if centres.dtype == torch.float32 else centres.float()  # (a traced no-op cast is a Cast node)
    y = _FocusCrop.apply(x, centres, int(patch), FOCUS_CROP_MODES[mode])
    return _dynamic(y, x.shape[0], x.shape[1], patch, patch)


class _TemporalAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, num_frames: int, relu: bool):
        return blvnet_reference.temporal_aggregate(x, weight, num_frames, relu)

    @staticmethod
    def symbolic(g, x, weight, num_frames, relu):
        return _plugin_node(g, "temporal_aggregate", [x, weight], x, _sizes(x), num_frames=num_frames, relu=relu)


class _TemporalAggregatePair(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, w_big, w_little, num_pairs: int, relu: bool):
        return blvnet_reference.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)

    @staticmethod
    def symbolic(g, y, w_big, w_little, num_pairs, relu):
        return _plugin_node(g, "temporal_aggregate_pair", [y, w_big, w_little], y, _sizes(y), num_pairs=num_pairs,
                            relu=relu)


class _BLMerge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, big, little, relu: bool):
        return blvnet_reference.bl_merge(big, little, relu)

    @staticmethod
    def symbolic(g, big, little, relu):
        return _plugin_node(g, "bl_merge", [big, little], little, _sizes(little), relu=relu)


def _fp32_weight(w: torch.Tensor) -> torch.Tensor:
    return w if w.dtype == torch.float32 else w.float()  # the plugins take fp32 weights (a traced cast: a Cast node)


class BLVNetPluginOps:
    """bLVNet-TAM's three ops as plugin nodes (installed by :func:`flavour_scope` for ``plugin``); eagerly (outside
    an export) each is :mod:`afnet_edge.kernels.blvnet_reference`. Same arguments as the references (which also
    raise the ValueErrors for bad arguments, eagerly); the TAM weights are passed to the plugins as float32. No
    :func:`_dynamic` re-derivation of the outputs' shapes: the model reads no batch size of them (its reshapes take
    -1 there), so a dynamic-batch graph keeps its symbolic batch without extra Shape / Reshape nodes."""

    @staticmethod
    def temporal_aggregate(x: torch.Tensor, weight: torch.Tensor, num_frames: int, relu: bool = True) -> torch.Tensor:
        """One ``TemporalAggregate`` node (fields ``num_frames``, ``relu``)."""
        return _TemporalAggregate.apply(x, _fp32_weight(weight), int(num_frames), bool(relu))

    @staticmethod
    def temporal_aggregate_pair(y: torch.Tensor, w_big: torch.Tensor, w_little: torch.Tensor, num_pairs: int,
                                relu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``TemporalAggregatePair`` node with two outputs (fields ``num_pairs``, ``relu``)."""
        big, little = _TemporalAggregatePair.apply(y, _fp32_weight(w_big), _fp32_weight(w_little), int(num_pairs),
                                                   bool(relu))
        return big, little

    @staticmethod
    def bl_merge(big: torch.Tensor, little: torch.Tensor, relu: bool = True) -> torch.Tensor:
        """One ``BLMerge`` node (field ``relu``)."""
        return _BLMerge.apply(big, little, bool(relu))


class _SegmentCluster(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, frame_offsets, k: int, rule: int):
        name = next(r for r, v in SEGMENT_CLUSTER_RULES.items() if v == rule)
        h = fullvideo_reference.adjacent_hamming(fullvideo_reference.binarize_pack(a))
        offsets, m = fullvideo_reference.segment_boundaries(h, k, name, frame_offsets)
        return fullvideo_reference.segment_mean(a, offsets, m, frame_offsets), offsets

    @staticmethod
    def symbolic(g, a, frame_offsets, k, rule):
        spec = PLUGINS["segment_cluster"]
        means, offsets = g.op(f"{PLUGIN_DOMAIN}::{spec.name}", a, frame_offsets, plugin_version_s=PLUGIN_VERSION,
                              plugin_namespace_s=PLUGIN_NAMESPACE, outputs=2, clusters_i=int(k), rule_i=int(rule))
        asz, osz = _sizes(a), _sizes(frame_offsets)
        b = osz[0] - 1 if osz and osz[0] is not None else None
        if DYNAMIC_BATCH.get():
            b = None
        for v, like, sizes in ((means, a, [b * k if b is not None else None] + list(asz[1:]) if asz else None),
                               (offsets, frame_offsets, [b, k + 1])):
            try:
                v.setType(like.type().with_sizes(sizes))
            except (RuntimeError, AttributeError):  # sizes unknown: TensorRT computes them itself
                pass
        return means, offsets


def plugin_segment_cluster(a: torch.Tensor, k: int, rule: str,
                           frame_offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-video clustering of ``a (ΣN_i, C, h, w)`` (frames of the videos in ``frame_offsets (B+1,)`` int64) as one
    ``SegmentCluster`` plugin node (fields ``clusters`` K, ``rule`` :data:`~.plugins.SEGMENT_CLUSTER_RULES`) →
    ``(means (B·K, C, h, w), offsets (B, K+1) int64)``. Eagerly (outside an export) it is
    :mod:`afnet_edge.kernels.fullvideo_reference`. ValueError for a rule without a kernel (``cumulative_official``)."""
    if rule not in SEGMENT_CLUSTER_RULES:
        raise ValueError(f"rule={rule!r} has no SegmentCluster plugin rule (one of {tuple(SEGMENT_CLUSTER_RULES)}): "
                         f"cumulative_official is the release's float64 rule, kept as a PyTorch reference only")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (clusters) must be a positive integer, got {k!r}")
    if not isinstance(frame_offsets, torch.Tensor) or frame_offsets.dtype != torch.int64 or frame_offsets.dim() != 1:
        raise ValueError("frame_offsets must be an int64 tensor of shape (B+1,)")
    means, offsets = _SegmentCluster.apply(a, frame_offsets, int(k), SEGMENT_CLUSTER_RULES[rule])
    return means, offsets


PLUGIN = make_ops("export-plugin", focal_gather=_plugin_focal_gather, focal_scatter=_plugin_focal_scatter,
                  ample_fuse_pool=_plugin_ample_fuse_pool, ample_fuse_blend=_plugin_ample_fuse_blend,
                  select_frames=select_frames, gather_conv1x1=_plugin_gather_conv1x1,
                  conv1x1_scatter=_plugin_conv1x1_scatter)

FLAVOURS = {"portable": PORTABLE, "plugin": PLUGIN}
#: AdaFocus' crop per flavour (None: the model's own switch, whose reference lowers to standard ops while tracing).
CROPS = {"portable": None, "plugin": plugin_focus_crop}
#: bLVNet-TAM's TAM / merge per flavour (None: the model's own switch, whose reference lowers to standard ops).
BLVNET = {"portable": None, "plugin": BLVNetPluginOps}
#: Full-video clustering per flavour (None: the portable slope graph of the model's ExportForward).
FULLVIDEO = {"portable": None, "plugin": plugin_segment_cluster}


@contextlib.contextmanager
def flavour_scope(flavour: str) -> Iterator[None]:
    """Install ``flavour``'s implementations of the ops outside the :class:`~afnet_edge.kernels.FusedOps` seam
    (AdaFocus' crop, :data:`CROPS`; bLVNet-TAM's TAM and merge, :data:`BLVNET`) for the forwards run inside the
    block (the eager reference pass and the trace), and full-video clustering's step (:data:`FULLVIDEO`)."""
    from afnet_edge.kernels.adafocus_ops import use_crop
    from afnet_edge.kernels.blvnet_ops import use_impl
    from afnet_edge.kernels.fullvideo_ops import use_cluster
    with use_crop(CROPS[flavour]), use_impl(BLVNET[flavour]), use_cluster(FULLVIDEO[flavour]):
        yield
