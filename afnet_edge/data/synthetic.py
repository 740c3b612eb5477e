"""A seeded synthetic video dataset whose classes depend on temporal order, with distractor frames.

Why: Something-Something V1 (the dataset AFNet is trained on, spec §10) cannot be shipped or trained on 2 CPU cores.
This dataset keeps the two properties that matter for AFNet:

* **Temporal order decides the class.** Classes come in pairs, and the second class of a pair is the first one
  played backwards (``move_left_to_right`` / ``move_right_to_left``, ``grow`` / ``shrink``, ``appear`` /
  ``disappear``, ...). Clip parameters are drawn from the same distribution for both classes of a pair, so the
  *set* of frames of a clip has the same distribution for both: a model that averages per-frame evidence without
  temporal modelling (plain TSN, average consensus) can tell the pairs apart but not the two classes inside a pair.
* **Choosing frames matters.** Each frame is, with probability ``distractor_prob``, replaced by an uninformative
  distractor frame (uniform noise, a blank colour, or an unrelated texture) at a random position; at least
  ``min(2, T)`` informative frames are kept. ``render(i).distractor`` says which frames are distractors, so the
  frames a navigation module selects can be compared with the informative ones.

Every sample is generated on the fly from ``(seed, index)`` with numpy (no files, no global random state), fully
vectorised over frames: about 1.5 ms for an 8-frame 64x64 clip and 6 ms for a 12-frame 112x112 clip on one idle
CPU core (normalisation included).

Scene: a static textured background (smooth noise, stripes or checkerboard, muted colours, random per clip), one or
two saturated objects (rectangle or ellipse) following the class trajectory over normalised time ``t`` in (0, 1),
a little per-frame position jitter and sensor noise. The reverse class of a pair uses ``1 - t``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..video import TRAIN_SAMPLINGS, normalize_frames, official_val_indices, train_indices, write_test_video

#: Class names, in reverse pairs: class ``2k + 1`` is class ``2k`` played backwards.
CLASS_NAMES: tuple[str, ...] = (
    "move_left_to_right",
    "move_right_to_left",
    "move_top_to_bottom",
    "move_bottom_to_top",
    "grow",
    "shrink",
    "appear",
    "disappear",
    "rotate_clockwise",
    "rotate_counterclockwise",
    "converge",
    "diverge",
    "brighten",
    "darken",
)

DISTRACTOR_KINDS: tuple[str, ...] = ("noise", "blank", "texture")

_LABEL_TAG = 0x4C41424C  # keeps the label-permutation random streams apart from the per-sample ones


@dataclass
class SyntheticSample:
    """One rendered clip, before normalisation.

    Attributes:
        frames: uint8 ``(T, H, W, 3)`` RGB.
        label: class index in ``[0, num_classes)``.
        distractor: bool ``(T,)``, True where the frame is a distractor (carries no class information).
        background: uint8 ``(H, W, 3)``, the clip's background without objects and without noise.
        object_mask: bool ``(T, H, W)``, pixels covered by an object in each frame (all False on distractors).
    """

    frames: np.ndarray
    label: int
    distractor: np.ndarray
    background: np.ndarray
    object_mask: np.ndarray


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]; returns ``(..., 3)``."""
    h = np.asarray(h, dtype=np.float32)
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros(np.shape(h) + (3,), dtype=np.float32)
    for k in range(6):
        out = np.where((i == k)[..., None], choices[k], out)
    return out


def _upsample_bilinear(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(h, w, C)`` -> ``(height, width, C)`` by separable linear interpolation (align-corners)."""
    h, w = coarse.shape[:2]
    ys = np.linspace(0, h - 1, height, dtype=np.float32)
    xs = np.linspace(0, w - 1, width, dtype=np.float32)
    y0 = np.minimum(np.floor(ys).astype(np.int64), h - 2)
    x0 = np.minimum(np.floor(xs).astype(np.int64), w - 2)
    wy = (ys - y0)[:, None, None]
    wx = (xs - x0)[None, :, None]
    rows = coarse[y0] * (1 - wy) + coarse[y0 + 1] * wy  # (height, w, C)
    return rows[:, x0] * (1 - wx) + rows[:, x0 + 1] * wx


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A random muted texture, float32 ``(H, W, 3)`` in [0, 1]; ``yy``/``xx`` are normalised pixel coordinates."""
    height, width = yy.shape
    base = _hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.25, 0.6))
    alt = _hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.25, 0.6))
    kind = rng.integers(3)
    if kind == 0:  # smooth colour noise
        g = int(rng.integers(3, 7))
        w = _upsample_bilinear(rng.random((g, g, 1)).astype(np.float32), height, width)
    elif kind == 1:  # stripes
        phi, freq = rng.uniform(0, np.pi), rng.uniform(2.0, 6.0)
        w = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(phi) + yy * np.sin(phi)) + rng.uniform(0, 6.3))
        w = w[..., None]
    else:  # checkerboard
        k = int(rng.integers(3, 8))
        w = (((np.floor(xx * k) + np.floor(yy * k)) % 2) * 0.8 + 0.1)[..., None]
    return (base * (1 - w) + alt * w).astype(np.float32)


def check_index(index: int, num_samples: int) -> int:
    """``index`` (negative counts from the end) as an index in ``[0, num_samples)``; IndexError otherwise."""
    index = int(index)
    if index < 0:
        index += num_samples
    if not 0 <= index < num_samples:
        raise IndexError(f"index {index} out of range for a dataset of {num_samples} samples")
    return index


class SyntheticVideoDataset(Dataset):
    """Seeded synthetic videos whose class depends on temporal order (see the module docstring).

    Args:
        num_samples: number of clips (``len(dataset)``).
        num_frames: T, frames per clip.
        size: frame size in pixels, an int (square) or ``(height, width)``; small sizes (64-112) are fast.
        num_classes: use the first ``num_classes`` of :data:`CLASS_NAMES` (2 <= num_classes <= 14). Keep it even to
            have every class together with its reverse.
        seed: dataset seed; sample ``i`` depends only on ``(seed, i)`` and the arguments.
        distractor_prob: probability that a frame is replaced by a distractor, in [0, 1).
        video_frames: render each video with L = ``video_frames`` >= T frames (the same motion sampled more densely)
            and take the T frames of a clip from it: with ``sampling`` (training; random, drawn from torch's
            generator like :class:`~afnet_edge.data.VideoListDataset`, so :class:`~afnet_edge.training.EpochSeeded`
            makes it a function of (seed, epoch, index)) or, when ``sampling`` is None, at the segment centres
            (:func:`~afnet_edge.video.official_val_indices`; deterministic). None: render exactly T frames.
        sampling: ``"tsn"`` (one random frame per segment) or ``"phase"`` (equal spacing, one random phase per clip:
            bLVNet-TAM, spec blvnet-tam.md §2), or None (segment centres); used only with ``video_frames``.

    ``dataset[i]`` returns ``(clip, label)``: clip float32 ``(T, 3, H, W)`` normalised like the real pipeline
    (``(x / 255 - MEAN) / STD``, :func:`afnet_edge.video.normalize_frames`), label an int. Labels are exactly
    balanced over each block of ``num_classes`` consecutive indices (a seeded permutation per block).
    """

    def __init__(
        self,
        num_samples: int,
        num_frames: int = 8,
        size: int | tuple[int, int] = 64,
        num_classes: int = len(CLASS_NAMES),
        seed: int = 0,
        distractor_prob: float = 0.25,
        video_frames: int | None = None,
        sampling: str | None = None,
    ) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        if int(num_frames) < 1:
            raise ValueError(f"num_frames: expected T >= 1, got {num_frames}")
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if height < 16 or width < 16:
            raise ValueError(f"size: expected at least 16x16 pixels, got {height}x{width}")
        if not 2 <= int(num_classes) <= len(CLASS_NAMES):
            raise ValueError(f"num_classes: expected 2..{len(CLASS_NAMES)}, got {num_classes}")
        if not 0.0 <= float(distractor_prob) < 1.0:
            raise ValueError(f"distractor_prob: expected a probability in [0, 1), got {distractor_prob}")
        if video_frames is not None and int(video_frames) < int(num_frames):
            raise ValueError(f"video_frames: expected L >= num_frames={num_frames}, got {video_frames}")
        if sampling is not None and sampling not in TRAIN_SAMPLINGS:
            raise ValueError(f"sampling: expected one of {TRAIN_SAMPLINGS} or None, got {sampling!r}")
        self.video_frames = None if video_frames is None else int(video_frames)
        self.sampling = sampling
        self.num_samples = int(num_samples)
        self.num_frames = int(num_frames)
        self.height, self.width = height, width
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.distractor_prob = float(distractor_prob)
        ys = (np.arange(height, dtype=np.float32) + 0.5) / height
        xs = (np.arange(width, dtype=np.float32) + 0.5) / width
        self._yy, self._xx = np.meshgrid(ys, xs, indexing="ij")  # (H, W), normalised to (0, 1)

    @property
    def class_names(self) -> list[str]:
        """Names of the classes in use, index = label."""
        return list(CLASS_NAMES[: self.num_classes])

    def __len__(self) -> int:
        return self.num_samples

    def label_of(self, index: int) -> int:
        """Label of sample ``index`` without rendering it."""
        index = self._check_index(index)
        block, pos = divmod(index, self.num_classes)
        perm = np.random.default_rng([self.seed, _LABEL_TAG, block]).permutation(self.num_classes)
        return int(perm[pos])

    def labels(self) -> np.ndarray:
        """int64 ``(num_samples,)``, the label of every sample (cheap, nothing rendered)."""
        return np.array([self.label_of(i) for i in range(self.num_samples)], dtype=np.int64)

    def _check_index(self, index: int) -> int:
        return check_index(index, self.num_samples)

    def frame_indices(self, rng: np.random.Generator | None = None) -> list[int] | None:
        """The T frames a clip takes from its ``video_frames``-frame video (``rng`` draws the training sampling), or
        None when clips are rendered with exactly T frames."""
        if self.video_frames is None or self.video_frames == self.num_frames:
            return None
        if self.sampling is None:
            return official_val_indices(self.video_frames, self.num_frames)
        return train_indices(self.video_frames, self.num_frames, rng, sampling=self.sampling)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = None
        if self.sampling is not None and self.video_frames not in (None, self.num_frames):
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        indices = self.frame_indices(rng)
        if indices is None:
            sample = self.render(index)
            return normalize_frames(sample.frames), sample.label
        sample = self.render(index, num_frames=self.video_frames)
        return normalize_frames(sample.frames[indices]), sample.label

    # -----------------------------------------------------------------------------------------------------------

    def render(self, index: int, num_frames: int | None = None) -> SyntheticSample:
        """Render sample ``index`` as uint8 frames (no normalisation).

        Args:
            index: sample index.
            num_frames: render this many frames instead of T (same clip parameters, same label, so the same
                motion sampled more densely; the distractor positions are drawn for this frame count). Used to
                write longer videos that the real-data path then samples T frames from.

        Returns:
            :class:`SyntheticSample`.
        """
        index = self._check_index(index)
        n = self.num_frames if num_frames is None else int(num_frames)
        if n < 1:
            raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
        label = self.label_of(index)
        rng = np.random.default_rng([self.seed, index])
        yy, xx = self._yy, self._xx
        height, width = self.height, self.width

        # --- clip-level parameters (drawn before anything that depends on n) ---
        background = _texture(rng, yy, xx)
        kind = CLASS_NAMES[label]
        base = label - (label % 2)
        reverse = bool(label % 2)
        hue = rng.random()
        colours = _hsv_to_rgb(np.array([hue, (hue + rng.uniform(0.3, 0.7)) % 1.0]), np.array([0.9, 0.9]),
                              np.array([1.0, 1.0]))  # (2, 3), saturated and bright
        ellipse = bool(rng.integers(2))
        aspect = rng.uniform(0.6, 1.0)
        r = rng.uniform(0.1, 0.16)  # object half-size, fraction of the frame
        cx0, cy0 = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
        lo, hi = rng.uniform(0.15, 0.3), rng.uniform(0.7, 0.85)  # start / end of a sweep
        theta0 = rng.uniform(0, np.pi)
        sweep = rng.uniform(0.5, 0.75) * np.pi
        tau = rng.uniform(0.3, 0.7)
        axis = rng.uniform(0, np.pi)
        jitter_px = 0.6
        noise_sigma = 3.0 / 255.0

        # --- per-frame trajectory over normalised time t ---
        t = (np.arange(n, dtype=np.float32) + 0.5) / n
        s = (1.0 - t) if reverse else t  # the reverse class plays the base trajectory backwards
        ones = np.ones(n, dtype=np.float32)
        cx, cy = cx0 * ones, cy0 * ones
        ha, hb = r * ones, r * aspect * ones  # half-axes along the object's own u / v directions
        theta = theta0 * ones
        gain = ones.copy()
        visible = np.ones(n, dtype=bool)
        two = False
        base_name = CLASS_NAMES[base]
        if base_name == "move_left_to_right":
            cx = lo + (hi - lo) * s
        elif base_name == "move_top_to_bottom":
            cy = lo + (hi - lo) * s
        elif base_name == "grow":
            ha = (0.05 + (0.28 - 0.05) * s) * ones
            hb = ha * aspect
        elif base_name == "appear":
            visible = s > tau
        elif base_name == "rotate_clockwise":
            # y points down in images, so an increasing angle turns clockwise on screen
            ha, hb = r * 1.6 * ones, r * 0.35 * ones
            theta = theta0 + sweep * s
        elif base_name == "converge":
            two = True
            sep = 0.36 - (0.36 - 0.1) * s  # half the distance between the two objects
            ha, hb = 0.75 * r * ones, 0.75 * r * ones
        elif base_name == "brighten":
            gain = 0.3 + 0.7 * s
        else:  # pragma: no cover - guarded by CLASS_NAMES
            raise AssertionError(kind)

        jit = rng.normal(0.0, jitter_px, size=(2, n)).astype(np.float32)
        cx = cx + jit[0] / width
        cy = cy + jit[1] / height

        def mask_at(cx_: np.ndarray, cy_: np.ndarray) -> np.ndarray:
            dx = xx[None] - cx_[:, None, None]
            dy = (yy[None] - cy_[:, None, None]) * (height / width)  # isotropic in pixels
            c, sn = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
            u = (dx * c + dy * sn) / ha[:, None, None]
            v = (-dx * sn + dy * c) / hb[:, None, None]
            if ellipse:
                return u * u + v * v <= 1.0
            return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)

        frames = np.broadcast_to(background, (n, height, width, 3)).copy()
        if two:
            ox, oy = np.cos(axis) * sep, np.sin(axis) * sep * (width / height)
            masks = [mask_at(cx0 + ox + jit[0] / width, cy0 + oy + jit[1] / height),
                     mask_at(cx0 - ox + jit[0] / width, cy0 - oy + jit[1] / height)]
        else:
            masks = [mask_at(cx, cy)]
        object_mask = np.zeros((n, height, width), dtype=bool)
        for k, m in enumerate(masks):
            m = m & visible[:, None, None]
            colour = (colours[k][None, :] * gain[:, None]).astype(np.float32)  # (n, 3)
            fi, yi, xi = np.nonzero(m)
            frames[fi, yi, xi] = colour[fi]
            object_mask |= m
        # sensor noise: uniform with standard deviation noise_sigma (4x cheaper to draw than a normal)
        noise = rng.random(size=frames.shape, dtype=np.float32)
        noise -= 0.5
        noise *= noise_sigma * np.sqrt(12.0)
        frames += noise

        # --- distractors ---
        distractor = rng.random(n) < self.distractor_prob
        keep = min(2, n)
        if n - int(distractor.sum()) < keep:
            hit = np.flatnonzero(distractor)
            distractor[rng.choice(hit, size=keep - (n - hit.size), replace=False)] = False
        for f in np.flatnonzero(distractor):
            dk = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
            if dk == "noise":
                frames[f] = rng.random((height, width, 3), dtype=np.float32)
            elif dk == "blank":
                frames[f] = rng.random(3, dtype=np.float32)[None, None, :]
            else:
                frames[f] = _texture(rng, yy, xx)
            object_mask[f] = False

        frames *= 255.0
        np.rint(frames, out=frames)
        np.clip(frames, 0, 255, out=frames)
        out = frames.astype(np.uint8)
        bg = np.clip(np.rint(background * 255.0), 0, 255).astype(np.uint8)
        return SyntheticSample(frames=out, label=label, distractor=distractor, background=bg,
                               object_mask=object_mask)


def write_synthetic_videos(
    dataset: SyntheticVideoDataset,
    out_dir: str | os.PathLike,
    indices: Iterable[int] | int,
    *,
    video_frames: int | None = None,
    layout: str = "video",
    image_tmpl: str = "img_{:05d}.jpg",
    list_name: str = "list.txt",
    fps: int = 12,
) -> str:
    """Write synthetic clips as real files plus a TSN-layout list file ``path num_frames label``.

    Args:
        dataset: the dataset to render from (its frame size must be even for ``layout="video"``).
        out_dir: output directory (created); files are named ``<index:06d>.mp4`` or ``<index:06d>/`` and listed
            relative to it, so ``VideoListDataset(out_dir, <list file>)`` reads them back.
        indices: sample indices to write, or an int ``k`` for the first ``k`` samples.
        video_frames: frames per written video (default: ``dataset.num_frames``); longer videos show the same
            motion sampled more densely and let the real-data path do its own segment sampling.
        layout: ``"video"`` (mp4 through PyAV, :func:`afnet_edge.video.write_test_video`) or ``"frames"``
            (a folder of JPEG files numbered from 1 with ``image_tmpl``, the official layout).
        image_tmpl: file-name template for ``layout="frames"``.
        list_name: name of the list file written in ``out_dir``.
        fps: frame rate of written videos.

    Returns:
        path of the list file.
    """
    from PIL import Image


    if layout not in ("video", "frames"):
        raise ValueError(f"layout: expected 'video' or 'frames', got {layout!r}")
    idx: Sequence[int] = range(int(indices)) if isinstance(indices, (int, np.integer)) else list(indices)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    lines = []
    for i in idx:
        sample = dataset.render(i, num_frames=video_frames)
        name = f"{int(i):06d}"
        if layout == "video":
            name += ".mp4"
            write_test_video(os.path.join(out_dir, name), sample.frames, fps=fps)
        else:
            folder = os.path.join(out_dir, name)
            os.makedirs(folder, exist_ok=True)
            for k, frame in enumerate(sample.frames):
                Image.fromarray(frame).save(os.path.join(folder, image_tmpl.format(k + 1)), quality=95)
        lines.append(f"{name} {len(sample.frames)} {sample.label}\n")
    list_path = os.path.join(out_dir, list_name)
    with open(list_path, "w") as fh:
        fh.writelines(lines)
    return list_path
