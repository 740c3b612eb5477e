"""``afnet-edge demo``: the whole idea on this machine in one command, with nothing to download.

1. writes a real video file (a clip of the synthetic temporal benchmark, :mod:`afnet_edge.data.synthetic`);
2. builds AF-ResNet50 (T=12) with seeded random weights whose navigation is randomised too, so frames get skipped
   (random weights: the classes mean nothing; load an official checkpoint with ``predict --checkpoint``);
3. decodes and samples the video as the official validation does, runs the ``compact`` execution (focal bodies on
   the selected frames only) and the official ``masked`` execution on the same masks, and checks they agree;
4. times both (median of a few runs after a warm-up) and puts the measured speedup next to the one the official
   FLOPs promise;
5. writes a contact sheet PNG of the sampled frames marking which ones the focal branch processed.

Everything goes to ``--out DIR`` (default: a new temporary folder, never the current directory). The timings come
with a warning when the machine was busy (load average above the number of cores) or when the runs of one execution
varied by more than 20 %.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

import torch

from .cli_args import positive_int, ratio_arg
from .data.synthetic import SyntheticVideoDataset
from .flops import count_flops
from .layers.navigation import Navigation
from .models import create_model
from .predict import aspect_note, contact_sheet, navigation_names, predict_clip, sheet_title
from .video import load_clip, write_test_video

#: Spread of the timed runs ((max - min) / median) above which the timings are flagged as unreliable.
SPREAD_LIMIT = 0.20


def _seeded_navigation(model: torch.nn.Module, seed: int) -> None:
    """Random navigation weights (the official init selects every frame), the rest keeps its seeded init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Navigation):
                m.conv_gs.weight.copy_(torch.randn(m.conv_gs.weight.shape, generator=g))
                m.conv_gs.bias.copy_(torch.randn(m.conv_gs.bias.shape, generator=g))


def _time(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()  # warm-up (also fills the constant-map caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def machine_load() -> tuple[float | None, int]:
    """(1-minute load average or None where the OS has none, number of cores)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    return load, os.cpu_count() or 1


def timing_warnings(times: dict[str, list[float]], load: float | None, cores: int,
                    spread_limit: float = SPREAD_LIMIT) -> list[str]:
    """Reasons not to trust timings: ``load`` (load average, taken before and after timing: the larger) above
    ``cores``; runs of one entry of ``times`` (name -> seconds per run) spreading by more than ``spread_limit``
    of their median."""
    out = []
    if load is not None and load > cores:
        out.append(f"the machine was loaded while timing (load average {load:.1f} > {cores} cores): the latencies "
                   f"and the speedup are not representative; rerun on an idle machine")
    for name, ts in times.items():
        med = statistics.median(ts) if ts else 0.0
        if len(ts) > 1 and med > 0 and (max(ts) - min(ts)) / med > spread_limit:
            out.append(f"the {name} runs varied by {(max(ts) - min(ts)) / med:.0%} of their median (more than "
                       f"{spread_limit:.0%}: {', '.join(f'{t * 1e3:.0f}' for t in ts)} ms); more --repeats or an "
                       f"idle machine give steadier numbers")
    return out


def run_demo(out_dir: str, model_name: str = "af_resnet50", ratio: float = 0.4, size: int = 224,
             repeats: int = 3, seed: int = 0, threads: int | None = None) -> dict:
    """Run the demo; returns a dict of what it measured (also written to ``out_dir/demo.json``), including
    ``timing_warnings`` (see :func:`timing_warnings`)."""
    if threads:
        torch.set_num_threads(threads)
    os.makedirs(out_dir, exist_ok=True)
    ds = SyntheticVideoDataset(1, num_frames=36, size=(240, 320), num_classes=14, seed=seed)
    sample = ds.render(0)
    video = write_test_video(os.path.join(out_dir, "synthetic_clip.mp4"), sample.frames, fps=12)

    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=174, num_frames=12, execution="compact", selection="topk",
                         ratio=ratio)
    _seeded_navigation(model, seed)
    clip, info, indices = load_clip(video, model.num_frames, size=size)
    labels = [f"class {i}" for i in range(model.num_classes)]
    pred = predict_clip(model, clip, indices, labels)

    batch = clip.unsqueeze(0)
    with torch.no_grad():
        masks = model(batch).masks
        compact = model.configure(execution="compact")(batch, masks=masks).logits
        masked = model.configure(execution="masked")(batch, masks=masks).logits
        max_err = float((compact - masked).abs().max())
        load_before, cores = machine_load()
        runs_masked = _time(lambda: model.configure(execution="masked")(batch, masks=masks), repeats)
        runs_compact = _time(lambda: model.configure(execution="compact")(batch, masks=masks), repeats)
        load_after, _ = machine_load()
    t_masked, t_compact = statistics.median(runs_masked), statistics.median(runs_compact)
    loads = [v for v in (load_before, load_after) if v is not None]
    load = max(loads) if loads else None
    warnings = timing_warnings({"masked": runs_masked, "compact": runs_compact}, load, cores)
    real_ratio = float(torch.stack(masks).mean())
    fl = count_flops(model, masks=masks, image_size=size)
    implied = fl["official_gflops_r1"] / fl["official_gflops"]
    measured = t_masked / t_compact
    png = os.path.join(out_dir, "contact_sheet.png")
    title = sheet_title(video, model, None).replace("RANDOM WEIGHTS", "RANDOM WEIGHTS, seeded navigation")
    contact_sheet(pred, png, title=title,
                  notes=[n for n in [aspect_note((info.height, info.width), crop=size)] if n])
    result = {
        "video": video, "video_class": ds.class_names[sample.label], "sampled_frames": indices,
        "model": model_name, "selection": f"topk ratio={ratio}", "real_ratio": real_ratio,
        "selected_frames": dict(zip(navigation_names(model), [[indices[t] for t in range(len(indices)) if m[0, t]]
                                                              for m in masks])),
        "max_abs_diff_compact_vs_masked": max_err,
        "latency_masked_s": t_masked, "latency_compact_s": t_compact, "measured_speedup": measured,
        "runs_masked_s": runs_masked, "runs_compact_s": runs_compact, "load_average": load, "cores": cores,
        "timing_warnings": warnings,
        "official_gflops_all_frames": fl["official_gflops_r1"], "official_gflops_selected": fl["official_gflops"],
        "flops_implied_speedup": implied, "realised_ratio": measured / implied,
        "device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__, "contact_sheet": png,
    }
    tmp = os.path.join(out_dir, ".demo.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "demo.json"))
    return result


def _cmd_demo(args) -> int:
    out = args.out or tempfile.mkdtemp(prefix="afnet_edge_demo_")
    print(f"afnet-edge demo: random weights (no download); the classes mean nothing, the skipping is real. "
          f"Output folder: {out}", file=sys.stderr)
    r = run_demo(out, args.model, args.ratio, args.size, args.repeats, args.seed, args.threads)
    print(f"video            {r['video']} (synthetic class '{r['video_class']}'), sampled frames "
          f"{r['sampled_frames']}")
    print(f"model            {r['model']}, {r['selection']}: {r['real_ratio']:.0%} of focal frames processed")
    for name, frames in r["selected_frames"].items():
        print(f"  {name:20s} focal frames {frames}")
    print(f"compact = masked max |diff| {r['max_abs_diff_compact_vs_masked']:.2e} (same masks)")
    print(f"latency on CPU ({r['threads']} threads, median of {args.repeats}): masked (official) "
          f"{r['latency_masked_s'] * 1e3:.0f} ms, compact {r['latency_compact_s'] * 1e3:.0f} ms -> "
          f"{r['measured_speedup']:.2f}x")
    for w in r["timing_warnings"]:
        print(f"afnet-edge: warning: {w}", file=sys.stderr)
    print(f"official FLOPs   {r['official_gflops_all_frames']:.2f} -> {r['official_gflops_selected']:.2f} GFLOPs "
          f"per clip: {r['flops_implied_speedup']:.2f}x promised, {r['realised_ratio']:.0%} of it realised")
    print(f"contact sheet    {r['contact_sheet']}; all numbers in {os.path.join(out, 'demo.json')}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on a generated video (no downloads)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder, created if needed (default: a new temporary folder, printed)")
    p.add_argument("--model", default="af_resnet50", choices=("af_resnet50", "af_resnet101", "af_mobilenetv3"),
                   help="frame-skipping model to run, with seeded random weights (default: %(default)s)")
    p.add_argument("--ratio", type=ratio_arg, default=0.4, help="topk selection ratio (default: 0.4)")
    p.add_argument("--size", type=positive_int, default=224, help="crop size (default: 224)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per execution (default: 3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the generated clip and of the random weights (default: 0)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=_cmd_demo)
