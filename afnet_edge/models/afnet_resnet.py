"""AF-ResNet50 / AF-ResNet101 (Zhang et al., "Look More but Care Less in Video Recognition", NeurIPS 2022).

Written from ``shared/spec/afnet-architecture.md`` §2 (structure), §5 (TSM), §6 (TSN head) and §8 (compact
execution). Module and parameter names follow the official release, so ``model.state_dict()`` keys are the official
TSN checkpoint keys without their ``module.`` prefix: ``base_model.*`` (the backbone) and ``new_fc.*``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.af_stage import DynamicFusion, ForwardContext, run_af_stage
from ..layers.focal import FocalBlock
from ..layers.navigation import Navigation
from ..kernels.reference import temporal_shift
from .common import VideoClassifier, init_resnet_weights
from .flops_walk import IMAGENET_CLASSES, FlopsWalk, Shape, pool_out
from .registry import BenchDefaults, CliFlag, CliOption, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict, register_model
from .registry import OperatingPoint
from .tsn import map_tsn_checkpoint, tsn_checkpoint_info, tsn_export_metadata

EXPANSION = 4


def _conv_bn(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]


class AmpleBottleneck(nn.Module):
    """Ungrouped bottleneck (official ``Bottleneck_ample``): ample branch, fusion blocks and layer4.

    The optional TSM shift applies to the conv path only; the residual is taken from the unshifted input.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None,
                 last_relu: bool = True, shift: bool = False, num_frames: int = 1):
        super().__init__()
        width = cout // EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = downsample
        self.last_relu = last_relu
        self.shift = shift
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.downsample(x) if self.downsample is not None else x
        z = temporal_shift(x, self.num_frames) if self.shift else x
        z = F.relu(self.bn1(self.conv1(z)))
        z = F.relu(self.bn2(self.conv2(z)))
        out = self.bn3(self.conv3(z)) + r
        return F.relu(out) if self.last_relu else out


def ample_downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """Official ample downsample: AvgPool2d(3, 2, 1) when strided, then 1×1 conv + BN when channels change."""
    layers = []
    if stride != 1:
        layers.append(nn.AvgPool2d(3, stride=2, padding=1))
    if cin != cout:
        layers += _conv_bn(cin, cout)
    return nn.Sequential(*layers) if layers else None


class FocalBottleneck(FocalBlock):
    """Grouped (groups=2), stride-1 bottleneck of the focal branch (official ``Bottleneck_focal``)."""

    def __init__(self, cin: int, cout: int, groups: int = 2, last_relu: bool = True, shift: bool = False,
                 num_frames: int = 1):
        super().__init__()
        width = cout // EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(*_conv_bn(cin, cout)) if cin != cout else None
        self.last_relu = last_relu
        self.shift = shift
        self.num_frames = num_frames
        self._init_cache()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) if self.downsample is not None else x

    @property
    def identity_residual(self) -> bool:
        return self.downsample is None

    def body(self, z: torch.Tensor) -> torch.Tensor:
        z = F.relu(self.bn1(self.conv1(z)))
        z = F.relu(self.bn2(self.conv2(z)))
        return self.bn3(self.conv3(z))

    def forward_fused(self, src: torch.Tensor, stage: torch.Tensor, index: torch.Tensor, ops,
                      src_chain, chain) -> torch.Tensor:
        """The ``fused`` plan: ``gather_conv1x1`` (gather + conv1 + bn1 + ReLU) → conv2 + bn2 + ReLU (stock, on the
        compact batch) → ``conv1x1_scatter`` (conv3 + bn3 + residual + φ into the selected rows of ``stage``).
        BN of conv1/conv3 folded into float32 scale/bias (:meth:`folded_bn`): within rounding of the lazy plan."""
        s1, b1 = self.folded_bn(self.bn1)
        s3, b3 = self.folded_bn(self.bn3)
        h = ops.gather_conv1x1(src, index, self.num_frames, self.shift, self.conv1.weight, self.conv1.groups, s1, b1,
                               True, chain=src_chain, validate=False)
        h = F.relu(self.bn2(self.conv2(h)))
        return ops.conv1x1_scatter(h, self.conv3.weight, self.conv3.groups, s3, b3, stage, index, self.last_relu,
                                   chain=chain, validate=False, inplace=True)

    def _body_in_channels(self) -> int:
        return self.conv1.in_channels


#: ``--width-mult``: the official ``width`` argument of the ResNet builders (every channel count × width).
WIDTH_OPTION = CliOption("--width-mult", "width", "positive_float",
                         "channel width multiplier of a ResNet model (official 1.0; the demo model uses 0.25)")


def stage_channels(base: int, width: float) -> int:
    """``base`` channels scaled by ``width``; every AF stage needs its output divisible by 32 (α = 2, expansion 4,
    2 patch groups, dynamic-fusion reduction 16), so the stem (64·width) must be a multiple of 8."""
    c = base * width
    if c != int(c) or int(c) % (8 if base == 64 else 32):
        raise ValueError(f"width: {width} gives {c:g} channels for the official {base}; expected a width that keeps "
                         f"{'the stem a multiple of 8' if base == 64 else 'every stage a multiple of 32'} "
                         f"(e.g. 1.0, 0.5, 0.25)")
    return int(c)


class AFModule(nn.Module):
    """One AF stage (official ``AFModule``): ``list_gen``, ``base_module``, ``refine_module``, ``base_transform``,
    ``att_gen``, ``fusion`` (spec §2.3)."""

    def __init__(self, cin: int, cout: int, blocks: int, stride: int, num_frames: int, shift: bool,
                 alpha: int = 2, patch_groups: int = 2):
        super().__init__()
        n = blocks - 1
        low = cout // alpha
        self.list_gen = nn.ModuleList([Navigation(cin if i == 0 else low, num_frames) for i in range(n)])
        self.base_module = nn.ModuleList([
            AmpleBottleneck(cin if i == 0 else low, low, stride=2 if i == 0 else 1,
                            downsample=ample_downsample(cin, low, 2) if i == 0 else None,
                            last_relu=i < n - 1, shift=shift, num_frames=num_frames) for i in range(n)])
        self.refine_module = nn.ModuleList([
            FocalBottleneck(cin if i == 0 else cout, cout, groups=patch_groups, last_relu=i < n - 1, shift=shift,
                            num_frames=num_frames)
            for i in range(n)])
        self.base_transform = nn.Sequential(*_conv_bn(low, cout)) if alpha != 1 else None
        self.att_gen = DynamicFusion(cout, 16, bias=False)
        self.fusion = nn.ModuleList([AmpleBottleneck(cout, cout, stride=stride,
                                                     downsample=ample_downsample(cout, cout, stride), shift=shift,
                                                     num_frames=num_frames)])

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return run_af_stage(x, ctx=ctx, navs=self.list_gen, amples=self.base_module, focals=self.refine_module,
                            transform=self.base_transform, attention=self.att_gen, fuse=self.fusion[0],
                            blend_relu=True)


class AFResNet(nn.Module):
    """AF-ResNet backbone (official ``AFResNet``). ``fc`` is ``Dropout`` in the video (TSN) configuration."""

    def __init__(self, layers: tuple, num_frames: int, shift: bool, dropout: float = 0.5, width: float = 1.0):
        super().__init__()
        c = [stage_channels(base, width) for base in (64, 256, 512, 1024, 2048)]
        self.num_features = c[4]
        self.conv1 = nn.Conv2d(3, c[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = AFModule(c[0], c[1], layers[0], 2, num_frames, shift)
        self.layer2 = AFModule(c[1], c[2], layers[1], 2, num_frames, shift)
        self.layer3 = AFModule(c[2], c[3], layers[2], 1, num_frames, shift)
        l4 = [AmpleBottleneck(c[3], c[4], 2, ample_downsample(c[3], c[4], 2), shift=shift, num_frames=num_frames)]
        l4 += [AmpleBottleneck(c[4], c[4], shift=shift, num_frames=num_frames) for _ in range(layers[3] - 1)]
        self.layer4 = nn.Sequential(*l4)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Dropout(dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        init_resnet_weights(self)
        for m in self.modules():
            if isinstance(m, AmpleBottleneck):
                nn.init.zeros_(m.bn3.weight)
            if isinstance(m, Navigation):  # kaiming init overwrote conv_gs; its bias keeps the official values
                with torch.no_grad():
                    m.conv_gs.bias[0::2] = 1.0
                    m.conv_gs.bias[1::2] = 10.0

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """Frames ``(N, 3, H, W)`` → pooled features ``(N, 2048)`` (after dropout)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x, ctx)
        x = self.layer2(x, ctx)
        x = self.layer3(x, ctx)
        x = self.layer4(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class AFResNetVideo(VideoClassifier):
    """AF-ResNet video classifier (official TSN wrapper): backbone ``base_model`` + per-frame ``new_fc``."""

    def __init__(self, layers: tuple, arch: str, num_classes: int = 174, num_frames: int = 12, tsm: bool = True,
                 dropout: float = 0.5, width: float = 1.0):
        super().__init__(num_classes, num_frames)
        self.arch = arch
        self.tsm = bool(tsm)
        self.width = float(width)
        self.base_model = AFResNet(layers, num_frames, self.tsm, dropout, self.width)
        self.new_fc = nn.Linear(self.base_model.num_features, num_classes)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.zeros_(self.new_fc.bias)
        self.num_navigation = sum(b - 1 for b in layers[:3])

    def forward_frames(self, frames: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return self.new_fc(self.base_model(frames, ctx))


# ------------------------------------------------------------------------------------- official checkpoint keys
def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Official AF-ResNet files onto :class:`AFResNetVideo`: the TSN checkpoint (``base_model.*``, ``new_fc.*``) keeps
    its keys; an ImageNet ``AFResNet`` file loads into ``base_model`` without its ``fc.*`` classifier (the video model
    replaced ``fc`` by Dropout)."""
    return map_tsn_checkpoint(state_dict, model)


def checkpoint_info(state_dict: StateDict) -> dict:
    """Layout, T (navigation ``conv_gs``: 2T rows) and classes (``new_fc``) of an official AF-ResNet file."""
    return tsn_checkpoint_info(state_dict, ("new_fc.weight",), backbone_marker="layer1.list_gen.0.conv_gs.weight",
                               frames_suffix="conv_gs.weight", width_key="conv1.weight")


# ------------------------------------------------------------------------------------------ official FLOPs (§9)
def bottleneck_flops(walk: FlopsWalk, blk: AmpleBottleneck, shape: Shape, official_pool: bool = True) -> Shape:
    """Ample / plain bottleneck: residual path then conv1→conv2→conv3 (TSM adds nothing). ``official_pool``: the
    official AFNet code counts a pool term ``9·C_in·H·W`` whenever a downsample exists (dense ResNets do not)."""
    c_in = shape[0]
    if blk.downsample is not None:
        res = walk.sequential_convs(blk.downsample, shape)
        if official_pool:
            # Official: a pool term whenever a downsample exists, over the residual's output size.
            walk.off(walk.name(blk.downsample) + ".pool", 9 * c_in * res[1] * res[2])
    s = walk.conv(blk.conv1, shape)
    s = walk.conv(blk.conv2, s)
    return walk.conv(blk.conv3, s)


def _focal_flops(walk: FlopsWalk, blk: FocalBottleneck, shape: Shape, nav: int) -> Shape:
    if blk.downsample is not None:
        walk.sequential_convs(blk.downsample, shape)          # every frame, unscaled
    s = walk.conv(blk.conv1, shape, nav)
    s = walk.conv(blk.conv2, s, nav)
    return walk.conv(blk.conv3, s, nav)


def head_flops(walk: FlopsWalk, model: nn.Module, s: Shape, head: str, official_pool: bool = True) -> None:
    """TSN head of a ResNet video model: executed ``new_fc``; official global pool and the backbone's ``fc``."""
    walk.stage = "head"
    c = s[0]
    if official_pool:
        walk.off("base_model.avgpool", c * s[1] * s[2])
    walk.linear(model.new_fc)
    if head == "imagenet":
        walk.off("base_model.fc", c * IMAGENET_CLASSES)
    elif official_pool:
        # AF-ResNet official quirk: fc is the Dropout of the TSN wrapper, its "output" has c features.
        walk.off("base_model.fc", c * c)
    else:
        walk.off(walk.name(model.new_fc), model.new_fc.in_features * model.new_fc.out_features)


def flops_walk(walk: FlopsWalk, model: AFResNetVideo, size: int, head: str) -> None:
    """Official accounting and executed MACs of :class:`AFResNetVideo` (``afnet_edge/flops.py`` lists the terms)."""
    bm = model.base_model
    walk.stage = "stem"
    s = walk.conv(bm.conv1, (3, size, size))
    s = (s[0],) + pool_out(bm.maxpool, s[1], s[2])
    walk.off("base_model.maxpool", 9 * s[0] * s[1] * s[2])
    for stage_name in ("layer1", "layer2", "layer3"):
        walk.stage = stage_name
        st = getattr(bm, stage_name)
        xl = xb = s
        for nav, ample, focal in zip(st.list_gen, st.base_module, st.refine_module):
            idx = walk.navigation(nav, xl)
            xl = bottleneck_flops(walk, ample, xl)
            xb = _focal_flops(walk, focal, xb, idx)
        if st.base_transform is not None:
            xl = walk.sequential_convs(st.base_transform, xl)
        walk.dynamic_fusion(st.att_gen, (xl[0],) + xb[1:])   # attention on up(xl) + xb at the focal size
        s = bottleneck_flops(walk, st.fusion[0], (xl[0],) + xb[1:])
    walk.stage = "layer4"
    for blk in bm.layer4:
        s = bottleneck_flops(walk, blk, s)
    head_flops(walk, model, s, head)


# ------------------------------------------------------------------------------------------------- registration
HOOKS = FamilyHooks(
    family="afnet",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    flops_walk=flops_walk,
    export=ExportAdapter(metadata=tsn_export_metadata),
    cli_flags=(CliFlag("--no-tsm", "tsm", False, "AF-ResNet without temporal shift (TSN variant)"),),
    cli_options=(WIDTH_OPTION,),
)


@register_model("af_resnet50", HOOKS, default_frames=12, official_arch="AF_resnet50",
                bench=BenchDefaults(skips_frames=True, frames=(12,), label="AF-ResNet50",
                                   operating_point=OperatingPoint(12, 0.4, source="AFNet: 12 frames, r = 0.4")))
def af_resnet50(num_classes: int = 174, num_frames: int = 12, tsm: bool = True, dropout: float = 0.5,
                width: float = 1.0):
    """AF-ResNet50 (TSM on by default; ``tsm=False`` gives the TSN variant). 10 navigation modules. ``width`` scales
    every channel count (the official ``width`` argument; 1.0 is the published model, 0.25 the shipped demo model)."""
    return AFResNetVideo((3, 4, 6, 3), "af_resnet50", num_classes, num_frames, tsm, dropout, width)


@register_model("af_resnet101", HOOKS, default_frames=12, official_arch="AF_resnet101",
                bench=BenchDefaults(skips_frames=True, frames=(12,), label="AF-ResNet101"))
def af_resnet101(num_classes: int = 174, num_frames: int = 12, tsm: bool = True, dropout: float = 0.5,
                 width: float = 1.0):
    """AF-ResNet101 (TSM on by default). 27 navigation modules. ``width`` scales every channel count."""
    return AFResNetVideo((4, 8, 18, 3), "af_resnet101", num_classes, num_frames, tsm, dropout, width)
