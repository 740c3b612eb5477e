"""FLOPs of afnet_edge models: the official AFNet accounting and the MACs the code really executes.

Two different questions, answered side by side by :func:`count_flops`:

1. **Official accounting** (``shared/spec/afnet-architecture.md`` §9): what the official ``forward_calc_flops``
   reports, reproduced term by term *with its quirks*, so that numbers compare with the paper:

   * conv: ``C_in·C_out·H_out·W_out·k²/groups`` (stem included; depthwise convs use their groups);
   * ResNet ample block with a downsample: ``9·C_in·H_out·W_out`` for its avg-pool (whenever a downsample exists)
     plus its 1×1 conv; stem max-pool ``9·C·H_out·W_out``;
   * focal blocks: residual conv (``downsample`` / ``res_connect``) **unscaled**, body convs (and the MobileNet SE
     term) × the selection ratio ``r`` = mean of the block's mask over the whole batch;
   * navigation: ``C·H·W`` (pool) + ``2·C`` (``conv_pool``) + ``4T`` per *frame* for ``conv_gs`` — the official code
     counts the per-clip 2T→2T grouped conv (``4T`` MACs) once per frame, i.e. ``4T²`` per clip, a tiny over-count;
   * ``dynamic_fusion``: ``C·H·W + 2·⌊C²/16⌋ + C``; MobileNet SE: ``C·H·W + 2·⌊C²/4⌋ + C`` (with ``C/4``, not the
     rounded hidden width); ResNet ``base_transform``: ``(C/α)·C·H_low·W_low``;
   * head, ResNet: global pool ``2048·H·W`` + ``c_in·c_out`` of the backbone's ``fc``; in the video (TSN) model
     ``fc`` is the ``Dropout`` that replaced it, so the official code counts ``2048·2048`` per frame and never the
     real classifier ``new_fc``. MobileNet: ``conv_last`` + ``960·1280 + 1280·num_classes`` (no pooling term);
   * nothing else (BN, activations, adds, TSM, upsampling, attention products);
   * per clip of ``T`` frames = per-frame count × T. The count is affine in ``r``:
     ``F(r) = F(0) + (F(1) − F(0))·r``.

   ``head="imagenet"`` counts the ImageNet backbone's classifier instead (ResNet ``fc`` = Linear(2048, 1000),
   MobileNet last Linear with 1000 outputs): with ``num_frames=1`` and ``r=1`` this gives the per-image numbers of the
   paper (AF-ResNet50 2.889, AF-ResNet101 4.977, AF-MobileNetV3 0.1945 GFLOPs).

   Dense baselines (TSN/TSM-ResNet50) use the standard ResNet convention of the TSM paper: the multiply-accumulates
   of every convolution and fully-connected layer per frame (BN, ReLU, pooling, residual adds not counted), × T.
   The temporal shift moves memory and adds nothing. ResNet-50 at 224²: 4.089 GMACs per frame → 32.7 per 8-frame
   clip.

2. **Executed MACs**: the multiply-accumulates of every ``Conv2d`` / ``Linear`` that a forward pass of this code runs,
   per clip, read from the model's modules (channels, kernels, strides, groups) with shape propagation:

   * ``compact``: focal bodies only on the selected frames (``k = ceil(r·T)`` per clip for a ratio, as ``topk``
     selection does, or the mask counts), focal residual convs on every frame, navigation (``conv_pool`` per frame,
     ``conv_gs`` once per clip), fusion attention, ``base_transform``, the real classifier (``new_fc``). The constant
     maps of unselected frames are cached per input size and not counted;
   * ``masked``: the official execution, every focal body on every frame (= compact with every frame selected).

   :func:`measure_macs` counts the same quantity from a real forward pass with hooks; the tests check that both agree
   module by module.

All values are per clip and in units of 10⁹ multiply-accumulates ("GFLOPs" as the paper and the official code say).

This module is the generic driver: each model family's ``flops_walk`` hook (registered with the model, written next
to it in ``afnet_edge/models/<family>.py``) walks its modules with the primitives of
:mod:`afnet_edge.models.flops_walk`; the terms above are those of the families registered today.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .kernels.reference import topk_count
from .models.common import VideoClassifier, check_ratio
from .models.flops_walk import FlopsWalk
from .models.registry import FlopsWalker, create_model, entry_of, list_models

__all__ = ["count_flops", "official_flops_table", "executed_macs_per_module", "measure_macs", "format_flops", "HEADS",
           "SIZE_MULTIPLE"]

HEADS = ("video", "imagenet")
SIZE_MULTIPLE = 32          # total stride of every backbone; keeps each stage's maps exact halves
MIN_SIZE = 32
GIGA = 1e9


# ------------------------------------------------------------------------------------------------------ helpers
def _walker(model: nn.Module) -> FlopsWalker:
    """The registered family's FLOPs walk of ``model`` (found by ``model.arch``)."""
    entry = entry_of(model)
    if entry is None or not isinstance(model, VideoClassifier):
        raise TypeError(f"model must be an afnet_edge video model (as made by afnet_edge.create_model, one of "
                        f"{', '.join(list_models())}), got {type(model).__name__}")
    return entry.hooks.flops_walk


def _check_image_size(image_size) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise TypeError(f"image_size must be an int (input height = width in pixels), got {image_size!r}")
    if image_size < MIN_SIZE or image_size % SIZE_MULTIPLE:
        raise ValueError(f"image_size must be a multiple of {SIZE_MULTIPLE} that is at least {MIN_SIZE} "
                         f"(the backbones' total stride; 224 is the trained size), got {image_size}")
    return image_size


def _check_masks(masks, model: nn.Module) -> list[torch.Tensor]:
    L, T = model.num_navigation, model.num_frames
    if not isinstance(masks, (list, tuple)):
        raise TypeError(f"masks must be a list of {L} tensors of shape (B, T={T}) in model order "
                        f"(as model(clip).masks returns), got {type(masks).__name__}")
    if len(masks) != L:
        raise ValueError(f"masks must hold one (B, T) tensor per navigation module: expected {L}, got {len(masks)}")
    out, batch = [], None
    for i, m in enumerate(masks):
        if not isinstance(m, torch.Tensor) or m.dim() != 2 or m.shape[1] != T or m.shape[0] < 1:
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"masks[{i}] must have shape (B, T) with T={T} and B >= 1, got {shape}")
        if batch is None:
            batch = m.shape[0]
        elif m.shape[0] != batch:
            raise ValueError(f"masks[{i}] has batch size {m.shape[0]} but masks[0] has {batch}; all masks must be "
                             f"(B, T) with the same B")
        m = m.detach().to("cpu", torch.float64)
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"masks[{i}] must contain only 0 and 1")
        out.append(m)
    return out


def _sum(terms, pred=lambda t: True, frames: float = 1.0, gate=None) -> float:
    """Σ per clip. ``frames``: multiplier of per-frame terms; ``gate(nav) -> factor`` for gated terms."""
    total = 0.0
    for t in terms:
        if not pred(t):
            continue
        v = t.value if t.per == "clip" else t.value * frames
        if t.nav is not None:
            v *= gate(t.nav)
        total += v
    return total


def _stages(terms) -> list[str]:
    seen = []
    for t in terms:
        if t.stage not in seen:
            seen.append(t.stage)
    return seen


# --------------------------------------------------------------------------------------------------- public API
def count_flops(model: nn.Module, ratio: float | None = None, image_size: int = 224, masks=None,
                head: str = "video") -> dict:
    """Official FLOPs accounting (spec §9) and executed MACs of one clip of ``model.num_frames`` frames.

    Args:
        model: an afnet_edge video model (``create_model(...)``; weights and device do not matter, nothing is run).
        ratio: selection ratio r in (0, 1] (default 0.5). Official count: every focal body × r. Executed count:
            ``k = ceil(r·T)`` selected frames per clip in every navigation module (as ``selection="topk"``).
            Give ``ratio`` or ``masks``, not both.
        image_size: input height = width in pixels, a multiple of 32, at least 32.
        masks: list of ``model.num_navigation`` 0/1 tensors of shape ``(B, T)`` in model order (what
            ``model(clip).masks`` returns). Official count: block l scaled by the mean of its mask over the whole
            batch (as the official code); executed count: the selected frames of each block, averaged per clip.
        head: ``"video"`` (default: the model's TSN head as the official code counts it) or ``"imagenet"``
            (the ImageNet backbone's 1000-class classifier; with ``num_frames=1`` and r=1 the paper's per-image
            numbers). Only the official count depends on it; executed MACs always use the model's real classifier.

    Returns a JSON-serialisable dict, every FLOP value in GFLOPs = 10⁹ multiply-accumulates **per clip**:

    * ``official_gflops``: the official count at ``ratio`` (or for ``masks``);
      ``official_gflops_r0`` / ``official_gflops_r1``: the affine coefficients' end points F(0), F(1)
      (``official_gflops_slope`` = F(1) − F(0));
    * ``executed_gmacs_compact``: conv/linear MACs the compact execution runs (focal bodies on selected frames);
      ``executed_gmacs_masked``: the masked (official, dense) execution; ``executed_gmacs_r0``: compact with no frame
      selected; ``selected_frames_per_clip``: frames per clip running each focal body (one per navigation module);
    * ``focal_body_gmacs_per_frame``: the body MACs of each focal block for one frame, in navigation order;
    * ``per_stage``: the same quantities per stage (stem, AF stages, plain stages, head);
    * ``model``, ``num_frames``, ``num_classes``, ``image_size``, ``head``, ``tsm``, ``ratio`` (for masks: the mean
      ratio over all blocks), ``ratio_source`` (``"ratio"`` / ``"masks"``), ``units``;
    * ``cost_note``: only for families with a ``flops_note`` hook, their one-line description of what runs on which
      frames (printed by :func:`format_flops` instead of "dense model: every frame computed").

    Raises ``TypeError`` for a model that is not an afnet_edge video model and ``ValueError`` for a bad ratio,
    image size, head or masks.
    """
    walker = _walker(model)
    note = entry_of(model).hooks.flops_note  # type: ignore[union-attr]  # _walker checked the entry
    size = _check_image_size(image_size)
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    T, L = model.num_frames, model.num_navigation
    if masks is not None and ratio is not None:
        raise ValueError("give either ratio or masks, not both (the masks define the selection)")
    if masks is not None:
        mk = _check_masks(masks, model)
        batch = mk[0].shape[0] if mk else 1
        official_ratio = [float(m.mean()) for m in mk]
        selected = [float(m.sum()) / batch for m in mk]
        mean_ratio = sum(official_ratio) / L if L else 1.0
        source = "masks"
    else:
        r = check_ratio(0.5 if ratio is None else ratio)
        official_ratio = [r] * L
        selected = [float(topk_count(r, T))] * L
        mean_ratio, source = r, "ratio"

    walk = FlopsWalk(model, T)
    walker(walk, model, size, head)
    if walk.nav_index != L:
        raise RuntimeError(f"flops: walked {walk.nav_index} navigation modules, the model declares {L}")

    def official(pred=lambda t: True, gate=lambda l: official_ratio[l]):
        return _sum(walk.official, pred, T, gate) / GIGA

    def executed(pred=lambda t: True, gate=lambda l: selected[l] / T):
        return _sum(walk.executed, pred, T, gate) / GIGA

    zero, one = (lambda l: 0.0), (lambda l: 1.0)
    per_stage = {}
    for st in _stages(walk.executed + walk.official):
        in_stage = (lambda name: lambda t: t.stage == name)(st)
        per_stage[st] = {
            "official_gflops": official(in_stage),
            "official_gflops_r0": official(in_stage, zero),
            "official_gflops_r1": official(in_stage, one),
            "executed_gmacs_compact": executed(in_stage),
            "executed_gmacs_masked": executed(in_stage, one),
        }
    body = [0.0] * L
    for t in walk.executed:
        if t.nav is not None:
            body[t.nav] += t.value / GIGA
    r0, r1 = official(gate=zero), official(gate=one)
    res = {
        "model": model.arch,
        "num_frames": T,
        "num_classes": model.num_classes,
        "image_size": size,
        "head": head,
        "tsm": bool(getattr(model, "tsm", False)),
        "ratio": mean_ratio,
        "ratio_source": source,
        "official_gflops": official(),
        "official_gflops_r0": r0,
        "official_gflops_r1": r1,
        "official_gflops_slope": r1 - r0,
        "executed_gmacs_compact": executed(),
        "executed_gmacs_masked": executed(gate=one),
        "executed_gmacs_r0": executed(gate=zero),
        "selected_frames_per_clip": selected,
        "focal_body_gmacs_per_frame": body,
        "per_stage": per_stage,
        "units": "per clip of num_frames frames; 1 GFLOP = 1e9 multiply-accumulates (the paper's FLOPs)",
    }
    if note is not None:  # the family's own cost description (its flops_note hook); absent for the others
        res["cost_note"] = note(model)
    return res


def executed_macs_per_module(model: nn.Module, image_size: int = 224, ratio: float | None = None,
                             masks=None) -> dict[str, float]:
    """Executed MACs per clip of every ``Conv2d`` / ``Linear``, keyed by module name (analytic, see
    :func:`count_flops` for the arguments). Used to compare with :func:`measure_macs` module by module."""
    walker = _walker(model)
    note = entry_of(model).hooks.flops_note  # type: ignore[union-attr]  # _walker checked the entry
    size = _check_image_size(image_size)
    T, L = model.num_frames, model.num_navigation
    if masks is not None:
        mk = _check_masks(masks, model)
        selected = [float(m.sum()) / mk[0].shape[0] for m in mk]
    else:
        selected = [float(topk_count(check_ratio(0.5 if ratio is None else ratio), T))] * L
    walk = FlopsWalk(model, T)
    walker(walk, model, size, "video")
    out: dict[str, float] = {}
    for t in walk.executed:
        v = t.value if t.per == "clip" else t.value * T
        if t.nav is not None:
            v *= selected[t.nav] / T
        out[t.name] = out.get(t.name, 0.0) + v
    return out


def official_flops_table(model_name: str, num_frames: int | None = None, image_size: int = 224,
                         head: str = "video", num_classes: int = 174, **options) -> dict:
    """Official accounting of a registered model without building its weights.

    Returns ``{"model", "num_frames", "image_size", "head", "official_gflops_r0", "official_gflops_r1",
    "official_gflops_slope"}`` (GFLOPs per clip): F(r) = r0 + slope·r. ``options`` go to ``create_model``
    (e.g. ``tsm=False``). Example: ``official_flops_table("af_resnet50", 12)`` → 22.128 + 12.562·r.
    """
    with torch.device("meta"):
        model = create_model(model_name, num_classes=num_classes, num_frames=num_frames, **options)
    res = count_flops(model, ratio=1.0, image_size=image_size, head=head)
    keys = ("model", "num_frames", "image_size", "head", "official_gflops_r0", "official_gflops_r1",
            "official_gflops_slope")
    return {k: res[k] for k in keys}


# ---------------------------------------------------------------------------------------------------- measured
@torch.no_grad()
def measure_macs(model: nn.Module, clip: torch.Tensor, masks=None, warmup: bool = True) -> dict:
    """Count conv/linear MACs of one real forward ``model(clip, masks=masks)`` with forward hooks.

    Runs the model in its current configuration (``execution``, ``selection``, ``ratio``) and mode. Each
    ``Conv2d`` call adds ``out.numel() · (C_in/groups) · kh · kw``, each ``Linear`` call ``out.numel() · in_features``.
    With ``warmup`` a first, uncounted forward fills the focal constant-map caches (computed once per input size and
    excluded from the executed count, as in a deployed model).

    Returns ``{"gmacs_per_clip": float, "per_module": {name: MACs per clip}, "masks": out.masks}``.
    Note that given ``masks`` replace the navigation modules, which then do not run (and are not counted).
    """
    if not isinstance(clip, torch.Tensor):
        raise TypeError(f"clip must be a torch.Tensor (B, T, 3, H, W), got {type(clip).__name__}")
    if warmup:
        model(clip, masks=masks)
    names = {id(m): n for n, m in model.named_modules()}
    counts: dict[str, float] = {}

    def hook(mod, inputs, out):
        if isinstance(mod, nn.Conv2d):
            macs = out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            macs = out.numel() * mod.in_features
        counts[names[id(mod)]] = counts.get(names[id(mod)], 0.0) + float(macs)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        out = model(clip, masks=masks)
    finally:
        for h in handles:
            h.remove()
    batch = out.logits.shape[0]
    per_module = {k: v / batch for k, v in counts.items()}
    return {"gmacs_per_clip": sum(per_module.values()) / GIGA, "per_module": per_module, "masks": out.masks}


# ------------------------------------------------------------------------------------------------------ printing
def format_flops(res: dict) -> str:
    """Human-readable table of a :func:`count_flops` result (what ``afnet-edge flops`` prints without --json)."""
    T = res["num_frames"]
    lines = [f"{res['model']}  T={T}  {res['image_size']}x{res['image_size']}  classes={res['num_classes']}  "
             f"tsm={'on' if res['tsm'] else 'off'}  head={res['head']}",
             "GFLOPs per clip (1 GFLOP = 1e9 multiply-accumulates, as the paper)"]
    sel = res["selected_frames_per_clip"]
    if sel:
        how = (f"r={res['ratio']:.4g}" if res["ratio_source"] == "ratio"
               else f"masks, mean r={res['ratio']:.4g}")
        lines.append(f"  official (spec 9)   {res['official_gflops_r0']:.3f} + {res['official_gflops_slope']:.3f}*r"
                     f" = {res['official_gflops']:.3f}  ({how})")
        ks = sorted(set(sel))
        ktxt = f"{ks[0]:g}" if len(ks) == 1 else f"{min(ks):g}..{max(ks):g}"
        lines.append(f"  executed compact    {res['executed_gmacs_compact']:.3f}  "
                     f"(focal bodies on {ktxt} of {T} frames per clip)")
        lines.append(f"  executed masked     {res['executed_gmacs_masked']:.3f}  (focal bodies on every frame)")
        lines.append(f"  executed, none sel. {res['executed_gmacs_r0']:.3f}")
    else:
        note = res.get("cost_note", "dense model: every frame computed")
        lines.append(f"  official            {res['official_gflops']:.3f}  ({note})")
        lines.append(f"  executed            {res['executed_gmacs_compact']:.3f}")
    lines.append(f"  {'stage':<14s}{'official':>10s}{'compact':>10s}{'masked':>10s}")
    for name, st in res["per_stage"].items():
        lines.append(f"  {name:<14s}{st['official_gflops']:>10.3f}{st['executed_gmacs_compact']:>10.3f}"
                     f"{st['executed_gmacs_masked']:>10.3f}")
    return "\n".join(lines)
