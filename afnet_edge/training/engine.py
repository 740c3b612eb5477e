"""The training loop and the evaluation of spec §7: official objective and schedules, exact resume.

Objective per iteration (``L`` navigation modules, masks ``m_l`` of shape ``(B, T)``)::

    ratio_l  = mean over all B·T frames of m_l        (straight-through Gumbel masks in training mode)
    loss     = CrossEntropy(logits, label) + lambda_rt · (1/L) · Σ_l (rt_e − ratio_l)²

with the target ratio ``rt_e`` of :func:`~.schedules.adjust_ratio`, the Gumbel temperature of
:func:`~.schedules.temperature_at` set before every iteration, SGD (momentum 0.9) over the official parameter groups
(:func:`~.optim.get_optim_policies`), step learning rate, optional gradient-norm clipping, AMP (float16 autocast +
GradScaler) on CUDA. Partial BN is off, as in the release scripts (every BN layer trains).

Deviations on request (``TrainConfig.nav_estimator="local"``, ``tie_positions``): the navigation learns from
per-frame loss differences instead of the straight-through gradient, with the ratio term on the expected ratio, and
its per-position parameters tied across frame positions — see :mod:`.nav_values` for the objective and why.

Reproducibility and resume. Everything random is a pure function of the run's seed and the position in training,
or is saved in the checkpoint:

* the order of the training clips in epoch ``e`` is a permutation drawn from ``(seed, e)``; the clips of a resumed
  epoch continue at the saved iteration;
* the random choices of a dataset (TSN segment sampling, crops) are drawn with torch's generator seeded from
  ``(seed, e, index)`` for every sample (:class:`EpochSeeded`), so they do not depend on the number of DataLoader
  workers or on where a run was resumed, and they leave the training generator untouched;
* the Gumbel noise of the navigation modules and dropout use torch's global generator, whose state (and numpy's and
  Python's) is stored in every checkpoint;
* the temperature is a pure function of ``(epoch, iteration)`` (this fixes the official resume quirk, spec §7).

So a run resumed from a checkpoint, on the same machine and thread count, continues bit for bit as the
uninterrupted run would (``tests/test_train.py`` checks parameters, optimizer state, losses and temperatures).

Several processes (``torchrun``): the same loop under DistributedDataParallel, ``batch_size`` being the global batch
split evenly over the processes, the ratio term computed on the whole global batch, no SyncBN, per-rank random streams
saved in the checkpoint, rank-0-only files; see :mod:`.distributed` for the exact semantics. A resumed multi-process
run with the same number of processes continues bit for bit as well (``tests/test_ddp.py``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import inspect_checkpoint, load_checkpoint, save_checkpoint, save_official_checkpoint
from ..flops import SIZE_MULTIPLE, count_flops
from ..layers.navigation import SELECTIONS, Navigation, record_navigation, tie_navigation_positions
from ..models.common import VideoClassifier
from ..models.registry import TrainRecipe, train_recipe
from . import distributed as _dist
from .metrics import check_targets, ratio_loss, topk_correct
from .nav_values import NAV_ESTIMATORS, expected_ratios, frame_values, ratio_bias_shifts, value_loss
from .optim import adjust_learning_rate, build_optimizer
from .schedules import LR_POLICIES, adjust_ratio, check_schedule, policy_lr_at, temperature_at

TRAINER_FORMAT = 1


# ------------------------------------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Hyper-parameters of a training run. Defaults are those of the official scripts (spec §10).

    Attributes:
        epochs: number of epochs.
        batch_size: clips per iteration (the last incomplete batch of an epoch is dropped, as officially); with
            several processes (torchrun) the global batch, split evenly: ``batch_size / world_size`` per process,
            as the official ``--batch-size`` split by ``nn.DataParallel`` over the GPUs.
        lr, lr_steps: base learning rate and the epochs where it is multiplied by 0.1 (``lr_policy="step"``).
        lr_policy: ``"step"`` (AFNet/TSN) or ``"cosine"`` (to 0 over ``epochs``, stepped per epoch; bLVNet-TAM).
        momentum, weight_decay: SGD settings (decay scaled by each group's ``decay_mult``).
        nesterov: Nesterov momentum (bLVNet-TAM's recipe).
        clip_grad: maximum gradient norm (official ``--gd``); None or 0 disables clipping.
        rt, rt_begin, rt_end, lambda_rt: target ratio schedule and weight of the ratio loss.
        t0, t1, t_end: Gumbel temperature schedule (exponential from t0 toward t1 until epoch t_end).
        fc_lr5: Linear layers get lr×5 (weights) / ×10 (biases), official default when not fine-tuning.
        amp: float16 autocast + GradScaler; None = on iff the device is CUDA. Not available on CPU.
        seed: seed of the data order and per-sample data randomness.
        workers: DataLoader worker processes (0 = load in the main process).
        eval_every: validate every this many epochs (and after the last); 0 = only after the last epoch.
        save_every: also save ``last.pth`` every this many iterations (0 = at the end of every epoch only).
        eval_selection: frame selection for validation (``threshold``, ``gumbel`` (official) or ``topk``).
        eval_batch_size: clips per validation batch (default: ``batch_size``).
        nav_estimator: how the navigation learns: ``"straight_through"`` (official: straight-through Gumbel masks,
            ratio term on the hard masks) or ``"local"`` (a deviation: per-frame values, :mod:`.nav_values`; the
            ratio term on the expected ratio; the reported ratio loss ``loss_rt`` then includes the value loss).
        nav_positions: with ``nav_estimator="local"``, frame positions valued per iteration (each costs two extra
            forward passes of the batch, without gradient); none while the target ratio is 1.
        nav_value_scale: with ``nav_estimator="local"``, weight of the navigation's value loss.
        tie_positions: keep every navigation module's per-position parameters equal across frame positions
            (a deviation: selections then depend on content only).
        hold_ratio: with ``nav_estimator="local"`` and a target ratio below 1, after every optimiser step move each
            navigation module's select bias by this fraction of the shift that makes the batch's expected ratio the
            target (:func:`.nav_values.ratio_bias_shifts`; a deviation: the ratio is held instead of traded against
            the value term); 0 (default) = off, 1 = the batch's exact shift.
        nav_natural_gradient: with ``nav_estimator="local"``, the value loss in its natural-gradient form (a
            deviation: a margin moves by the frame's value even where the selection has saturated; :mod:`.nav_values`).
    """

    epochs: int = 55
    batch_size: int = 32
    lr: float = 0.01
    lr_steps: tuple = (25, 45)
    lr_policy: str = "step"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    clip_grad: float | None = 20.0
    rt: float = 0.5
    rt_begin: int = 10
    rt_end: int = 20
    lambda_rt: float = 0.5
    t0: float = 1.0
    t1: float = 0.01
    t_end: int = 50
    fc_lr5: bool = True
    amp: bool | None = None
    seed: int = 0
    workers: int = 0
    eval_every: int = 1
    save_every: int = 0
    eval_selection: str = "threshold"
    eval_batch_size: int | None = None
    nav_estimator: str = "straight_through"
    nav_positions: int = 4
    nav_value_scale: float = 30.0
    tie_positions: bool = False
    hold_ratio: float = 0.0
    nav_natural_gradient: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("workers", "eval_every", "save_every", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        self.lr_steps = tuple(int(s) for s in self.lr_steps)
        if any(s < 0 for s in self.lr_steps):
            raise ValueError(f"lr_steps must be non-negative epochs, got {self.lr_steps}")
        if self.clip_grad is not None and not (math.isfinite(self.clip_grad) and self.clip_grad >= 0):
            raise ValueError(f"clip_grad (--gd) must be a finite number >= 0, got {self.clip_grad!r}")
        if self.clip_grad == 0:
            self.clip_grad = None
        if not (math.isfinite(self.lambda_rt) and self.lambda_rt >= 0):
            raise ValueError(f"lambda_rt must be a finite number >= 0, got {self.lambda_rt!r}")
        check_schedule(rt=self.rt, rt_begin=self.rt_begin, rt_end=self.rt_end, t0=self.t0, t1=self.t1,
                       t_end=self.t_end)
        if self.lr_policy not in LR_POLICIES:
            raise ValueError(f"lr_policy must be one of {LR_POLICIES}, got {self.lr_policy!r}")
        if self.eval_selection not in SELECTIONS:
            raise ValueError(f"eval_selection must be one of {SELECTIONS}, got {self.eval_selection!r}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be a positive integer, got {self.eval_batch_size!r}")
        if self.nav_estimator not in NAV_ESTIMATORS:
            raise ValueError(f"nav_estimator must be one of {NAV_ESTIMATORS}, got {self.nav_estimator!r}")
        if isinstance(self.nav_positions, bool) or not isinstance(self.nav_positions, int) or self.nav_positions < 1:
            raise ValueError(f"nav_positions must be a positive integer, got {self.nav_positions!r}")
        if not (math.isfinite(self.nav_value_scale) and self.nav_value_scale >= 0):
            raise ValueError(f"nav_value_scale must be a finite number >= 0, got {self.nav_value_scale!r}")
        if not (math.isfinite(self.hold_ratio) and 0.0 <= self.hold_ratio <= 1.0):
            raise ValueError(f"hold_ratio must be a fraction in [0, 1], got {self.hold_ratio!r}")
        if self.nav_natural_gradient and self.nav_estimator != "local":
            raise ValueError("nav_natural_gradient (--nav-natural-gradient) needs nav_estimator='local' "
                             "(--nav-estimator local), whose value loss it changes")
        if self.hold_ratio and self.nav_estimator != "local":
            raise ValueError("hold_ratio (--hold-ratio) needs nav_estimator='local' (--nav-estimator local), whose "
                             "recorded navigation logits it reads")

    @classmethod
    def for_model(cls, model: torch.nn.Module, **overrides) -> "TrainConfig":
        """The config of ``model``'s family recipe (:class:`~afnet_edge.models.registry.TrainRecipe` ``defaults``),
        with ``overrides`` (fields given explicitly; None values are ignored) on top."""
        defaults = train_recipe(model).defaults
        defaults = defaults(model) if callable(defaults) else defaults      # per model of the family, or one mapping
        return cls(**{**dict(defaults), **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr_steps"] = list(self.lr_steps)
        return d


@dataclass
class TrainState:
    """Position in training: next ``epoch`` / iteration ``step`` to run, totals and per-epoch history."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_top1: float | None = None
    history: list = field(default_factory=list)
    meters: dict = field(default_factory=dict)   # running sums of the current epoch
    skipped_steps: int = 0                       # AMP steps skipped by the GradScaler (inf/NaN gradients)


# ------------------------------------------------------------------------------------------------------- seeding
def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy ``SeedSequence``), for streams that must not collide."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's ``random`` — call before building the model."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def get_rng_state() -> dict:
    """The global generators' states as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochSeeded(Dataset):
    """Wraps a dataset so that sample ``i`` of epoch ``epoch`` draws its randomness from a generator seeded with
    ``(seed, epoch, i)``: torch's global generator is seeded for the call and restored afterwards (numpy's and
    Python's too), so results do not depend on the worker that loads the sample or on the training generator.
    Set ``epoch`` before creating each epoch's DataLoader (workers receive a copy)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        s = mix_seed(self.seed, 0x5EED, self.epoch, index)
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            np.random.seed(s % 2**32)
            random.seed(s)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def params_digest(model: torch.nn.Module) -> str:
    """SHA-256 (hex) of a model's parameters: names, dtypes, shapes and bytes, in ``named_parameters`` order. Equal
    digests mean bitwise-equal parameters (multi-process runs log it per rank and step with ``--step-log``)."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: Dataset, batch_size: int = 32, device: torch.device | str | None = None,
             workers: int = 0, selection: str | None = None, generator_seed: int = 0, flops: bool = True,
             progress: bool = False, amp: bool = False) -> dict:
    """Top-1/top-5 accuracy, real selection ratio and official FLOPs of ``model`` on ``dataset``.

    Args:
        model: an afnet_edge video model (``model(clip).logits`` ``(B, C)``, ``.masks`` list of ``(B, T)``).
        dataset: yields ``(clip (T, 3, H, W) float32, label int)``.
        selection: frame selection for this evaluation (``threshold``, ``gumbel`` (official, stochastic) or
            ``topk``); None keeps the model's configuration. The model is restored afterwards.
        generator_seed: seed of the dedicated generator used for Gumbel noise (the global generator is not used,
            so evaluating does not change a training run's random stream).
        flops: also compute the official FLOPs (:func:`afnet_edge.flops.count_flops`) for the masks observed,
            when the frame size is one :func:`~afnet_edge.flops.count_flops` accepts (a multiple of 32).

    Returns a dict: ``top1``, ``top5`` (percent; ``top5_k`` = min(5, C) is the k used), ``loss`` (mean cross-entropy),
    ``real_ratio`` (mean over modules of the fraction of selected frames over all clips; 1.0 for dense models),
    ``module_ratios``, ``num_clips``, ``official_gflops`` / ``executed_gmacs_compact`` per clip (or None, with
    ``flops_note``), ``selection``, ``seconds``.

    The official FLOPs of a batch are affine in each module's selection ratio, so the official average over batches
    equals :func:`count_flops` on the masks of all clips together, which is what is reported.
    """
    if len(dataset) == 0:
        raise ValueError("evaluation dataset is empty")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    saved = model.config() if hasattr(model, "config") else None
    if selection is not None:
        model.configure(selection=selection)
    model.eval()
    gen = torch.Generator(device=device).manual_seed(generator_seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda", worker_init_fn=_worker_init,
                        generator=torch.Generator().manual_seed(generator_seed))
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    mask_parts: list[list[torch.Tensor]] = []
    size = None
    num_classes = getattr(model, "num_classes", None)
    t_start = time.perf_counter()
    bar = _progress(len(loader), "eval", progress)
    try:
        for clip, target in loader:
            if num_classes is not None:
                check_targets(target, num_classes)
            size = tuple(clip.shape[-2:])
            clip = clip.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp and device.type == "cuda"):
                out = model(clip, generator=gen) if _accepts_generator(model) else model(clip)
            logits = out.logits.float()
            loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
            c1, c5 = topk_correct(logits, target, (1, 5))
            correct1 += c1
            correct5 += c5
            n += target.shape[0]
            if not mask_parts:
                mask_parts = [[] for _ in out.masks]
            for parts, m in zip(mask_parts, out.masks):
                parts.append((m > 0.5).cpu())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(top1=f"{100.0 * correct1 / n:.1f}")
    finally:
        if bar is not None:
            bar.close()
        if saved is not None:
            model.configure(**{k: v for k, v in saved.items() if k != "kernels"})
        model.train(was_training)
    masks = [torch.cat(p).float() for p in mask_parts]
    module_ratios = [float(m.mean()) for m in masks]
    res = {
        "top1": 100.0 * correct1 / n,
        "top5": 100.0 * correct5 / n,
        "top5_k": min(5, num_classes) if num_classes else 5,
        "loss": loss_sum / n,
        "real_ratio": sum(module_ratios) / len(module_ratios) if module_ratios else 1.0,
        "module_ratios": module_ratios,
        "num_clips": n,
        "selection": getattr(model, "selection", None) if selection is None else selection,
        "official_gflops": None,
        "executed_gmacs_compact": None,
        "seconds": time.perf_counter() - t_start,
    }
    if flops:
        res.update(_flops_of(model, masks, size))
    return res


def _flops_of(model, masks: list, size) -> dict:
    if size is None or size[0] != size[1] or size[0] % SIZE_MULTIPLE:
        return {"flops_note": f"official FLOPs need square frames with a side multiple of {SIZE_MULTIPLE}, got {size}"}
    fl = count_flops(model, masks=masks, image_size=int(size[0]))
    return {"official_gflops": fl["official_gflops"], "executed_gmacs_compact": fl["executed_gmacs_compact"],
            "official_gflops_r1": fl["official_gflops_r1"], "image_size": int(size[0])}


def _accepts_generator(model) -> bool:
    return isinstance(model, VideoClassifier)


def _progress(total: int, desc: str, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False)


# ------------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Runs the official training of an afnet_edge video model; saves and resumes exact states.

    Args:
        model: an afnet_edge video model (``create_model(...)``), on any device; it is moved to ``device``.
        train_set: yields ``(clip (T, 3, H, W) float32, label int)``; wrapped in :class:`EpochSeeded`.
        config: :class:`TrainConfig`.
        val_set: optional validation dataset (evaluated every ``config.eval_every`` epochs).
        device: default CUDA if available, else CPU.
        out_dir: where ``last.pth`` (training state), ``best.pth`` (best validation top-1) and ``log.jsonl`` go;
            None saves nothing unless :meth:`save` is called.
        progress: show a tqdm progress bar (loss, accuracy, real ratio, temperature, lr).
        log: callable receiving one line per epoch (default ``print``); None is silent.
        official_layout: also write ``ckpt.pth.tar`` / ``ckpt.best.pth.tar`` in the official layout (spec §10).
        distributed: train with DistributedDataParallel over the running default process group (``torchrun``;
            :mod:`.distributed`); None (default) = iff a process group with 2 or more processes is initialised.
            Only rank 0 writes files, logs and shows progress; every rank must construct the Trainer and call the
            same methods (saving and validating are collectives).
        step_log_file: append one JSON line per iteration (position, loss terms, temperature, lr and a SHA-256 of
            the parameters) to this file; in a multi-process run every rank writes ``<file>.rank<r>``.
    """

    def __init__(self, model: torch.nn.Module, train_set: Dataset, config: TrainConfig | None = None,
                 val_set: Dataset | None = None, device: torch.device | str | None = None,
                 out_dir: str | os.PathLike | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = print, official_layout: bool = False,
                 distributed: bool | None = None, step_log_file: str | os.PathLike | None = None):
        self.recipe: TrainRecipe = train_recipe(model)
        self.config = cfg = config or TrainConfig.for_model(model)
        self.dist = _dist.current() if distributed is not False else None
        if distributed and self.dist is None:
            raise ValueError("distributed=True needs an initialised process group of 2 or more processes "
                             "(launch with torchrun --nproc-per-node N)")
        self.rank = self.dist.rank if self.dist else 0
        self.world_size = self.dist.world_size if self.dist else 1
        self.is_main = self.rank == 0
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.device = _dist.process_device(self.device, self.dist)
        if cfg.amp and self.device.type != "cuda":
            raise ValueError("amp (float16 autocast + GradScaler) needs a CUDA device; use --no-amp on CPU")
        self.amp = bool(cfg.amp) if cfg.amp is not None else self.device.type == "cuda"
        self.model = model.to(self.device)
        if len(train_set) < cfg.batch_size:
            raise ValueError(f"the training set has {len(train_set)} clips, fewer than one batch "
                             f"(batch_size={cfg.batch_size}); lower --batch-size or add data")
        if cfg.batch_size % self.world_size:
            raise ValueError(f"--batch-size {cfg.batch_size} is the global batch and must be divisible by the "
                             f"{self.world_size} processes (each takes batch_size / {self.world_size} clips)")
        self.local_batch_size = cfg.batch_size // self.world_size
        # the module that runs the forward pass of training (DDP wrapper in a multi-process run, else the model)
        self.net: torch.nn.Module = self.model
        if self.dist is not None:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                               if self.device.type == "cuda" else None,
                                               find_unused_parameters=self.recipe.find_unused_parameters)
            # same initial weights everywhere (DDP broadcast rank 0's); different Gumbel noise / dropout per shard
            seed_everything(mix_seed(cfg.seed, _dist.RANK_SEED_TAG, self.rank))
        self.train_set = EpochSeeded(train_set, cfg.seed)
        self.val_set = val_set
        self.iters_per_epoch = len(train_set) // cfg.batch_size
        self.optimizer = build_optimizer(model, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.fc_lr5, cfg.nesterov,
                                         self.recipe.param_groups)
        self.group_names = [g["name"] for g in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.state = TrainState()
        self.out_dir = os.fspath(out_dir) if out_dir is not None else None
        if self.out_dir and self.is_main:
            os.makedirs(self.out_dir, exist_ok=True)
        self.progress = progress and self.is_main
        self.log = log if log is not None and self.is_main else (lambda s: None)
        self.step_log_file: str | None = None
        if step_log_file is not None:
            self.step_log_file = os.fspath(step_log_file) + (f".rank{self.rank}" if self.dist else "")
        self.official_layout = official_layout
        nav_ids = {id(q) for m in model.modules() if isinstance(m, Navigation) for q in m.parameters()}
        self._nav_params = [q for q in model.parameters() if id(q) in nav_ids]
        self._other_params = [q for q in model.parameters() if id(q) not in nav_ids]
        for flag, on in (("nav_estimator='local'", cfg.nav_estimator == "local"),
                         ("tie_positions", cfg.tie_positions)):
            if on and (not nav_ids or self.recipe.loss is not None):
                raise ValueError(f"{flag} needs a model whose navigation modules select frames (AFNet); "
                                 f"{type(model).__name__} has none")
        if cfg.tie_positions:
            tie_navigation_positions(model)
        self.last_step: dict = {}
        self.step_log: list[dict] | None = None  # set to [] to record every iteration (tests)

    # ----------------------------------------------------------------------------------------------- schedules
    def temperature(self, epoch: int, step: int) -> float:
        c = self.config
        return temperature_at(epoch, step, self.iters_per_epoch, c.t0, c.t1, c.t_end)

    def learning_rate(self, epoch: int) -> float:
        """Base learning rate of ``epoch`` (before each group's ``lr_mult``) under the config's policy."""
        c = self.config
        return policy_lr_at(epoch, c.lr, c.lr_policy, c.lr_steps, c.epochs)

    def target_ratio(self, epoch: int) -> float:
        c = self.config
        return adjust_ratio(epoch, c.rt, c.rt_begin, c.rt_end)

    # ----------------------------------------------------------------------------------------------- data
    def epoch_order(self, epoch: int) -> list[int]:
        """Indices of the clips of ``epoch`` in training order (``iters_per_epoch · batch_size`` of them)."""
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, 0x0DE5, epoch))
        perm = torch.randperm(len(self.train_set), generator=g)
        return perm[: self.iters_per_epoch * self.config.batch_size].tolist()

    def loader(self, epoch: int, start_step: int = 0) -> DataLoader:
        c = self.config
        self.train_set.epoch = epoch
        order = self.epoch_order(epoch)[start_step * c.batch_size:]
        if self.dist is not None:  # this rank's slice of every global batch
            order = _dist.shard_order(order, c.batch_size, self.rank, self.world_size)
        return DataLoader(self.train_set, batch_size=self.local_batch_size, sampler=order, num_workers=c.workers,
                          pin_memory=self.device.type == "cuda", drop_last=False, worker_init_fn=_worker_init,
                          generator=torch.Generator().manual_seed(mix_seed(c.seed, 0x10AD, epoch, start_step)))

    # ----------------------------------------------------------------------------------------------- one step
    def train_step(self, clip: torch.Tensor, target: torch.Tensor, target_ratio: float) -> dict:
        """One optimisation step on a batch; returns the batch's loss terms, real ratio and top-k hits.

        In a multi-process run ``clip`` is this process's share of the global batch; the returned values are those
        of the global batch (cross-entropy and top-k hits summed over the processes, ratio terms already global).
        """
        c, model, opt = self.config, self.model, self.optimizer
        check_targets(target, model.num_classes)
        clip = clip.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        family_loss = self.recipe.loss
        local = c.nav_estimator == "local"
        reduce = _dist.all_mean if self.dist is not None else None
        recorder: record_navigation | None = None    # local estimator: records the navigation's logits
        nav_logits: list = []
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            if family_loss is not None:   # the family's objective (reported as loss_cls), no frame selection
                loss_cls, logits = family_loss(self.net, model, clip, target)
                masks: list = []
            elif local:                   # masks drawn without straight-through gradient; logits recorded
                recorder = record_navigation(model)
                with recorder as nav_logits:
                    out = self.net(clip)
                logits, masks = out.logits, out.masks
            else:
                out = self.net(clip)
                logits, masks = out.logits, out.masks
        if family_loss is None:
            loss_cls = F.cross_entropy(logits.float(), target)
        if local:  # ratio term on the expected ratio; the navigation's value loss (nav_values)
            loss_rt, _ = ratio_loss(expected_ratios(nav_logits), target_ratio, c.lambda_rt, reduce=reduce)
            with torch.no_grad():
                _, ratio = ratio_loss(masks, target_ratio, 0.0, reduce=reduce)
            loss_nav = torch.zeros((), device=loss_cls.device)
            if target_ratio < 1.0 and c.nav_value_scale > 0:
                t = masks[0].shape[1]
                positions = sorted(torch.randperm(t)[:min(c.nav_positions, t)].tolist())
                with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                    values_bt = frame_values(model, clip, target, masks, positions)
                loss_nav = value_loss(nav_logits, values_bt, positions, c.nav_value_scale,
                                      natural=c.nav_natural_gradient)
            loss_rt = loss_rt + loss_nav.to(loss_rt.device)
        else:
            loss_rt, ratio = ratio_loss(masks, target_ratio, c.lambda_rt, reduce=reduce)
        loss = loss_cls + loss_rt.to(loss_cls.device)
        values = torch.stack([loss.detach(), loss_cls.detach(), loss_rt.detach().to(loss.device),
                              ratio.to(loss.device)]).tolist()  # one device sync per step
        hits = None
        if self.dist is not None:  # global cross-entropy and hits (loss_rt and ratio are global already)
            c1, c5 = topk_correct(logits.detach().float(), target, (1, 5))
            n = int(target.shape[0])
            s = _dist.all_sum([values[1] * n, c1, c5, n], self.device)
            values[1] = s[0] / s[3]
            values[0] = values[1] + values[2]
            hits = (int(s[1]), int(s[2]), int(s[3]))
        if not math.isfinite(values[0]) and not self.amp:
            raise FloatingPointError(f"non-finite loss {values[0]} at epoch {self.state.epoch} iteration "
                                     f"{self.state.step}; lower --lr or use --gd to clip gradients")
        if self.amp:
            self.scaler.scale(loss).backward()
            if c.clip_grad:
                self.scaler.unscale_(opt)
                self._clip_gradients(c.clip_grad)
            scale = self.scaler.get_scale()
            self.scaler.step(opt)
            self.scaler.update()
            if self.scaler.get_scale() < scale:
                self.state.skipped_steps += 1
        else:
            loss.backward()
            if c.clip_grad:
                self._clip_gradients(c.clip_grad)
            opt.step()
        if c.tie_positions:
            tie_navigation_positions(model)
        if recorder is not None and c.hold_ratio and target_ratio < 1.0 and recorder.logits:
            self._hold_ratio(recorder, target_ratio)
        if hits is None:
            c1, c5 = topk_correct(logits.detach().float(), target, (1, 5))
            hits = (c1, c5, int(target.shape[0]))
        return {"loss": values[0], "loss_cls": values[1], "loss_rt": values[2], "ratio": values[3],
                "correct1": hits[0], "correct5": hits[1], "n": hits[2]}

    def _hold_ratio(self, recorder: record_navigation, target_ratio: float) -> None:
        """``TrainConfig.hold_ratio``: move each module's select bias (every position alike, so tied positions stay
        tied) towards the shift that gives this batch's logits the target expected ratio; in a multi-process run the
        shifts are averaged over the processes so that the parameters stay equal."""
        shift = ratio_bias_shifts(recorder.logits, target_ratio) * self.config.hold_ratio
        if self.dist is not None:
            shift = _dist.all_mean(shift)
        with torch.no_grad():
            for nav, d in zip(recorder.sources, shift.tolist()):
                bias = nav.conv_gs.bias
                assert bias is not None  # conv_gs is built with a bias
                bias[1::2] += d

    def _clip_gradients(self, max_norm: float) -> None:
        """Official: one norm over every parameter. With the local estimator the navigation's gradient (its value
        loss) and the network's (cross-entropy) are separate objectives, clipped separately so that neither
        shrinks the other's step."""
        if self.config.nav_estimator == "local":
            torch.nn.utils.clip_grad_norm_(self._other_params, max_norm)
            torch.nn.utils.clip_grad_norm_(self._nav_params, max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)

    # ----------------------------------------------------------------------------------------------- epochs
    def fit(self, max_steps: int | None = None) -> list[dict]:
        """Train until ``config.epochs`` (or ``max_steps`` more iterations); returns the per-epoch history."""
        c = self.config
        budget = max_steps
        while self.state.epoch < c.epochs:
            done = self.train_epoch(budget)
            if budget is not None:
                budget -= done
            if self.state.step < self.iters_per_epoch:  # stopped by max_steps inside the epoch
                if self.out_dir:
                    self.save(os.path.join(self.out_dir, "last.pth"))
                break
            self._end_epoch()
            if budget is not None and budget <= 0:
                break
        return self.state.history

    def train_epoch(self, max_steps: int | None = None) -> int:
        """Run the rest of the current epoch (at most ``max_steps`` iterations); returns the iterations run."""
        c, st, model = self.config, self.state, self.model
        e = st.epoch
        lr = adjust_learning_rate(self.optimizer, e, c.lr, c.lr_steps, c.weight_decay, c.lr_policy, c.epochs)
        rt_e = self.target_ratio(e)
        if st.step == 0 or not st.meters:
            st.meters = {"loss": 0.0, "loss_cls": 0.0, "loss_rt": 0.0, "ratio": 0.0, "correct1": 0, "correct5": 0,
                         "n": 0, "seconds": 0.0}
        model.train()
        bar = _progress(self.iters_per_epoch, f"epoch {e + 1}/{c.epochs}", self.progress, initial=st.step)
        done = 0
        t_last = time.perf_counter()
        try:
            if max_steps is not None and max_steps <= 0:
                return 0
            for clip, target in self.loader(e, st.step):
                tau = self.temperature(e, st.step)
                model.configure(temperature=tau)
                r = self.train_step(clip, target, rt_e)
                m = st.meters
                for k in ("loss", "loss_cls", "loss_rt", "ratio"):
                    m[k] += r[k] * r["n"]
                for k in ("correct1", "correct5", "n"):
                    m[k] += r[k]
                now = time.perf_counter()
                m["seconds"] += now - t_last
                t_last = now
                self.last_step = {"epoch": e, "step": st.step, "temperature": tau, "lr": lr, "rt": rt_e, **r}
                if self.step_log is not None:
                    self.step_log.append(dict(self.last_step))
                if self.step_log_file is not None:
                    os.makedirs(os.path.dirname(os.path.abspath(self.step_log_file)), exist_ok=True)
                    with open(self.step_log_file, "a") as f:
                        f.write(json.dumps({**self.last_step, "global_step": st.global_step + 1,
                                            "params_sha256": self.params_digest()}) + "\n")
                st.step += 1
                st.global_step += 1
                done += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{m['loss'] / m['n']:.3f}", acc=f"{100.0 * m['correct1'] / m['n']:.1f}",
                                    ratio=f"{m['ratio'] / m['n']:.3f}", rt=f"{rt_e:.2f}", tau=f"{tau:.3g}",
                                    lr=f"{lr:.2g}")
                if c.save_every and self.out_dir and st.global_step % c.save_every == 0 \
                        and st.step < self.iters_per_epoch:
                    self.save(os.path.join(self.out_dir, "last.pth"))
                if max_steps is not None and done >= max_steps:
                    break
        finally:
            if bar is not None:
                bar.close()
        return done

    def _end_epoch(self) -> None:
        c, st = self.config, self.state
        e = st.epoch
        m = st.meters
        n = max(m.get("n", 0), 1)
        rec = {"epoch": e, "lr": self.learning_rate(e),
               "rt": self.target_ratio(e), "temperature_end": self.temperature(e, self.iters_per_epoch - 1),
               "train_loss": m["loss"] / n, "train_loss_cls": m["loss_cls"] / n, "train_loss_rt": m["loss_rt"] / n,
               "train_ratio": m["ratio"] / n, "train_top1": 100.0 * m["correct1"] / n,
               "train_top5": 100.0 * m["correct5"] / n, "train_seconds": m["seconds"]}
        last = e == c.epochs - 1
        is_best = False
        if self.val_set is not None and (last or (c.eval_every and (e + 1) % c.eval_every == 0)):
            v = self.validate()
            rec.update({f"val_{k}": v[k] for k in ("top1", "top5", "loss", "real_ratio", "official_gflops",
                                                   "executed_gmacs_compact", "seconds") if k in v})
            rec["val_module_ratios"] = v["module_ratios"]
            if st.best_top1 is None or v["top1"] > st.best_top1:
                st.best_top1, is_best = v["top1"], True
        st.history.append(rec)
        st.epoch, st.step, st.meters = e + 1, 0, {}
        self.log(_format_epoch(rec, c.epochs, dense=getattr(self.model, "num_navigation", 0) == 0))
        if self.out_dir:
            if self.is_main:
                with open(os.path.join(self.out_dir, "log.jsonl"), "a") as f:
                    f.write(json.dumps(rec) + "\n")
            self.save(os.path.join(self.out_dir, "last.pth"))
            if is_best:
                self.save(os.path.join(self.out_dir, "best.pth"), weights_only=True)
            if self.official_layout:
                self.save_official(os.path.join(self.out_dir, "ckpt.pth.tar"))
                if is_best:
                    self.save_official(os.path.join(self.out_dir, "ckpt.best.pth.tar"))

    def validate(self) -> dict:
        """Evaluate on the validation set (multi-process: on rank 0, the result broadcast to every rank)."""
        c = self.config
        v = None
        if self.is_main:
            v = evaluate(self.model, self.val_set, batch_size=c.eval_batch_size or c.batch_size, device=self.device,
                         workers=c.workers, selection=c.eval_selection, generator_seed=mix_seed(c.seed, 0xE7A1),
                         progress=self.progress, amp=self.amp)
        if self.dist is not None:
            v = _dist.broadcast_object(v)
        assert v is not None
        return v

    def params_digest(self) -> str:
        """:func:`params_digest` of the model."""
        return params_digest(self.model)

    # ----------------------------------------------------------------------------------------------- checkpoints
    def state_extra(self, rng_ranks: list | None = None) -> dict:
        """Everything a checkpoint stores besides the weights (tensors and plain values only).

        ``rng_ranks``: the random generator states of every rank of a multi-process run (stored as ``rng_ranks``;
        ``rng`` is always this process's)."""
        st = self.state
        extra = {"rng_ranks": rng_ranks} if rng_ranks is not None else {}
        return {
            "epoch": st.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "trainer": {"format": TRAINER_FORMAT, "epoch": st.epoch, "step": st.step, "global_step": st.global_step,
                        "iters_per_epoch": self.iters_per_epoch, "best_top1": st.best_top1,
                        "history": st.history, "meters": st.meters, "skipped_steps": st.skipped_steps,
                        "temperature": self.temperature(st.epoch, st.step) if st.epoch < self.config.epochs
                        else self.temperature(self.config.epochs - 1, self.iters_per_epoch - 1),
                        "target_ratio": self.target_ratio(st.epoch), "world_size": self.world_size},
            "train_config": self.config.to_dict(),
            "rng": get_rng_state(),
            **extra,
        }

    def save(self, path: str | os.PathLike, weights_only: bool = False) -> None:
        """Write an afnet_edge checkpoint; with the training state (resumable) unless ``weights_only``.

        Multi-process: a collective (every rank calls it; the generator states of all ranks are gathered), rank 0
        writes the file, and every rank returns once it is written."""
        if self.dist is not None:
            rng_ranks = None if weights_only else _dist.gather_objects(get_rng_state())
            if self.is_main:
                self._save(path, weights_only, rng_ranks)
            torch.distributed.barrier()
        else:
            self._save(path, weights_only, None)

    def _save(self, path: str | os.PathLike, weights_only: bool, rng_ranks: list | None) -> None:
        if weights_only:
            h = self.state.history[-1] if self.state.history else {}
            save_checkpoint(self.model, path, epoch=self.state.epoch,
                            metrics={k: v for k, v in h.items() if isinstance(v, (int, float)) or v is None},
                            train_config=self.config.to_dict())
        else:
            save_checkpoint(self.model, path, **self.state_extra(rng_ranks))

    def save_official(self, path: str | os.PathLike) -> None:
        """Write the official ``ckpt.pth.tar`` layout: ``module.``-prefixed ``state_dict``, ``epoch``, ``arch``,
        ``best_prec1`` and the per-evaluation logs. ``optimizer`` holds the 11 official parameter groups (same
        names, multipliers and sizes, so the official ``--resume`` accepts it) with an empty ``state``: the order of
        parameters inside a group follows afnet_edge's module order, which is not guaranteed to be the official
        one, so momentum buffers are deliberately not exported. Multi-process: rank 0 writes, the others return."""
        if not self.is_main:
            return
        hist = [h for h in self.state.history if "val_top1" in h]
        groups = self.optimizer.state_dict()["param_groups"]
        logs = {
            "best_prec1": self.state.best_top1 or 0.0,
            "val_acc_top1": [h["val_top1"] for h in hist], "val_acc_top5": [h["val_top5"] for h in hist],
            "val_big_rate": [h["val_real_ratio"] for h in hist],
            "val_FLOPs": [h.get("val_official_gflops") for h in hist],
            "tr_big_rate": [h["train_ratio"] for h in hist], "tr_acc_top1": [h["train_top1"] for h in hist],
            "tr_acc_top5": [h["train_top5"] for h in hist], "train_loss": [h["train_loss"] for h in hist],
            "train_loss_cls": [h["train_loss_cls"] for h in hist], "train_loss_ls": [h["train_loss_rt"] for h in hist],
            "valid_loss": [h["val_loss"] for h in hist], "epoch_log": [h["epoch"] for h in hist],
            "optimizer": {"state": {}, "param_groups": groups},
        }
        save_official_checkpoint(self.model, path, epoch=self.state.epoch, **logs)

    def resume(self, path: str | os.PathLike) -> dict:
        """Restore the exact state saved by :meth:`save` (weights, optimizer, scaler, position, history, random
        generators). Call it last, right before :meth:`fit`. Returns the checkpoint's ``trainer`` entry.

        Raises ``ValueError`` when the file is not a training checkpoint, holds another model (architecture,
        frames, classes, TSM) or was saved mid-epoch with a different number of iterations per epoch.
        """
        path = os.fspath(path)
        info = inspect_checkpoint(path)
        model = self.model
        if info.get("kind") != "afnet_edge":
            raise ValueError(f"--resume: '{path}' is an {info.get('kind')} checkpoint, not an afnet_edge training "
                             f"checkpoint; use --checkpoint to start from its weights")
        want = {"arch": model.arch, "num_frames": model.num_frames, "num_classes": model.num_classes,
                "tsm": getattr(model, "tsm", None)}
        diff = [f"{k}: checkpoint {info.get(k)!r} vs model {v!r}" for k, v in want.items() if info.get(k) != v]
        if diff:
            raise ValueError(f"--resume: '{path}' was trained with another model ({'; '.join(diff)}); build the same "
                             f"model (--model/--frames/--classes/--no-tsm) to resume it")
        meta = load_checkpoint(model, path).meta
        tr = meta.get("trainer")
        if not isinstance(tr, dict) or "optimizer" not in meta or "rng" not in meta:
            raise ValueError(f"--resume: '{path}' holds weights only (no optimizer/trainer state; e.g. a best.pth); "
                             f"resume from last.pth, or use --checkpoint to start a new run from these weights")
        if tr.get("format") != TRAINER_FORMAT:
            raise ValueError(f"--resume: '{path}' has trainer state format {tr.get('format')!r}, expected "
                             f"{TRAINER_FORMAT}")
        if tr["step"] > 0 and tr["iters_per_epoch"] != self.iters_per_epoch:
            raise ValueError(f"--resume: '{path}' was saved at iteration {tr['step']} of an epoch of "
                             f"{tr['iters_per_epoch']} iterations, but this run has {self.iters_per_epoch} "
                             f"iterations per epoch; use the same data and --batch-size")
        names = [g["name"] for g in meta["optimizer"]["param_groups"]]
        if names != self.group_names:
            raise ValueError(f"--resume: '{path}' optimizer groups {names} are not this model's training groups "
                             f"{self.group_names}")
        try:
            self.optimizer.load_state_dict(meta["optimizer"])
        except ValueError as e:
            raise ValueError(f"--resume: '{path}' optimizer state does not fit this model: {e}") from None
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        saved_cfg = meta.get("train_config") or {}
        changed = {k: (saved_cfg[k], v) for k, v in self.config.to_dict().items()
                   if k in saved_cfg and saved_cfg[k] != v}
        if changed:
            self.log("resume: settings changed since the checkpoint: " +
                     ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items())))
        st = self.state
        st.epoch, st.step, st.global_step = int(tr["epoch"]), int(tr["step"]), int(tr["global_step"])
        st.best_top1, st.history = tr["best_top1"], list(tr["history"])
        st.meters, st.skipped_steps = dict(tr["meters"]), int(tr.get("skipped_steps", 0))
        if st.epoch < self.config.epochs:
            self.model.configure(temperature=self.temperature(st.epoch, st.step))
        else:
            self.log(f"resume: '{path}' has already finished {st.epoch} epoch(s); raise --epochs to train further")
        saved_world = int(tr.get("world_size", 1))
        rng_ranks = meta.get("rng_ranks")
        if saved_world == self.world_size:
            set_rng_state(rng_ranks[self.rank] if rng_ranks else meta["rng"])
        else:
            self.log(f"resume: '{path}' was written by a {saved_world}-process run and this run has "
                     f"{self.world_size}: data order and schedules continue, but the random streams and the "
                     f"BatchNorm batch statistics differ from the uninterrupted run")
            if self.dist is not None:
                seed_everything(mix_seed(self.config.seed, _dist.RANK_SEED_TAG, self.rank, st.global_step))
            else:
                set_rng_state(meta["rng"])
        return tr


def _format_epoch(rec: dict, epochs: int, dense: bool = False) -> str:
    if dense:
        s = (f"epoch {rec['epoch'] + 1}/{epochs}: loss {rec['train_loss']:.4f} top1 {rec['train_top1']:.2f} "
             f"lr {rec['lr']:.3g} {rec['train_seconds']:.0f}s")
    else:
        s = (f"epoch {rec['epoch'] + 1}/{epochs}: loss {rec['train_loss']:.4f} (cls {rec['train_loss_cls']:.4f}, "
             f"rt {rec['train_loss_rt']:.4f}) top1 {rec['train_top1']:.2f} ratio {rec['train_ratio']:.3f} "
             f"(target {rec['rt']:.3f}) lr {rec['lr']:.3g} {rec['train_seconds']:.0f}s")
    if "val_top1" in rec:
        s += f" | val top1 {rec['val_top1']:.2f} top5 {rec['val_top5']:.2f}"
        if not dense:
            s += f" ratio {rec['val_real_ratio']:.3f}"
        if rec.get("val_official_gflops") is not None:
            s += f" {rec['val_official_gflops']:.3f} GFLOPs"
    return s


def train(model: torch.nn.Module, train_set: Dataset, config: TrainConfig | None = None,
          val_set: Dataset | None = None, resume: str | None = None, **kwargs) -> Trainer:
    """Build a :class:`Trainer`, optionally resume it from ``resume``, train to the end; returns the trainer."""
    trainer = Trainer(model, train_set, config, val_set, **kwargs)
    if resume:
        trainer.resume(resume)
    trainer.fit()
    return trainer
