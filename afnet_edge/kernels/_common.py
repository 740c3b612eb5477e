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


# ------------------------------------------------------------------------------------------- lazy chains (issue 16)
def check_chain(chain, like: torch.Tensor, name: str = "x", validate: bool = False) -> None:
    """``chain`` must be None or a :class:`~afnet_edge.kernels.reference.LazyChain` that fits the stage tensor
    ``like`` ``(N, C, H, W)`` (argument ``name``): ``start`` int32 ``(N,)`` on ``like``'s device, ``consts``
    ``(L, C, H, W)`` of ``like``'s dtype and device, ``relu_mask`` an int ≥ 0, ``upto`` an int in ``[0, L]``.
    ``validate`` also checks the ``start`` values (in ``[0, L]``; one host sync on CUDA, skipped while tracing)."""
    if chain is None:
        return
    from .reference import LazyChain
    if not isinstance(chain, LazyChain):
        raise TypeError(f"chain must be a LazyChain(start, consts, relu_mask, upto) or None, got {type(chain).__name__}")
    start, consts, relu_mask, upto = chain
    if not isinstance(start, torch.Tensor) or start.dtype != torch.int32:
        got: object = start.dtype if isinstance(start, torch.Tensor) else type(start).__name__
        raise TypeError(f"chain.start must be an int32 tensor (N,), got {got}")
    if start.dim() != 1 or start.shape[0] != like.shape[0]:
        raise ValueError(f"chain.start must be (N,) = ({like.shape[0]},) (one entry per frame of {name}), got "
                         f"{tuple(start.shape)}")
    if start.device != like.device:
        raise ValueError(f"chain.start must be on the device of {name} ({like.device}), got {start.device}")
    if not isinstance(consts, torch.Tensor) or consts.dim() != 4 or tuple(consts.shape[1:]) != tuple(like.shape[1:]):
        got = tuple(consts.shape) if isinstance(consts, torch.Tensor) else type(consts).__name__
        raise ValueError(f"chain.consts must be (L, C, H, W) with (C, H, W) = {tuple(like.shape[1:])} of {name}, "
                         f"got {got}")
    if consts.dtype != like.dtype:
        raise TypeError(f"chain.consts must have the dtype of {name} ({like.dtype}), got {consts.dtype}")
    if consts.device != like.device:
        raise ValueError(f"chain.consts must be on the device of {name} ({like.device}), got {consts.device}")
    if isinstance(relu_mask, bool) or not isinstance(relu_mask, int) or relu_mask < 0:
        raise TypeError(f"chain.relu_mask must be an int >= 0 (bit i: block i applies ReLU), got {relu_mask!r}")
    L = consts.shape[0]
    if isinstance(upto, bool) or not isinstance(upto, int) or not 0 <= upto <= L:
        raise ValueError(f"chain.upto must be an int in [0, L={L}], got {upto!r}")
    if validate and start.numel() and not tracing(start):
        if not bool(((start >= 0) & (start <= L)).all()):
            bad = start[(start < 0) | (start > L)]
            raise ValueError(f"chain.start values must be in [0, L={L}], got {bad[:8].tolist()}")


def check_conv1x1(op: str, x: torch.Tensor, xname: str, weight: torch.Tensor, groups: int, scale: torch.Tensor,
                  bias: torch.Tensor) -> int:
    """Arguments of a fused 1×1 convolution reading ``x`` ``(M, C, H, W)`` (argument ``xname``): ``weight``
    ``(O, C/groups)`` or ``(O, C/groups, 1, 1)`` of ``x``'s dtype and device, ``groups`` dividing C and O,
    ``scale``/``bias`` float32 ``(O,)`` on the device. Returns O."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{op}: {xname} must be (M, C, H, W), got {got}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise TypeError(f"{op}: {xname} must be float32, float16, bfloat16 or float64, got {x.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    c = x.shape[1]
    if not isinstance(weight, torch.Tensor) or weight.dim() not in (2, 4) or (
            weight.dim() == 4 and tuple(weight.shape[2:]) != (1, 1)):
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"{op}: weight must be (O, C/groups) or (O, C/groups, 1, 1), got {got}")
    o = weight.shape[0]
    if c % groups or o % groups or weight.shape[1] * groups != c:
        raise ValueError(f"{op}: weight {tuple(weight.shape)} does not fit {xname} with C = {c} channels and "
                         f"groups = {groups} (expected (O, {c // groups if c % groups == 0 else 'C/groups'}), "
                         f"O and C divisible by groups)")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight must have the dtype of {xname} ({x.dtype}), got {weight.dtype}")
    if weight.device != x.device:
        raise ValueError(f"{op}: weight must be on the device of {xname} ({x.device}), got {weight.device}")
    for t, n in ((scale, "scale"), (bias, "bias")):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.shape[0] != o:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{op}: {n} must be float32 (O,) = ({o},), got {got}")
        if t.dtype != torch.float32:
            raise TypeError(f"{op}: {n} must be float32 (folded BN), got {t.dtype}")
        if t.device != x.device:
            raise ValueError(f"{op}: {n} must be on the device of {xname} ({x.device}), got {t.device}")
    return o
