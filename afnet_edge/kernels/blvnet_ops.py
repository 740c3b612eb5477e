"""The switch through which bLVNet-TAM's layers call their three fused-op-shaped functions (issue 13).

:func:`temporal_aggregate`, :func:`temporal_aggregate_pair` and :func:`bl_merge` run the compiled kernels of
``afnet_edge._C`` (through :mod:`.ext`'s entry points, which themselves fall back to the reference on a device without
kernels and when autograd is needed) when the extension has them, else :mod:`.blvnet_reference`. The reference also
runs while a TorchScript tracer or an ONNX export is active (the exported graph must hold standard ops), or after
``use_kernels(False)``. Same arguments and shapes as the reference; results equal within the kernels' documented
tolerance (bl_merge bit-identical; TAM ≤ 1e-5 relative in float32, ≤ 1 ulp + float accumulation error in 16-bit).
"""
from __future__ import annotations

import torch

from . import blvnet_reference as _ref

try:
    from . import ext as _ext
except ImportError:  # pragma: no cover - ext handles a missing _C itself; this guards a broken package only
    _ext = None  # type: ignore[assignment]

__all__ = ["temporal_aggregate", "temporal_aggregate_pair", "bl_merge", "use_kernels", "kernels_enabled"]

_ENABLED = True


def use_kernels(enabled: bool) -> None:
    """Allow (True, the default) or forbid (False: always the reference) the compiled kernels."""
    global _ENABLED
    _ENABLED = bool(enabled)


def kernels_enabled(t: torch.Tensor | None = None) -> bool:
    """True when a call on ``t`` (any device if None) may run the compiled kernels."""
    if not _ENABLED or _ext is None or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    return _ext.has_blvnet_kernels(t.device) if t is not None else _ext.has_blvnet_kernels("cpu")


def temporal_aggregate(x: torch.Tensor, weight: torch.Tensor, num_frames: int, relu: bool = True) -> torch.Tensor:
    """TAM, ``(B·T, C, H, W)`` → same: :func:`.blvnet_reference.temporal_aggregate`."""
    if kernels_enabled(x):
        return _ext.temporal_aggregate(x, weight, num_frames, relu)
    return _ref.temporal_aggregate(x, weight, num_frames, relu)


def temporal_aggregate_pair(y: torch.Tensor, w_big: torch.Tensor, w_little: torch.Tensor, num_pairs: int,
                            relu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage TAM on pair features ``(B·P, C, H, W)`` → (big_in, little_in): the reference's
    :func:`.blvnet_reference.temporal_aggregate_pair`."""
    if kernels_enabled(y):
        return _ext.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)
    return _ref.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)


def bl_merge(big: torch.Tensor, little: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """``ReLU(nearest_up(big) + little)``, ``(N, C, h, w)``, ``(N, C, H, W)`` → ``(N, C, H, W)``:
    :func:`.blvnet_reference.bl_merge`."""
    if kernels_enabled(little):
        return _ext.bl_merge(big, little, relu)
    return _ref.bl_merge(big, little, relu)
