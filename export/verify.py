"""Verification of exported artefacts against PyTorch: same random clips through both, error statistics.

* :func:`verify_onnx` — an ONNX file (``portable`` flavour) through ONNX Runtime on CPU;
* :func:`verify_engine` — a TensorRT engine through :class:`~afnet_edge.export.runtime.TRTRunner` (needs a GPU).

The PyTorch side is the model configured as the export was: ``compact`` execution, ``topk`` selection with the
exported ratio, pure-PyTorch kernels, float32 on CPU. Reported: max and mean absolute error, the error relative to
the largest reference logit, and top-1 agreement over the clips.
"""
from __future__ import annotations

import numpy as np
import torch

from .engine import read_sidecar
from .ops import flavour_scope
from .onnx_export import INPUT_NAME, check_model_matches, clip_frames, export_adapter, file_sha256, read_metadata
from .runtime import TRTRunner

#: Relative tolerance (max |diff| / max |reference|) for a pass: fp32 as the issue demands, fp16 engines looser.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


def _reference(model, clips: torch.Tensor, ratio: float) -> np.ndarray:
    adapter = export_adapter(model)
    if adapter.wrapper is not None:               # the family's exported computation (e.g. AdaFocus: plain forward)
        # made in the widest flavour the family exports (eagerly every flavour runs the model's own forward; a
        # full-video model with the cumulative rule has only a plugin export)
        with flavour_scope("plugin" if "plugin" in adapter.flavours else "portable"):
            wrapper = adapter.wrapper(model).eval()
        with torch.no_grad():
            return wrapper(clips).float().numpy()
    saved = model.config()
    model.configure(execution="compact", selection="topk", ratio=ratio, kernels="torch")
    try:
        with torch.no_grad():
            return model(clips).logits.float().numpy()
    finally:
        model.configure(**saved)


def compare(reference: np.ndarray, actual: np.ndarray, precision: str = "fp32") -> dict:
    """Error statistics of ``actual`` vs ``reference`` logits ``(B, classes)``."""
    if reference.shape != actual.shape:
        raise ValueError(f"output shape {actual.shape} differs from the reference {reference.shape}")
    diff = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    scale = float(np.abs(reference).max()) or 1.0
    rel = float(diff.max()) / scale
    top1 = float((actual.argmax(-1) == reference.argmax(-1)).mean())
    tol = TOLERANCE[precision]
    return {"max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean()), "max_rel_error": rel,
            "top1_agreement": top1, "clips": int(reference.shape[0]), "precision": precision, "tolerance": tol,
            "ok": bool(rel <= tol and top1 == 1.0 if precision == "fp32" else rel <= tol)}


def _check_checkpoint(meta: dict, checkpoint: str | None, what: str) -> None:
    if checkpoint and meta.get("checkpoint_sha256") and meta["checkpoint_sha256"] != file_sha256(checkpoint):
        raise ValueError(f"{what} was exported from checkpoint {meta.get('checkpoint')!r}, not from {checkpoint} "
                         f"(different SHA-256): pass the same --checkpoint or re-export")


def _clips(meta: dict, rounds: int, batch: int | None, seed: int) -> list:
    b = meta.get("batch")
    b = int(batch or meta.get("example_batch", 1)) if b == "dynamic" else int(b)
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, clip_frames(meta), 3, meta["height"], meta["width"], generator=g) for _ in range(rounds)]


def verify_onnx(onnx_path: str, model, rounds: int = 2, seed: int = 0, checkpoint: str | None = None,
                batch: int | None = None) -> dict:
    """Run ``rounds`` random clip batches through ONNX Runtime (CPU) and ``model``; return :func:`compare`'s dict
    plus the metadata. Raises ValueError when the file was exported from another model or is the plugin flavour."""
    meta = read_metadata(onnx_path)
    check_model_matches(meta, model, f"ONNX file {onnx_path}")
    _check_checkpoint(meta, checkpoint, onnx_path)
    if meta.get("flavour") != "portable":
        raise ValueError(f"{onnx_path} is the {meta.get('flavour')} flavour: its plugin nodes run only in TensorRT; "
                         f"verify a portable export here, or the engine with --engine on a GPU")
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("onnxruntime is required to verify ONNX files: pip install afnet_edge[onnx]") from None
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    refs, outs = [], []
    for clip in _clips(meta, rounds, batch, seed):
        refs.append(_reference(model, clip, meta["ratio"]))
        outs.append(sess.run(None, {INPUT_NAME: clip.numpy()})[0])
    res = compare(np.concatenate(refs), np.concatenate(outs), "fp32")
    return {**res, "backend": f"onnxruntime {ort.__version__} (CPU)", "file": onnx_path, "metadata": meta}


def verify_engine(engine_path: str, model, rounds: int = 2, seed: int = 0, checkpoint: str | None = None,
                  plugin_library: str | None = None, batch: int | None = None) -> dict:
    """Run ``rounds`` random clip batches through the TensorRT engine and ``model`` (see :func:`verify_onnx`)."""
    meta = read_sidecar(engine_path)
    check_model_matches(meta, model, f"engine {engine_path}")
    _check_checkpoint(meta, checkpoint, engine_path)
    refs, outs = [], []
    clips = _clips(meta, rounds, batch, seed)
    with TRTRunner(engine_path, plugin_library=plugin_library, batch=int(clips[0].shape[0])) as runner:
        for clip in clips:
            refs.append(_reference(model, clip, meta["ratio"]))
            outs.append(runner(clip.numpy()))
    res = compare(np.concatenate(refs), np.concatenate(outs), meta.get("precision", "fp32"))
    return {**res, "backend": f"{meta['tensorrt']['module']} {meta['tensorrt']['version']}", "file": engine_path,
            "metadata": meta}
