"""``afnet-edge project``: PROJECTED latency of models on a device from a per-kernel roofline (not a measurement),
checked against every measured results file of that device (:mod:`.projection`)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ..cli_args import positive_int, ratio_arg
from ..models import list_models, model_entry
from . import projection
from .cli import csv_list
from .devices import DEVICES, DeviceSpec, spec_from_ceilings
from .grid import PRECISIONS
from .projection import LABEL, SCENARIOS, find_results, format_error, format_projection, project, projection_error, \
    trace_ops
from .timing import measure_ceilings

__all__ = ["register"]


def _load(path: str) -> dict:
    with open(path) as f:
        doc = json.load(f)
    doc["_path"] = path
    return doc


def _cmd_project(args: argparse.Namespace) -> int:
    if args.list_devices:
        for k, s in DEVICES.items():
            print(f"{k:16s} {s.name:42s} {s.bandwidth_gbs:>7g} GB/s  fp16 {s.matrix_tflops.get('fp16'):>7g} TFLOPS")
        print(f"{'cpu':16s} {'this CPU, from measured ceilings':42s}")
        return 0
    results_paths = args.results or find_results(args.device, args.results_root)
    for p in results_paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"--results {p}: file not found")
    docs = [_load(p) for p in results_paths]
    specs: list[DeviceSpec] = []
    if args.device == "cpu":
        ce = next((d.get("ceilings") for d in docs if d.get("ceilings")), None)
        if args.measure_ceilings or ce is None:
            if ce is None and not args.measure_ceilings:
                print("afnet-edge project: no results file with measured CPU ceilings found; measuring them now",
                      file=sys.stderr)
            ce = measure_ceilings("cpu")
        specs.append(spec_from_ceilings(ce, "cpu"))
    else:
        if args.device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join([*DEVICES, 'cpu'])}, got {args.device!r}")
        specs.append(DEVICES[args.device])
        ce = next((d.get("ceilings") for d in docs if d.get("ceilings")), None)
        if ce:
            specs.append(spec_from_ceilings(ce, args.device, base=DEVICES[args.device]))
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    out: dict = {"label": LABEL, "kind": "projection", "device": args.device, "projections": [], "errors": []}
    for spec in specs:
        results = []
        for model in args.models:
            dense = not model_entry(model).bench.skips_frames
            frames = args.frames if args.frames else None
            runs = ["dense"] if dense else (args.plans or args.executions)
            for execution in runs:
                for r in ([None] if dense or execution == "masked" else args.ratios):
                    plan = execution if args.plans and not dense else None
                    if plan is not None:
                        execution = "masked" if plan == "masked" else "compact"
                    ops = trace_ops(model, frames, 1.0 if r is None else r, args.batch, args.size, args.precision,
                                    "compact" if execution == "dense" else execution, plan=plan)
                    for scen in scenarios:
                        res = project(model, spec, frames, r, args.batch, args.size, args.precision,
                                      "compact" if execution == "dense" else execution, scen, _ops=ops)
                        res["config"]["frames"] = frames or model_entry(model).default_frames
                        if plan is not None:
                            res["config"]["plan"] = plan
                        res["per_layer"] = res["per_layer"][:max(20, args.per_layer)]  # the slowest layers only
                        results.append(res)
        print(format_projection(results, spec, args.per_layer))
        print()
        out["projections"].append({"spec": asdict(spec), "results": results})
        for doc in docs:
            err = projection_error(doc, spec)
            out["errors"].append(err)
            print(format_error(err))
            print()
    if not docs:
        print(f"No measured results for {args.device} under {args.results_root}: projection error not computed "
              f"(run `afnet-edge bench` on the device, or pass --results FILE).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
        print(f"wrote {args.json}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``afnet-edge project``."""
    p = sub.add_parser("project", help="PROJECTED latency on a device from a per-kernel roofline (not a measurement)",
                       description=projection.__doc__.split("\n\n")[0])
    p.add_argument("--device", default="orin-agx", help=f"one of {', '.join([*DEVICES, 'cpu'])} (default: orin-agx)")
    p.add_argument("--models", type=csv_list(str, list_models()), default=["af_resnet50", "tsm_resnet50"],
                   help="comma-separated models (default: af_resnet50,tsm_resnet50)")
    p.add_argument("--frames", type=positive_int, default=None, help="T (default: each model's default)")
    p.add_argument("--ratios", type=csv_list(ratio_arg), default=[0.25, 0.4, 0.5],
                   help="comma-separated selection ratios of the compact execution (default: 0.25,0.4,0.5)")
    p.add_argument("--executions", type=csv_list(str, ("compact", "masked")), default=["compact", "masked"],
                   help="comma-separated executions of the frame-skipping models: compact (skips frames), masked "
                        "(official) (default: compact,masked; dense models have one)")
    p.add_argument("--plans", type=csv_list(str, projection.PLANS), default=None,
                   help="comma-separated execution plans of the frame-skipping models (issue 16), counted at the "
                        f"fused-op level: {', '.join(projection.PLANS)} (replaces --executions; bytes per plan with "
                        "the lower bound: benchmarks/project_plans.py)")
    p.add_argument("--batch", type=positive_int, default=1, help="clips per inference (default: 1)")
    p.add_argument("--size", type=positive_int, default=224, help="input height = width in pixels (default: 224)")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="fp16",
                   help=f"arithmetic precision, one of {', '.join(PRECISIONS)} (default: fp16)")
    p.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all",
                   help="launch model: eager (a kernel per op), cudagraph (graph replay), fused (an ideal compiler "
                        "such as TensorRT fuses element-wise ops), or all (default: all)")
    p.add_argument("--per-layer", type=int, default=0, metavar="N", help="print the N slowest layers of each")
    p.add_argument("--results", action="append", default=None, metavar="FILE",
                   help="measured results to check the projection against (default: benchmarks/results/<device>/*.json)")
    p.add_argument("--results-root", default=os.path.join("benchmarks", "results"),
                   help="folder searched for <device>/*.json results when --results is not given "
                        "(default: benchmarks/results)")
    p.add_argument("--measure-ceilings", action="store_true", help="cpu: measure this CPU's ceilings now")
    p.add_argument("--list-devices", action="store_true", help="print the device table and exit")
    p.add_argument("--json", default=None, metavar="FILE", help="write projections and errors as JSON")
    p.set_defaults(func=_cmd_project)
