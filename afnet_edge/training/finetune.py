"""Start a training run from another run's weights with a different number of classes (fine-tuning).

The official code fine-tunes with ``--tune_from``: it loads every weight of the file except, for a new dataset, the
classifier (keys containing ``fc``). :func:`load_for_finetuning` does the same, strictly: every key of the model
except its classifier must be in the file with the same shape; the classifier is loaded when its shape fits and
otherwise keeps its fresh initialisation (and is reported).
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from ..checkpoint import inspect_checkpoint


def classifier_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the final classifier: the last ``nn.Linear`` with ``num_classes`` outputs
    (``new_fc.*`` for the ResNet models, ``base_model.fc.3.*`` for AF-MobileNetV3)."""
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear) and m.out_features == getattr(model, "num_classes", None):
            name = n
    if name is None:
        raise TypeError(f"{type(model).__name__} has no Linear classifier with num_classes outputs")
    return [f"{name}.{p}" for p, _ in model.get_submodule(name).named_parameters()]


def _model_key(key: str, target: dict) -> str:
    """``key`` as the model names it: the official TSM wrapper's ``.conv1.net.`` where the model has plain
    ``.conv1.`` (AFNet), and back where the model keeps the wrapper's name (full-video TSM)."""
    if key in target:
        return key
    for a, b in ((".conv1.net.", ".conv1."), (".conv1.", ".conv1.net.")):
        alt = key.replace(a, b)
        if alt in target:
            return alt
    return key


def load_for_finetuning(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load the weights of an afnet_edge or official TSN checkpoint into ``model`` except a classifier of another
    size. Returns ``{"kind", "loaded": n, "reset": [classifier keys left at their initialisation]}``.

    Raises ``ValueError`` (naming the keys) when anything but the classifier is missing, unexpected or of another
    shape — e.g. a checkpoint of another architecture or another number of frames T (navigation ``conv_gs``).
    """
    path = os.fspath(path)
    info = inspect_checkpoint(path)  # clear errors for missing / non-checkpoint files
    if info["kind"] == "official_imagenet":
        raise ValueError(f"--finetune: '{path}' is an ImageNet backbone file; use --checkpoint to load it")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = obj["state_dict"] if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else obj
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    target = model.state_dict()
    sd = {_model_key(k, target): v for k, v in sd.items()}
    head = set(classifier_keys(model))
    reset = sorted(k for k in head if k not in sd or tuple(sd[k].shape) != tuple(target[k].shape))
    body_t = {k for k in target if k not in reset}
    body_f = {k for k in sd if k not in head}
    missing = sorted(body_t - set(sd))
    unexpected = sorted(body_f - set(target))
    shape = sorted(k for k in body_t & set(sd) if tuple(sd[k].shape) != tuple(target[k].shape))
    if missing or unexpected or shape:
        parts = []
        if shape:
            parts.append("shape mismatch: " + "; ".join(f"{k}: file {tuple(sd[k].shape)} vs model "
                                                          f"{tuple(target[k].shape)}" for k in shape[:4]))
        if missing:
            parts.append(f"{len(missing)} missing key(s): {', '.join(missing[:4])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:4])}")
        raise ValueError(f"--finetune: '{path}' does not fit model {getattr(model, 'arch', '?')} (T="
                         f"{getattr(model, 'num_frames', '?')}) outside the classifier: " + " | ".join(parts))
    model.load_state_dict({k: sd[k] for k in body_t}, strict=False)
    return {"kind": info["kind"], "loaded": len(body_t), "reset": reset}
