"""Training / validation datasets from command-line style options (synthetic benchmark or TSN list files)."""
from __future__ import annotations

import os

from ..data.synthetic import CLASS_NAMES, SyntheticVideoDataset
from ..data.video_list import VideoListDataset

#: The synthetic validation split uses seed ``data_seed + VAL_SEED_OFFSET`` (sample i depends only on (seed, i),
#: so the two splits are independent draws of the same distribution).
VAL_SEED_OFFSET = 1
SYNTHETIC_SIZE = 64
MOVE4MNIST_SIZE = 64       # the release's frame side
LIST_SIZE = 224


def synthetic_splits(num_frames: int, num_classes: int, train_samples: int, val_samples: int, size: int = SYNTHETIC_SIZE,
                     seed: int = 0, distractor_prob: float | None = None, video_frames: int | None = None,
                     sampling: str = "tsn"):
    """``(train, val)`` :class:`~afnet_edge.data.SyntheticVideoDataset` splits (seeds ``seed`` and ``seed + 1``).

    ``video_frames``: render videos of that many frames (>= ``num_frames``) and draw each clip's frames from them:
    the training split with ``sampling`` (``"tsn"`` / ``"phase"``, random per epoch), the validation split at the
    segment centres. None: every clip is rendered with exactly ``num_frames`` frames."""
    if not 2 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"the synthetic benchmark has 2..{len(CLASS_NAMES)} classes, but the model has "
                         f"num_classes={num_classes}; pass --classes N with N <= {len(CLASS_NAMES)}")
    kw: dict = {} if distractor_prob is None else {"distractor_prob": distractor_prob}
    if video_frames is not None:
        kw["video_frames"] = video_frames
    train = SyntheticVideoDataset(train_samples, num_frames, size, num_classes, seed, sampling=sampling, **kw) \
        if train_samples else None
    val = SyntheticVideoDataset(val_samples, num_frames, size, num_classes, seed + VAL_SEED_OFFSET, **kw) \
        if val_samples else None
    return train, val


def scale_size_for(size: int) -> tuple[int, int]:
    """The official 240×320 resize scaled to a crop of ``size`` (224 → 240×320)."""
    return round(240 * size / 224), round(320 * size / 224)


def list_dataset(list_file: str, root: str | None, num_frames: int, num_classes: int, train: bool,
                 size: int = LIST_SIZE, image_tmpl: str = "img_{:05d}.jpg", short: str = "official",
                 sampling: str = "tsn", flip: bool = False, short_side: tuple[int, int] | None = None):
    """A :class:`~afnet_edge.data.VideoListDataset` (``sampling`` — TSN segments or bLVNet-TAM's one random phase — and
    optional ``flip`` for training, the official segment centres otherwise). ``short_side``: ``(train, eval)`` shorter
    sides for a 224 crop (scaled to ``size``), replacing the 240×320 resize (a family's ``TrainRecipe.short_side``).

    ``root`` defaults to the list file's directory. Frames are resized to the official 240×320 scaled to ``size``
    (:func:`scale_size_for`), then cropped to ``size``. Labels must be in ``[0, num_classes)``; the dataset raises a
    ``ValueError`` naming the line otherwise.
    """
    if not list_file:
        raise ValueError("--data list needs --list FILE (a TSN list file: 'path num_frames label' per line)")
    if not os.path.exists(list_file):
        raise FileNotFoundError(f"--list: no such list file '{list_file}'")
    root = root if root is not None else (os.path.dirname(os.path.abspath(list_file)))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--root: no such directory '{root}'")
    return VideoListDataset(root, list_file, num_frames, train=train, num_classes=num_classes, image_tmpl=image_tmpl,
                            size=size, scale_size=scale_size_for(size), short=short,
                            sampling=sampling, flip=flip,
                            scale_short=None if short_side is None else
                            round(short_side[0 if train else 1] * size / 224))
