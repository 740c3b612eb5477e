"""benchmarks/fullvideo_stream_memory.py: streaming's peak live tensor memory is flat in N, the offline forward's grows
(a property of the algorithm, measured with the script's own measurement function on tiny inputs)."""
from __future__ import annotations

import importlib.util
import os

import pytest
import torch

SIZE, K, CHUNK = 32, 4, 4


def _script():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                        "fullvideo_stream_memory.py")
    spec = importlib.util.spec_from_file_location("fullvideo_stream_memory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stream_peak_flat_offline_grows(one_thread):
    bench = _script()
    model = bench.build_model(K, 32, seed=0)
    res = {(mode, n): bench.measure(model, mode, n, SIZE, CHUNK, seed=5) for mode in bench.MODES for n in (8, 32)}
    s8, s32 = res["stream", 8]["live_peak_bytes"], res["stream", 32]["live_peak_bytes"]
    o8, o32 = res["offline", 8]["live_peak_bytes"], res["offline", 32]["live_peak_bytes"]
    assert s8 > 0 and o8 > 0
    # stream: one chunk's frames/activations + K sums, whatever N (N=8 already fills the K=4 sums)
    assert s32 <= s8 * 1.05, (s8, s32)
    # offline: every frame's input and stem/layer1 activations alive at once → ~4× from 8 to 32 frames
    assert o32 >= 3 * o8, (o8, o32)
    assert o32 >= 3 * s32, (s32, o32)
    for n in (8, 32):
        assert res["stream", n]["segments"] == res["offline", n]["segments"]
        a = torch.tensor(res["stream", n]["logits"])
        b = torch.tensor(res["offline", n]["logits"])
        assert torch.isfinite(a).all() and a.abs().max() > 0
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


def test_bad_mode_and_sizes():
    bench = _script()
    model = bench.build_model(K, 8)
    with pytest.raises(ValueError, match="mode"):
        bench.run_once(model, "batch", 8, SIZE, CHUNK)
    with pytest.raises(ValueError, match="chunk"):
        bench.run_once(model, "stream", 8, SIZE, 0)
