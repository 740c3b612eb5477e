"""Reading real videos, the official frame sampling, and the official frame preprocessing.

Spec: ``/work/shared/spec/afnet-architecture.md`` §6 (input size and normalisation), §10 (data pipeline).

Frame numbering. The official code (TSN/TSM ``TSNDataSet``, reused by AFNet) works on folders of JPEG files
numbered from 1 (``img_00001.jpg`` is the first frame). Every index this module returns or accepts is a **0-based
frame index**: frame ``i`` is the ``i``-th frame the decoder yields in presentation order, stored in the official
layout as image file number ``i + 1``.

PyAV (``av``) is an optional dependency (extra ``afnet_edge[video]``); it is imported inside the functions that need
it. Sampling and preprocessing work without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

#: Normalisation of the official pipeline (§6): pixels scaled to [0, 1], then ``(x - mean) / std`` per RGB channel.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Official resize before cropping, (height, width) in pixels; the aspect ratio is ignored (§10).
SCALE_SIZE: tuple[int, int] = (240, 320)
#: Official crop size in pixels (§6).
CROP_SIZE: int = 224

#: What to do when a video has no more frames than there are segments (see :func:`official_val_indices`).
SHORT_POLICIES = ("official", "spread")


def _import_av():
    try:
        import av  # noqa: PLC0415 (optional dependency, imported where used)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading or writing video files needs PyAV: `pip install av` (or the extra `afnet_edge[video]`)"
        ) from exc
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found out about a video file.

    Attributes:
        num_frames: number of video frames (see :func:`probe_video` for how it is counted).
        fps: average frame rate in frames per second (0.0 when the container does not say).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    num_frames: int
    fps: float
    height: int
    width: int


# ---------------------------------------------------------------------------------------------------------------
# Opening and decoding
# ---------------------------------------------------------------------------------------------------------------


def _check_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video: no such file '{path}'")
    if os.path.isdir(path):
        raise ValueError(f"video: cannot decode '{path}': it is a directory, not a video file")
    return path


def _open_video(path: str):
    """Open ``path`` with PyAV and return ``(container, video_stream)``; errors become ValueError."""
    av = _import_av()
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as exc:
        raise ValueError(f"video: cannot decode '{path}': {exc}") from exc
    if not container.streams.video:
        container.close()
        raise ValueError(f"video: cannot decode '{path}': the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


class _TooFewFrames(ValueError):
    """A requested frame index is past the last decodable frame (lets :func:`load_clip` recount and resample)."""


def _decode_error(path: str, exc: Exception) -> ValueError:
    return ValueError(f"video: cannot decode '{path}': {exc}")


def probe_video(path: str | os.PathLike, *, exact: bool = False) -> VideoInfo:
    """Number of frames, frame rate and frame size of a video file.

    The frame count is the container's header count (``nb_frames``) when it gives one (> 0) and ``exact`` is
    False; otherwise every frame is decoded and counted (containers such as WebM/MKV or some AVI files do not store
    a count; decoding is the ground truth, at the cost of one full decode). Height and width are those of the first
    decoded frame when frames were decoded, else of the stream's codec parameters.

    Args:
        path: video file.
        exact: always decode to count frames, ignoring the header count.

    Returns:
        :class:`VideoInfo` with ``num_frames >= 0`` (0 only for a video stream with no decodable frame).

    Raises:
        ImportError: PyAV is not installed.
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a video PyAV can decode (message ``video: cannot decode '<path>': ...``).
    """
    path = _check_path(path)
    av = _import_av()
    container, stream = _open_video(path)
    try:
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        height, width = int(stream.codec_context.height), int(stream.codec_context.width)
        num_frames = int(stream.frames or 0)
        if exact or num_frames <= 0:
            num_frames = 0
            try:
                for frame in container.decode(stream):
                    if num_frames == 0:
                        height, width = int(frame.height), int(frame.width)
                    num_frames += 1
            except av.error.FFmpegError as exc:
                raise _decode_error(path, exc) from exc
    finally:
        container.close()
    return VideoInfo(num_frames=num_frames, fps=fps, height=height, width=width)


def read_frames(path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
    """Decode the frames at the given 0-based indices.

    Frames are decoded in order from the start of the file and decoding stops after the largest requested index
    (no seeking, so the result does not depend on key-frame placement). Indices may repeat and come in any order;
    the output follows their order.

    Args:
        path: video file.
        indices: 0-based frame indices (presentation order), each ``>= 0``.

    Returns:
        uint8 array ``(len(indices), H, W, 3)``, RGB.

    Raises:
        ImportError: PyAV is not installed.
        FileNotFoundError: ``path`` does not exist.
        ValueError: empty or negative ``indices``; an index at or past the number of decodable frames (the message
            says how many there are); the file cannot be decoded.
    """
    path = _check_path(path)
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("indices: expected at least one frame index, got an empty sequence")
    if min(idx) < 0:
        raise ValueError(f"indices: expected 0-based frame indices >= 0, got {min(idx)}")
    av = _import_av()
    wanted = set(idx)
    last = max(idx)
    got: dict[int, np.ndarray] = {}
    container, stream = _open_video(path)
    count = 0
    try:
        for frame in container.decode(stream):
            if count in wanted:
                got[count] = frame.to_ndarray(format="rgb24")
            count += 1
            if count > last:
                break
    except av.error.FFmpegError as exc:
        raise _decode_error(path, exc) from exc
    finally:
        container.close()
    if count == 0:
        raise ValueError(f"video: cannot decode '{path}': no decodable video frame")
    if last >= count:
        raise _TooFewFrames(
            f"video: '{path}' has only {count} decodable frames, frame index {last} (0-based) was requested"
        )
    shapes = {a.shape for a in got.values()}
    if len(shapes) != 1:
        raise ValueError(f"video: '{path}' changes frame size mid-stream ({sorted(shapes)}); not supported")
    return np.stack([got[i] for i in idx])


# ---------------------------------------------------------------------------------------------------------------
# Frame sampling (§10)
# ---------------------------------------------------------------------------------------------------------------


def _check_counts(num_frames: int, num_segments: int, short: str) -> None:
    if int(num_frames) < 1:
        raise ValueError(f"num_frames: expected a video with at least 1 frame, got {num_frames}")
    if int(num_segments) < 1:
        raise ValueError(f"num_segments: expected T >= 1, got {num_segments}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short: expected one of {SHORT_POLICIES}, got {short!r}")


def official_val_indices(num_frames: int, num_segments: int, *, short: str = "official") -> list[int]:
    """The official validation sampling: one frame at the middle of each of T equal segments.

    With ``n = num_frames`` and ``T = num_segments``, when ``n > T``::

        tick = n / T                                  (float division, as the official code)
        file_number[x] = int(tick / 2 + tick * x) + 1  (1-based image file, official layout)
        index[x]       = int(tick / 2 + tick * x)      (0-based frame index, returned here), x = 0..T-1

    The official formula is evaluated in double precision exactly as the official code does, which sometimes gives
    one less than the exact rational value ``floor(n (2x + 1) / (2T))`` (e.g. ``n=12, T=7`` gives
    ``[0, 2, 4, 5, 7, 9, 11]``, the exact value at x=3 would be 6). We keep the official result.

    Short videos, ``n <= T`` (note: also ``n == T``):

    * ``short="official"`` (default): exactly what the official TSN/TSM code does: every segment takes the first
      frame, i.e. ``[0] * T`` — frame 0 repeated T times, the other frames unused.
    * ``short="spread"``: the same middle-of-segment formula with ``tick = n / T <= 1``, computed exactly as
      ``floor(n (2x + 1) / (2T))``: indices are non-decreasing, cover every frame, and each frame is repeated about
      ``T / n`` times in temporal order (n=3, T=6 gives ``[0, 0, 1, 1, 2, 2]``).

    Returns:
        ``T`` 0-based frame indices in ``[0, n)``, non-decreasing.
    """
    _check_counts(num_frames, num_segments, short)
    n, t = int(num_frames), int(num_segments)
    if n > t:
        tick = n / float(t)
        return [int(tick / 2.0 + tick * x) for x in range(t)]
    if short == "official":
        return [0] * t
    return [(n * (2 * x + 1)) // (2 * t) for x in range(t)]


def repeated_frames_note(video: str, num_frames: int, indices: Sequence[int], short: str = "official") -> str | None:
    """One sentence saying how frames were repeated when a video has too few frames for the T sampled ones, or None
    when every sampled frame is distinct. ``num_frames``: the video's frame count; ``indices``: the T sampled 0-based
    frames (:func:`official_val_indices`); ``short``: the policy that produced them."""
    idx = [int(i) for i in indices]
    counts: dict[int, int] = {}
    for i in idx:
        counts[i] = counts.get(i, 0) + 1
    if len(counts) == len(idx):
        return None
    t = len(idx)
    if len(counts) == 1:
        how = f"frame {idx[0]} is used for all {t} segments"
        if num_frames > 1:
            how += f" (frames 1..{num_frames - 1} unused)" if idx[0] == 0 else ""
    else:
        lo, hi = min(counts.values()), max(counts.values())
        how = (f"{len(counts)} distinct frames fill the {t} segments, each repeated "
               f"{lo if lo == hi else f'{lo}-{hi}'} times in order")
    hint = "; --short spread repeats every frame in order instead" if short == "official" and num_frames > 1 else ""
    return (f"'{os.path.basename(os.fspath(video))}' has {num_frames} frames for T={t}: {how}{hint}; --min-frames N "
            f"refuses such videos")


def tsn_train_indices(
    num_frames: int,
    num_segments: int,
    rng: np.random.Generator | None = None,
    *,
    short: str = "official",
) -> list[int]:
    """TSN training sampling: one random frame in each of T equal segments.

    With ``n = num_frames``, ``T = num_segments`` and ``d = n // T`` (integer segment length), when ``d >= 1``::

        index[x] = x * d + randint(0, d)      (0-based; official file number = index + 1), x = 0..T-1

    so the last ``n - T * d`` frames are never used (official behaviour).

    Short videos, ``n < T`` (``d == 0``):

    * ``short="official"`` (default): the official TSN/TSM code returns ``[0] * T`` — frame 0 repeated T times.
    * ``short="spread"``: one random frame in each of T equal *fractional* segments,
      ``index[x] = floor((x + u_x) * n / T)`` with ``u_x ~ U[0, 1)``: non-decreasing, each frame repeated about
      ``T / n`` times in temporal order.

    Args:
        rng: numpy Generator; ``None`` uses a fresh unseeded one.

    Returns:
        ``T`` 0-based frame indices in ``[0, n)``, non-decreasing.
    """
    _check_counts(num_frames, num_segments, short)
    n, t = int(num_frames), int(num_segments)
    rng = np.random.default_rng() if rng is None else rng
    d = n // t
    if d > 0:
        return [int(v) for v in np.arange(t) * d + rng.integers(0, d, size=t)]
    if short == "official":
        return [0] * t
    u = rng.random(t)
    return [min(n - 1, int(np.floor((x + u[x]) * n / t))) for x in range(t)]


def phase_train_indices(num_frames: int, num_segments: int, rng: np.random.Generator | None = None) -> list[int]:
    """bLVNet-TAM training sampling (spec blvnet-tam.md §2): equal spacing with **one** random phase per clip.

    With ``L = num_frames``, ``G = num_segments`` and ``s = L // G``, when ``s >= 1``::

        o        = randint(0, s)        (drawn once per clip)
        index[g] = g * s + o            (0-based; the release's file number is index + 1), g = 0..G-1

    so consecutive frames, and the two frames of a bLVNet pair, are exactly ``s`` frames apart (TSN draws an
    independent offset per segment instead, :func:`tsn_train_indices`). When ``L < G``: G indices drawn uniformly
    with replacement from ``[0, L)``, sorted (the release's short-video rule).

    Returns:
        ``G`` 0-based frame indices in ``[0, L)``, non-decreasing.
    """
    _check_counts(num_frames, num_segments, "official")
    n, t = int(num_frames), int(num_segments)
    rng = np.random.default_rng() if rng is None else rng
    s = n // t
    if s > 0:
        return [int(v) for v in np.arange(t) * s + int(rng.integers(0, s))]
    return sorted(int(v) for v in rng.integers(0, n, size=t))


#: Training samplings by name (a model family's ``TrainRecipe.sampling``).
TRAIN_SAMPLINGS = ("tsn", "phase")


def train_indices(num_frames: int, num_segments: int, rng: np.random.Generator | None = None, *,
                  sampling: str = "tsn", short: str = "official") -> list[int]:
    """The T training frame indices of a video of ``num_frames`` frames: :func:`tsn_train_indices` (``"tsn"``,
    ``short`` applies) or :func:`phase_train_indices` (``"phase"``, its own short-video rule)."""
    if sampling == "tsn":
        return tsn_train_indices(num_frames, num_segments, rng, short=short)
    if sampling == "phase":
        return phase_train_indices(num_frames, num_segments, rng)
    raise ValueError(f"sampling: expected one of {TRAIN_SAMPLINGS}, got {sampling!r}")


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing (§6, §10)
# ---------------------------------------------------------------------------------------------------------------


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(
            f"frames: expected a uint8 array (T, H, W, 3) with T >= 1, got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize every frame to ``(height, width)`` with PIL bilinear (what torchvision ``Resize`` does on PIL images).

    Args:
        frames: uint8 ``(T, H, W, 3)``.

    Returns:
        uint8 ``(T, height, width, 3)``; the input itself when it already has that size.
    """
    from PIL import Image

    frames = _check_frames(frames)
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames])


def center_crop_box(height: int, width: int, crop_h: int, crop_w: int) -> tuple[int, int]:
    """Top-left corner ``(top, left)`` of a centred crop, rounded as torchvision ``CenterCrop``."""
    if crop_h > height or crop_w > width:
        raise ValueError(f"size: crop {crop_h}x{crop_w} is larger than the frame {height}x{width}")
    return int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))


def normalize_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` RGB -> float32 tensor ``(T, 3, H, W)``: ``(x / 255 - MEAN) / STD`` per channel.

    Computed with numpy (single-threaded): small per-clip tensors in DataLoader workers are much slower through
    torch's intra-op thread pool when the cores are busy.
    """
    frames = _check_frames(frames)
    x = frames.astype(np.float32)
    x /= 255.0
    x -= np.asarray(MEAN, dtype=np.float32)
    x /= np.asarray(STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def preprocess_frames(
    frames: np.ndarray,
    size: int = CROP_SIZE,
    scale_size: tuple[int, int] | None = SCALE_SIZE,
) -> torch.Tensor:
    """Official validation preprocessing of a clip.

    Resize every frame to ``scale_size`` = (height, width) (240x320 officially; aspect ratio ignored; PIL bilinear),
    centre-crop ``size`` x ``size`` (torchvision ``CenterCrop`` rounding), scale to [0, 1], normalise with
    :data:`MEAN` / :data:`STD`. With ``scale_size=None`` the frames are centre-cropped as they are.

    Args:
        frames: uint8 ``(T, H, W, 3)`` RGB.
        size: crop side in pixels.
        scale_size: (height, width) to resize to first, or None.

    Returns:
        float32 tensor ``(T, 3, size, size)``.

    Raises:
        ValueError: wrong dtype/shape, or the crop does not fit in the (resized) frame.
    """
    frames = _check_frames(frames)
    if scale_size is not None:
        frames = resize_frames(frames, int(scale_size[0]), int(scale_size[1]))
    top, left = center_crop_box(frames.shape[1], frames.shape[2], size, size)
    return normalize_frames(frames[:, top : top + size, left : left + size])


def denormalize_frames(clip: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`normalize_frames`: float ``(T, 3, H, W)`` -> uint8 ``(T, H, W, 3)`` (rounded, clipped)."""
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    x = (clip.detach().to(torch.float32).cpu() * std + mean) * 255.0
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# ---------------------------------------------------------------------------------------------------------------
# Whole clips
# ---------------------------------------------------------------------------------------------------------------


def load_clip(
    path: str | os.PathLike,
    num_frames: int,
    size: int = CROP_SIZE,
    *,
    scale_size: tuple[int, int] | None = SCALE_SIZE,
    short: str = "official",
) -> tuple[torch.Tensor, VideoInfo, list[int]]:
    """Read a video file the way the official validation does (§10): sample, decode, preprocess.

    ``num_frames`` (T) frames are chosen with :func:`official_val_indices` from the frame count given by
    :func:`probe_video` (header count when present; if decoding then finds fewer frames than the header said, the
    count is redone by decoding and the frames resampled), decoded with :func:`read_frames`, and preprocessed with
    :func:`preprocess_frames` (resize 240x320, centre crop ``size``, normalise).

    Args:
        path: video file.
        num_frames: T, frames per clip.
        size: crop side in pixels.
        scale_size: resize before the crop, (height, width); None to crop the decoded frames directly.
        short: policy for videos with ``<= T`` frames, see :func:`official_val_indices`.

    Returns:
        ``(clip, info, indices)``: float32 tensor ``(T, 3, size, size)``; the :class:`VideoInfo` (its
        ``num_frames`` is the count used for sampling); the T 0-based frame indices used.

    Raises:
        ImportError: PyAV is not installed.
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded, has no frame, or is too small for the crop.
    """
    path = _check_path(path)
    info = probe_video(path)
    if info.num_frames <= 0:
        raise ValueError(f"video: '{path}' has no decodable video frame")
    indices = official_val_indices(info.num_frames, num_frames, short=short)
    try:
        frames = read_frames(path, indices)
    except _TooFewFrames as exc:
        # The header over-counted: count by decoding and sample again.
        info = probe_video(path, exact=True)
        if info.num_frames <= 0:
            raise ValueError(f"video: '{path}' has no decodable video frame") from exc
        indices = official_val_indices(info.num_frames, num_frames, short=short)
        frames = read_frames(path, indices)
    clip = preprocess_frames(frames, size=size, scale_size=scale_size)
    return clip, info, indices


# ---------------------------------------------------------------------------------------------------------------
# Writing (tests and examples)
# ---------------------------------------------------------------------------------------------------------------


def write_test_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 25,
    *,
    codec: str = "auto",
    crf: int = 10,
) -> str:
    """Write a small mp4 file with PyAV (for tests and examples; not a general-purpose encoder).

    Frames are encoded as yuv420p, so values come back approximately (chroma is subsampled 2x2; with the default
    high quality the mean absolute error on smooth images is about 1 grey level).

    Args:
        path: output file (``.mp4`` recommended); parent directories are created.
        frames: uint8 ``(T, H, W, 3)`` RGB, T >= 1, H and W even (yuv420p).
        fps: frame rate in frames per second (integer).
        codec: ``"libx264"``, ``"mpeg4"`` or ``"auto"`` (libx264 when available, else mpeg4).
        crf: libx264 constant rate factor (0-51, lower is better); mpeg4 uses a fixed high bit rate instead.

    Returns:
        the path written, as a string.

    Raises:
        ImportError: PyAV is not installed.
        ValueError: bad frames shape/dtype, odd height/width, unknown or unavailable codec.
    """
    av = _import_av()
    frames = _check_frames(frames)
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"frames: height and width must be even for yuv420p video, got {h}x{w}")
    if codec == "auto":
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    if codec not in ("libx264", "mpeg4"):
        raise ValueError(f"codec: expected 'libx264', 'mpeg4' or 'auto', got {codec!r}")
    if codec not in av.codecs_available:
        raise ValueError(f"codec: {codec!r} is not available in this PyAV/FFmpeg build")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        else:
            stream.bit_rate = max(2_000_000, int(h * w * fps * 4))
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
