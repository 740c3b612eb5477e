"""The Python face of afnet_edge's fused ops, and the one place that chooses their implementation.

``ops(backend)`` returns a namespace with ``focal_gather``, ``focal_scatter``, ``ample_fuse_pool``,
``ample_fuse_blend`` and ``select_frames`` (signatures and semantics: :mod:`afnet_edge.kernels.reference`):

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

from . import reference
from ._common import needs_grad, to_out, validate_index
from .seam import OP_NAMES, FusedOps, SelectResult, check_ops, make_ops, signature_mismatches, wrap_ops

__all__ = ["BACKENDS", "OP_NAMES", "FusedOps", "SelectResult", "check_ops", "current_ops", "extension_available", "make_ops", "ops",
           "resolve_ops", "signature_mismatches", "use_ops", "wrap_ops"]

BACKENDS = ("auto", "torch", "ext")


# The reference ops with the extension's keywords.
def _focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *, validate: bool = True,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    if validate:
        validate_index(index, x.shape[0], sorted_unique=False)
    return to_out(reference.focal_gather(x, index, num_frames, shift), out, x)


def _focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const: torch.Tensor | None,
                   relu: bool, *, validate: bool = True, inplace: bool = False,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    if validate:
        validate_index(index, residual.shape[0], sorted_unique=True)
    if inplace and out is not None:
        raise ValueError("focal_scatter: pass either inplace=True or out=, not both")
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


def _ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    if _exact_factors(xl, xb) is not None and not needs_grad(xl, xb):
        # Replication by whole factors: mean(up(xl)) = mean(xl); no full-resolution temporary.
        return to_out(xl.mean(dim=(2, 3)) + xb.mean(dim=(2, 3)), out, xl, xb)
    return to_out(reference.ample_fuse_pool(xl, xb), out, xl, xb)


def _ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                      out: torch.Tensor | None = None) -> torch.Tensor:
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


def _select_frames(logits: torch.Tensor, mode: str, k: int = 0, *,
                   out: SelectResult | None = None) -> SelectResult:
    res = reference.select_frames(logits, mode, k)
    return res if out is None else tuple(to_out(r, o) for r, o in zip(res, out))


_TORCH = make_ops("torch", focal_gather=_focal_gather, focal_scatter=_focal_scatter,
                  ample_fuse_pool=_ample_fuse_pool, ample_fuse_blend=_ample_fuse_blend, select_frames=_select_frames)


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
