"""Classify a video through a running Triton server (``afnet-edge classify --server URL VIDEO``).

Uses ``tritonclient`` (extra ``afnet_edge[serve]``) over HTTP or gRPC and the ``video_classify`` ensemble that
:mod:`afnet_edge.serve.repository` writes: the encoded video file goes to the server as one BYTES element, the
server samples and preprocesses it exactly as ``afnet-edge predict`` does, and returns the top-k classes, their
probabilities, the logits and the frames each navigation module kept.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .repository import ENSEMBLE


@dataclass
class RemotePrediction:
    """The ensemble's answer for one video (the fields ``afnet-edge predict`` prints)."""

    top: list                      # [(class index, name, probability)], best first
    selected: dict                 # {navigation module: [video frames it kept]}
    frame_indices: list            # the T sampled 0-based video frames
    video_frames: int              # frames in the video
    logits: list = field(default_factory=list)

    @property
    def real_ratio(self) -> float:
        """Fraction of (frame, navigation module) pairs the focal branch processed (0.0 without navigation)."""
        t = len(self.frame_indices)
        return sum(len(v) for v in self.selected.values()) / (t * len(self.selected)) if self.selected and t else 0.0


def _client_module(protocol: str):
    if protocol not in ("http", "grpc"):
        raise ValueError(f"--protocol must be 'http' or 'grpc', got {protocol!r}")
    try:
        if protocol == "http":
            import tritonclient.http as mod
        else:
            import tritonclient.grpc as mod
    except ImportError:
        raise ImportError("the Triton client needs tritonclient[http,grpc]: pip install -e .[serve]") from None
    return mod


def _url(server: str, protocol: str) -> str:
    for scheme in ("http://", "https://", "grpc://"):
        if server.startswith(scheme):
            server = server[len(scheme):]
    if not server or "/" in server.rstrip("/"):
        raise ValueError(f"--server: expected HOST:PORT, got {server!r}")
    return server.rstrip("/")


def classify_bytes(server: str, data: bytes, *, protocol: str = "http", model: str = ENSEMBLE,
                   timeout_s: float = 60.0) -> RemotePrediction:
    """Send one encoded video file ``data`` to the ``model`` ensemble at ``server`` (``HOST:PORT``)."""
    import numpy as np

    mod = _client_module(protocol)
    url = _url(server, protocol)
    if protocol == "http":
        client = mod.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
    else:
        client = mod.InferenceServerClient(url)
    try:
        inp = mod.InferInput("VIDEO", [1, 1], "BYTES")
        inp.set_data_from_numpy(np.array([[data]], dtype=np.object_))
        res = client.infer(model, [inp], client_timeout=timeout_s) if protocol == "grpc" else \
            client.infer(model, [inp])
        ids = res.as_numpy("CLASS_IDS")[0]
        scores = res.as_numpy("SCORES")[0]
        labels = [v.decode() if isinstance(v, bytes) else str(v) for v in res.as_numpy("LABELS")[0]]
        frames = [int(v) for v in res.as_numpy("FRAME_INDICES")[0]]
        selected: dict = {}
        sel = res.as_numpy("SELECTED")
        if sel is not None:
            mods = [v.decode() if isinstance(v, bytes) else str(v) for v in res.as_numpy("NAV_MODULES")[0]]
            selected = {m: [int(f) for f in row if f >= 0] for m, row in zip(mods, sel[0])}
        logits = res.as_numpy("LOGITS")
        return RemotePrediction(top=[(int(i), n, float(p)) for i, n, p in zip(ids, labels, scores)],
                                selected=selected, frame_indices=frames,
                                video_frames=int(res.as_numpy("VIDEO_FRAMES")[0][0]),
                                logits=[float(v) for v in logits[0]] if logits is not None else [])
    finally:
        client.close()


def classify(server: str, video: str, *, protocol: str = "http", model: str = ENSEMBLE,
             timeout_s: float = 60.0) -> RemotePrediction:
    """Classify the video file ``video`` through the Triton server at ``server`` (``HOST:PORT``; HTTP or gRPC).

    Example::

        from afnet_edge.serve.client import classify
        pred = classify("127.0.0.1:8000", "clip.mp4")
        print(pred.top[0])          # (class index, name, probability)
    """
    if not os.path.isfile(video):
        raise FileNotFoundError(f"VIDEO: no such file '{video}'")
    with open(video, "rb") as f:
        data = f.read()
    return classify_bytes(server, data, protocol=protocol, model=model, timeout_s=timeout_s)
