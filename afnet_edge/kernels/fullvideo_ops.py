"""The switch for full-video clustering's export flavours (spec full-video-clustering.md §11.3).

The clustering ops themselves (``binarize_pack``, ``adjacent_hamming``, ``segment_boundaries``, ``segment_mean``) are
in :mod:`.ext` (kernels with the reference as fallback). This module only carries what an exporter installs for the
``plugin`` flavour: inside ``with use_cluster(impl)`` (this thread / task only), :class:`~afnet_edge.models.fullvideo
.ExportForward` routes the whole clustering step of the traced forward through ``impl(feats, k, rule,
frame_offsets) -> (means (B·K, ...), offsets (B, K+1) int64)`` — for ``afnet_edge.export.ops.plugin_segment_cluster``
one ``SegmentCluster`` node — instead of the standard-operator slope graph (``portable``, the default: None).
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

__all__ = ["use_cluster", "cluster_impl"]

_IMPL: contextvars.ContextVar[Any] = contextvars.ContextVar("afnet_edge_fullvideo_cluster_impl", default=None)


@contextmanager
def use_cluster(impl: Callable | None) -> Iterator[None]:
    """Within the ``with`` block, :func:`cluster_impl` returns ``impl`` (None: the portable graph). Nests; leaving
    restores the previous one. TypeError if ``impl`` is neither None nor callable."""
    if impl is not None and not callable(impl):
        raise TypeError(f"impl must be None or a callable (feats, k, rule, frame_offsets) -> (means, offsets), got "
                        f"{type(impl).__name__}")
    token = _IMPL.set(impl)
    try:
        yield
    finally:
        _IMPL.reset(token)


def cluster_impl() -> Callable | None:
    """The clustering step installed by :func:`use_cluster` (None outside one, and under torch.compile)."""
    return None if torch.compiler.is_compiling() else _IMPL.get()  # dynamo cannot read a ContextVar
