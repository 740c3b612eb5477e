"""Training and evaluation with the official AFNet objective and schedules (spec §6, §7).

* :mod:`.schedules` — target ratio, Gumbel temperature and step LR as pure functions of the position in training;
* :mod:`.optim` — the official optimiser parameter groups (navigation lr×10, Linear lr×5/×10, …);
* :mod:`.metrics` — ratio loss, real ratio, top-k accuracy;
* :mod:`.engine` — :class:`Trainer` (exact save/resume), :func:`evaluate`;
* :mod:`.distributed` — multi-process training under ``torchrun`` (DDP): batch sharding, the reduced ratio loss;
* :mod:`.commands` — the ``afnet-edge train`` / ``afnet-edge eval`` sub-commands.
"""
from .engine import EpochSeeded, TrainConfig, Trainer, TrainState, evaluate, params_digest, seed_everything, train
from .metrics import accuracy, ratio_loss, selection_ratios, topk_correct
from .optim import GROUPS, adjust_learning_rate, build_optimizer, get_optim_policies
from .schedules import adjust_ratio, lr_at, temperature_at

__all__ = ["EpochSeeded", "GROUPS", "TrainConfig", "TrainState", "Trainer", "accuracy", "adjust_learning_rate",
           "adjust_ratio", "build_optimizer", "evaluate", "get_optim_policies", "lr_at", "params_digest", "ratio_loss",
           "seed_everything", "selection_ratios", "temperature_at", "topk_correct", "train"]
