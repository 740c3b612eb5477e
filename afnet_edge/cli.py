"""``afnet-edge`` command line: thin wrappers that parse, call library functions and print.

Sub-commands live with the code they drive: each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``
that adds its parsers and sets ``func(args) -> int``. Errors a user can fix (bad arguments, missing files, missing
optional packages) print one line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys

# Modules adding sub-commands (each: register(subparsers)). Order = order in --help.
COMMAND_MODULES = (
    "afnet_edge.cli",
    "afnet_edge.export.cli",
    "afnet_edge.training.commands",
    "afnet_edge.bench",
)

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


class _Parser(argparse.ArgumentParser):
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


def add_model_args(p: argparse.ArgumentParser, model_default: str | None = "af_resnet50",
                   positional: bool = False) -> None:
    """Common model options: name, --frames, --classes, --no-tsm, --checkpoint."""
    from .models import list_models
    if positional:
        p.add_argument("model", choices=list_models(), metavar="MODEL", help=f"one of {', '.join(list_models())}")
    else:
        p.add_argument("--model", default=model_default, choices=list_models(), metavar="MODEL",
                       help=f"one of {', '.join(list_models())} (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=None, help="frames per clip T (default: model default)")
    p.add_argument("--classes", type=positive_int, default=None,
                   help="number of classes (default: from the checkpoint, else 174)")
    p.add_argument("--no-tsm", action="store_true", help="AF-ResNet without temporal shift (TSN variant)")
    p.add_argument("--checkpoint", default=None, help="official or afnet_edge checkpoint file")


def build_model(args, **config):
    """Model from the common options; loads ``--checkpoint`` (inferring T and classes from it when not given)."""
    from . import create_model
    from .models import model_entry
    options = {}
    if args.no_tsm:
        if not args.model.startswith("af_resnet"):
            raise ValueError(f"--no-tsm applies to af_resnet50/af_resnet101 only, not {args.model}")
        options["tsm"] = False
    frames, classes, state = args.frames, args.classes, None
    if args.checkpoint:
        from .checkpoint import inspect_checkpoint
        info = inspect_checkpoint(args.checkpoint)
        frames = frames or info.get("num_frames")
        classes = classes or info.get("num_classes")
    frames = frames or model_entry(args.model).default_frames
    model = create_model(args.model, num_classes=classes or 174, num_frames=frames, **options, **config)
    if args.checkpoint:
        from .checkpoint import load_checkpoint
        load_checkpoint(model, args.checkpoint)
    return model


# --------------------------------------------------------------------------------------------------- core commands
def _cmd_models(args) -> int:
    from .models import model_entry, list_models
    for name in list_models():
        e = model_entry(name)
        print(f"{name:16s} {e.family:6s} T={e.default_frames:<3d} {e.doc}")
    return 0


def _cmd_flops(args) -> int:
    from .flops import count_flops, format_flops
    model = build_model(args)
    res = count_flops(model, ratio=args.ratio, image_size=args.size)
    print(json.dumps(res, indent=2) if args.json else format_flops(res))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("flops", help="official FLOPs accounting (spec §9) and executed MACs")
    add_model_args(p, positional=True)
    p.add_argument("--ratio", type=ratio_arg, default=0.5, help="selection ratio r in (0, 1] (default: 0.5)")
    p.add_argument("--size", type=positive_int, default=224, help="input height = width (default: 224)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_flops)

    from .demo import register as register_demo
    from .predict import register as register_predict
    register_predict(sub)
    register_demo(sub)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="afnet-edge", description="AFNet video recognition that really skips frames.")
    parser.add_argument("--version", action="version", version=f"afnet-edge {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def main(argv=None) -> int:
    try:
        parser = make_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, KeyError):
            msg = f"missing key {msg}"
        print(f"afnet-edge: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("afnet-edge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
