"""AdaFocus V1 (Wang et al., ICCV 2021) and AdaFocusV2 (Wang et al., CVPR 2022): spend less on a video by looking
closely at one patch per frame. Spec: ``shared/spec/adafocus.md`` (section numbers below refer to it).

A cheap global network f_G glances at every frame (MobileNetV2 on the full 224² frame, or ResNet-50 on the frame
resized to 96²), a policy π picks a patch location per frame (V2: GRU + sigmoid, continuous; V1: GRU actor over a
7×7 grid, arg-max), the patch is cropped (:func:`~afnet_edge.kernels.adafocus_reference.focus_crop`: sub-pixel
bilinear for V2, integer for V1) and an expensive local network f_L (ResNet-50) sees only the P × P patch. V2's
classifier pools the concatenated features with a running max over frames and has one head per step (§2.5); V1 uses
a GRU classifier (§4). V2-TSM uses TSM backbones, one patch location per clip, 8 glance and 12 focus frames (§3);
V1-TSM (§4) likewise, with a one-step GRU actor (sigmoid mean) and V1's integer crop.

Forward contract::

    out = model(clip)                       # clip (B, T, 3, 224, 224) in temporal order
    out.logits                              # (B, classes): the last step's prediction
    out.locations                           # (B, T, 2) actions (row, col) in [0, 1], in temporal order
    out.step_logits                         # (B, T, classes): step k = after the first k + 1 frames *processed*
    model(clip, locations=...)              # the policy replaced by given (B, T, 2) actions (temporal order)
    model(glance_clip, focus_clip)          # V2-/V1-TSM: (B, 8, 3, 224, 224), (B, 12, 3, 224, 224); locations (B, 1, 2)

V2 (ActivityNet family) processes the frames in the coarse-to-fine order of §1.4 (``frame_order=True``, the
official evaluation): the policy GRU, the running max and the per-step heads run in that order, so
``step_logits[:, k]`` has seen frames ``order[:k + 1]``. V1 processes frames in natural order.

Module and parameter names follow the official releases (§2.11, §3.9), so official files map onto the models with
at most the TSM wrapper renames (``conv.0.net.`` → ``conv.0.``, ``conv1.net.`` → ``conv1.``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.adafocus_ops import focus_crop
from ..kernels.adafocus_reference import coarse_to_fine_order
from ..layers.early_exit import check_thresholds, confidence, exit_logits, exit_steps
from ..kernels.reference import temporal_shift
from .afnet_resnet import bottleneck_flops
from .common import VideoClassifier
from .flops_walk import FlopsWalk, Shape, Term, pool_out
from .registry import (BenchDefaults, CliFlag, CliOption, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict,
                       TrainRecipe, register_model)
from .registry import OperatingPoint
from .tsm_resnet import ResNet

FRAME_SIZE = 224          # every AdaFocus checkpoint was trained on 224² frames; the policies' flatten sizes fix it
RN_GLANCE_SIZE = 96       # the V2 "RN" glance: ResNet-50 on the frame resized to 96² (hard-wired officially, §2.1)
V1_GRID = 7               # V1 actor: 7×7 grid of top-left positions {0, 1/6, …, 1}² (§4)
MN2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))    # (t, c, n, s) of MobileNetV2 width 1.0


# ------------------------------------------------------------------------------------------------------ output
@dataclass
class AdaFocusOutput:
    """``logits (B, classes)``; ``locations (B, T or 1, 2)`` = (row, col) actions in [0, 1] in temporal order;
    ``step_logits (B, T, classes)`` for the per-step families (None otherwise); ``aux``: training-only auxiliary
    logits (``{"global": (B, T, classes), "local": ...}``), empty in eval; ``masks`` is ``[]`` (no frame skipping).
    With early exit (V2, §2.8): ``exit_steps (B,)`` int64, the processing step each clip exited at (it used
    ``exit_steps + 1`` frames; ``logits`` are that step's); None without early exit. ``random_branch``: in training
    with ``random_locations`` (V2's diversity branch, §2.9 / §3.7), the output of the same f_G pass with the patches
    cropped at those locations (its ``aux["global"]`` is this output's: f_G runs once); None otherwise."""

    logits: torch.Tensor
    locations: torch.Tensor
    step_logits: torch.Tensor | None = None
    aux: dict = field(default_factory=dict)
    masks: list = field(default_factory=list)
    exit_steps: torch.Tensor | None = None
    random_branch: "AdaFocusOutput | None" = None

    @property
    def frames_used(self) -> torch.Tensor | None:
        """Frames each clip used ``(B,)`` under early exit (``exit_steps + 1``), else None."""
        return None if self.exit_steps is None else self.exit_steps + 1


# -------------------------------------------------------------------------------------------------- MobileNetV2
def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block in the "tonylins" layout (§2.1): ``conv`` = [pw, BN, ReLU6,] dw, BN, ReLU6, pw-linear, BN.

    ``shift``: TSM shift of the block input before the expansion conv (conv path only; the residual is unshifted),
    as the official TSM-MobileNetV2 (§3.2; its wrapper names ``conv.0.net.*`` are renamed on load)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, shift: bool = False, num_frames: int = 1):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.shift = shift and self.use_res_connect and expand != 1
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_res_connect:
            return self.conv(x)
        return x + self.conv(temporal_shift(x, self.num_frames) if self.shift else x)


class MobileNetV2(nn.Module):
    """MobileNetV2 width 1.0: ``features.{0..18}``; ``classifier`` Linear(1280, ``classes``) when ``classifier``
    (the V2 checkpoints keep the unused ImageNet head, 1000 classes; V1-TSM's glancer uses its own head).
    ``shift``: TSM-MobileNetV2 over ``num_frames`` frames."""

    def __init__(self, classifier: bool = True, shift: bool = False, num_frames: int = 1, classes: int = 1000):
        super().__init__()
        feats: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in MN2_SETTINGS:
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t, shift, num_frames))
                cin = c
        feats.append(_conv_bn_relu6(cin, 1280, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Linear(1280, classes) if classifier else None
        _init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``(N, 1280, H/32, W/32)`` of frames ``(N, 3, H, W)`` (the classifier is not applied)."""
        return self.features(x)


def _init_cnn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet50(ResNet):
    """torchvision-layout ResNet-50 (the project's ResNet blocks). ``fc``: Linear(2048, ``fc_classes``) kept for the
    official key layout and never applied (None: Dropout, no keys, as the TSN wrapper). ``forward`` returns the
    feature map before pooling."""

    def __init__(self, fc_classes: int | None = 1000, shift: bool = False, num_frames: int = 1):
        super().__init__((3, 4, 6, 3), shift, num_frames, 0.0)
        if fc_classes is not None:
            self.add_module("fc", nn.Linear(2048, fc_classes))   # replaces the TSN wrapper's Dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


def _head(cin: int, classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, classes))


# --------------------------------------------------------------------------------------------------- V2 modules
class PolicySTN(nn.Module):
    """V2 policy (§2.2): per-frame encoder (1×1 conv → BN → tanh → flatten → Linear → BN1d → tanh), a GRU over
    the clip's frames (h₀ = 0, in processing order) and Linear(hidden, 2) + sigmoid."""

    def __init__(self, channels: int, spatial: int, hidden: int = 2048):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(channels, 64, 1, bias=False), nn.BatchNorm2d(64), nn.Tanh(),
                                     nn.Flatten(), nn.Linear(64 * spatial * spatial, hidden),
                                     nn.BatchNorm1d(hidden), nn.Tanh())
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.fc = nn.Sequential(nn.Linear(hidden, 2), nn.Sigmoid())

    def forward(self, maps: torch.Tensor, batch: int) -> torch.Tensor:
        """Actions ``(B, T, 2)`` from feature maps ``(B·T, C, h, w)`` (video-major, processing order)."""
        e = self.encoder(maps)
        h, _ = self.gru(e.view(batch, -1, e.shape[-1]))   # h₀ = None: zeros made by the op, on the device
        return self.fc(h)


class PoolingMLP(nn.Module):
    def __init__(self, cin: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class PoolingClassifier(nn.Module):
    """V2 classifier (§2.5): shared MLP per frame, running max over frames, head t on the max of frames 0..t."""

    def __init__(self, cin: int, num_classes: int, num_frames: int, hidden: int = 4096, dropout: float = 0.2):
        super().__init__()
        self.hidden = hidden
        self.mlp = PoolingMLP(cin, hidden)
        self.classifiers = nn.ModuleList(_head(hidden, num_classes, dropout) for _ in range(num_frames))

    def forward(self, u: torch.Tensor, batch: int) -> torch.Tensor:
        """Per-step logits ``(B, T, classes)`` of per-frame features ``(B·T, cin)`` (processing order)."""
        z = self.mlp(u).view(batch, -1, self.hidden)
        if torch.onnx.is_in_onnx_export():      # ONNX has no CumMax: a chain of Max (equal values)
            steps = [z[:, 0]]
            for t in range(1, z.shape[1]):
                steps.append(torch.maximum(steps[-1], z[:, t]))
            m = torch.stack(steps, dim=1)
        else:
            m = torch.cummax(z, dim=1).values
        return torch.stack([head(m[:, t]) for t, head in enumerate(self.classifiers)], dim=1)


def _check_locations(locations: Any, batch: int, steps: int, name: str = "locations") -> torch.Tensor:
    if not isinstance(locations, torch.Tensor) or tuple(locations.shape) != (batch, steps, 2) \
            or not locations.is_floating_point():
        shape = tuple(locations.shape) if isinstance(locations, torch.Tensor) else type(locations).__name__
        raise ValueError(f"{name} must be a floating-point tensor of shape (B, {steps}, 2) = ({batch}, {steps}, 2) "
                         f"holding (row, col) actions in [0, 1], got {shape}")
    if locations.device.type == "cpu" and not (torch.compiler.is_compiling() or torch.jit.is_tracing()):
        if not bool(((locations >= 0) & (locations <= 1)).all()):
            raise ValueError(f"{name} must hold actions in [0, 1]")
    return locations


def _check_frame_size(frames: torch.Tensor, name: str = "clip") -> None:
    h, w = frames.shape[-2:]
    if (h, w) != (FRAME_SIZE, FRAME_SIZE):
        raise ValueError(f"{name} frames must be {FRAME_SIZE}×{FRAME_SIZE} (the AdaFocus policies were trained on "
                         f"224² frames), got {h}×{w}")


class AdaFocusV2(VideoClassifier):
    """AdaFocusV2, ActivityNet family (§2): ``glance="mn2"`` (MobileNetV2 on the 224² frame) or ``"rn"``
    (ResNet-50 on the frame resized to 96²), GRU policy, one sub-pixel P × P patch per frame, ResNet-50 local
    network, pooling classifier with per-step heads."""

    order: torch.Tensor            # processing position k → temporal frame index (buffers, not in the state dict)
    inverse_order: torch.Tensor

    def __init__(self, arch: str, glance: str, num_classes: int, num_frames: int = 16, patch_size: int = 128,
                 hidden_dim: int = 2048, dropout: float = 0.2, frame_order: bool = True, classifier_dim: int = 4096):
        super().__init__(num_classes, num_frames)
        if glance not in ("mn2", "rn"):
            raise ValueError(f"glance must be 'mn2' or 'rn', got {glance!r}")
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or not 32 <= patch_size <= FRAME_SIZE:
            raise ValueError(f"patch_size must be an int in [32, {FRAME_SIZE}] (P; 96/128/160 released), "
                             f"got {patch_size!r}")
        self.arch = arch
        self.glance = glance
        self.patch_size = patch_size
        self.frame_order = bool(frame_order)
        if glance == "mn2":
            self.global_CNN: nn.Module = MobileNetV2(classifier=True)
            c_g, spatial = 1280, FRAME_SIZE // 32
        else:
            self.global_CNN = ResNet50(1000)
            c_g, spatial = 2048, RN_GLANCE_SIZE // 32
        self.global_feature_dim = c_g
        self.global_CNN_fc = _head(c_g, num_classes, dropout)
        self.local_CNN = ResNet50(1000)
        self.local_CNN_fc = _head(2048, num_classes, dropout)
        self.policy_stn = PolicySTN(c_g, spatial, hidden_dim)
        self.classifier = PoolingClassifier(c_g + 2048, num_classes, num_frames, classifier_dim, dropout)
        order = coarse_to_fine_order(num_frames) if self.frame_order else list(range(num_frames))
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("inverse_order", torch.argsort(torch.tensor(order)), persistent=False)
        self.register_buffer("exit_thresholds", None, persistent=False)

    def set_exit_thresholds(self, thresholds: Any) -> "AdaFocusV2":
        """Early exit (AdaFocusV2+, §2.8) as the inference mode: ``thresholds`` = T numbers τ_t (e.g. from
        :func:`afnet_edge.layers.early_exit.calibrate_thresholds` or ``afnet-edge calibrate-exit``), or None to
        turn it off. In eval, ``forward`` then returns the logits of the step where each clip exits (the first
        processing step t with max raw logit ≥ τ_t; the last step always accepts) and ``exit_steps``; it still
        computes every frame (offline). :meth:`stream` computes only the frames each clip uses."""
        if thresholds is None:
            self.exit_thresholds = None
        else:
            dev = self.order.device
            self.exit_thresholds = check_thresholds(thresholds, self.num_frames).to(dev)
        return self

    def glance_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """f_G feature maps of frames ``(N, 3, 224, 224)``: MN2 ``(N, 1280, 7, 7)``, RN ``(N, 2048, 3, 3)``."""
        if self.glance == "rn":
            frames = F.interpolate(frames, size=(RN_GLANCE_SIZE, RN_GLANCE_SIZE), mode="bilinear",
                                   align_corners=True)
        return self.global_CNN(frames)

    def forward(self, clip: torch.Tensor, locations: torch.Tensor | None = None,  # type: ignore[override]
                masks=None, generator: torch.Generator | None = None,
                random_locations: torch.Tensor | None = None) -> AdaFocusOutput:
        """``clip (B, T, 3, 224, 224)`` in temporal order (or the (B, 3T, H, W) / (B·T, 3, H, W) layouts);
        ``locations (B, T, 2)`` (temporal order) replaces the policy. ``random_locations (B, T, 2)`` (training only):
        also run the diversity branch of §2.9 (f_L, f_C and the local aux head on patches at these locations, same
        f_G pass), returned as ``random_branch``. ``generator`` is accepted for the generic drivers and unused (no
        randomness at inference). Returns :class:`AdaFocusOutput`."""
        if masks:
            raise ValueError("AdaFocus selects no frames: masks must be None or []")
        frames, b = self.frames_from_clip(clip)
        _check_frame_size(frames)
        T = self.num_frames
        frames = frames.view(b, T, *frames.shape[1:]).index_select(1, self.order).flatten(0, 1)
        maps = self.glance_maps(frames)
        g = maps.mean(dim=(2, 3))
        if locations is None:
            actions = self.policy_stn(maps.detach(), b)                       # (B, T, 2), processing order
        else:
            actions = _check_locations(locations, b, T).to(frames.dtype).index_select(1, self.order)
        step_logits, l = self._focus(frames, actions, g, b)
        aux = {}
        rnd = None
        if self.training:
            aux = {"global": self.global_CNN_fc(g).view(b, T, -1), "local": self.local_CNN_fc(l).view(b, T, -1)}
        if random_locations is not None:
            if not self.training:
                raise ValueError("random_locations (the diversity branch of training) needs model.train()")
            r_act = _check_locations(random_locations, b, T, "random_locations").to(frames.dtype)
            r_steps, r_l = self._focus(frames, r_act.index_select(1, self.order), g, b)
            rnd = AdaFocusOutput(logits=r_steps[:, -1], locations=r_act, step_logits=r_steps,
                                 aux={"global": aux["global"], "local": self.local_CNN_fc(r_l).view(b, T, -1)})
        logits, steps = step_logits[:, -1], None
        if self.exit_thresholds is not None and not self.training:
            steps = exit_steps(step_logits, self.exit_thresholds)
            logits = exit_logits(step_logits, steps)
        return AdaFocusOutput(logits=logits, locations=actions.index_select(1, self.inverse_order),
                              step_logits=step_logits, aux=aux, exit_steps=steps, random_branch=rnd)

    def _focus(self, frames: torch.Tensor, actions: torch.Tensor, g: torch.Tensor,
               b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop, f_L and f_C of one branch: per-step logits ``(B, T, classes)`` and local features ``(B·T, 2048)``
        from frames ``(B·T, 3, 224, 224)``, actions ``(B, T, 2)`` and glance features ``g (B·T, C_g)``, all in
        processing order."""
        patches = focus_crop(frames, actions.reshape(b * self.num_frames, 2), self.patch_size, "bilinear",
                             kernels=self.kernels)
        l = self.local_CNN(patches).mean(dim=(2, 3))
        return self.classifier(torch.cat([g, l], dim=1), b), l

    @torch.no_grad()
    def stream(self, clip: torch.Tensor, thresholds: Any = None,
               locations: torch.Tensor | None = None) -> AdaFocusOutput:
        """Streaming early-exit inference (§2.7–2.8): frames are processed one at a time in the processing order
        (coarse-to-fine by default): f_G, one GRU step of π, the crop, f_L, the MLP, the running max and head t;
        a clip stops as soon as its max raw logit reaches τ_t (the last step always accepts), and the frames after
        that are never computed for it (exited clips leave the batch). ``thresholds``: T numbers, default the
        model's :meth:`set_exit_thresholds` (None there too: never exit early = the full forward).

        Returns :class:`AdaFocusOutput` with ``logits`` (the exit step's), ``exit_steps``, ``locations (B, T, 2)``
        in temporal order (NaN for frames a clip did not reach) and ``step_logits (B, T, classes)`` in processing
        order (NaN after a clip's exit). Eval mode only."""
        if self.training:
            raise ValueError("stream() is inference only: call model.eval() first")
        frames, b = self.frames_from_clip(clip)
        _check_frame_size(frames)
        T = self.num_frames
        thr = self.exit_thresholds if thresholds is None else check_thresholds(thresholds, T)
        thr = torch.full((T,), math.inf) if thr is None else thr.detach().cpu()
        x = frames.view(b, T, *frames.shape[1:])
        if locations is not None:
            locations = _check_locations(locations, b, T).to(frames.dtype)
        order = self.order.tolist()
        pol, cls = self.policy_stn, self.classifier
        nan = float("nan")
        step_logits = x.new_full((b, T, self.num_classes), nan)
        actions = x.new_full((b, T, 2), nan)                       # temporal order
        logits = x.new_full((b, self.num_classes), nan)
        steps = torch.full((b,), T - 1, dtype=torch.long, device=x.device)
        h = x.new_zeros(1, b, pol.gru.hidden_size)
        m = x.new_zeros(b, cls.hidden)
        active = torch.arange(b, device=x.device)
        for k, t in enumerate(order):
            f = x[active, t]                                           # (A, 3, 224, 224): frame order[k]
            maps = self.glance_maps(f)
            g = maps.mean(dim=(2, 3))
            if locations is None:
                hk, hn = pol.gru(pol.encoder(maps).unsqueeze(1), h[:, active])
                h[:, active] = hn
                a = pol.fc(hk[:, 0])
            else:
                a = locations[active, t]
            actions[active, t] = a
            patches = focus_crop(f, a, self.patch_size, "bilinear", kernels=self.kernels)
            l = self.local_CNN(patches).mean(dim=(2, 3))
            z = cls.mlp(torch.cat([g, l], dim=1))
            mk = z if k == 0 else torch.maximum(m[active], z)
            m[active] = mk
            lk = cls.classifiers[k](mk)
            step_logits[active, k] = lk
            done = torch.ones_like(active, dtype=torch.bool) if k == T - 1 else confidence(lk[:, None])[:, 0] >= thr[k]
            logits[active[done]] = lk[done]
            steps[active[done]] = k
            active = active[~done]
            if active.numel() == 0:
                break
        return AdaFocusOutput(logits=logits, locations=actions, step_logits=step_logits, exit_steps=steps)


class TSNWrap(nn.Module):
    """The official TSN wrapper's naming (§3.9): ``base_model`` + ``new_fc`` (inference) + ``new_new_fc`` (aux)."""

    def __init__(self, base_model: nn.Module, channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.base_model = base_model
        self.dropout = nn.Dropout(dropout)
        self.new_fc = nn.Linear(channels, num_classes)
        self.new_new_fc = nn.Linear(channels, num_classes)


def _check_tsm_sizes(num_frames: int, focus_frames: int | None, patch_size: int, released: str) -> int:
    """The focus-frame count of a TSM variant (default 1.5 × the glance frames, 12 released) after checking it and
    ``patch_size`` (``released``: the published patch sizes, named in the error)."""
    focus_frames = num_frames * 3 // 2 if focus_frames is None else focus_frames
    if isinstance(focus_frames, bool) or not isinstance(focus_frames, int) or focus_frames < 1:
        raise ValueError(f"focus_frames must be a positive integer (12 released), got {focus_frames!r}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or not 32 <= patch_size <= FRAME_SIZE:
        raise ValueError(f"patch_size must be an int in [32, {FRAME_SIZE}] ({released} released), got {patch_size!r}")
    return focus_frames


class AdaFocusV2TSM(VideoClassifier):
    """AdaFocusV2-TSM (§3): TSM-MobileNetV2 on ``num_frames`` (8) glance frames, one MLP policy action per clip,
    the same sub-pixel crop on ``focus_frames`` (12) other frames, TSM-ResNet-50 on the patches; logits = clip
    mean of f_G's ``new_fc`` + clip mean of f_L's ``new_fc``."""

    def __init__(self, arch: str, num_classes: int, num_frames: int = 8, focus_frames: int | None = None,
                 patch_size: int = 144, dropout: float = 0.5):
        super().__init__(num_classes, num_frames)
        focus_frames = _check_tsm_sizes(num_frames, focus_frames, patch_size, "128/144/160/176")
        self.arch = arch
        self.tsm = True
        self.focus_frames = focus_frames
        self.patch_size = patch_size
        self.global_CNN = TSNWrap(MobileNetV2(classifier=False, shift=True, num_frames=num_frames), 1280,
                                  num_classes, dropout)
        self.local_CNN = TSNWrap(ResNet50(None, shift=True, num_frames=focus_frames), 2048, num_classes, dropout)
        spatial = FRAME_SIZE // 32
        self.policy_stn = nn.Sequential(
            nn.Conv2d(1280 * num_frames, 64, 1, bias=False), nn.BatchNorm2d(64), nn.Tanh(), nn.Flatten(),
            nn.Linear(64 * spatial * spatial, 1024), nn.BatchNorm1d(1024), nn.Tanh(),
            nn.Linear(1024, 512), nn.BatchNorm1d(512), nn.Tanh(), nn.Linear(512, 2), nn.Sigmoid())

    def _clip(self, clip: Any, frames: int, name: str) -> tuple[torch.Tensor, int]:
        if not isinstance(clip, torch.Tensor) or clip.dim() != 5 or clip.shape[1] != frames or clip.shape[2] != 3:
            shape = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
            raise ValueError(f"{name} must have shape (B, {frames}, 3, 224, 224), got {shape}")
        saved, self.num_frames = self.num_frames, frames
        try:
            out, b = self.frames_from_clip(clip)
        finally:
            self.num_frames = saved
        _check_frame_size(out, name)
        return out, b

    def forward(self, glance_clip: torch.Tensor, focus_clip: torch.Tensor | None = None,  # type: ignore[override]
                locations: torch.Tensor | None = None, masks=None, generator: torch.Generator | None = None,
                random_locations: torch.Tensor | None = None) -> AdaFocusOutput:
        """``glance_clip (B, T_G, 3, 224, 224)``, ``focus_clip (B, T_L, 3, 224, 224)`` (independently sampled
        frames), or ``glance_clip (B, T_G + T_L, 3, 224, 224)`` alone holding both (the layout of the training data
        and of the export); ``locations (B, 1, 2)`` replaces the policy; ``random_locations (B, 1, 2)`` (training only): also
        run the random-patch branch of §3.7, returned as ``random_branch``; ``generator`` is unused. Returns
        :class:`AdaFocusOutput` (no step logits)."""
        if masks:
            raise ValueError("AdaFocus selects no frames: masks must be None or []")
        both = self.num_frames + self.focus_frames
        if focus_clip is None and isinstance(glance_clip, torch.Tensor) and glance_clip.dim() == 5 \
                and glance_clip.shape[1] == both:      # one clip: T_G glance frames, then T_L focus frames
            glance_clip, focus_clip = glance_clip[:, :self.num_frames], glance_clip[:, self.num_frames:]
        if focus_clip is None:
            raise ValueError(f"{self.arch} takes two clips: model(glance_clip (B, {self.num_frames}, 3, 224, 224), "
                             f"focus_clip (B, {self.focus_frames}, 3, 224, 224)), or one clip (B, {both}, 3, 224, "
                             f"224) holding them one after the other")
        g_frames, b = self._clip(glance_clip, self.num_frames, "glance_clip")
        f_frames, b2 = self._clip(focus_clip, self.focus_frames, "focus_clip")
        if b2 != b:
            raise ValueError(f"glance_clip and focus_clip must have the same batch size, got {b} and {b2}")
        maps = self.global_CNN.base_model(g_frames)                           # (B·T_G, 1280, 7, 7)
        g = maps.mean(dim=(2, 3))
        if locations is None:
            action = self.policy_stn(maps.detach().reshape(b, -1, *maps.shape[2:]))   # (B, 2); channel t·1280 + c
        else:
            action = _check_locations(locations, b, 1).to(maps.dtype)[:, 0]
        gl = self.global_CNN.new_fc(self.global_CNN.dropout(g.detach())).view(b, self.num_frames, -1).mean(1)
        ll, local_aux = self._focus(f_frames, action, b, self.training)
        aux = {}
        rnd = None
        if self.training:
            aux = {"global": self.global_CNN.new_new_fc(self.global_CNN.dropout(g)).view(b, self.num_frames, -1),
                   "local": local_aux}
        if random_locations is not None:
            if not self.training:
                raise ValueError("random_locations (the random-patch branch of training) needs model.train()")
            r_act = _check_locations(random_locations, b, 1, "random_locations").to(maps.dtype)
            r_ll, r_aux = self._focus(f_frames, r_act[:, 0], b, True)
            rnd = AdaFocusOutput(logits=gl + r_ll, locations=r_act, aux={"global": aux["global"], "local": r_aux})
        return AdaFocusOutput(logits=gl + ll, locations=action.view(b, 1, 2), aux=aux, random_branch=rnd)

    def _focus(self, f_frames: torch.Tensor, action: torch.Tensor, b: int,
               aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One branch's crop (the clip's action ``(B, 2)`` on each of its focus frames ``(B·T_L, 3, 224, 224)``)
        and f_L: the clip-mean ``new_fc`` logits of the detached features ``(B, classes)`` and, with ``aux``, the
        aux logits ``(B, T_L, classes)`` (``new_new_fc``, not detached)."""
        per_frame = action.repeat_interleave(self.focus_frames, dim=0)        # the clip's action on each frame
        patches = focus_crop(f_frames, per_frame, self.patch_size, "bilinear", kernels=self.kernels)
        l = self.local_CNN.base_model(patches).mean(dim=(2, 3))
        ll = self.local_CNN.new_fc(self.local_CNN.dropout(l.detach())).view(b, self.focus_frames, -1).mean(1)
        if not aux:
            return ll, None
        return ll, self.local_CNN.new_new_fc(self.local_CNN.dropout(l)).view(b, self.focus_frames, -1)


# --------------------------------------------------------------------------------------------------- V1 modules
class ActorCritic(nn.Module):
    """V1 policy, ActivityNet family (§4): encoder 1×1 conv 1280→32 + ReLU → flatten → Linear(1568→1024) + ReLU,
    GRU(1024) over the frames in natural order, actor Linear(1024→49) + softmax over the 7×7 grid (arg-max at
    inference), critic Linear(1024→1) (training only)."""

    def __init__(self, channels: int = 1280, spatial: int = 7, hidden: int = 1024, actions: int = V1_GRID ** 2):
        super().__init__()
        self.state_encoder = nn.Sequential(nn.Conv2d(channels, 32, 1), nn.ReLU(inplace=True), nn.Flatten(),
                                           nn.Linear(32 * spatial * spatial, hidden), nn.ReLU(inplace=True))
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.actor = nn.Sequential(nn.Linear(hidden, actions), nn.Softmax(dim=-1))
        self.critic = nn.Sequential(nn.Linear(hidden, 1))

    def forward(self, maps: torch.Tensor, batch: int) -> torch.Tensor:
        """Action probabilities ``(B, T, 49)`` of feature maps ``(B·T, C, h, w)``."""
        e = self.state_encoder(maps)
        h, _ = self.gru(e.view(batch, -1, e.shape[-1]))
        return self.actor(h)


def grid_actions(index: torch.Tensor, grid: int = V1_GRID) -> torch.Tensor:
    """V1 action index k (any shape, int) → (row, col) actions ``(..., 2)`` = (⌊k/g⌋/(g−1), (k mod g)/(g−1))."""
    rows = torch.div(index, grid, rounding_mode="trunc")    # k ≥ 0: trunc = floor, and exports as one integer Div
    return torch.stack((rows, index - rows * grid), dim=-1).float() / (grid - 1)


class GRUClassifier(nn.Module):
    """V1 classifier (§4): GRU(cin → 1024) over the frames (h₀ = 0) → dropout → Linear(1024 → classes) per step."""

    def __init__(self, cin: int, num_classes: int, hidden: int = 1024, dropout: float = 0.2):
        super().__init__()
        self.gru = nn.GRU(cin, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, u: torch.Tensor, batch: int) -> torch.Tensor:
        h, _ = self.gru(u.view(batch, -1, u.shape[-1]))
        return self.fc(self.dropout(h))


class AdaFocusV1(VideoClassifier):
    """AdaFocus V1 inference, ActivityNet family (§4): MobileNetV2 glance on the 224² frame, actor-critic over the
    7×7 grid (arg-max), integer P × P crop, ResNet-50 local network, GRU classifier; prediction = last step."""

    def __init__(self, arch: str, num_classes: int, num_frames: int = 16, patch_size: int = 128,
                 dropout: float = 0.2, hidden_dim: int = 1024):
        super().__init__(num_classes, num_frames)
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or not 32 <= patch_size <= FRAME_SIZE:
            raise ValueError(f"patch_size must be an int in [32, {FRAME_SIZE}] (128/160/192 released), "
                             f"got {patch_size!r}")
        self.arch = arch
        self.patch_size = patch_size
        self.global_CNN = MobileNetV2(classifier=False)
        self.local_CNN = ResNet50(num_classes)          # its fc (the stage-0 head) is stored, not used
        self.policy = ActorCritic(hidden=hidden_dim)                  # hidden_dim: 1024 released (narrower: tests)
        self.fc = GRUClassifier(1280 + 2048, num_classes, hidden=hidden_dim, dropout=dropout)

    def forward(self, clip: torch.Tensor, locations: torch.Tensor | None = None,  # type: ignore[override]
                masks=None) -> AdaFocusOutput:
        """``clip (B, T, 3, 224, 224)``; ``locations (B, T, 2)`` replaces the actor (any [0, 1] actions; the crop
        corner is ⌊a·(224 − P)⌋). Returns :class:`AdaFocusOutput` with per-step logits."""
        if masks:
            raise ValueError("AdaFocus selects no frames: masks must be None or []")
        frames, b = self.frames_from_clip(clip)
        _check_frame_size(frames)
        T = self.num_frames
        maps = self.global_CNN(frames)
        g = maps.mean(dim=(2, 3))
        if locations is None:
            actions = grid_actions(self.policy(maps, b).argmax(dim=-1)).to(frames.dtype)
        else:
            actions = _check_locations(locations, b, T).to(frames.dtype)
        patches = focus_crop(frames, actions.reshape(b * T, 2), self.patch_size, "floor", kernels=self.kernels)
        l = self.local_CNN(patches).mean(dim=(2, 3))
        step_logits = self.fc(torch.cat([g, l], dim=1), b)
        return AdaFocusOutput(logits=step_logits[:, -1], locations=actions, step_logits=step_logits)



class ActorCriticTSM(nn.Module):
    """V1 policy, Sth-Sth (§4): encoder on the channel-concatenated glance maps (1×1 conv T_G·1280→64, no bias →
    BN2d → ReLU → flatten → Linear(3136→1024) → BN1d → ReLU), one GRU(1024) step from h₀ = 0, actor Linear(1024→2)
    + sigmoid = the mean of the training Gaussian (inference uses the mean), critic Linear(1024→1) (training only)."""

    def __init__(self, channels: int, spatial: int = 7, hidden: int = 1024):
        super().__init__()
        self.state_encoder = nn.Sequential(nn.Conv2d(channels, 64, 1, bias=False), nn.BatchNorm2d(64),
                                           nn.ReLU(inplace=True), nn.Flatten(),
                                           nn.Linear(64 * spatial * spatial, hidden), nn.BatchNorm1d(hidden),
                                           nn.ReLU(inplace=True))
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.actor = nn.Sequential(nn.Linear(hidden, 2), nn.Sigmoid())
        self.critic = nn.Sequential(nn.Linear(hidden, 1))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """Actions ``(B, 2)`` of concatenated glance maps ``(B, T_G·1280, 7, 7)`` (channel t·1280 + c)."""
        e = self.state_encoder(state)
        h, _ = self.gru(e.unsqueeze(1))                   # one step, h₀ = zeros made by the op
        return self.actor(h[:, 0])


class AdaFocusV1TSM(VideoClassifier):
    """AdaFocus V1-TSM inference, Sth-Sth (§4): TSM-MobileNetV2 on ``num_frames`` (8) glance frames with its own
    Linear(1280→classes) head, the continuous actor (one GRU step, sigmoid mean) gives one location per clip, the
    same **integer** P × P crop (top-left ⌊a·(224 − P)⌋) on ``focus_frames`` (12) other frames, TSM-ResNet-50 on the
    patches, ``fc`` Linear(2048→classes); logits = clip mean of the glance head + clip mean of ``fc``."""

    def __init__(self, arch: str, num_classes: int, num_frames: int = 8, focus_frames: int | None = None,
                 patch_size: int = 144, dropout: float = 0.5):
        super().__init__(num_classes, num_frames)
        focus_frames = _check_tsm_sizes(num_frames, focus_frames, patch_size, "144/160/176")
        self.arch = arch
        self.tsm = True
        self.focus_frames = focus_frames
        self.patch_size = patch_size
        self.global_CNN = MobileNetV2(classifier=True, shift=True, num_frames=num_frames, classes=num_classes)
        self.local_CNN = ResNet50(None, shift=True, num_frames=focus_frames)
        self.policy = ActorCriticTSM(1280 * num_frames, FRAME_SIZE // 32)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, glance_clip: torch.Tensor, focus_clip: torch.Tensor | None = None,  # type: ignore[override]
                locations: torch.Tensor | None = None, masks=None) -> AdaFocusOutput:
        """``glance_clip (B, T_G, 3, 224, 224)``, ``focus_clip (B, T_L, 3, 224, 224)``; ``locations (B, 1, 2)``
        replaces the actor (the crop corner is ⌊a·(224 − P)⌋). Returns :class:`AdaFocusOutput` (no step logits)."""
        if masks:
            raise ValueError("AdaFocus selects no frames: masks must be None or []")
        if focus_clip is None:
            raise ValueError(f"{self.arch} takes two clips: model(glance_clip (B, {self.num_frames}, 3, 224, 224), "
                             f"focus_clip (B, {self.focus_frames}, 3, 224, 224))")
        g_frames, b = AdaFocusV2TSM._clip(self, glance_clip, self.num_frames, "glance_clip")  # type: ignore[arg-type]
        f_frames, b2 = AdaFocusV2TSM._clip(self, focus_clip, self.focus_frames, "focus_clip")  # type: ignore[arg-type]
        if b2 != b:
            raise ValueError(f"glance_clip and focus_clip must have the same batch size, got {b} and {b2}")
        maps = self.global_CNN(g_frames)                                      # (B·T_G, 1280, 7, 7)
        if locations is None:
            action = self.policy(maps.reshape(b, -1, *maps.shape[2:]))        # (B, 2); channel t·1280 + c
        else:
            action = _check_locations(locations, b, 1).to(maps.dtype)[:, 0]
        per_frame = action.repeat_interleave(self.focus_frames, dim=0)        # the clip's action on each frame
        patches = focus_crop(f_frames, per_frame, self.patch_size, "floor", kernels=self.kernels)
        l = self.local_CNN(patches).mean(dim=(2, 3))
        head: nn.Module = self.global_CNN.classifier  # type: ignore[assignment]
        gl = head(maps.mean(dim=(2, 3))).view(b, self.num_frames, -1).mean(1)
        ll = self.fc(self.dropout(l)).view(b, self.focus_frames, -1).mean(1)
        return AdaFocusOutput(logits=gl + ll, locations=action.view(b, 1, 2))

# ------------------------------------------------------------------------------------- official checkpoint keys
V2_MARKER = "policy_stn.gru.weight_hh_l0"
V2_TSM_MARKER = "policy_stn.0.weight"
V1_PARTS = ("glancer", "focuser", "policy", "fc")
TSM_RENAMES = ((".conv.0.net.", ".conv.0."), (".conv1.net.", ".conv1."))   # official TemporalShift(net=conv) names
V1_TSM_MARKER = "focuser.net.base_model.0.weight"     # V1 Sth-Sth: the focuser's ResNet children as a Sequential
V1_TSM_RESNET_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _tv_to_tonylins_mn2(key: str) -> str:
    """A torchvision-layout MobileNetV2 key (V1's glancer: ``features.1.conv.0.0.weight``) in the tonylins layout
    used here (``features.1.conv.0.weight``). Blocks 2..17 expand: ``conv.0.{0,1}`` → ``conv.{0,1}``,
    ``conv.1.{0,1}`` → ``conv.{3,4}``, ``conv.2`` → ``conv.6``, ``conv.3`` → ``conv.7``; block 1 does not:
    ``conv.0.{0,1}`` → ``conv.{0,1}``, ``conv.1`` → ``conv.3``, ``conv.2`` → ``conv.4``."""
    parts = key.split(".")
    if len(parts) < 5 or parts[0] != "features" or parts[2] != "conv":
        return key
    block, sub = int(parts[1]), parts[3]
    if block == 1:
        table = {("0", "0"): "0", ("0", "1"): "1"}
        single = {"1": "3", "2": "4"}
    else:
        table = {("0", "0"): "0", ("0", "1"): "1", ("1", "0"): "3", ("1", "1"): "4"}
        single = {"2": "6", "3": "7"}
    if sub in single:
        return ".".join(parts[:3] + [single[sub]] + parts[4:])
    new = table.get((sub, parts[4]))
    if new is None:
        raise ValueError(f"unexpected torchvision MobileNetV2 key {key!r}")
    return ".".join(parts[:3] + [new] + parts[5:])


def flatten_v1_checkpoint(obj: dict) -> StateDict:
    """One flat state dict (``glancer.*``, ``focuser.*``, ``policy.*``, ``fc.*``) of an official V1 checkpoint
    (a dict holding the parts ``glancer``, ``focuser``, ``policy``, ``fc`` beside ``epoch``, ``optimizer``, …).
    :func:`afnet_edge.load_checkpoint` reads such files directly (the family's ``read_state_dict`` hook,
    :func:`read_state_dict`)."""
    if not isinstance(obj, dict) or not all(isinstance(obj.get(p), dict) for p in V1_PARTS):
        raise ValueError(f"an official AdaFocus V1 checkpoint is a dict with the parts {V1_PARTS}")
    return {f"{p}.{k}": v for p in V1_PARTS for k, v in obj[p].items()}


def read_state_dict(obj: Any) -> StateDict | None:
    """The family's ``read_state_dict`` hook: the flat state dict of an official V1 multi-part file (a dict holding
    the part dicts ``glancer``, ``focuser``, ``policy``, ``fc``, see :func:`flatten_v1_checkpoint`); None for any
    other file (the generic reader handles it)."""
    if isinstance(obj, dict) and "state_dict" not in obj and all(isinstance(obj.get(p), dict) for p in V1_PARTS):
        return flatten_v1_checkpoint(obj)
    return None


def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Official AdaFocus files onto the models (DataParallel prefix already removed):

    * V2 (``{actnet,fcvid,minik}_p*_{mbv2,res50}.pth.tar``, §2.11): the model's own keys;
    * V2-TSM (``{sthv1,sthv2,jester}_p*.pth.tar``, §3.9): the model's keys with the TSM wrapper names;
    * V1 (§4), flattened by :func:`flatten_v1_checkpoint`: ``glancer.net.features.*`` (torchvision layout) →
      ``global_CNN.features.*``, ``focuser.net.*`` → ``local_CNN.*``, ``policy.*`` → ``policy.*``, ``fc.*`` →
      ``fc.*``; dropped on purpose: the glancer's classifier and the PPO copies inside ``focuser.policy.*``;
    * V1-TSM (§4, Sth-Sth), flattened likewise: ``glancer.net.*`` (tonylins TSM-MobileNetV2 with its own
      ``classifier`` head) → ``global_CNN.*``, ``focuser.net.base_model.{0,1,4..7}.*`` (the ResNet children as a
      Sequential) → ``local_CNN.{conv1,bn1,layer1..4}.*``, ``policy.*`` and ``fc.*`` as they are; TSM wrapper names
      renamed; ``focuser.policy.*`` dropped if present.
    """
    arch = getattr(model, "arch", type(model).__name__)
    if isinstance(model, AdaFocusV2):
        if V2_MARKER not in state_dict:
            raise ValueError(f"is not an AdaFocusV2 (ActivityNet-family) checkpoint (no {V2_MARKER}); "
                             f"model {arch} needs one")
        return MappedCheckpoint("official_adafocus_v2", dict(state_dict))
    if isinstance(model, AdaFocusV2TSM):
        if V2_TSM_MARKER not in state_dict:
            raise ValueError(f"is not an AdaFocusV2-TSM checkpoint (no {V2_TSM_MARKER}); model {arch} needs one")
        sd = dict(state_dict)
        for old, new in TSM_RENAMES:
            sd = {k.replace(old, new): v for k, v in sd.items()}
        return MappedCheckpoint("official_adafocus_v2_tsm", sd)
    if isinstance(model, AdaFocusV1TSM):
        if V1_TSM_MARKER not in state_dict or "policy.gru.weight_hh_l0" not in state_dict:
            raise ValueError(f"is not a flattened AdaFocus V1-TSM checkpoint (glancer.*, focuser.net.base_model.*, "
                             f"policy.*, fc.*; see flatten_v1_checkpoint); model {arch} needs one")
        out, dropped = {}, []
        for k, v in state_dict.items():
            if k.startswith("glancer.net."):
                out["global_CNN." + k[len("glancer.net."):].replace(*TSM_RENAMES[0])] = v
            elif k.startswith("focuser.net.base_model."):
                index, rest = k[len("focuser.net.base_model."):].split(".", 1)
                name = V1_TSM_RESNET_CHILDREN.get(index)
                out[f"local_CNN.{name}.{rest.replace(*TSM_RENAMES[1])}" if name else k] = v
            elif k.startswith("focuser.policy."):
                dropped.append(k)
            else:
                out[k] = v          # policy.*, fc.*; anything else is reported as unexpected by the driver
        return MappedCheckpoint("official_adafocus_v1_tsm", out, dropped=dropped)
    if isinstance(model, AdaFocusV1):
        if V1_TSM_MARKER in state_dict:
            raise ValueError(f"is an AdaFocus V1-TSM (Sth-Sth) checkpoint; model {arch} needs an ActivityNet-family "
                             f"V1 checkpoint (use adafocus_v1_tsm)")
        if not any(k.startswith("glancer.") for k in state_dict) or "policy.gru.weight_hh_l0" not in state_dict:
            raise ValueError(f"is not a flattened AdaFocus V1 checkpoint (glancer.*, focuser.*, policy.*, fc.*; "
                             f"see flatten_v1_checkpoint); model {arch} needs one")
        out, dropped = {}, []
        for k, v in state_dict.items():
            if k.startswith("glancer.net.features."):
                out["global_CNN." + _tv_to_tonylins_mn2(k[len("glancer.net."):])] = v
            elif k.startswith("focuser.net."):
                out["local_CNN." + k[len("focuser.net."):]] = v
            elif k.startswith(("policy.", "fc.")):
                out[k] = v
            elif k.startswith(("glancer.net.classifier.", "focuser.policy.")):
                dropped.append(k)
            else:
                out[k] = v          # unknown: reported as unexpected by the driver
        return MappedCheckpoint("official_adafocus_v1", out, dropped=dropped)
    raise ValueError(f"model {arch} is not an AdaFocus model")


def checkpoint_info(state_dict: StateDict) -> dict:
    """Layout, classes and T of an official AdaFocus file (T from the V2 per-step heads); ``{}`` otherwise."""
    if V2_MARKER in state_dict:
        heads = [k for k in state_dict if k.startswith("classifier.classifiers.") and k.endswith(".1.weight")]
        return {"kind": "official_adafocus_v2", "num_frames": len(heads) or None,
                "num_classes": int(state_dict["classifier.classifiers.0.1.weight"].shape[0]) if heads else None}
    if V2_TSM_MARKER in state_dict and "global_CNN.new_fc.weight" in state_dict:
        return {"kind": "official_adafocus_v2_tsm", "num_classes": int(state_dict["global_CNN.new_fc.weight"].shape[0]),
                "num_frames": int(state_dict[V2_TSM_MARKER].shape[1]) // 1280}
    if V1_TSM_MARKER in state_dict and "fc.weight" in state_dict and "policy.state_encoder.0.weight" in state_dict:
        return {"kind": "official_adafocus_v1_tsm", "num_classes": int(state_dict["fc.weight"].shape[0]),
                "num_frames": int(state_dict["policy.state_encoder.0.weight"].shape[1]) // 1280}
    if "policy.gru.weight_hh_l0" in state_dict and "fc.fc.weight" in state_dict:
        return {"kind": "official_adafocus_v1", "num_classes": int(state_dict["fc.fc.weight"].shape[0])}
    return {}


# ------------------------------------------------------------------------------------------------------- FLOPs
def _linear(walk: FlopsWalk, lin: Any, per: str = "frame", times: float = 1.0) -> None:
    v = lin.in_features * lin.out_features * times
    walk.executed.append(Term(walk.stage, walk.name(lin), v, None, per))
    walk.official.append(Term(walk.stage, walk.name(lin), v, None, per))


def _gru(walk: FlopsWalk, gru: nn.GRU) -> None:
    """One GRU step per frame: the input and hidden projections, 3·H·(I + H) MACs (gates not counted)."""
    v = 3 * gru.hidden_size * (gru.input_size + gru.hidden_size)
    walk.executed.append(Term(walk.stage, walk.name(gru), v))
    walk.official.append(Term(walk.stage, walk.name(gru), v))


def _per_clip(walk: FlopsWalk, frames: int, fn) -> Any:
    """Run ``fn()`` and turn the per-frame terms it added into per-clip terms of ``frames`` frames."""
    ne, no = len(walk.executed), len(walk.official)
    out = fn()
    for t in walk.executed[ne:] + walk.official[no:]:
        if t.per == "frame":
            t.value, t.per = t.value * frames, "clip"
    return out


def _mn2_flops(walk: FlopsWalk, mn2: Any, shape: Shape) -> Shape:
    for blk in mn2.features:
        for m in (blk.conv if isinstance(blk, InvertedResidual) else blk):
            if isinstance(m, nn.Conv2d):
                shape = walk.conv(m, shape)
    return shape


def _r50_flops(walk: FlopsWalk, r: Any, shape: Shape) -> Shape:
    s = walk.conv(r.conv1, shape)
    s = (s[0],) + pool_out(r.maxpool, s[1], s[2])
    for i in range(1, 5):
        for blk in getattr(r, f"layer{i}"):
            s = bottleneck_flops(walk, blk, s, official_pool=False)
    return s


def flops_walk(walk: FlopsWalk, model: Any, size: int, head: str) -> None:
    """The official AdaFocus accounting (§2.10, §3.8, §4): MACs of every conv and linear layer of f_G, π, f_L and
    f_C that inference runs, GRU steps as 3·H·(I + H), one V2 head per frame; aux heads, the unused ImageNet heads,
    BN, activations, pooling and the crop are not counted. Executed = official for this family."""
    if size != FRAME_SIZE:
        raise ValueError(f"AdaFocus models take {FRAME_SIZE}² frames (the policies' flatten sizes fix it), "
                         f"got image_size={size}")
    P = model.patch_size
    if isinstance(model, AdaFocusV2TSM):
        walk.stage = "glance"
        s = _mn2_flops(walk, model.global_CNN.base_model, (3, size, size))
        _linear(walk, model.global_CNN.new_fc)
        walk.stage = "policy"

        def policy():
            sh = (1280 * model.num_frames, s[1], s[2])
            for m in model.policy_stn:
                if isinstance(m, nn.Conv2d):
                    sh = walk.conv(m, sh)
                elif isinstance(m, nn.Linear):
                    _linear(walk, m)
        _per_clip(walk, 1, policy)
        walk.stage = "local"

        def local():
            _r50_flops(walk, model.local_CNN.base_model, (3, P, P))
            _linear(walk, model.local_CNN.new_fc)
        _per_clip(walk, model.focus_frames, local)
        return
    if isinstance(model, AdaFocusV1TSM):
        walk.stage = "glance"
        s = _mn2_flops(walk, model.global_CNN, (3, size, size))
        _linear(walk, model.global_CNN.classifier)
        walk.stage = "policy"

        def v1_policy():
            pol = model.policy
            walk.conv(pol.state_encoder[0], (1280 * model.num_frames, s[1], s[2]))
            _linear(walk, pol.state_encoder[4])
            _gru(walk, pol.gru)                 # one step per clip
            _linear(walk, pol.actor[0])
        _per_clip(walk, 1, v1_policy)
        walk.stage = "local"

        def v1_local():
            _r50_flops(walk, model.local_CNN, (3, P, P))
            _linear(walk, model.fc)
        _per_clip(walk, model.focus_frames, v1_local)
        return
    walk.stage = "glance"
    if isinstance(model, AdaFocusV2) and model.glance == "rn":
        s = _r50_flops(walk, model.global_CNN, (3, RN_GLANCE_SIZE, RN_GLANCE_SIZE))
    else:
        s = _mn2_flops(walk, model.global_CNN, (3, size, size))
    walk.stage = "policy"
    if isinstance(model, AdaFocusV2):
        pol: Any = model.policy_stn
        enc, gru, acts = pol.encoder, pol.gru, [pol.fc[0]]
    else:
        pol = model.policy
        enc, gru, acts = pol.state_encoder, pol.gru, [pol.actor[0]]
    walk.conv(enc[0], s)
    _linear(walk, next(m for m in enc if isinstance(m, nn.Linear)))
    _gru(walk, gru)
    for m in acts:
        _linear(walk, m)
    walk.stage = "local"
    _r50_flops(walk, model.local_CNN, (3, P, P))
    walk.stage = "classifier"
    if isinstance(model, AdaFocusV2):
        cls: Any = model.classifier
        _linear(walk, cls.mlp.layers[0])
        for h in cls.classifiers:       # head t runs once per clip, on the max of frames 0..t
            _linear(walk, h[1], per="clip")
    else:
        _gru(walk, model.fc.gru)
        _linear(walk, model.fc.fc)


# --------------------------------------------------------------------------------------------------- training
#: lr multipliers of the official one-stage V2 training (§2.9): (group, lr_mult, module attributes).
V2_LR_GROUPS = (("policy", 0.1, ("policy_stn",)), ("glance", 0.5, ("global_CNN", "global_CNN_fc")),
                ("local", 1.0, ("local_CNN", "local_CNN_fc")), ("classifier", 5.0, ("classifier",)))
#: V2-TSM (§3.7): the TSN wrappers hold each backbone with its two heads.
V2_TSM_LR_GROUPS = (("policy", 0.01, ("policy_stn",)), ("glance", 0.5, ("global_CNN",)), ("local", 1.0, ("local_CNN",)))


def _trainable(model: Any) -> None:
    if not isinstance(model, (AdaFocusV2, AdaFocusV2TSM)):
        arch = getattr(model, "arch", type(model).__name__)
        raise ValueError(f"{arch}: training is implemented for AdaFocusV2 (adafocus_v2_mn2/rn/tsm, one-stage "
                         f"objective of spec §2.9 / §3.7); AdaFocus V1 is inference only here (its three-stage "
                         f"PPO training is not implemented)")


def train_defaults(model: Any) -> dict:
    """The official optimiser settings (TrainConfig fields): V2 §2.9 SGD 0.9, wd 1e-4, lr 0.002, cosine, 50 epochs,
    batch 32, no clipping; V2-TSM §3.7 lr 0.01, wd 5e-4, cosine, 50 epochs, batch 32, clipping 20."""
    common = {"lr_policy": "cosine", "epochs": 50, "batch_size": 32, "momentum": 0.9, "fc_lr5": False}
    if isinstance(model, AdaFocusV2TSM):
        return {**common, "lr": 0.01, "weight_decay": 5e-4, "clip_grad": 20.0}
    return {**common, "lr": 0.002, "weight_decay": 1e-4, "clip_grad": None}


def train_param_groups(model: Any, fc_lr5: bool = True) -> list[dict]:
    """The official per-group learning rates of V2 (§2.9: π 0.1, f_G + its aux head 0.5, f_L + its aux head 1.0,
    f_C 5.0) and V2-TSM (§3.7: π 0.01, f_G 0.5, f_L 1.0), every group with weight decay × 1. Groups
    ``{'params', 'lr_mult', 'decay_mult', 'name'}`` in that order; the unused ImageNet heads of the backbones sit
    in their backbone's group (they get no gradient, so SGD leaves them unchanged). ``fc_lr5`` (the AFNet/TSN
    Linear multipliers) does not apply."""
    _trainable(model)
    spec = V2_LR_GROUPS if isinstance(model, AdaFocusV2) else V2_TSM_LR_GROUPS
    params: list[list[nn.Parameter]] = [[p for a in attrs for p in getattr(model, a).parameters()]
                                        for _, _, attrs in spec]
    placed = {id(p) for ps in params for p in ps}
    missing = [n for n, p in model.named_parameters() if id(p) not in placed]
    if missing or len(placed) != sum(len(ps) for ps in params):
        raise ValueError(f"{model.arch}: parameters outside the V2 optimiser groups: {missing[:5]}")
    return [{"params": ps, "lr_mult": mult, "decay_mult": 1.0, "name": name}
            for ps, (name, mult, _) in zip(params, spec)]


def train_flips(model: Any) -> bool:
    """Training augmentation of list data (the generic multi-scale crop, scales 1/.875/.75/.66, is every family's):
    V2 adds the horizontal flip (§2.9), V2-TSM trains without it (§3.1: Something-Something's left/right classes).
    Both resize frames to shorter side 256 first (the family's ``short_side``), the §1 pipeline the releases
    evaluate with; the spec does not say which size the release's training crop starts from."""
    return isinstance(model, AdaFocusV2)


def _ce_per_frame(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of per-frame / per-step logits ``(B, T, classes)``, the clip label repeated T times."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.repeat_interleave(logits.shape[1]))


def v2_objective(out: AdaFocusOutput, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The one-stage V2 loss of an output with its ``random_branch`` (§2.9, §3.7); returns ``(loss, terms)``.

    Per branch (policy patches, random patches): V2 ``CE(L_t for all T steps, label repeated T)``, V2-TSM
    ``CE(fused logits)``; plus ``CE(f_G aux logits per frame) + CE(f_L aux logits per frame)``. Total = mean of
    the two branches. f_G runs once, so both branches share its aux logits. ``terms``: the six detached terms
    (``main``, ``global``, ``local`` with suffix ``_policy`` / ``_random``)."""
    if out.random_branch is None or not out.aux:
        raise ValueError("v2_objective needs a training output with its random branch: "
                         "model.train(); model(clip, random_locations=...)")
    terms: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=target.device)
    for name, o in (("policy", out), ("random", out.random_branch)):
        main = _ce_per_frame(o.step_logits, target) if o.step_logits is not None             else F.cross_entropy(o.logits.float(), target)
        parts = {"main": main, "global": _ce_per_frame(o.aux["global"], target),
                 "local": _ce_per_frame(o.aux["local"], target)}
        total = total + sum(parts.values())
        terms.update({f"{k}_{name}": v.detach() for k, v in parts.items()})
    return total / 2, terms


def random_actions(batch: int, steps: int, device: torch.device | str) -> torch.Tensor:
    """Uniform actions ``(batch, steps, 2)`` in [0, 1) for the random branch (torch's global generator, whose state
    the trainer saves in its checkpoints)."""
    return torch.rand(batch, steps, 2, device=device)


def train_loss(net: nn.Module, model: Any, clip: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """The training objective (:class:`~afnet_edge.models.registry.TrainRecipe` ``loss``): one forward of ``net`` on ``clip``
    with uniformly random actions for the second branch, then :func:`v2_objective`. V2-TSM takes its two clips
    concatenated along time (``T_G`` glance frames, then ``T_L`` focus frames), as its export does. Returns
    ``(loss, logits of the policy branch)``."""
    _trainable(model)
    b = clip.shape[0]
    if isinstance(model, AdaFocusV2TSM):
        t = model.num_frames
        if clip.dim() != 5 or clip.shape[1] != t + model.focus_frames:
            raise ValueError(f"{model.arch} training clips: (B, {t} glance + {model.focus_frames} focus frames, 3, "
                             f"224, 224), got {tuple(clip.shape)}")
        out = net(clip[:, :t], clip[:, t:], random_locations=random_actions(b, 1, clip.device))
    else:
        out = net(clip, random_locations=random_actions(b, model.num_frames, clip.device))
    loss, _ = v2_objective(out, target)
    return loss, out.logits


# ------------------------------------------------------------------------------------------------- registration
def _export_metadata(model: Any) -> dict:
    meta = {"num_navigation": 0, "patch_size": int(model.patch_size),
            "frame_order": bool(getattr(model, "frame_order", False))}
    if isinstance(model, (AdaFocusV2TSM, AdaFocusV1TSM)):
        meta.update(focus_frames=int(model.focus_frames), input_frames=_input_frames(model))
    return meta


def _input_frames(model: Any) -> int:
    """Frames of the exported ``clip``: V2-TSM/V1-TSM take their glance and focus clips concatenated along time."""
    return model.num_frames + getattr(model, "focus_frames", 0) if getattr(model, "tsm", False) else model.num_frames


class ExportForward(nn.Module):
    """What ``afnet-edge export`` traces for an AdaFocus model: ``clip (B, T, 3, 224, 224)`` (temporal order) →
    ``logits (B, classes)`` of the offline eval forward. V2: frame reordering, GRU policy, the sub-pixel crop as
    pads, gathers and a 4-tap blend, last head on the running max; the per-step heads other than the last are dead
    code in the graph and are removed by the exporter's cleanup. V1: actor GRU, ArgMax over the 7×7 grid, the
    integer crop as two GatherElements, GRU classifier (last step). V2-TSM / V1-TSM take their two independently
    sampled clips as one input ``clip (B, T_G + T_L, 3, 224, 224)``: the T_G glance frames, then the T_L focus
    frames (metadata ``input_frames``), split inside the graph; one location per clip. Standard ONNX ops only
    (opset ≥ 14: GRU with ``linear_before_reset``, GatherElements, Pad, Resize for the RN glance, ArgMax for V1)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, (AdaFocusV2, AdaFocusV1, AdaFocusV2TSM, AdaFocusV1TSM)):
            arch = getattr(model, "arch", type(model).__name__)
            raise ValueError(f"{arch} is not an AdaFocus model this family exports")
        if getattr(model, "exit_thresholds", None) is not None:
            raise ValueError("export the offline model: early exit is data-dependent control flow; call "
                             "model.set_exit_thresholds(None) first (use model.stream() for early exit)")
        self.model = model
        self.two_clips = isinstance(model, (AdaFocusV2TSM, AdaFocusV1TSM))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if not self.two_clips:
            return self.model(clip).logits
        t = self.model.num_frames
        if clip.dim() != 5 or clip.shape[1] != _input_frames(self.model):
            raise ValueError(f"{self.model.arch} export input: clip (B, {t} glance + {self.model.focus_frames} focus "
                             f"frames, 3, 224, 224), got {tuple(clip.shape)}")
        return self.model(clip[:, :t], clip[:, t:]).logits


def flops_note(model: Any) -> str:
    """The cost line of ``afnet-edge flops``: what runs on which frames."""
    P = model.patch_size
    if isinstance(model, (AdaFocusV2TSM, AdaFocusV1TSM)):
        return (f"glance on {model.num_frames} frames, local network on a {P}x{P} patch of "
                f"{model.focus_frames} other frames")
    return f"glance on every frame, local network on one {P}x{P} patch per frame"


HOOKS = FamilyHooks(
    family="adafocus",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    read_state_dict=read_state_dict,
    flops_note=flops_note,
    cli_options=(CliOption("--patch-size", "patch_size", "positive_int",
                           "AdaFocus: focus patch size P in pixels (32..224; the releases use 96..192)"),
                 CliOption("--focus-frames", "focus_frames", "positive_int",
                           "AdaFocus V2-TSM/V1-TSM: focus frames T_L (default 1.5 × the glance frames: 12 for 8)")),
    flops_walk=flops_walk,
    export=ExportAdapter(metadata=_export_metadata, wrapper=ExportForward, selects_frames=False,
                         flavours=("portable", "plugin"), input_frames=_input_frames),   # plugin: FocusCrop nodes
    cli_flags=(CliFlag("--no-frame-order", "frame_order", False,
                       "AdaFocusV2: process frames in temporal order, not the official coarse-to-fine order"),),
    train=TrainRecipe(defaults=train_defaults, loss=train_loss, param_groups=train_param_groups,
                      clip_frames=_input_frames, flip=train_flips, short_side=(256, 256),
                      find_unused_parameters=True,       # the ImageNet heads of f_G / f_L get no gradient
                      note="AdaFocusV2 one-stage objective (policy and random-patch branches, aux heads, "
                           "stop-gradient into the policy), per-network lr multipliers"),
)


def _one_clip(name: str, focus_frames: int | None) -> None:
    # The family's --focus-frames option reaches every AdaFocus model; only the TSM variants take a second clip.
    if focus_frames is not None:
        raise ValueError(f"focus_frames={focus_frames!r}: {name} takes one clip (only adafocus_v2_tsm / "
                         f"adafocus_v1_tsm take focus frames besides the glance frames)")


def _no_reordering(name: str, frame_order: bool) -> None:
    # The family's --no-frame-order flag reaches every AdaFocus model; only V2 (ActivityNet family) reorders.
    if frame_order:
        raise ValueError(f"frame_order=True: {name} processes frames in temporal order (only adafocus_v2_mn2/rn "
                         f"use the coarse-to-fine order)")


@register_model("adafocus_v2_mn2", HOOKS, default_frames=16, official_arch="AdaFocusV2-MN2",
                bench=BenchDefaults(skips_frames=False, frames=(16,), label="AdaFocusV2-MN2/RN",
                                   operating_point=OperatingPoint(16, options=(("patch_size", 128),),
                                                                  source="AdaFocusV2 Table 4: 16 frames, P = 128")))
def adafocus_v2_mn2(num_classes: int = 200, num_frames: int = 16, patch_size: int = 128, dropout: float = 0.2,
                    frame_order: bool = True, focus_frames: int | None = None) -> AdaFocusV2:
    """AdaFocusV2: MobileNetV2 glance at 224², GRU policy, sub-pixel patch, ResNet-50 focus, per-step heads."""
    _one_clip("adafocus_v2_mn2", focus_frames)
    return AdaFocusV2("adafocus_v2_mn2", "mn2", num_classes, num_frames, patch_size, dropout=dropout,
                      frame_order=frame_order)


@register_model("adafocus_v2_rn", HOOKS, default_frames=16, official_arch="AdaFocusV2-RN",
                bench=BenchDefaults(skips_frames=False, frames=(16,), label="AdaFocusV2-RN/RN"))
def adafocus_v2_rn(num_classes: int = 200, num_frames: int = 16, patch_size: int = 128, dropout: float = 0.2,
                   frame_order: bool = True, focus_frames: int | None = None) -> AdaFocusV2:
    """AdaFocusV2: ResNet-50 glance at 96², GRU policy, sub-pixel patch, ResNet-50 focus, per-step heads."""
    _one_clip("adafocus_v2_rn", focus_frames)
    return AdaFocusV2("adafocus_v2_rn", "rn", num_classes, num_frames, patch_size, dropout=dropout,
                      frame_order=frame_order)


@register_model("adafocus_v2_tsm", HOOKS, default_frames=8, official_arch="AdaFocusV2-TSM",
                bench=BenchDefaults(skips_frames=False, frames=(8,), label="AdaFocusV2-TSM"))
def adafocus_v2_tsm(num_classes: int = 174, num_frames: int = 8, focus_frames: int | None = None,
                    patch_size: int = 144, dropout: float = 0.5, frame_order: bool = False) -> AdaFocusV2TSM:
    """AdaFocusV2-TSM: TSM-MobileNetV2 on 8 glance frames, one patch per clip on 12 focus frames, TSM-ResNet-50."""
    _no_reordering("adafocus_v2_tsm", frame_order)
    return AdaFocusV2TSM("adafocus_v2_tsm", num_classes, num_frames, focus_frames, patch_size, dropout)


@register_model("adafocus_v1", HOOKS, default_frames=16, official_arch="AdaFocus",
                bench=BenchDefaults(skips_frames=False, frames=(16,), label="AdaFocus-V1"))
def adafocus_v1(num_classes: int = 200, num_frames: int = 16, patch_size: int = 128,
                dropout: float = 0.2, frame_order: bool = False, focus_frames: int | None = None) -> AdaFocusV1:
    """AdaFocus V1 (inference): MobileNetV2 glance, 7×7-grid actor (arg-max), integer crop, GRU classifier."""
    _one_clip("adafocus_v1", focus_frames)
    _no_reordering("adafocus_v1", frame_order)
    return AdaFocusV1("adafocus_v1", num_classes, num_frames, patch_size, dropout)


@register_model("adafocus_v1_tsm", HOOKS, default_frames=8, official_arch="AdaFocus-TSM",
                bench=BenchDefaults(skips_frames=False, frames=(8,), label="AdaFocus-V1-TSM"))
def adafocus_v1_tsm(num_classes: int = 174, num_frames: int = 8, focus_frames: int | None = None,
                    patch_size: int = 144, dropout: float = 0.5, frame_order: bool = False) -> AdaFocusV1TSM:
    """AdaFocus V1-TSM (inference): TSM-MobileNetV2 glance on 8 frames, one integer patch per clip, TSM-ResNet-50."""
    _no_reordering("adafocus_v1_tsm", frame_order)
    return AdaFocusV1TSM("adafocus_v1_tsm", num_classes, num_frames, focus_frames, patch_size, dropout)
