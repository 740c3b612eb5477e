"""A Move4MNIST-style generator: a digit drifting slowly in one of four directions through sparse informative frames.

"No frame left behind" (CVPR 2021) evaluates full-video clustering on Move4MNIST, whose videos are not published
(spec full-video-clustering.md §9 lists what the release shows). This generator rebuilds the task from that
description so that the paper's claim can be measured in miniature:

* **Classes** (the release's 0-based labels): 0 ``left``, 1 ``right``, 2 ``up``, 3 ``down`` — the direction in
  which one digit moves, slowly (0.2-0.4 px per frame at 64 px, so a few pixels over the clip).
* **Frames**: ``video_frames`` (32) grey frames of ``size`` × ``size`` (64), given to the network as RGB with three
  equal channels and normalised like every other dataset here.
* **Sparse, irregular information**: each frame is *informative* (background + the moving digit), *blank*
  (completely black) or *background only*; a second, different digit (the distractor) sits still at one place and
  shows in some frames of any kind but the blank ones. At least two frames are informative. Sparse uniform
  sampling therefore often sees too few informative frames to tell the direction, while all frames always do.
* **Background**: a grey multi-scale noise texture standing in for the release's indoor video, swaying by up to
  two pixels over the clip, plus faint sensor noise.

Digits are the 8×8 handwritten digits bundled with scikit-learn (1,797 images; nothing is downloaded), sampled
bilinearly at sub-pixel positions (about 3× enlarged at 64 px). Glyphs ``[0, 1200)`` serve the training split and
``[1200, 1797)`` the validation split, so validation digits are unseen writing. Everything is generated on the fly
from ``(seed, index)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from ..video import normalize_frames
from .synthetic import check_index

#: Class names, index = label (the release's ``classInd.txt`` order, 0-based as in its split files).
MOVE4MNIST_CLASSES: tuple[str, ...] = ("left", "right", "up", "down")
#: Unit motion (dy, dx) of each class, pixels.
_DIRECTIONS = np.array([(0.0, -1.0), (0.0, 1.0), (-1.0, 0.0), (1.0, 0.0)], dtype=np.float32)
#: Frame kinds of :attr:`Move4MNISTSample.kind`.
INFORMATIVE, BLANK, BACKGROUND = 0, 1, 2
KIND_NAMES: tuple[str, ...] = ("informative", "blank", "background")
#: Glyphs of the bundled digits used by each split.
_SPLIT_GLYPHS = {"train": (0, 1200), "val": (1200, 1797)}
VIDEO_FRAMES = 32
_TAG = 0x4D4E4953  # keeps these random streams apart from the other synthetic datasets'


@lru_cache(maxsize=1)
def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: float32 ``(1797, 8, 8)`` in [0, 1] and int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the Move4MNIST-style generator draws its digits from scikit-learn's bundled dataset: "
                          "pip install -e .[data] (or pip install scikit-learn)") from e
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@dataclass
class Move4MNISTSample:
    """One rendered video, before normalisation.

    Attributes:
        frames: uint8 ``(N, H, W)`` grey.
        label: class index (0 left, 1 right, 2 up, 3 down).
        kind: int8 ``(N,)``: :data:`INFORMATIVE`, :data:`BLANK` or :data:`BACKGROUND`.
        distractor: bool ``(N,)``, True where the still distractor digit shows.
        positions: float32 ``(N, 2)``, the moving digit's top-left corner (row, column) in pixels, also where it
            is not shown.
        glyph_size: side of the drawn digits in pixels.
    """

    frames: np.ndarray
    label: int
    kind: np.ndarray
    distractor: np.ndarray
    positions: np.ndarray
    glyph_size: float


def _draw(glyph: np.ndarray, top: np.ndarray, left: np.ndarray, side: float, size: int) -> np.ndarray:
    """Alpha ``(n, size, size)`` of an 8×8 glyph scaled to ``side`` pixels with its top-left corner at
    ``(top[i], left[i])`` (sub-pixel), by bilinear sampling of the zero-padded glyph at the pixel centres."""
    g = np.pad(glyph, 1)                                                      # (10, 10): zero outside the glyph
    c = (np.arange(size, dtype=np.float32) + 0.5)
    u = (c[None, :] - top[:, None]) * (8.0 / side) - 0.5 + 1.0                # (n, size) glyph-row coordinate (+pad)
    v = (c[None, :] - left[:, None]) * (8.0 / side) - 0.5 + 1.0
    u = np.clip(u, 0.0, 9.0)
    v = np.clip(v, 0.0, 9.0)
    u0 = np.minimum(np.floor(u).astype(np.int64), 8)
    v0 = np.minimum(np.floor(v).astype(np.int64), 8)
    wu, wv = (u - u0)[:, :, None], (v - v0)[:, None, :]
    g00 = g[u0[:, :, None], v0[:, None, :]]
    g01 = g[u0[:, :, None], v0[:, None, :] + 1]
    g10 = g[u0[:, :, None] + 1, v0[:, None, :]]
    g11 = g[u0[:, :, None] + 1, v0[:, None, :] + 1]
    return (g00 * (1 - wu) * (1 - wv) + g01 * (1 - wu) * wv + g10 * wu * (1 - wv) + g11 * wu * wv).astype(np.float32)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A grey multi-scale noise texture ``(size, size)`` in about [0.1, 0.6] (bilinear octaves of random grids)."""
    out = np.zeros((size, size), dtype=np.float32)
    for cells, weight in ((3, 0.5), (6, 0.3), (12, 0.2)):
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        pos = np.linspace(0, cells, size, dtype=np.float32)
        i0 = np.minimum(np.floor(pos).astype(np.int64), cells - 1)
        w = pos - i0
        rows = grid[i0] * (1 - w)[:, None] + grid[i0 + 1] * w[:, None]
        out += weight * (rows[:, i0] * (1 - w)[None, :] + rows[:, i0 + 1] * w[None, :])
    return 0.1 + 0.5 * out


class Move4MNISTDataset(Dataset):
    """Move4MNIST-style videos (see the module docstring).

    Args:
        num_samples: number of videos; labels cycle through the four classes (exactly balanced per block of 4).
        num_frames: frames given to the model, T ≤ ``video_frames``. T = ``video_frames`` gives every frame (what
            full-video clustering consumes); a smaller T samples T frames as TSN does — the centre of each of T
            equal segments, or a random frame in each segment with ``random_sampling`` (training).
        size: frame side in pixels (64 as released; smaller is faster, the motion scales with it).
        seed: dataset seed; video ``i`` depends only on ``(seed, i)``, the split and ``size``.
        split: ``"train"`` or ``"val"``: which bundled digit images are drawn (disjoint sets).
        video_frames: frames per video (32 as released).
        random_sampling: draw the T frames at random within their segments (needs T < ``video_frames``).
        informative_only: draw the T frames (sorted, in time order) from the video's informative frames only,
            with repetition when it has fewer than T: a clean pre-training input that needs the generator's
            knowledge of each frame's kind (the CPU experiment's stand-in for the release's ImageNet weights).
        cache_mb: keep rendered videos (uint8, all ``video_frames``) in memory when they fit in this many MiB
            (default 1024; 0 = never): rendering costs ~30 ms a video on one core, often more than a small model's
            training step, and a video depends only on its index. Frame sampling is still drawn per access.

    ``dataset[i]`` returns ``(clip, label)``: clip float32 ``(T, 3, H, W)`` normalised like the real pipeline.
    """

    def __init__(self, num_samples: int, num_frames: int = VIDEO_FRAMES, size: int = 64, seed: int = 0,
                 split: str = "train", video_frames: int = VIDEO_FRAMES, random_sampling: bool = False,
                 cache_mb: float = 1024, informative_only: bool = False) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        if int(video_frames) < 2:
            raise ValueError(f"video_frames: expected >= 2, got {video_frames}")
        if not 1 <= int(num_frames) <= int(video_frames):
            raise ValueError(f"num_frames: expected 1..{video_frames} (frames sampled from each {video_frames}-frame "
                             f"video), got {num_frames}")
        if int(size) < 16:
            raise ValueError(f"size: expected at least 16 pixels, got {size}")
        if split not in _SPLIT_GLYPHS:
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        self.num_samples, self.num_frames, self.size = int(num_samples), int(num_frames), int(size)
        self.seed, self.split, self.video_frames = int(seed), split, int(video_frames)
        self.random_sampling = bool(random_sampling)
        self.informative_only = bool(informative_only)
        if not cache_mb >= 0:
            raise ValueError(f"cache_mb: expected >= 0 MiB, got {cache_mb}")
        video_bytes = self.video_frames * self.size * self.size
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = (
            {} if self.num_samples * video_bytes <= cache_mb * 2 ** 20 else None)
        bundled_digits()                                  # fail here, not in a DataLoader worker

    @property
    def num_classes(self) -> int:
        return len(MOVE4MNIST_CLASSES)

    @property
    def class_names(self) -> list[str]:
        return list(MOVE4MNIST_CLASSES)

    def __len__(self) -> int:
        return self.num_samples

    def label_of(self, index: int) -> int:
        return self._check_index(index) % len(MOVE4MNIST_CLASSES)

    def labels(self) -> np.ndarray:
        return np.arange(self.num_samples, dtype=np.int64) % len(MOVE4MNIST_CLASSES)

    def _check_index(self, index: int) -> int:
        return check_index(index, self.num_samples)

    def frame_indices(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The ``num_frames`` frame indices given to the model (segment centres, or random within segments)."""
        n, t = self.video_frames, self.num_frames
        if t == n:
            return np.arange(n)
        edges = np.linspace(0, n, t + 1)
        if self.random_sampling:
            rng = rng or np.random.default_rng()
            return np.minimum(np.floor(edges[:-1] + rng.random(t) * (edges[1:] - edges[:-1])).astype(np.int64),
                              n - 1)
        return np.minimum(np.floor((edges[:-1] + edges[1:]) / 2).astype(np.int64), n - 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = self._check_index(index)
        hit = self._cache.get(index) if self._cache is not None else None
        if hit is None:
            sample = self.render(index)
            hit = (sample.frames, sample.kind)
            if self._cache is not None:
                self._cache[index] = hit
        video, kind = hit
        if self.informative_only:
            rng = np.random.default_rng()
            informative = np.flatnonzero(kind == INFORMATIVE)
            picks = np.sort(rng.choice(informative, self.num_frames, replace=len(informative) < self.num_frames))
        else:
            picks = self.frame_indices(index)
        frames = video[picks]
        return normalize_frames(np.repeat(frames[..., None], 3, axis=-1)), self.label_of(index)

    def render(self, index: int) -> Move4MNISTSample:
        """Render all ``video_frames`` frames of video ``index`` (uint8, no normalisation)."""
        index = self._check_index(index)
        label = self.label_of(index)
        rng = np.random.default_rng([self.seed, _TAG, index])
        n, s = self.video_frames, self.size
        scale = s / 64.0
        images, digit_of = bundled_digits()
        lo, hi = _SPLIT_GLYPHS[self.split]

        # the two digits: a moving one and a still distractor of another digit class
        a = int(rng.integers(lo, hi))
        others = np.flatnonzero(digit_of[lo:hi] != digit_of[a]) + lo
        b = int(others[rng.integers(len(others))])
        side = float(rng.uniform(20.0, 26.0)) * scale

        # the moving digit: slow drift in the class direction, its whole path inside the frame
        speed = float(rng.uniform(0.2, 0.4)) * scale
        step = _DIRECTIONS[label] * speed
        travel = np.abs(step) * (n - 1)
        margin = 1.0 * scale
        start = np.array([rng.uniform(margin + (travel[k] if step[k] < 0 else 0.0),
                                      s - side - margin - (travel[k] if step[k] > 0 else 0.0)) for k in range(2)],
                         dtype=np.float32)
        positions = (start[None, :] + np.arange(n, dtype=np.float32)[:, None] * step[None, :]).astype(np.float32)

        # frame kinds: sparse, irregular informative frames (at least two)
        kind = rng.choice(np.array([INFORMATIVE, BLANK, BACKGROUND], dtype=np.int8), size=n, p=(0.35, 0.2, 0.45))
        informative = np.flatnonzero(kind == INFORMATIVE)
        if len(informative) < 2:
            kind[rng.choice(np.flatnonzero(kind != INFORMATIVE), 2 - len(informative), replace=False)] = INFORMATIVE
        distractor = (rng.random(n) < 0.4) & (kind != BLANK)

        # background: a texture on a slightly larger canvas, swaying by up to two pixels over the clip
        pad = max(1, int(round(2 * scale)))
        canvas = _texture(rng, s + 2 * pad)
        sway = np.round(np.cumsum(rng.normal(0, 0.25, (n, 2)), axis=0)).astype(np.int64)
        sway = np.clip(sway, -pad, pad) + pad
        rows = sway[:, 0, None] + np.arange(s)[None, :]                                   # (n, s)
        cols = sway[:, 1, None] + np.arange(s)[None, :]
        frames = canvas[rows[:, :, None], cols[:, None, :]]                               # (n, s, s)

        # composite white digits, then sensor noise; blank frames are black
        alpha = _draw(images[a], positions[:, 0], positions[:, 1], side, s) * (kind == INFORMATIVE)[:, None, None]
        frames = frames * (1 - alpha) + alpha
        b_top, b_left = (rng.uniform(margin, s - side - margin) for _ in range(2))
        beta = _draw(images[b], np.full(1, b_top, np.float32), np.full(1, b_left, np.float32), side, s)  # still
        beta = beta * distractor[:, None, None]
        frames = frames * (1 - beta) + beta
        frames = frames + rng.normal(0, 0.015, frames.shape).astype(np.float32)
        frames[kind == BLANK] = 0.0
        out = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
        return Move4MNISTSample(frames=out, label=label, kind=kind, distractor=distractor, positions=positions,
                                glyph_size=side)


def move4mnist_splits(num_frames: int, num_classes: int, train_samples: int, val_samples: int, size: int = 64,
                      seed: int = 0, val_seed_offset: int = 1, informative_only: bool = False):
    """``(train, val)`` Move4MNIST-style splits: training videos from the training digits with random frame
    sampling (when T < 32; from the informative frames only with ``informative_only``), validation from the
    validation digits with segment centres (seed ``seed + 1``), always every kind of frame."""
    if num_classes != len(MOVE4MNIST_CLASSES):
        raise ValueError(f"--data move4mnist has {len(MOVE4MNIST_CLASSES)} classes ({', '.join(MOVE4MNIST_CLASSES)}), "
                         f"but the model has num_classes={num_classes}; pass --classes 4")
    if not 1 <= num_frames <= VIDEO_FRAMES:
        raise ValueError(f"--data move4mnist videos have {VIDEO_FRAMES} frames; the model takes T={num_frames} "
                         f"(pass --frames 1..{VIDEO_FRAMES})")
    train = Move4MNISTDataset(train_samples, num_frames, size, seed, "train",
                              random_sampling=num_frames < VIDEO_FRAMES,
                              informative_only=informative_only) if train_samples else None
    val = Move4MNISTDataset(val_samples, num_frames, size, seed + val_seed_offset, "val") if val_samples else None
    return train, val
