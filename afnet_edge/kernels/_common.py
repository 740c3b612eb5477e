"""Helpers shared by the implementations of :mod:`afnet_edge.kernels`: index-value validation (``validate=``) and the
``out=`` argument, so that ``ops("torch")`` and ``ops("ext")`` accept the same keywords."""
from __future__ import annotations

import torch


def tracing(t: torch.Tensor) -> bool:
    """True while a tracer runs (torch.compile, torch.export, jit tracing, fake or meta tensors): values unknown."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or t.device.type == "meta":
        return True
    from torch._subclasses.fake_tensor import is_fake
    return is_fake(t)


def check_index_tensor(index: torch.Tensor, like: torch.Tensor | None = None) -> None:
    """``index`` must be an int64 ``(K,)`` tensor (on ``like``'s device when given); no value checks, no sync."""
    if not isinstance(index, torch.Tensor):
        raise TypeError(f"index must be a torch.Tensor, got {type(index).__name__}")
    if index.dtype != torch.int64:
        raise TypeError(f"index must be int64, got {index.dtype}")
    if index.dim() != 1:
        raise ValueError(f"index must be 1-D (K,), got shape {tuple(index.shape)}")
    if like is not None and index.device != like.device:
        raise ValueError(f"index must be on the device of x ({like.device}), got {index.device}")


def validate_index(index: torch.Tensor, n: int, sorted_unique: bool) -> None:
    """Checks index values: in [0, n), and strictly increasing when ``sorted_unique``. One host sync on CUDA."""
    check_index_tensor(index)
    if index.numel() == 0 or tracing(index):
        return
    ok = ((index >= 0) & (index < n)).all()
    if sorted_unique and index.numel() > 1:
        ok = ok & (index[1:] > index[:-1]).all()
    if bool(ok):
        return
    bad = index[(index < 0) | (index >= n)]
    if bad.numel():
        raise ValueError(f"index values must be in [0, {n}), got {bad[:8].tolist()}")
    raise ValueError("index must be sorted ascending and unique (frame rows of the selected frames), got "
                     f"{index[:16].tolist()}{' ...' if index.numel() > 16 else ''}")


def check_scatter_keywords(residual: torch.Tensor, index: torch.Tensor, validate: bool, inplace: bool,
                           out: torch.Tensor | None) -> None:
    """The keyword checks of every ``focal_scatter``: index values when ``validate``; not both ``inplace`` and ``out``."""
    if validate:
        validate_index(index, residual.shape[0], sorted_unique=True)
    if inplace and out is not None:
        raise ValueError("focal_scatter: pass either inplace=True or out=, not both")


def needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def no_grad_for_out(*tensors) -> None:
    if needs_grad(*tensors):
        raise ValueError("out= does not support autograd; call without out= (or under torch.no_grad())")


def check_out(out: torch.Tensor, like: torch.Tensor) -> None:
    """`out=` must match the result exactly (shape, dtype, device) and be contiguous (C++: ops_impl.h output())."""
    if tuple(out.shape) != tuple(like.shape):
        raise ValueError(f"out must have shape {tuple(like.shape)}, got {tuple(out.shape)}")
    if out.dtype != like.dtype:
        raise TypeError(f"out must be {like.dtype}, got {out.dtype}")
    if out.device != like.device:
        raise ValueError(f"out must be on {like.device}, got {out.device}")
    if not out.is_contiguous():
        raise ValueError("out must be contiguous")


def to_out(res: torch.Tensor, out: torch.Tensor | None, *inputs) -> torch.Tensor:
    """Reference-fallback path of the out= argument."""
    if out is None:
        return res
    no_grad_for_out(*inputs)
    check_out(out, res)
    return out.copy_(res)


def select_out(res: tuple, out: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``select_frames``' ``out=`` through the reference path: copies ``res`` into the ``(index, counts, mask)``
    triple ``out`` (each checked like :func:`to_out`) and returns it."""
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError("out must be a preallocated (index, counts, mask) triple of tensors")
    index, counts, mask = (to_out(r, o) for r, o in zip(res, out))
    return index, counts, mask
