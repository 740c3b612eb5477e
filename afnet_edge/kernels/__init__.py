"""The Python face of afnet_edge's fused ops, and the one place that chooses their implementation.

``ops(backend)`` returns a namespace with ``focal_gather``, ``focal_scatter``, ``ample_fuse_pool``,
``ample_fuse_blend`` and ``select_frames`` (signatures and semantics: :mod:`afnet_edge.kernels.reference`):

* ``"torch"`` — the pure-PyTorch reference (always available, export-friendly);
* ``"ext"``   — the compiled ``afnet_edge._C`` operators (error if the extension is not built);
* ``"auto"``  — the extension when it is built, the reference otherwise.
"""
from __future__ import annotations

from types import SimpleNamespace

from . import reference

BACKENDS = ("auto", "torch", "ext")
_OP_NAMES = ("focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames")

_TORCH = SimpleNamespace(name="torch", **{n: getattr(reference, n) for n in _OP_NAMES})


def extension_available() -> bool:
    """True when the compiled extension ``afnet_edge._C`` can be imported."""
    try:
        from . import ext  # noqa: F401
    except ImportError:
        return False
    return ext.AVAILABLE


def ops(backend: str = "auto") -> SimpleNamespace:
    """Namespace of op implementations for ``backend`` in ``("auto", "torch", "ext")``."""
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
