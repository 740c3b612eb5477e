"""The official training schedules (spec §7): target ratio per epoch, Gumbel temperature per iteration, step LR.

Every schedule here is a pure function of the position in training, so a run resumed from a checkpoint continues
with exactly the values an uninterrupted run would use. (The official ``adjust_temperature`` mutates ``args.temp``
and does nothing once ``epoch >= t_end``; a run resumed at such an epoch therefore trains with the command-line
default ``--temp 1`` instead of the annealed value. :func:`temperature_at` returns the annealed value instead.)
"""
from __future__ import annotations

import math
from typing import Sequence


def _check_epoch(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def adjust_ratio(epoch: int, rt: float, rt_begin: int, rt_end: int) -> float:
    """Target selection ratio ``rt_e`` for ``epoch`` (official ``adjust_ratio``, spec §7).

    ``epoch < rt_begin`` → 1.0; then ``RT + 2(1−RT)/3`` for ``⌊(rt_end − rt_begin)/2⌋`` epochs; then ``RT + (1−RT)/3``
    until ``rt_end``; ``RT`` from ``rt_end`` on.

    Args:
        epoch: 0-based epoch index.
        rt: final target ratio RT in [0, 1].
        rt_begin, rt_end: epochs where the ratio starts to decrease / reaches RT (``0 <= rt_begin <= rt_end``).
    """
    _check_epoch("epoch", epoch)
    check_schedule(rt=rt, rt_begin=rt_begin, rt_end=rt_end)
    if epoch < rt_begin:
        return 1.0
    if epoch < rt_begin + (rt_end - rt_begin) // 2:
        return rt + (1.0 - rt) / 3 * 2
    if epoch < rt_end:
        return rt + (1.0 - rt) / 3
    return float(rt)


def temperature_at(epoch: int, step: int, iters_per_epoch: int, t0: float, t1: float, t_end: int) -> float:
    """Gumbel-softmax temperature τ used at iteration ``step`` of ``epoch`` (spec §7, exponential decay).

    For ``epoch < t_end``: ``τ = α^(epoch·I + step) · t0`` with ``α = (t1/t0)^(1/(t_end·I))``, I = ``iters_per_epoch``
    (the official formula and evaluation order, so the values agree bit for bit). From ``t_end`` on, the official
    code stops updating τ, so it keeps the value of the last annealed iteration, ``α^(t_end·I − 1) · t0``; this
    function returns that value for every later iteration, whether or not the run was resumed. ``t_end = 0``
    disables annealing (τ = t0 throughout).
    """
    _check_epoch("epoch", epoch)
    _check_epoch("step", step)
    if isinstance(iters_per_epoch, bool) or not isinstance(iters_per_epoch, int) or iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be a positive integer, got {iters_per_epoch!r}")
    check_schedule(t0=t0, t1=t1, t_end=t_end)
    if t_end == 0:
        return float(t0)
    total = t_end * iters_per_epoch
    cur = epoch * iters_per_epoch + step if epoch < t_end else total - 1
    alpha = math.pow(t1 / t0, 1 / total)
    return math.pow(alpha, cur) * t0


def lr_at(epoch: int, base_lr: float, lr_steps: Sequence[int]) -> float:
    """Step policy: ``base_lr · 0.1^(number of lr_steps <= epoch)`` (before each group's ``lr_mult``)."""
    _check_epoch("epoch", epoch)
    return base_lr * 0.1 ** sum(1 for s in lr_steps if epoch >= s)


#: Learning-rate policies: ``"step"`` (×0.1 at each of ``lr_steps``, AFNet/TSN) and ``"cosine"`` (bLVNet-TAM).
LR_POLICIES = ("step", "cosine")


def cosine_lr_at(epoch: int, base_lr: float, epochs: int) -> float:
    """Cosine policy stepped once per epoch, reaching 0 at ``epochs``: ``base_lr · (1 + cos(π · epoch / epochs)) / 2``
    (the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs, eta_min=0)`` stepped with the epoch
    index, as the bLVNet-TAM release does; spec blvnet-tam.md §5.3)."""
    _check_epoch("epoch", epoch)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    return base_lr * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


def policy_lr_at(epoch: int, base_lr: float, policy: str = "step", lr_steps: Sequence[int] = (),
                 epochs: int = 1) -> float:
    """The base learning rate of ``epoch`` (before each group's ``lr_mult``) under ``policy`` (:data:`LR_POLICIES`):
    :func:`lr_at` for ``"step"``, :func:`cosine_lr_at` over ``epochs`` for ``"cosine"``."""
    if policy == "step":
        return lr_at(epoch, base_lr, lr_steps)
    if policy == "cosine":
        return cosine_lr_at(epoch, base_lr, epochs)
    raise ValueError(f"lr_policy must be one of {LR_POLICIES}, got {policy!r}")


def check_schedule(*, rt: float | None = None, rt_begin: int | None = None, rt_end: int | None = None,
                   t0: float | None = None, t1: float | None = None, t_end: int | None = None) -> None:
    """Validate schedule hyper-parameters; raises ``ValueError`` naming the bad one."""
    if rt is not None and not (isinstance(rt, (int, float)) and not isinstance(rt, bool) and 0.0 <= rt <= 1.0):
        raise ValueError(f"rt (target ratio) must be a number in [0, 1], got {rt!r}")
    for name, v in (("rt_begin", rt_begin), ("rt_end", rt_end), ("t_end", t_end)):
        if v is not None:
            _check_epoch(name, v)
    if rt_begin is not None and rt_end is not None and rt_end < rt_begin:
        raise ValueError(f"rt_end must be >= rt_begin, got rt_begin={rt_begin}, rt_end={rt_end}")
    for name, v in (("t0", t0), ("t1", t1)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  and v > 0):
            raise ValueError(f"{name} (temperature) must be a finite number > 0, got {v!r}")
