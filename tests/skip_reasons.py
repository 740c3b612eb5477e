"""The skip reasons a test run may show without anything being wrong, written once.

A test that cannot run on this machine for one of these reasons skips with the constant as its reason (or the constant,
a colon and a detail: ``f"{NO_CUDA}: AMP needs one"``). Every other skip is a missing dependency or a broken build that
CI must not hide: with ``AFNET_EDGE_SKIP_ALLOWLIST=1`` (CI sets it) the session fails when any skip reason matches no
entry of :data:`ALLOWED` (see ``tests/conftest.py``, which also prints the skip summary at the end of every run).
"""
from __future__ import annotations

import re

#: no CUDA device visible to torch (CI; every CPU-only machine)
NO_CUDA = "no CUDA device"
#: the mirror of NO_CUDA: a test of the behaviour WITHOUT a GPU, on a machine that has one
CUDA_PRESENT = "a CUDA device is present"
#: the full TensorRT (``tensorrt``, needs an NVIDIA GPU and driver) is absent; TensorRT for RTX is not covered by this
NO_FULL_TENSORRT = "no full TensorRT"
#: a Jetson-only check (tegrastats, nvpmodel, the Orin power modes) on anything else
NO_JETSON = "not a Jetson"

#: the allow-list: name -> pattern a skip reason must match from its start (a bare constant or ``constant: detail``)
ALLOWED: dict[str, re.Pattern[str]] = {
    name: re.compile(re.escape(text) + r"(?::\s.*)?$", re.S)
    for name, text in {"NO_CUDA": NO_CUDA, "CUDA_PRESENT": CUDA_PRESENT, "NO_FULL_TENSORRT": NO_FULL_TENSORRT,
                       "NO_JETSON": NO_JETSON}.items()
}

#: environment variable that turns a skip outside the allow-list into a failed session
ENV = "AFNET_EDGE_SKIP_ALLOWLIST"


def allowed_as(reason: str) -> str | None:
    """Name of the allow-list entry ``reason`` matches (``"NO_CUDA"`` ...), or None when it is not allowed."""
    text = reason.strip()
    if text.startswith("Skipped: "):  # how pytest prefixes the message in a report
        text = text[len("Skipped: "):]
    for name, pattern in ALLOWED.items():
        if pattern.match(text):
            return name
    return None
