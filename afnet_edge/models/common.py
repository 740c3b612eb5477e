"""What every video model of afnet_edge shares: the forward contract, input checks and inference configuration.

Forward contract (all models)::

    out = model(clip)                 # clip (B, T, 3, H, W), or the official (B, 3T, H, W) layout
    out.logits                        # (B, num_classes): per-frame classifier, mean over the T frames (spec §6)
    out.masks                         # list of (B, T) 0/1 tensors, one per navigation module, in model order
    model(clip, masks=[...])          # navigation overridden by given masks (same format)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..kernels import BACKENDS, current_ops, ops
from ..layers.af_stage import PLANS, ForwardContext
from ..layers.navigation import SELECTIONS

EXECUTIONS = ("masked", "compact")
MIN_SIZE = 32


@dataclass
class VideoOutput:
    """``logits`` ``(B, num_classes)``; ``masks``: one ``(B, T)`` 0/1 tensor per navigation module."""

    logits: torch.Tensor
    masks: list = field(default_factory=list)


def init_resnet_weights(module: nn.Module) -> None:
    """The ResNet initialisation of the official AFNet and TSM code: He normal (fan-out, ReLU) for every conv, ones
    and zeros for every BatchNorm's weight and bias, in ``module.modules()`` order."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)


class VideoClassifier(nn.Module):
    """Base class: input layout handling, checks, ``configure`` and the per-frame head + temporal mean.

    Subclasses implement ``forward_frames(frames (N, 3, H, W), ctx) -> per-frame logits (N, num_classes)`` and set
    ``num_navigation`` (0 for dense baselines).
    """

    arch: str = ""
    num_navigation: int = 0

    def __init__(self, num_classes: int, num_frames: int):
        super().__init__()
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.execution = "compact"
        self.selection = "threshold"
        self.ratio = 0.5
        self.kernels = "auto"
        self.plan = "eager"
        self.temperature = 0.01  # τ used by gumbel selection; the training loop anneals it (spec §7)

    # ----------------------------------------------------------------------------------------------- configuration
    def configure(self, execution: str | None = None, selection: str | None = None, ratio: float | None = None,
                  kernels: str | None = None, temperature: float | None = None,
                  plan: str | None = None) -> "VideoClassifier":
        """Set the inference configuration (returns ``self``).

        execution: ``"compact"`` (default: focal bodies only on selected frames) or ``"masked"`` (official).
        selection: ``"threshold"`` (default, deterministic), ``"gumbel"`` (official stochastic) or ``"topk"``.
        ratio: fraction of frames per clip kept by ``topk`` (k = ceil(ratio·T)), in (0, 1].
        kernels: ``"auto"``, ``"torch"`` or ``"ext"`` — implementation of the fused ops for ``compact``.
        temperature: Gumbel-softmax τ > 0 (does not change hard decisions).
        plan: how ``compact`` runs the focal chain of an AF stage: ``"eager"`` (default: every block writes every
        frame), ``"lazy"`` (pending constant chains: only selected rows are written; bit-identical to eager) or
        ``"fused"`` (lazy + gather/scatter fused into the focal bottlenecks' 1×1 convolutions, BN folded: within
        rounding). Ignored by ``masked`` execution and by models without AF stages.
        In training mode the model always uses masked execution with Gumbel selection (straight-through).
        """
        if execution is not None:
            if execution not in EXECUTIONS:
                raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
            self.execution = execution
        if selection is not None:
            if selection not in SELECTIONS:
                raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
            self.selection = selection
        if ratio is not None:
            self.ratio = check_ratio(ratio)
        if kernels is not None:
            if kernels not in BACKENDS:
                raise ValueError(f"kernels must be one of {BACKENDS}, got {kernels!r}")
            ops(kernels)  # fails now, not in the middle of a forward, if 'ext' is not built
            self.kernels = kernels
        if temperature is not None:
            if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
                raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
            self.temperature = float(temperature)
        if plan is not None:
            if plan not in PLANS:
                raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
            self.plan = plan
        return self

    def config(self) -> dict:
        """The current inference configuration as a dict."""
        return {"execution": self.execution, "selection": self.selection, "ratio": self.ratio,
                "kernels": self.kernels, "temperature": self.temperature, "plan": self.plan}

    # ------------------------------------------------------------------------------------------------------ input
    def frames_from_clip(self, clip: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Validate ``clip`` and return frames ``(B·T, 3, H, W)`` and B. Never syncs the device."""
        T = self.num_frames
        if not isinstance(clip, torch.Tensor):
            raise TypeError(f"clip must be a torch.Tensor of shape (B, T, 3, H, W), got {type(clip).__name__}")
        if not clip.is_floating_point():
            raise TypeError(f"clip must be a floating-point tensor (normalised pixels), got dtype {clip.dtype}")
        p = next(self.parameters())
        if clip.dtype != p.dtype:
            raise TypeError(f"clip dtype {clip.dtype} does not match the model's parameters ({p.dtype}); "
                            f"convert one of them")
        if clip.device != p.device:
            raise ValueError(f"clip is on {clip.device} but the model is on {p.device}")
        if clip.dim() == 5:
            b, t, c, h, w = clip.shape
            if c != 3:
                raise ValueError(f"clip must have shape (B, T, 3, H, W); got {tuple(clip.shape)} (3 colour channels "
                                 f"expected at dim 2)")
            if t != T:
                raise ValueError(f"clip has {t} frames but the model was built for num_frames={T}; "
                                 f"expected shape (B, {T}, 3, H, W), got {tuple(clip.shape)}")
            frames = clip.reshape(b * t, 3, h, w)
        elif clip.dim() == 4:
            b, c, h, w = clip.shape
            if c == 3 * T:
                frames = clip.reshape(b * T, 3, h, w)
            elif c == 3:
                if b % T != 0:
                    raise ValueError(f"frames input (N, 3, H, W) must hold whole clips: N={b} is not a multiple of "
                                     f"num_frames={T}")
                frames, b = clip, b // T
            else:
                raise ValueError(f"clip of rank 4 must be (B, 3·T, H, W) = (B, {3 * T}, H, W) or frames "
                                 f"(B·T, 3, H, W); got {tuple(clip.shape)}")
        else:
            raise ValueError(f"clip must have rank 5 (B, T, 3, H, W) or 4 (B, 3·T, H, W); got shape "
                             f"{tuple(clip.shape)}")
        if b == 0:
            raise ValueError("clip has batch size 0; expected at least one clip")
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"clip frames are {h}×{w}; H and W must be at least {MIN_SIZE} (224 is the trained size)")
        return frames.contiguous(), b

    def _check_masks(self, masks, batch: int) -> list | None:
        if masks is None:
            return None
        if not isinstance(masks, (list, tuple)):
            raise TypeError(f"masks must be a list of {self.num_navigation} tensors of shape (B, T)")
        if len(masks) != self.num_navigation:
            raise ValueError(f"masks must hold one (B, T) tensor per navigation module: expected "
                             f"{self.num_navigation}, got {len(masks)}")
        out = []
        for i, m in enumerate(masks):
            if not isinstance(m, torch.Tensor) or tuple(m.shape) != (batch, self.num_frames):
                shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise ValueError(f"masks[{i}] must have shape (B, T) = ({batch}, {self.num_frames}), got {shape}")
            if not (torch.compiler.is_compiling() or torch.jit.is_tracing()) and m.device.type == "cpu":
                if not bool(((m == 0) | (m == 1)).all()):
                    raise ValueError(f"masks[{i}] must contain only 0 and 1")
            out.append(m)
        return out

    # ---------------------------------------------------------------------------------------------------- forward
    def make_context(self, masks=None, generator: torch.Generator | None = None, *, execution: str | None = None,
                     selection: str | None = None, ratio: float | None = None,
                     training: bool | None = None, plan: str | None = None) -> ForwardContext:
        """The :class:`ForwardContext` of one forward pass under the current configuration (``execution``,
        ``selection``, ``ratio``, ``training``, ``plan`` override it for this pass only, unchecked: callers such as export pass
        fixed values).

        The fused ops are the ones set with :func:`afnet_edge.kernels.use_ops` when a ``with use_ops(...)`` block is
        active, else those of the ``kernels`` configuration."""
        impl = current_ops()
        return ForwardContext(num_frames=self.num_frames, execution=execution or self.execution,
                              selection=selection or self.selection, ratio=self.ratio if ratio is None else ratio,
                              tau=self.temperature, ops=ops(self.kernels) if impl is None else impl,
                              training=self.training if training is None else training, masks_in=masks,
                              generator=generator, plan=plan or self.plan)

    def forward(self, clip: torch.Tensor, masks=None, generator: torch.Generator | None = None) -> VideoOutput:
        frames, b = self.frames_from_clip(clip)
        ctx = self.make_context(self._check_masks(masks, b), generator)
        per_frame = self.forward_frames(frames, ctx)
        logits = per_frame.view(b, self.num_frames, -1).mean(dim=1)
        masks_out = ctx.masks_out if self.training else [m.detach() for m in ctx.masks_out]  # decisions, not graphs
        return VideoOutput(logits=logits, masks=masks_out)

    def forward_frames(self, frames: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        raise NotImplementedError
