"""afnet_edge.export — ONNX export, TensorRT engine build and TensorRT runtime for AFNet's frame-skipping path.

This folder lives at the repository root (``export/``) and is imported as ``afnet_edge.export`` through the committed
link ``afnet_edge/export -> ../export`` (see docs/layout.md): a plain package path that every tool resolves.

Modules (all heavy dependencies are imported where used, with an error naming the extra to install):

* :mod:`.onnx_export` — :func:`export_onnx` (``portable`` and ``plugin`` flavours), :func:`read_metadata`;
* :mod:`.plugins`     — plugin names, version, namespace and fields (the contract with ``csrc/trt``);
* :mod:`.trt_backend` — finding ``tensorrt`` / ``tensorrt_rtx``, loading the plugin library;
* :mod:`.engine`      — :func:`build_engine` (ONNX → serialised engine + sidecar JSON);
* :mod:`.runtime`     — :class:`TRTRunner`, :func:`predict_with_engine`;
* :mod:`.verify`      — PyTorch vs ONNX Runtime / TensorRT comparison;
* :mod:`.cli`         — ``afnet-edge export`` and ``afnet-edge verify``.
"""
__all__ = ["export_onnx", "read_metadata", "build_engine", "TRTRunner", "predict_with_engine"]


def __getattr__(name):  # lazy: importing afnet_edge.export costs nothing until a function is used
    if name in ("export_onnx", "read_metadata"):
        from . import onnx_export
        return getattr(onnx_export, name)
    if name == "build_engine":
        from .engine import build_engine
        return build_engine
    if name in ("TRTRunner", "predict_with_engine"):
        from . import runtime
        return getattr(runtime, name)
    raise AttributeError(f"module 'afnet_edge.export' has no attribute {name!r}")
