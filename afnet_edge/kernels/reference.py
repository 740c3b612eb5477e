"""Pure-PyTorch reference implementations of afnet_edge's fused ops.

These define the semantics every other implementation (C++ CPU twins, CUDA kernels, TensorRT plugins) must
reproduce, serve as the fallback when the extension is not built, and stay export-friendly (they lower to standard
ONNX ops: Gather, Slice, Concat, ScatterND, ReduceMean, TopK).

Layout: frames are rows of an ``(N, C, H, W)`` tensor with ``N = B·T`` and ``n = b·T + t`` (video-major), as in
``shared/spec/afnet-architecture.md`` §1. Frame index lists are int64, sorted ascending and unique.
"""
from __future__ import annotations

import math
from typing import Callable

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
    return _pool(upsample_nearest(xl, tuple(xb.shape[-2:])), xb)


def ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool) -> torch.Tensor:
    """``act(a ⊙ up(xl) + (1 − a) ⊙ xb)`` with ``a`` of shape ``(N, C)``; act = ReLU if ``relu`` else identity."""
    return _blend(upsample_nearest(xl, tuple(xb.shape[-2:])), xb, a, relu)


def ample_fuse(xl: torch.Tensor, xb: torch.Tensor, attention: Callable[[torch.Tensor], torch.Tensor],
               relu: bool) -> torch.Tensor:
    """The whole fusion of an AF stage (spec §2.4) ``(N, C, H, W)``: ``ample_fuse_blend(xl, xb, a, relu)`` with
    ``a = attention(ample_fuse_pool(xl, xb))`` ``(N, C)``, upsampling ``xl`` once (the masked / training path)."""
    up = upsample_nearest(xl, tuple(xb.shape[-2:]))
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
