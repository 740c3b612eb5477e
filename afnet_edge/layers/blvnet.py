"""The Temporal Aggregation Module of bLVNet-TAM (``shared/spec/blvnet-tam.md`` §4), with the two forwards the model's
stages use (the blocks built on the shared bottleneck live in ``models/blvnet_tam.py``):

* ``official``: the release's op sequence (duplicated pair slots, index gathers, zero fill + index_put, the TAM as
  per-tap convs + pad/slice/stack/sum) — the semantics everything else is tested against;
* ``pair``: the pair-aware layout of §4.3 — stage tensors hold one feature per pair ``(B·P, C, H, W)``, the stage TAM
  writes both branch inputs from one read (:func:`temporal_aggregate_pair`), the merge is :func:`bl_merge` (both
  through the switch :mod:`afnet_edge.kernels.blvnet_ops`: the compiled kernels when built, else the reference).

Parameter names follow the release (``tam.prev/curr/next.weight`` or ``tam.blending_layers.<i>.weight``; ``big``,
``little``, ``little_e``, ``fusion``), so state-dict keys are the official ones.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, cast

import torch
import torch.nn as nn

from ..kernels.blvnet_ops import impl_active, temporal_aggregate, temporal_aggregate_pair
from ..kernels.blvnet_reference import fold_pair_weights, tam_official, temporal_conv


class TapWeight(nn.Module):
    """One TAM tap: a per-channel weight ``(C, 1, 1, 1)`` (the release's depthwise 1×1 ``Conv2d`` without bias,
    stored under ``<tap>.weight``). Not an ``nn.Conv2d`` so that no path runs it as a module; both paths read it."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, 1, 1))
        # The release's Kaiming-normal (fan_out = C, ReLU gain): std √(2/C) — TAM does not start as the identity.
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / channels))


def _taps_of(kernel: torch.Tensor) -> torch.Tensor:
    """A depthwise temporal kernel ``(C, 1, K, 1)`` (:meth:`TAM.conv_kernels`) as the fused op's ``(K, C)`` weight
    (of a constant kernel: a constant in a traced graph)."""
    return kernel.reshape(kernel.shape[0], kernel.shape[2]).t().contiguous()


class TAM(nn.Module):
    """Temporal Aggregation Module (spec §4.1): ``out_t = ReLU(Σ_i w_i ⊙ x_{t+i−r})``, K = ``blending_frames`` taps
    (odd), zero padding in time. K = 3 stores ``prev``, ``curr``, ``next``; other K ``blending_layers.<i>``."""

    def __init__(self, channels: int, blending_frames: int = 3):
        super().__init__()
        if isinstance(blending_frames, bool) or not isinstance(blending_frames, int) or blending_frames < 1 \
                or blending_frames % 2 == 0:
            raise ValueError(f"blending_frames must be an odd positive int, got {blending_frames!r}")
        self.channels = channels
        self.blending_frames = blending_frames
        #: constant depthwise kernels (frames, big, little) while :meth:`constant_kernels` is active, else None
        self._constant: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if blending_frames == 3:
            self.prev, self.curr, self.next = TapWeight(channels), TapWeight(channels), TapWeight(channels)
        else:
            self.blending_layers = nn.ModuleList([TapWeight(channels) for _ in range(blending_frames)])

    def taps(self) -> list[torch.Tensor]:
        """The K tap weights ``(C, 1, 1, 1)`` in offset order −r…r."""
        if self.blending_frames == 3:
            return [self.prev.weight, self.curr.weight, self.next.weight]
        return [cast(TapWeight, m).weight for m in self.blending_layers]

    def weight(self) -> torch.Tensor:
        """The taps as one ``(K, C)`` tensor (the fused op's weight)."""
        return torch.stack([t.reshape(-1) for t in self.taps()])

    def conv_kernels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The TAM as depthwise temporal-convolution kernels (detached copies, for :meth:`constant_kernels`):
        ``frames`` ``(C, 1, K, 1)`` over the frames of a clip, and ``big`` / ``little`` ``(C, 1, K_p, 1)`` over the
        pair features (the folded weights of spec §4.3, :func:`fold_pair_weights`)."""
        with torch.no_grad():
            w = self.weight().detach().float()
            big, little = fold_pair_weights(w)

            def kernel(t: torch.Tensor) -> torch.Tensor:         # (K, C) → (C, 1, K, 1)
                return t.t().reshape(self.channels, 1, t.shape[0], 1).clone()
            return kernel(w), kernel(big), kernel(little)

    @contextlib.contextmanager
    def constant_kernels(self, kernels: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> Iterator[None]:
        """Within the block, run the TAM as :func:`temporal_conv` on ``kernels`` (from :meth:`conv_kernels`), tensors
        that are not parameters: a tracer records them as constants of known shape (ONNX export: a Conv's kernel
        must have a static shape; the taps would be traced as a computation)."""
        saved, self._constant = self._constant, kernels
        try:
            yield
        finally:
            self._constant = saved

    def forward(self, x: torch.Tensor, num_frames: int, official: bool = False) -> torch.Tensor:
        """``x`` ``(B·T, C, H, W)`` → same shape; ``official`` selects the release's op sequence."""
        if official:
            return tam_official(x, self.taps(), num_frames)
        if self._constant is not None:
            if impl_active():                # the export's plugin flavour: one TemporalAggregate node
                return temporal_aggregate(x, _taps_of(self._constant[0]), num_frames)
            return temporal_conv(x, [self._constant[0]], num_frames)[0]
        return temporal_aggregate(x, self.weight(), num_frames)

    def pair(self, y: torch.Tensor, num_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair features ``(B·P, C, H, W)`` → (big input, little input), each ``(B·P, C, H, W)`` (spec §4.3)."""
        if self._constant is not None and impl_active():    # plugin flavour: one TemporalAggregatePair node
            return temporal_aggregate_pair(y, _taps_of(self._constant[1]), _taps_of(self._constant[2]), num_pairs)
        if self._constant is not None:       # two depthwise convs on one view of y: no rank-5 split of the outputs
            big, little = temporal_conv(y, [self._constant[1], self._constant[2]], num_pairs)
            return big, little
        w_big, w_little = fold_pair_weights(self.weight())
        return temporal_aggregate_pair(y, w_big, w_little, num_pairs)
