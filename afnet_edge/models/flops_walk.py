"""Shape walk that each family's FLOPs hook drives: the primitives of the official accounting and executed MACs.

A family's ``flops_walk(walk, model, size, head)`` (registered in its :class:`~afnet_edge.models.registry.FamilyHooks`)
walks its own modules in execution order and calls :meth:`FlopsWalk.conv`, :meth:`FlopsWalk.linear`,
:meth:`FlopsWalk.off`, … with the shapes it propagates; :mod:`afnet_edge.flops` turns the collected terms into the
numbers of :func:`~afnet_edge.flops.count_flops`. The counting conventions are written in ``afnet_edge/flops.py``'s
docstring (spec §9). The shared layers (navigation, dynamic fusion) are walked here, once for every family.

Shapes are ``(C, H, W)`` of one frame; every term is MACs per frame (``per="frame"``) or per clip (``per="clip"``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn

IMAGENET_CLASSES = 1000
FUSION_REDUCTION = 16       # official dynamic_fusion reduction (its hidden width C//16 is stored, not the reduction)

Shape = tuple[int, int, int]


@dataclass
class Term:
    """One counted quantity.

    ``value``: MACs per frame (``per == "frame"``) or per clip (``per == "clip"``).
    ``nav``: index (model order) of the navigation module whose mask gates this term, or None (always runs).
    """

    stage: str
    name: str
    value: float
    nav: int | None = None
    per: str = "frame"


class FlopsWalk:
    """Shape propagation through a model, collecting ``official`` and ``executed`` :class:`Term` lists.

    Set ``stage`` before walking each stage (terms are grouped by it); :meth:`navigation` numbers the navigation
    modules in model order (``nav_index`` counts them).
    """

    def __init__(self, model: nn.Module, num_frames: int):
        self.names = {id(m): n for n, m in model.named_modules()}
        self.T = num_frames
        self.official: list[Term] = []
        self.executed: list[Term] = []
        self.stage = ""
        self.nav_index = 0

    def name(self, m: nn.Module) -> str:
        """The module's qualified name in the walked model."""
        return self.names.get(id(m), type(m).__name__)

    # ------------------------------------------------------------------------------------------ primitives
    def conv(self, conv: nn.Conv2d, shape: Shape, nav: int | None = None, official: bool = True) -> Shape:
        """Add ``conv`` applied to ``shape`` = (C, H, W) (executed, and official unless ``official=False``);
        returns the output shape. ``nav``: the navigation module gating it (focal bodies)."""
        c, h, w = shape
        if c != conv.in_channels:
            raise RuntimeError(f"flops: {self.name(conv)} expects {conv.in_channels} channels, shape walk has {c}")
        ho, wo = conv_out(conv, h, w)
        macs = conv.out_channels * ho * wo * (conv.in_channels // conv.groups) \
            * conv.kernel_size[0] * conv.kernel_size[1]
        self.executed.append(Term(self.stage, self.name(conv), macs, nav))
        if official:
            self.official.append(Term(self.stage, self.name(conv), macs, nav))
        return conv.out_channels, ho, wo

    def linear(self, lin: nn.Linear, nav: int | None = None) -> None:
        """Add the executed MACs of ``lin`` on one feature vector (official terms are added by :meth:`off`)."""
        self.executed.append(Term(self.stage, self.name(lin), lin.in_features * lin.out_features, nav))

    def off(self, name: str, value: float, nav: int | None = None) -> None:
        """Add an official-only term of ``value`` MACs per frame."""
        self.official.append(Term(self.stage, name, value, nav))

    def sequential_convs(self, seq: nn.Module, shape: Shape, nav: int | None = None,
                         official: bool = True) -> Shape:
        """Walk a ``Sequential`` of Conv2d / BatchNorm2d / AvgPool2d / MaxPool2d (shape only for pools, BN)."""
        for m in seq:
            if isinstance(m, nn.Conv2d):
                shape = self.conv(m, shape, nav, official)
            elif isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
                shape = (shape[0],) + pool_out(m, shape[1], shape[2])
            elif not isinstance(m, (nn.BatchNorm2d, nn.Identity, nn.ReLU)):
                raise TypeError(f"flops: unsupported module {type(m).__name__} in {self.name(seq)}")
        return shape

    # --------------------------------------------------------------------------------------- shared blocks
    def navigation(self, nav: nn.Module, shape: Shape) -> int:
        """Navigation on the ample tensor ``shape``; returns this module's index in model order."""
        c, h, w = shape
        idx = self.nav_index
        self.nav_index += 1
        n = self.name(nav)
        self.off(n + ".pool", c * h * w)
        self.conv(nav.conv_pool, (c, 1, 1))
        gs = nav.conv_gs  # (B, 2T, 1, 1): one 2×2 map per frame position, run once per clip
        per_clip = gs.out_channels * (gs.in_channels // gs.groups)
        self.executed.append(Term(self.stage, self.name(gs), per_clip, None, per="clip"))
        # Official: T·2·(2T)/T = 4T counted per frame (×T per clip).
        self.off(self.name(gs), self.T * 2 * gs.out_channels / gs.groups)
        return idx

    def dynamic_fusion(self, att: nn.Module, shape: Shape) -> None:
        """Fusion attention (``DynamicFusion``) on ``shape`` (the focal-size map)."""
        c, h, w = shape
        for m in att.fc:
            if isinstance(m, nn.Linear):
                self.linear(m)
        self.off(self.name(att), c * h * w + (c * c // FUSION_REDUCTION) * 2 + c)


def conv_out(conv: nn.Conv2d, h: int, w: int) -> tuple[int, int]:
    """Output (H, W) of ``conv`` on an ``h`` × ``w`` map."""
    if isinstance(conv.padding, str):
        raise TypeError(f"flops: string padding {conv.padding!r} is not supported")
    out = []
    for size, k, s, p, d in zip((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation):
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return out[0], out[1]


def pool_out(pool: nn.Module, h: int, w: int) -> tuple[int, int]:
    """Output (H, W) of an ``AvgPool2d`` / ``MaxPool2d`` on an ``h`` × ``w`` map."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    k, s, p = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size), pair(pool.padding)
    rnd = math.ceil if pool.ceil_mode else math.floor
    return tuple(int(rnd((n + 2 * pp - kk) / ss)) + 1 for n, kk, ss, pp in zip((h, w), k, s, p))
