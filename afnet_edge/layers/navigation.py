"""Navigation module and frame-selection rules (spec §4).

A navigation module reads the ample-branch tensor of all ``N = B·T`` frames and produces two logits per frame
("skip", "select"). The selection rules turn logits into 0/1 masks:

* ``gumbel``    — the official stochastic sampler (Gumbel noise, hard one-hot, straight-through gradient);
* ``threshold`` — deterministic: select iff select-logit > skip-logit (the median of the official sampler);
* ``topk``      — exactly ``k = ceil(ratio·T)`` frames per clip with the largest select − skip margin.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SELECTIONS = ("threshold", "gumbel", "topk")
GUMBEL_EPS = 1e-10


class Navigation(nn.Module):
    """Per-frame skip/select logits from an ample tensor ``(N, C, H, W)`` → ``(B, T, 2)``.

    Parameter names match the official ``navigation`` module: ``conv_pool`` (1×1, C→2, no bias), ``bn``,
    ``conv_gs`` (grouped 1×1, 2T→2T with bias, groups=T: an independent 2×2 map per frame position).
    """

    def __init__(self, in_channels: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.conv_pool = nn.Conv2d(in_channels, 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.conv_gs = nn.Conv2d(2 * num_frames, 2 * num_frames, kernel_size=1, groups=num_frames, bias=True)
        with torch.no_grad():
            self.conv_gs.bias[0::2] = 1.0   # "skip"
            self.conv_gs.bias[1::2] = 10.0  # "select": initially every frame is selected

        #: set by :func:`record_navigation` (training with the local-expectation estimator): the list this
        #: module's logits are appended to; the module then reads a detached input and returns detached logits.
        self.record: list | None = None
        #: set with ``record``: the list this module appends itself to, in call order (which module made which logits)
        self.record_sources: list | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        t = self.num_frames
        if self.record is not None:
            x = x.detach()
        z = x.mean(dim=(2, 3), keepdim=True)
        z = F.relu(self.bn(self.conv_pool(z)))
        z = self.conv_gs(z.reshape(n // t, 2 * t, 1, 1)).reshape(n // t, t, 2)
        if self.record is None:
            return z
        self.record.append(z)
        if self.record_sources is not None:
            self.record_sources.append(self)
        return z.detach()


class record_navigation:
    """Context manager: every :class:`Navigation` of ``model`` appends its ``(B, T, 2)`` logits, with their
    gradient, to the list it yields, while the forward pass itself sees them detached (the masks carry no
    straight-through gradient) and the modules read their input detached (a loss on the recorded logits does not
    reach the network through them). Used by the local-expectation training of the navigation
    (:mod:`afnet_edge.training.nav_values`). After the block, ``sources`` holds the module of each recorded tensor."""

    def __init__(self, model: nn.Module):
        self.modules = [m for m in model.modules() if isinstance(m, Navigation)]
        self.logits: list[torch.Tensor] = []
        self.sources: list[Navigation] = []

    def __enter__(self) -> list[torch.Tensor]:
        for m in self.modules:
            m.record, m.record_sources = self.logits, self.sources
        return self.logits

    def __exit__(self, *exc) -> None:
        for m in self.modules:
            m.record = m.record_sources = None


def tie_navigation_positions(model: nn.Module) -> int:
    """Make every navigation module's per-position parameters equal across frame positions (in place): the
    ``2 × 2`` map and bias of ``conv_gs`` become their mean over the ``T`` positions, so a selection can depend only
    on the frame's content, not on where it sits in the clip. Applied after every optimiser step, training runs
    projected SGD on the tied parameters; the checkpoint layout (``conv_gs`` of ``2T`` rows) is unchanged. Returns
    the number of modules changed."""
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Navigation):
                t = m.num_frames
                w = m.conv_gs.weight.view(t, 2, 2)
                w.copy_(w.mean(0, keepdim=True).expand_as(w))
                b = m.conv_gs.bias
                assert b is not None  # conv_gs is built with a bias
                bv = b.view(t, 2)
                bv.copy_(bv.mean(0, keepdim=True).expand_as(bv))
                n += 1
    return n


def gumbel_select(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Official hard Gumbel-softmax on ``(B, T, 2)`` logits → straight-through mask ``(B, T)``.

    The noise is drawn exactly like the official ``GumbleSoftmax`` (uniforms of the logits' shape, ε = 1e-10),
    so replaying the same generator state reproduces an official CPU run.
    """
    # Float32 noise and softmax even under AMP: in float16, ε = 1e-10 underflows and a uniform draw of exactly 0
    # would force the decision. In float32 (the official dtype) the draws are the official ones.
    lf = logits.float()
    u = torch.empty_like(lf).uniform_(generator=generator)
    g = -torch.log(GUMBEL_EPS - torch.log(u + GUMBEL_EPS))
    y = F.softmax((lf + g) / tau, dim=-1)
    hard = F.one_hot(y.argmax(dim=-1), 2).to(y.dtype)
    return ((hard - y).detach() + y)[..., 1].to(logits.dtype)


def threshold_select(logits: torch.Tensor) -> torch.Tensor:
    """Deterministic mask ``(B, T)``: 1 where select-logit > skip-logit."""
    return (logits[..., 1] > logits[..., 0]).to(logits.dtype)


def set_navigation_gap(model: nn.Module, gap: float) -> int:
    """Start every navigation module of ``model`` with its "select" bias ``gap`` above its "skip" bias (official
    initialisation: 10 − 1 = 9, i.e. P(select) = sigmoid(9) ≈ 0.9999). Returns the number of modules changed.

    Why: at the official gap the straight-through gradient of the ratio loss is about sigmoid'(9) ≈ 1e-4, so leaving
    the all-selected start takes tens of thousands of iterations; short runs (the synthetic benchmark, the demo model)
    start at gap 3 (P(select) ≈ 0.95) instead."""
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Navigation):
                bias = m.conv_gs.bias
                assert bias is not None  # conv_gs is built with a bias
                bias[1::2] = bias[0::2] + float(gap)
                n += 1
    return n
