"""The switch through which the AdaFocus models call their crop (issue 12 item 4).

:func:`focus_crop` takes the model's ``kernels`` configuration (``"auto"`` / ``"torch"`` / ``"ext"``, as the other
families' fused ops, :func:`afnet_edge.kernels.ops`):

* ``"torch"`` — :func:`.adafocus_reference.focus_crop`, the pure-PyTorch reference (export-friendly);
* ``"ext"``   — the compiled ``afnet_edge::focus_crop`` op (error if the extension is not built; on a device for which
  the extension has no kernels, e.g. CUDA tensors with a CPU-only build, the entry point runs the reference, as
  :mod:`.ext`'s other entry points do);
* ``"auto"``  — the compiled op when the extension is built, else the reference.

The reference also runs while a TorchScript tracer or an ONNX export is active (the exported graph must hold standard
ops), and inside ``with afnet_edge.kernels.use_ops("torch")``. The op has an autograd formula for the frames and (in
``bilinear`` mode) the positions, so training runs through it; results equal the reference within fp32 rounding
(``floor``: bit-exact).

Inside ``with use_crop(fn)`` every call goes to ``fn`` instead (same arguments and result): the ONNX exporter's
``plugin`` flavour installs there the marker that emits one ``FocusCrop`` node (:mod:`afnet_edge.export.ops`), so the
models need not know about export.

``with official_crop():`` is such a block for benchmarking: ``bilinear`` calls run :func:`release_crop`, the official
V2 execution (θ built on the host and copied to the device, ``affine_grid`` + ``grid_sample``), the "official-style"
row of ``afnet-edge bench --cross-family``; ``floor`` calls take the usual switch (``kernels="auto"``).
"""
from __future__ import annotations

import contextvars
from contextlib import AbstractContextManager, contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from . import BACKENDS, current_ops, extension_available
from . import adafocus_reference as _ref

__all__ = ["focus_crop", "use_crop", "uses_kernel", "official_crop", "release_crop"]

CropFn = Callable[[torch.Tensor, torch.Tensor, int, str], torch.Tensor]
_CROP: contextvars.ContextVar[CropFn | None] = contextvars.ContextVar("afnet_edge_focus_crop", default=None)


@contextmanager
def use_crop(fn: CropFn | None) -> Iterator[None]:
    """Within the ``with`` block (this thread / task only), :func:`focus_crop` calls ``fn(x, centres, patch, mode)``
    whatever the ``kernels`` setting (None: the usual switch). Nests; leaving restores the previous one. TypeError
    if ``fn`` is neither None nor callable."""
    if fn is not None and not callable(fn):
        raise TypeError(f"fn must be a callable (x, centres, patch, mode) -> patches or None, got {type(fn).__name__}")
    token = _CROP.set(fn)
    try:
        yield
    finally:
        _CROP.reset(token)


def uses_kernel(x: torch.Tensor, kernels: str = "auto") -> bool:
    """True when :func:`focus_crop` on ``x`` with this ``kernels`` setting runs the compiled op."""
    if kernels not in BACKENDS:
        raise ValueError(f"kernels must be one of {BACKENDS}, got {kernels!r}")
    impl = current_ops()
    if kernels == "torch" or (impl is not None and getattr(impl, "name", None) == "torch"):
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    if not extension_available():
        if kernels == "ext":
            raise RuntimeError("kernels='ext' requested but the extension afnet_edge._C is not built; build it with "
                               "`pip install --no-build-isolation -e .` or use kernels='torch'")
        return False
    from . import ext
    return ext.has_crop_kernels(x.device)


def focus_crop(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str = "bilinear",
               kernels: str = "auto") -> torch.Tensor:
    """:func:`.adafocus_reference.focus_crop` (same arguments and result) through the ``kernels`` switch (or the
    function of an active :func:`use_crop`)."""
    override = None if torch.compiler.is_compiling() else _CROP.get()  # dynamo cannot read a ContextVar
    if override is not None:
        return override(x, centres, patch, mode)
    if uses_kernel(x, kernels):
        from . import ext
        return ext.focus_crop(x, centres, patch, mode)
    return _ref.focus_crop(x, centres, patch, mode)


def release_crop(x: torch.Tensor, centres: torch.Tensor, patch: int) -> torch.Tensor:
    """The official AdaFocusV2 crop as the release runs it (spec §2.3, §6.3): the affine matrix θ is created on the
    host and copied to ``x``'s device, filled by small ops, then ``affine_grid`` materialises the (N, P, P, 2) grid
    and ``grid_sample`` (bilinear, zero padding, ``align_corners=False``) reads it. Equal to ``focus_crop(...,
    "bilinear")`` within 2e-4 on unit-variance inputs (tested)."""
    n, c, h, w = x.shape
    a = centres.to(x.dtype)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype).to(x.device)      # host tensor + copy, as the release
    theta[:, 0, 0] = patch / w
    theta[:, 1, 1] = patch / h
    theta[:, 0, 2] = -1 + (2 * (a[:, 1] * (w - patch)) + patch) / w
    theta[:, 1, 2] = -1 + (2 * (a[:, 0] * (h - patch)) + patch) / h
    grid = F.affine_grid(theta, [n, c, patch, patch], align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def _official(x: torch.Tensor, centres: torch.Tensor, patch: int, mode: str) -> torch.Tensor:
    if mode == "bilinear":
        return release_crop(x, centres, patch)
    with use_crop(None):
        return focus_crop(x, centres, patch, mode)


def official_crop() -> AbstractContextManager[None]:
    """``with official_crop():`` — :func:`focus_crop` in ``bilinear`` mode runs :func:`release_crop` (the official
    V2 crop) whatever the ``kernels`` setting (a :func:`use_crop` block); for timing the official execution against
    the fused one."""
    return use_crop(_official)
