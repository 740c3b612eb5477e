"""Videos and frame folders listed in a TSN-layout list file (the layout the official code reads, spec §10).

List file: one video per line, ``path num_frames label`` separated by whitespace, where

* ``path`` is relative to ``root`` (or absolute) and names either a **folder of frames** (JPEG/PNG files numbered
  from 1 with ``image_tmpl``, ``img_00001.jpg`` for the first frame by default; Something-Something V1 uses
  ``{:05d}.jpg``) or a **video file** decoded with PyAV (:mod:`afnet_edge.video`). The path may contain spaces:
  the last two fields are the numbers.
* ``num_frames`` is the number of frames the sampling works from, as in the official code (it is not re-counted;
  for a video file, requesting a frame the video does not have is an error that names the line).
* ``label`` is an integer class index, ``0 <= label < num_classes`` when ``num_classes`` is given.

Blank lines are ignored; every other line must parse, otherwise a ValueError names the file, the line number and
what was expected. Nothing is skipped silently (unlike the official TSM loader, which silently drops training videos
with fewer than 3 frames).

Sampling (:mod:`afnet_edge.video`): training uses TSN segment sampling (:func:`~afnet_edge.video.tsn_train_indices`,
one random frame per segment; ``sampling="tsn"``) or bLVNet-TAM's equal spacing with one random phase per clip
(:func:`~afnet_edge.video.phase_train_indices`; ``sampling="phase"``), evaluation the official middle-of-segment sampling
(:func:`~afnet_edge.video.official_val_indices`). Videos with ``num_frames <= T`` (``< T`` for training) get frame 0
repeated T times under the default ``short="official"`` (what the official code does), or each frame repeated about
``T / num_frames`` times in order with ``short="spread"``.

Preprocessing: training = resize 240x320, multi-scale crop to ``size`` (:func:`.transforms.train_augment`; no flip
unless ``flip=True``, bLVNet-TAM's recipe);
evaluation = resize 240x320, centre crop ``size`` (:func:`afnet_edge.video.preprocess_frames`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..video import (
    CROP_SIZE,
    SCALE_SIZE,
    SHORT_POLICIES,
    TRAIN_SAMPLINGS,
    official_val_indices,
    preprocess_frames,
    read_frames,
    train_indices,
)
from .transforms import SCALES, train_augment


@dataclass(frozen=True)
class VideoRecord:
    """One parsed line of a list file.

    Attributes:
        path: the path as written in the list file.
        num_frames: frame count from the list file.
        label: class index.
        line: 1-based line number in the list file.
    """

    path: str
    num_frames: int
    label: int
    line: int


def parse_video_list(list_file: str | os.PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a TSN-layout list file (``path num_frames label`` per line).

    Args:
        list_file: the list file.
        num_classes: when given, every label must be in ``[0, num_classes)``.

    Returns:
        the records in file order (at least one).

    Raises:
        FileNotFoundError: the list file does not exist.
        ValueError: the file has no entry; a line does not have the form ``path num_frames label`` with
            ``num_frames >= 1`` and an integer label ``>= 0`` (and ``< num_classes``); the message gives
            ``<file>:<line number>``.
    """
    list_file = os.fspath(list_file)
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"video list: no such file '{list_file}'")
    if num_classes is not None and int(num_classes) < 1:
        raise ValueError(f"num_classes: expected >= 1, got {num_classes}")
    records: list[VideoRecord] = []
    with open(list_file, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            where = f"video list '{list_file}', line {lineno}"
            fields = line.rsplit(None, 2)
            if len(fields) != 3:
                raise ValueError(f"{where}: expected 'path num_frames label' (3 fields), got {line!r}")
            path, nf, lab = fields
            try:
                num_frames = int(nf)
            except ValueError:
                raise ValueError(f"{where}: num_frames must be an integer, got {nf!r} in {line!r}") from None
            try:
                label = int(lab)
            except ValueError:
                raise ValueError(f"{where}: label must be an integer, got {lab!r} in {line!r}") from None
            if num_frames < 1:
                raise ValueError(f"{where}: num_frames must be >= 1, got {num_frames}")
            if label < 0 or (num_classes is not None and label >= int(num_classes)):
                limit = f"[0, {int(num_classes)})" if num_classes is not None else ">= 0"
                raise ValueError(f"{where}: label {label} out of range, expected {limit}")
            records.append(VideoRecord(path=path, num_frames=num_frames, label=label, line=lineno))
    if not records:
        raise ValueError(f"video list '{list_file}' has no entries (expected lines 'path num_frames label')")
    return records


class VideoListDataset(Dataset):
    """Clips from a TSN-layout list of frame folders and/or video files (see the module docstring).

    Args:
        root: directory the list's paths are relative to.
        list_file: the list file (``path num_frames label`` per line).
        num_frames: T, frames per clip.
        train: True for training (TSN random segment sampling + multi-scale crop), False for the official
            evaluation (middle-of-segment sampling + centre crop).
        num_classes: when given, labels are checked to be in ``[0, num_classes)``.
        image_tmpl: file-name template of frame folders, formatted with the 1-based frame number.
        size: output side in pixels (224 officially).
        scale_size: (height, width) every frame is resized to first (240x320 officially), or None.
        scale_short: resize every frame so that its shorter side is this many pixels, keeping the aspect ratio
            (longer side ``int(scale_short · long / short)``, as torchvision's ``Resize(int)``) instead of
            ``scale_size`` (bLVNet-TAM: 256 for training, 224 for evaluation).
        scales: multi-scale crop scales for training.
        short: policy for videos with too few frames, ``"official"`` or ``"spread"``
            (:func:`afnet_edge.video.official_val_indices`).
        sampling: training frame sampling, ``"tsn"`` (one random frame per segment) or ``"phase"`` (equal spacing,
            one random phase per clip: bLVNet-TAM); evaluation always takes the segment centres.
        flip: training only: flip the whole clip horizontally with probability 0.5.
        check_files: check at construction that every listed path exists (one ``stat`` per line).

    ``dataset[i]`` returns ``(clip, label)``: clip float32 ``(T, 3, size, size)``, label an int.
    Training randomness is drawn from torch's generator (``torch.randint``), so ``torch.manual_seed`` makes it
    reproducible and DataLoader workers get different streams.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        list_file: str | os.PathLike,
        num_frames: int = 8,
        *,
        train: bool = False,
        num_classes: int | None = None,
        image_tmpl: str = "img_{:05d}.jpg",
        size: int = CROP_SIZE,
        scale_size: tuple[int, int] | None = SCALE_SIZE,
        scales: tuple[float, ...] = SCALES,
        short: str = "official",
        check_files: bool = True,
        sampling: str = "tsn",
        flip: bool = False,
        scale_short: int | None = None,
    ) -> None:
        if scale_short is not None and int(scale_short) < int(size):
            raise ValueError(f"scale_short: expected a shorter side >= size={size}, got {scale_short}")
        if sampling not in TRAIN_SAMPLINGS:
            raise ValueError(f"sampling: expected one of {TRAIN_SAMPLINGS}, got {sampling!r}")
        if int(num_frames) < 1:
            raise ValueError(f"num_frames: expected T >= 1, got {num_frames}")
        if short not in SHORT_POLICIES:
            raise ValueError(f"short: expected one of {SHORT_POLICIES}, got {short!r}")
        try:
            image_tmpl.format(1)
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(f"image_tmpl: expected a template such as 'img_{{:05d}}.jpg', got {image_tmpl!r}") from exc
        self.root = os.fspath(root)
        self.list_file = os.fspath(list_file)
        self.num_frames = int(num_frames)
        self.train = bool(train)
        self.num_classes = num_classes
        self.image_tmpl = image_tmpl
        self.size = int(size)
        self.scale_size = scale_size
        self.scale_short = None if scale_short is None else int(scale_short)
        self.scales = tuple(scales)
        self.short = short
        self.sampling = sampling
        self.flip = bool(flip)
        self.records = parse_video_list(self.list_file, num_classes)
        if check_files:
            for rec in self.records:
                full = self.full_path(rec)
                if not os.path.exists(full):
                    raise FileNotFoundError(
                        f"video list '{self.list_file}', line {rec.line}: no such video file or frame folder '{full}'"
                    )

    def __len__(self) -> int:
        return len(self.records)

    def full_path(self, rec: VideoRecord) -> str:
        """Path of a record on disk (``root`` joined with the listed path)."""
        return os.path.join(self.root, rec.path)

    def sample_indices(self, rec: VideoRecord, rng: np.random.Generator | None = None) -> list[int]:
        """The T 0-based frame indices for ``rec``: the training sampling (``sampling``) when training, the official
        segment centres otherwise."""
        if self.train:
            return train_indices(rec.num_frames, self.num_frames, rng, sampling=self.sampling, short=self.short)
        return official_val_indices(rec.num_frames, self.num_frames, short=self.short)

    def load_frames(self, rec: VideoRecord, indices: list[int]) -> np.ndarray:
        """Read frames ``indices`` (0-based) of ``rec``; uint8 ``(len(indices), H, W, 3)`` RGB.

        Raises:
            FileNotFoundError: the folder, a frame file or the video file is missing.
            ValueError: a frame or video cannot be decoded, or frames differ in size; messages name the list line.
        """
        full = self.full_path(rec)
        where = f"video list '{self.list_file}', line {rec.line}"
        if os.path.isdir(full):
            return self._load_folder(full, indices, where)
        if not os.path.exists(full):
            raise FileNotFoundError(f"{where}: no such video file or frame folder '{full}'")
        try:
            return read_frames(full, indices)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc

    def _load_folder(self, folder: str, indices: list[int], where: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        cache: dict[int, np.ndarray] = {}
        for i in indices:
            if i in cache:
                continue
            name = os.path.join(folder, self.image_tmpl.format(i + 1))  # official files are numbered from 1
            if not os.path.isfile(name):
                raise FileNotFoundError(f"{where}: missing frame file '{name}' (frame index {i}, 0-based)")
            try:
                with Image.open(name) as img:
                    cache[i] = np.asarray(img.convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"{where}: cannot decode frame file '{name}': {exc}") from exc
        shapes = {a.shape for a in cache.values()}
        if len(shapes) != 1:
            raise ValueError(f"{where}: frames of '{folder}' differ in size: {sorted(shapes)}")
        return np.stack([cache[i] for i in indices])

    def resize_to(self, frames: np.ndarray) -> tuple[int, int] | None:
        """(height, width) the frames ``(T, H, W, 3)`` are resized to before cropping: ``scale_size``, or with
        ``scale_short`` the shorter side set to it, the aspect ratio kept."""
        if self.scale_short is None:
            return self.scale_size
        h, w = int(frames.shape[1]), int(frames.shape[2])
        s = self.scale_short
        return (s, int(s * w / h)) if h <= w else (int(s * h / w), s)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rec = self.records[index]
        rng = None
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        indices = self.sample_indices(rec, rng)
        frames = self.load_frames(rec, indices)
        if self.train:
            clip = train_augment(frames, rng, self.size, self.resize_to(frames), self.scales, flip=self.flip)
        else:
            clip = preprocess_frames(frames, self.size, self.resize_to(frames))
        return clip, rec.label
