"""Argument helpers shared by every ``afnet-edge`` command module (a leaf: it imports no command module).

Command modules import from here, never from :mod:`afnet_edge.cli` (the dispatcher imports them).
"""
from __future__ import annotations

import argparse
import math

from .checkpoint import inspect_checkpoint, load_checkpoint
from .demo_model import DEMO_CHECKPOINT, demo_card, demo_summary
from .models import create_model, list_models, model_entry
from .models.registry import CliOption, cli_flags, cli_options, find_entry, flag_options, flags_from_info

#: The model of commands that take ``--model`` with neither a name nor a checkpoint naming one.
DEFAULT_MODEL = "af_resnet50"

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse prints a multi-line usage by default)
        raise UsageError(f"{self.prog}: {message}")


def _number_arg(cast, ok, expected: str, name: str):
    """argparse ``type=`` parser: ``cast(text)`` that must satisfy ``ok``; errors say ``must be <expected>``."""
    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return v
    parse.__name__ = name
    return parse


ratio_arg = _number_arg(float, lambda r: math.isfinite(r) and 0 < r <= 1, "a number in (0, 1]", "ratio")
positive_int = _number_arg(int, lambda v: v >= 1, "a positive integer", "positive_int")
nonneg_int = _number_arg(int, lambda v: v >= 0, "a non-negative integer", "nonneg_int")
nonneg_float = _number_arg(float, lambda v: 0 <= v < math.inf, "a finite number >= 0", "nonneg_float")
positive_float = _number_arg(float, lambda v: 0 < v < math.inf, "a finite number > 0", "positive_float")
unit_float = _number_arg(float, lambda v: 0 <= v <= 1, "a number in [0, 1]", "unit_float")

#: The parser of each :data:`~afnet_edge.models.registry.CLI_OPTION_TYPES` entry (family value options).
OPTION_PARSERS = {"positive_int": positive_int, "nonneg_int": nonneg_int, "positive_float": positive_float,
                  "nonneg_float": nonneg_float, "unit_float": unit_float, "str": str}


def _add_option(p: argparse.ArgumentParser, opt: CliOption) -> None:
    kw: dict = {"dest": opt.dest, "type": OPTION_PARSERS[opt.type], "default": None,
                "help": f"{opt.help} (default: the model's)"}
    if opt.choices is not None:
        kw["choices"] = list(opt.choices)
    p.add_argument(opt.flag, **kw)


def add_model_args(p: argparse.ArgumentParser, model_default: str | None = "af_resnet50",
                   positional: bool = False, weights: bool = False) -> None:
    """Common model options: name, --frames, --classes, the families' own flags (``--no-tsm``) and value options
    (``--patch-size 96``, ``--width-mult 0.25``), --checkpoint; with ``weights`` (commands whose output depends on trained weights:
    predict, export, verify) also ``--random-weights``, and without either the shipped demo model is used
    (:func:`resolve_weights`).

    Family flags and options come from the registry (:class:`~afnet_edge.models.registry.CliFlag`,
    :class:`~afnet_edge.models.registry.CliOption`); :func:`build_model` refuses one the chosen model's family does
    not declare."""
    if positional and weights:
        p.add_argument("model", nargs="?", default=None, choices=list_models(), metavar="MODEL",
                       help=f"one of {', '.join(list_models())} (default: the --checkpoint file's model, else the "
                            f"demo model's)")
    elif positional:
        p.add_argument("model", choices=list_models(), metavar="MODEL", help=f"one of {', '.join(list_models())}")
    else:
        p.add_argument("--model", default=model_default, choices=list_models(), metavar="MODEL",
                       help=f"one of {', '.join(list_models())} (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=None, help="frames per clip T (default: model default)")
    p.add_argument("--classes", type=positive_int, default=None,
                   help="number of classes (default: from the checkpoint, else 174)")
    for flag in cli_flags():
        p.add_argument(flag.flag, dest=flag.dest, action="store_true", help=flag.help)
    for opt in cli_options():
        _add_option(p, opt)
    if not weights:
        p.add_argument("--checkpoint", default=None, help="official or afnet_edge checkpoint file")
        return
    p.add_argument("--checkpoint", default=None,
                   help="official or afnet_edge checkpoint file (default: the demo model shipped in the package, "
                        "trained on synthetic clips)")
    p.add_argument("--random-weights", action="store_true",
                   help="use seeded random weights instead of the demo model (the classes then mean nothing)")


def resolve_weights(args) -> str | None:
    """Where a command offers ``--random-weights`` (:func:`add_model_args` with ``weights=True``) and neither it nor
    ``--checkpoint`` is given, point ``args.checkpoint`` at the shipped demo model and return the one line that says
    so; None otherwise. ``args.demo_model`` tells the command which case it is.

    Raises:
        ValueError: ``--random-weights`` together with ``--checkpoint``; or ``--model`` names another model than the
            demo model and no weights were given.
    """
    if not hasattr(args, "random_weights"):
        return None
    args.demo_model = False
    if args.random_weights:
        if args.checkpoint:
            raise ValueError("--random-weights: not with --checkpoint (pick one source of weights)")
        return None
    if args.checkpoint:
        return None
    card = demo_card()
    if args.model is not None and args.model != card["model"]:
        raise ValueError(f"--model {args.model}: no weights given and the shipped demo model is a {card['model']}; "
                         f"give --checkpoint FILE, or --random-weights for random weights")
    args.checkpoint = DEMO_CHECKPOINT
    args.demo_model = True
    return f"no --checkpoint: using the {demo_summary(card)} (--random-weights for random weights)"


def model_from_checkpoint(info: dict) -> str | None:
    """The registered model a checkpoint description (:func:`~afnet_edge.checkpoint.inspect_checkpoint`) names:
    its afnet_edge ``arch``, else the model whose ``official_arch`` is the file's; None when the file names none.

    Several families may share an official arch string (e.g. ``"resnet50"``): the candidates are then narrowed to the
    families that recognise the file's layout (``info["families"]``). When that leaves not exactly one model, the
    file does not say which model it is and ValueError asks for ``--model``, naming the candidates."""
    if find_entry(info.get("arch")) is not None:
        return info["arch"]
    official = info.get("official_arch")
    names = [n for n in list_models() if official is not None and model_entry(n).official_arch == official]
    if not names:
        return None
    families = info.get("families") or []
    fits = [n for n in names if not families or model_entry(n).family in families]
    if len(fits) == 1:
        return fits[0]
    others = [n for n in list_models() if model_entry(n).family in families]
    candidates = sorted(set(fits or names + others))
    layout = f", layout {info['kind']}" if info.get("kind") else ""
    raise ValueError(f"--checkpoint: the file (official arch {official!r}{layout}) does not say which model it is; "
                     f"pass --model (one of {', '.join(candidates)})")


def build_model(args, default_model: str = DEFAULT_MODEL, **config):
    """Model from the common options; loads ``--checkpoint``, taking the model name (when ``--model`` is None), T,
    the classes and the family flags (``--no-tsm``) and options (``--width-mult``) from it where not given. Commands with
    ``--random-weights`` get the demo model without a checkpoint (:func:`resolve_weights`; its note is left in
    ``args.weights_note`` for the command to print)."""
    args.weights_note = resolve_weights(args)
    info = inspect_checkpoint(args.checkpoint) if args.checkpoint else {}
    if getattr(args, "model", None) is None:
        args.model = model_from_checkpoint(info) or default_model
    for dest, value in flags_from_info(args.model, info).items():
        if getattr(args, dest, None) is None or isinstance(value, bool):  # an option given on the command line wins
            setattr(args, dest, value)
    options = flag_options(args.model, vars(args))
    frames = args.frames or info.get("num_frames") or model_entry(args.model).default_frames
    classes = args.classes or info.get("num_classes") or 174
    model = create_model(args.model, num_classes=classes, num_frames=frames, **options, **config)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    return model
