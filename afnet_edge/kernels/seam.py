"""The typed seam between model code and the fused ops: the :class:`FusedOps` protocol every implementation
satisfies, and the helpers that check and wrap implementations.

Implementations (each an object with a ``name`` and the seven ops as attributes):

* ``afnet_edge.kernels.ops("torch")`` — the pure-PyTorch reference with the extension's keywords;
* ``afnet_edge.kernels.ops("ext")`` — the compiled ``afnet_edge._C`` operators;
* ``afnet_edge.export.ops.PORTABLE`` / ``PLUGIN`` — the two ONNX export flavours;
* whatever a caller passes to :func:`afnet_edge.kernels.use_ops` (a profiler's timing wrapper, see :func:`wrap_ops`).

The model never chooses among them by patching module globals: its forward takes the implementation set with
:func:`afnet_edge.kernels.use_ops` when there is one, else the one its ``kernels`` configuration names.
"""
from __future__ import annotations

import functools
import inspect
from types import SimpleNamespace
from typing import Callable, Protocol, runtime_checkable

import torch

from .reference import LazyChain

OP_NAMES = ("focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames",
            "gather_conv1x1", "conv1x1_scatter")

SelectResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@runtime_checkable
class FusedOps(Protocol):
    """The seven fused ops as the model calls them. Semantics: :mod:`afnet_edge.kernels.reference`; keywords:
    docs/kernels.md.

    Keywords beyond the reference signatures, accepted by every implementation:

    * ``chain`` — a :class:`~afnet_edge.kernels.reference.LazyChain` of pending per-frame constant maps (the "lazy"
      compact plan, issue 16) or None: the op reads the *logical* value of the stage tensor (``x`` / ``residual`` /
      ``xb``), i.e. every stored row with its blocks ``start[f] .. upto − 1`` applied on the fly.
    * ``validate`` — check index *values* (in range; sorted and unique for the scatters); one host sync on
      CUDA; implementations that cannot or need not check (graph export) ignore it.
    * ``out`` — a preallocated, contiguous result of the exact shape/dtype/device (no autograd).
    * ``inplace`` (the scatters) — permission to write the result into ``residual``; callers always use the
      returned tensor, since an implementation may decline (autograd, graph export).
    """

    name: str

    def focal_gather(self, x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool, *,
                     chain: LazyChain | None = None, validate: bool = True,
                     out: torch.Tensor | None = None) -> torch.Tensor:
        """``(K, C, H, W)``: frames ``index`` (int64 ``(K,)``) of ``x`` ``(N, C, H, W)``, TSM-shifted if ``shift``;
        with ``chain``, of the logical tensor (each row, and each shifted-in neighbour channel segment, with its own
        frame's pending blocks applied: :func:`~afnet_edge.kernels.reference.lazy_focal_gather`)."""
        ...

    def focal_scatter(self, residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                      const: torch.Tensor | None, relu: bool, *, chain: LazyChain | None = None,
                      validate: bool = True, inplace: bool = False,
                      out: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C, H, W)``: ``φ(residual[f] + (y[k] if index[k] == f else const))``; ``y`` ``(K, C, H, W)``,
        ``const`` ``(C, H, W)`` or None (zeros), ``index`` sorted ascending and unique. With ``chain`` (``const``
        must be None): selected rows ``φ(logical(residual)[f] + y[k])``, every other row left as stored
        (:func:`~afnet_edge.kernels.reference.lazy_focal_scatter`); the caller then sets ``start[index] = upto + 1``."""
        ...

    def ample_fuse_pool(self, xl: torch.Tensor, xb: torch.Tensor, *, chain: LazyChain | None = None,
                        out: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C)``: per-frame, per-channel mean of ``up(xl) + xb``; ``xl`` ``(N, C, h, w)``, ``xb`` ``(N, C, H, W)``
        (with ``chain``: the logical ``xb``)."""
        ...

    def ample_fuse_blend(self, xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, *,
                         chain: LazyChain | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C, H, W)``: ``act(a ⊙ up(xl) + (1 − a) ⊙ xb)`` with ``a`` ``(N, C)``; act = ReLU if ``relu``
        (with ``chain``: the logical ``xb``)."""
        ...

    def select_frames(self, logits: torch.Tensor, mode: str, k: int = 0, *,
                      out: SelectResult | None = None) -> SelectResult:
        """``(index (L, M), counts (L,), mask (L, B, T))`` from navigation logits ``(L, B, T, 2)``."""
        ...

    def gather_conv1x1(self, x: torch.Tensor, index: torch.Tensor, num_frames: int, shift: bool,
                       weight: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor, relu: bool, *,
                       chain: LazyChain | None = None, validate: bool = True,
                       out: torch.Tensor | None = None) -> torch.Tensor:
        """``(K, O, H, W)``: ``act(conv1x1(focal_gather(x, index, T, shift, chain=chain), weight, groups) · scale +
        bias)``; ``x`` ``(N, C, H, W)``, ``weight`` ``(O, C/groups[, 1, 1])``, ``scale``/``bias`` float32 ``(O,)``
        (folded BN), act = ReLU if ``relu``; float32 arithmetic, one rounding to ``x.dtype``
        (:func:`~afnet_edge.kernels.reference.gather_conv1x1`; not bit-exact to conv + BN)."""
        ...

    def conv1x1_scatter(self, h: torch.Tensor, weight: torch.Tensor, groups: int, scale: torch.Tensor,
                        bias: torch.Tensor, residual: torch.Tensor, index: torch.Tensor, relu: bool, *,
                        chain: LazyChain | None = None, validate: bool = True, inplace: bool = False,
                        out: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C, H, W)``: selected rows f = ``index[k]`` get ``φ(conv1x1(h, weight, groups)[k] · scale + bias +
        logical(residual)[f])``, every other row of ``residual`` is left as stored; ``h`` ``(K, C_h, H, W)``,
        ``weight`` ``(C, C_h/groups[, 1, 1])``, ``index`` sorted ascending and unique
        (:func:`~afnet_edge.kernels.reference.conv1x1_scatter`)."""
        ...


def _protocol_parameters(op: str) -> list[inspect.Parameter]:
    return list(inspect.signature(getattr(FusedOps, op)).parameters.values())[1:]  # without self


def signature_mismatches(impl: object) -> list[str]:
    """What keeps ``impl`` from satisfying :class:`FusedOps`, one line per problem (empty when it does).

    Compares each op's parameters with the protocol's by name, kind (positional / keyword-only) and default;
    a wrapper made with :func:`functools.wraps` is compared through to the function it wraps.
    """
    problems = []
    if not isinstance(getattr(impl, "name", None), str):
        problems.append("name: missing or not a str")
    for op in OP_NAMES:
        fn = getattr(impl, op, None)
        if not callable(fn):
            problems.append(f"{op}: missing or not callable")
            continue
        try:
            got = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError) as exc:
            problems.append(f"{op}: no signature ({exc})")
            continue
        want = _protocol_parameters(op)
        g = [(p.name, p.kind, p.default) for p in got]
        w = [(p.name, p.kind, p.default) for p in want]
        if g != w:
            problems.append(f"{op}: expected ({_format(want)}), got ({_format(got)})")
    return problems


def _format(params: list[inspect.Parameter]) -> str:
    return str(inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in params]))[1:-1]


def check_ops(impl: object, strict: bool = False) -> FusedOps:
    """``impl`` if it provides every op (callable) and a ``name``; with ``strict``, also the protocol's exact
    parameters (:func:`signature_mismatches`). Raises TypeError naming what is missing or different."""
    if strict:
        problems = signature_mismatches(impl)
    else:
        problems = [f"{n}: missing or not callable" for n in OP_NAMES if not callable(getattr(impl, n, None))]
        if not isinstance(getattr(impl, "name", None), str):
            problems.append("name: missing or not a str")
    if problems:
        raise TypeError(f"ops must implement afnet_edge.kernels.FusedOps (a name and the ops {', '.join(OP_NAMES)}); "
                        f"{type(impl).__name__} does not: " + "; ".join(problems))
    return impl  # type: ignore[return-value]


def make_ops(name: str, **fns: Callable) -> FusedOps:
    """A :class:`FusedOps` namespace from the seven op functions (keywords ``focal_gather=...`` etc.), checked
    strictly against the protocol (TypeError on a missing op, an unknown one or a different signature)."""
    unknown = sorted(set(fns) - set(OP_NAMES))
    if unknown:
        raise TypeError(f"unknown ops {unknown}; FusedOps has {list(OP_NAMES)}")
    return check_ops(SimpleNamespace(name=name, **fns), strict=True)


def wrap_ops(base: FusedOps, wrap: Callable[[str, Callable], Callable], name: str | None = None) -> FusedOps:
    """``base`` with every op replaced by ``wrap(op_name, base_op)`` (e.g. a timer or a call recorder), keeping the
    base op's signature and docstring (:func:`functools.update_wrapper`), so the result still satisfies
    :class:`FusedOps` strictly. ``name`` defaults to ``base.name``."""
    check_ops(base)
    fns = {}
    for op in OP_NAMES:
        fn = getattr(base, op)
        fns[op] = wrapped = wrap(op, fn)
        if wrapped is not fn:
            functools.update_wrapper(wrapped, fn)
    return SimpleNamespace(name=base.name if name is None else name, **fns)  # type: ignore[return-value]
