"""The demo model shipped inside the package: an AFNet trained on the synthetic temporal benchmark.

Why: the official checkpoints are trained on Something-Something (174 classes, 224 px) and are not redistributable
here, and random weights show the mechanics but not the method. The demo model is a reduced-width AF-ResNet50
(``width=0.25``, T = 8 frames of 64 px) trained with the official objective, and three deviations that make its
navigation choose by content and keep its ratio (:mod:`afnet_edge.training.nav_values`), on
:class:`~afnet_edge.data.SyntheticVideoDataset` clips, whose classes need temporal order and whose frames are
sometimes uninformative distractors. At its target ratio 0.5 it classifies held-out clips well and sends informative
frames to the focal branch several times as often as distractors. The numbers, over several seeds, and the targets
it missed (at ratio 0.25 the navigation does not prefer informative frames) are in
``benchmarks/results/cpu/demo_model.md``, written by ``python benchmarks/train_demo_model.py``
together with the files here.

Files (``afnet_edge/assets``): ``demo_model.pth`` (an afnet_edge checkpoint, float16 weights) and
``demo_model.json`` (the card: model options, input size, class names, the dataset it was trained on, its results and
the command that made it). :func:`load_demo_model` builds the model from the card and loads the weights.

The demo model only knows the synthetic classes: on a real video its prediction means nothing, and the commands say so.
"""
from __future__ import annotations

import json
import os
from typing import Any, cast


from .checkpoint import load_checkpoint
from .models import VideoClassifier, create_model

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEMO_CHECKPOINT = os.path.join(ASSETS, "demo_model.pth")
DEMO_CARD = os.path.join(ASSETS, "demo_model.json")

#: Keys every card has (checked on load, so a stale or hand-edited card fails with a clear message).
CARD_KEYS = ("model", "options", "num_frames", "num_classes", "size", "class_names", "dataset", "target_ratio",
             "command")


def demo_available() -> bool:
    """True when the package holds the demo model (both files)."""
    return os.path.isfile(DEMO_CHECKPOINT) and os.path.isfile(DEMO_CARD)


def demo_card() -> dict[str, Any]:
    """The demo model's card (``afnet_edge/assets/demo_model.json``) as a dict; see the module docstring.

    Raises:
        FileNotFoundError: the package was installed without its assets.
        ValueError: the card lacks one of :data:`CARD_KEYS` or its class names do not match ``num_classes``.
    """
    if not demo_available():
        raise FileNotFoundError(f"the demo model is missing from this installation ({DEMO_CHECKPOINT}, {DEMO_CARD}); "
                                f"reinstall afnet_edge, or give --checkpoint FILE or --random-weights")
    with open(DEMO_CARD, encoding="utf-8") as f:
        card = json.load(f)
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ValueError(f"{DEMO_CARD}: the demo model card lacks {missing}")
    if len(card["class_names"]) != card["num_classes"]:
        raise ValueError(f"{DEMO_CARD}: {len(card['class_names'])} class names for {card['num_classes']} classes")
    return card


def demo_summary(card: dict[str, Any] | None = None) -> str:
    """One line naming the demo model, e.g. ``"demo model: af_resnet50 width 0.25, T=8, 64 px, trained on
    synthetic clips (6 classes)"``."""
    card = card or demo_card()
    opts = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in card["options"].items())
    return (f"demo model: {card['model']}{' ' + opts if opts else ''}, T={card['num_frames']}, {card['size']} px, "
            f"trained on synthetic clips ({card['num_classes']} classes)")


def load_demo_model(checkpoint: str | None = None, **config: Any) -> VideoClassifier:
    """The shipped demo model in eval mode (weights in float32), with ``config`` passed to
    :func:`~afnet_edge.create_model` (``execution``, ``selection``, ...). Its class names are
    ``demo_card()["class_names"]``. ``checkpoint``: instead of the shipped weights, another run of the card's
    architecture (e.g. a ``final.pth`` of ``benchmarks/train_demo_model.py``)."""
    card = demo_card()
    model = create_model(card["model"], num_classes=card["num_classes"], num_frames=card["num_frames"],
                         **card["options"], **config)
    load_checkpoint(model, DEMO_CHECKPOINT if checkpoint is None else checkpoint)
    return cast(VideoClassifier, model.eval())
