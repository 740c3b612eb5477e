"""AF-MobileNetV3 (large) from "Look More but Care Less in Video Recognition" (NeurIPS 2022).

Written from ``shared/spec/afnet-architecture.md`` §3 (structure, layer table), §4, §5 and §8. TSM is always on
(the official factory ignores its ``shift`` flag). Names follow the official release: ``model.state_dict()`` keys are
the official TSN checkpoint keys without ``module.`` (``base_model.*``; the classifier is the backbone's own ``fc``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.reference import temporal_shift
from ..layers.af_stage import DynamicFusion, ForwardContext, run_af_stage
from ..layers.focal import FocalBlock
from ..layers.navigation import Navigation
from .common import VideoClassifier
from .flops_walk import IMAGENET_CLASSES, FlopsWalk, Shape
from .registry import BenchDefaults, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict, register_model
from .tsn import map_tsn_checkpoint, tsn_checkpoint_info, tsn_export_metadata


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor`` (MobileNet convention: never below 90 % of ``v``)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class HSigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


class HSwish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (F.relu6(x + 3.0) / 6.0)


def _act(name: str) -> nn.Module:
    return HSwish() if name == "HS" else nn.ReLU(inplace=True)


class SELayer(nn.Module):
    """Squeeze-and-excitation with h-sigmoid gate (reduction 4, hidden = make_divisible(c/4))."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = make_divisible(channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                HSigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc(x.mean(dim=(2, 3)))
        return x * s.view(s.shape[0], s.shape[1], 1, 1)


class _InvertedBody(nn.Module):
    """The conv path of an inverted residual; ``groups`` applies to the 1×1 expand/project convs."""

    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, se: bool, act: str, groups: int):
        super().__init__()
        self.has_expand = cin != exp
        if self.has_expand:
            self.conv1 = nn.Conv2d(cin, exp, 1, groups=groups, bias=False)
            self.bn1 = nn.BatchNorm2d(exp)
            self.conv2 = nn.Conv2d(exp, exp, k, stride, (k - 1) // 2, groups=exp, bias=False)
            self.bn2 = nn.BatchNorm2d(exp)
            self.se = SELayer(exp) if se else None
            self.conv3 = nn.Conv2d(exp, cout, 1, groups=groups, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
        else:
            self.conv1 = nn.Conv2d(exp, exp, k, stride, (k - 1) // 2, groups=exp, bias=False)
            self.bn1 = nn.BatchNorm2d(exp)
            self.se = SELayer(exp) if se else None
            self.conv2 = nn.Conv2d(exp, cout, 1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
        self.act = _act(act)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        if self.has_expand:
            z = self.act(self.bn1(self.conv1(z)))
            z = self.bn2(self.conv2(z))
            if self.se is not None:
                z = self.se(z)
            return self.bn3(self.conv3(self.act(z)))
        z = self.act(self.bn1(self.conv1(z)))
        if self.se is not None:
            z = self.se(z)
        return self.bn2(self.conv2(z))


class AmpleInvertedResidual(_InvertedBody):
    """Official ``InvertedResidual_ample``: TSM on the conv path, identity residual iff stride 1 and cin == cout."""

    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, se: bool, act: str, num_frames: int):
        super().__init__(cin, exp, cout, k, stride, se, act, groups=1)
        self.identity = stride == 1 and cin == cout
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(temporal_shift(x, self.num_frames))
        return out + x if self.identity else out


class FocalInvertedResidual(_InvertedBody, FocalBlock):
    """Official ``InvertedResidual_focal``: 1×1 convs grouped by 2, stride 1, residual = input or ``res_connect``
    (grouped 1×1 conv + BN), no final activation."""

    def __init__(self, cin: int, exp: int, cout: int, k: int, se: bool, act: str, num_frames: int,
                 groups: int = 2, stride: int = 1):
        _InvertedBody.__init__(self, cin, exp, cout, k, 1, se, act, groups)
        self.res_connect = None if (stride == 1 and cin == cout) else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, groups=groups, bias=False), nn.BatchNorm2d(cout))
        self.shift = True
        self.last_relu = False
        self.num_frames = num_frames
        self._init_cache()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_connect(x) if self.res_connect is not None else x

    @property
    def identity_residual(self) -> bool:
        return self.res_connect is None

    def _body_in_channels(self) -> int:
        return self.conv1.in_channels


# (kernel, expansion ratio, out channels, SE, activation, stride) — spec §3 layer table.
HEAD = [(3, 1, 16, False, "RE", 1)]
STAGE1 = [(3, 4, 24, False, "RE", 2), (3, 3, 24, False, "RE", 2)]
STAGE2 = [(5, 3, 40, True, "RE", 2), (5, 3, 40, True, "RE", 1)]
STAGE2_FUSE = (5, 3, 40, True, "RE", 2)
STAGE3 = [(3, 6, 80, False, "HS", 2), (3, 2.5, 80, False, "HS", 1), (3, 2.3, 80, False, "HS", 1)]
STAGE3_FUSE = (3, 2.3, 80, False, "HS", 1)
STAGE4 = [(3, 6, 112, True, "HS", 1), (3, 6, 112, True, "HS", 1)]
STAGE5 = [(5, 6, 160, True, "HS", 2), (5, 6, 160, True, "HS", 1), (5, 6, 160, True, "HS", 1)]


class AFMobileNetV3(nn.Module):
    """AF-MobileNetV3 backbone + classifier (official ``AF_mobilenetv3``): frames → per-frame logits."""

    def __init__(self, num_classes: int, num_frames: int, dropout: float = 0.5):
        super().__init__()
        T = num_frames

        def ample_seq(cin, cfgs):
            blocks = []
            for k, t, c, se, act, s in cfgs:
                blocks.append(AmpleInvertedResidual(cin, make_divisible(cin * t), c, k, s, se, act, T))
                cin = c
            return nn.Sequential(*blocks), cin

        self.conv = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.act = HSwish()
        self.features_head, c = ample_seq(16, HEAD)
        self.features_stage1, c = ample_seq(c, STAGE1)

        self.list_gen2 = nn.ModuleList([Navigation(24, T), Navigation(40, T)])
        self.features_stage2_base, _ = ample_seq(24, STAGE2)
        self.features_stage2_refine = nn.ModuleList([
            FocalInvertedResidual(cin, make_divisible(cin * t), c2, k, se, act, T)
            for cin, (k, t, c2, se, act, _) in zip((24, 40), STAGE2)])
        self.features_stage2_fuse, _ = ample_seq(40, [STAGE2_FUSE])
        self.att_gen2 = DynamicFusion(40, 16, bias=True)

        self.list_gen3 = nn.ModuleList([Navigation(40, T), Navigation(80, T), Navigation(80, T)])
        self.features_stage3_base, _ = ample_seq(40, STAGE3)
        self.features_stage3_refine = nn.ModuleList([
            FocalInvertedResidual(cin, make_divisible(cin * t), c3, k, se, act, T)
            for cin, (k, t, c3, se, act, _) in zip((40, 80, 80), STAGE3)])
        self.features_stage3_fuse, _ = ample_seq(80, [STAGE3_FUSE])
        self.att_gen3 = DynamicFusion(80, 16, bias=True)

        self.features_stage4, c = ample_seq(80, STAGE4)
        self.features_stage5, c = ample_seq(c, STAGE5)
        self.conv_last = nn.Conv2d(160, 960, 1, bias=False)
        self.bn_last = nn.BatchNorm2d(960)
        self.fc = nn.Sequential(nn.Linear(960, 1280), HSwish(), nn.Dropout(dropout), nn.Linear(1280, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))  # conv_gs.bias keeps the navigation values
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        x = self.features_stage1(self.features_head(x))
        x = run_af_stage(x, ctx=ctx, navs=self.list_gen2, amples=self.features_stage2_base,
                         focals=self.features_stage2_refine, attention=self.att_gen2, fuse=self.features_stage2_fuse,
                         blend_relu=False)
        x = run_af_stage(x, ctx=ctx, navs=self.list_gen3, amples=self.features_stage3_base,
                         focals=self.features_stage3_refine, attention=self.att_gen3, fuse=self.features_stage3_fuse,
                         blend_relu=False)
        x = self.features_stage5(self.features_stage4(x))
        x = self.act(self.bn_last(self.conv_last(x)))
        return self.fc(x.mean(dim=(2, 3)))


class AFMobileNetV3Video(VideoClassifier):
    """AF-MobileNetV3 video classifier: ``base_model`` gives per-frame logits, averaged over T. 5 navigation modules."""

    def __init__(self, num_classes: int = 174, num_frames: int = 12, dropout: float = 0.5):
        super().__init__(num_classes, num_frames)
        self.arch = "af_mobilenetv3"
        self.tsm = True
        self.base_model = AFMobileNetV3(num_classes, num_frames, dropout)
        self.num_navigation = 5

    def forward_frames(self, frames: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return self.base_model(frames, ctx)


# ------------------------------------------------------------------------------------- official checkpoint keys
def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Official AF-MobileNetV3 files onto :class:`AFMobileNetV3Video`: the TSN checkpoint (``base_model.*``, the
    classifier is the backbone's ``fc``) keeps its keys; an ImageNet file loads into ``base_model``, its last
    classifier layer ``fc.3.*`` (1000 classes) dropped when its shape differs from the model's."""
    return map_tsn_checkpoint(state_dict, model)


def checkpoint_info(state_dict: StateDict) -> dict:
    """Layout, T (navigation ``conv_gs``) and classes (the last classifier layer ``fc.3``) of an official file."""
    return tsn_checkpoint_info(state_dict, ("base_model.fc.3.weight", "fc.3.weight"),
                               backbone_marker="list_gen2.0.conv_gs.weight", frames_suffix="conv_gs.weight")


# ------------------------------------------------------------------------------------------ official FLOPs (§9)
SE_REDUCTION = 4            # official SELayer reduction used in its FLOPs formula


def _se_flops(walk: FlopsWalk, se: SELayer, shape: Shape, nav: int | None) -> None:
    c, h, w = shape
    for m in se.fc:
        if isinstance(m, nn.Linear):
            walk.linear(m, nav)
    walk.off(walk.name(se), c * h * w + (c * c // SE_REDUCTION) * 2 + c, nav)


def _body_flops(walk: FlopsWalk, blk: _InvertedBody, shape: Shape, nav: int | None) -> Shape:
    """Inverted-residual conv path (ample or focal; focal terms gated by ``nav``)."""
    if blk.has_expand:
        s = walk.conv(blk.conv1, shape, nav)
        s = walk.conv(blk.conv2, s, nav)
        if blk.se is not None:
            _se_flops(walk, blk.se, s, nav)
        return walk.conv(blk.conv3, s, nav)
    s = walk.conv(blk.conv1, shape, nav)
    if blk.se is not None:
        _se_flops(walk, blk.se, s, nav)
    return walk.conv(blk.conv2, s, nav)


def _focal_flops(walk: FlopsWalk, blk: FocalInvertedResidual, shape: Shape, nav: int) -> Shape:
    if blk.res_connect is not None:
        walk.sequential_convs(blk.res_connect, shape)          # every frame, unscaled
    return _body_flops(walk, blk, shape, nav)


def flops_walk(walk: FlopsWalk, model: AFMobileNetV3Video, size: int, head: str) -> None:
    """Official accounting and executed MACs of :class:`AFMobileNetV3Video` (``afnet_edge/flops.py`` lists the
    terms; SE blocks ``C·H·W + 2·⌊C²/4⌋ + C``; head ``conv_last`` + ``960·1280 + 1280·classes``, no pool term)."""
    bm = model.base_model
    walk.stage = "stem"
    s = walk.conv(bm.conv, (3, size, size))
    for stage, seq in (("features_head", bm.features_head), ("stage1", bm.features_stage1)):
        walk.stage = stage
        for blk in seq:
            s = _body_flops(walk, blk, s, None)
    for k in (2, 3):
        walk.stage = f"stage{k}"
        navs, amples = getattr(bm, f"list_gen{k}"), getattr(bm, f"features_stage{k}_base")
        focals, att = getattr(bm, f"features_stage{k}_refine"), getattr(bm, f"att_gen{k}")
        xl = xb = s
        for nav, ample, focal in zip(navs, amples, focals):
            idx = walk.navigation(nav, xl)
            xl = _body_flops(walk, ample, xl, None)
            xb = _focal_flops(walk, focal, xb, idx)
        walk.dynamic_fusion(att, (xl[0],) + xb[1:])
        s = (xl[0],) + xb[1:]
        for blk in getattr(bm, f"features_stage{k}_fuse"):
            s = _body_flops(walk, blk, s, None)
    for k in (4, 5):
        walk.stage = f"stage{k}"
        for blk in getattr(bm, f"features_stage{k}"):
            s = _body_flops(walk, blk, s, None)
    walk.stage = "head"
    s = walk.conv(bm.conv_last, s)
    lins = [m for m in bm.fc if isinstance(m, nn.Linear)]
    for lin in lins:
        walk.linear(lin)
    hidden = lins[0].out_features
    classes = IMAGENET_CLASSES if head == "imagenet" else lins[-1].out_features
    walk.off(walk.name(bm.fc), lins[0].in_features * hidden + hidden * classes)


# ------------------------------------------------------------------------------------------------- registration
HOOKS = FamilyHooks(
    family="afnet",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    flops_walk=flops_walk,
    export=ExportAdapter(metadata=tsn_export_metadata),
)


@register_model("af_mobilenetv3", HOOKS, default_frames=12, official_arch="AF_mobilenetv3",
                bench=BenchDefaults(skips_frames=True, frames=(12,), label="AF-MobileNetV3"))
def af_mobilenetv3(num_classes: int = 174, num_frames: int = 12, tsm: bool = True, dropout: float = 0.5):
    """AF-MobileNetV3 (large); TSM always on. 5 navigation modules."""
    if not tsm:
        raise ValueError("tsm=False is not available for af_mobilenetv3: the architecture always applies TSM")
    return AFMobileNetV3Video(num_classes, num_frames, dropout)
