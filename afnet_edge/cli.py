"""``afnet-edge`` command line: the dispatcher only.

Sub-commands live with the code they drive: each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``
that adds its parsers and sets ``func(args) -> int``. Errors a user can fix (bad arguments, missing files, missing
optional packages) print one line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .cli_args import USER_ERRORS, Parser, UsageError

# Every module adding sub-commands (each: register(subparsers)). Order = order in --help.
COMMAND_MODULES = (
    "afnet_edge.model_commands",
    "afnet_edge.predict",
    "afnet_edge.demo",
    "afnet_edge.export.cli",
    "afnet_edge.serve.cli",
    "afnet_edge.training.commands",
    "afnet_edge.bench.cli",
    "afnet_edge.bench.project_cli",
)


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="afnet-edge", description="AFNet video recognition that really skips frames.")
    parser.add_argument("--version", action="version", version=f"afnet-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


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
