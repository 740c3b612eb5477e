"""Optimiser parameter groups and learning-rate policy of the official training (spec §6, §7).

:func:`get_optim_policies` reproduces the official ``TSN.get_optim_policies`` grouping with partial BN off (as in the
release scripts): same 11 groups, same names, same ``lr_mult`` / ``decay_mult``, same membership. Navigation modules
are recognised by type (:class:`afnet_edge.layers.navigation.Navigation`); the official code recognises them by shape
(BN with 2 channels, conv weights of shape ``[2T, 2, 1, 1]`` or with 2 output channels), which selects the same
parameters in every afnet_edge model.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..layers.navigation import Navigation
from .schedules import lr_at

#: (name, lr_mult, decay_mult) of the official groups, in the official order.
GROUPS: tuple[tuple[str, float, float], ...] = (
    ("navi_bn", 10, 1),
    ("navi_conv_weight", 10, 1),
    ("navi_conv_bias", 10, 1),
    ("first_conv_weight", 1, 1),
    ("first_conv_bias", 2, 0),
    ("normal_weight", 1, 1),
    ("normal_bias", 2, 0),
    ("BN scale/shift", 1, 0),
    ("custom_ops", 1, 1),
    ("lr5_weight", 5, 1),
    ("lr10_bias", 10, 0),
)

_MOBILENET_HEAD = 1280  # MobileNetV3: only Linears with a 1280-sized dimension get the fc lr×5 / ×10 (spec §6)


def _is_mobilenet(model: nn.Module) -> bool:
    return "mobilenet" in str(getattr(model, "arch", "")).lower()


def get_optim_policies(model: nn.Module, fc_lr5: bool = True) -> list[dict]:
    """Parameter groups ``[{'params', 'lr_mult', 'decay_mult', 'name'}, ...]`` in the official order (spec §6).

    * navigation BN weight/bias → ``navi_bn`` (lr×10, decay×1); navigation conv weights → ``navi_conv_weight``
      (lr×10), the ``conv_gs`` bias → ``navi_conv_bias`` (lr×10, decay×1);
    * the first convolution in module order → ``first_conv_weight`` (lr×1) / ``first_conv_bias`` (lr×2, decay 0);
    * other conv weights → ``normal_weight`` (lr×1, decay×1), conv biases → ``normal_bias`` (lr×2, decay 0);
    * other BN weights and biases → ``BN scale/shift`` (lr×1, decay 0);
    * Linear layers, with ``fc_lr5``: weights → ``lr5_weight`` (lr×5, decay×1), biases → ``lr10_bias`` (lr×10, decay 0)
      — for AF-ResNet this includes the ``dynamic_fusion`` Linears; for AF-MobileNetV3 only Linears with a
      1280-sized dimension (the head), all its other Linear weights **and biases** go to ``normal_weight``.
      Without ``fc_lr5`` Linear weights/biases go to ``normal_weight`` / ``normal_bias``.

    Raises ``ValueError`` for a parameter-holding leaf module of another type (it would need a policy) and for a
    parameter that ends up in no group.
    """
    groups: dict[str, list] = {name: [] for name, _, _ in GROUPS}
    mobilenet = _is_mobilenet(model)
    nav_modules = set()
    for m in model.modules():
        if isinstance(m, Navigation):
            nav_modules.update(id(x) for x in m.modules())
    conv_count = 0
    for name, m in model.named_modules():
        own = list(m.parameters(recurse=False))
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            conv_count += 1
            bias = [m.bias] if m.bias is not None else []
            if conv_count == 1:
                groups["first_conv_weight"].append(m.weight)
                groups["first_conv_bias"].extend(bias)
            elif id(m) in nav_modules:
                groups["navi_conv_weight"].append(m.weight)
                groups["navi_conv_bias"].extend(bias)
            else:
                groups["normal_weight"].append(m.weight)
                groups["normal_bias"].extend(bias)
        elif isinstance(m, nn.Linear):
            bias = [m.bias] if m.bias is not None else []
            if not fc_lr5:
                groups["normal_weight"].append(m.weight)
                groups["normal_bias"].extend(bias)
            elif not mobilenet or _MOBILENET_HEAD in tuple(m.weight.shape):
                groups["lr5_weight"].append(m.weight)
                groups["lr10_bias"].extend(bias)
            else:  # official MobileNet rule: non-head Linear weights and biases are "normal weights"
                groups["normal_weight"].append(m.weight)
                groups["normal_weight"].extend(bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            target = "navi_bn" if id(m) in nav_modules else "BN scale/shift"
            groups[target].extend(own)
        elif own:
            raise ValueError(f"module {name!r} of type {type(m).__name__} has parameters but no optimiser policy")
    placed = {id(p) for ps in groups.values() for p in ps}
    missing = [n for n, p in model.named_parameters() if id(p) not in placed]
    if missing:
        raise ValueError(f"parameters without an optimiser group: {missing[:5]}")
    return [{"params": groups[name], "lr_mult": lr_mult, "decay_mult": decay_mult, "name": name}
            for name, lr_mult, decay_mult in GROUPS]


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                    fc_lr5: bool = True, groups: list[dict] | None = None) -> torch.optim.SGD:
    """SGD over :func:`get_optim_policies` groups (or ``groups``, a family's own, e.g. AdaFocusV2's per-network
    learning rates), with the epoch-0 learning rate and decay already applied."""
    for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v != v or v == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    # Empty groups are kept (not dropped) so the group list always has the official 11 entries.
    opt = torch.optim.SGD(get_optim_policies(model, fc_lr5) if groups is None else groups, lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    set_learning_rate(opt, lr, weight_decay)
    return opt


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set every group's ``lr = lr · lr_mult`` and ``weight_decay = weight_decay · decay_mult``."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1)
        g["weight_decay"] = weight_decay * g.get("decay_mult", 1)


def adjust_learning_rate(optimizer: torch.optim.Optimizer, epoch: int, base_lr: float, lr_steps: Sequence[int],
                         weight_decay: float) -> float:
    """Official 'step' policy for ``epoch``; returns the base learning rate now in use (before ``lr_mult``)."""
    lr = lr_at(epoch, base_lr, lr_steps)
    set_learning_rate(optimizer, lr, weight_decay)
    return lr
