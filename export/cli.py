"""``afnet-edge export`` and ``afnet-edge verify`` (registered through ``afnet_edge.cli.COMMAND_MODULES``).

    afnet-edge export af_resnet50 --checkpoint ckpt.pth.tar --frames 12 --ratio 0.5 --batch 1 --onnx r50.onnx
    afnet-edge export af_resnet50 --checkpoint ckpt.pth.tar --trt r50.engine --fp16 --plugins auto
    afnet-edge verify --onnx r50.onnx --checkpoint ckpt.pth.tar
    afnet-edge verify --engine r50.engine --checkpoint ckpt.pth.tar
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

from afnet_edge.cli_args import add_model_args, build_model, positive_int, ratio_arg
from afnet_edge.demo_model import DEMO_CHECKPOINT, demo_card, demo_summary
from afnet_edge.models.registry import find_entry, flags_from_info

from . import runtime
from .engine import build_engine, read_sidecar, sidecar_path
from .onnx_export import GENERIC_KEYS, export_onnx, read_metadata
from .plugins import BY_NAME
from .trt_backend import find_plugin_library, load_tensorrt
from .verify import verify_engine, verify_onnx

#: Selection rules with static shapes (the only ones that can be exported).
EXPORTABLE_SELECTIONS = ("topk",)
DEFAULT_RATIO = 0.5
DEFAULT_BATCH = 1


def _selection_arg(text: str) -> str:
    """``--selection``: only exportable rules; threshold/gumbel get the reason they cannot be exported."""
    if text in ("threshold", "gumbel"):
        raise argparse.ArgumentTypeError(
            f"{text} cannot be exported: threshold/gumbel selection makes the compact batch size depend on the input "
            f"(data-dependent shapes); use topk with --ratio r (keeps ceil(r·T) frames per clip)")
    return text


def _cmd_export(args) -> int:
    if not args.onnx and not args.trt:
        raise ValueError("give --onnx OUT.onnx and/or --trt OUT.engine")
    if args.from_onnx:
        return _engine_from_onnx(args)
    args.ratio = DEFAULT_RATIO if args.ratio is None else args.ratio
    args.batch = DEFAULT_BATCH if args.batch is None else args.batch
    flavour = _choose_flavour(args)
    model = build_model(args)
    if args.size is None:  # the demo model's input size, else the official 224
        args.size = demo_card()["size"] if args.demo_model else 224
    size = (args.size, args.width or args.size)
    tmp = None
    onnx_path = args.onnx
    if onnx_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="afnet_edge_export_")
        onnx_path = os.path.join(tmp.name, "model.onnx")
    try:
        res = export_onnx(model, onnx_path, frames=model.num_frames, ratio=args.ratio, batch=args.batch,
                          dynamic_batch=args.dynamic_batch, flavour=flavour, opset=args.opset, size=size,
                          checkpoint=args.checkpoint)
        if args.onnx:
            counts = res.op_counts
            plugin_nodes = sum(v for k, v in counts.items() if k in BY_NAME)
            print(f"wrote {args.onnx}: {flavour}, {sum(counts.values())} nodes ({plugin_nodes} plugin), "
                  f"k={res.metadata['k']} of T={res.metadata['num_frames']}, batch {res.metadata['batch']}, "
                  f"{size[0]}×{size[1]}, {res.seconds:.1f} s")
        if args.trt:
            side = build_engine(onnx_path, args.trt, fp16=args.fp16, workspace_mib=args.workspace,
                                plugins="on" if flavour == "plugin" else "off", plugin_library=args.plugin_library,
                                backend=args.backend, timing_cache=args.timing_cache, max_batch=args.max_batch,
                                verbose=args.verbose, rtx_targets=args.rtx_targets)
            _print_engine(args.trt, side)
    finally:
        if tmp is not None:
            tmp.cleanup()
    # after every check passed (an error stays one line), once
    if args.weights_note:
        print(f"afnet-edge: {args.weights_note}", file=sys.stderr)
    if args.random_weights:
        print("afnet-edge: warning: --random-weights: the exported weights are random (the classes mean nothing)",
              file=sys.stderr)
    return 0


def _engine_from_onnx(args) -> int:
    """``--from-onnx FILE --trt OUT``: build the engine from an existing export (its metadata must name MODEL; the
    shape options given must agree with it: the export fixed them)."""
    if not args.trt or args.onnx:
        raise ValueError("--from-onnx builds an engine: give --trt OUT.engine (and no --onnx)")
    meta = read_metadata(args.from_onnx)
    if not meta:
        raise ValueError(f"{args.from_onnx} carries no afnet_edge metadata: export it with `afnet-edge export`")
    if meta.get("model") != args.model:
        raise ValueError(f"{args.from_onnx} was exported from {meta.get('model')!r}, not {args.model!r}")
    for opt, key in (("frames", "num_frames"), ("classes", "num_classes"), ("ratio", "ratio"), ("batch", "batch")):
        given, fixed = getattr(args, opt), meta.get(key)
        if given is None:
            continue
        same = (isinstance(fixed, (int, float)) and math.isclose(float(given), float(fixed), rel_tol=1e-9)) \
            if opt == "ratio" else given == fixed
        if not same:
            raise ValueError(f"--{opt} {given} conflicts with {args.from_onnx}, exported with {key}={fixed}: drop "
                             f"--{opt} or export again with --{opt} {given}")
    side = build_engine(args.from_onnx, args.trt, fp16=args.fp16, workspace_mib=args.workspace, plugins=args.plugins,
                        plugin_library=args.plugin_library, backend=args.backend, timing_cache=args.timing_cache,
                        max_batch=args.max_batch, verbose=args.verbose, rtx_targets=args.rtx_targets)
    _print_engine(args.trt, side)
    return 0


def _print_engine(path: str, side: dict) -> None:
    where = side["gpu"]["name"] if side.get("gpu") else f"targets {', '.join(side.get('rtx_targets') or [])}"
    print(f"wrote {path} (+ {os.path.basename(sidecar_path(path))}, {os.path.basename(path)}.build.log): "
          f"{side['tensorrt']['module']} {side['tensorrt']['version']}, {side['precision']}, {side['flavour']}, "
          f"{where}, {side['build_seconds']} s")


def _choose_flavour(args) -> str:
    """``--flavour`` for ONNX; for ``--trt``, ``--plugins`` decides (auto: plugins when the library and a TensorRT
    with plugin layers are present)."""
    if not args.trt:
        if args.plugins != "auto":
            raise ValueError("--plugins applies to --trt builds; for an ONNX file choose --flavour portable|plugin")
        return args.flavour or "portable"
    wanted = {"on": "plugin", "off": "portable"}.get(args.plugins)
    if args.flavour and wanted and args.flavour != wanted:
        raise ValueError(f"--flavour {args.flavour} contradicts --plugins {args.plugins}")
    if wanted is None:  # auto: plugins only for a family that has a plugin flavour
        wanted = args.flavour or _plugins_available(args)
    return wanted


def _plugins_available(args) -> str:
    entry = find_entry(args.model) if args.model else None
    if entry is not None and "plugin" not in entry.hooks.export.flavours:   # the family has no plugin graph
        return "portable"
    trt = load_tensorrt(args.backend)
    if not trt.supports_plugins:
        return "portable"
    return "plugin" if find_plugin_library(args.plugin_library) else "portable"


def _model_from_metadata(args, meta: dict) -> None:
    """Fill MODEL / --frames / --classes / family flags (``--no-tsm``) from the artefact's metadata where the user
    gave none."""
    if args.model is None:
        args.model = meta.get("model")
    if args.frames is None and args.checkpoint is None:
        args.frames = meta.get("num_frames")
    if args.classes is None and args.checkpoint is None:
        args.classes = meta.get("num_classes")
    for dest, value in flags_from_info(args.model, meta).items():
        setattr(args, dest, value)
    entry = find_entry(args.model)
    for opt in entry.hooks.cli_options if entry else ():      # family value options recorded in the metadata
        if opt.option in GENERIC_KEYS:                          # e.g. "width": the input width, not a model option
            continue
        if getattr(args, opt.dest, None) is None and meta.get(opt.option) not in (None, ""):
            value = meta[opt.option]
            setattr(args, opt.dest, int(value) if opt.type.endswith("int") else
                    float(value) if opt.type.endswith("float") else value)


def _cmd_verify(args) -> int:
    if bool(args.onnx) == bool(args.engine):
        raise ValueError("give exactly one of --onnx FILE or --engine FILE")
    if args.onnx:
        meta = read_metadata(args.onnx)
        if not meta:
            raise ValueError(f"{args.onnx} carries no afnet_edge metadata: it was not written by `afnet-edge export`")
    else:
        if not os.path.isfile(args.engine):
            raise FileNotFoundError(f"engine {args.engine} not found")
        meta = read_sidecar(args.engine)
    if not args.checkpoint and os.path.basename(str(meta.get("checkpoint"))) == os.path.basename(DEMO_CHECKPOINT):
        args.checkpoint = DEMO_CHECKPOINT  # exported from the demo model: compare with the demo model
        print(f"afnet-edge: no --checkpoint: the file was exported from the demo model, comparing with the "
              f"{demo_summary()}", file=sys.stderr)
    if not args.checkpoint:
        src = meta.get("checkpoint") or "random weights (no checkpoint)"
        raise ValueError(f"verify needs --checkpoint: the exported file holds the weights of {src}, and PyTorch must "
                         f"load the same ones to compare")
    if args.engine:
        runtime.require_gpu()  # before TensorRT / cuda-python are looked for, and before building the model
    _model_from_metadata(args, meta)
    model = build_model(args)
    if args.onnx:
        res = verify_onnx(args.onnx, model, rounds=args.rounds, seed=args.seed, checkpoint=args.checkpoint,
                          batch=args.batch)
    else:
        res = verify_engine(args.engine, model, rounds=args.rounds, seed=args.seed, checkpoint=args.checkpoint,
                            plugin_library=args.plugin_library, batch=args.batch)
    if args.json:
        print(json.dumps({k: v for k, v in res.items()}, indent=2, default=str))
    else:
        m = res["metadata"]
        print(f"{res['file']}: {m.get('model')} T={m.get('num_frames')} r={m.get('ratio')} "
              f"{m.get('height')}×{m.get('width')} via {res['backend']}")
        print(f"  max |diff| {res['max_abs_error']:.3e}  mean |diff| {res['mean_abs_error']:.3e}  "
              f"max rel {res['max_rel_error']:.3e} (tolerance {res['tolerance']:.0e})  "
              f"top-1 agreement {res['top1_agreement'] * 100:.1f}% over {res['clips']} clips  "
              f"{'OK' if res['ok'] else 'MISMATCH'}")
    return 0 if res["ok"] else 1


def register(sub) -> None:
    p = sub.add_parser("export", help="export to ONNX (portable or TensorRT-plugin graph) and/or a TensorRT engine")
    add_model_args(p, positional=True, weights=True)
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX graph here")
    p.add_argument("--trt", metavar="OUT.engine", help="build a TensorRT engine here (+ OUT.engine.json sidecar)")
    p.add_argument("--from-onnx", metavar="FILE", default=None,
                   help="build --trt from this ONNX export instead of exporting the model again")
    p.add_argument("--ratio", type=ratio_arg, default=None,
                   help=f"selection ratio r in (0, 1]: ceil(r·T) frames per clip get the focal branch (default "
                        f"{DEFAULT_RATIO}; with --from-onnx: the file's, and a different value is an error)")
    p.add_argument("--selection", default="topk", type=_selection_arg, choices=EXPORTABLE_SELECTIONS,
                   help="frame selection; only topk has static shapes and can be exported (default topk)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help=f"clips per inference (default {DEFAULT_BATCH}; with --from-onnx: the file's)")
    p.add_argument("--size", type=positive_int, default=None,
                   help="input height (and width) in pixels (default 224; the demo model's own size for the demo "
                        "model)")
    p.add_argument("--width", type=positive_int, default=None, help="input width if different from --size")
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch axis (TensorRT: profile 1..--max-batch)")
    p.add_argument("--max-batch", type=positive_int, default=None, help="largest batch of a dynamic-batch engine")
    p.add_argument("--flavour", choices=("portable", "plugin"), default=None,
                   help="ONNX graph: standard ops only, or TensorRT plugin nodes (default portable)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (13..21, default 17)")
    p.add_argument("--fp16", action="store_true", help="let TensorRT use fp16 kernels")
    p.add_argument("--workspace", type=positive_int, default=1024, metavar="MiB",
                   help="TensorRT builder workspace in MiB (default 1024)")
    p.add_argument("--plugins", choices=("auto", "on", "off"), default="auto",
                   help="TensorRT plugins for the fused ops: auto = when the plugin library and a TensorRT with "
                        "plugin layers are present (default auto)")
    p.add_argument("--plugin-library", default=None, metavar="SO",
                   help="libafnet_edge_trt_plugins.so (default: $AFNET_EDGE_TRT_PLUGINS or this checkout's build/)")
    p.add_argument("--backend", choices=("auto", "tensorrt", "tensorrt_rtx"), default="auto",
                   help="TensorRT Python module (default auto: tensorrt, else tensorrt_rtx)")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default next to the engine)")
    p.add_argument("--rtx-targets", nargs="+", default=None, metavar="SMxx",
                   help="TensorRT for RTX compute capabilities, e.g. SM86 SM89 (default: this GPU, else "
                        "SM80 SM86 SM89 SM120)")
    p.add_argument("--verbose", action="store_true", help="verbose TensorRT build log")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help="compare an exported ONNX file or TensorRT engine with PyTorch")
    add_model_args(p, model_default=None)
    p.add_argument("--onnx", metavar="FILE", help="portable ONNX file (run with ONNX Runtime on CPU)")
    p.add_argument("--engine", metavar="FILE", help="TensorRT engine (needs a GPU)")
    p.add_argument("--rounds", type=positive_int, default=2, help="random clip batches to compare (default 2)")
    p.add_argument("--batch", type=positive_int, default=None, help="batch for dynamic-batch files")
    p.add_argument("--seed", type=int, default=0, help="seed of the random clips (default 0)")
    p.add_argument("--plugin-library", default=None, metavar="SO", help="plugin library for plugin engines")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_verify)

