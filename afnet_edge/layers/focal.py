"""Focal blocks: the expensive full-resolution branch, with a masked and a compact execution (spec §2.2, §3, §8).

A focal block computes ``out = φ(body(mask · shift(x)) + residual(x))``. ``masked`` execution does exactly that on
every frame (the official semantics). ``compact`` execution runs ``body`` only on the selected frames, gathered into a
compact batch with the TSM shift fused, and gives every unselected frame ``φ(K + residual(x))`` where ``K`` is the
input-independent map an all-zero body input produces (no conv biases, BN in eval mode). ``K`` is computed once per
input size and cached; the cache key contains every parameter's and buffer's storage and in-place version counter,
so ``load_state_dict``, optimiser steps and BN statistic updates invalidate it without any bookkeeping, and
``train()`` clears it.

The ``lazy`` and ``fused`` compact plans (issue 16, driven by :func:`afnet_edge.layers.af_stage.run_af_stage`) call
:meth:`FocalBlock.forward_lazy`: the unselected frames' map ``φ(K + v)`` is left pending in a
:class:`~afnet_edge.kernels.reference.LazyChain` instead of being applied, and only the selected rows of the stage
tensor are written. A block type with a fused form (gather fused into its first 1×1 convolution, scatter into its
last) implements :meth:`FocalBlock.forward_fused`; the others run the lazy form.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.reference import LazyChain, fold_bn, temporal_shift


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

    @property
    def identity_residual(self) -> bool:
        """True when ``residual(x)`` is ``x`` (the lazy plan keeps such a block's unselected frames pending; a
        block with a residual convolution inside a stage makes the stage materialise its tensor first)."""
        return False

    def forward_lazy(self, src: torch.Tensor, stage: torch.Tensor, index: torch.Tensor, ops,
                     src_chain: LazyChain | None, chain: LazyChain, fused: bool = False) -> torch.Tensor:
        """Compact execution under lazy constant chains (plans ``lazy`` and ``fused``).

        ``src`` ``(N, C_in, H, W)``: what the body's gather reads (the stage input for a stage's first block, with
        ``src_chain=None``; else the stage tensor with ``src_chain`` = ``chain``); ``stage`` ``(N, C, H, W)``: the
        stage tensor holding the residual of this block (stored rows; ``chain`` says what is pending, ``chain.upto``
        is this block's position). Selected rows f = ``index[k]`` become ``φ(logical(stage)[f] + body(...)[k])`` in
        place; the other rows are left as stored (this block's map stays pending). Returns the stage tensor (the
        same one unless an implementation declined ``inplace``). The caller then sets ``start[index] = upto + 1``.
        ``fused``: use :meth:`forward_fused` where this block type has it.
        """
        if fused:
            res = self.forward_fused(src, stage, index, ops, src_chain, chain)
            if res is not None:
                return res
        if index.shape[0] == 0 and not torch.compiler.is_compiling():
            y = stage.new_empty((0,) + tuple(stage.shape[1:]))
        else:
            y = self.body(ops.focal_gather(src, index, self.num_frames, self.shift, chain=src_chain, validate=False))
        return ops.focal_scatter(stage, y, index, None, self.last_relu, chain=chain, validate=False, inplace=True)

    def forward_fused(self, src: torch.Tensor, stage: torch.Tensor, index: torch.Tensor, ops,
                      src_chain: LazyChain | None, chain: LazyChain) -> torch.Tensor | None:
        """:meth:`forward_lazy` with the gather fused into the body's first 1×1 convolution and the scatter into
        its last (``ops.gather_conv1x1`` / ``ops.conv1x1_scatter``, BN folded: not bit-exact), or None when this
        block type has no fused form (the caller then runs the lazy form)."""
        return None

    def _cached(self, key: tuple, make):
        """``make()`` cached under ``key`` with the constant maps' invalidation (weights, BN statistics, train())."""
        tracing = torch.compiler.is_compiling() or torch.jit.is_tracing()
        hit = self._const_cache.get(key)
        if hit is not None and (tracing or hit[0] == self._state_key()):
            return hit[1]
        with torch.no_grad():
            val = make()
        if not tracing:
            self._const_cache[key] = (self._state_key(), val)
        return val

    def folded_bn(self, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        """``fold_bn(bn)``: float32 ``(scale, bias)`` ``(C,)`` of one of this block's BatchNorms (eval mode),
        cached like the constant maps."""
        if self.training:
            raise RuntimeError("folded BN is defined for eval-mode BN only; call model.eval() first")
        return self._cached(("fold_bn", id(bn), str(bn.weight.device)), lambda: fold_bn(bn))

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
