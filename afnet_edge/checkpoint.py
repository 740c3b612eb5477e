"""Strict checkpoint loading and saving: official release files and afnet_edge's own format.

A generic driver over the registry: the official key layouts are mapped by each family's ``checkpoint_filter`` hook
(next to the model it serves, e.g. ``afnet_edge/models/afnet_resnet.py``); this module reads files, removes the
DataParallel ``module.`` prefix, checks strictly and copies. The families registered today recognise
(``shared/spec/afnet-architecture.md`` §10, ``official-checkpoint-keys/*.json``):

* **official TSN checkpoints** (``ckpt.pth.tar``): a dict whose ``state_dict`` keys are ``module.base_model.*`` and,
  for ResNet, ``module.new_fc.*`` (DataParallel prefix). Also accepted without the ``module.`` prefix, and with the
  official TSM wrapper names (``conv1.net.weight``) for the dense ``tsm_resnet50`` baseline.
* **official ImageNet backbone files**: ``state_dict`` keys ``module.<backbone key>``. They are loaded into
  ``model.base_model``; the ImageNet classifier (ResNet ``fc.*``, which the video model replaces by Dropout; a
  MobileNet ``fc.3.*`` whose class count differs) is dropped *explicitly* and listed in the returned report.
* **multi-part files** (e.g. AdaFocus V1's ``glancer``/``focuser``/``policy``/``fc``): flattened by the family's
  ``read_state_dict`` hook before anything else.
* **afnet_edge checkpoints** written by :func:`save_checkpoint`: ``{"format": "afnet_edge", "arch", "num_frames",
  "num_classes", "tsm", "state_dict", ...}``.

Every load is strict: a missing key, an unexpected key or a shape mismatch raises :class:`CheckpointError` naming the
keys — never a silent partial load. Saving is atomic (temporary file + rename).
"""
from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from typing import cast

import torch

from .models.registry import MappedCheckpoint, entry_of, family_hooks, find_entry

FORMAT = "afnet_edge"
FORMAT_VERSION = 1
OFFICIAL_TOP_LEVEL_KEYS = ("epoch", "arch", "state_dict", "optimizer", "best_prec1", "val_acc_top1", "val_acc_top5",
                           "val_big_rate", "val_FLOPs", "tr_big_rate", "tr_acc_top1", "tr_acc_top5", "train_loss",
                           "train_loss_cls", "train_loss_ls", "valid_loss", "epoch_log")
_SHOW = 8


class CheckpointError(ValueError):
    """The file is not a checkpoint, or it does not fit the model (the message names the keys involved)."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did: ``kind`` of file, ``dropped`` keys deliberately not loaded, file ``meta``."""

    kind: str
    path: str
    dropped: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------- reading
#: First bytes of the files ``torch.save`` writes: a zip archive (torch >= 1.6) or a pickle (protocol >= 2).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _not_a_checkpoint(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint: '{path}' is not a PyTorch checkpoint ({why})")


def _read(path) -> object:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint: no such file '{path}'")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint: '{path}' is a directory, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise _not_a_checkpoint(path, "the file is empty")
    if not head.startswith(_TORCH_MAGIC):
        # A text file parses as an old pickle protocol and torch would answer with unrelated advice: say it plainly.
        raise _not_a_checkpoint(path, "torch.save writes a zip archive or a binary pickle; this file is neither")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):  # a real pickle with classes beyond tensors (not a random file)
            raise CheckpointError(f"checkpoint: '{path}' holds Python objects beyond tensors and plain values; "
                                  f"afnet_edge loads with weights_only=True for safety — re-save the tensors") from None
        raise _not_a_checkpoint(path, "torch.load cannot read it") from None
    except Exception as e:  # torch.load raises many types (KeyError, RuntimeError, EOFError…) on non-checkpoints
        raise _not_a_checkpoint(path, f"torch.load failed: {type(e).__name__}") from None


def _family_state_dict(obj, path, first=None) -> dict | None:
    """The first answer of the families' ``read_state_dict`` hooks (``first``'s family, then registration order);
    a hook's ValueError becomes a :class:`CheckpointError` naming the file."""
    hooks = family_hooks()
    if first is not None:
        hooks = [first.hooks] + [h for h in hooks if h is not first.hooks]
    for h in hooks:
        if h.read_state_dict is not None:
            try:
                sd = h.read_state_dict(obj)
            except ValueError as e:
                raise CheckpointError(f"checkpoint: '{path}' {e}") from None
            if sd is not None:
                return sd
    return None


def _state_dict_of(obj, path, first=None) -> dict:
    """The state dict of a loaded file: a family's ``read_state_dict`` answer (``first``: the entry asked first),
    else the ``state_dict`` entry, else the file itself when it is a flat dict of tensors."""
    family_sd = None if _is_own(obj) else _family_state_dict(obj, path, first)
    if family_sd is not None:
        sd = family_sd
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = obj["state_dict"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj
    else:
        raise CheckpointError(f"checkpoint: '{path}' has no 'state_dict' of tensors (top-level keys: "
                              f"{sorted(obj)[:_SHOW] if isinstance(obj, dict) else type(obj).__name__})")
    if not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise CheckpointError(f"checkpoint: '{path}' state_dict is empty or holds non-tensor entries")
    return sd


def _strip(sd: dict, prefix: str) -> dict:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _is_own(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _describe(sd: dict, arch: object) -> dict:
    """Merge the families' ``checkpoint_info`` answers: the first non-None value of each of ``kind``,
    ``num_frames``, ``num_classes``, ``options`` (model options the weights fix, e.g. ``{"width": 0.25}``); ``families``: the families whose answer has a ``kind`` (they recognise the
    layout), in the same order — only those that recognised their own marker keys when any did.

    Order: the entry of ``arch`` first; then families that recognised their own marker keys (answer
    ``"marker": True``); then the rest; registration order within each group (deterministic)."""
    own = find_entry(arch)
    answers = [(h, h.checkpoint_info(sd)) for h in family_hooks()]
    answers.sort(key=lambda a: (own is None or a[0] is not own.hooks, not a[1].get("marker")))  # stable
    merged: dict = {"kind": None, "num_frames": None, "num_classes": None, "options": None}
    for _, answer in answers:
        for k, v in answer.items():
            if k in merged and merged[k] is None and v is not None:
                merged[k] = v
    marked = [h.family for h, a in answers if a.get("kind") is not None and a.get("marker")]
    merged["families"] = marked or [h.family for h, a in answers if a.get("kind") is not None]
    return merged


def inspect_checkpoint(path) -> dict:
    """Describe a checkpoint without a model: ``kind``, ``arch`` (if stored), ``num_frames`` (from the navigation
    weights), ``num_classes`` (from the classifier), ``tsm`` (if stored), ``options`` (``create_model`` options the
    weights fix, e.g. ``{"width": 0.25}`` for a reduced-width ResNet; ``{}`` when none), ``num_tensors``.

    For official files the registered families' ``read_state_dict`` hooks read multi-part files, their
    ``checkpoint_info`` hooks the layout, T and the classes; ``families`` (official files only) names the families
    that recognise the layout (only those recognising their own marker keys when any does; ``[]`` when none)."""
    obj = _read(path)
    sd = _state_dict_of(obj, path)
    own = _is_own(obj)
    if not own:
        sd = _strip(sd, "module.")
    d = _describe(sd, obj.get("arch") if own else None)
    kind = "afnet_edge" if own else (d["kind"] or "official")
    stored = (cast(dict, obj).get("model_options") or {}) if own else {}
    info = {"kind": kind, "num_tensors": len(sd), "num_frames": d["num_frames"], "num_classes": None,
            "options": {**stored, **(d["options"] or {})}}          # what the weights fix wins
    if kind != "official_imagenet":
        info["num_classes"] = d["num_classes"]
    if own:
        for k in ("arch", "num_frames", "num_classes", "tsm"):
            info[k] = obj.get(k, info.get(k))
    else:
        info["families"] = d["families"]
        if isinstance(obj, dict) and isinstance(obj.get("arch"), str):
            info["official_arch"] = obj["arch"]
    return info


# ------------------------------------------------------------------------------------------------------- loading
def _fmt(keys) -> str:
    keys = sorted(keys)
    more = f" … (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def _compare(target: dict, sd: dict, path: str, where: str, trained_frames: int | None = None,
             model_frames: int | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``sd`` has exactly the keys and shapes of ``target``. When the file's
    clip length ``trained_frames`` (from the family's ``checkpoint_info`` or the afnet_edge file) differs from the
    model's and shapes differ, the message leads with that (the usual cause) instead of a list of shapes."""
    missing = set(target) - set(sd)
    unexpected = set(sd) - set(target)
    mismatched = [k for k in set(target) & set(sd) if tuple(target[k].shape) != tuple(sd[k].shape)]
    if not (missing or unexpected or mismatched):
        return
    if mismatched and trained_frames is not None and model_frames is not None and trained_frames != model_frames:
        k = min(mismatched, key=lambda n: (not n.endswith(".weight"), n))  # a weight says more than a bias
        raise CheckpointError(
            f"checkpoint: '{path}': this checkpoint was trained with T={trained_frames}, the model has "
            f"T={model_frames} (num_frames={model_frames}); use --frames {trained_frames} (create_model(..., "
            f"num_frames={trained_frames})). {len(mismatched)} frame-dependent weight(s) differ, e.g. {k}: file "
            f"{tuple(sd[k].shape)} vs model {tuple(target[k].shape)}")
    lines = [f"checkpoint: '{path}' does not fit {where}:"]
    if mismatched:
        detail = "; ".join(f"{k}: file {tuple(sd[k].shape)} vs model {tuple(target[k].shape)}"
                           for k in sorted(mismatched)[:_SHOW])
        lines.append(f"{len(mismatched)} shape mismatch(es): {detail}")
    if missing:
        lines.append(f"{len(missing)} missing key(s): {_fmt(missing)}")
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected key(s): {_fmt(unexpected)}")
    raise CheckpointError(" ".join(lines))


def _copy_into(module: torch.nn.Module, sd: dict) -> None:
    # Everything was checked; strict=True is a second guard. Dtype follows the model (copy_ casts).
    module.load_state_dict(sd, strict=True)


def _map_official(model: torch.nn.Module, sd: dict, path: str) -> MappedCheckpoint:
    entry = entry_of(model)
    arch = getattr(model, "arch", type(model).__name__)
    if entry is None:
        raise CheckpointError(f"checkpoint: '{path}' is an official checkpoint, but model {arch} is not a registered "
                              f"afnet_edge model, so no key mapping is known for it")
    try:
        mapped = entry.hooks.checkpoint_filter(sd, model)
    except ValueError as e:
        raise CheckpointError(f"checkpoint: '{path}' {e}") from None
    if not isinstance(mapped, MappedCheckpoint):
        raise TypeError(f"the checkpoint_filter of {arch} returned {type(mapped).__name__}, not a MappedCheckpoint")
    return mapped


def load_checkpoint(model: torch.nn.Module, path) -> LoadReport:
    """Load an official or afnet_edge checkpoint into ``model`` strictly.

    Official files go through the family hooks: ``read_state_dict`` (multi-part files, the model's family asked
    first), then the model family's ``checkpoint_filter`` (layout detection and key mapping).
    Returns a :class:`LoadReport`. Raises :class:`CheckpointError` (a ``ValueError``) when the file is not a
    checkpoint or does not fit the model, ``FileNotFoundError`` when it does not exist.
    """
    path = os.fspath(path)
    obj = _read(path)
    sd = _state_dict_of(obj, path, entry_of(model))
    arch = getattr(model, "arch", type(model).__name__)
    if _is_own(obj):
        if obj.get("arch") != arch:
            raise CheckpointError(f"checkpoint: '{path}' holds a {obj.get('arch')!r} model, not {arch!r}")
        report = LoadReport(kind="afnet_edge", path=path, meta={k: v for k, v in obj.items() if k != "state_dict"})
        stored = cast(dict, obj).get("num_frames")  # _is_own: a dict
        trained = stored if isinstance(stored, int) else _describe(sd, arch)["num_frames"]
        _compare(model.state_dict(), sd, path, f"model {arch}", trained, getattr(model, "num_frames", None))
        _copy_into(model, sd)
        return report
    sd = _strip(sd, "module.")
    trained = _describe(sd, arch)["num_frames"]  # the families' checkpoint_info hooks: None where T is not in the file
    mapped = _map_official(model, sd, path)
    report = LoadReport(kind=mapped.kind, path=path, dropped=sorted(mapped.dropped))
    if not mapped.into:  # a whole-model (video) checkpoint: its official training entries; a backbone file has none
        report.meta = {k: obj[k] for k in ("epoch", "arch", "best_prec1") if isinstance(obj, dict) and k in obj}
    target_module = model.get_submodule(mapped.into) if mapped.into else model
    # Dropped keys the target has keep their initialisation (e.g. a classifier whose class count differs).
    target = {k: v for k, v in target_module.state_dict().items() if k not in set(mapped.dropped)}
    _compare(target, mapped.state_dict, path, mapped.where or f"model {arch}", trained,
             getattr(model, "num_frames", None))
    if len(target) == len(target_module.state_dict()):
        _copy_into(target_module, mapped.state_dict)
    else:
        target_module.load_state_dict(mapped.state_dict, strict=False)  # strictness was enforced by _compare
    return report


# ------------------------------------------------------------------------------------------------------- saving
def _atomic_save(obj, path) -> None:
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"checkpoint: directory '{d}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp_ckpt_", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(model: torch.nn.Module, path, **extra) -> None:
    """Save ``model`` in afnet_edge's format (atomically). ``extra`` entries (epoch, optimizer state, …) are stored
    alongside and returned in ``LoadReport.meta`` on load; they must be tensors or plain Python values."""
    reserved = {"format", "format_version", "arch", "num_frames", "num_classes", "tsm", "config", "state_dict",
                "model_options"}
    clash = reserved & set(extra)
    if clash:
        raise ValueError(f"save_checkpoint: extra keys {sorted(clash)} are reserved")
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": getattr(model, "arch", ""),
           "num_frames": getattr(model, "num_frames", None), "num_classes": getattr(model, "num_classes", None),
           "tsm": getattr(model, "tsm", None),
           "config": model.config() if hasattr(model, "config") else {},
           "model_options": _model_options(model),
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    _atomic_save(obj, path)


def _model_options(model: torch.nn.Module) -> dict:
    """The family's ``create_model`` options (its CLI options: ``clusters``, ``patch_size``, …) as the model holds
    them, for those the weights do not fix (a full-video model's K): :func:`inspect_checkpoint` reports them under
    ``options`` and the CLI rebuilds the same model from the file."""
    entry = entry_of(model)
    if entry is None:
        return {}
    values = {o.option: getattr(model, o.option, None) for o in entry.hooks.cli_options}
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def to_official_state_dict(model: torch.nn.Module) -> dict:
    """``model.state_dict()`` with the official DataParallel prefix (``module.base_model.*``, ``module.new_fc.*``)."""
    return {"module." + k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_official_checkpoint(model: torch.nn.Module, path, epoch: int = 0, **logs) -> None:
    """Write the official ``ckpt.pth.tar`` layout (spec §10): ``state_dict`` with ``module.`` keys plus the official
    top-level entries (``epoch``, ``arch``, ``best_prec1``, …; missing ones are filled with neutral values)."""
    entry = entry_of(model)
    arch = entry.official_arch if entry is not None else getattr(model, "arch", "")
    obj = {k: [] for k in ("val_acc_top1", "val_acc_top5", "val_big_rate", "val_FLOPs", "tr_big_rate", "tr_acc_top1",
                           "tr_acc_top5", "train_loss", "train_loss_cls", "train_loss_ls", "valid_loss", "epoch_log")}
    obj.update(epoch=epoch, arch=arch,
               state_dict=to_official_state_dict(model), optimizer={}, best_prec1=0.0)
    unknown = set(logs) - set(OFFICIAL_TOP_LEVEL_KEYS)
    if unknown:
        raise ValueError(f"save_official_checkpoint: unknown entries {sorted(unknown)}; expected some of "
                         f"{list(OFFICIAL_TOP_LEVEL_KEYS)}")
    obj.update(logs)
    _atomic_save(obj, path)
