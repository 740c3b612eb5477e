"""Pure-PyTorch reference implementations of afnet_edge's fused ops.

These define the semantics every other implementation (C++ CPU twins, CUDA kernels, TensorRT plugins) must
reproduce, serve as the fallback when the extension is not built, and stay export-friendly (they lower to standard
ONNX ops: Gather, Slice, Concat, ScatterND, ReduceMean, TopK).

Layout: frames are rows of an ``(N, C, H, W)`` tensor with ``N = B·T`` and ``n = b·T + t`` (video-major), as in
``shared/spec/afnet-architecture.md`` §1. Frame index lists are int64, sorted ascending and unique.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "temporal_shift",
    "focal_gather",
    "focal_scatter",
    "upsample_nearest",
    "ample_fuse_pool",
    "ample_fuse_blend",
    "ample_fuse",
    "select_frames",
    "compact_index",
    "topk_count",
    "LazyChain",
    "chain_apply",
    "chain_materialize",
    "fold_bn",
    "gather_conv1x1",
    "conv1x1_scatter",
]


def temporal_shift(x: torch.Tensor, num_frames: int, fold_div: int = 8) -> torch.Tensor:
    """TSM shift (spec §5) of an ``(N, C, H, W)`` frame tensor, out of place.

    Channels ``[0, C/8)`` of frame t take frame t+1 (zeros for the last frame), channels ``[C/8, 2C/8)`` take
    frame t−1 (zeros for the first frame), the rest are unchanged.
    """
    n, c, h, w = x.shape
    fold = c // fold_div
    v = x.view(n // num_frames, num_frames, c, h, w)
    zero = v.new_zeros(n // num_frames, 1, fold, h, w)
    left = torch.cat([v[:, 1:, :fold], zero], dim=1)
    right = torch.cat([zero, v[:, :-1, fold:2 * fold]], dim=1)
    out = torch.cat([left, right, v[:, :, 2 * fold:]], dim=2)
    return out.reshape(n, c, h, w)


def focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool) -> torch.Tensor:
    """Compact batch ``(K, C, H, W)`` of frames ``index`` of ``x`` ``(N, C, H, W)``, TSM-shifted first if ``shift``.

    The shift reads the neighbours' current values whether or not they are selected (spec §8.3).
    """
    if shift:
        if index.numel() == 0:
            return x.new_empty((0,) + tuple(x.shape[1:]))
        n, c, h, w = x.shape
        fold = c // 8
        t = index % num_frames
        nxt = torch.clamp(index + 1, max=n - 1)
        prv = torch.clamp(index - 1, min=0)
        keep_next = (t < num_frames - 1).to(x.dtype).view(-1, 1, 1, 1)
        keep_prev = (t > 0).to(x.dtype).view(-1, 1, 1, 1)
        a = x[:, :fold].index_select(0, nxt) * keep_next
        b = x[:, fold:2 * fold].index_select(0, prv) * keep_prev
        rest = x[:, 2 * fold:].index_select(0, index)
        return torch.cat([a, b, rest], dim=1)
    return x.index_select(0, index)


def focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                  const: torch.Tensor | None, relu: bool) -> torch.Tensor:
    """Full ``(N, C, H, W)`` output: ``out[f] = φ(residual[f] + (y[k] if index[k] == f else const))``.

    ``const`` is the ``(C, H, W)`` map an all-zero body input produces (None means zeros); φ is ReLU if ``relu``.
    """
    if const is None:
        base = residual.clone()
    else:
        base = residual + const.unsqueeze(0)
    if index.numel() > 0:
        sel = residual.index_select(0, index) + y
        base = base.index_copy(0, index, sel)
    return F.relu(base) if relu else base


def upsample_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PyTorch's legacy ``nearest`` upsampling: destination d reads source ⌊d·in/out⌋ per axis."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="nearest")


def _pool(up: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
    return (up + xb).mean(dim=(2, 3))


def _blend(up: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool) -> torch.Tensor:
    a4 = a.view(a.shape[0], a.shape[1], 1, 1)
    out = a4 * up + (1 - a4) * xb
    return F.relu(out) if relu else out


def ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
    """Per-frame, per-channel mean of ``up(xl) + xb`` → ``(N, C)``; ``xl`` is ``(N, C, h, w)``, ``xb`` ``(N, C, H, W)``."""
    return _pool(upsample_nearest(xl, (xb.shape[-2], xb.shape[-1])), xb)


def ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool) -> torch.Tensor:
    """``act(a ⊙ up(xl) + (1 − a) ⊙ xb)`` with ``a`` of shape ``(N, C)``; act = ReLU if ``relu`` else identity."""
    return _blend(upsample_nearest(xl, (xb.shape[-2], xb.shape[-1])), xb, a, relu)


def ample_fuse(xl: torch.Tensor, xb: torch.Tensor, attention: Callable[[torch.Tensor], torch.Tensor],
               relu: bool) -> torch.Tensor:
    """The whole fusion of an AF stage (spec §2.4) ``(N, C, H, W)``: ``ample_fuse_blend(xl, xb, a, relu)`` with
    ``a = attention(ample_fuse_pool(xl, xb))`` ``(N, C)``, upsampling ``xl`` once (the masked / training path)."""
    up = upsample_nearest(xl, (xb.shape[-2], xb.shape[-1]))
    return _blend(up, xb, attention(_pool(up, xb)), relu)


def topk_count(ratio: float, num_frames: int) -> int:
    """Frames per clip for ``topk`` selection: ``k = ceil(ratio·T)`` (guarded against float round-up)."""
    return max(0, min(num_frames, math.ceil(ratio * num_frames - 1e-9)))


def compact_index(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefix compaction of a boolean ``(L, N)`` selection: ``(index (L, N), counts (L,))``.

    Row l of ``index`` starts with the ``counts[l]`` selected positions in ascending order and is filled with N.
    """
    L, N = sel.shape
    # A stable sort of the "not selected" keys puts selected positions first, each group in ascending order.
    order = torch.argsort((~sel).to(torch.int8), dim=1, stable=True)
    counts = sel.sum(dim=1)
    pos = torch.arange(N, device=sel.device).unsqueeze(0)
    index = torch.where(pos < counts.unsqueeze(1), order, torch.full_like(order, N))
    return index, counts


def select_frames(logits: torch.Tensor, mode: str, k: int = 0):
    """Per-block frame index lists from navigation logits of one stage.

    Args:
        logits: ``(L, B, T, 2)``; ``[..., 0]`` is the "skip" logit, ``[..., 1]`` the "select" logit.
        mode: ``"threshold"`` (select iff select > skip) or ``"topk"`` (the k frames per clip with the largest
            select − skip margin, ties to the lower frame index).
        k: frames per clip for ``topk``.

    Returns:
        ``(index, counts, mask)``: ``index`` int64 ``(L, M)`` whose first ``counts[l]`` entries of row l are the
        selected frame rows ``b·T + t`` in ascending order (M = N for threshold, the rest filled with N;
        M = B·k for topk); ``counts`` int64 ``(L,)``; ``mask`` ``(L, B, T)`` 0/1 in the logits' dtype.
    """
    L, B, T, _ = logits.shape
    margin = logits[..., 1] - logits[..., 0]
    if mode == "threshold":
        sel = margin > 0
        index, counts = compact_index(sel.reshape(L, B * T))
        return index, counts, sel.to(logits.dtype)
    if mode == "topk":
        if not 0 <= k <= T:
            raise ValueError(f"k must be in [0, T={T}], got {k}")
        order = torch.argsort(margin, dim=-1, descending=True, stable=True)[..., :k]
        top = torch.sort(order, dim=-1).values
        mask = torch.zeros_like(margin).scatter_(-1, top, 1.0)
        offs = (torch.arange(B, device=logits.device) * T).view(1, B, 1)
        index = (top + offs).reshape(L, B * k)
        counts = torch.full((L,), B * k, dtype=torch.int64, device=logits.device)
        return index, counts, mask
    raise ValueError(f"mode must be 'threshold' or 'topk', got {mode!r}")


# ------------------------------------------------------------------------------------------- lazy constant chains
class LazyChain(NamedTuple):
    """Pending constant chains of one AF stage's focal tensor (spec §8, issue 16): the "lazy" compact plan.

    For a frame unselected in focal block i, the block is the element-wise map ``v ↦ φ_i(v + K_i)`` (identity
    residual; for block 0 ``v`` is the block's residual ``downsample(x)``). Such maps are not applied when the block
    runs: the stored row of frame f keeps the value it had *before* block ``start[f]``, and whoever reads the row
    applies blocks ``start[f] .. upto − 1`` on the fly, with the same operations in the same order as the eager path
    (one add in the storage type, then ReLU where the block has it), so the result is bit-identical.

    * ``start``: int32 ``(N,)`` on the tensor's device — per frame, the first block whose map is still pending.
    * ``consts``: ``(L, C, H, W)`` in the stored tensor's dtype — ``K_i`` of the stage's L focal blocks.
    * ``relu_mask``: bit i set ⇔ block i applies ReLU after adding ``K_i`` (φ_i).
    * ``upto``: the reader consumes the input of block ``upto`` (blocks ``< upto`` are due); the stage's fusion
      reads with ``upto = L``.
    """

    start: torch.Tensor
    consts: torch.Tensor
    relu_mask: int
    upto: int


def chain_apply(v: torch.Tensor, frames: torch.Tensor, chain: LazyChain,
                channels: slice = slice(None)) -> torch.Tensor:
    """Logical values of stored rows ``v`` ``(M, C', H, W)`` that belong to frames ``frames`` (int64 ``(M,)``):
    blocks ``start[frames[m]] .. chain.upto − 1`` applied to row m, on channels ``channels`` of the constant maps
    (``C'`` = their count). Returns a new tensor (``v`` is not modified)."""
    start = chain.start.index_select(0, frames).to(torch.int64).view(-1, 1, 1, 1)
    for i in range(chain.upto):
        nxt = v + chain.consts[i, channels].unsqueeze(0)
        if (chain.relu_mask >> i) & 1:
            nxt = F.relu(nxt)
        v = torch.where(start <= i, nxt, v)
    return v


def chain_materialize(x: torch.Tensor, chain: LazyChain | None) -> torch.Tensor:
    """The logical ``(N, C, H, W)`` tensor: every frame's pending blocks applied (one full pass; what a stage end
    without a fusion reader runs). ``chain=None`` returns ``x``."""
    if chain is None:
        return x
    return chain_apply(x, torch.arange(x.shape[0], device=x.device), chain)


def lazy_focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
                      chain: LazyChain | None) -> torch.Tensor:
    """:func:`focal_gather` of the logical tensor ``chain_materialize(x, chain)`` (semantics; kernels read only the
    gathered rows and apply their chains on the fly)."""
    return focal_gather(chain_materialize(x, chain), index, num_frames, shift)


def lazy_focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, relu: bool,
                       chain: LazyChain) -> torch.Tensor:
    """Block ``chain.upto``'s scatter under lazy chains ``(N, C, H, W)``: selected frames f = ``index[k]`` get
    ``φ(logical(residual)[f] + y[k])``; every other row is returned unchanged (its map stays pending). The caller then
    sets ``start[index] = upto + 1``."""
    out = residual.clone()
    if index.numel() > 0:
        sel = chain_apply(residual.index_select(0, index), index, chain) + y
        out = out.index_copy(0, index, F.relu(sel) if relu else sel)
    return out


# ------------------------------------------------------------------------------------- gather/scatter 1×1 GEMMs
def fold_bn(bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``(scale, bias)`` float32 ``(C,)``: ``bn(v) ≈ v·scale + bias`` (not bit-exact)."""
    weight, bias, mean, var = bn.weight, bn.bias, bn.running_mean, bn.running_var
    if weight is None or bias is None or mean is None or var is None:
        raise ValueError("fold_bn: bn must be affine with running statistics (affine=True, track_running_stats=True)")
    scale = weight.float() / torch.sqrt(var.float() + bn.eps)
    return scale, bias.float() - mean.float() * scale


def _conv1x1_fp32(z: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor,
                  bias: torch.Tensor) -> torch.Tensor:
    w = weight.float().reshape(weight.shape[0], -1, 1, 1)
    return F.conv2d(z.float(), w, groups=groups) * scale.float().view(1, -1, 1, 1) + bias.float().view(1, -1, 1, 1)


def gather_conv1x1(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, weight: torch.Tensor,
                   groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool,
                   chain: LazyChain | None = None) -> torch.Tensor:
    """The first 1×1 convolution of a focal body on the selected frames, gather fused into its operand load:
    ``act(conv1x1(lazy_focal_gather(x, index, T, shift, chain), weight, groups) · scale + bias)`` ``(K, O, H, W)``.

    ``weight`` ``(O, C/groups[, 1, 1])``; ``scale``/``bias`` float32 ``(O,)`` (folded BN); act = ReLU if ``relu``.
    Arithmetic in float32 from the storage-type operands, one rounding to ``x.dtype`` at the end (what a tensor-core
    kernel with float32 accumulation computes, up to summation order)."""
    z = lazy_focal_gather(x, index, num_frames, shift, chain)
    y = _conv1x1_fp32(z, weight, groups, scale, bias)
    return (F.relu(y) if relu else y).to(x.dtype)


def conv1x1_scatter(h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor,
                    residual: torch.Tensor, index: torch.Tensor, relu: bool,
                    chain: LazyChain | None = None) -> torch.Tensor:
    """The last 1×1 convolution of a focal body with the scatter as its epilogue ``(N, C, H, W)``: selected frames
    f = ``index[k]`` get ``φ(conv1x1(h, weight, groups)[k] · scale + bias + logical(residual)[f])`` (float32, one
    rounding); every other row of ``residual`` is returned unchanged (pending under ``chain``; ``chain=None``: read
    as stored). ``h`` ``(K, C_h, H, W)``; ``weight`` ``(C, C_h/groups[, 1, 1])``; φ = ReLU if ``relu``."""
    out = residual.clone()
    if index.numel() > 0:
        r = residual.index_select(0, index)
        if chain is not None:
            r = chain_apply(r, index, chain)
        s = _conv1x1_fp32(h, weight, groups, scale, bias) + r.float()
        out = out.index_copy(0, index, (F.relu(s) if relu else s).to(residual.dtype))
    return out
