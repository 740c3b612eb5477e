"""bLVNet-TAM (Fan, Chen, Kuehne, Pistoia, Cox, "More Is Less: Learning Efficient Video Representations by Big-Little
Network and Depthwise Temporal Aggregation", NeurIPS 2019), written from ``shared/spec/blvnet-tam.md``.

Frames go in pairs through a big-little ResNet (§3): in pair k = slots (2k, 2k+1) of a clip the even slot feeds the
shallow full-resolution **little** branch, the odd slot the deep half-resolution **big** branch; the branches merge
after each stage. A depthwise Temporal Aggregation Module (TAM, §4) mixes neighbouring frames before the stem split,
every bL stage and every layer4 block. Head: Dropout, ``new_fc`` per pair, mean over the P = G/2 pairs (§3.4).

Two executions of the same function (``model.configure(execution=...)``):

* ``"masked"`` — the official semantics, op for op: each stage's output duplicated into both slots of a pair (zero
  tensor + two strided writes), branches selected by index lists, the TAM as per-tap convs + pad/slice/stack/sum;
* ``"compact"`` (default) — the pair-aware layout of §4.3: stage tensors hold one feature per pair, each stage TAM is
  one depthwise temporal op writing both branch inputs (:func:`temporal_aggregate_pair`), the merge is
  :func:`bl_merge`; no zeros / index_put / gather for pairs. Equal to ``masked`` up to fp32 rounding.

Module names follow the release's wrapper (``baseline_model.*``, ``new_fc.*``), so ``model.state_dict()`` keys are
the official checkpoint keys (§6). Exact properties kept (§8.2): layer4's identity residual takes the **pre-TAM**
input (its downsample the TAM output); the big branch's last block has no final ReLU.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.blvnet_ops import bl_merge
from ..kernels.blvnet_reference import duplicate_pairs, pair_rows
from ..layers.af_stage import ForwardContext
from ..layers.blvnet import TAM
from .afnet_resnet import AmpleBottleneck, ample_downsample, bottleneck_flops
from .common import VideoClassifier, init_resnet_weights
from .flops_walk import IMAGENET_CLASSES, FlopsWalk, Shape
from .registry import (BenchDefaults, CliOption, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict,
                       TrainRecipe, register_model, uniform_param_groups)
from .registry import OperatingPoint

DEPTHS = {50: (3, 4, 6, 3), 101: (4, 8, 18, 3)}
STEM = 64
FEATURES = 2048


# ------------------------------------------------------------------------------------------------------- blocks
class TamBottleneck(AmpleBottleneck):
    """layer4 bottleneck with a TAM at its input (spec §3.1, §3.4): ``x' = TAM(x)`` feeds conv1 **and** the
    downsample; without a downsample the residual is the raw, pre-TAM ``x``."""

    def __init__(self, cin: int, cout: int, stride: int, downsample: nn.Module | None, blending_frames: int):
        super().__init__(cin, cout, stride, downsample, last_relu=True)
        self.tam = TAM(cin, blending_frames)

    def forward(self, x: torch.Tensor, num_frames: int = 1, official: bool = False) -> torch.Tensor:
        """``x`` ``(B·P, C_in, H, W)``, TAM over ``num_frames`` = P → ``(B·P, C_out, H', W')``."""
        z = self.tam(x, num_frames, official)
        r = self.downsample(z) if self.downsample is not None else x
        z = torch.relu(self.bn1(self.conv1(z)))
        z = torch.relu(self.bn2(self.conv2(z)))
        return torch.relu(self.bn3(self.conv3(z)) + r)


def make_blocks(cin: int, cout: int, blocks: int, stride: int = 1, last_relu: bool = True) -> nn.Sequential:
    """The release's ``_make_layer``: block 0 ``cin→cout`` with the stride and the avg-pool / 1×1 downsample, then
    ``cout→cout`` blocks; ``last_relu`` applies to the last block only when there are at least two."""
    layers = [AmpleBottleneck(cin, cout, stride, ample_downsample(cin, cout, stride))]
    for i in range(1, blocks):
        layers.append(AmpleBottleneck(cout, cout, last_relu=last_relu if i == blocks - 1 else True))
    return nn.Sequential(*layers)


class BLModule(nn.Module):
    """Big-little stage (release ``bLModule``, spec §3.3): TAM over the G slots, big branch (n−1 blocks, half
    resolution, full width, last block without final ReLU) on the odd slots, little branch (max(1, ⌊n/β⌋−1) blocks at
    C/α, then ``little_e`` 1×1 + BN) on the even slots, merge ReLU(up(big) + little), ``fusion`` bottleneck with the
    stage stride."""

    def __init__(self, cin: int, cout: int, blocks: int, alpha: int, beta: int, stride: int,
                 blending_frames: int = 3):
        super().__init__()
        self.big = make_blocks(cin, cout, blocks - 1, 2, last_relu=False)
        self.little = make_blocks(cin, cout // alpha, max(1, blocks // beta - 1))
        self.little_e = nn.Sequential(nn.Conv2d(cout // alpha, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.fusion = make_blocks(cout, cout, 1, stride)
        self.tam = TAM(cin, blending_frames)

    def _merge_fuse(self, big: torch.Tensor, little: torch.Tensor) -> torch.Tensor:
        return self.fusion(bl_merge(self.big(big), self.little_e(self.little(little))))

    def forward_official(self, x: torch.Tensor, num_frames: int, big_rows: torch.Tensor,
                         little_rows: torch.Tensor) -> torch.Tensor:
        """Slots ``(B·G, C_in, H, W)`` (pair features duplicated) → slots ``(B·G, C_out, H', W')``, as the release."""
        x = self.tam(x, num_frames, official=True)
        return duplicate_pairs(self._merge_fuse(x[big_rows], x[little_rows]))

    def forward_pair(self, y: torch.Tensor, num_pairs: int) -> torch.Tensor:
        """Pair features ``(B·P, C_in, H, W)`` → ``(B·P, C_out, H', W')`` (spec §4.3)."""
        big, little = self.tam.pair(y, num_pairs)
        return self._merge_fuse(big, little)


# ------------------------------------------------------------------------------------------------------ backbone
class BLResNetTAM(nn.Module):
    """bL-ResNet-TAM backbone (release ``bLVNet_TAM_BACKBONE``): stem without max-pool, bL layer0, three
    :class:`BLModule` stages, layer4 of :class:`TamBottleneck` on one frame per pair; ``fc`` is the wrapper's
    Dropout."""

    def __init__(self, layers: tuple, alpha: int, beta: int, blending_frames: int, dropout: float,
                 base_width: int = STEM):
        super().__init__()
        c, lc = base_width, base_width // alpha
        self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.b_conv0 = nn.Conv2d(c, c, 3, 2, 1, bias=False)
        self.bn_b0 = nn.BatchNorm2d(c)
        self.l_conv0 = nn.Conv2d(c, lc, 3, 1, 1, bias=False)
        self.bn_l0 = nn.BatchNorm2d(lc)
        self.l_conv1 = nn.Conv2d(lc, lc, 3, 2, 1, bias=False)
        self.bn_l1 = nn.BatchNorm2d(lc)
        self.l_conv2 = nn.Conv2d(lc, c, 1, bias=False)
        self.bn_l2 = nn.BatchNorm2d(c)
        self.bl_init = nn.Conv2d(c, c, 1, bias=False)
        self.bn_bl_init = nn.BatchNorm2d(c)
        self.tam = TAM(c, blending_frames)
        self.layer1 = BLModule(c, 4 * c, layers[0], alpha, beta, 2, blending_frames)
        self.layer2 = BLModule(4 * c, 8 * c, layers[1], alpha, beta, 2, blending_frames)
        self.layer3 = BLModule(8 * c, 16 * c, layers[2], alpha, beta, 1, blending_frames)
        l4 = [TamBottleneck(16 * c, 32 * c, 2, ample_downsample(16 * c, 32 * c, 2), blending_frames)]
        l4 += [TamBottleneck(32 * c, 32 * c, 1, None, blending_frames) for _ in range(layers[3] - 1)]
        self.layer4 = nn.Sequential(*l4)
        self.gappool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Dropout(dropout)
        init_resnet_weights(self)
        for m in self.modules():
            if isinstance(m, AmpleBottleneck):
                nn.init.zeros_(m.bn3.weight)

    def _layer0(self, big: torch.Tensor, little: torch.Tensor) -> torch.Tensor:
        """Stem TAM outputs of the odd / even slots ``(B·P, 64, H, W)`` → pair features ``(B·P, 64, H/2, W/2)``."""
        b = self.bn_b0(self.b_conv0(big))
        lt = F.relu(self.bn_l0(self.l_conv0(little)))
        lt = F.relu(self.bn_l1(self.l_conv1(lt)))
        lt = self.bn_l2(self.l_conv2(lt))
        return F.relu(self.bn_bl_init(self.bl_init(bl_merge(b, lt))))

    def forward(self, frames: torch.Tensor, num_frames: int, official: bool = False) -> torch.Tensor:
        """Frames ``(B·G, 3, H, W)`` (G = ``num_frames``, even) → pooled features ``(B·P, 2048)`` after dropout, one
        row per pair (row b·P + k). ``official``: the release's op sequence instead of the pair-aware layout."""
        pairs = num_frames // 2
        x = F.relu(self.bn1(self.conv1(frames)))
        x = self.tam(x, num_frames, official)
        if official:
            big_rows, little_rows = pair_rows(x.shape[0], x.device)
            x = duplicate_pairs(self._layer0(x[big_rows], x[little_rows]))
            for layer in (self.layer1, self.layer2, self.layer3):
                x = layer.forward_official(x, num_frames, big_rows, little_rows)
            x = x[big_rows]
        else:
            c = x.shape[1]
            v = x.reshape(-1, 2 * c, x.shape[2], x.shape[3])     # (B·P, 2C, H, W): [:, :C] even, [:, C:] odd slot
            x = self._layer0(v[:, c:], v[:, :c])                 # rank 4 and channel slices: exports as two Slices
            for layer in (self.layer1, self.layer2, self.layer3):
                x = layer.forward_pair(x, pairs)
        for blk in self.layer4:
            x = blk(x, pairs, official)
        return self.fc(torch.flatten(self.gappool(x), 1))


def _check_int(name: str, value, ok, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


class BLVNetTAMVideo(VideoClassifier):
    """bLVNet-TAM video classifier (release wrapper ``bLVNet_TAM``): ``baseline_model`` + ``new_fc`` per pair.

    Input ``(B, G, 3, H, W)`` or the official ``(B, 3G, H, W)`` with G = ``num_frames`` (even: 16 for "f8x2").
    Output :class:`VideoOutput` with ``logits`` ``(B, num_classes)`` (mean over the P = G/2 pairs) and no masks.
    """

    def __init__(self, arch: str, depth: int, num_classes: int = 174, num_frames: int = 16, alpha: int = 2,
                 beta: int = 4, blending_frames: int = 3, dropout: float = 0.5, base_width: int = STEM):
        _check_int("num_frames", num_frames, lambda v: v >= 2 and v % 2 == 0,
                   "an even int >= 2 (frames per clip G = 2 × pairs; 16 for f8x2)")
        _check_int("base_width", base_width, lambda v: v >= 1,
                   "a positive int (stem channels; stages 4×, 8×, 16×, 32× it; 64 in every release)")
        _check_int("alpha", alpha, lambda v: v >= 1 and base_width % v == 0,
                   f"a positive int dividing base_width={base_width} (the little branch has C/alpha channels; 1, 2, "
                   f"4, 8 or 16 at the release's 64)")
        _check_int("beta", beta, lambda v: v >= 1, "a positive int (little branch: max(1, n // beta - 1) blocks)")
        _check_int("blending_frames", blending_frames, lambda v: v >= 1 and v % 2 == 1,
                   "an odd positive int (TAM taps; 3 in every release)")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        super().__init__(num_classes, num_frames)
        self.arch = arch
        self.depth, self.alpha, self.beta, self.blending_frames = depth, alpha, beta, blending_frames
        self.base_width = base_width
        self.num_pairs = num_frames // 2
        self.baseline_model = BLResNetTAM(DEPTHS[depth], alpha, beta, blending_frames, float(dropout), base_width)
        self.new_fc = nn.Linear(FEATURES * base_width // STEM, num_classes)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.zeros_(self.new_fc.bias)

    def forward_frames(self, frames: torch.Tensor, ctx: ForwardContext | None = None) -> torch.Tensor:
        """Frames ``(B·G, 3, H, W)`` → per-frame logits ``(B·G, num_classes)``: each pair's logits at both of its slots
        (what the release's duplicated layout holds), so that the generic mean over the G frames
        (:meth:`VideoClassifier.forward`, the export wrapper) is the release's mean over the P pairs. The execution is
        ``ctx.execution`` (else the configured one): ``"masked"`` runs the official op sequence."""
        execution = ctx.execution if ctx is not None else self.execution
        per_pair = self.new_fc(self.baseline_model(frames, self.num_frames, official=execution == "masked"))
        return per_pair.unsqueeze(1).expand(-1, 2, -1).reshape(-1, per_pair.shape[-1])


# ------------------------------------------------------------------------------------- official checkpoint keys
VIDEO_PREFIX = "baseline_model."
IMAGENET_MARKERS = ("l_conv0.weight", "bl_init.weight")


def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Official bLVNet-TAM files onto :class:`BLVNetTAMVideo` (spec §6).

    * video checkpoint (plain state dict, ``baseline_model.*`` + ``new_fc.*``): the model's own keys; a release
      trained with ``dropout=0`` keeps its classifier as ``baseline_model.fc.*``, mapped to ``new_fc.*``;
    * ImageNet bL-ResNet file (``state_dict`` of backbone keys, no TAMs, 1000-class ``fc``): into
      ``baseline_model``, its ``fc.*`` dropped, the TAM weights left at their initialisation (listed as dropped), as
      the release's ``strict=False`` load does.
    """
    if any(k.startswith(VIDEO_PREFIX) for k in state_dict):
        fc = VIDEO_PREFIX + "fc."
        sd = {("new_fc." + k[len(fc):] if k.startswith(fc) else k): v for k, v in state_dict.items()}
        return MappedCheckpoint("official_blvnet", sd)
    if all(k in state_dict for k in IMAGENET_MARKERS):
        arch = getattr(model, "arch", type(model).__name__)
        target = model.get_submodule("baseline_model").state_dict()
        head = sorted(k for k in state_dict if k.startswith("fc."))
        tams = sorted(k for k in target if (k.startswith("tam.") or ".tam." in k) and k not in state_dict)
        kept = {k: v for k, v in state_dict.items() if k not in head}
        return MappedCheckpoint("official_imagenet", kept, into="baseline_model", dropped=head + tams,
                                where=f"the backbone of {arch} (ImageNet bL-ResNet file)")
    raise ValueError(f"is not a bLVNet-TAM checkpoint: expected {VIDEO_PREFIX}* keys (video model) or an ImageNet "
                     f"bL-ResNet backbone ({', '.join(IMAGENET_MARKERS)})")


def _options_of(state_dict: StateDict) -> dict:
    """The ``create_model`` options a video checkpoint's shapes fix: ``base_width`` (``conv1`` channels), ``alpha``
    (``l_conv0``: base_width / alpha channels) and ``blending_frames`` (the stem TAM's taps); β is not recoverable."""
    p = VIDEO_PREFIX
    out: dict = {}
    if p + "conv1.weight" in state_dict and p + "l_conv0.weight" in state_dict:
        width, little = int(state_dict[p + "conv1.weight"].shape[0]), int(state_dict[p + "l_conv0.weight"].shape[0])
        out["base_width"] = width
        if little and width % little == 0:
            out["alpha"] = width // little
    taps = sum(k.startswith(p + "tam.blending_layers.") and k.endswith(".weight") for k in state_dict)
    out["blending_frames"] = 3 if p + "tam.prev.weight" in state_dict else taps or None
    return {k: v for k, v in out.items() if v is not None}


def checkpoint_info(state_dict: StateDict) -> dict:
    """Layout, classes and shape-fixed options (:func:`_options_of`) of a bLVNet-TAM file (G is not stored: TAM
    weights do not depend on it)."""
    if any(k.startswith(VIDEO_PREFIX) for k in state_dict):
        cls = next((int(state_dict[k].shape[0]) for k in ("new_fc.weight", VIDEO_PREFIX + "fc.weight")
                    if k in state_dict), None)
        return {"kind": "official_blvnet", "num_classes": cls, "num_frames": None, "options": _options_of(state_dict)}
    if all(k in state_dict for k in IMAGENET_MARKERS):
        return {"kind": "official_imagenet", "num_frames": None}
    return {}


# ------------------------------------------------------------------------------------------------------- FLOPs
@contextlib.contextmanager
def _per_pair(walk: FlopsWalk, pairs: int) -> Iterator[None]:
    """Terms added inside run once per pair: turn them into per-clip terms (× P)."""
    n_off, n_exe = len(walk.official), len(walk.executed)
    yield
    for t in walk.official[n_off:] + walk.executed[n_exe:]:
        if t.per == "frame":
            t.value *= pairs
            t.per = "clip"


def _blocks(seq: nn.Module) -> list[AmpleBottleneck]:
    """The bottlenecks of a ``Sequential`` (typed for the walk)."""
    out = [m for m in seq.children() if isinstance(m, AmpleBottleneck)]
    if len(out) != len(list(seq.children())):
        raise TypeError(f"flops: {type(seq).__name__} holds modules other than bottlenecks")
    return out


def _tam_flops(walk: FlopsWalk, tam: TAM, shape: Shape) -> None:
    """Official only: K multiply-accumulates per element (the release's K depthwise 1×1 convs); the executed count
    holds ``nn.Conv2d`` / ``nn.Linear`` modules only, as :func:`~afnet_edge.flops.measure_macs` does."""
    c, h, w = shape
    walk.off(walk.name(tam), tam.blending_frames * c * h * w)


def flops_walk(walk: FlopsWalk, model: BLVNetTAMVideo, size: int, head: str) -> None:
    """Conv + linear MACs per clip as ``torch.utils.flop_counter`` counts the release (spec §5.1): ``conv1`` and the
    stem TAM on all G frames, stage TAMs on the G slots, everything else once per pair; head ``new_fc`` per pair
    (``head="imagenet"``: the bL-ResNet's 1000-class ``fc`` instead). BN, ReLU, pooling, upsampling, adds: 0."""
    bm = model.baseline_model
    pairs = model.num_pairs
    walk.stage = "stem"
    s = walk.conv(bm.conv1, (3, size, size))
    _tam_flops(walk, bm.tam, s)
    with _per_pair(walk, pairs):
        big = walk.conv(bm.b_conv0, s)
        little = walk.conv(bm.l_conv2, walk.conv(bm.l_conv1, walk.conv(bm.l_conv0, s)))
        if big != little:
            raise RuntimeError(f"flops: layer0 branch shapes differ ({big} vs {little})")
        s = walk.conv(bm.bl_init, big)
    for i, layer in enumerate((bm.layer1, bm.layer2, bm.layer3), 1):
        walk.stage = f"layer{i}"
        _tam_flops(walk, layer.tam, s)
        with _per_pair(walk, pairs):
            big = little = s
            for blk in _blocks(layer.big):
                big = bottleneck_flops(walk, blk, big, official_pool=False)
            for blk in _blocks(layer.little):
                little = bottleneck_flops(walk, blk, little, official_pool=False)
            little = walk.sequential_convs(layer.little_e, little)
            s = bottleneck_flops(walk, _blocks(layer.fusion)[0], little, official_pool=False)
    walk.stage = "layer4"
    with _per_pair(walk, pairs):
        for blk in _blocks(bm.layer4):
            _tam_flops(walk, cast(TamBottleneck, blk).tam, s)
            s = bottleneck_flops(walk, blk, s, official_pool=False)
        walk.stage = "head"
        walk.linear(model.new_fc)
        if head == "imagenet":
            walk.off(VIDEO_PREFIX + "fc", s[0] * IMAGENET_CLASSES)
        else:
            walk.off(walk.name(model.new_fc), model.new_fc.in_features * model.new_fc.out_features)


# ------------------------------------------------------------------------------------------------------- export
class ExportForward(nn.Module):
    """What ``afnet-edge export`` traces for a bLVNet-TAM model: ``clip (B, G, 3, H, W)`` →
    ``logits (B, classes)``, the pair-aware eval forward (spec §4.3) in standard ONNX ops.

    Every TAM runs as depthwise convolutions over time on constant kernels (:meth:`TAM.conv_kernels`, taken when the
    wrapper is built): the stem and layer4 TAMs as one Conv with kernel ``(K, 1)`` and ``groups=C`` on the rank-4
    ``(B, C, T, H·W)`` view (Reshape + Transpose around it), each stage TAM as two such Convs (big and little branch
    inputs, the folded weights of §4.3) sharing one view of the pair features. The pair split of the stem is a
    Reshape to ``(B·P, 2C, H, W)`` and two channel Slices; the merge ``Resize`` (nearest) + ``Add`` + ``Relu``. No
    zeros / index_put / ScatterND / Gather for pairs, no 5-D Pad, and no rank-5 tensor after the input's first
    Reshape. The per-pair logits are averaged over the P pairs (``ReduceMean``), as the release does. BN stays
    ``BatchNormalization`` (or is folded into the convs by the exporter); TensorRT folds it either way.

    In the ``plugin`` flavour (the exporter's :func:`~afnet_edge.export.ops.flavour_scope` installs the plugin markers
    through :func:`afnet_edge.kernels.blvnet_ops.use_impl`) the same forward emits one ``TemporalAggregate`` node per
    stem / layer4 TAM, one two-output ``TemporalAggregatePair`` per stage TAM (the same constant kernels as ``(K, C)``
    float32 weights) and one ``BLMerge`` per merge; everything else stays as above.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, BLVNetTAMVideo):
            raise ValueError(f"bLVNet-TAM export takes a BLVNetTAMVideo model, got {type(model).__name__}")
        self.model = model
        self.tams = [m for m in model.modules() if isinstance(m, TAM)]
        self.kernels = [t.conv_kernels() for t in self.tams]

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        m = self.model
        if clip.dim() != 5 or clip.shape[1] != m.num_frames or clip.shape[2] != 3:
            raise ValueError(f"clip must be (B, {m.num_frames}, 3, H, W), got {tuple(clip.shape)}")
        frames = clip.reshape(-1, 3, clip.shape[3], clip.shape[4])
        with contextlib.ExitStack() as stack:
            for tam, kernels in zip(self.tams, self.kernels):
                stack.enter_context(tam.constant_kernels(kernels))
            per_pair = m.new_fc(m.baseline_model(frames, m.num_frames))
        # the class count as a Python int: behind plugin nodes ONNX shape inference cannot fold a Shape of the logits
        return per_pair.reshape(-1, m.num_pairs, m.new_fc.out_features).mean(dim=1)


# ------------------------------------------------------------------------------------------------- registration
def export_metadata(model: nn.Module) -> dict:
    """ONNX metadata of a bLVNet-TAM model: no navigation, no TSM, its α, β, TAM width and stem width."""
    options = {k: int(getattr(model, k)) for k in ("alpha", "beta", "blending_frames", "base_width")}
    return {"num_navigation": 0, "tsm": False, **options}


def flops_note(model: BLVNetTAMVideo) -> str:
    """The cost line of ``afnet-edge flops``: big-little branches once per frame pair."""
    return f"big-little network once per frame pair ({model.num_pairs} pairs), every frame used"


#: The release's training recipe (spec §5.3, README command): SGD momentum 0.9 with Nesterov over ``model.parameters()``
#: (one group: no lr multipliers, weight decay 5e-4 on every parameter, BN and TAM included), cosine schedule to 0
#: over 50 epochs stepped per epoch, lr 0.01, batch 64, no gradient clipping, cross-entropy; Dropout 0.5 is the
#: model's ``dropout`` default. Frames: one random phase per clip (§2), random horizontal flip; list-data frames resized
#: to shorter side 256 for training (the release's stored frames) and 224 for evaluation (``--disable_scaleup``).
TRAIN_RECIPE = TrainRecipe(
    defaults={"epochs": 50, "batch_size": 64, "lr": 0.01, "lr_policy": "cosine", "lr_steps": (), "momentum": 0.9,
              "nesterov": True,
              "weight_decay": 5e-4, "clip_grad": None, "fc_lr5": False},
    param_groups=uniform_param_groups, sampling="phase", flip=True, short_side=(256, 224),
    note="bLVNet-TAM release recipe (spec blvnet-tam.md §5.3)")

HOOKS = FamilyHooks(
    family="blvnet",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    flops_note=flops_note,
    cli_options=(CliOption("--alpha", "alpha", "positive_int", "bLVNet: little-branch channel divisor alpha"),
                 CliOption("--beta", "beta", "positive_int", "bLVNet: little-branch depth divisor beta"),
                 CliOption("--blending-frames", "blending_frames", "positive_int",
                           "bLVNet: TAM taps over neighbouring frames (odd; 3 in every release)"),
                 CliOption("--base-width", "base_width", "positive_int",
                           "bLVNet: stem channels, stages 4x..32x it (64 in every release; smaller for tests)")),
    flops_walk=flops_walk,
    train=TRAIN_RECIPE,
    export=ExportAdapter(metadata=export_metadata, wrapper=ExportForward, selects_frames=False,
                         flavours=("portable", "plugin")),   # plugin: TemporalAggregate(Pair) / BLMerge nodes
)


@register_model("blvnet_tam_r50", HOOKS, default_frames=16, official_arch="bLVNet-TAM-50",
                bench=BenchDefaults(skips_frames=False, frames=(16, 32), label="bLVNet-TAM-R50",
                                   operating_point=OperatingPoint(16, source="f8x2: 16 frames")))
def blvnet_tam_r50(num_classes: int = 174, num_frames: int = 16, alpha: int = 2, beta: int = 4,
                   blending_frames: int = 3, dropout: float = 0.5, base_width: int = STEM) -> BLVNetTAMVideo:
    """bLVNet-TAM-50 (a2-b4 by default): big-little ResNet-50 on frame pairs + TAM; 16 frames = f8x2.
    ``base_width``: stem channels (64 in the release; smaller for narrow test models)."""
    return BLVNetTAMVideo("blvnet_tam_r50", 50, num_classes, num_frames, alpha, beta, blending_frames, dropout,
                          base_width)


@register_model("blvnet_tam_r101", HOOKS, default_frames=16, official_arch="bLVNet-TAM-101",
                bench=BenchDefaults(skips_frames=False, frames=(16, 32, 48, 64), label="bLVNet-TAM-R101"))
def blvnet_tam_r101(num_classes: int = 174, num_frames: int = 16, alpha: int = 2, beta: int = 4,
                    blending_frames: int = 3, dropout: float = 0.5, base_width: int = STEM) -> BLVNetTAMVideo:
    """bLVNet-TAM-101 (a2-b4 by default): big-little ResNet-101 on frame pairs + TAM; 16 frames = f8x2.
    ``base_width``: stem channels (64 in the release; smaller for narrow test models)."""
    return BLVNetTAMVideo("blvnet_tam_r101", 101, num_classes, num_frames, alpha, beta, blending_frames, dropout,
                          base_width)
