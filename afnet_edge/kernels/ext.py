"""The compiled ops ``torch.ops.afnet_edge.*`` (extension ``afnet_edge._C``): Python entry points, fake kernels
(for torch.compile / torch.export) and autograd formulas, one block per op. Semantics: :mod:`.reference`.

``AVAILABLE`` says whether ``afnet_edge._C`` was imported and its operators registered; ``OPS`` is the namespace
``afnet_edge.kernels.ops("ext")`` returns. On a device for which the extension has no kernels (e.g. CUDA tensors with a
CPU-only build) the entry points fall back to the ``"torch"`` implementation (:mod:`.torch_ops`), so ``ops("auto")``
always works.

Validation policy (docs/kernels.md):

* Shapes, dtypes, devices are checked by every implementation (C++ and fake kernels): ``ValueError`` / ``TypeError``.
* Index *values* are checked by the Python entry points when ``validate=True`` (the default): in range for
  ``focal_gather`` (any order, duplicates allowed), in range + strictly increasing for ``focal_scatter``. This costs
  one device→host sync on CUDA, so the model passes ``validate=False`` for indices that come from
  ``select_frames``. It is skipped while tracing (torch.compile / export / fake tensors).
* The kernels never read out of bounds whatever the index values: ``focal_gather`` zero-fills a frame whose index is
  outside ``[0, N)``, ``focal_scatter`` ignores list entries that match no frame (binary search over the list).
* Non-contiguous inputs are copied to contiguous NCHW first; outputs are contiguous.

Lazy constant chains (``chain=``, :class:`.reference.LazyChain`, issue 16): the four frame ops pass the chain to the
kernels as the schema's trailing arguments ``chain_start, chain_consts, chain_relu_mask, chain_upto``; the kernels
apply each frame's pending blocks as they read it (``csrc/kernels/chain.h``), bit-identical to the reference. Chains
are inference-only: a chain with inputs that require grad raises ``ValueError``.
"""
from __future__ import annotations

import torch

from . import reference, torch_ops
from ._common import check_chain as _check_chain
from ._common import check_index_tensor as _check_index_tensor
from ._common import check_out as _check_out
from ._common import check_scatter_keywords as _check_scatter_keywords
from ._common import needs_grad as _needs_grad
from ._common import no_grad_for_out as _no_grad_for_out
from ._common import validate_index as _validate_index
from .seam import SelectResult, make_ops

__all__ = ["AVAILABLE", "OPS", "focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend",
           "select_frames", "has_kernels", "import_error"]

try:
    import afnet_edge._C  # noqa: F401  (loading the library registers torch.ops.afnet_edge.*)
except (ImportError, OSError) as _exc:  # not built, or built against another torch
    _IMPORT_ERROR: Exception | None = _exc
    AVAILABLE = False
else:
    _IMPORT_ERROR = None
    AVAILABLE = hasattr(torch.ops, "afnet_edge") and hasattr(torch.ops.afnet_edge, "focal_gather")

_LIB = "afnet_edge"


def import_error() -> Exception | None:
    """Why ``afnet_edge._C`` could not be imported (None when it was)."""
    return _IMPORT_ERROR


def _kernel_table() -> dict[str, bool]:
    """Device types with kernels, fixed once the library is loaded (a constant for torch.compile to fold)."""
    table = {"meta": AVAILABLE}  # fake kernels
    for dtype, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        table[dtype] = AVAILABLE and torch._C._dispatch_has_kernel_for_dispatch_key(f"{_LIB}::focal_gather", key)
    return table


_KERNELS = _kernel_table()


def has_kernels(device: str | torch.device) -> bool:
    """True when the extension has kernels for ``device``'s type ("cpu", "cuda"; "meta" always via fake kernels)."""
    dtype = device.type if isinstance(device, torch.device) else torch.device(device).type
    return _KERNELS.get(dtype, False)


def _upsample_backward(g: torch.Tensor, in_hw: tuple[int, int]) -> torch.Tensor:
    """Adjoint of reference.upsample_nearest (legacy nearest, (h, w) -> g's (H, W)): sums g over each source pixel."""
    n, c, hh, ww = g.shape
    if (hh, ww) == tuple(in_hw):
        return g
    return torch.ops.aten.upsample_nearest2d_backward(g, [hh, ww], [n, c, in_hw[0], in_hw[1]], None, None)


def _relu_grad(g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.where(out > 0, g, torch.zeros_like(g))


# Mirrors of the C++ argument checks (csrc/ops/checks.h), used by the fake kernels so that tracing fails the same way.
_FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _check_float(t: torch.Tensor, name: str) -> None:
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32, float16, bfloat16 or float64, got {t.dtype}")


def _check_same(a: torch.Tensor, an: str, b: torch.Tensor, bn: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{bn} must have the dtype of {an} ({a.dtype}), got {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{bn} must be on the device of {an} ({a.device}), got {b.device}")


def _call(op: str, args: tuple, out: torch.Tensor | None, grad_inputs: tuple) -> torch.Tensor:
    """``torch.ops.afnet_edge.<op>(*args)``, or its ``.out`` overload writing into ``out`` (no autograd)."""
    packet = getattr(torch.ops.afnet_edge, op)
    if out is None:
        return packet(*args)
    _no_grad_for_out(*grad_inputs)
    packet.out(*args, out=out)
    return out


def _chain_args(chain: reference.LazyChain | None) -> tuple:
    """The schemas' trailing chain arguments; empty without a chain (the call is then what it was before chains)."""
    if chain is None:
        return ()
    return (chain.start, chain.consts, int(chain.relu_mask), int(chain.upto))


def _no_grad_with_chain(op: str, chain: reference.LazyChain | None, *tensors) -> None:
    if chain is not None and _needs_grad(*tensors, chain.consts):
        raise ValueError(f"{op}: chain= is inference-only (no autograd through pending chains); call it under "
                         "torch.no_grad() or with inputs that do not require grad")


def _check_chain_args(start, consts, relu_mask: int, upto: int, x: torch.Tensor, xn: str) -> None:
    """Mirror of csrc/ops/checks.h check_chain for the fake kernels (the schema's four chain arguments)."""
    if (start is None) != (consts is None):
        raise ValueError("chain_start and chain_consts must be given together (a lazy chain) or both be None, got "
                         + ("chain_start only" if consts is None else "chain_consts only"))
    if start is None:
        if relu_mask != 0 or upto != 0:
            raise ValueError(f"chain_relu_mask and chain_upto need a chain (chain_start, chain_consts); got "
                             f"chain_relu_mask={relu_mask}, chain_upto={upto} without one")
        return
    if start.dtype != torch.int32:
        raise TypeError(f"chain_start must be int32, got {start.dtype}")
    if start.dim() != 1 or start.shape[0] != x.shape[0]:
        raise ValueError(f"chain_start must be (N,) = ({x.shape[0]},) (one entry per frame of {xn}), got shape "
                         f"{tuple(start.shape)}")
    if start.device != x.device:
        raise ValueError(f"chain_start must be on the device of {xn} ({x.device}), got {start.device}")
    if consts.dim() != 4 or consts.shape[1:] != x.shape[1:]:
        raise ValueError(f"chain_consts must be (L, C, H, W) with (C, H, W) of {xn} {tuple(x.shape[1:])}, got shape "
                         f"{tuple(consts.shape)}")
    _check_same(x, xn, consts, "chain_consts")
    L = consts.shape[0]
    if L > 62:
        raise ValueError(f"chain_consts may hold at most 62 blocks, got L = {L}")
    if not 0 <= upto <= L:
        raise ValueError(f"chain_upto must be in [0, L={L}], got {upto}")
    if relu_mask < 0:
        raise ValueError(f"chain_relu_mask must be >= 0, got {relu_mask}")


_NO_CHAIN_GRADS = (None,) * 4  # backward's entries for the four chain arguments


def _reject_chain_grad(op: str, inputs: tuple, n_args: int) -> None:
    """Autograd setup: the schema's chain arguments follow the op's first ``n_args`` inputs."""
    if len(inputs) > n_args and inputs[n_args] is not None:
        raise ValueError(f"{op}: chain_start/chain_consts are inference-only (no autograd through pending chains)")


def _check_ample(xl: torch.Tensor, xb: torch.Tensor) -> None:
    if xl.dim() != 4 or xb.dim() != 4:
        raise ValueError(f"xl and xb must be (N, C, h, w) and (N, C, H, W), got {tuple(xl.shape)} and {tuple(xb.shape)}")
    _check_float(xb, "xb")
    _check_same(xb, "xb", xl, "xl")
    if xl.shape[:2] != xb.shape[:2]:
        raise ValueError(f"xl and xb must agree in (N, C), got {tuple(xl.shape)} and {tuple(xb.shape)}")
    if min(xl.shape[2], xl.shape[3], xb.shape[2], xb.shape[3]) <= 0:
        raise ValueError(f"spatial sizes must be positive, got xl {tuple(xl.shape)} and xb {tuple(xb.shape)}")
    if xl.shape[2] + xl.shape[3] > 8192:
        raise ValueError(f"xl's h + w must be <= 8192, got {tuple(xl.shape)}")
    if max(xb.shape[2] * xb.shape[3], xl.shape[2] * xl.shape[3]) >= 2**31:
        raise ValueError(f"spatial planes must have fewer than 2^31 elements, got xl {tuple(xl.shape)} and xb "
                         f"{tuple(xb.shape)}")


# ---------------------------------------------------------------------------------------------------------------------
# focal_gather
def focal_gather(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *,
                 chain: reference.LazyChain | None = None, validate: bool = True,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """Compact batch ``(K, C, H, W)`` of frames ``index`` (int64 ``(K,)``) of ``x`` ``(N, C, H, W)``, TSM-shifted
    (spec §5, clips of ``num_frames``) if ``shift``. ``validate`` checks that the indices are in ``[0, N)`` (and
    the chain's start values in ``[0, L]``); ``out`` (contiguous ``(K, C, H, W)``, no autograd) receives the result.
    With ``chain``, of the logical tensor (:func:`.reference.lazy_focal_gather`): each gathered row, and each
    shifted-in neighbour channel segment, gets its own frame's pending blocks applied as it is read."""
    if not has_kernels(x.device):
        return torch_ops.focal_gather(x, index, num_frames, shift, chain=chain, validate=validate, out=out)
    if validate:
        _validate_index(index, x.shape[0], sorted_unique=False)
    _check_chain(chain, x, "x", validate)
    _no_grad_with_chain("focal_gather", chain, x)
    return _call("focal_gather", (x, index, num_frames, shift, *_chain_args(chain)), out, (x,))


if AVAILABLE:
    @torch.library.register_fake(f"{_LIB}::focal_gather")
    def _focal_gather_fake(x, index, num_frames, shift, chain_start=None, chain_consts=None, chain_relu_mask=0,
                           chain_upto=0):
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
        _check_float(x, "x")
        _check_index_tensor(index, x)
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        torch._check(x.shape[0] % num_frames == 0,
                     lambda: f"the frame count N = {x.shape[0]} must be a multiple of num_frames = {num_frames}")
        _check_chain_args(chain_start, chain_consts, chain_relu_mask, chain_upto, x, "x")
        return x.new_empty((index.shape[0], *x.shape[1:]))

    @torch.library.register_fake(f"{_LIB}::focal_gather.out")
    def _focal_gather_out_fake(x, index, num_frames, shift, chain_start=None, chain_consts=None, chain_relu_mask=0,
                               chain_upto=0, *, out):
        _check_out(out, _focal_gather_fake(x, index, num_frames, shift, chain_start, chain_consts, chain_relu_mask,
                                           chain_upto))

    def _focal_gather_setup(ctx, inputs, output):
        _reject_chain_grad("focal_gather", inputs, 4)
        x, index, num_frames, shift = inputs[:4]
        ctx.save_for_backward(index)
        ctx.x_shape, ctx.num_frames, ctx.shift = tuple(x.shape), num_frames, shift

    def _focal_gather_backward(ctx, g):
        (index,) = ctx.saved_tensors
        n, c, h, w = ctx.x_shape
        if not ctx.shift:
            return (g.new_zeros((n, c, h, w)).index_add(0, index, g), None, None, None) + _NO_CHAIN_GRADS
        fold, t = c // 8, index % ctx.num_frames
        keep_next = (t < ctx.num_frames - 1).to(g.dtype).view(-1, 1, 1, 1)
        keep_prev = (t > 0).to(g.dtype).view(-1, 1, 1, 1)
        nxt, prv = torch.clamp(index + 1, max=n - 1), torch.clamp(index - 1, min=0)
        ga = g.new_zeros((n, fold, h, w)).index_add(0, nxt, g[:, :fold] * keep_next)
        gb = g.new_zeros((n, fold, h, w)).index_add(0, prv, g[:, fold:2 * fold] * keep_prev)
        gc = g.new_zeros((n, c - 2 * fold, h, w)).index_add(0, index, g[:, 2 * fold:])
        return (torch.cat([ga, gb, gc], dim=1), None, None, None) + _NO_CHAIN_GRADS

    torch.library.register_autograd(f"{_LIB}::focal_gather", _focal_gather_backward,
                                    setup_context=_focal_gather_setup)


# ---------------------------------------------------------------------------------------------------------------------
# focal_scatter
def focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const: torch.Tensor | None,
                  relu: bool, *, chain: reference.LazyChain | None = None, validate: bool = True,
                  inplace: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C, H, W)``: ``φ(residual[f] + (y[k] if index[k] == f else const))`` (const ``(C, H, W)`` or None = 0).

    ``index`` must be sorted ascending and unique (checked when ``validate``). ``inplace=True`` writes into
    ``residual`` and returns it (ignored, i.e. out of place, when autograd needs the inputs); ``out`` (contiguous
    ``(N, C, H, W)``, no autograd) receives the result.

    With ``chain`` (``const`` must be None; :func:`.reference.lazy_focal_scatter`): selected rows get
    ``φ(logical(residual)[f] + y[k])``, every other row is left as stored (in place: not even read); the ops never
    write ``chain.start`` — the caller sets ``start[index] = upto + 1`` afterwards. Inference only.
    """
    if not has_kernels(residual.device):
        return torch_ops.focal_scatter(residual, y, index, const, relu, chain=chain, validate=validate,
                                       inplace=inplace, out=out)
    _check_scatter_keywords(residual, index, validate, inplace, out)
    if chain is not None:
        if const is not None:
            raise ValueError("focal_scatter: const must be None with a chain (the unselected rows keep their pending "
                             "maps; the constant maps are chain.consts)")
        _check_chain(chain, residual, "residual", validate)
        _no_grad_with_chain("focal_scatter", chain, residual, y)
    args = (residual, y, index, const, relu, *_chain_args(chain))
    if inplace and not _needs_grad(residual, y, const):
        torch.ops.afnet_edge.focal_scatter_(*args)
        return residual
    return _call("focal_scatter", args, out, (residual, y, const))


def _check_focal_scatter(residual, y, index, const_map, chain_start=None, chain_consts=None, chain_relu_mask=0,
                         chain_upto=0):
    if residual.dim() != 4:
        raise ValueError(f"residual must be (N, C, H, W), got shape {tuple(residual.shape)}")
    _check_float(residual, "residual")
    if y.dim() != 4 or y.shape[1:] != residual.shape[1:]:
        raise ValueError(f"y must be (K, C, H, W) with (C, H, W) of residual {tuple(residual.shape[1:])}, "
                         f"got {tuple(y.shape)}")
    _check_same(residual, "residual", y, "y")
    _check_index_tensor(index, residual)
    torch._check(index.shape[0] == y.shape[0],
                 lambda: f"index must have one entry per frame of y ({y.shape[0]}), got {index.shape[0]}")
    if const_map is not None:
        if const_map.shape != residual.shape[1:]:
            raise ValueError(f"const must be (C, H, W) = {tuple(residual.shape[1:])}, got {tuple(const_map.shape)}")
        _check_same(residual, "residual", const_map, "const")
    _check_chain_args(chain_start, chain_consts, chain_relu_mask, chain_upto, residual, "residual")
    if chain_start is not None and const_map is not None:
        raise ValueError("const must be None with a lazy chain (the unselected frames' maps stay pending in the chain)")


if AVAILABLE:
    @torch.library.register_fake(f"{_LIB}::focal_scatter")
    def _focal_scatter_fake(residual, y, index, const_map, relu, *chain):
        _check_focal_scatter(residual, y, index, const_map, *chain)
        return torch.empty_like(residual, memory_format=torch.contiguous_format)

    @torch.library.register_fake(f"{_LIB}::focal_scatter.out")
    def _focal_scatter_out_fake(residual, y, index, const_map, relu, chain_start=None, chain_consts=None,
                                chain_relu_mask=0, chain_upto=0, *, out):
        _check_out(out, _focal_scatter_fake(residual, y, index, const_map, relu, chain_start, chain_consts,
                                            chain_relu_mask, chain_upto))

    @torch.library.register_fake(f"{_LIB}::focal_scatter_")
    def _focal_scatter_inplace_fake(residual, y, index, const_map, relu, chain_start=None, chain_consts=None,
                                    chain_relu_mask=0, chain_upto=0):
        _check_focal_scatter(residual, y, index, const_map, chain_start, chain_consts, chain_relu_mask, chain_upto)

    def _focal_scatter_setup(ctx, inputs, output):
        _reject_chain_grad("focal_scatter", inputs, 5)
        residual, y, index, const_map, relu = inputs[:5]
        ctx.relu, ctx.has_const = relu, const_map is not None
        ctx.save_for_backward(index, output if relu else None)

    def _focal_scatter_backward(ctx, g):
        index, out = ctx.saved_tensors
        if ctx.relu:
            g = _relu_grad(g, out)
        g_y = g.index_select(0, index)
        g_const = None
        if ctx.has_const:  # sum over the unselected frames
            w = torch.ones(g.shape[0], dtype=g.dtype, device=g.device).index_fill(0, index, 0)
            g_const = (g * w.view(-1, 1, 1, 1)).sum(0)
        return (g, g_y, None, g_const, None) + _NO_CHAIN_GRADS

    torch.library.register_autograd(f"{_LIB}::focal_scatter", _focal_scatter_backward,
                                    setup_context=_focal_scatter_setup)


# ---------------------------------------------------------------------------------------------------------------------
# ample_fuse_pool
def ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, *, chain: reference.LazyChain | None = None,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C)`` per-frame, per-channel mean of ``up(xl) + xb``; ``xl`` ``(N, C, h, w)``, ``xb`` ``(N, C, H, W)``,
    ``up`` = legacy nearest resize to ``(H, W)``. ``out``: contiguous ``(N, C)``, no autograd. With ``chain``
    (normally ``upto = L``), of the logical ``xb``: each frame's pending blocks applied as it is read (inference only)."""
    if not has_kernels(xb.device):
        return torch_ops.ample_fuse_pool(xl, xb, chain=chain, out=out)
    _check_chain(chain, xb, "xb")
    _no_grad_with_chain("ample_fuse_pool", chain, xl, xb)
    return _call("ample_fuse_pool", (xl, xb, *_chain_args(chain)), out, (xl, xb))


if AVAILABLE:
    @torch.library.register_fake(f"{_LIB}::ample_fuse_pool")
    def _ample_fuse_pool_fake(xl, xb, chain_start=None, chain_consts=None, chain_relu_mask=0, chain_upto=0):
        _check_ample(xl, xb)
        _check_chain_args(chain_start, chain_consts, chain_relu_mask, chain_upto, xb, "xb")
        return xb.new_empty(xb.shape[:2])

    @torch.library.register_fake(f"{_LIB}::ample_fuse_pool.out")
    def _ample_fuse_pool_out_fake(xl, xb, chain_start=None, chain_consts=None, chain_relu_mask=0, chain_upto=0, *,
                                  out):
        _check_out(out, _ample_fuse_pool_fake(xl, xb, chain_start, chain_consts, chain_relu_mask, chain_upto))

    def _ample_fuse_pool_setup(ctx, inputs, output):
        _reject_chain_grad("ample_fuse_pool", inputs, 2)
        xl, xb = inputs[:2]
        ctx.xl_hw, ctx.xb_shape = tuple(xl.shape[2:]), tuple(xb.shape)

    def _ample_fuse_pool_backward(ctx, g):
        n, c, hh, ww = ctx.xb_shape
        g_full = (g / (hh * ww)).view(n, c, 1, 1).expand(n, c, hh, ww)
        return (_upsample_backward(g_full.contiguous(), ctx.xl_hw), g_full) + _NO_CHAIN_GRADS

    torch.library.register_autograd(f"{_LIB}::ample_fuse_pool", _ample_fuse_pool_backward,
                                    setup_context=_ample_fuse_pool_setup)


# ---------------------------------------------------------------------------------------------------------------------
# ample_fuse_blend
def ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                     chain: reference.LazyChain | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C, H, W)``: ``act(a ⊙ up(xl) + (1 − a) ⊙ xb)`` with ``a`` ``(N, C)``; act = ReLU if ``relu``.
    ``out``: contiguous ``(N, C, H, W)``, no autograd. With ``chain`` (normally ``upto = L``), of the logical ``xb``:
    each frame's pending blocks applied as it is read (inference only)."""
    if not has_kernels(xb.device):
        return torch_ops.ample_fuse_blend(xl, xb, a, relu, chain=chain, out=out)
    _check_chain(chain, xb, "xb")
    _no_grad_with_chain("ample_fuse_blend", chain, xl, xb, a)
    return _call("ample_fuse_blend", (xl, xb, a, relu, *_chain_args(chain)), out, (xl, xb, a))


if AVAILABLE:
    @torch.library.register_fake(f"{_LIB}::ample_fuse_blend")
    def _ample_fuse_blend_fake(xl, xb, a, relu, chain_start=None, chain_consts=None, chain_relu_mask=0,
                               chain_upto=0):
        _check_ample(xl, xb)
        _check_same(xb, "xb", a, "a")
        if a.dim() != 2 or a.shape != xb.shape[:2]:
            raise ValueError(f"a must be (N, C) = {tuple(xb.shape[:2])}, got {tuple(a.shape)}")
        _check_chain_args(chain_start, chain_consts, chain_relu_mask, chain_upto, xb, "xb")
        return torch.empty_like(xb, memory_format=torch.contiguous_format)

    @torch.library.register_fake(f"{_LIB}::ample_fuse_blend.out")
    def _ample_fuse_blend_out_fake(xl, xb, a, relu, chain_start=None, chain_consts=None, chain_relu_mask=0,
                                   chain_upto=0, *, out):
        _check_out(out, _ample_fuse_blend_fake(xl, xb, a, relu, chain_start, chain_consts, chain_relu_mask,
                                               chain_upto))

    def _ample_fuse_blend_setup(ctx, inputs, output):
        _reject_chain_grad("ample_fuse_blend", inputs, 4)
        xl, xb, a, relu = inputs[:4]
        ctx.relu = relu
        ctx.save_for_backward(xl, xb, a, output if relu else None)

    def _ample_fuse_blend_backward(ctx, g):
        xl, xb, a, out = ctx.saved_tensors
        if ctx.relu:
            g = _relu_grad(g, out)
        a4 = a.view(a.shape[0], a.shape[1], 1, 1)
        up = reference.upsample_nearest(xl, tuple(xb.shape[-2:]))
        g_xl = _upsample_backward(g * a4, tuple(xl.shape[-2:]))
        g_xb = g * (1 - a4)
        g_a = (g * (up - xb)).sum(dim=(2, 3))
        return (g_xl, g_xb, g_a, None) + _NO_CHAIN_GRADS

    torch.library.register_autograd(f"{_LIB}::ample_fuse_blend", _ample_fuse_blend_backward,
                                    setup_context=_ample_fuse_blend_setup)


# ---------------------------------------------------------------------------------------------------------------------
# select_frames
def select_frames(logits: torch.Tensor, mode: str, k: int = 0, *,
                  out: SelectResult | None = None) -> SelectResult:
    """``(index, counts, mask)`` for navigation logits ``(L, B, T, 2)``, computed on the logits' device without a
    host sync (see :func:`afnet_edge.kernels.reference.select_frames` for the format). ``out``: a preallocated
    ``(index, counts, mask)`` triple of the exact shapes and dtypes."""
    if not has_kernels(logits.device):
        return torch_ops.select_frames(logits, mode, k, out=out)
    if out is not None:
        index, counts, mask = out
        torch.ops.afnet_edge.select_frames.out(logits, mode, k, index=index, counts=counts, mask=mask)
        return index, counts, mask
    return torch.ops.afnet_edge.select_frames(logits, mode, k)


if AVAILABLE:
    @torch.library.register_fake(f"{_LIB}::select_frames")
    def _select_frames_fake(logits, selection, k):  # schema name `selection` = the Python API's `mode`
        mode = selection
        if logits.dim() != 4 or logits.shape[3] != 2:
            raise ValueError(f"logits must be (L, B, T, 2), got shape {tuple(logits.shape)}")
        _check_float(logits, "logits")
        if mode not in ("threshold", "topk"):
            raise ValueError(f"mode must be 'threshold' or 'topk', got {mode!r}")
        L, B, T, _ = logits.shape
        if mode == "topk" and not 0 <= k <= T:
            raise ValueError(f"k must be in [0, T={T}], got {k}")
        m = B * k if mode == "topk" else B * T
        return (logits.new_empty((L, m), dtype=torch.int64), logits.new_empty((L,), dtype=torch.int64),
                logits.new_empty((L, B, T)))

    @torch.library.register_fake(f"{_LIB}::select_frames.out")
    def _select_frames_out_fake(logits, selection, k, *, index, counts, mask):
        for o, r in zip((index, counts, mask), _select_frames_fake(logits, selection, k)):
            _check_out(o, r)


# ---------------------------------------------------------------------------------------------------------------------
# gather_conv1x1 / conv1x1_scatter: the gather/scatter-fused 1×1 convolutions of the "fused" plan (issue 16). No
# autograd (inference kernels). The compiled kernels run for float16 / bfloat16: the CPU twin, and on CUDA the
# tensor-core kernel on compute capability >= 8.0. float32 / float64 (every device: the contract's "fp32 falls back",
# which keeps fp32 results bit-equal to the reference), older GPUs and an extension built without these ops run the
# reference composition (torch_ops.gather_conv1x1 / conv1x1_scatter). The compiled ops themselves
# (torch.ops.afnet_edge.*) also take float32 / float64 on the CPU.
_TENSOR_CORE_DTYPES = (torch.float16, torch.bfloat16)


def _fused_gemm_table() -> dict[str, bool]:
    table = {"meta": AVAILABLE and hasattr(torch.ops.afnet_edge, "gather_conv1x1")}
    for dtype, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        table[dtype] = table["meta"] and all(
            torch._C._dispatch_has_kernel_for_dispatch_key(f"{_LIB}::{op}", key)
            for op in ("gather_conv1x1", "conv1x1_scatter"))
    return table


_FUSED_GEMM_KERNELS = _fused_gemm_table()


def _fused_gemm_kernel(t: torch.Tensor) -> bool:
    """True when the compiled kernel handles ``t``'s device and dtype (else the reference composition runs)."""
    if t.dtype not in _TENSOR_CORE_DTYPES or not _FUSED_GEMM_KERNELS.get(t.device.type, False):
        return False
    return t.device.type != "cuda" or torch.cuda.get_device_capability(t.device) >= (8, 0)


def _gemm_chain_args(chain: reference.LazyChain | None) -> tuple:
    """``(chain_start, chain_consts, chain_relu_mask, chain_upto)`` of the schemas; ``(None, None, 0, 0)`` for None."""
    if chain is None:
        return None, None, 0, 0
    if not isinstance(chain, reference.LazyChain):
        raise TypeError(f"chain must be a LazyChain (reference.LazyChain) or None, got {type(chain).__name__}")
    return chain.start, chain.consts, int(chain.relu_mask), int(chain.upto)


def _no_autograd(op: str, *tensors) -> None:
    if _needs_grad(*tensors):
        raise ValueError(f"{op} has no autograd (an inference kernel with folded BN): call it under torch.no_grad() / "
                         "torch.inference_mode(), or use the lazy plan (focal_gather + convolutions) for training")


def gather_conv1x1(x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, weight: torch.Tensor,
                   groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool, *,
                   chain: reference.LazyChain | None = None, validate: bool = True,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """``(K, O, H, W)``: the first 1×1 convolution of a focal body on frames ``index`` of ``x`` ``(N, C, H, W)``,
    with the gather (TSM shift if ``shift``, clips of ``num_frames``; pending ``chain`` applied) fused into its operand
    load: ``act(conv1x1(lazy_focal_gather(x, index, T, shift, chain), weight, groups) · scale + bias)``.

    ``weight`` ``(O, C/groups[, 1, 1])`` in ``x``'s dtype; ``scale``/``bias`` float32 ``(O,)`` (folded BN, see
    :func:`reference.fold_bn`); act = ReLU if ``relu``. float32 arithmetic, one rounding (tolerance-equal to the
    reference, not bit-exact). ``validate`` checks the index values; ``out``: contiguous ``(K, O, H, W)``. No autograd.
    """
    args = _gemm_chain_args(chain)
    _no_autograd("gather_conv1x1", x, weight, scale, bias, args[1])
    if not _fused_gemm_kernel(x):  # the reference composition (same bits as reference.gather_conv1x1)
        return torch_ops.gather_conv1x1(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain=chain,
                                        validate=validate, out=out)
    if validate:
        _validate_index(index, x.shape[0], sorted_unique=False)
    packet = torch.ops.afnet_edge.gather_conv1x1
    full = (x, index, num_frames, shift, weight, groups, scale, bias, relu, *args)
    if out is None:
        return packet(*full)
    packet.out(*full, out=out)
    return out


def conv1x1_scatter(h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor,
                    residual: torch.Tensor, index: torch.Tensor, relu: bool, *,
                    chain: reference.LazyChain | None = None, validate: bool = True, inplace: bool = False,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C, H, W)``: the last 1×1 convolution of a focal body with the scatter as its epilogue. Selected frames
    f = ``index[k]`` (sorted, unique; checked when ``validate``) get ``φ(conv1x1(h, weight, groups)[k] · scale + bias +
    logical(residual)[f])`` (float32, one rounding; φ = ReLU if ``relu``; ``logical`` applies ``chain``); every other
    row is ``residual``'s row as stored (still pending). ``h`` ``(K, C_h, H, W)``, ``weight`` ``(C, C_h/groups[, 1,
    1])``, ``scale``/``bias`` float32 ``(C,)``. ``inplace=True`` writes the selected rows into ``residual`` and returns
    it; ``out``: contiguous ``(N, C, H, W)``. The caller advances ``chain.start`` afterwards. No autograd."""
    args = _gemm_chain_args(chain)
    _no_autograd("conv1x1_scatter", h, weight, scale, bias, residual, args[1])
    if not _fused_gemm_kernel(residual):  # the reference composition (same bits as reference.conv1x1_scatter)
        return torch_ops.conv1x1_scatter(h, weight, groups, scale, bias, residual, index, relu, chain=chain,
                                         validate=validate, inplace=inplace, out=out)
    if inplace and out is not None:
        raise ValueError("conv1x1_scatter: pass either inplace=True or out=, not both")
    if validate:
        _validate_index(index, residual.shape[0], sorted_unique=True)
    full = (h, weight, groups, scale, bias, residual, index, relu, *args)
    if inplace:
        torch.ops.afnet_edge.conv1x1_scatter_(*full)
        return residual
    if out is None:
        return torch.ops.afnet_edge.conv1x1_scatter(*full)
    torch.ops.afnet_edge.conv1x1_scatter.out(*full, out=out)
    return out


# Mirrors of csrc/ops/conv1x1_impl.h for the fake kernels.
def _check_chain_fake(start, consts, relu_mask, upto, x, xname):
    if (start is None) != (consts is None):
        raise ValueError("chain_start and chain_consts must be given together (a lazy chain) or both be None")
    if start is None:
        if relu_mask != 0 or upto != 0:
            raise ValueError("chain_relu_mask and chain_upto need a chain (chain_start, chain_consts); got "
                             f"chain_relu_mask={relu_mask}, chain_upto={upto} without one")
        return
    if start.dtype != torch.int32:
        raise TypeError(f"chain_start must be int32, got {start.dtype}")
    if start.dim() != 1 or start.shape[0] != x.shape[0]:
        raise ValueError(f"chain_start must be (N,) = ({x.shape[0]},), got shape {tuple(start.shape)}")
    if consts.dim() != 4 or consts.shape[1:] != x.shape[1:]:
        raise ValueError(f"chain_consts must be (L, C, H, W) with (C, H, W) = {tuple(x.shape[1:])} of {xname}, got "
                         f"shape {tuple(consts.shape)}")
    _check_same(x, xname, consts, "chain_consts")
    if consts.shape[0] > 62:
        raise ValueError(f"chain_consts may hold at most 62 blocks, got L = {consts.shape[0]}")
    if not 0 <= upto <= consts.shape[0]:
        raise ValueError(f"chain_upto must be in [0, L={consts.shape[0]}], got {upto}")
    if relu_mask < 0:
        raise ValueError(f"chain_relu_mask must be >= 0 (bit i: block i applies ReLU), got {relu_mask}")


def _check_conv1x1_fake(x, xname, cin, weight, groups, scale, bias, cin_name) -> int:
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if cin % groups != 0:
        raise ValueError(f"groups ({groups}) must divide the input channels {cin_name} = {cin}")
    cg = cin // groups
    if not ((weight.dim() == 2 or (weight.dim() == 4 and tuple(weight.shape[2:]) == (1, 1))) and weight.shape[1] == cg):
        raise ValueError(f"weight must be (O, {cin_name}/groups = {cg}) or (O, {cg}, 1, 1) (a 1×1 convolution), got "
                         f"shape {tuple(weight.shape)}")
    _check_same(x, xname, weight, "weight")
    o = weight.shape[0]
    if o % groups != 0:
        raise ValueError(f"groups ({groups}) must divide the output channels O = {o}")
    for t, name in ((scale, "scale"), (bias, "bias")):
        if t.dtype != torch.float32:
            raise TypeError(f"{name} must be float32 (folded BN), got {t.dtype}")
        if t.dim() != 1 or t.shape[0] != o:
            raise ValueError(f"{name} must be (O,) = ({o},), got shape {tuple(t.shape)}")
    return o


def _check_conv1x1_scatter_fake(h, weight, groups, scale, bias, residual, index):
    if residual.dim() != 4:
        raise ValueError(f"residual must be (N, C, H, W), got shape {tuple(residual.shape)}")
    _check_float(residual, "residual")
    if h.dim() != 4 or h.shape[2:] != residual.shape[2:]:
        raise ValueError(f"h must be (K, C_h, H, W) with (H, W) of residual {tuple(residual.shape[2:])}, got shape "
                         f"{tuple(h.shape)}")
    _check_same(residual, "residual", h, "h")
    _check_index_tensor(index, residual)
    torch._check(index.shape[0] == h.shape[0],
                 lambda: f"index must have one entry per frame of h ({h.shape[0]}), got {index.shape[0]}")
    o = _check_conv1x1_fake(residual, "residual", h.shape[1], weight, groups, scale, bias, "C_h")
    if o != residual.shape[1]:
        raise ValueError(f"weight must have C = {residual.shape[1]} output channels (those of residual), got {o}")


if _FUSED_GEMM_KERNELS["meta"]:
    @torch.library.register_fake(f"{_LIB}::gather_conv1x1")
    def _gather_conv1x1_fake(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start,
                             chain_consts, chain_relu_mask, chain_upto):
        _focal_gather_fake(x, index, num_frames, shift)  # the gather's checks
        o = _check_conv1x1_fake(x, "x", x.shape[1], weight, groups, scale, bias, "C")
        _check_chain_fake(chain_start, chain_consts, chain_relu_mask, chain_upto, x, "x")
        return x.new_empty((index.shape[0], o, x.shape[2], x.shape[3]))

    @torch.library.register_fake(f"{_LIB}::gather_conv1x1.out")
    def _gather_conv1x1_out_fake(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start,
                                 chain_consts, chain_relu_mask, chain_upto, *, out):
        _check_out(out, _gather_conv1x1_fake(x, index, num_frames, shift, weight, groups, scale, bias, relu,
                                             chain_start, chain_consts, chain_relu_mask, chain_upto))

    @torch.library.register_fake(f"{_LIB}::conv1x1_scatter")
    def _conv1x1_scatter_fake(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                              chain_relu_mask, chain_upto):
        _check_conv1x1_scatter_fake(h, weight, groups, scale, bias, residual, index)
        _check_chain_fake(chain_start, chain_consts, chain_relu_mask, chain_upto, residual, "residual")
        return torch.empty_like(residual, memory_format=torch.contiguous_format)

    @torch.library.register_fake(f"{_LIB}::conv1x1_scatter.out")
    def _conv1x1_scatter_out_fake(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                                  chain_relu_mask, chain_upto, *, out):
        _check_out(out, _conv1x1_scatter_fake(h, weight, groups, scale, bias, residual, index, relu, chain_start,
                                              chain_consts, chain_relu_mask, chain_upto))

    @torch.library.register_fake(f"{_LIB}::conv1x1_scatter_")
    def _conv1x1_scatter_inplace_fake(h, weight, groups, scale, bias, residual, index, relu, chain_start,
                                      chain_consts, chain_relu_mask, chain_upto):
        _check_conv1x1_scatter_fake(h, weight, groups, scale, bias, residual, index)
        _check_chain_fake(chain_start, chain_consts, chain_relu_mask, chain_upto, residual, "residual")


__all__ += ["gather_conv1x1", "conv1x1_scatter"]


OPS = make_ops("ext", focal_gather=focal_gather, focal_scatter=focal_scatter, ample_fuse_pool=ample_fuse_pool,
               ample_fuse_blend=ample_fuse_blend, select_frames=select_frames, gather_conv1x1=gather_conv1x1,
               conv1x1_scatter=conv1x1_scatter)


# ---------------------------------------------------------------------------------------------------------------------
# Full-video clustering (issue 14 item 2; spec full-video-clustering.md §3, §4, §4.6, §11.2): binarize_pack,
# adjacent_hamming, segment_boundaries, segment_mean. Same signatures and results as
# afnet_edge/kernels/fullvideo_reference.py (exact for bits, distances and boundaries; segment_mean sums in fp32 in
# frame order and rounds once). The compiled ops run where the extension has them (an older _C without them, or an
# unsupported case, falls back to the reference); none of them syncs with the host. segment_mean's autograd formula
# is the segment_mean_backward kernel (its adjoint; segment_mean is in turn the adjoint's formula, so double backward
# works too). Not covered by the kernels (reference used): cumulative_official's boundaries and degenerate="even".
from . import fullvideo_reference as _fv_ref  # noqa: E402  (section appended at the end of the module)


def _fullvideo_kernel_table() -> dict[str, bool]:
    table = {"meta": AVAILABLE and hasattr(torch.ops.afnet_edge, "segment_mean")}
    for dev, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        try:
            table[dev] = table["meta"] and torch._C._dispatch_has_kernel_for_dispatch_key(
                f"{_LIB}::segment_mean", key)
        except RuntimeError:  # operator not registered by this build of _C
            table[dev] = False
    return table


_FULLVIDEO_KERNELS = _fullvideo_kernel_table()


def has_fullvideo_kernels(device: str | torch.device) -> bool:
    """True when ``afnet_edge._C`` has the full-video clustering kernels for ``device``'s type."""
    dtype = device.type if isinstance(device, torch.device) else torch.device(device).type
    return _FULLVIDEO_KERNELS.get(dtype, False)


def _fv_offsets(frame_offsets: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    if frame_offsets is None:
        return None
    if not isinstance(frame_offsets, torch.Tensor) or frame_offsets.dtype not in (torch.int32, torch.int64):
        raise ValueError("frame_offsets must be an integer tensor of shape (B+1,) with 0 first, N_total last and at "
                         "least one frame per video")
    return frame_offsets.to(device=device, dtype=torch.int64)  # a device-side cast: no host sync


def _fv_use_kernel(t: torch.Tensor) -> bool:
    """The compiled op serves ``t`` (its device has the kernels, and no ONNX export / jit trace is running: those
    need the reference's standard ops; torch.compile and torch.export keep the op through its fake kernel)."""
    return has_fullvideo_kernels(t.device) and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())


def binarize_pack(y: torch.Tensor) -> torch.Tensor:
    """Sign bits of every frame of ``y (N, ...)`` packed into ``(N, ⌈D/32⌉)`` int32 words, LSB first (bit i of word
    w = ``y[n].flatten()[32·w+i] > 0``; padding bits 0). No gradient. See :func:`fullvideo_reference.binarize_pack`."""
    if isinstance(y, torch.Tensor) and y.is_floating_point() and y.dim() >= 1 and _fv_use_kernel(y):
        return torch.ops.afnet_edge.binarize_pack(y.detach())
    return _fv_ref.binarize_pack(y)


def adjacent_hamming(bits: torch.Tensor) -> torch.Tensor:
    """``h (max(N−1, 0),)`` int32 Hamming distances of neighbouring rows of ``bits (N, W)`` int32 (exact)."""
    if isinstance(bits, torch.Tensor) and bits.dtype == torch.int32 and bits.dim() == 2 \
            and _fv_use_kernel(bits):
        return torch.ops.afnet_edge.adjacent_hamming(bits)
    return _fv_ref.adjacent_hamming(bits)


def segment_boundaries(h: torch.Tensor, k: int, rule: str, frame_offsets: torch.Tensor | None = None,
                       num_bits: int | None = None, degenerate: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """``(offsets (B, K+1) int64, num_segments (B,) int64)`` for distances ``h (N_total−1,)`` (see
    :func:`fullvideo_reference.segment_boundaries` for the rules and the representation). The kernel serves
    ``slope`` (degenerate="none"), ``cumulative`` and ``even``; the other cases run the reference."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (clusters) must be a positive integer, got {k!r}")
    kernel_case = rule in ("even", "cumulative") or (rule == "slope" and degenerate == "none")
    if kernel_case and isinstance(h, torch.Tensor) and h.dim() == 1 and h.dtype in (torch.int32, torch.int64) \
            and _fv_use_kernel(h):
        fo = _fv_offsets(frame_offsets, h.device)
        return torch.ops.afnet_edge.segment_boundaries(h.to(torch.int32), k, rule, fo)
    return _fv_ref.segment_boundaries(h, k, rule, frame_offsets, num_bits=num_bits, degenerate=degenerate)


def segment_mean(a: torch.Tensor, offsets: torch.Tensor, num_segments: torch.Tensor,
                 frame_offsets: torch.Tensor | None = None) -> torch.Tensor:
    """``(B·K, ...)`` segment means of ``a (N_total, ...)`` (row b·K+j: segment min(j, M_b−1) of video b; fp32
    accumulation, one rounding). Differentiable in ``a``: the kernel's backward is ``segment_mean_backward`` (frame
    gradient = Σ of its segment's output gradients / segment size, fp32 accumulation; 0 for frames in no segment)."""
    if isinstance(a, torch.Tensor) and a.is_floating_point() and a.dim() >= 1 and _fv_use_kernel(a) \
            and isinstance(offsets, torch.Tensor) and isinstance(num_segments, torch.Tensor):
        fo = _fv_offsets(frame_offsets, a.device)
        return torch.ops.afnet_edge.segment_mean(a, offsets.to(a.device, torch.int64),
                                                 num_segments.to(a.device, torch.int64), fo)
    return _fv_ref.segment_mean(a, offsets, num_segments, frame_offsets)


if _FULLVIDEO_KERNELS["meta"]:
    def _fv_words(y: torch.Tensor) -> int:
        d = 1
        for s in y.shape[1:]:
            d *= s
        return (d + 31) // 32

    @torch.library.register_fake(f"{_LIB}::binarize_pack")
    def _binarize_pack_fake(y):
        if y.dim() < 1:
            raise ValueError("y must be (N, ...) with one frame per row, got a 0-d tensor")
        _check_float(y, "y")
        return y.new_empty((y.shape[0], _fv_words(y)), dtype=torch.int32)

    @torch.library.register_fake(f"{_LIB}::adjacent_hamming")
    def _adjacent_hamming_fake(bits):
        if bits.dtype != torch.int32:
            raise TypeError(f"bits must be int32 (from binarize_pack), got {bits.dtype}")
        if bits.dim() != 2:
            raise ValueError(f"bits must be (N, W) (from binarize_pack), got shape {tuple(bits.shape)}")
        return bits.new_empty((max(bits.shape[0] - 1, 0),))

    def _fv_videos(frame_offsets, ref: torch.Tensor, refname: str) -> int:
        if frame_offsets is None:
            return 1
        if frame_offsets.dtype != torch.int64:
            raise TypeError(f"frame_offsets must be int64, got {frame_offsets.dtype}")
        if frame_offsets.dim() != 1 or frame_offsets.shape[0] < 2:
            raise ValueError(f"frame_offsets must be (B+1,) with B >= 1, got shape {tuple(frame_offsets.shape)}")
        if frame_offsets.device != ref.device:
            raise ValueError(f"frame_offsets must be on the device of {refname} ({ref.device}), got "
                             f"{frame_offsets.device}")
        return frame_offsets.shape[0] - 1

    @torch.library.register_fake(f"{_LIB}::segment_boundaries")
    def _segment_boundaries_fake(h, k, rule, frame_offsets=None):
        if h.dtype != torch.int32:
            raise TypeError(f"h must be int32 (from adjacent_hamming), got {h.dtype}")
        if h.dim() != 1:
            raise ValueError(f"h must be (N_total-1,) (from adjacent_hamming), got shape {tuple(h.shape)}")
        if k < 1:
            raise ValueError(f"k (clusters) must be a positive integer, got {k}")
        if rule not in ("slope", "cumulative", "even"):
            raise ValueError(f"rule must be 'slope', 'cumulative' or 'even' for the segment_boundaries kernel, got "
                             f"{rule!r}")
        b = _fv_videos(frame_offsets, h, "h")
        return h.new_empty((b, k + 1), dtype=torch.int64), h.new_empty((b,), dtype=torch.int64)

    @torch.library.register_fake(f"{_LIB}::segment_mean")
    def _segment_mean_fake(a, offsets, num_segments, frame_offsets=None):
        if a.dim() < 1:
            raise ValueError("a must be (N_total, ...) with one frame per row, got a 0-d tensor")
        _check_float(a, "a")
        if offsets.dtype != torch.int64 or num_segments.dtype != torch.int64:
            raise TypeError(f"offsets and num_segments must be int64, got {offsets.dtype} and {num_segments.dtype}")
        if offsets.dim() != 2 or offsets.shape[1] < 2:
            raise ValueError(f"offsets must be (B, K+1) with K >= 1, got shape {tuple(offsets.shape)}")
        b, k = offsets.shape[0], offsets.shape[1] - 1
        if tuple(num_segments.shape) != (b,):
            raise ValueError(f"num_segments must be (B,) = ({b},), got shape {tuple(num_segments.shape)}")
        if _fv_videos(frame_offsets, a, "a") != b:
            raise ValueError(f"offsets (B={b}, K+1) and frame_offsets (B+1,) disagree")
        return a.new_empty((b * k,) + tuple(a.shape[1:]))

    if hasattr(torch.ops.afnet_edge, "segment_mean_backward"):  # an older _C has the forward only
        @torch.library.register_fake(f"{_LIB}::segment_mean_backward")
        def _segment_mean_backward_fake(grad, offsets, num_segments, frame_offsets, n_total):
            if grad.dim() < 1:
                raise ValueError("grad must be (B*K, ...) (segment_mean's output gradient), got a 0-d tensor")
            _check_float(grad, "grad")
            if offsets.dtype != torch.int64 or num_segments.dtype != torch.int64:
                raise TypeError(f"offsets and num_segments must be int64, got {offsets.dtype} and "
                                f"{num_segments.dtype}")
            if offsets.dim() != 2 or offsets.shape[1] < 2:
                raise ValueError(f"offsets must be (B, K+1) with K >= 1, got shape {tuple(offsets.shape)}")
            b, k = offsets.shape[0], offsets.shape[1] - 1
            if grad.shape[0] != b * k:
                raise ValueError(f"grad must have B*K = {b * k} rows, got shape {tuple(grad.shape)}")
            if tuple(num_segments.shape) != (b,):
                raise ValueError(f"num_segments must be (B,) = ({b},), got shape {tuple(num_segments.shape)}")
            if n_total < 0:
                raise ValueError(f"n_total (frames of a) must be >= 0, got {n_total}")
            if _fv_videos(frame_offsets, grad, "grad") != b:
                raise ValueError(f"offsets (B={b}, K+1) and frame_offsets (B+1,) disagree")
            return grad.new_empty((n_total,) + tuple(grad.shape[1:]))

        def _segment_mean_setup(ctx, inputs, output):
            a, offsets, num_segments, frame_offsets = inputs
            ctx.n_total = a.shape[0]
            ctx.save_for_backward(offsets, num_segments, frame_offsets)

        def _segment_mean_backward(ctx, g):
            offsets, num_segments, frame_offsets = ctx.saved_tensors
            ga = None
            if ctx.needs_input_grad[0]:
                ga = torch.ops.afnet_edge.segment_mean_backward(g.contiguous(), offsets, num_segments, frame_offsets,
                                                                ctx.n_total)
            return ga, None, None, None

        def _segment_mean_backward_setup(ctx, inputs, output):
            _, offsets, num_segments, frame_offsets, _ = inputs
            ctx.save_for_backward(offsets, num_segments, frame_offsets)

        def _segment_mean_backward_backward(ctx, gg):
            # segment_mean_backward is linear in grad with segment_mean as its adjoint
            offsets, num_segments, frame_offsets = ctx.saved_tensors
            g = None
            if ctx.needs_input_grad[0]:
                g = torch.ops.afnet_edge.segment_mean(gg.contiguous(), offsets, num_segments, frame_offsets)
            return g, None, None, None, None

        torch.library.register_autograd(f"{_LIB}::segment_mean", _segment_mean_backward,
                                        setup_context=_segment_mean_setup)
        torch.library.register_autograd(f"{_LIB}::segment_mean_backward", _segment_mean_backward_backward,
                                        setup_context=_segment_mean_backward_setup)


__all__ += ["binarize_pack", "adjacent_hamming", "segment_boundaries", "segment_mean", "has_fullvideo_kernels"]
# =====================================================================================================================
# bLVNet-TAM kernels (issue 13): temporal_aggregate, temporal_aggregate_pair, bl_merge. Semantics:
# :mod:`.blvnet_reference` (same names, same arguments). Not part of the FusedOps protocol (seam.py): the model calls
# these entry points directly. Each runs the compiled op when the extension has it for the device, else the
# reference. The ops have autograd formulas (registered below), so training runs the kernels too: the gradient of a
# TAM w.r.t. its input is the same op with the taps reversed (no activation) on the masked output gradient, its
# weight gradient one product-sum per tap, the merge's a block sum of the nearest upsampling. Weights are converted to
# float32 (the kernels' weight type); arithmetic in float (double for float64) with one rounding to the frame dtype.
from . import blvnet_reference as _blvnet_ref  # noqa: E402


def _blvnet_table() -> dict[str, bool]:
    ops = ("temporal_aggregate", "temporal_aggregate_pair", "bl_merge")
    table = {"meta": AVAILABLE and all(hasattr(torch.ops.afnet_edge, op) for op in ops)}
    for dtype, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        table[dtype] = table["meta"] and all(
            torch._C._dispatch_has_kernel_for_dispatch_key(f"{_LIB}::{op}", key) for op in ops)
    return table


_BLVNET_KERNELS = _blvnet_table()


def has_blvnet_kernels(device: str | torch.device) -> bool:
    """True when the extension has the bLVNet-TAM kernels for ``device``'s type ("cpu", "cuda"; "meta": fakes)."""
    dtype = device.type if isinstance(device, torch.device) else torch.device(device).type
    return _BLVNET_KERNELS.get(dtype, False)


def _blvnet_kernel(x: torch.Tensor, *weights: torch.Tensor) -> bool:
    """The compiled op runs for ``x`` on its device, except for a float64 model (float64 frames and taps: gradient
    checks, reference runs), which keeps its taps unrounded on the reference — the kernels take float32 weights."""
    return isinstance(x, torch.Tensor) and has_blvnet_kernels(x.device) and not (
        x.dtype == torch.float64 and any(isinstance(w, torch.Tensor) and w.dtype == torch.float64 for w in weights))


def _f32(w: torch.Tensor) -> torch.Tensor:
    return w.to(torch.float32) if isinstance(w, torch.Tensor) else w


def temporal_aggregate(x: torch.Tensor, weight: torch.Tensor, num_frames: int, relu: bool = True) -> torch.Tensor:
    """TAM (spec §4.1): ``(B·T, C, H, W)`` → ``(B·T, C, H, W)``, ``act(Σ_i w[i] ⊙ x_{t+i−r})``, zero padding in time
    at each clip's ends (clip of row n = ⌊n / T⌋, T = ``num_frames``), act = ReLU if ``relu``. ``weight`` ``(K, C)``,
    K odd <= 63 (float32 in the kernel). One read and one write per element."""
    if not _blvnet_kernel(x, weight):
        return _blvnet_ref.temporal_aggregate(x, weight, num_frames, relu)
    return torch.ops.afnet_edge.temporal_aggregate(x, _f32(weight), num_frames, relu)


def temporal_aggregate_pair(y: torch.Tensor, w_big: torch.Tensor, w_little: torch.Tensor, num_pairs: int,
                            relu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A stage TAM on pair features (spec §4.3): ``y`` ``(B·P, C, H, W)`` → ``(big_in, little_in)``, each
    ``(B·P, C, H, W)`` = ``act(Σ_d w[d] ⊙ y_{k+d})`` with the folded weights ``w_big`` / ``w_little`` ``(K_p, C)``
    (:func:`.blvnet_reference.fold_pair_weights`), ``y`` zero outside its clip of ``num_pairs`` rows. Reads ``y``
    once, writes both outputs."""
    if not _blvnet_kernel(y, w_big, w_little):
        return _blvnet_ref.temporal_aggregate_pair(y, w_big, w_little, num_pairs, relu)
    big, little = torch.ops.afnet_edge.temporal_aggregate_pair(y, _f32(w_big), _f32(w_little), num_pairs, relu)
    return big, little


def bl_merge(big: torch.Tensor, little: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """Big-little merge: ``(N, C, h, w)``, ``(N, C, H, W)`` → ``(N, C, H, W)`` = ``act(nearest_up(big) + little)``
    (PyTorch's legacy nearest; the identity when the sizes agree), act = ReLU if ``relu``. Bit-identical to the
    reference in every dtype (one add in float, one rounding)."""
    if not _blvnet_kernel(little):
        return _blvnet_ref.bl_merge(big, little, relu)
    return torch.ops.afnet_edge.bl_merge(big, little, relu)


def _check_tam_fake(x, xn: str, num_frames: int, tn: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{xn} must be a 4-D tensor (B·T, C, H, W), got shape {tuple(x.shape)}")
    _check_float(x, xn)
    if num_frames < 1:
        raise ValueError(f"{tn} must be >= 1, got {num_frames}")
    if x.shape[0] % num_frames:
        raise ValueError(f"{xn} has {x.shape[0]} rows, not a multiple of {tn} = {num_frames}")


def _check_tam_weight_fake(w, wn: str, x, xn: str) -> None:
    if w.dtype != torch.float32:
        raise TypeError(f"{wn} must be float32 (K, C), got {w.dtype}")
    if w.dim() != 2 or w.shape[1] != x.shape[1] or w.shape[0] % 2 == 0 or w.shape[0] > 63:
        raise ValueError(f"{wn} must have shape (K, C) = (odd K <= 63, {x.shape[1]}), got {tuple(w.shape)}")
    if w.device != x.device:
        raise ValueError(f"{wn} must be on the device of {xn} ({x.device}), got {w.device}")


if _BLVNET_KERNELS["meta"]:
    @torch.library.register_fake(f"{_LIB}::temporal_aggregate")
    def _temporal_aggregate_fake(x, weight, num_frames, relu=True):
        _check_tam_fake(x, "x", num_frames, "num_frames")
        _check_tam_weight_fake(weight, "weight", x, "x")
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @torch.library.register_fake(f"{_LIB}::temporal_aggregate_pair")
    def _temporal_aggregate_pair_fake(y, w_big, w_little, num_pairs, relu=True):
        _check_tam_fake(y, "y", num_pairs, "num_pairs")
        _check_tam_weight_fake(w_big, "w_big", y, "y")
        _check_tam_weight_fake(w_little, "w_little", y, "y")
        if w_little.shape != w_big.shape:
            raise ValueError(f"w_little must have w_big's shape {tuple(w_big.shape)}, got {tuple(w_little.shape)}")
        return (torch.empty_like(y, memory_format=torch.contiguous_format),
                torch.empty_like(y, memory_format=torch.contiguous_format))

    @torch.library.register_fake(f"{_LIB}::bl_merge")
    def _bl_merge_fake(big, little, relu=True):
        if big.dim() != 4 or little.dim() != 4:
            raise ValueError(f"big and little must be (N, C, h, w) and (N, C, H, W), got {tuple(big.shape)} and "
                             f"{tuple(little.shape)}")
        _check_float(little, "little")
        _check_same(little, "little", big, "big")
        if big.shape[:2] != little.shape[:2]:
            raise ValueError(f"big and little must agree in (N, C), got {tuple(big.shape)} and {tuple(little.shape)}")
        if min(big.shape[2:]) < 1 or min(little.shape[2:]) < 1:
            raise ValueError(f"spatial sizes must be positive, got big {tuple(big.shape)} and little "
                             f"{tuple(little.shape)}")
        return torch.empty_like(little, memory_format=torch.contiguous_format)


# --- autograd -------------------------------------------------------------------------------------------------------
def _act_grad(grad: torch.Tensor, out: torch.Tensor, relu: bool) -> torch.Tensor:
    """The gradient before the activation: ``grad`` where the ReLU passed (``out > 0``), all of it without ReLU."""
    return grad * (out > 0).to(grad.dtype) if relu else grad


def _tap_weight_grad(gz: torch.Tensor, x: torch.Tensor, taps: int, frames: int) -> torch.Tensor:
    """``∂/∂w[i, c] = Σ_{n,h,w} gz[n] · x[n + i − r]`` within each clip of ``frames`` rows (zero outside), float32
    ``(taps, C)``, accumulated in float64 for float64 inputs."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    n, c = x.shape[:2]
    g = gz.to(acc).reshape(n // frames, frames, c, -1)
    v = x.to(acc).reshape(n // frames, frames, c, -1)
    r = taps // 2
    out = []
    for i in range(taps):
        d = i - r                                     # gz[t] pairs with x[t + d]
        if abs(d) >= frames:
            out.append(torch.zeros(c, dtype=acc, device=x.device))
        elif d >= 0:
            out.append((g[:, :frames - d] * v[:, d:]).sum(dim=(0, 1, 3)))
        else:
            out.append((g[:, -d:] * v[:, :frames + d]).sum(dim=(0, 1, 3)))
    return torch.stack(out).to(torch.float32)


def _tam_setup(ctx, inputs, output):
    x, weight, num_frames, relu = inputs
    ctx.save_for_backward(x, weight, output)
    ctx.num_frames, ctx.relu = num_frames, relu


def _tam_backward(ctx, grad):
    x, weight, out = ctx.saved_tensors
    gz = _act_grad(grad, out, ctx.relu).contiguous()
    gx = torch.ops.afnet_edge.temporal_aggregate(gz, weight.flip(0).contiguous(), ctx.num_frames, False) \
        if ctx.needs_input_grad[0] else None
    gw = _tap_weight_grad(gz, x, weight.shape[0], ctx.num_frames) if ctx.needs_input_grad[1] else None
    return gx, gw, None, None


def _tam_pair_setup(ctx, inputs, output):
    y, w_big, w_little, num_pairs, relu = inputs
    ctx.save_for_backward(y, w_big, w_little, *output)
    ctx.num_pairs, ctx.relu = num_pairs, relu


def _tam_pair_backward(ctx, grad_big, grad_little):
    y, w_big, w_little, big, little = ctx.saved_tensors
    taps, p = w_big.shape[0], ctx.num_pairs
    gzs = [None if g is None else _act_grad(g, o, ctx.relu).contiguous()
           for g, o in ((grad_big, big), (grad_little, little))]
    gy = None
    if ctx.needs_input_grad[0]:
        for gz, w in zip(gzs, (w_big, w_little)):
            if gz is not None:
                part = torch.ops.afnet_edge.temporal_aggregate(gz, w.flip(0).contiguous(), p, False)
                gy = part if gy is None else gy + part
    gws = [_tap_weight_grad(gz, y, taps, p) if gz is not None and ctx.needs_input_grad[1 + j] else None
           for j, gz in enumerate(gzs)]
    return gy, gws[0], gws[1], None, None


def _bl_merge_setup(ctx, inputs, output):
    big, little, relu = inputs
    ctx.save_for_backward(output)
    ctx.big_shape, ctx.relu = tuple(big.shape), relu


def _bl_merge_backward(ctx, grad):
    (out,) = ctx.saved_tensors
    gz = _act_grad(grad, out, ctx.relu)
    g_big = None
    if ctx.needs_input_grad[0]:
        if ctx.big_shape == tuple(out.shape):
            g_big = gz
        else:   # the nearest upsampling's adjoint: each big pixel collects the gradient of the pixels it filled
            probe = torch.zeros(ctx.big_shape, dtype=gz.dtype, device=gz.device, requires_grad=True)
            with torch.enable_grad():
                up = torch.nn.functional.interpolate(probe, size=tuple(out.shape[2:]), mode="nearest")
            (g_big,) = torch.autograd.grad(up, probe, gz)
    return g_big, gz if ctx.needs_input_grad[1] else None, None


if _BLVNET_KERNELS["meta"]:
    torch.library.register_autograd(f"{_LIB}::temporal_aggregate", _tam_backward, setup_context=_tam_setup)
    torch.library.register_autograd(f"{_LIB}::temporal_aggregate_pair", _tam_pair_backward,
                                    setup_context=_tam_pair_setup)
    torch.library.register_autograd(f"{_LIB}::bl_merge", _bl_merge_backward, setup_context=_bl_merge_setup)

__all__ += ["temporal_aggregate", "temporal_aggregate_pair", "bl_merge", "has_blvnet_kernels"]


# =====================================================================================================================
# AdaFocus kernel (issue 12): focus_crop and its backward ops focus_crop_grad_x / focus_crop_grad_centres. Semantics:
# :func:`.adafocus_reference.focus_crop` (same arguments). Not part of the FusedOps protocol (seam.py): the AdaFocus
# models call :func:`focus_crop` directly. The op has an autograd formula (gradients w.r.t. the frames and, in
# ``bilinear`` mode, the positions: spec §6.3), so training runs through it. Positions are converted to the kernels'
# coordinate type on their own device (float32; float64 for float64 frames): no host-to-device copy.
from . import adafocus_reference as _ada_ref  # noqa: E402

_CROP_OPS = ("focus_crop", "focus_crop_grad_x", "focus_crop_grad_centres")


def _crop_table() -> dict[str, bool]:
    table = {"meta": AVAILABLE and all(hasattr(torch.ops.afnet_edge, op) for op in _CROP_OPS)}
    for dtype, key in (("cpu", "CPU"), ("cuda", "CUDA")):
        table[dtype] = table["meta"] and all(
            torch._C._dispatch_has_kernel_for_dispatch_key(f"{_LIB}::{op}", key) for op in _CROP_OPS)
    return table


_CROP_KERNELS = _crop_table()


def has_crop_kernels(device: str | torch.device) -> bool:
    """True when the extension has the focus_crop kernels for ``device``'s type ("cpu", "cuda"; "meta": fakes)."""
    dtype = device.type if isinstance(device, torch.device) else torch.device(device).type
    return _CROP_KERNELS.get(dtype, False)


def _crop_coord_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def focus_crop(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str = "bilinear") -> torch.Tensor:
    """One ``patch`` × ``patch`` window per frame at a per-frame position: ``(N, C, H, W)``, ``(N, 2)`` (row, col)
    actions in [0, 1] → ``(N, C, P, P)``; modes ``"bilinear"`` (V2 sub-pixel, ≤ 2e-4 from ``affine_grid`` +
    ``grid_sample``) and ``"floor"`` (V1 integer crop, exact). The compiled kernel when the extension has it for the
    device, else :func:`.adafocus_reference.focus_crop`. Differentiable w.r.t. ``x`` and (bilinear) ``centres``."""
    _ada_ref._check_crop_args(x, centres, patch, mode)
    if not has_crop_kernels(x.device):
        return _ada_ref.focus_crop(x, centres, patch, mode)
    c = centres.to(_crop_coord_dtype(x))
    if mode == "floor":  # an integer crop: no gradient reaches the positions (as the reference)
        c = c.detach()
    return torch.ops.afnet_edge.focus_crop(x, c, patch, mode)


def _check_crop_fake(x, centres, patch: int, mode: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be a floating-point tensor of shape (N, C, H, W), got shape {tuple(x.shape)}")
    _check_float(x, "x")
    ct = _crop_coord_dtype(x)
    if centres.dtype != ct:
        raise TypeError(f"centres must be {str(ct).replace('torch.', '')} (the coordinate type for "
                        f"{str(x.dtype).replace('torch.', '')} frames), got {centres.dtype}")
    if centres.dim() != 2 or centres.shape[0] != x.shape[0] or centres.shape[1] != 2:
        raise ValueError(f"centres must have shape (N, 2) = ({x.shape[0]}, 2) holding (row, col) actions in [0, 1], "
                         f"got {tuple(centres.shape)}")
    if centres.device != x.device:
        raise ValueError(f"centres are on {centres.device} but x is on {x.device}")
    if not 1 <= patch <= min(x.shape[2], x.shape[3]):
        raise ValueError(f"patch must be an int in [1, min(H, W)] = [1, {min(x.shape[2], x.shape[3])}], got {patch}")
    if mode not in _ada_ref.CROP_MODES:
        raise ValueError(f"mode must be one of {_ada_ref.CROP_MODES}, got {mode!r}")


if _CROP_KERNELS["meta"]:
    @torch.library.register_fake(f"{_LIB}::focus_crop")
    def _focus_crop_fake(x, centres, patch, mode="bilinear"):
        _check_crop_fake(x, centres, patch, mode)
        return x.new_empty((x.shape[0], x.shape[1], patch, patch))

    @torch.library.register_fake(f"{_LIB}::focus_crop_grad_x")
    def _focus_crop_grad_x_fake(grad, centres, height, width, mode):
        if grad.dim() != 4 or grad.shape[2] != grad.shape[3]:
            raise ValueError(f"grad must be the (N, C, P, P) gradient of focus_crop's output, got shape "
                             f"{tuple(grad.shape)}")
        _check_crop_fake(grad.new_empty((grad.shape[0], grad.shape[1], height, width)), centres, grad.shape[2], mode)
        return grad.new_empty((grad.shape[0], grad.shape[1], height, width))

    @torch.library.register_fake(f"{_LIB}::focus_crop_grad_centres")
    def _focus_crop_grad_centres_fake(grad, x, centres, mode):
        _check_crop_fake(x, centres, grad.shape[-1] if grad.dim() == 4 else 1, mode)
        _check_same(x, "x", grad, "grad")
        if grad.dim() != 4 or tuple(grad.shape[:2]) != tuple(x.shape[:2]) or grad.shape[2] != grad.shape[3]:
            raise ValueError(f"grad must be the (N, C, P, P) gradient of focus_crop's output for x {tuple(x.shape)}, "
                             f"got shape {tuple(grad.shape)}")
        return centres.new_empty((x.shape[0], 2))

    def _focus_crop_setup(ctx, inputs, output):
        x, centres, patch, mode = inputs
        ctx.mode, ctx.hw = mode, (x.shape[2], x.shape[3])
        # x is needed only for the positions' gradient
        ctx.save_for_backward(x if ctx.needs_input_grad[1] and mode == "bilinear" else None, centres)

    def _focus_crop_backward(ctx, g):
        x, centres = ctx.saved_tensors
        g = g.contiguous()
        gx = gc = None
        if ctx.needs_input_grad[0]:
            gx = torch.ops.afnet_edge.focus_crop_grad_x(g, centres, ctx.hw[0], ctx.hw[1], ctx.mode)
        if ctx.needs_input_grad[1]:
            gc = (torch.ops.afnet_edge.focus_crop_grad_centres(g, x, centres, ctx.mode) if x is not None
                  else torch.zeros_like(centres))
        return gx, gc, None, None

    torch.library.register_autograd(f"{_LIB}::focus_crop", _focus_crop_backward, setup_context=_focus_crop_setup)


__all__ += ["focus_crop", "has_crop_kernels"]
