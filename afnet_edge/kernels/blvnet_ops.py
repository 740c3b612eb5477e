"""The switch through which bLVNet-TAM's layers call their three fused-op-shaped functions (issue 13).

:func:`temporal_aggregate`, :func:`temporal_aggregate_pair` and :func:`bl_merge` run the compiled kernels of
``afnet_edge._C`` (through :mod:`.ext`'s entry points, which fall back to the reference on a device without kernels;
the ops have autograd formulas, so training runs them too) when the extension has them, else
:mod:`.blvnet_reference`. The reference also
runs while a TorchScript tracer or an ONNX export is active (the exported graph must hold standard ops), or after
``use_kernels(False)``. Same arguments and shapes as the reference; results equal within the kernels' documented
tolerance (bl_merge bit-identical; TAM ≤ 1e-5 relative in float32, ≤ 1 ulp + float accumulation error in 16-bit).

Inside ``with use_impl(impl)`` the three calls go to ``impl.temporal_aggregate`` / ``impl.temporal_aggregate_pair`` /
``impl.bl_merge`` instead (same arguments and results): the ONNX exporter's ``plugin`` flavour installs there the
markers that emit one ``TemporalAggregate`` / ``TemporalAggregatePair`` / ``BLMerge`` node each
(:mod:`afnet_edge.export.ops`), so the model need not know about export (:func:`impl_active` tells the TAM to take
that route instead of its constant-kernel convolutions).
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from . import blvnet_reference as _ref

try:
    from . import ext as _ext
except ImportError:  # pragma: no cover - ext handles a missing _C itself; this guards a broken package only
    _ext = None  # type: ignore[assignment]

__all__ = ["temporal_aggregate", "temporal_aggregate_pair", "bl_merge", "use_kernels", "kernels_enabled", "use_impl",
           "impl_active"]

_ENABLED = True
_IMPL: contextvars.ContextVar[Any] = contextvars.ContextVar("afnet_edge_blvnet_impl", default=None)
_IMPL_FUNCS = ("temporal_aggregate", "temporal_aggregate_pair", "bl_merge")


@contextmanager
def use_impl(impl: Any) -> Iterator[None]:
    """Within the ``with`` block (this thread / task only), the three functions call ``impl``'s namesakes (None:
    the usual switch). Nests; leaving restores the previous one. TypeError if ``impl`` lacks one of them."""
    if impl is not None and not all(callable(getattr(impl, f, None)) for f in _IMPL_FUNCS):
        raise TypeError(f"impl must be None or provide callables {', '.join(_IMPL_FUNCS)}, got {type(impl).__name__}")
    token = _IMPL.set(impl)
    try:
        yield
    finally:
        _IMPL.reset(token)


def _impl() -> Any:
    return None if torch.compiler.is_compiling() else _IMPL.get()  # dynamo cannot read a ContextVar


def impl_active() -> bool:
    """True inside a :func:`use_impl` block with an implementation installed."""
    return _impl() is not None


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
    impl = _impl()
    if impl is not None:
        return impl.temporal_aggregate(x, weight, num_frames, relu)
    if kernels_enabled(x):
        return _ext.temporal_aggregate(x, weight, num_frames, relu)
    return _ref.temporal_aggregate(x, weight, num_frames, relu)


def temporal_aggregate_pair(y: torch.Tensor, w_big: torch.Tensor, w_little: torch.Tensor, num_pairs: int,
                            relu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage TAM on pair features ``(B·P, C, H, W)`` → (big_in, little_in): the reference's
    :func:`.blvnet_reference.temporal_aggregate_pair`."""
    impl = _impl()
    if impl is not None:
        return impl.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)
    if kernels_enabled(y):
        return _ext.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)
    return _ref.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)


def bl_merge(big: torch.Tensor, little: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """``ReLU(nearest_up(big) + little)``, ``(N, C, h, w)``, ``(N, C, H, W)`` → ``(N, C, H, W)``:
    :func:`.blvnet_reference.bl_merge`."""
    impl = _impl()
    if impl is not None:
        return impl.bl_merge(big, little, relu)
    if kernels_enabled(little):
        return _ext.bl_merge(big, little, relu)
    return _ref.bl_merge(big, little, relu)
