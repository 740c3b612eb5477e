"""The Python face of afnet_edge's fused ops, and the one place that chooses their implementation.

``ops(backend)`` returns a namespace with ``focal_gather``, ``focal_scatter``, ``ample_fuse_pool``,
``ample_fuse_blend``, ``select_frames``, ``gather_conv1x1`` and ``conv1x1_scatter`` (signatures and semantics:
:mod:`afnet_edge.kernels.reference`; :class:`LazyChain` is the ``chain=`` argument of the lazy compact plan):

* ``"torch"`` — the pure-PyTorch reference (always available, export-friendly);
* ``"ext"``   — the compiled ``afnet_edge._C`` operators (error if the extension is not built);
* ``"auto"``  — the extension when it is built, the reference otherwise.

Both namespaces take the same optional keywords beyond the reference signatures (docs/kernels.md):
``validate=True`` (check index values: in range; sorted and unique for ``focal_scatter`` — one host sync on CUDA,
skipped while tracing; pass ``validate=False`` for indices from ``select_frames``), ``out=`` (preallocated result,
no autograd) and, for ``focal_scatter``, ``inplace=True`` (write into ``residual``).

Every implementation satisfies the :class:`FusedOps` protocol (:mod:`.seam`). A forward pass takes its
implementation from :func:`use_ops` when one is set in the current context (export flavours, a profiler's wrapper),
else from the model's ``kernels`` configuration through :func:`ops`::

    with afnet_edge.kernels.use_ops(afnet_edge.kernels.ops("torch")):
        out = model(clip)          # every fused-op call of this forward goes to the given implementation
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

import torch

from . import torch_ops
from .reference import LazyChain
from .seam import OP_NAMES, FusedOps, SelectResult, check_ops, make_ops, signature_mismatches, wrap_ops

__all__ = ["BACKENDS", "OP_NAMES", "FusedOps", "LazyChain", "SelectResult", "check_ops", "current_ops", "extension_available", "make_ops", "ops",
           "resolve_ops", "signature_mismatches", "use_ops", "wrap_ops"]

BACKENDS = ("auto", "torch", "ext")


_TORCH = torch_ops.OPS


def extension_available() -> bool:
    """True when the compiled extension ``afnet_edge._C`` can be imported."""
    try:
        from . import ext  # noqa: F401
    except ImportError:
        return False
    return ext.AVAILABLE


def ops(backend: str = "auto") -> FusedOps:
    """The op implementation for ``backend`` in ``("auto", "torch", "ext")``."""
    if backend not in BACKENDS:
        raise ValueError(f"kernels must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return _TORCH
    if extension_available():
        from . import ext
        return ext.OPS
    if backend == "ext":
        raise RuntimeError("kernels='ext' requested but the extension afnet_edge._C is not built; "
                           "build it with `pip install --no-build-isolation -e .` or use kernels='torch'")
    return _TORCH


# ------------------------------------------------------------------------------------------- choice by context
_CURRENT: contextvars.ContextVar[FusedOps | None] = contextvars.ContextVar("afnet_edge_fused_ops", default=None)
# torch.compile (dynamo) cannot read a ContextVar without breaking the graph; while it traces, current_ops() reads this
# module global instead, which use_ops keeps equal to the innermost active implementation and which dynamo guards on
# (a change recompiles). It follows the latest use_ops of any thread: compiled forwards in several threads with
# different use_ops blocks at once are not supported.
_TRACED: FusedOps | None = None


@contextmanager
def use_ops(impl: FusedOps | str) -> Iterator[FusedOps]:
    """Within the ``with`` block (this thread / task only), model forwards call the fused ops of ``impl`` — a
    :class:`FusedOps` implementation, or a backend name for :func:`ops` — instead of the model's ``kernels``
    configuration. Nests: leaving a block restores the implementation that was set before it (or none).
    Yields the implementation. TypeError if ``impl`` lacks an op or a ``name``."""
    global _TRACED
    impl = ops(impl) if isinstance(impl, str) else check_ops(impl)
    token = _CURRENT.set(impl)
    before, _TRACED = _TRACED, impl
    try:
        yield impl
    finally:
        _CURRENT.reset(token)
        _TRACED = before


def current_ops() -> FusedOps | None:
    """The implementation set by the innermost active :func:`use_ops`, or None."""
    if torch.compiler.is_compiling():
        return _TRACED
    return _CURRENT.get()


def resolve_ops(backend: str = "auto") -> FusedOps:
    """What a forward pass uses: :func:`current_ops` when set, else :func:`ops` of ``backend``."""
    impl = current_ops()
    return ops(backend) if impl is None else impl
