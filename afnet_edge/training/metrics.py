"""Loss terms and metrics of the official training and evaluation (spec §7)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch


def selection_ratios(masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``ratio_l`` = mean of mask l over all frames of the batch, one 0-dim tensor per navigation module.

    ``masks``: what ``model(clip).masks`` returns, one ``(B, T)`` tensor per module; in training mode these are the
    straight-through Gumbel masks, so the ratios carry gradients to the navigation modules.
    """
    return [m.float().mean() for m in masks]


def ratio_loss(masks: Sequence[torch.Tensor], target_ratio: float, lambda_rt: float,
               reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ratio term and the real ratio of a batch (spec §7).

    Returns ``(loss_rt, real_ratio)`` with ``loss_rt = lambda_rt · (1/L) · Σ_l (target_ratio − ratio_l)²`` and
    ``real_ratio = (1/L) · Σ_l ratio_l`` (0-dim tensors). A model without navigation (dense baseline, ``L = 0``) gives
    ``loss_rt = 0`` and ``real_ratio = 1`` (every frame is computed).

    ``reduce``: applied to the ``(L,)`` ratios before the loss; multi-process training passes the differentiable
    mean over processes (:func:`~.distributed.all_mean`) so that ``ratio_l`` covers the frames of the global batch.
    """
    if len(masks) == 0:
        return torch.zeros(()), torch.ones(())
    ratios = torch.stack(selection_ratios(masks))
    if reduce is not None:
        ratios = reduce(ratios)
    loss = lambda_rt * ((target_ratio - ratios) ** 2).mean()
    return loss, ratios.mean().detach()


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of samples whose label is among the ``k`` highest logits, for each ``k`` in ``ks``.

    ``logits`` ``(B, C)``, ``target`` int64 ``(B,)``. ``k`` larger than C counts every sample as correct (the label is
    always among all C classes). Ties are broken as ``torch.topk`` does.
    """
    if logits.dim() != 2 or target.dim() != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(f"logits must be (B, C) and target (B,), got {tuple(logits.shape)} and {tuple(target.shape)}")
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices  # (B, maxk), best first
    hit = pred == target.view(-1, 1)
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


def accuracy(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k accuracies in percent (as the official ``accuracy``), one per ``k`` in ``ks``."""
    n = max(int(target.shape[0]), 1)
    return [100.0 * c / n for c in topk_correct(logits, target, ks)]


def check_targets(target: torch.Tensor, num_classes: int) -> None:
    """Raise ``ValueError`` when a label is outside ``[0, num_classes)`` (cross-entropy would fail obscurely)."""
    if target.numel() == 0:
        return
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"label {bad} is out of range: the model has num_classes={num_classes}, labels must be in "
                         f"[0, {num_classes - 1}] (pass --classes to match the data)")
