"""Model registry: ``create_model(name, ...)``, ``list_models()`` and the hooks every model family plugs in.

A family (one models file) registers each of its models with :func:`register_model`, giving the factory and a
:class:`FamilyHooks` that carries everything the generic drivers need to know about it:

* ``checkpoint_filter`` / ``checkpoint_info`` — the official-checkpoint key mapping (``checkpoint_filter_fn`` in
  the manner of timm) used by :mod:`afnet_edge.checkpoint`;
* ``flops_walk`` — the official FLOPs accounting and executed MACs walk used by :mod:`afnet_edge.flops`;
* ``export`` — what ONNX export records and checks for the family (:class:`ExportAdapter`);
* ``cli_flags`` / ``cli_options`` — family-specific command-line flags (:class:`CliFlag`, e.g. ``--no-tsm``) and
  value options (:class:`CliOption`, e.g. ``--patch-size 96``);
* ``read_state_dict`` — optional: one state dict from a file layout the generic reader does not know (multi-part
  files);
* ``flops_note`` — optional: the cost line ``afnet-edge flops`` prints for a model without frame selection;
* ``train`` — the family's training recipe (:class:`TrainRecipe`: optimiser groups, schedule and defaults, frame
  sampling) used by :mod:`afnet_edge.training`; the default is the official AFNet/TSN recipe;

and per model ``default_frames``, ``default_size``, ``official_arch`` and :class:`BenchDefaults`. The drivers
(checkpoint, flops, the CLI, export, bench) look these up by ``model.arch`` / the model name and never dispatch on
model classes or names. ``docs/layout.md`` ("Adding a model family") shows the steps.

This module imports nothing of the project: the families import it, the drivers import the families.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import torch

if TYPE_CHECKING:  # typing only: the walk lives in a sibling module that imports torch.nn
    from .flops_walk import FlopsWalk

StateDict = dict[str, torch.Tensor]


# ------------------------------------------------------------------------------------------------ checkpoint hooks
@dataclass
class MappedCheckpoint:
    """What a family's ``checkpoint_filter`` made of an official state dict.

    ``kind``: the layout it detected (``"official_tsn"``, ``"official_imagenet"``, or a family's own name).
    ``state_dict``: keyed like ``model.get_submodule(into).state_dict()`` (the whole model when ``into`` is ``""``).
    ``dropped``: official keys deliberately not loaded (e.g. an ImageNet classifier); listed in the load report. Keys
    of the target module named here keep their initialisation and are not required.
    ``where``: how error messages name the target (default ``"model <arch>"``).
    """

    kind: str
    state_dict: StateDict
    into: str = ""
    dropped: list[str] = field(default_factory=list)
    where: str | None = None


CheckpointFilter = Callable[[StateDict, Any], MappedCheckpoint]
"""``checkpoint_filter(state_dict, model) -> MappedCheckpoint``: map an official state dict (DataParallel ``module.``
prefix already removed) onto ``model`` (the family's model class): detect the layout, rename keys, pick the target
submodule and drop keys on purpose. Raise ``ValueError`` (turned into a ``CheckpointError`` naming the file) when the
layout cannot fit the model. Strictness (missing / unexpected keys, shapes) is the driver's job."""

CheckpointInfo = Callable[[StateDict], dict[str, Any]]
"""``checkpoint_info(state_dict) -> dict``: describe an official-layout state dict without a model: any of
``kind``, ``num_frames``, ``num_classes`` (None or absent where this family cannot tell); ``{}`` when the layout is
not its own. ``"marker": True`` says the family recognised marker keys that only its own layout has (its answer then
wins over families that merely accept the file's general shape)."""

FlopsWalker = Callable[["FlopsWalk", Any, int, str], None]
"""``flops_walk(walk, model, size, head)``: walk ``model`` (the family's model class) for a square ``size`` × ``size``
input, adding official and executed terms to ``walk`` (``head``: ``"video"`` or ``"imagenet"``, see
:func:`afnet_edge.flops.count_flops`)."""


StateDictReader = Callable[[Any], StateDict | None]
"""``read_state_dict(obj) -> StateDict | None``: one flat state dict of a loaded file ``obj`` (what ``torch.load``
returned, weights only) whose layout the generic reader does not know (e.g. a file of several part dicts), or None
when ``obj`` is not such a file. Consulted by :mod:`afnet_edge.checkpoint` before its generic extraction (a
``state_dict`` entry or a flat dict of tensors); the result then goes through ``checkpoint_info`` /
``checkpoint_filter`` like any official state dict."""

FlopsNote = Callable[[Any], str]
"""``flops_note(model) -> str``: the short description ``format_flops`` prints after the official count of a model
without frame selection (default ``"dense model: every frame computed"``), stored as ``cost_note`` in the result of
:func:`afnet_edge.flops.count_flops`."""

def no_checkpoint_info(state_dict: StateDict) -> dict[str, Any]:
    """``checkpoint_info`` of a family that cannot describe official files without a model."""
    return {}


# ---------------------------------------------------------------------------------------------------- export hooks
def _default_export_metadata(model: torch.nn.Module) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ExportAdapter:
    """What ONNX export needs to know about a family beyond the :class:`~afnet_edge.models.VideoClassifier` contract.

    ``metadata(model)``: family entries written into the ONNX metadata (after ``model``, ``num_frames``,
    ``num_classes``) and checked against the model when an artefact is verified, e.g. ``{"num_navigation": 10,
    "tsm": True}``.
    ``exportable``: False refuses export with ``reason``.
    ``wrapper(model) -> nn.Module``: the module traced for export and used as the PyTorch reference when an artefact
    is verified: ``clip (B, T, 3, H, W) -> logits (B, classes)``. It raises ValueError (with the reason) for a model
    of the family it cannot export. None: the AFNet path (compact execution with ``topk`` selection).
    ``selects_frames``: False for families without frame selection: the export's ``ratio`` / ``k`` / ``selection``
    metadata then record that every frame is computed (1.0, T, ``"none"``).
    ``flavours``: the export flavours the family supports (others are refused, with ``flavour_reason`` when given).
    ``input_frames(model) -> int``: frames of the exported ``clip`` input when it is not ``num_frames`` — families
    whose forward takes several clips receive them concatenated along time (AdaFocus V2-TSM/V1-TSM: the glance
    frames, then the focus frames); the family's metadata then records ``input_frames``. None: ``num_frames``.
    ``fp16_reason``: why the family's engines must build in fp32 (``--fp16`` is refused with it); "" allows fp16.
    """

    metadata: Callable[[torch.nn.Module], dict[str, Any]] = _default_export_metadata
    exportable: bool = True
    reason: str = ""
    wrapper: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    selects_frames: bool = True
    flavours: tuple[str, ...] = ("portable", "plugin")
    input_frames: Callable[[torch.nn.Module], int] | None = None
    flavour_reason: str = ""
    fp16_reason: str = ""


# ------------------------------------------------------------------------------------------------------- CLI hooks
@dataclass(frozen=True)
class CliFlag:
    """A family-specific on/off command-line flag setting one ``create_model`` option.

    ``CliFlag("--no-tsm", "tsm", False, "...")``: ``--no-tsm`` gives ``create_model(..., tsm=False)``; a checkpoint or
    export whose metadata says ``tsm=False`` sets the flag. Only models whose family declares the flag accept it.
    """

    flag: str
    option: str
    value: Any
    help: str

    @property
    def dest(self) -> str:
        """The argparse destination (``--no-tsm`` → ``no_tsm``)."""
        return self.flag.lstrip("-").replace("-", "_")


#: Value kinds a :class:`CliOption` may take; :mod:`afnet_edge.cli_args` parses each with its numeric parsers.
CLI_OPTION_TYPES = ("positive_int", "nonneg_int", "positive_float", "nonneg_float", "unit_float", "str")


@dataclass(frozen=True)
class CliOption:
    """A family-specific value-taking command-line option setting one ``create_model`` option.

    ``CliOption("--patch-size", "patch_size", "positive_int", "focus patch size P")``: ``--patch-size 96`` gives
    ``create_model(..., patch_size=96)``. ``type`` is one of :data:`CLI_OPTION_TYPES` (parsed by the CLI's numeric
    parsers, so bad values give the usual one-line error); ``choices`` restricts the values. Not given on the command
    line, the model's own default applies. Only models whose family declares the option accept it.
    """

    flag: str
    option: str
    type: str
    help: str
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in CLI_OPTION_TYPES:
            raise ValueError(f"CliOption {self.flag}: type must be one of {CLI_OPTION_TYPES}, got {self.type!r}")
        if not self.flag.startswith("--"):
            raise ValueError(f"CliOption flag must start with '--', got {self.flag!r}")

    @property
    def dest(self) -> str:
        """The argparse destination (``--patch-size`` → ``patch_size``)."""
        return self.flag.lstrip("-").replace("-", "_")


# -------------------------------------------------------------------------------------------------- training hooks
TrainingLoss = Callable[[torch.nn.Module, Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``loss(net, model, clip, target) -> (loss, logits)``: a family's own training objective on one batch. ``net`` is
the module to call for the forward pass (the model, or its DistributedDataParallel wrapper: call it once), ``model``
the bare model, ``clip`` the batch as the dataset gives it ``(B, T, 3, H, W)``, ``target (B,)`` int64. Returns the
0-dim loss to minimise and the ``(B, classes)`` logits counted as the training accuracy."""

ParamGroups = Callable[[torch.nn.Module, bool], list[dict]]
"""``param_groups(model, fc_lr5) -> [{"params", "lr_mult", "decay_mult", "name"}, ...]``: the optimiser parameter
groups of a family's training recipe (every parameter in exactly one group; the group lr is ``lr · lr_mult``, its
weight decay ``weight_decay · decay_mult``)."""

def uniform_param_groups(model: torch.nn.Module, fc_lr5: bool = True) -> list[dict]:
    """One group ``"all"`` with every parameter, lr×1 and decay×1 (``fc_lr5`` ignored): recipes that train every
    parameter alike, e.g. bLVNet-TAM's ``SGD(model.parameters(), ...)`` with weight decay on BN and TAM too."""
    return [{"params": list(model.parameters()), "lr_mult": 1, "decay_mult": 1, "name": "all"}]


#: Training-time frame samplings a :class:`TrainRecipe` may name (see :func:`afnet_edge.video.train_indices`).
TRAIN_SAMPLINGS = ("tsn", "phase")


@dataclass(frozen=True)
class TrainRecipe:
    """How ``afnet-edge train`` trains a family when the command line does not say otherwise.

    ``defaults``: :class:`~afnet_edge.training.TrainConfig` fields the family sets, or ``defaults(model)`` giving
    them per model (e.g. ``{"lr_policy": "cosine",
    "nesterov": True, "clip_grad": None, "epochs": 50}``); fields not named keep the TrainConfig defaults (the
    official AFNet scripts' values). Options given explicitly (command line, ``TrainConfig(...)``) win.
    ``param_groups``: the optimiser groups (:data:`ParamGroups`); None = the official AFNet/TSN groups
    (:func:`afnet_edge.training.get_optim_policies`: first conv, BN without decay, Linear lr×5/×10, …).
    ``sampling``: how a training clip's T frames are drawn from a longer video (list data, and synthetic videos
    rendered with more frames than T): ``"tsn"`` one random frame per segment (TSN/AFNet), ``"phase"`` equal spacing
    with one random phase per clip (bLVNet-TAM).
    ``flip``: random horizontal flip of list-data training clips (the whole clip, probability 0.5); a bool, or
    ``flip(model) -> bool`` per model of the family (AdaFocusV2 flips, V2-TSM does not); read it with
    :meth:`flip_for`.
    ``short_side``: ``(train, eval)`` shorter side in pixels that list-data frames are resized to (aspect kept) before
    the crop, for a 224 crop (scaled with ``--size``); None = the AFNet/TSN fixed 240×320 resize. bLVNet-TAM:
    (256, 224), its frames stored at shorter side 256 and ``--disable_scaleup`` evaluation.
    ``note``: one line describing the recipe, printed by ``afnet-edge train``.
    ``loss``: the family's objective (:data:`TrainingLoss`) instead of AFNet's (cross-entropy on ``logits`` + the
    ratio loss over ``masks``); AdaFocusV2's two-branch objective is the example.
    ``clip_frames(model) -> int``: frames of one training / evaluation clip when not ``num_frames`` (AdaFocusV2-TSM:
    its glance and focus frames one after the other, as its export takes them).
    ``find_unused_parameters``: multi-process training wraps the model in DistributedDataParallel with this option:
    True for a family whose objective leaves parameters without gradient (AdaFocusV2: the backbones' unused
    ImageNet heads), which DDP otherwise refuses at the second iteration; it costs one graph traversal per step.
    """

    defaults: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] = field(default_factory=dict)
    param_groups: ParamGroups | None = None
    sampling: str = "tsn"
    flip: bool | Callable[[Any], bool] = False
    short_side: tuple[int, int] | None = None
    note: str = "official AFNet/TSN recipe"
    loss: TrainingLoss | None = None
    clip_frames: Callable[[Any], int] | None = None
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if self.sampling not in TRAIN_SAMPLINGS:
            raise ValueError(f"TrainRecipe sampling must be one of {TRAIN_SAMPLINGS}, got {self.sampling!r}")

    def flip_for(self, model: Any) -> bool:
        """Whether ``model``'s list-data training clips are flipped (``flip``, per model when callable)."""
        return bool(self.flip(model) if callable(self.flip) else self.flip)


# ----------------------------------------------------------------------------------------------------- bench hooks
@dataclass(frozen=True)
class BenchDefaults:
    """How a benchmark grid treats a model.

    ``skips_frames``: the model selects frames (navigation), so the grid sweeps ratios and compares the masked and
    compact backends; False for dense baselines (one ``dense`` backend, ``ratio`` None).
    ``frames``: the clip lengths T of a default grid.
    ``label``: the name printed in tables and plots.
    ``operating_point``: the published configuration that the cross-family comparison (``afnet-edge bench
    --cross-family``) measures: clip length, selection ratio (frame-skipping families) and model options as
    ``(name, value)`` pairs (e.g. ``(("patch_size", 128),)``); None: the model is not in that comparison.
    """

    skips_frames: bool
    frames: tuple[int, ...]
    label: str
    operating_point: OperatingPoint | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """A published configuration of a model (see :class:`BenchDefaults`): ``frames`` (T, or N for full-video),
    ``ratio`` (None for models that skip no frames), ``options`` (factory keyword arguments as pairs), ``source``
    (where it is published, for the tables)."""

    frames: int
    ratio: float | None = None
    options: tuple[tuple[str, Any], ...] = ()
    source: str = ""


@dataclass(frozen=True)
class FamilyHooks:
    """Everything the generic drivers know about one model family (shared by all its registered models)."""

    family: str                                  # short tag shown by ``afnet-edge models`` ("afnet", "dense", …)
    checkpoint_filter: CheckpointFilter
    flops_walk: FlopsWalker
    checkpoint_info: CheckpointInfo = no_checkpoint_info
    export: ExportAdapter = ExportAdapter()
    cli_flags: tuple[CliFlag, ...] = ()
    cli_options: tuple[CliOption, ...] = ()
    read_state_dict: StateDictReader | None = None
    flops_note: FlopsNote | None = None
    train: TrainRecipe = TrainRecipe()


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its factory, defaults and its family's hooks."""

    name: str
    factory: Callable[..., torch.nn.Module]
    hooks: FamilyHooks
    default_frames: int
    default_size: int
    bench: BenchDefaults
    official_arch: str                           # the ``arch`` string of the official checkpoints
    doc: str

    @property
    def family(self) -> str:
        return self.hooks.family


_REGISTRY: dict[str, ModelEntry] = {}


def _check_flags(hooks: FamilyHooks) -> None:
    own: list[CliFlag | CliOption] = [*hooks.cli_flags, *hooks.cli_options]
    for f in own:
        if sum(g.flag == f.flag for g in own) > 1:
            raise RuntimeError(f"flag {f.flag} is declared twice by family {hooks.family}")
        for e in _REGISTRY.values():
            theirs: list[CliFlag | CliOption] = [*e.hooks.cli_flags, *e.hooks.cli_options]
            for g in theirs:
                if g.flag == f.flag and g != f:
                    raise RuntimeError(f"flag {f.flag} is declared differently by {e.name} ({g}) and by {f}")


def register_model(name: str, hooks: FamilyHooks, default_frames: int, bench: BenchDefaults,
                   default_size: int = 224, official_arch: str | None = None):
    """Decorator registering a factory ``f(num_classes=..., num_frames=..., **options) -> VideoClassifier``.

    The model it builds must set ``model.arch = name`` (the drivers find the entry by it).
    """
    if not isinstance(hooks, FamilyHooks):
        raise TypeError(f"hooks must be a FamilyHooks, got {type(hooks).__name__}")

    def deco(fn):
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _check_flags(hooks)
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = ModelEntry(name, fn, hooks, default_frames, default_size, bench, official_arch or name, doc)
        return fn
    return deco


def unregister_model(name: str) -> ModelEntry:
    """Remove a registered model (for tests); returns its entry."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {list_models()}")
    return _REGISTRY.pop(name)


@contextlib.contextmanager
def registered(name: str, factory: Callable[..., torch.nn.Module], hooks: FamilyHooks, default_frames: int,
               bench: BenchDefaults, **kw) -> Iterator[ModelEntry]:
    """Register ``factory`` as ``name`` for the duration of a ``with`` block (tests, plug-ins)."""
    register_model(name, hooks, default_frames, bench, **kw)(factory)
    try:
        yield _REGISTRY[name]
    finally:
        _REGISTRY.pop(name, None)


def train_recipe(model: torch.nn.Module) -> TrainRecipe:
    """The :class:`TrainRecipe` of a model built by :func:`create_model` (the default AFNet/TSN recipe for a model
    without a registry entry)."""
    entry = entry_of(model)
    return entry.hooks.train if entry is not None else TrainRecipe()


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of a registered model name (ValueError naming the choices otherwise)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {list_models()}")
    return _REGISTRY[name]


def find_entry(name: object) -> ModelEntry | None:
    """The entry registered as ``name``, or None (for names read from files)."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def entry_of(model: torch.nn.Module) -> ModelEntry | None:
    """The entry of a model built by :func:`create_model` (looked up by ``model.arch``), or None."""
    return find_entry(getattr(model, "arch", None))


def family_hooks() -> list[FamilyHooks]:
    """The distinct :class:`FamilyHooks` of the registered models, in registration order."""
    out: list[FamilyHooks] = []
    for e in _REGISTRY.values():
        if not any(h is e.hooks for h in out):
            out.append(e.hooks)
    return out


def cli_flags() -> list[CliFlag]:
    """Every family-specific flag of the registered models (each once), in registration order."""
    out: list[CliFlag] = []
    for e in _REGISTRY.values():
        out += [f for f in e.hooks.cli_flags if f not in out]
    return out


def cli_options() -> list[CliOption]:
    """Every family-specific value option of the registered models (each once), in registration order."""
    out: list[CliOption] = []
    for e in _REGISTRY.values():
        out += [o for o in e.hooks.cli_options if o not in out]
    return out


def models_with_flag(flag: CliFlag | CliOption) -> list[str]:
    """Registered model names whose family declares ``flag`` (a :class:`CliFlag` or :class:`CliOption`)."""
    return [n for n, e in _REGISTRY.items() if flag in e.hooks.cli_flags or flag in e.hooks.cli_options]


_CONFIG_KEYS = ("execution", "selection", "ratio", "kernels", "temperature", "plan")


def create_model(name: str, num_classes: int = 174, num_frames: int | None = None, **options):
    """Build a registered model.

    Args:
        name: one of :func:`list_models` (``af_resnet50``, ``af_resnet101``, ``af_mobilenetv3``,
            ``tsn_resnet50``, ``tsm_resnet50``).
        num_classes: classifier outputs (174 = Something-Something V1 as in the official release).
        num_frames: frames per clip T (default: the model's default, 12 for AFNet, 8 for the baselines).
        options: architecture options (``tsm=True|False`` for AF-ResNet, ``dropout``) and inference configuration
            (``execution``, ``selection``, ``ratio``, ``kernels``, ``temperature``, ``plan``; see
            ``VideoClassifier.configure``).

    Returns the model in eval mode.
    """
    entry = model_entry(name)
    config = {k: options.pop(k) for k in _CONFIG_KEYS if k in options}
    try:
        model = entry.factory(num_classes=num_classes,
                              num_frames=entry.default_frames if num_frames is None else num_frames, **options)
    except TypeError as e:
        raise TypeError(f"create_model({name!r}): {e}") from None
    model.configure(**config)
    return model.eval()


def flag_options(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``create_model`` options of model ``name`` from flag and option values keyed by ``CliFlag.dest`` /
    ``CliOption.dest`` (argparse's namespace; an option whose value is None was not given).

    A set flag or given option that ``name``'s family does not declare raises ValueError naming the models that
    accept it.
    """
    entry = model_entry(name)
    options: dict[str, Any] = {}
    for flag in cli_flags():
        if not values.get(flag.dest):
            continue
        if flag not in entry.hooks.cli_flags:
            raise ValueError(f"{flag.flag} applies to {'/'.join(models_with_flag(flag))} only, not {name}")
        options[flag.option] = flag.value
    for opt in cli_options():
        if values.get(opt.dest) is None:
            continue
        if opt not in entry.hooks.cli_options:
            raise ValueError(f"{opt.flag} applies to {'/'.join(models_with_flag(opt))} only, not {name}")
        options[opt.option] = values[opt.dest]
    return options


def flags_from_info(name: str | None, info: Mapping[str, Any]) -> dict[str, Any]:
    """Flag and option values (keyed by ``CliFlag.dest`` / ``CliOption.dest``) that reproduce the options recorded in
    ``info`` (checkpoint or export metadata, e.g. ``{"tsm": False}`` → ``{"no_tsm": True}``; a checkpoint's
    ``info["options"]``, e.g. ``{"width": 0.25}`` → ``{"width": 0.25}``) for model ``name``; ``{}`` for an unknown
    name."""
    if name not in _REGISTRY:
        return {}
    hooks = _REGISTRY[name].hooks
    out: dict[str, Any] = {f.dest: True for f in hooks.cli_flags
                           if f.option in info and type(info[f.option]) is type(f.value) and info[f.option] == f.value}
    recorded = info.get("options") or {}
    out.update({o.dest: recorded[o.option] for o in hooks.cli_options if o.option in recorded})
    return out
