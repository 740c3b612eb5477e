"""Training the navigation by per-frame values (local-expectation estimator) instead of straight-through Gumbel.

A deviation from the official recipe (``--nav-estimator local``), for settings where the official estimator does not
learn *which* frames to send to the focal branch (the demo model on the synthetic benchmark: see
``benchmarks/results/cpu/nav_selection_trials/README.md``).

Each navigation module ``l`` selects frame ``t`` with probability ``p_lt = softmax(logits_lt)[select]``; training
draws the masks from these probabilities (the official hard Gumbel sample is exactly such a Bernoulli draw). The
expected loss ``E[CE]`` has the derivative ``E[CE | frame t kept] − E[CE | frame t skipped]`` with respect to a
selection probability of frame ``t`` shared by all modules. For the batch's sampled masks, :func:`frame_values`
evaluates it for ``k`` random frame positions: one extra forward pass (no gradient, BatchNorm in eval mode) with
frame ``t`` sent to the focal branch in every module, one with it skipped in every module, all ``2k`` variants in one
batch. The difference ``Δ_bt`` (loss with the frame kept − loss with it skipped; negative when the frame helps) is
then the credit of every module's ``p_lt`` (exact for one decision per frame shared by the modules, a shared credit
otherwise):

    loss_nav = scale · (1/L) · Σ_l mean_b Σ_t Δ̂_lbt · p_lt
    Δ̂_lbt = (Δ_bt − Σ_t w_lbt Δ_bt / Σ_t w_lbt) / std(Δ − mean_t Δ),   w_lbt = p_lt (1 − p_lt)  (k positions)

Centring per clip keeps only the *order* of the frames' values, and weighting the centre by ``w`` (the derivative of
``p`` w.r.t. the select − skip margin, treated as a constant) makes the term's first-order pull on a module's
mean margin zero: the ratio term alone decides how many frames are kept (it is applied to the expected ratio
``mean p_l``). Dividing by the batch's standard deviation keeps the step size independent of the loss scale, which
changes as the network trains. The network trains on the cross-entropy
of the sampled masks only: the masks carry no straight-through gradient and the navigation reads its input detached
(:class:`~afnet_edge.layers.navigation.record_navigation`), so neither loss reaches the other's parameters.

Together with tied navigation positions (:func:`~afnet_edge.layers.navigation.tie_navigation_positions`) — without
which each module learns per-position biases that reach the target ratio without looking at content — this makes the
selections follow content. Started from a network trained with every frame (the demo model's recipe: 7 epochs at ratio
1, standing in for the release's ImageNet start) the navigation preferred informative frames to distractors in every
run of three seeds (benchmarks/results/cpu/demo_model_lambda8.md), but the ratio term (on the expected ratio) did not
always hold the target against the value term: in some runs the real ratio ended far above the target (holding the
ratio, below, fixes that; then the preference held at target 0.5 but not at 0.25:
benchmarks/results/cpu/demo_model.md). From scratch with a short warm-up it did not prefer informative frames
(one-seed pilot: benchmarks/results/cpu/demo_model_local_pilot.md, more distractors kept at ratio 0.25).

Holding the ratio (``TrainConfig.hold_ratio``, ``--hold-ratio RATE``, a further deviation): the value term is centred
only to first order, and the navigation's content-dependent weights still move the expected ratio, so the ratio term
trades the target against the values. With ``hold_ratio`` > 0, after every optimiser step each module's select bias
(every position alike) moves by ``RATE`` times the shift that makes the batch's expected ratio the target
(:func:`ratio_bias_shifts`): the ratio follows the target schedule whatever the value term does, which then only
orders the frames. ``RATE`` < 1 averages the batch-to-batch noise of the shift over about ``1/RATE`` batches.

Natural gradient (``TrainConfig.nav_natural_gradient``, ``--nav-natural-gradient``, a further deviation): the
derivative of ``loss_nav`` w.r.t. a margin carries the factor ``p (1 − p)``, so a frame whose selection has saturated
(``p`` near 0 or 1) stops learning whatever its value — at a low target ratio, held by the biases, most informative
frames end far below the threshold and stay there. Preconditioning by the inverse Fisher information of the Bernoulli
selection in its logit, ``1 / p (1 − p)``, removes the factor: every frame's margin moves by its (centred) value
whatever ``p`` is, and the held biases set how many frames pass. Undamped, the loss would be linear in the margins and
unbounded below (the margins grow without end); the Fisher information is floored at ``ε`` =
:data:`NATURAL_DAMPING`, so the full step applies while ``p`` is within about [0.01, 0.99] and fades as before beyond.
The centring uses the same per-frame factors, so the term still has no first-order pull on a module's mean margin.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

NAV_ESTIMATORS = ("straight_through", "local")
#: Damping ``ε`` of the natural-gradient value loss: the Fisher information ``p (1 − p)`` is floored at ``ε``, so
#: margins move by their full value while ``p`` is within about [0.01, 0.99] and stop growing beyond (|margin| ≳ 4.6).
NATURAL_DAMPING = 0.01


def frame_values(model: torch.nn.Module, clip: torch.Tensor, target: torch.Tensor, masks: Sequence[torch.Tensor],
                 positions: Sequence[int]) -> torch.Tensor:
    """Loss differences ``Δ`` ``(B, k)``: per-clip cross-entropy with frame ``positions[j]`` sent to the focal branch
    in every navigation module minus the same with it skipped in every module, the other frames as in ``masks``
    (the batch's sampled masks, ``L`` tensors ``(B, T)``). One forward pass of ``2k·B`` clips, no gradient, the model
    in eval mode (BatchNorm running statistics, no dropout) and restored afterwards."""
    k = len(positions)
    if k == 0:
        raise ValueError("positions: expected at least one frame position")
    b, t = masks[0].shape
    if any(not 0 <= int(p) < t for p in positions):
        raise ValueError(f"positions: expected frame positions in [0, {t}), got {list(positions)}")
    modes = [m.training for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            variants = []
            for l_mask in masks:
                base = l_mask.detach().float()
                per_pos = []
                for p in positions:
                    col = torch.tensor([int(p)], device=base.device)
                    per_pos += [base.index_fill(1, col, 0.0), base.index_fill(1, col, 1.0)]
                variants.append(torch.cat(per_pos))                       # (2k·B, T), blocks (p0 skip, p0 keep, ...)
            reps = (2 * k,) + (1,) * (clip.dim() - 1)
            out = model(clip.repeat(*reps), masks=variants)
            ce = F.cross_entropy(out.logits.float(), target.repeat(2 * k), reduction="none").view(k, 2, b)
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode
    return (ce[:, 1] - ce[:, 0]).t().contiguous()


def value_loss(logits: Sequence[torch.Tensor], values: torch.Tensor, positions: Sequence[int],
               scale: float, natural: bool = False) -> torch.Tensor:
    """``loss_nav`` of the module docstring from the recorded navigation logits (``L`` tensors ``(B, T, 2)``) and
    the values ``(B, k)`` of frame ``positions`` (:func:`frame_values`). ``natural``: the damped natural-gradient
    form, whose derivative w.r.t. a margin is the centred value times ``min(1, p (1 − p) / ε)`` instead of times
    ``p (1 − p)`` (:data:`NATURAL_DAMPING`; centred with those weights)."""
    v = values.float()
    sd = (v - v.mean(1, keepdim=True)).std() if v.numel() > 1 else v.new_zeros(())
    idx = torch.as_tensor([int(p) for p in positions], device=v.device)
    terms = []
    for z in logits:
        p = F.softmax(z.float(), -1)[..., 1].index_select(1, idx)           # (B, k)
        w = (p * (1 - p)).detach()
        if natural:   # preconditioned by the damped inverse Fisher information 1 / max(p (1 − p), ε)
            p = p / w.clamp_min(NATURAL_DAMPING)
            w = (w / NATURAL_DAMPING).clamp_max(1.0)
        # centred per clip with the weights dp/dmargin: the term's first-order pull on the module's mean margin is 0
        vl = v - (v * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1e-12) if v.shape[1] > 1 else v
        terms.append((p * vl).sum(1).mean())
    return scale * torch.stack(terms).mean() / (sd + 1e-6)


def expected_ratios(logits: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per module, the selection probabilities ``p_l`` ``(B, T)``: their mean is the expected ratio the ratio term
    of the local estimator is applied to."""
    return [F.softmax(z.float(), -1)[..., 1] for z in logits]


def ratio_bias_shifts(logits: Sequence[torch.Tensor], target_ratio: float, iterations: int = 48) -> torch.Tensor:
    """Per module, the shift ``δ_l`` of the select − skip margin that makes the batch's expected ratio exactly the
    target: ``mean_bt sigmoid(margin_lbt + δ_l) = target_ratio`` (``L`` tensors ``(B, T, 2)`` of navigation logits;
    returns ``(L,)``, solved by bisection on [−40, 40], where the mean is increasing in ``δ``). Used to hold the ratio
    (``TrainConfig.hold_ratio``): adding ``δ_l`` to module ``l``'s select bias moves every margin by ``δ_l``."""
    if not 0.0 < target_ratio < 1.0:
        raise ValueError(f"target_ratio: expected a ratio in (0, 1), got {target_ratio!r}")
    if not logits:
        raise ValueError("logits: expected the logits of at least one navigation module")
    with torch.no_grad():
        margins = torch.stack([(z[..., 1] - z[..., 0]).float().flatten() for z in logits])   # (L, B·T)
        lo = margins.new_full((margins.shape[0],), -40.0)
        hi = margins.new_full((margins.shape[0],), 40.0)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            above = torch.sigmoid(margins + mid[:, None]).mean(1) > target_ratio
            hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
        return (lo + hi) / 2
