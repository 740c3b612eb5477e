"""What the families built on the official TSN video wrapper share (AF-ResNet, AF-MobileNetV3, TSN/TSM-ResNet50):
the official checkpoint layouts and the export metadata. Each family's hooks call these with its own key renames
and classifier keys; a family with another wrapper writes its own.

Layouts (``shared/spec/afnet-architecture.md`` §10, ``official-checkpoint-keys/*.json``), after the driver removed
the DataParallel ``module.`` prefix:

* **video (TSN) checkpoint**: ``base_model.*`` (the backbone) and, for ResNet, ``new_fc.*`` — the model's own keys;
* **ImageNet backbone file**: the backbone's keys without ``base_model.``; loaded into ``model.base_model`` with the
  ImageNet classifier (``fc.*`` keys the video model lacks or whose shape differs) dropped explicitly.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from .registry import MappedCheckpoint, StateDict

BACKBONE = "base_model"


def is_video_layout(sd: StateDict) -> bool:
    """True for a TSN video checkpoint (any ``base_model.*`` key), False for an ImageNet backbone file."""
    return any(k.startswith(BACKBONE + ".") for k in sd)


def map_tsn_checkpoint(sd: StateDict, model: nn.Module, renames: tuple[tuple[str, str], ...] = (),
                       head_prefix: str = "fc.") -> MappedCheckpoint:
    """Map a TSN video checkpoint (``renames``: ``(old, new)`` substrings replaced in its keys) onto ``model``, or an
    ImageNet backbone file onto ``model.base_model`` dropping the ImageNet classifier (keys under ``head_prefix``
    that the backbone lacks or holds with another shape). Raises ValueError for a backbone file and a model
    without ``base_model``."""
    arch = getattr(model, "arch", type(model).__name__)
    if is_video_layout(sd):
        for old, new in renames:
            sd = {k.replace(old, new): v for k, v in sd.items()}
        return MappedCheckpoint("official_tsn", sd)
    backbone = getattr(model, BACKBONE, None)
    if backbone is None:
        raise ValueError(f"looks like an ImageNet backbone file but model {arch} has no {BACKBONE}")
    target = backbone.state_dict()
    dropped = sorted(k for k in sd if k.startswith(head_prefix)
                     and not (k in target and tuple(target[k].shape) == tuple(sd[k].shape)))
    kept = {k: v for k, v in sd.items() if k not in dropped}
    return MappedCheckpoint("official_imagenet", kept, into=BACKBONE, dropped=dropped,
                            where=f"the backbone of {arch} (ImageNet backbone file)")


def tsn_checkpoint_info(sd: StateDict, class_keys: tuple[str, ...], backbone_marker: str,
                        frames_suffix: str | None = None, width_key: str | None = None) -> dict[str, Any]:
    """Describe ``sd`` if it is this family's: ``kind`` (video layout, or an ImageNet backbone file recognised by
    the key ``backbone_marker``), ``num_classes`` from the first of ``class_keys`` present and ``num_frames`` from the
    navigation weights (keys ending in ``frames_suffix``, e.g. ``"conv_gs.weight"``: 2T output rows), and with
    ``width_key`` (the stem conv, e.g. ``"conv1.weight"``) an ``options`` entry ``{"width": stem channels / 64}``
    when the layout is this family's. Values this family cannot read are None; ``kind`` is absent for a backbone
    file of another family."""
    info: dict[str, Any] = {"num_classes": next((int(sd[k].shape[0]) for k in class_keys if k in sd), None),
                            "num_frames": None}
    if frames_suffix is not None:
        info["num_frames"] = next((v.shape[0] // 2 for k, v in sd.items() if k.endswith(frames_suffix)), None)
    if width_key is not None:
        keys = {k.removeprefix(BACKBONE + ".") for k in sd}
        if backbone_marker in keys and width_key in keys:
            stem = sd[f"{BACKBONE}.{width_key}"] if f"{BACKBONE}.{width_key}" in sd else sd[width_key]
            info["options"] = {"width": int(stem.shape[0]) / 64}
    if is_video_layout(sd):
        info["kind"] = "official_tsn"
    elif backbone_marker in sd:
        info["kind"] = "official_imagenet"
    return info


def tsn_export_metadata(model: nn.Module) -> dict[str, Any]:
    """Export metadata of a TSN-wrapper model: ``num_navigation`` (0 for dense models) and ``tsm``."""
    return {"num_navigation": int(getattr(model, "num_navigation", 0)), "tsm": bool(getattr(model, "tsm", True))}
