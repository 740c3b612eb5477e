"""The official training augmentation (spec §10): resize 240x320, multi-scale crop to 224, no flip.

Validation preprocessing (resize + centre crop) is :func:`afnet_edge.video.preprocess_frames`.

The multi-scale crop follows TSN's ``GroupMultiScaleCrop`` with the settings the official code uses
(scales {1, .875, .75, .66}, ``max_distort=1``, ``fix_crop=True``, ``more_fix_crop=True``): with
``base = min(H, W)`` of the resized frame, candidate crop sides are ``int(base * s)`` (a side within 2 px of the
output size snaps to it); a (width, height) pair is drawn uniformly among the pairs whose scale indices differ by at
most 1, its corner uniformly among 13 fixed positions (4 corners, centre, 4 edge centres, 4 quarter points on a
grid of steps ``(W - crop_w) // 4`` and ``(H - crop_h) // 4``), and the crop is resized to ``size x size`` with
bilinear interpolation. The same crop is applied to every frame of the clip. Something-Something is trained without
horizontal flip (flipping would swap "left" and "right" classes), so there is none by default; bLVNet-TAM's release
flips anyway (its recipe passes ``flip=True``, spec blvnet-tam.md §2).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..video import SCALE_SIZE, _check_frames, normalize_frames, resize_frames

#: Official multi-scale crop scales.
SCALES: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)


def fixed_crop_offsets(image_h: int, image_w: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
    """The 13 fixed crop corners of TSN's ``more_fix_crop``, as ``(top, left)`` pairs (duplicates kept)."""
    w_step, h_step = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2),  # corners, centre
            (0, 2), (4, 2), (2, 4), (2, 0),  # edge centres
            (1, 1), (3, 1), (1, 3), (3, 3)]  # quarter points
    return [(j * h_step, i * w_step) for i, j in grid]


def multiscale_crop_params(
    image_h: int,
    image_w: int,
    size: int,
    rng: np.random.Generator,
    scales: Sequence[float] = SCALES,
    max_distort: int = 1,
) -> tuple[int, int, int, int]:
    """Draw one multi-scale crop ``(top, left, crop_h, crop_w)`` in pixels for a frame of ``image_h x image_w``."""
    base = min(image_h, image_w)
    sides = [int(base * s) for s in scales]
    sides = [size if abs(x - size) < 3 else x for x in sides]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    offsets = fixed_crop_offsets(image_h, image_w, crop_h, crop_w)
    top, left = offsets[int(rng.integers(len(offsets)))]
    return top, left, crop_h, crop_w


def train_augment(
    frames: np.ndarray,
    rng: np.random.Generator,
    size: int = 224,
    scale_size: tuple[int, int] | None = SCALE_SIZE,
    scales: Sequence[float] = SCALES,
    flip: bool = False,
) -> torch.Tensor:
    """Official training preprocessing of one clip.

    Args:
        frames: uint8 ``(T, H, W, 3)`` RGB.
        rng: numpy Generator drawing the crop.
        size: output side in pixels.
        scale_size: (height, width) to resize to first (official 240x320), or None.
        scales: crop scales relative to the shorter side.
        flip: flip every frame of the clip left-right with probability 0.5 (one draw from ``rng`` after the crop's).

    Returns:
        float32 tensor ``(T, 3, size, size)``, normalised with :data:`afnet_edge.video.MEAN` / ``STD``.
    """
    frames = _check_frames(frames)
    if scale_size is not None:
        frames = resize_frames(frames, int(scale_size[0]), int(scale_size[1]))
    top, left, ch, cw = multiscale_crop_params(frames.shape[1], frames.shape[2], size, rng, scales)
    crop = frames[:, top : top + ch, left : left + cw]
    if flip and rng.random() < 0.5:
        crop = crop[:, :, ::-1]
    crop = np.ascontiguousarray(crop)
    return normalize_frames(resize_frames(crop, size, size))
