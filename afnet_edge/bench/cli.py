"""``afnet-edge bench``: options, the grid they describe, and the command (grid run, ``--render``, ``--profile``)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import torch

from ..cli_args import positive_int, ratio_arg
from ..flops import MIN_SIZE, SIZE_MULTIPLE
from ..models import list_models
from .environment import device_slug
from .grid import BACKENDS, COMPACT_PLANS, DEFAULT_PLAN, MODES, PRECISIONS, QUICK, GridSpec
from .profile import format_profile, profile_compact
from .report import _fmt, write_outputs
from .results import SCHEMA, derive, validate_results
from .run import run_grid

__all__ = ["DEFAULT_RESULTS", "csv_list", "add_bench_args", "spec_from_args", "canonical_argv", "register"]

DEFAULT_RESULTS = os.path.join("benchmarks", "results")


def csv_list(kind, choices=None):
    """argparse ``type=``: a comma-separated list, each item parsed by ``kind`` (and one of ``choices`` if given)."""
    def parse(text: str):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("must be a comma-separated list")
        out = []
        for s in items:
            try:
                v = kind(s)
            except (ValueError, argparse.ArgumentTypeError) as e:
                raise argparse.ArgumentTypeError(f"{s!r}: {e}") from None
            if choices is not None and v not in choices:
                raise argparse.ArgumentTypeError(f"{s!r} is not one of {', '.join(choices)}")
            out.append(v)
        return out
    return parse


def add_bench_args(p: argparse.ArgumentParser) -> None:
    """The options of ``afnet-edge bench``."""
    p.add_argument("--quick", action="store_true",
                   help="tiny CPU grid for CI (af_mobilenetv3 at 64², batch 1, r ∈ {0.25, 0.5}, masked vs "
                        "compact-torch, 2 warm-up + 5 runs); explicit options override its choices")
    p.add_argument("--models", type=csv_list(str, list_models()), default=None, help="comma-separated model names")
    p.add_argument("--frames", type=csv_list(positive_int), default=None, help="T of the AFNet models (default: 12)")
    p.add_argument("--baseline-frames", type=csv_list(positive_int), default=None,
                   help="T of the dense baselines (default: 8,16)")
    p.add_argument("--ratios", type=csv_list(ratio_arg), default=None,
                   help="selection ratios (default: 0.25,0.4,0.5,1.0)")
    p.add_argument("--batches", type=csv_list(positive_int), default=None,
                   help="batch sizes (default: 1 on CPU, 1,8,32 on CUDA)")
    p.add_argument("--backends", type=csv_list(str, BACKENDS), default=None,
                   help=f"subset of {','.join(BACKENDS[:-1])} (trt comes with --engine)")
    p.add_argument("--modes", type=csv_list(str, MODES), default=None,
                   help="eager,cudagraph,compile (default: eager on CPU, all three on CUDA)")
    p.add_argument("--plans", type=csv_list(str, COMPACT_PLANS), default=None,
                   help="comma-separated execution plans of the compact backends (issue 16): eager (gather, body, "
                        "full scatter), lazy (lazy constant chains), fused (lazy + gather/scatter fused 1x1 convs) "
                        f"(default: {DEFAULT_PLAN})")
    p.add_argument("--precisions", type=csv_list(str, tuple(PRECISIONS)), default=None,
                   help="fp32,fp16,bf16 (default: fp32 on CPU, fp16,fp32 on CUDA)")
    p.add_argument("--size", type=positive_int, default=None, help="input height = width (default: 224)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    p.add_argument("--warmup", type=positive_int, default=None, help="warm-up runs per case (CPU 3, CUDA 20)")
    p.add_argument("--repeats", type=positive_int, default=None, help="timed runs per case (CPU 30, CUDA 100)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch (and ORT) CPU threads")
    p.add_argument("--engine", action="append", default=[], metavar="ENGINE",
                   help="TensorRT engine to time (repeatable; its sidecar gives model, T, ratio, batch, precision)")
    p.add_argument("--checkpoint", default=None, help="weights to load (default: random weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    p.add_argument("--masked-per-ratio", action="store_true",
                   help="time the masked anchor at every ratio (its cost does not depend on r)")
    p.add_argument("--channels-last", action="store_true", help="model weights in channels_last memory format")
    p.add_argument("--compile-mode", default="default",
                   choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
                   help="torch.compile mode of the compile --modes (default: default)")
    p.add_argument("--no-ceilings", action="store_true", help="skip the compute/bandwidth micro-benchmarks")
    p.add_argument("--interleave", choices=("auto", "on", "off"), default="auto",
                   help="time the eager cases of one model/T/precision/batch round-robin, so that load drift on a "
                        "shared machine hits them alike (auto: on for CPU, off for CUDA)")
    p.add_argument("--out", default=None, help="output folder (default: benchmarks/results/<device slug>)")
    p.add_argument("--name", default=None, help="file stem of the outputs (default: models, or quick)")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--render", default=None, metavar="RESULTS_JSON",
                   help="measure nothing: re-derive and re-write the markdown and plots of an existing results file "
                        "(next to it)")
    p.add_argument("--cross-family", action="store_true",
                   help="instead of the grid: every family at its published operating point (AFNet-R50 12f r=0.4, "
                        "AdaFocusV2-MN2/RN P=128, TSM-R50 8f, bLVNet-TAM-R50 f8x2, full-video TSM-R50 N=32->K=8; "
                        "--models narrows it), the official-style execution next to the fused one: latency per clip "
                        "at the first of --batches (default 1), clips/s at the last (default 8), GFLOPs, activation "
                        "traffic; writes <out>/<name>.json and .md (name default: cross_family)")
    p.add_argument("--profile", action="store_true",
                   help="instead of the grid: profile the compact path on the CPU (first model, T, size, batch; "
                        "masked vs compact with the PyTorch ops vs compact with the extension's ops; page faults; "
                        "top ops); writes "
                        "<out>/<name>.json and .md (name default: profile_<model>)")


def spec_from_args(args: argparse.Namespace) -> GridSpec:
    """Grid from parsed ``afnet-edge bench`` options (device-dependent defaults, ``--quick`` presets)."""
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    cuda = dev.type == "cuda"
    base = GridSpec(device=str(dev))
    if cuda:
        base.batches, base.modes, base.precisions = [1, 8, 32], list(MODES), ["fp16", "fp32"]
        base.warmup, base.repeats = 20, 100
    if args.quick:
        for k, v in QUICK.items():
            setattr(base, k, list(v) if isinstance(v, list) else v)
        base.quick, base.ceilings = True, False
    for k in ("models", "frames", "baseline_frames", "ratios", "batches", "backends", "modes", "plans", "precisions",
              "size",
              "warmup", "repeats", "threads", "checkpoint"):
        v = getattr(args, k)
        if v is not None:
            setattr(base, k, v)
    if base.size < MIN_SIZE or base.size % SIZE_MULTIPLE:
        raise ValueError(f"--size must be a multiple of {SIZE_MULTIPLE} that is at least {MIN_SIZE}, got {base.size}")
    if "trt" in base.backends and not args.engine:
        raise ValueError("--backends trt needs --engine ENGINE (a TensorRT engine built by `afnet-edge export --trt`)")
    base.backends = [b for b in base.backends if b != "trt"]
    base.engines = list(args.engine)
    base.seed, base.masked_per_ratio, base.channels_last = args.seed, args.masked_per_ratio, args.channels_last
    base.compile_mode, base.progress = args.compile_mode, not args.no_progress
    if args.no_ceilings:
        base.ceilings = False
    base.interleave = (args.interleave == "on") or (args.interleave == "auto" and not cuda)
    if not base.quick and base.repeats < 30:
        print(f"afnet-edge bench: note: {base.repeats} repeats (< 30) recorded in the results", file=sys.stderr)
    if base.checkpoint and not os.path.isfile(base.checkpoint):
        raise FileNotFoundError(f"--checkpoint {base.checkpoint}: file not found")
    return base


def canonical_argv(args: argparse.Namespace) -> list[str]:
    """The options of a parsed ``afnet-edge bench`` command line that differ from their defaults, in a form that
    reproduces the run (recorded as the results' ``command``)."""
    parser = getattr(args, "_parser", None)
    if parser is None:
        return []
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "func", "_parser"):
            continue
        v = getattr(args, action.dest, None)
        if v == action.default or v is None:
            continue
        opt = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            out.append(opt)
        elif isinstance(action, argparse._AppendAction):
            for item in v:
                out += [opt, str(item)]
        elif isinstance(v, list):
            out += [opt, ",".join(_fmt_arg(x) for x in v)]
        else:
            out += [opt, _fmt_arg(v)]
    return out


def _fmt_arg(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cmd_profile(spec: GridSpec, args, argv: list[str], out: str) -> int:
    if torch.device(spec.device).type != "cpu":
        raise ValueError("--profile measures the CPU path; use --device cpu (GPU: use the grid and nsys)")
    threads = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        ratios = [r for r in spec.ratios] if spec.ratios else [0.25, 0.5, 1.0]
        doc = profile_compact(spec.models[0], spec.frames[0], spec.size, spec.batches[0], tuple(ratios),
                              repeats=max(1, min(spec.repeats, 10)) if not args.repeats else args.repeats,
                              seed=spec.seed, progress=spec.progress)
    finally:
        torch.set_num_threads(threads)
    doc["command"] = "afnet-edge bench " + " ".join(shlex.quote(a) for a in argv)
    name = args.name or f"profile_{spec.models[0]}"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    md = format_profile(doc).replace("\n\n", f"\n\n```\n{doc['command']}\n```\n\n", 1)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {os.path.join(out, name)}.json and .md")
    return 0


def _cmd_cross_family(spec: GridSpec, args, argv: list[str], out: str) -> int:
    from .crossfamily import CROSS_FAMILY, format_markdown as cf_markdown, run_cross_family, validate_cross_family
    if args.quick or args.engine or args.render:
        raise ValueError("--cross-family cannot be combined with --quick, --engine or --render")
    models = args.models or list(CROSS_FAMILY)
    batches = args.batches or ([1, 8])
    if len(batches) > 2:
        raise ValueError(f"--cross-family: --batches takes the latency batch and the throughput batch (two numbers), "
                         f"got {','.join(map(str, batches))}")
    cuda = torch.device(spec.device).type == "cuda"
    warmup = args.warmup or (10 if cuda else 1)
    repeats = args.repeats or (50 if cuda else 5)
    doc = run_cross_family(models, (batches[0], batches[-1]), spec.size, spec.device, warmup, repeats,
                           max(2, repeats // 2) if not cuda else repeats, spec.threads, spec.seed, argv=argv,
                           progress=spec.progress)
    name = args.name or "cross_family"
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    rel = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    md = cf_markdown(doc, rel if not rel.startswith("..") else "")
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {path} and {name}.md")
    probs = validate_cross_family(doc)
    if probs:
        print("afnet-edge bench: results failed validation:\n  " + "\n  ".join(probs), file=sys.stderr)
        return 1
    return 0


def _cmd_render(path: str, plots: bool) -> int:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--render {path}: file not found")
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"--render {path}: not an afnet_edge.bench results file (schema {doc.get('schema')!r})")
    derive(doc)
    probs = validate_results(doc)
    name = os.path.splitext(os.path.basename(path))[0]
    paths = write_outputs(doc, os.path.dirname(os.path.abspath(path)), name, plots=plots)
    print(f"re-rendered {paths['md']}" + (f" and {len(paths['plots'])} plot(s)" if paths["plots"] else ""))
    if probs:
        print("afnet-edge bench: results failed validation:\n  " + "\n  ".join(probs), file=sys.stderr)
        return 1
    return 0


def _cmd_bench(args) -> int:
    if args.render:
        return _cmd_render(args.render, not args.no_plots)
    spec = spec_from_args(args)
    argv = canonical_argv(args)
    out = args.out or os.path.join(DEFAULT_RESULTS, device_slug(spec.device, spec.threads))
    if args.profile:
        return _cmd_profile(spec, args, argv, out)
    if args.cross_family:
        return _cmd_cross_family(spec, args, argv, out)
    name = args.name or ("quick" if spec.quick else "models")
    doc = run_grid(spec, argv)
    probs = validate_results(doc)
    paths = write_outputs(doc, out, name, plots=not args.no_plots)
    ok = sum(1 for r in doc["rows"] if r["status"] == "ok")
    print(f"{ok} measured, {len(doc['rows']) - ok} skipped; wrote {paths['json']}, {paths['md']}"
          + (f" and {len(paths['plots'])} plot(s)" if paths["plots"] else ""))
    for r in doc["rows"]:
        if r["status"] == "ok":
            rr = f"  realised {r['realised_ratio']:.3f}" if "realised_ratio" in r else ""
            print(f"  {r['model']:15s} T={r['frames']:<3d} {r['label']:24s} {r['precision']} b={r['batch']:<3d} "
                  f"r={_fmt(r.get('ratio')):5s} p50 {r['latency_ms']['p50']:9.2f} ms{rr}")
        else:
            print(f"  {r['model']:15s} T={r['frames']:<3d} {r['label']:24s} skipped: {r['reason']}")
    if probs:
        print("afnet-edge bench: results failed validation:\n  " + "\n  ".join(probs), file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``afnet-edge bench``."""
    p = sub.add_parser("bench", help="time models × backends × precisions × batches × ratios; write results JSON, "
                                     "markdown and plots under benchmarks/results/<device>/")
    add_bench_args(p)
    p.set_defaults(func=_cmd_bench, _parser=p)
