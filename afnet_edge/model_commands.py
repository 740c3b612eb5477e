"""``afnet-edge models`` and ``afnet-edge flops`` (generic over the registry: family, T and input size per model)."""
from __future__ import annotations

import json

from .cli_args import add_model_args, build_model, positive_int, ratio_arg
from .flops import count_flops, format_flops
from .models import list_models, model_entry


def _cmd_models(args) -> int:
    for name in list_models():
        e = model_entry(name)
        print(f"{name:16s} {e.family:6s} T={e.default_frames:<3d} {e.doc.replace('``', '')}")  # no RST markup
    return 0


def _cmd_flops(args) -> int:
    model = build_model(args)
    size = args.size if args.size is not None else model_entry(args.model).default_size
    res = count_flops(model, ratio=args.ratio, image_size=size)
    print(json.dumps(res, indent=2) if args.json else format_flops(res))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("flops", help="official FLOPs accounting (spec §9) and executed MACs")
    add_model_args(p, positional=True)
    p.add_argument("--ratio", type=ratio_arg, default=0.5, help="selection ratio r in (0, 1] (default: 0.5)")
    p.add_argument("--size", type=positive_int, default=None,
                   help="input height = width (default: the model's input size, 224)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_flops)
