"""afnet_edge.video: official sampling, preprocessing, and reading/writing real video files with PyAV."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from afnet_edge import video as V
from conftest import HAVE_AV, needs_av

if HAVE_AV:
    import av


def _gradient_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth, frame-dependent images (codec-friendly, so decoded values stay close)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((t, h, w, 3), dtype=np.uint8)
    for k in range(t):
        base = rng.uniform(40, 200, size=3)
        img = base[None, None, :] + 40 * np.stack([xx, yy, xx * yy], -1) + 3 * k
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    "n, t, expected",
    [
        # tick = 3.75: int(1.875 + 3.75 x)
        (30, 8, [1, 5, 9, 13, 16, 20, 24, 28]),
        # tick = 100/12: middles at 4.17, 12.5, 20.8, ...
        (100, 12, [4, 12, 20, 29, 37, 45, 54, 62, 70, 79, 87, 95]),
        # float rounding of the official formula: x=3 gives int(5.999999...) = 5, exact rational would be 6
        (12, 7, [0, 2, 4, 5, 7, 9, 11]),
        (9, 8, [0, 1, 2, 3, 5, 6, 7, 8]),
        (50, 1, [25]),
    ],
)
def test_official_val_indices_formula(n, t, expected):
    got = V.official_val_indices(n, t)
    assert got == expected
    # 1-based official image-file numbers are the indices + 1, computed independently here
    tick = n / float(t)
    assert [i + 1 for i in got] == [int(tick / 2.0 + tick * x) + 1 for x in range(t)]


def test_official_val_indices_middle_of_segments():
    for n in (13, 37, 64, 301):
        for t in (4, 8, 12, 16):
            if n <= t:
                continue
            idx = V.official_val_indices(n, t)
            seg = n / t
            for x, i in enumerate(idx):
                assert 0 <= i < n
                assert int(x * seg) <= i <= int((x + 1) * seg)  # inside its segment
                assert abs(i - (x + 0.5) * seg) <= 1.0  # at its middle


@pytest.mark.parametrize("n, t", [(1, 4), (5, 8), (8, 8)])
def test_official_val_indices_short_official_repeats_first_frame(n, t):
    assert V.official_val_indices(n, t) == [0] * t


@pytest.mark.parametrize(
    "n, t, expected",
    [(3, 6, [0, 0, 1, 1, 2, 2]), (5, 8, [0, 0, 1, 2, 2, 3, 4, 4]), (8, 8, list(range(8))), (1, 3, [0, 0, 0])],
)
def test_official_val_indices_short_spread(n, t, expected):
    assert V.official_val_indices(n, t, short="spread") == expected


def test_tsn_train_indices_segments_and_repetition():
    n, t = 50, 8
    d = n // t
    draws = [V.tsn_train_indices(n, t, np.random.default_rng(s)) for s in range(40)]
    for idx in draws:
        assert len(idx) == t
        for x, i in enumerate(idx):
            assert x * d <= i < (x + 1) * d
    assert len({tuple(i) for i in draws}) > 30  # random
    assert V.tsn_train_indices(n, t, np.random.default_rng(7)) == V.tsn_train_indices(n, t, np.random.default_rng(7))
    # short video: the official code repeats the first frame
    assert V.tsn_train_indices(5, 8, np.random.default_rng(0)) == [0] * 8
    # spread: one random frame in each fractional segment [x n / T, (x + 1) n / T)
    seen = set()
    for s in range(50):
        idx = V.tsn_train_indices(5, 8, np.random.default_rng(s), short="spread")
        assert idx == sorted(idx)
        for x, i in enumerate(idx):
            assert int(x * 5 / 8) <= i <= min(4, int((x + 1) * 5 / 8))
        seen.add(tuple(idx))
    assert len(seen) > 5


def test_sampling_argument_errors():
    with pytest.raises(ValueError, match="num_frames"):
        V.official_val_indices(0, 8)
    with pytest.raises(ValueError, match="num_segments"):
        V.tsn_train_indices(10, 0)
    with pytest.raises(ValueError, match="short"):
        V.official_val_indices(10, 4, short="loop")


# --------------------------------------------------------------------------------------------- preprocessing


def test_preprocess_frames_crop_and_normalise_exact():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 240, 320, 3), dtype=np.uint8)
    out = V.preprocess_frames(frames)  # already 240x320: the resize is the identity
    assert out.shape == (3, 3, 224, 224) and out.dtype == torch.float32
    crop = frames[:, 8:232, 48:272].astype(np.float32) / 255.0  # torchvision CenterCrop offsets
    ref = (crop - np.array(V.MEAN, np.float32)) / np.array(V.STD, np.float32)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, rtol=0, atol=1e-5)
    back = V.denormalize_frames(out)
    np.testing.assert_array_equal(back, frames[:, 8:232, 48:272])


def test_preprocess_frames_resizes_any_input():
    colour = np.array([200, 30, 120], dtype=np.uint8)
    frames = np.broadcast_to(colour, (2, 90, 150, 3)).copy()
    out = V.preprocess_frames(frames, size=112, scale_size=(128, 160))
    assert out.shape == (2, 3, 112, 112)
    expected = (colour / 255.0 - np.array(V.MEAN)) / np.array(V.STD)  # bilinear keeps a constant image constant
    np.testing.assert_allclose(out.mean(dim=(0, 2, 3)).numpy(), expected, atol=1e-5)
    assert float(out.std(dim=(2, 3)).max()) < 1e-5
    # non-square output of the resize, then a square crop from a 64x48 frame without resize
    f2 = np.random.default_rng(2).integers(0, 256, size=(1, 64, 48, 3), dtype=np.uint8)
    out2 = V.preprocess_frames(f2, size=40, scale_size=None)
    np.testing.assert_array_equal(V.denormalize_frames(out2)[0], f2[0, 12:52, 4:44])


def test_preprocess_frames_errors():
    with pytest.raises(ValueError, match="uint8"):
        V.preprocess_frames(np.ones((2, 240, 320, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        V.preprocess_frames(np.ones((240, 320, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="larger than the frame"):
        V.preprocess_frames(np.ones((1, 100, 100, 3), dtype=np.uint8), size=224, scale_size=None)


# --------------------------------------------------------------------------------------------- real video files


@needs_av
@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_write_then_read_roundtrip(tmp_path, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg build")
    frames = _gradient_frames(20, 64, 96)
    path = V.write_test_video(tmp_path / f"clip_{codec}.mp4", frames, fps=15, codec=codec)
    info = V.probe_video(path)
    assert info == V.VideoInfo(num_frames=20, fps=15.0, height=64, width=96)
    assert V.probe_video(path, exact=True).num_frames == 20
    decoded = V.read_frames(path, range(20))
    assert decoded.shape == (20, 64, 96, 3) and decoded.dtype == np.uint8
    err = np.abs(decoded.astype(np.int32) - frames.astype(np.int32))
    assert err.mean() < 3.0 and err.max() < 40
    # every decoded frame is nearest to its own source frame (none shuffled, dropped or duplicated)
    dist = np.abs(decoded[:, None].astype(np.float32) - frames[None].astype(np.float32)).mean(axis=(2, 3, 4))
    assert dist.argmin(axis=1).tolist() == list(range(20))
    # any order, repeats: the same decoded pixels as the full decode
    some = V.read_frames(path, [7, 2, 2, 19])
    np.testing.assert_array_equal(some, decoded[[7, 2, 2, 19]])


@needs_av
def test_read_frames_stops_after_last_needed_frame(tmp_path, monkeypatch):
    path = V.write_test_video(tmp_path / "c.mp4", _gradient_frames(30, 32, 32), fps=10)
    decoded = []
    real_open = av.open

    class Counting:
        def __init__(self, container):
            self._c = container

        def __getattr__(self, name):
            return getattr(self._c, name)

        def decode(self, *args, **kwargs):
            for frame in self._c.decode(*args, **kwargs):
                decoded.append(frame)
                yield frame

    monkeypatch.setattr(av, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    out = V.read_frames(path, [4, 9, 1])
    assert out.shape == (3, 32, 32, 3)
    assert len(decoded) == 10


@needs_av
def test_load_clip_uses_official_sampling(tmp_path):
    frames = _gradient_frames(30, 48, 64, seed=3)
    path = V.write_test_video(tmp_path / "c.mp4", frames, fps=10)
    clip, info, idx = V.load_clip(path, 8, size=40, scale_size=(48, 64))
    assert idx == [1, 5, 9, 13, 16, 20, 24, 28]
    assert info.num_frames == 30
    assert clip.shape == (8, 3, 40, 40) and clip.dtype == torch.float32
    ref = V.preprocess_frames(frames[idx], size=40, scale_size=(48, 64))
    assert float((clip - ref).abs().mean()) < 0.05  # codec error only (about 1 grey level)
    other = V.preprocess_frames(frames[[0, 4, 8, 12, 17, 21, 25, 29]], size=40, scale_size=(48, 64))
    assert float((clip - other).abs().mean()) > 2 * float((clip - ref).abs().mean())
    # short video, both policies
    path5 = V.write_test_video(tmp_path / "short.mp4", frames[:5], fps=10)
    _, _, idx5 = V.load_clip(path5, 8, size=40, scale_size=(48, 64))
    assert idx5 == [0] * 8
    clip5, _, idx5s = V.load_clip(path5, 8, size=40, scale_size=(48, 64), short="spread")
    assert idx5s == [0, 0, 1, 2, 2, 3, 4, 4]
    torch.testing.assert_close(clip5[0], clip5[1])
    assert not torch.equal(clip5[1], clip5[2])


@needs_av
def test_load_clip_recounts_when_the_header_overcounts(tmp_path, monkeypatch):
    frames = _gradient_frames(30, 32, 32, seed=4)
    path = V.write_test_video(tmp_path / "c.mp4", frames, fps=10)
    real_probe = V.probe_video

    def lying_probe(p, *, exact=False):
        info = real_probe(p, exact=exact)
        return info if exact else V.VideoInfo(info.num_frames + 17, info.fps, info.height, info.width)

    monkeypatch.setattr(V, "probe_video", lying_probe)
    clip, info, idx = V.load_clip(path, 8, size=32, scale_size=None)
    assert info.num_frames == 30 and idx == V.official_val_indices(30, 8)
    assert clip.shape == (8, 3, 32, 32)


@needs_av
def test_video_errors(tmp_path):
    missing = tmp_path / "nope.mp4"
    for fn in (V.probe_video, lambda p: V.read_frames(p, [0]), lambda p: V.load_clip(p, 4)):
        with pytest.raises(FileNotFoundError, match="nope.mp4"):
            fn(missing)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video, just some text\n" * 20)
    for fn in (V.probe_video, lambda p: V.read_frames(p, [0]), lambda p: V.load_clip(p, 4)):
        with pytest.raises(ValueError, match=r"video: cannot decode '.*notes.mp4'"):
            fn(text)
    with pytest.raises(ValueError, match="directory"):
        V.probe_video(tmp_path)
    path = V.write_test_video(tmp_path / "ok.mp4", _gradient_frames(6, 32, 32), fps=5)
    with pytest.raises(ValueError, match="only 6 decodable frames"):
        V.read_frames(path, [2, 6])
    with pytest.raises(ValueError, match="indices"):
        V.read_frames(path, [])
    with pytest.raises(ValueError, match="indices"):
        V.read_frames(path, [-1])
    with pytest.raises(ValueError, match="even"):
        V.write_test_video(tmp_path / "odd.mp4", _gradient_frames(2, 33, 32))


@needs_av
def test_zero_frame_video_is_an_error(tmp_path):
    # an AVI with a video stream header and no frame (an empty mp4 has no stream at all once written)
    path = str(tmp_path / "empty.avi")
    with av.open(path, mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    assert V.probe_video(path).num_frames == 0
    with pytest.raises(ValueError, match="no decodable video frame"):
        V.load_clip(path, 4)
    with pytest.raises(ValueError, match="no decodable video frame"):
        V.read_frames(path, [0])
    # an mp4 written without frames has no video stream: also a clear error
    path = str(tmp_path / "empty.mp4")
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(ValueError, match="cannot decode"):
        V.load_clip(path, 4)


def test_missing_pyav_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(ImportError, match=r"pip install av.*afnet_edge\[video\]"):
        V.write_test_video(tmp_path / "x.mp4", _gradient_frames(1, 16, 16))
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ImportError, match="pip install av"):
        V.probe_video(path)
