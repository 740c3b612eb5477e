"""The code Triton's Python backend runs for the models :mod:`afnet_edge.serve.repository` writes.

Each Python-backend model folder holds the same small ``model.py`` (:data:`MODEL_PY`): it puts the afnet_edge checkout
that wrote the repository on ``sys.path`` (parameter ``afnet_edge_path``) and hands the work to :func:`make_model`
with the model's role (parameter ``afnet_edge_role``):

* ``preprocess``: ``VIDEO`` (BYTES, one encoded video file per batch entry) → ``CLIP`` ``(T, 3, S, S)`` float32,
  ``FRAME_INDICES`` ``(T,)`` int32 (0-based video frames), ``VIDEO_FRAMES`` ``(1,)`` int32 — exactly
  :func:`afnet_edge.video.load_clip`, the sampling and preprocessing of ``afnet-edge predict``;
* ``classifier``: ``clip`` ``(T, 3, S, S)`` → ``logits`` ``(C,)`` and, for models with navigation, ``masks``
  ``(N, T)`` (1.0 where a navigation module kept the frame): the PyTorch model with ``predict``'s configuration
  (compact execution, threshold selection by default), one forward per dynamic batch;
* ``postprocess``: ``logits`` (+ ``masks``), ``FRAME_INDICES`` → top-k ``CLASS_IDS``, ``LABELS``, ``SCORES``
  (softmax probabilities), and ``SELECTED`` ``(N, T)`` int32 (the video frame each module kept, -1 where it skipped
  the frame) with the module names ``NAV_MODULES``.

A bad request (empty body, a file that is not a video) gets an ``INVALID_ARG`` error (HTTP 400) for that request only;
the model keeps serving. ``triton_python_backend_utils`` exists only inside the server: it is imported there.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

#: ``model.py`` of every Python-backend model of a generated repository.
MODEL_PY = '''"""Triton Python backend entry point written by `afnet-edge serve --triton-repo` (afnet_edge.serve)."""
import json
import sys


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = params.get("afnet_edge_path")
        if path and path not in sys.path:
            sys.path.insert(0, path)
        from afnet_edge.serve.triton_models import make_model
        self.impl = make_model(params["afnet_edge_role"], args, params)

    def execute(self, requests):
        return self.impl.execute(requests)

    def finalize(self):
        finalize = getattr(self.impl, "finalize", None)
        if finalize is not None:
            finalize()
        self.impl = None
'''


def _pb():
    import triton_python_backend_utils as pb_utils  # noqa: PLC0415 (only inside the Triton server)
    return pb_utils


def _invalid(pb_utils, message: str):
    return pb_utils.InferenceResponse(output_tensors=[],
                                      error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))


class Preprocess:
    """``VIDEO`` bytes → ``CLIP``, ``FRAME_INDICES``, ``VIDEO_FRAMES`` (see the module docstring)."""

    def __init__(self, params: dict[str, str]):
        self.frames = int(params["num_frames"])
        self.size = int(params["size"])
        self.short = params.get("short", "official")
        scale = json.loads(params.get("scale_size", "[240, 320]"))
        self.scale_size = (int(scale[0]), int(scale[1])) if scale else None
        self.workdir = tempfile.mkdtemp(prefix="afnet_edge_preprocess_")

    def decode(self, data: bytes):
        from afnet_edge.video import load_clip

        if not data:
            raise ValueError("VIDEO: the request carries an empty video file")
        fd, path = tempfile.mkstemp(suffix=".video", dir=self.workdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            clip, info, indices = load_clip(path, self.frames, size=self.size, scale_size=self.scale_size,
                                            short=self.short)
        finally:
            os.unlink(path)
        return clip.numpy(), indices, info.num_frames

    def execute(self, requests):
        import numpy as np

        pb_utils = _pb()
        responses = []
        for request in requests:
            videos = pb_utils.get_input_tensor_by_name(request, "VIDEO").as_numpy().reshape(-1)
            try:
                decoded = [self.decode(bytes(v)) for v in videos]
            except (ValueError, FileNotFoundError) as exc:
                msg = str(exc).replace(self.workdir + os.sep, "")
                responses.append(_invalid(pb_utils, msg))
                continue
            clip = np.stack([d[0] for d in decoded]).astype(np.float32)
            idx = np.asarray([d[1] for d in decoded], dtype=np.int32)
            n = np.asarray([[d[2]] for d in decoded], dtype=np.int32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("CLIP", clip), pb_utils.Tensor("FRAME_INDICES", idx),
                pb_utils.Tensor("VIDEO_FRAMES", n)]))
        return responses

    def finalize(self) -> None:
        import shutil
        shutil.rmtree(self.workdir, ignore_errors=True)


class Classifier:
    """``clip`` → ``logits`` (+ ``masks``): the afnet_edge PyTorch model, one forward per dynamic batch."""

    def __init__(self, params: dict[str, str], model_dir: str):
        import torch

        from afnet_edge.checkpoint import load_checkpoint
        from afnet_edge.models import create_model

        threads = int(params.get("torch_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
        options = json.loads(params.get("options", "{}"))
        self.model = create_model(params["model"], num_classes=int(params["num_classes"]),
                                  num_frames=int(params["num_frames"]), execution=params["execution"],
                                  selection=params["selection"], ratio=float(params["ratio"]), **options).eval()
        load_checkpoint(self.model, os.path.join(model_dir, params["checkpoint"]))
        self.with_masks = params.get("masks", "0") == "1"

    def execute(self, requests):
        import numpy as np
        import torch

        pb_utils = _pb()
        clips = [pb_utils.get_input_tensor_by_name(r, "clip").as_numpy() for r in requests]
        sizes = [c.shape[0] for c in clips]
        batch = torch.from_numpy(np.ascontiguousarray(np.concatenate(clips)))
        if not bool(torch.isfinite(batch).all()):
            return [_invalid(pb_utils, "clip: the input contains NaN or Inf values") for _ in requests]
        with torch.no_grad():
            out = self.model(batch)
        logits = out.logits.float().numpy()
        masks = (torch.stack([m.float() for m in out.masks], dim=1).numpy()
                 if self.with_masks else None)  # (B, N, T)
        responses, start = [], 0
        for n in sizes:
            tensors = [pb_utils.Tensor("logits", np.ascontiguousarray(logits[start:start + n]))]
            if masks is not None:
                tensors.append(pb_utils.Tensor("masks", np.ascontiguousarray(masks[start:start + n])))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses


class Postprocess:
    """``logits`` (+ ``masks``), ``FRAME_INDICES`` → top-k classes, names, probabilities, kept frames."""

    def __init__(self, params: dict[str, str], model_dir: str):
        self.topk = int(params["topk"])
        self.nav_names = json.loads(params.get("nav_modules", "[]"))
        with open(os.path.join(model_dir, params["labels"]), encoding="utf-8") as f:
            self.labels = [line.rstrip("\n") for line in f]

    def execute(self, requests):
        import numpy as np

        pb_utils = _pb()
        responses = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy().astype(np.float64)
            frames = pb_utils.get_input_tensor_by_name(request, "FRAME_INDICES").as_numpy()
            prob = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
            k = min(self.topk, prob.shape[1])
            ids = np.argsort(-prob, axis=1, kind="stable")[:, :k].astype(np.int32)
            scores = np.take_along_axis(prob, ids, axis=1).astype(np.float32)
            names = np.asarray([[self.labels[i].encode() for i in row] for row in ids], dtype=np.object_)
            tensors = [pb_utils.Tensor("CLASS_IDS", ids), pb_utils.Tensor("SCORES", scores),
                       pb_utils.Tensor("LABELS", names)]
            if self.nav_names:
                masks = pb_utils.get_input_tensor_by_name(request, "masks").as_numpy()   # (B, N, T)
                sel = np.where(masks > 0.5, frames[:, None, :], -1).astype(np.int32)
                mods = np.asarray([[n.encode() for n in self.nav_names]] * len(ids), dtype=np.object_)
                tensors += [pb_utils.Tensor("SELECTED", sel), pb_utils.Tensor("NAV_MODULES", mods)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses


def make_model(role: str, args: dict[str, Any], params: dict[str, str]):
    """The implementation of one Python-backend model (``role``: preprocess, classifier or postprocess)."""
    model_dir = os.path.join(args["model_repository"], args["model_version"])
    if role == "preprocess":
        return Preprocess(params)
    if role == "classifier":
        return Classifier(params, model_dir)
    if role == "postprocess":
        return Postprocess(params, model_dir)
    raise ValueError(f"afnet_edge_role: unknown role {role!r} (preprocess, classifier or postprocess)")
