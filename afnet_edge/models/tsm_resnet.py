"""Dense baselines: TSN-ResNet50 and TSM-ResNet50 (Lin et al., "TSM: Temporal Shift Module", ICCV 2019).

Plain ResNet-50 (torchvision v1.5 layout: stride on the 3×3 conv) run on every frame, TSN head (dropout, per-frame
``new_fc``, mean over T; spec §6). TSM-ResNet50 shifts 1/8 of the channels each way in every bottleneck, on the conv
path only (residual shift, as the official TSM). Parameter names follow torchvision under ``base_model.``, so the
official TSN/TSM checkpoints map onto them (TSM's ``conv1.net.`` wrapper names are renamed by
:func:`checkpoint_filter_fn`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers.af_stage import ForwardContext
from .afnet_resnet import WIDTH_OPTION, AmpleBottleneck, bottleneck_flops, head_flops, stage_channels
from .common import VideoClassifier, init_resnet_weights
from .flops_walk import FlopsWalk, pool_out
from .registry import BenchDefaults, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict, register_model
from .registry import OperatingPoint
from .tsn import map_tsn_checkpoint, tsn_checkpoint_info, tsn_export_metadata


def bottleneck(cin: int, width: int, stride: int, shift: bool, num_frames: int) -> AmpleBottleneck:
    """torchvision-style bottleneck (stride on the 3×3 conv, 1×1 strided conv + BN downsample) with the optional
    residual TSM shift — the same block as AFNet's ungrouped bottleneck, only the downsample differs."""
    cout = width * 4
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return AmpleBottleneck(cin, cout, stride, down, last_relu=True, shift=shift, num_frames=num_frames)


class ResNet(nn.Module):
    """ResNet backbone; ``fc`` is Dropout (TSN head)."""

    def __init__(self, layers: tuple, shift: bool, num_frames: int, dropout: float, width: float = 1.0):
        super().__init__()
        stem = stage_channels(64, width)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        widths = [stage_channels(4 * w, width) // 4 for w in (64, 128, 256, 512)]
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1, shift, num_frames))
                cin = width * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = cin
        self.fc = nn.Dropout(dropout)
        init_resnet_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseResNetVideo(VideoClassifier):
    """TSN/TSM video classifier around a plain ResNet: every frame computed, no navigation (``masks == []``)."""

    def __init__(self, arch: str, layers: tuple, shift: bool, num_classes: int, num_frames: int, dropout: float,
                 width: float = 1.0):
        super().__init__(num_classes, num_frames)
        self.arch = arch
        self.tsm = shift
        self.width = float(width)
        self.base_model = ResNet(layers, shift, num_frames, dropout, self.width)
        self.new_fc = nn.Linear(self.base_model.num_features, num_classes)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.zeros_(self.new_fc.bias)

    def forward_frames(self, frames: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return self.new_fc(self.base_model(frames))


# ------------------------------------------------------------------------------------- official checkpoint keys
TSM_RENAMES = ((".conv1.net.", ".conv1."),)   # the official TSM wraps each shifted conv1 in TemporalShift(net=conv)


def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Official TSN/TSM files onto :class:`DenseResNetVideo`: the video checkpoint with TSM's ``conv1.net.`` wrapper
    names renamed to ``conv1.``; a torchvision ImageNet ResNet file into ``base_model`` without ``fc.*``."""
    return map_tsn_checkpoint(state_dict, model, renames=TSM_RENAMES)


def checkpoint_info(state_dict: StateDict) -> dict:
    """Layout, classes (``new_fc``) and ``width`` (stem channels / 64) of an official TSN/TSM file (T is not in a
    dense checkpoint)."""
    return tsn_checkpoint_info(state_dict, ("new_fc.weight",), backbone_marker="layer1.0.conv1.weight",
                               width_key="conv1.weight")


# ------------------------------------------------------------------------------------------------------- FLOPs
def flops_walk(walk: FlopsWalk, model: DenseResNetVideo, size: int, head: str) -> None:
    """The TSM paper's convention: MACs of every conv and fc layer per frame, × T (no pooling terms)."""
    bm = model.base_model
    walk.stage = "stem"
    s = walk.conv(bm.conv1, (3, size, size))
    s = (s[0],) + pool_out(bm.maxpool, s[1], s[2])
    for i in range(1, 5):
        walk.stage = f"layer{i}"
        for blk in getattr(bm, f"layer{i}"):
            s = bottleneck_flops(walk, blk, s, official_pool=False)
    head_flops(walk, model, s, head, official_pool=False)


# ------------------------------------------------------------------------------------------------- registration
HOOKS = FamilyHooks(
    family="dense",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    flops_walk=flops_walk,
    export=ExportAdapter(metadata=tsn_export_metadata),
    cli_options=(WIDTH_OPTION,),
)


@register_model("tsn_resnet50", HOOKS, default_frames=8,
                bench=BenchDefaults(skips_frames=False, frames=(8, 16), label="TSN-ResNet50"))
def tsn_resnet50(num_classes: int = 174, num_frames: int = 8, dropout: float = 0.5, width: float = 1.0):
    """TSN-ResNet50: plain ResNet-50 per frame, average consensus. ``width`` scales every channel count."""
    return DenseResNetVideo("tsn_resnet50", (3, 4, 6, 3), False, num_classes, num_frames, dropout, width)


@register_model("tsm_resnet50", HOOKS, default_frames=8,
                bench=BenchDefaults(skips_frames=False, frames=(8, 16), label="TSM-ResNet50",
                                   operating_point=OperatingPoint(8, source="TSM: 8 frames")))
def tsm_resnet50(num_classes: int = 174, num_frames: int = 8, dropout: float = 0.5, width: float = 1.0):
    """TSM-ResNet50: temporal shift (fold 1/8) in every bottleneck, average consensus. ``width`` scales every channel
    count."""
    return DenseResNetVideo("tsm_resnet50", (3, 4, 6, 3), True, num_classes, num_frames, dropout, width)
