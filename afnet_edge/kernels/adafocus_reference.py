"""Pure-PyTorch reference ops of the AdaFocus family (``shared/spec/adafocus.md`` §1.4, §2.3, §6.3).

* :func:`focus_crop` — the batched patch crop at data-dependent positions. ``bilinear`` is AdaFocusV2's sub-pixel
  translation (the official ``affine_grid`` + ``grid_sample`` with ``align_corners=False``, which reduces to one
  set of four bilinear weights per frame), ``floor`` is AdaFocus V1's integer crop (plain slicing at
  ``⌊a·(H − P)⌋``). Every constant is created on the input's device (no host-to-device copies, no host syncs), so a
  forward that uses it can be captured in one CUDA graph. Differentiable w.r.t. the positions in ``bilinear`` mode
  (the gradient of §6.3: piecewise constant, jumping at integer pixel positions).
* :func:`coarse_to_fine_order` — the V2 ActivityNet-family frame permutation (``--sample``).

Positions are **actions** ``a = (a_y, a_x) ∈ [0, 1]²`` (index 0 = row): the patch's top-left corner is
``(a_y·(H − P), a_x·(W − P))`` in pixels, computed in fp32 whatever the frames' dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["focus_crop", "coarse_to_fine_order", "CROP_MODES"]

CROP_MODES = ("bilinear", "floor")


def coarse_to_fine_order(num_frames: int) -> list[int]:
    """The official coarse-to-fine frame order of ``num_frames`` frames (spec §1.4).

    Model input position k holds original frame ``order[k]``: the middle index ``(T − 1) // 2``, then 0 and T − 1,
    then the integer midpoints of every pair of neighbouring indices already taken (ascending, duplicates skipped),
    level by level. T = 16 → ``[7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14]``; T = 8 →
    ``[3, 0, 7, 1, 5, 2, 4, 6]``.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    order: list[int] = []
    for i in ((num_frames - 1) // 2, 0, num_frames - 1):
        if i not in order:
            order.append(i)
    while len(order) < num_frames:
        taken = sorted(order)
        for a, b in zip(taken, taken[1:]):
            m = (a + b) // 2
            if m not in order:
                order.append(m)
    return order


def _check_crop_args(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating-point tensor of shape (N, C, H, W), got {shape}")
    n, _, h, w = x.shape
    if not isinstance(centres, torch.Tensor) or tuple(centres.shape) != (n, 2) or not centres.is_floating_point():
        shape = tuple(centres.shape) if isinstance(centres, torch.Tensor) else type(centres).__name__
        raise ValueError(f"centres must be a floating-point tensor of shape (N, 2) = ({n}, 2) holding (row, col) "
                         f"actions in [0, 1], got {shape}")
    if centres.device != x.device:
        raise ValueError(f"centres are on {centres.device} but x is on {x.device}")
    if isinstance(patch, bool) or not isinstance(patch, int) or not 1 <= patch <= min(h, w):
        raise ValueError(f"patch must be an int in [1, min(H, W)] = [1, {min(h, w)}], got {patch!r}")
    if mode not in CROP_MODES:
        raise ValueError(f"mode must be one of {CROP_MODES}, got {mode!r}")


def focus_crop(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str = "bilinear") -> torch.Tensor:
    """Crop one ``patch`` × ``patch`` window per frame at a per-frame position.

    Args:
        x: frames ``(N, C, H, W)`` (fp32/fp16/bf16).
        centres: actions ``(N, 2)`` = (row, col) in [0, 1] (values outside are clamped); the window's top-left
            corner is ``(a_y·(H − P), a_x·(W − P))`` pixels, computed in fp32.
        patch: P, the window side in pixels.
        mode: ``"bilinear"`` — output pixel (i, j) samples x at the continuous position (y₁ + i, x₁ + j) with
            bilinear weights; reads past the far edge (weight 0 in exact arithmetic) read 0, as ``grid_sample``'s
            zero padding. Equals the official ``affine_grid`` + ``grid_sample`` to fp32 rounding (spec §2.3).
            ``"floor"`` — ``x[:, :, ⌊y₁⌋ : ⌊y₁⌋ + P, ⌊x₁⌋ : ⌊x₁⌋ + P]`` exactly (AdaFocus V1); no gradient to
            ``centres``.

    Returns ``(N, C, P, P)`` in ``x``'s dtype. In ``bilinear`` mode the result is differentiable w.r.t. ``x`` and
    ``centres`` (spec §6.3: ∂/∂x₁ = Σ g·[(1−f_y)(I₀₁ − I₀₀) + f_y(I₁₁ − I₁₀)], times W − P).
    """
    _check_crop_args(x, centres, patch, mode)
    n, c, h, w = x.shape
    a = centres.to(torch.promote_types(centres.dtype, torch.float32)).clamp(0.0, 1.0)   # fp32 (fp64 kept)
    # Python scalars travel as kernel arguments: no host-to-device copy.
    corner = torch.stack((a[:, 0] * float(h - patch), a[:, 1] * float(w - patch)), dim=1)  # (N, 2) (y₁, x₁)
    base = corner.detach().floor()
    step = torch.arange(patch + 1, device=x.device)                                       # 0..P (int64)
    start = base.long()                                                                   # (N, 2)
    if mode == "floor":
        rows = (start[:, 0:1] + step[:patch]).view(n, 1, patch, 1).expand(n, c, patch, w)
        win = x.gather(2, rows)
        cols = (start[:, 1:2] + step[:patch]).view(n, 1, 1, patch).expand(n, c, patch, patch)
        return win.gather(3, cols)
    # One zero row/column past the far edge: the +1 taps at a = 1 read it with weight 0 (grid_sample's padding).
    xp = F.pad(x, (0, 1, 0, 1))
    rows = (start[:, 0:1] + step).view(n, 1, patch + 1, 1).expand(n, c, patch + 1, w + 1)
    win = xp.gather(2, rows)
    cols = (start[:, 1:2] + step).view(n, 1, 1, patch + 1).expand(n, c, patch + 1, patch + 1)
    win = win.gather(3, cols)                                                             # (N, C, P+1, P+1)
    frac = (corner - base).to(x.dtype)                                                    # keeps the grad of a
    fy = frac[:, 0].view(n, 1, 1, 1)
    fx = frac[:, 1].view(n, 1, 1, 1)
    top = win[:, :, :patch, :patch] * (1 - fx) + win[:, :, :patch, 1:] * fx
    bottom = win[:, :, 1:, :patch] * (1 - fx) + win[:, :, 1:, 1:] * fx
    return top * (1 - fy) + bottom * fy
