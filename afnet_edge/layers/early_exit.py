"""Training-free conditional early exit over per-step logits (AdaFocusV2+, spec ``adafocus.md`` §2.8).

A model with per-step heads gives logits L_t after each processed frame t (in its processing order). The clip exits
after the first step t whose **maximum raw logit** (no softmax: the release's default ``confidence`` criterion)
reaches the threshold τ_t; the last step always accepts. Thresholds are calibrated on labelled (training-set) logits
for a budget parameter q: target exit proportions p_k ∝ q^k (k = 1..T, summing to 1); at step k, among the samples
that have not exited yet, τ_k is the confidence of the ⌊n·p_k⌋-th most confident one (n = all samples); when fewer
remain, or ⌊n·p_k⌋ = 0, nobody exits at step k (τ_k = +inf). The official sweep is q = 0.5, 0.6, …, 3.9.

Exiting after k + 1 of T frames costs (k + 1)/T of the clip's full cost (§2.8's accounting).
"""
from __future__ import annotations

import math

import torch

#: the official budget sweep q = 0.5 … 3.9 in steps of 0.1 (§2.8)
OFFICIAL_Q = tuple(round(0.5 + 0.1 * i, 1) for i in range(35))


def _check_step_logits(step_logits: torch.Tensor, name: str = "step_logits") -> None:
    if not isinstance(step_logits, torch.Tensor) or step_logits.dim() != 3 or not step_logits.is_floating_point():
        shape = tuple(step_logits.shape) if isinstance(step_logits, torch.Tensor) else type(step_logits).__name__
        raise ValueError(f"{name} must be a floating-point tensor (N, T, classes) of per-step logits, got {shape}")


def check_thresholds(thresholds, steps: int, name: str = "thresholds") -> torch.Tensor:
    """``thresholds`` as a float tensor ``(T,)`` (a sequence or tensor of T numbers; ±inf allowed, no NaN; None in
    a sequence = +inf, "never exits at this step", as the JSON files of ``afnet-edge calibrate-exit`` store it)."""
    if isinstance(thresholds, (list, tuple)):
        thresholds = [math.inf if v is None else v for v in thresholds]
    try:
        t = torch.as_tensor(thresholds, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be {steps} numbers (one per step), got {type(thresholds).__name__}") from None
    if t.shape != (steps,) or bool(torch.isnan(t).any()):
        raise ValueError(f"{name} must be {steps} numbers without NaN (one per step), got shape {tuple(t.shape)}")
    return t


def exit_proportions(steps: int, q: float) -> torch.Tensor:
    """Target exit proportions ``(T,)`` float64: p_k = q^k / Σ_j q^j, k = 1..T."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not q > 0 or not math.isfinite(q):
        raise ValueError(f"q must be a positive number (the official sweep is 0.5..3.9), got {q!r}")
    p = torch.tensor([float(q) ** k for k in range(1, steps + 1)], dtype=torch.float64)
    return p / p.sum()


def confidence(step_logits: torch.Tensor) -> torch.Tensor:
    """The exit criterion's confidence ``(N, T)``: the maximum raw logit of each step."""
    return step_logits.max(dim=-1).values


def exit_steps(step_logits: torch.Tensor, thresholds) -> torch.Tensor:
    """Step index ``(N,)`` (int64, 0-based) at which each clip exits: the first t with max_c L_t ≥ τ_t, else T − 1."""
    _check_step_logits(step_logits)
    T = step_logits.shape[1]
    thr = check_thresholds(thresholds, T).to(step_logits.device)
    hit = confidence(step_logits).float() >= thr
    hit[:, -1] = True
    return hit.int().argmax(dim=1)           # argmax returns the first maximal index


def exit_logits(step_logits: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """The logits ``(N, classes)`` each clip exits with (``steps`` from :func:`exit_steps`)."""
    return step_logits[torch.arange(step_logits.shape[0], device=step_logits.device), steps]


def calibrate_thresholds(step_logits: torch.Tensor, q: float) -> torch.Tensor:
    """Thresholds ``(T,)`` for budget ``q`` from calibration logits ``(N, T, classes)`` (the rule above)."""
    _check_step_logits(step_logits)
    n, T, _ = step_logits.shape
    if n == 0:
        raise ValueError("step_logits must hold at least one calibration sample")
    p = exit_proportions(T, q)
    conf = confidence(step_logits).float().cpu()
    remaining = torch.ones(n, dtype=torch.bool)
    thr = torch.full((T,), math.inf)
    for k in range(T - 1):
        want = math.floor(n * float(p[k]))
        order = torch.argsort(conf[:, k], descending=True, stable=True)
        candidates = order[remaining[order]]
        if want >= 1 and candidates.numel() >= want:
            thr[k] = conf[candidates[want - 1], k]
        remaining &= ~(conf[:, k] >= thr[k])
    thr[T - 1] = -math.inf
    return thr


def summarize(step_logits: torch.Tensor, labels: torch.Tensor | None, thresholds) -> dict:
    """Exit statistics of logits ``(N, T, classes)`` under ``thresholds``: ``avg_frames`` (mean frames used),
    ``frame_fraction`` (avg_frames / T), ``exit_histogram`` (clips exiting after 1..T frames) and, with ``labels``,
    ``top1`` (percent) of the exit logits."""
    steps = exit_steps(step_logits, thresholds)
    T = step_logits.shape[1]
    out = {"avg_frames": float((steps + 1).float().mean()), "frame_fraction": float((steps + 1).float().mean()) / T,
           "exit_histogram": torch.bincount(steps.cpu(), minlength=T).tolist()}
    if labels is not None:
        pred = exit_logits(step_logits, steps).argmax(dim=1).cpu()
        out["top1"] = 100.0 * float((pred == labels.cpu()).float().mean())
    return out


def thresholds_to_json(thresholds: torch.Tensor) -> list:
    """Thresholds as a JSON list: finite values as numbers, +inf (never exit at this step) and the always-accepting
    last step as null (:func:`check_thresholds` reads it back)."""
    t = thresholds.tolist()
    return [v if math.isfinite(v) and i < len(t) - 1 else None for i, v in enumerate(t)]
