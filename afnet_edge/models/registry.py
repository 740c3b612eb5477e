"""Model registry: ``create_model(name, ...)`` and ``list_models()``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

_REGISTRY: dict = {}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable
    family: str           # "afnet" (has navigation) or "dense" (baseline)
    default_frames: int
    doc: str


def register_model(name: str, family: str, default_frames: int):
    """Decorator registering a factory ``f(num_classes=..., num_frames=..., **options) -> VideoClassifier``."""
    def deco(fn):
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = ModelEntry(name, fn, family, default_frames, doc)
        return fn
    return deco


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {list_models()}")
    return _REGISTRY[name]


_CONFIG_KEYS = ("execution", "selection", "ratio", "kernels", "temperature")


def create_model(name: str, num_classes: int = 174, num_frames: int | None = None, **options):
    """Build a registered model.

    Args:
        name: one of :func:`list_models` (``af_resnet50``, ``af_resnet101``, ``af_mobilenetv3``,
            ``tsn_resnet50``, ``tsm_resnet50``).
        num_classes: classifier outputs (174 = Something-Something V1 as in the official release).
        num_frames: frames per clip T (default: the model's default, 12 for AFNet, 8 for the baselines).
        options: architecture options (``tsm=True|False`` for AF-ResNet, ``dropout``) and inference configuration
            (``execution``, ``selection``, ``ratio``, ``kernels``, ``temperature``; see ``VideoClassifier.configure``).

    Returns the model in eval mode.
    """
    entry = model_entry(name)
    config = {k: options.pop(k) for k in _CONFIG_KEYS if k in options}
    try:
        model = entry.factory(num_classes=num_classes,
                              num_frames=entry.default_frames if num_frames is None else num_frames, **options)
    except TypeError as e:
        raise TypeError(f"create_model({name!r}): {e}") from None
    model.configure(**config)
    return model.eval()
