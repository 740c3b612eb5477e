"""The ``"torch"`` implementation of the fused ops (``afnet_edge.kernels.ops("torch")``): the pure-PyTorch
reference (:mod:`.reference`) with the extension's keywords (``validate``, ``out``, ``inplace``) and allocation-saving
forms where they give the reference's result (no autograd needed). Also what :mod:`.ext` falls back to on a device
for which the extension has no kernels.
"""
from __future__ import annotations

import torch

import torch.nn.functional as F

from . import reference
from ._common import (check_chain, check_conv1x1, check_index_tensor, check_scatter_keywords, needs_grad, select_out,
                      to_out, validate_index)
from .reference import LazyChain
from .seam import SelectResult, make_ops

__all__ = ["OPS", "focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames",
           "gather_conv1x1", "conv1x1_scatter"]


def _lazy_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
                 chain: LazyChain) -> torch.Tensor:
    """:func:`.reference.lazy_focal_gather` reading only the gathered rows: each channel segment is taken from its
    source frame (self, t+1 or t−1) and gets that frame's pending blocks on those channels; the same element-wise
    operations as materialising first, so the same bits."""
    if not shift:
        return reference.chain_apply(x.index_select(0, index), index, chain)
    n, c = x.shape[:2]
    fold = c // 8
    t = index % num_frames
    nxt = torch.clamp(index + 1, max=n - 1)
    prv = torch.clamp(index - 1, min=0)
    keep_next = (t < num_frames - 1).to(x.dtype).view(-1, 1, 1, 1)
    keep_prev = (t > 0).to(x.dtype).view(-1, 1, 1, 1)
    segs = ((nxt, slice(0, fold)), (prv, slice(fold, 2 * fold)), (index, slice(2 * fold, c)))
    a, b, rest = (reference.chain_apply(x[:, ch].index_select(0, src), src, chain, channels=ch) for src, ch in segs)
    return torch.cat([a * keep_next, b * keep_prev, rest], dim=1)


def focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *,
                 chain: LazyChain | None = None, validate: bool = True,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.focal_gather` ``(K, C, H, W)`` with ``validate`` (indices in ``[0, N)``) and ``out``; with
    ``chain``, :func:`.reference.lazy_focal_gather` computed on the gathered rows only (never the whole tensor)."""
    return to_out(_gather(x, index, num_frames, shift, chain, validate), out, x)


def _gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, chain: LazyChain | None,
            validate: bool) -> torch.Tensor:
    check_chain(chain, x, "x", validate)
    if validate:
        validate_index(index, x.shape[0], sorted_unique=False)
    if chain is None:
        return reference.focal_gather(x, index, num_frames, shift)
    check_index_tensor(index, x)
    return _lazy_gather(x, index, num_frames, shift, chain)


def focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const: torch.Tensor | None,
                  relu: bool, *, chain: LazyChain | None = None, validate: bool = True, inplace: bool = False,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.focal_scatter` ``(N, C, H, W)`` with ``validate`` (sorted, unique, in range), ``inplace``
    (into ``residual``, unless autograd needs it) and ``out``. With ``chain`` (``const`` must be None):
    :func:`.reference.lazy_focal_scatter`; in place, only the selected rows are read and written."""
    check_scatter_keywords(residual, index, validate, inplace, out)
    if chain is not None:
        if const is not None:
            raise ValueError("focal_scatter: const must be None with a chain (the unselected rows keep their "
                             "pending maps; the constant maps are chain.consts)")
        check_chain(chain, residual, "residual", validate)
        check_index_tensor(index, residual)
        if inplace and not needs_grad(residual, y) and residual.is_contiguous():
            if index.numel():
                sel = reference.chain_apply(residual.index_select(0, index), index, chain) + y
                residual.index_copy_(0, index, sel.relu_() if relu else sel)
            return residual
        res = reference.lazy_focal_scatter(residual, y, index, relu, chain)
        if inplace and not needs_grad(residual, y):
            return residual.copy_(res)
        return to_out(res, out, residual, y)
    if inplace and not needs_grad(residual, y, const) and residual.is_contiguous():
        # Truly in place (the same operations as the reference, so the same bits): selected rows first, from the
        # residual before the constant map is added to it.
        rows = residual.index_select(0, index) + y if index.numel() else None
        if const is not None:
            residual.add_(const.unsqueeze(0))
        if rows is not None:
            residual.index_copy_(0, index, rows)
        return residual.relu_() if relu else residual
    res = reference.focal_scatter(residual, y, index, const, relu)
    if inplace and not needs_grad(residual, y, const):
        return residual.copy_(res)
    return to_out(res, out, residual, y, const)


def _exact_factors(xl: torch.Tensor, xb: torch.Tensor) -> tuple[int, int] | None:
    """Upsampling factors when legacy-nearest ``up(xl)`` to ``xb``'s size is an exact power-of-two replication
    (the AF stages at multiples of 32 px: ×2), where ``floor(d·in/out)`` is exactly ``d // f``; else None."""
    (h, w), (H, W) = xl.shape[-2:], xb.shape[-2:]
    if h == 0 or w == 0 or H % h or W % w:
        return None
    f, g = H // h, W // w
    return (f, g) if f in (1, 2, 4, 8) and g in (1, 2, 4, 8) else None


def ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, chain: LazyChain | None = None,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.ample_fuse_pool` ``(N, C)`` with ``out``; with ``chain``, of the logical ``xb`` (the pool
    reads every frame anyway: the pending maps are applied to a temporary, ``xb`` itself is not modified)."""
    check_chain(chain, xb, "xb")
    xb = reference.chain_materialize(xb, chain)
    if _exact_factors(xl, xb) is not None and not needs_grad(xl, xb):
        # Replication by whole factors: mean(up(xl)) = mean(xl); no full-resolution temporary.
        return to_out(xl.mean(dim=(2, 3)) + xb.mean(dim=(2, 3)), out, xl, xb)
    return to_out(reference.ample_fuse_pool(xl, xb), out, xl, xb)


def ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                     chain: LazyChain | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.ample_fuse_blend` ``(N, C, H, W)`` with ``out``; with ``chain``, of the logical ``xb``."""
    check_chain(chain, xb, "xb")
    xb = reference.chain_materialize(xb, chain)
    fg = _exact_factors(xl, xb)
    if fg is not None and not needs_grad(xl, xb, a) and xl.is_contiguous() and xb.is_contiguous():
        # Broadcast views instead of materialising up(xl); the same per-element operations as the reference.
        n, c, h, w = xl.shape
        f, g = fg
        a6 = a.reshape(n, c, 1, 1, 1, 1)
        res = a6 * xl.view(n, c, h, 1, w, 1) + (1 - a6) * xb.view(n, c, h, f, w, g)
        res = res.view(xb.shape)
        return to_out(res.relu_() if relu else res, out, xl, xb, a)
    return to_out(reference.ample_fuse_blend(xl, xb, a, relu), out, xl, xb, a)


def select_frames(logits: torch.Tensor, mode: str, k: int = 0, *,
                  out: SelectResult | None = None) -> SelectResult:
    """:func:`.reference.select_frames` ``(index, counts, mask)`` with ``out`` (a triple)."""
    res = reference.select_frames(logits, mode, k)
    return res if out is None else select_out(res, out)


def gather_conv1x1(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, weight: torch.Tensor,
                   groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool, *,
                   chain: LazyChain | None = None, validate: bool = True,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.gather_conv1x1` ``(K, O, H, W)`` (float32 arithmetic, one rounding), the gather done as
    :func:`focal_gather` (only the gathered rows; chains applied on them) — the same bits as the reference.
    ``weight`` ``(O, C/groups[, 1, 1])`` of ``x``'s dtype, ``scale``/``bias`` float32 ``(O,)``."""
    check_conv1x1("gather_conv1x1", x, "x", weight, groups, scale, bias)
    z = _gather(x, index, num_frames, shift, chain, validate)
    y = reference._conv1x1_fp32(z, weight, groups, scale, bias)
    return to_out((F.relu(y) if relu else y).to(x.dtype), out, x, weight, scale, bias)


def conv1x1_scatter(h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor,
                    residual: torch.Tensor, index: torch.Tensor, relu: bool, *, chain: LazyChain | None = None,
                    validate: bool = True, inplace: bool = False,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.conv1x1_scatter` ``(N, C, H, W)``: selected rows f = ``index[k]`` get ``φ(conv1x1(h)[k] ·
    scale + bias + logical(residual)[f])`` (float32, one rounding), the others are returned as stored. ``h``
    ``(K, C_h, H, W)`` of ``residual``'s dtype; ``inplace`` writes only the selected rows of ``residual``."""
    check_scatter_keywords(residual, index, validate, inplace, out)
    c = check_conv1x1("conv1x1_scatter", h, "h", weight, groups, scale, bias)
    if not isinstance(residual, torch.Tensor) or residual.dim() != 4 or residual.shape[1] != c \
            or tuple(residual.shape[2:]) != tuple(h.shape[2:]):
        got = tuple(residual.shape) if isinstance(residual, torch.Tensor) else type(residual).__name__
        raise ValueError(f"conv1x1_scatter: residual must be (N, {c}, {h.shape[2]}, {h.shape[3]}) (the conv's output "
                         f"channels, h's spatial size), got {got}")
    if residual.dtype != h.dtype or residual.device != h.device:
        raise TypeError(f"conv1x1_scatter: residual must have the dtype and device of h ({h.dtype}, {h.device}), got "
                        f"{residual.dtype}, {residual.device}")
    check_index_tensor(index, residual)
    if index.shape[0] != h.shape[0]:
        raise ValueError(f"conv1x1_scatter: index must have one entry per frame of h ({h.shape[0]}), got "
                         f"{index.shape[0]}")
    check_chain(chain, residual, "residual", validate)
    if inplace and not needs_grad(h, weight, scale, bias, residual) and residual.is_contiguous():
        if index.numel():
            r = residual.index_select(0, index)
            if chain is not None:
                r = reference.chain_apply(r, index, chain)
            s = reference._conv1x1_fp32(h, weight, groups, scale, bias) + r.float()
            residual.index_copy_(0, index, (F.relu(s) if relu else s).to(residual.dtype))
        return residual
    res = reference.conv1x1_scatter(h, weight, groups, scale, bias, residual, index, relu, chain)
    if inplace and not needs_grad(h, weight, scale, bias, residual):
        return residual.copy_(res)
    return to_out(res, out, h, weight, scale, bias, residual)


OPS = make_ops("torch", focal_gather=focal_gather, focal_scatter=focal_scatter, ample_fuse_pool=ample_fuse_pool,
               ample_fuse_blend=ample_fuse_blend, select_frames=select_frames, gather_conv1x1=gather_conv1x1,
               conv1x1_scatter=conv1x1_scatter)
