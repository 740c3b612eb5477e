"""``afnet-edge demo``: the whole idea on this machine in one command, with nothing to download.

By default it uses the demo model shipped in the package (:mod:`afnet_edge.demo_model`: a reduced-width AF-ResNet50
trained on the synthetic temporal benchmark):

1. renders ``--clips`` clips of the synthetic benchmark that the demo model never saw (dataset seed
   :data:`DEMO_SEED`) and writes each as a real video file;
2. classifies each through the real-video path (decode, the official segment sampling), printing the true and the
   predicted class, the distractor frames (the generator knows them) and the real selection ratio;
3. writes one contact sheet per clip: the sampled frames with the distractors marked, and for every navigation
   module which frames it sent to the focal branch;
4. runs the ``compact`` execution (focal bodies on the selected frames only) and the official ``masked`` execution
   on the same masks over the batch of clips, checks they agree, times both (median of a few runs after a warm-up)
   and puts the measured speedup next to the one the official FLOPs promise.

``--random-weights`` runs the former demo instead: one generated video through ``--model`` (AF-ResNet50 at 224 px by
default) with seeded random weights and top-k selection — the mechanics, not the method.

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
from .demo_model import DEMO_CHECKPOINT, demo_card, demo_summary, load_demo_model
from .flops import count_flops
from .layers.navigation import Navigation
from .models import VideoClassifier, create_model
from .predict import aspect_note, contact_sheet, navigation_names, predict_clip, sheet_title
from .video import load_clip, write_test_video

#: Dataset seed of the clips the demo shows: neither a training (100 + s) nor the validation (999) seed of the
#: demo model (benchmarks/train_demo_model.py).
DEMO_SEED = 2026

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


def _timed_pair(model: VideoClassifier, batch: torch.Tensor, repeats: int) -> dict:
    """Masks of ``batch``, the compact-vs-masked agreement on them and the timings of both executions."""
    with torch.no_grad():
        masks = model(batch).masks
        compact = model.configure(execution="compact")(batch, masks=masks).logits
        masked = model.configure(execution="masked")(batch, masks=masks).logits
        max_err = float((compact - masked).abs().max())
        load_before, cores = machine_load()
        runs_masked = _time(lambda: model.configure(execution="masked")(batch, masks=masks), repeats)
        runs_compact = _time(lambda: model.configure(execution="compact")(batch, masks=masks), repeats)
        load_after, _ = machine_load()
    model.configure(execution="compact")
    loads = [v for v in (load_before, load_after) if v is not None]
    load = max(loads) if loads else None
    t_masked, t_compact = statistics.median(runs_masked), statistics.median(runs_compact)
    return {"masks": masks, "max_abs_diff_compact_vs_masked": max_err,
            "latency_masked_s": t_masked, "latency_compact_s": t_compact, "measured_speedup": t_masked / t_compact,
            "runs_masked_s": runs_masked, "runs_compact_s": runs_compact, "load_average": load, "cores": cores,
            "timing_warnings": timing_warnings({"masked": runs_masked, "compact": runs_compact}, load, cores)}


def _flops_fields(model: torch.nn.Module, masks: list, size: int, measured: float) -> dict:
    fl = count_flops(model, masks=masks, image_size=size)
    implied = fl["official_gflops_r1"] / fl["official_gflops"]
    return {"official_gflops_all_frames": fl["official_gflops_r1"], "official_gflops_selected": fl["official_gflops"],
            "flops_implied_speedup": implied, "realised_ratio": measured / implied}


def _write_json(result: dict, out_dir: str) -> None:
    tmp = os.path.join(out_dir, ".demo.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "demo.json"))


def run_demo(out_dir: str, clips: int = 4, repeats: int = 3, seed: int = DEMO_SEED,
             threads: int | None = None) -> dict:
    """The demo with the shipped demo model: ``clips`` held-out synthetic clips written as videos, each classified
    through the real-video path (decode, official sampling) with a contact sheet marking the distractor frames;
    compact vs masked agreement and timings on the batch of clips. Returns what it measured (also written to
    ``out_dir/demo.json``)."""
    if threads:
        torch.set_num_threads(threads)
    os.makedirs(out_dir, exist_ok=True)
    card = demo_card()
    model = load_demo_model(execution="compact", selection="threshold")
    T, size = model.num_frames, card["size"]
    data = card["dataset"]
    ds = SyntheticVideoDataset(clips, num_frames=T, size=size, num_classes=card["num_classes"], seed=seed,
                               distractor_prob=data["distractor_prob"])
    names = list(card["class_names"])
    per_clip, batch = [], []
    for i in range(clips):
        # 3T frames: the official sampling (segment middles) then picks exactly the frames of a T-frame clip
        sample = ds.render(i, num_frames=3 * T)
        video = write_test_video(os.path.join(out_dir, f"clip{i}.mp4"), sample.frames, fps=12)
        clip, info, indices = load_clip(video, T, size=size, scale_size=(size, size))
        pred = predict_clip(model, clip, indices, names)
        distractor = [bool(sample.distractor[j]) for j in indices]
        png = os.path.join(out_dir, f"contact_sheet_{i}.png")
        truth = names[sample.label]
        contact_sheet(pred, png, thumb=96, title=sheet_title(video, model, None, demo=True),
                      notes=[f"true class: {truth}; frames marked 'distractor' carry no information"],
                      frame_marks=["distractor" if d else "" for d in distractor])
        kept = torch.stack(pred.masks).mean(0)  # (T,): share of navigation modules that sent the frame to focal
        is_dis = torch.tensor(distractor)
        per_clip.append({
            "video": video, "true_class": truth, "predicted": pred.top[0][1], "probability": pred.top[0][2],
            "correct": pred.top[0][0] == sample.label, "sampled_frames": indices,
            "distractor_frames": [j for j, d in zip(indices, distractor) if d], "real_ratio": pred.real_ratio,
            "kept_informative": float(kept[~is_dis].mean()) if (~is_dis).any() else None,
            "kept_distractor": float(kept[is_dis].mean()) if is_dis.any() else None, "contact_sheet": png})
        batch.append(clip)
    timing = _timed_pair(model, torch.stack(batch), repeats)
    masks = timing.pop("masks")
    inf = [c["kept_informative"] for c in per_clip if c["kept_informative"] is not None]
    dis = [c["kept_distractor"] for c in per_clip if c["kept_distractor"] is not None]
    result = {
        "model": demo_summary(card), "checkpoint": DEMO_CHECKPOINT, "selection": "threshold (learned)",
        "clips": per_clip, "correct": sum(c["correct"] for c in per_clip),
        "kept_informative": statistics.fmean(inf) if inf else None,
        "kept_distractor": statistics.fmean(dis) if dis else None,
        "real_ratio": float(torch.stack(masks).mean()), **timing,
        **_flops_fields(model, masks, size, timing["measured_speedup"]),
        "device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    _write_json(result, out_dir)
    return result


def run_random_demo(out_dir: str, model_name: str = "af_resnet50", ratio: float = 0.4, size: int = 224,
                    repeats: int = 3, seed: int = 0, threads: int | None = None) -> dict:
    """The demo with seeded random weights (``--random-weights``): one generated video through ``model_name`` at
    ``size`` px with top-k selection; returns what it measured (also written to ``out_dir/demo.json``), including
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
    timing = _timed_pair(model, clip.unsqueeze(0), repeats)
    masks = timing.pop("masks")
    png = os.path.join(out_dir, "contact_sheet.png")
    title = sheet_title(video, model, None).replace("RANDOM WEIGHTS", "RANDOM WEIGHTS, seeded navigation")
    contact_sheet(pred, png, title=title,
                  notes=[n for n in [aspect_note((info.height, info.width), crop=size)] if n])
    result = {
        "video": video, "video_class": ds.class_names[sample.label], "sampled_frames": indices,
        "model": model_name, "selection": f"topk ratio={ratio}", "real_ratio": float(torch.stack(masks).mean()),
        "selected_frames": dict(zip(navigation_names(model), [[indices[t] for t in range(len(indices)) if m[0, t]]
                                                              for m in masks])),
        **timing, **_flops_fields(model, masks, size, timing["measured_speedup"]),
        "device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__, "contact_sheet": png,
    }
    _write_json(result, out_dir)
    return result


def _print_timing(r: dict, repeats: int, what: str) -> None:
    print(f"compact = masked max |diff| {r['max_abs_diff_compact_vs_masked']:.2e} (same masks)")
    print(f"latency on CPU ({r['threads']} threads, median of {repeats}, {what}): masked (official) "
          f"{r['latency_masked_s'] * 1e3:.0f} ms, compact {r['latency_compact_s'] * 1e3:.0f} ms -> "
          f"{r['measured_speedup']:.2f}x")
    for w in r["timing_warnings"]:
        print(f"afnet-edge: warning: {w}", file=sys.stderr)
    print(f"official FLOPs   {r['official_gflops_all_frames']:.3f} -> {r['official_gflops_selected']:.3f} GFLOPs "
          f"per clip: {r['flops_implied_speedup']:.2f}x promised, {r['realised_ratio']:.0%} of it realised")


def _cmd_demo(args) -> int:
    if args.random_weights is False and (args.model is not None or args.ratio is not None or args.size is not None):
        raise ValueError("--model/--ratio/--size choose the random-weights demo: add --random-weights (the demo "
                         "model has its own architecture, size and learned selection)")
    out = args.out or tempfile.mkdtemp(prefix="afnet_edge_demo_")
    if args.random_weights:
        print(f"afnet-edge demo: --random-weights: the classes mean nothing, the skipping is real. Output folder: "
              f"{out}", file=sys.stderr)
        r = run_random_demo(out, args.model or "af_resnet50", args.ratio or 0.4, args.size or 224, args.repeats,
                            args.seed or 0, args.threads)
        print(f"video            {r['video']} (synthetic class '{r['video_class']}'), sampled frames "
              f"{r['sampled_frames']}")
        print(f"model            {r['model']}, {r['selection']}: {r['real_ratio']:.0%} of focal frames processed")
        for name, frames in r["selected_frames"].items():
            print(f"  {name:20s} focal frames {frames}")
        _print_timing(r, args.repeats, "clip")
        print(f"contact sheet    {r['contact_sheet']}; all numbers in {os.path.join(out, 'demo.json')}")
        return 0
    print(f"afnet-edge demo: the {demo_summary()} (--random-weights for random weights). Output folder: {out}",
          file=sys.stderr)
    r = run_demo(out, args.clips, args.repeats, DEMO_SEED if args.seed is None else args.seed, args.threads)
    for c in r["clips"]:
        print(f"{os.path.basename(c['video'])}  true {c['true_class']:22s} predicted {c['predicted']:22s} "
              f"{c['probability']:6.1%} {'ok' if c['correct'] else 'WRONG'}; distractor frames "
              f"{c['distractor_frames'] or 'none'}; real ratio {c['real_ratio']:.2f}")
    print(f"correct          {r['correct']} of {len(r['clips'])} clips")
    if r["kept_informative"] is not None and r["kept_distractor"] is not None:
        print(f"focal branch     took {r['kept_informative']:.0%} of the informative frames and "
              f"{r['kept_distractor']:.0%} of the distractor frames (mean over the navigation modules)")
    _print_timing(r, args.repeats, f"batch of {len(r['clips'])} clips")
    print(f"contact sheets   {', '.join(c['contact_sheet'] for c in r['clips'])}")
    print(f"all numbers in   {os.path.join(out, 'demo.json')}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on generated videos with the shipped demo model (no downloads)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder, created if needed (default: a new temporary folder, printed)")
    p.add_argument("--clips", type=positive_int, default=4,
                   help="held-out synthetic clips to classify with the demo model (default: 4)")
    p.add_argument("--random-weights", action="store_true",
                   help="instead: one generated video through --model with seeded random weights (the mechanics, "
                        "not the method)")
    p.add_argument("--model", default=None, choices=("af_resnet50", "af_resnet101", "af_mobilenetv3"),
                   help="with --random-weights: the frame-skipping model to run (default: af_resnet50)")
    p.add_argument("--ratio", type=ratio_arg, default=None,
                   help="with --random-weights: topk selection ratio (default: 0.4)")
    p.add_argument("--size", type=positive_int, default=None, help="with --random-weights: crop size (default: 224)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per execution (default: 3)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of the generated clips (default: {DEMO_SEED}, clips the demo model never saw; with "
                        f"--random-weights: 0, also the seed of the random weights)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=_cmd_demo)
