"""Focal blocks: the expensive full-resolution branch, with a masked and a compact execution (spec §2.2, §3, §8).

A focal block computes ``out = φ(body(mask · shift(x)) + residual(x))``. ``masked`` execution does exactly that on
every frame (the official semantics). ``compact`` execution runs ``body`` only on the selected frames, gathered into a
compact batch with the TSM shift fused, and gives every unselected frame ``φ(K + residual(x))`` where ``K`` is the
input-independent map an all-zero body input produces (no conv biases, BN in eval mode). ``K`` is computed once per
input size and cached; the cache key contains every parameter's and buffer's storage and in-place version counter,
so ``load_state_dict``, optimiser steps and BN statistic updates invalidate it without any bookkeeping, and
``train()`` clears it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.reference import temporal_shift


class FocalBlock(nn.Module):
    """Base class. Subclasses set ``self.shift``, ``self.num_frames``, ``self.last_relu`` and implement
    ``residual(x)`` (from the raw, unshifted, unmasked input) and ``body(z)`` (stride 1, no conv biases)."""

    shift: bool
    num_frames: int
    last_relu: bool

    def _init_cache(self) -> None:
        self._const_cache: dict = {}

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def body(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        return F.relu(out) if self.last_relu else out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked (official) execution on ``x`` ``(N, C, H, W)`` with a per-frame 0/1 ``mask`` ``(N,)``."""
        r = self.residual(x)
        z = temporal_shift(x, self.num_frames) if self.shift else x
        if mask is not None:
            z = z * mask.to(z.dtype).view(-1, 1, 1, 1)
        return self._finish(self.body(z) + r)

    def forward_compact(self, x: torch.Tensor, index: torch.Tensor, ops, inplace: bool = False) -> torch.Tensor:
        """Compact execution: ``body`` only on frames ``index`` (int64 ``(K,)``, sorted, unique — as
        ``select_frames`` produces them, so the ops skip their index validation and its device sync).

        ``inplace`` lets the scatter write into the residual buffer; only valid when the caller no longer needs
        ``x`` (the residual may be ``x`` itself).
        """
        r = self.residual(x)
        const = self.constant_map(x.shape[-2], x.shape[-1], x.dtype, x.device)
        if index.shape[0] == 0 and not torch.compiler.is_compiling():
            y = r.new_empty((0,) + tuple(r.shape[1:]))
        else:
            y = self.body(ops.focal_gather(x, index, self.num_frames, self.shift, validate=False))
        return ops.focal_scatter(r, y, index, const, self.last_relu, validate=False, inplace=inplace)

    def _state_key(self) -> tuple:
        return tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))

    @torch.no_grad()
    def constant_map(self, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The ``(C_out, H, W)`` body output for an all-zero input (cached per size, dtype, device and weights)."""
        if self.training:
            raise RuntimeError("constant maps are defined for eval-mode BN only; call model.eval() first")
        tracing = torch.compiler.is_compiling() or torch.jit.is_tracing()
        key = (h, w, dtype, str(device))
        hit = self._const_cache.get(key)
        if hit is not None and (tracing or hit[0] == self._state_key()):
            return hit[1]
        cin = self._body_in_channels()
        k = self.body(torch.zeros(1, cin, h, w, dtype=dtype, device=device))[0]
        if not tracing:
            self._const_cache[key] = (self._state_key(), k)
        return k

    def _body_in_channels(self) -> int:
        raise NotImplementedError

    def train(self, mode: bool = True):
        self._const_cache.clear()
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        self._const_cache.clear()
        return super()._apply(fn, recurse)
