"""Running a grid: every case of a :class:`~.grid.GridSpec` set up, timed (back to back, or interleaved with the
other eager cases of its model/T/precision/batch), checked against the masked model, and gathered into one results
document with the environment, the timing method and the derived metrics."""
from __future__ import annotations

import datetime
import os
import shlex
import sys
import tempfile
from dataclasses import asdict

import torch
from tqdm import tqdm

from ..export.runtime import TRTRunner
from ..flops import count_flops
from ..models import create_model
from .environment import collect_environment
from .grid import DENSE, PRECISIONS, Case, GridSpec, expand_grid
from .results import SCHEMA, derive
from .runners import (N_INPUT_BUFFERS, OrtRunner, TorchRunner, build_model, make_inputs, reference_logits,
                      skip_reason, torch_memory)
from .timing import measure_ceilings, time_callable, timing_stats

__all__ = ["run_grid"]


def _flops_info(model, case: Case) -> dict:
    if case.backend == DENSE or not getattr(model, "num_navigation", 0):
        res = count_flops(model, ratio=1.0, image_size=case.size)
        return {"official_gflops": res["official_gflops"], "executed_gmacs": res["executed_gmacs_compact"]}
    r = 1.0 if case.ratio is None else case.ratio
    res = count_flops(model, ratio=r, image_size=case.size)
    masked = case.backend == "masked"
    return {
        "official_gflops": res["official_gflops_r1"] if masked else res["official_gflops"],
        "official_gflops_r0": res["official_gflops_r0"], "official_gflops_r1": res["official_gflops_r1"],
        "executed_gmacs": res["executed_gmacs_masked"] if masked else res["executed_gmacs_compact"],
        "executed_gmacs_masked": res["executed_gmacs_masked"],
        "selected_frames_per_clip": None if masked else res["selected_frames_per_clip"][0],
    }


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _start_case(case: Case, model, spec: GridSpec, device: torch.device, workdir: str):
    """Row skeleton and a ready runner for ``case`` (``(row, None)`` when it is skipped or failed to set up)."""
    row: dict = {**asdict(case), "label": case.label, "status": "ok"}
    row.pop("engine")
    if case.engine:
        row["engine"] = os.path.basename(case.engine)
    reason = skip_reason(case, device)
    if reason:
        row.update(status="skipped", reason=reason)
        return row, None
    row["loadavg_1m_before"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    xs = make_inputs(case, device, PRECISIONS[case.precision], spec.seed, spec.channels_last)
    try:
        if case.backend == "onnxruntime":
            runner = OrtRunner(model, case, xs, spec, device, workdir)
            row["check_max_abs_diff_vs_export_reference"] = runner.check
            row["providers"] = runner.providers
            row["ort_threads"] = torch.get_num_threads() if device.type == "cpu" else None
            if device.type == "cuda":  # host clock around a synchronous session.run (device <-> host copies in)
                row["timing_note"] = "host perf_counter around session.run (includes host<->device copies)"
            row["memory"] = {"peak_rss_delta_mib": runner.rss_delta_mib,
                             "method": "VmHWM growth over ORT session creation + first run (arena + weights)"}
        else:
            runner = TorchRunner(model, case, xs, spec, device)
    except Exception as e:  # compile/capture/export failures are results too
        row.update(status="skipped", reason=f"{case.mode if case.mode != 'eager' else case.backend} failed: "
                                            f"{_first_line(e)}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return row, None
    runner.xs0 = xs[0]
    return row, runner


def _finish_case(case: Case, row: dict, runner, model, spec: GridSpec, device: torch.device, anchors: dict,
                 dev_ms: list, host_ms: list) -> dict:
    """Statistics, memory, correctness check and FLOPs of a timed case; closes its runner."""
    cuda = device.type == "cuda"
    try:
        if case.backend != "onnxruntime":
            x0 = runner.xs0
            row["memory"] = torch_memory(model, runner, case, device, x0)
            out = runner.logits(x0).float()
            if not bool(torch.isfinite(out).all()):
                row["warning"] = "non-finite logits"
            if not (case.backend in ("masked", DENSE) and case.mode == "eager"):
                ref = reference_logits(model, case, x0, anchors)
                row["check_max_abs_diff_vs_masked"] = float((out.cpu() - ref).abs().max())
    except Exception as e:
        row.update(status="skipped", reason=f"post-timing check failed: {_first_line(e)}")
        return row
    finally:
        runner.close()
        if cuda:
            torch.cuda.empty_cache()
    row["latency_ms"] = timing_stats(dev_ms)
    if cuda and case.backend != "onnxruntime":
        row["host_latency_ms"] = timing_stats(host_ms)
    row["throughput_clips_s"] = case.batch / (row["latency_ms"]["p50"] * 1e-3)
    row["warmup"], row["repeats"] = spec.warmup, spec.repeats
    row["flops"] = _flops_info(model, case)
    row["loadavg_1m_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return row


def _measure_case(case: Case, model, spec: GridSpec, device: torch.device, workdir: str, anchors: dict) -> dict:
    """Set up, time (warm-up then ``repeats`` runs back to back) and finish one case."""
    if case.backend == "trt":
        row = {**asdict(case), "label": case.label, "status": "ok", "engine": os.path.basename(case.engine)}
        reason = skip_reason(case, device)
        if reason:
            row.update(status="skipped", reason=reason)
            return row
        return _measure_trt(case, spec, row)
    row, runner = _start_case(case, model, spec, device, workdir)
    if runner is None:
        return row
    try:
        dev_ms, host_ms = time_callable(runner.run, spec.warmup, spec.repeats,
                                        cuda=device.type == "cuda" and case.backend != "onnxruntime")
    except Exception as e:
        runner.close()
        row.update(status="skipped", reason=f"{case.label} failed while timed: {_first_line(e)}")
        return row
    return _finish_case(case, row, runner, model, spec, device, anchors, dev_ms, host_ms)


def _measure_group(cases: list, model, spec: GridSpec, device: torch.device, workdir: str, anchors: dict) -> list:
    """Time eager cases of one (model, T, precision, batch) *interleaved*: after every case's warm-up, each of the
    ``repeats`` rounds runs every case once (in a rotating order). Load changes on a shared machine then hit all
    cases alike, so their ratios (speed-up, realised ratio) stay meaningful even when absolute times drift."""
    started = [(c, *_start_case(c, model, spec, device, workdir)) for c in cases]
    live = [(c, row, rn) for c, row, rn in started if rn is not None]
    for _, _, rn in live:
        rn.reconfigure = True
    times = {id(rn): ([], []) for _, _, rn in live}
    failed = {}
    for c, row, rn in live:
        try:
            time_callable(rn.run, spec.warmup, 0, cuda=device.type == "cuda" and c.backend != "onnxruntime")
        except Exception as e:
            failed[id(rn)] = f"{c.label} failed in warm-up: {_first_line(e)}"
    for i in range(spec.repeats):
        k = i % max(1, len(live))
        for c, row, rn in live[k:] + live[:k]:
            if id(rn) in failed:
                continue
            try:
                d, h = time_callable(rn.run, 0, 1, cuda=device.type == "cuda" and c.backend != "onnxruntime")
            except Exception as e:
                failed[id(rn)] = f"{c.label} failed while timed: {_first_line(e)}"
                continue
            times[id(rn)][0].extend(d)
            times[id(rn)][1].extend(h)
    out = []
    for c, row, rn in started:
        if rn is None:
            out.append(row)
        elif id(rn) in failed:
            rn.close()
            row.update(status="skipped", reason=failed[id(rn)])
            out.append(row)
        else:
            row["interleaved_with"] = len(live)
            out.append(_finish_case(c, row, rn, model, spec, device, anchors, *times[id(rn)]))
    return out


def _measure_trt(case: Case, spec: GridSpec, row: dict) -> dict:
    try:
        with TRTRunner(case.engine, cuda_graph=case.mode == "cudagraph") as runner:
            g = torch.Generator().manual_seed(spec.seed)
            runner.set_input(torch.randn(runner.input_shape, generator=g))
            bm = runner.benchmark(iterations=spec.repeats, warmup=spec.warmup)
    except Exception as e:
        row.update(status="skipped", reason=f"trt failed: {_first_line(e)}")
        return row
    row["latency_ms"] = {"p50": bm["median_ms"], "p90": bm["p90_ms"], "mean": bm["mean_ms"], "min": bm["min_ms"],
                         "n": bm["iterations"], "max": None, "std": None}
    row["throughput_clips_s"] = case.batch / (bm["median_ms"] * 1e-3)
    row["warmup"], row["repeats"] = spec.warmup, spec.repeats
    with torch.device("meta"):
        m = create_model(case.model, num_frames=case.frames)
    res = count_flops(m, ratio=case.ratio, image_size=case.size)
    row["flops"] = {k: res[k] for k in ("official_gflops", "official_gflops_r0", "official_gflops_r1")}
    row["flops"]["executed_gmacs"] = res["executed_gmacs_compact"]
    row["memory"] = {"method": "not measured for TensorRT engines"}
    return row


def run_grid(spec: GridSpec, argv: list[str] | None = None) -> dict:
    """Measure every case of ``spec`` and return the results document (:data:`SCHEMA`)."""
    device = torch.device(spec.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
        torch.backends.cudnn.benchmark = True
    threads_before = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        return _run_grid(spec, argv, device)
    finally:
        torch.set_num_threads(threads_before)


def _run_grid(spec: GridSpec, argv: list[str] | None, device: torch.device) -> dict:
    cases = expand_grid(spec)
    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env = collect_environment(str(device))
    doc: dict = {
        "schema": SCHEMA,
        "kind": "measurement",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "afnet-edge bench " + " ".join(shlex.quote(a) for a in (argv or [])),
        "argv": list(argv or []),
        "environment": env,
        "grid": {k: v for k, v in asdict(spec).items() if k != "progress"},
        "timing": {"warmup": spec.warmup, "repeats": spec.repeats, "quick": spec.quick,
                   "statistic": "p50 = median of single-run times",
                   "method": ("CUDA events around each run after a device synchronisation" if device.type == "cuda"
                              else "time.perf_counter around each (synchronous) run"),
                   "inputs": f"random normal clips, {N_INPUT_BUFFERS} rotating buffers (CUDA graphs: 1 static)",
                   "selection": "topk (k = ceil(r*T) frames per clip in every navigation module)",
                   "interleaved": spec.interleave,
                   "order": ("interleaved: per model/T/precision/batch, every eager case runs once per round, "
                             "rounds rotate the order" if spec.interleave else "each case's runs back to back"),
                   "clocks": "not changed (state recorded in environment where readable)"},
        "load_average": {"before": load_before},
        "rows": [],
    }
    if spec.ceilings:
        doc["ceilings"] = measure_ceilings(str(device), quick=spec.quick)
    models: dict = {}
    anchors: dict = {}

    def get_model(case: Case):
        key = (case.model, case.frames, case.precision)
        if key not in models:
            models.clear()  # one model at a time: keeps memory flat on small devices
            if device.type == "cuda":
                torch.cuda.empty_cache()
            m = build_model(case.model, case.frames, spec)
            m = m.to(device=device, dtype=PRECISIONS[case.precision])
            if spec.channels_last:
                m = m.to(memory_format=torch.channels_last)
            models[key] = m
        return models[key]

    # units of work: single cases, or (interleave) the eager cases of one model/T/precision/batch/size together
    units: list = []
    groups: dict = {}
    for case in cases:
        if spec.interleave and case.mode == "eager" and case.backend != "trt":
            k = (case.model, case.frames, case.precision, case.batch, case.size)
            if k not in groups:
                groups[k] = []
                units.append(groups[k])
            groups[k].append(case)
        else:
            units.append([case])
    with tempfile.TemporaryDirectory(prefix="afnet_bench_") as workdir:
        bar = tqdm(total=len(cases), desc="bench", unit="case", disable=not spec.progress, file=sys.stderr,
                   dynamic_ncols=True)
        for unit in units:
            c0 = unit[0]
            bar.set_postfix_str(f"{c0.model} T={c0.frames} {c0.precision} b={c0.batch} "
                                + (f"{len(unit)} cases interleaved" if len(unit) > 1 else f"{c0.label} r={c0.ratio}"),
                                refresh=True)
            model = None if c0.backend == "trt" else get_model(c0)
            if len(unit) > 1:
                doc["rows"].extend(_measure_group(unit, model, spec, device, workdir, anchors))
            else:
                doc["rows"].append(_measure_case(c0, model, spec, device, workdir, anchors))
            bar.update(len(unit))
        bar.close()
    doc["load_average"]["after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    derive(doc)
    return doc
