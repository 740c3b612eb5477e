"""The ``"torch"`` implementation of the fused ops (``afnet_edge.kernels.ops("torch")``): the pure-PyTorch
reference (:mod:`.reference`) with the extension's keywords (``validate``, ``out``, ``inplace``) and allocation-saving
forms where they give the reference's result (no autograd needed). Also what :mod:`.ext` falls back to on a device
for which the extension has no kernels.
"""
from __future__ import annotations

import torch

from . import reference
from ._common import check_scatter_keywords, needs_grad, select_out, to_out, validate_index
from .seam import SelectResult, make_ops

__all__ = ["OPS", "focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames"]


def focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *, validate: bool = True,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.focal_gather` ``(K, C, H, W)`` with ``validate`` (indices in ``[0, N)``) and ``out``."""
    if validate:
        validate_index(index, x.shape[0], sorted_unique=False)
    return to_out(reference.focal_gather(x, index, num_frames, shift), out, x)


def focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const: torch.Tensor | None,
                  relu: bool, *, validate: bool = True, inplace: bool = False,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.focal_scatter` ``(N, C, H, W)`` with ``validate`` (sorted, unique, in range), ``inplace``
    (into ``residual``, unless autograd needs it) and ``out``."""
    check_scatter_keywords(residual, index, validate, inplace, out)
    if inplace and not needs_grad(residual, y, const) and residual.is_contiguous():
        # Truly in place (the same operations as the reference, so the same bits): selected rows first, from the
        # residual before the constant map is added to it.
        sel = residual.index_select(0, index) + y if index.numel() else None
        if const is not None:
            residual.add_(const.unsqueeze(0))
        if sel is not None:
            residual.index_copy_(0, index, sel)
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


def ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.ample_fuse_pool` ``(N, C)`` with ``out``."""
    if _exact_factors(xl, xb) is not None and not needs_grad(xl, xb):
        # Replication by whole factors: mean(up(xl)) = mean(xl); no full-resolution temporary.
        return to_out(xl.mean(dim=(2, 3)) + xb.mean(dim=(2, 3)), out, xl, xb)
    return to_out(reference.ample_fuse_pool(xl, xb), out, xl, xb)


def ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`.reference.ample_fuse_blend` ``(N, C, H, W)`` with ``out``."""
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


OPS = make_ops("torch", focal_gather=focal_gather, focal_scatter=focal_scatter, ample_fuse_pool=ample_fuse_pool,
               ample_fuse_blend=ample_fuse_blend, select_frames=select_frames)
