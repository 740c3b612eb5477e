"""The AF stage: ample chain, navigation, focal chain and fusion (spec §2.3, §3, §8).

``run_af_stage`` serves both backbone families. In ``masked`` execution it interleaves navigation, ample and focal
blocks exactly as the official code does. In ``compact`` execution it runs the ample chain and every navigation
module of the stage first, turns the stage's logits into index lists in one step (no host sync for ``topk``, one for
``threshold``/``gumbel``/given masks), then runs each focal block on its selected frames only, and fuses with the
pooled/blended ops that never materialise the upsampled ample map.

Compact execution has three plans (``ForwardContext.plan``; issue 16, docs/kernels.md "Lazy constant chains"):

* ``"eager"``: every focal block writes its whole output (``φ(K + r)`` on the unselected frames: two full passes).
* ``"lazy"``: the stage keeps one tensor S and a :class:`~afnet_edge.kernels.reference.LazyChain`; a block writes
  only its selected rows, the unselected frames' maps stay pending and are applied by whoever reads the row next
  (the gather of a later block, as a frame or a TSM neighbour, and the fusion's pool and blend). Bit-identical to
  ``"eager"``.
* ``"fused"``: ``"lazy"`` with the gather fused into the first 1×1 convolution and the scatter into the last
  (:meth:`~afnet_edge.layers.focal.FocalBlock.forward_fused`; blocks without a fused form run lazily). BN folded:
  within rounding of ``"lazy"``, not bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn

from ..kernels.reference import LazyChain, ample_fuse, compact_index, select_frames, topk_count
from ..kernels.seam import FusedOps
from .focal import FocalBlock
from .navigation import gumbel_select, threshold_select

PLANS = ("eager", "lazy", "fused")


class DynamicFusion(nn.Module):
    """Per-frame, per-channel fusion attention ``(N, C)`` in (0, 1) from a pooled ``(N, C)`` descriptor (spec §2.4).

    Parameter names match the official ``dynamic_fusion``: ``fc.0`` (C→C/16), ``fc.2`` (C/16→C); biases only in
    the MobileNetV3 variant.
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = False):
        super().__init__()
        hidden = channels // reduction
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=bias), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels, bias=bias), nn.Sigmoid())
        for m in self.fc:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)


@dataclass
class ForwardContext:
    """What one forward pass needs to know and collects.

    ``masks_in``: given masks ``(B, T)`` in model order (overrides navigation), or None.
    ``masks_out``: the ``(B, T)`` mask of every navigation module, appended in model order.
    ``ops``: the fused-op implementation of this pass (``VideoClassifier.make_context`` resolves it:
    :func:`afnet_edge.kernels.use_ops` when active, else the model's ``kernels`` configuration).
    ``plan``: the compact plan, one of :data:`PLANS` (ignored by masked execution and in training).
    """

    num_frames: int
    execution: str
    selection: str
    ratio: float
    tau: float
    ops: FusedOps
    training: bool
    masks_in: Sequence[torch.Tensor] | None = None
    generator: torch.Generator | None = None
    masks_out: list = field(default_factory=list)
    plan: str = "eager"

    def next_given_mask(self) -> torch.Tensor | None:
        if self.masks_in is None:
            return None
        return self.masks_in[len(self.masks_out)]

    def mask_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, T, 2)`` logits → ``(B, T)`` mask under the configured selection rule (masked execution)."""
        if self.training or self.selection == "gumbel":
            return gumbel_select(logits, self.tau, self.generator)
        if self.selection == "threshold":
            return threshold_select(logits)
        k = topk_count(self.ratio, self.num_frames)
        return select_frames(logits.unsqueeze(0), "topk", k)[2][0]


def _stage_indices(ctx: ForwardContext, logits: list[torch.Tensor],
                   given: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Index lists ``(K_l,)`` and masks ``(B, T)`` for every block of a stage, at most one host sync. ``given``: the
    stage's given masks ``(B, T)`` (``ctx.masks_in``), else empty and ``logits`` holds every block's ``(B, T, 2)``."""
    if given:
        masks = torch.stack([g.to(torch.float32) for g in given])
        sel = "given"
    else:
        stacked = torch.stack(logits)  # (L, B, T, 2)
        sel = ctx.selection
        if sel in ("threshold", "topk"):
            k = topk_count(ctx.ratio, ctx.num_frames)
            index, counts, masks = ctx.ops.select_frames(stacked, sel, k)
            if sel == "topk":
                return list(index.unbind(0)), list(masks.unbind(0))
            sizes = counts.tolist()
            return [index[l, :c] for l, c in enumerate(sizes)], list(masks.unbind(0))
        masks = torch.stack([gumbel_select(lg, ctx.tau, ctx.generator) for lg in logits])
    L, B, T = masks.shape
    index, counts = compact_index(masks.reshape(L, B * T) > 0.5)
    sizes = counts.tolist()
    return [index[l, :c] for l, c in enumerate(sizes)], list(masks.unbind(0))


def run_af_stage(x: torch.Tensor, *, ctx: ForwardContext, navs: Iterable[nn.Module], amples: Iterable[nn.Module],
                 focals: Iterable[nn.Module], attention: DynamicFusion, fuse: nn.Module, blend_relu: bool,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Run one AF stage on ``x`` ``(N, C_in, H, W)``; appends this stage's masks to ``ctx.masks_out``.

    ``navs``, ``amples``, ``focals``: the stage's navigation modules, ample blocks and focal blocks, one of each per
    block (e.g. ``nn.ModuleList``; in compact execution every focal block must be a
    :class:`~afnet_edge.layers.focal.FocalBlock`); ``transform``: applied to the ample output before the fusion
    (channel match), or None; ``attention``: pooled ``(N, C)`` → fusion weights ``(N, C)``; ``blend_relu``: ReLU
    after the blend; ``fuse``: the fusion block.
    Returns the output of ``fuse`` ``(N, C_out, H', W')``.
    """
    xl = xb = x
    if ctx.execution == "masked" or ctx.training:
        for nav, ample, focal in zip(navs, amples, focals):
            m = ctx.next_given_mask()
            if m is None:
                m = ctx.mask_from_logits(nav(xl))
            ctx.masks_out.append(m)
            xl = ample(xl)
            xb = focal(xb, m.reshape(-1))
        if transform is not None:
            xl = transform(xl)
        return fuse(ample_fuse(xl, xb, attention, blend_relu))

    blocks = [_focal_block(i, f) for i, f in enumerate(focals)]
    logits: list[torch.Tensor] = []
    given: list[torch.Tensor] = []
    for nav, ample in zip(navs, amples):
        if ctx.masks_in is not None:
            given.append(ctx.masks_in[len(ctx.masks_out) + len(given)])
        else:
            logits.append(nav(xl))
        xl = ample(xl)
    indices, masks = _stage_indices(ctx, logits, given)
    ctx.masks_out.extend(masks)
    if ctx.plan != "eager":
        xb, chain = _lazy_focal_chain(x, ctx, blocks, indices)
        if transform is not None:
            xl = transform(xl)
        a = attention(ctx.ops.ample_fuse_pool(xl, xb, chain=chain))
        return fuse(ctx.ops.ample_fuse_blend(xl, xb, a, blend_relu, chain=chain))
    for i, (focal, index) in enumerate(zip(blocks, indices)):
        # From the second block on, the block input is an intermediate of this stage: scatter into it in place.
        xb = focal.forward_compact(xb, index, ctx.ops, inplace=i > 0)
    if transform is not None:
        xl = transform(xl)
    a = attention(ctx.ops.ample_fuse_pool(xl, xb))
    return fuse(ctx.ops.ample_fuse_blend(xl, xb, a, blend_relu))


def _focal_block(i: int, focal: nn.Module) -> FocalBlock:
    """``focals[i]`` of :func:`run_af_stage` as a :class:`FocalBlock` (compact execution needs its compact/lazy API)."""
    if not isinstance(focal, FocalBlock):
        raise TypeError(f"focals[{i}] must be a FocalBlock in compact execution, got {type(focal).__name__}")
    return focal


def stacked_constant_maps(focals: Sequence[FocalBlock], h: int, w: int, dtype: torch.dtype,
                          device: torch.device) -> torch.Tensor:
    """``(L, C, H, W)``: the constant maps ``K_i`` of a stage's L focal blocks (``chain.consts``), stacked once and
    cached on the first block for as long as every block's own cached map is the same tensor (so weight and BN
    changes, ``train()`` and ``.to()`` invalidate it exactly as they invalidate the maps)."""
    maps = [f.constant_map(h, w, dtype, device) for f in focals]
    cache = focals[0]._const_cache
    key = ("stacked", len(focals), h, w, dtype, str(device))
    hit = cache.get(key)
    if hit is not None and len(hit[0]) == len(maps) and all(a is b for a, b in zip(hit[0], maps)):
        return hit[1]
    stacked = torch.stack(maps)
    if not (torch.compiler.is_compiling() or torch.jit.is_tracing()):
        cache[key] = (tuple(maps), stacked)
    return stacked


def _lazy_focal_chain(x: torch.Tensor, ctx: ForwardContext, focals: Sequence[FocalBlock],
                      indices: Sequence[torch.Tensor]) -> tuple[torch.Tensor, LazyChain]:
    """The focal chain of a stage under the ``lazy`` / ``fused`` plans: returns the stage tensor S ``(N, C, H, W)``
    (stored rows) and the chain with ``upto = L`` under which its readers (the fusion) see the focal output.

    Block j gathers from S through ``chain(upto=j)`` and scatters only its selected rows into S; the caller of the
    ops updates ``start`` (``start[index_j] = j + 1``). A block whose residual is not the identity (the stage's
    first block: ``residual_0(x)``) starts a segment: its gather reads its (materialised) input without a chain, S
    becomes its residual of every frame and every frame's pending chain starts at that block."""
    ops, fused = ctx.ops, ctx.plan == "fused"
    n = x.shape[0]
    L = len(focals)
    relu_mask = sum(1 << i for i, f in enumerate(focals) if f.last_relu)
    stage: torch.Tensor | None = None
    start: torch.Tensor | None = None  # set together with consts, by the stage's first block
    consts: torch.Tensor | None = None
    for j, (focal, index) in enumerate(zip(focals, indices)):
        if stage is None or not focal.identity_residual:
            if stage is None:
                src = x
            else:  # materialise the input of block j (every frame's blocks < j applied), one pass
                assert start is not None and consts is not None  # set by block 0, which ran (stage is not None)
                every = torch.arange(n, device=x.device)
                src = ops.focal_gather(stage, every, ctx.num_frames, False,
                                       chain=LazyChain(start, consts, relu_mask, j), validate=False)
            stage = focal.residual(src)
            if stage is x:
                stage = x.clone()  # the scatters write into S in place; the stage input is the caller's
            if consts is None:
                consts = stacked_constant_maps(focals, stage.shape[-2], stage.shape[-1], stage.dtype, stage.device)
                start = torch.zeros(n, dtype=torch.int32, device=stage.device)
            assert start is not None  # set with consts
            start.fill_(j)
            src_chain = None
        else:
            assert start is not None and consts is not None  # set by block 0, which ran (stage is not None)
            src, src_chain = stage, LazyChain(start, consts, relu_mask, j)
        chain = LazyChain(start, consts, relu_mask, j)
        stage = focal.forward_lazy(src, stage, index, ops, src_chain, chain, fused=fused)
        start.index_fill_(0, index, j + 1)
    if stage is None or start is None or consts is None:
        raise ValueError("focals must hold at least one focal block (with its index list)")
    return stage, LazyChain(start, consts, relu_mask, L)
