"""Accuracy vs frame ratio vs FLOPs on the synthetic temporal benchmark, trained on a CPU.

Trains AF-MobileNetV3 with the official objective and schedules (spec §7, :mod:`afnet_edge.training`) at target
ratios RT ∈ {0.25, 0.5, 1.0} and a dense TSM-ResNet50 baseline, evaluates each on a held-out split, and writes
``benchmarks/results/cpu/train_synthetic.{json,md,png}`` (accuracy, real selection ratio, official FLOPs per clip,
executed MACs, whether the navigation skips distractor frames, the exact command, seed, machine, wall times).

How the budget (≤ 15 minutes on 2 CPU cores shared with other jobs) is met, and what differs from the paper:

* **Small clips**: 6 classes (three reverse pairs), T = 8 frames of 64×64 px, 360 training clips, 8 epochs, all
  rendered once into memory (the synthetic dataset is deterministic, so caching changes nothing but time).
* **Shared warm-up**: the first ``rt_begin`` epochs target ratio 1.0 whatever RT is (``adjust_ratio``), so the three
  AF runs share them: one run trains the warm-up and saves a checkpoint, and each RT resumes from it
  (:meth:`Trainer.resume` continues bit for bit, so each branch *is* the run that would have started from scratch
  with that RT and the same seed).
* **Two runs at a time** in separate single-threaded processes (one torch thread per run is much faster than two
  on busy cores); every run is deterministic on its own, so the schedule of processes does not change the numbers.
* **Compressed schedules**: ``rt_begin`` = 4, ``rt_end`` = 6, ``t_end`` = 7 and one LR step at epoch 7 of 8 (the
  release: 10, 20, 50, steps 25/45 of 55 epochs).
* **From scratch** (the paper fine-tunes ImageNet-pretrained backbones): lr 0.1 without the Linear lr×5/×10 of the
  official ``fc_lr5`` (meant for fine-tuning; with it the randomly initialised heads diverged in trial runs).
* **Navigation start and ratio weight**: the official initialisation makes the "select" logit 9 above "skip"
  (P(select) ≈ 0.9999), where the straight-through gradient of the ratio loss is ≈ σ'(9) ≈ 1e-4: leaving that
  saturation takes tens of thousands of iterations, a hundred times this budget. Here the gap starts at
  ``--nav-gap`` 3 (P(select) ≈ 0.95) and ``lambda_rt`` is 4 instead of 0.5.
* **Model**: AF-MobileNetV3, the cheapest AFNet (a training step costs about 4× less CPU time per clip than the
  ResNet-50 family at 64 px).
* **Dense baseline**: TSM-ResNet50 (the paper's baseline family) on the same clips area-averaged to 32 px, where a
  training step costs about as much CPU time per clip as AF-MobileNetV3 at 64 px; same epochs, lr 0.02.

Evaluation uses the deterministic ``threshold`` selection (select iff P(select) > 0.5, the deployable rule) and also
the official stochastic Gumbel selection (seeded); both are reported.

Run from the repository root::

    python benchmarks/train_synthetic.py                 # the committed experiment
    python benchmarks/train_synthetic.py --quick         # a 1-minute smoke run (writes *_quick.*, not a result)
    python benchmarks/train_synthetic.py --replot benchmarks/results/cpu/train_synthetic.json   # redraw md/png
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from afnet_edge import create_model  # noqa: E402
from afnet_edge.data import CLASS_NAMES, SyntheticVideoDataset  # noqa: E402
from afnet_edge.layers.navigation import set_navigation_gap  # noqa: E402
from afnet_edge.training import TrainConfig, Trainer, evaluate, seed_everything  # noqa: E402
from afnet_edge.video import normalize_frames  # noqa: E402


class CachedClips(Dataset):
    """A synthetic split rendered once into memory as uint8 ``(N, T, H, W, 3)``; items are normalised on access."""

    def __init__(self, ds: SyntheticVideoDataset):
        first = ds.render(0)
        self.frames = np.empty((len(ds),) + first.frames.shape, dtype=np.uint8)
        self.labels = np.empty(len(ds), dtype=np.int64)
        self.distractor = np.empty((len(ds), first.frames.shape[0]), dtype=bool)
        for i in range(len(ds)):
            s = first if i == 0 else ds.render(i)
            self.frames[i], self.labels[i], self.distractor[i] = s.frames, s.label, s.distractor

    def resized(self, size: int) -> "CachedClips":
        """The same clips area-averaged to ``size`` px (``size`` must divide the rendered side)."""
        n, t, h, w, c = self.frames.shape
        if h % size or w % size:
            raise ValueError(f"baseline size {size} must divide the rendered size {h}x{w}")
        out = CachedClips.__new__(CachedClips)
        fh, fw = h // size, w // size
        x = self.frames.reshape(n, t, size, fh, size, fw, c).astype(np.float32).mean(axis=(3, 5))
        out.frames = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        out.labels, out.distractor = self.labels, self.distractor
        return out

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return normalize_frames(self.frames[i]), int(self.labels[i])


def machine_info(script: str = __file__) -> dict:
    """Machine, load, torch and git commit; ``git_dirty`` when the package or ``script`` (the calling benchmark) has
    uncommitted changes."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": platform.processor() or "", "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu"] = names[0] if names else info["cpu"]
    except OSError:
        pass
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                            text=True, check=True).stdout.strip()
        used = ["afnet_edge/__init__.py", "afnet_edge/training", "afnet_edge/models", "afnet_edge/layers",
                "afnet_edge/kernels", "afnet_edge/data", "afnet_edge/video.py", "afnet_edge/flops.py",
                "afnet_edge/checkpoint.py", "benchmarks/train_synthetic.py", os.path.relpath(script, REPO)]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *used], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        info["git_dirty"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def distractor_selection(model, val: CachedClips, batch_size: int, limit: int | None = None) -> dict:
    """Fraction of informative vs distractor frames kept by threshold selection (mean over modules), on the first
    ``limit`` validation clips."""
    if getattr(model, "num_navigation", 0) == 0:
        return {}
    model.eval().configure(selection="threshold")
    kept_inf = kept_dis = 0.0
    n_inf = n_dis = 0
    with torch.no_grad():
        n = len(val) if limit is None else min(limit, len(val))
        for i in range(0, n, batch_size):
            idx = range(i, min(i + batch_size, n))
            clip = torch.stack([val[j][0] for j in idx])
            masks = torch.stack(model(clip).masks).mean(0)  # (B, T): fraction of modules selecting each frame
            dis = torch.from_numpy(val.distractor[list(idx)])
            kept_dis += float(masks[dis].sum())
            kept_inf += float(masks[~dis].sum())
            n_dis += int(dis.sum())
            n_inf += int((~dis).sum())
    return {"kept_informative": kept_inf / max(n_inf, 1), "kept_distractor": kept_dis / max(n_dis, 1),
            "clips": n, "informative_frames": n_inf, "distractor_frames": n_dis}


# ------------------------------------------------------------------------------------------------------- tasks
# Run in worker processes (fork): they read the cached clips and the options from these module globals.
_G: dict = {}


def _log(name: str):
    return lambda line: print(f"[{name}] {line}", flush=True)


def _schedule(args) -> dict:
    E, W = args.epochs, args.warmup
    return dict(epochs=E, batch_size=args.batch_size, lr=args.lr, lr_steps=(max(W + 1, round(0.82 * E)),),
                rt_begin=W, rt_end=min(E, W + 2), lambda_rt=args.lambda_rt, t0=1.0, t1=0.01,
                t_end=max(1, round(50 / 55 * E)), seed=args.seed, eval_every=args.val_every, clip_grad=20.0,
                fc_lr5=args.fc_lr5)


def task_warmup() -> dict:
    """The shared first ``rt_begin`` epochs (target ratio 1.0), saved as a resumable checkpoint."""
    args, train, val = _G["args"], _G["train"], _G["val"]
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model = create_model("af_mobilenetv3", num_classes=args.classes, num_frames=args.frames)
    set_navigation_gap(model, args.nav_gap)
    t0 = time.perf_counter()
    out = os.path.join(_G["work"], "warmup")
    tr = Trainer(model, train, TrainConfig(rt=1.0, **_schedule(args)), val if args.val_every else None,
                 out_dir=out, log=_log("warm-up"))
    tr.fit(max_steps=args.warmup * tr.iters_per_epoch)
    return {"checkpoint": os.path.join(out, "last.pth"), "seconds": time.perf_counter() - t0}


def task_branch(rt: float, warm_ckpt: str) -> dict:
    """Resume the warm-up with target ratio ``rt`` and train to the end; evaluate."""
    args, train, val = _G["args"], _G["train"], _G["val"]
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model = create_model("af_mobilenetv3", num_classes=args.classes, num_frames=args.frames)
    t0 = time.perf_counter()
    tr = Trainer(model, train, TrainConfig(rt=rt, **_schedule(args)), val if args.val_every else None,
                 out_dir=os.path.join(_G["work"], f"af_rt{rt:g}"), log=_log(f"RT={rt:g}"))
    tr.resume(warm_ckpt)
    tr.fit()
    t_train = time.perf_counter() - t0
    ev = {}
    for sel in ("threshold", "gumbel"):
        r = evaluate(model, val, batch_size=args.batch_size, selection=sel, generator_seed=args.seed)
        ev[sel] = {k: r[k] for k in ("top1", "top5", "loss", "real_ratio", "module_ratios", "official_gflops",
                                     "official_gflops_r1", "executed_gmacs_compact", "seconds")}
    print(f"[RT={rt:g}] top1 {ev['threshold']['top1']:.1f} (gumbel {ev['gumbel']['top1']:.1f}) ratio "
          f"{ev['threshold']['real_ratio']:.3f} {ev['threshold']['official_gflops']:.4f} GFLOPs [{t_train:.0f} s]",
          flush=True)
    return {"model": "af_mobilenetv3", "size": args.size, "target_ratio": rt, "epochs": args.epochs,
            "train_seconds": t_train, "eval": ev, "selection_vs_distractors": distractor_selection(
                model, val, args.batch_size, limit=120), "history": tr.state.history}


def task_baseline() -> dict:
    """The dense baseline, trained on the same clips (at ``--baseline-size`` px)."""
    args = _G["args"]
    train, val = _G["train_b"], _G["val_b"]
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model = create_model(args.baseline, num_classes=args.classes, num_frames=args.frames)
    Eb = args.baseline_epochs
    cfg = TrainConfig(epochs=Eb, batch_size=args.batch_size, lr=args.baseline_lr,
                      lr_steps=(max(1, round(0.82 * Eb)),), seed=args.seed, eval_every=args.val_every,
                      clip_grad=20.0, rt_begin=0, rt_end=0, t_end=0, fc_lr5=args.fc_lr5)
    t0 = time.perf_counter()
    tr = Trainer(model, train, cfg, val if args.val_every else None, out_dir=os.path.join(_G["work"], args.baseline),
                 log=_log(args.baseline))
    tr.fit()
    t_train = time.perf_counter() - t0
    r = evaluate(model, val, batch_size=args.batch_size)
    ev = {k: r[k] for k in ("top1", "top5", "loss", "real_ratio", "official_gflops", "executed_gmacs_compact",
                            "seconds")}
    print(f"[{args.baseline}] top1 {ev['top1']:.1f} {ev['official_gflops']:.4f} GFLOPs [{t_train:.0f} s]", flush=True)
    return {"model": args.baseline, "size": args.baseline_size, "target_ratio": None, "epochs": Eb,
            "train_seconds": t_train, "eval": {"dense": ev}, "history": tr.state.history}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--classes", type=int, default=6, help="synthetic classes (reverse pairs; chance = 1/classes)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--train-samples", type=int, default=360)
    p.add_argument("--val-samples", type=int, default=240)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--epochs", type=int, default=8, help="AF-MobileNetV3 epochs")
    p.add_argument("--warmup", type=int, default=4, help="rt_begin: epochs at target ratio 1.0 (shared)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--fc-lr5", action="store_true",
                   help="official Linear lr×5/×10 (meant for fine-tuning a pretrained backbone; off by default here)")
    p.add_argument("--lambda-rt", type=float, default=4.0)
    p.add_argument("--nav-gap", type=float, default=3.0, help="initial select − skip bias (official: 9)")
    p.add_argument("--baseline", default="tsm_resnet50", help="dense baseline model, or 'none'")
    p.add_argument("--baseline-size", type=int, default=32,
                   help="baseline frame size: the same clips downsampled (32 px costs about as much CPU time "
                        "per clip as AF-MobileNetV3 at 64 px)")
    p.add_argument("--baseline-epochs", type=int, default=8)
    p.add_argument("--baseline-lr", type=float, default=0.02)
    p.add_argument("--val-every", type=int, default=0, help="also validate every N epochs during training (0: "
                                                               "final evaluation only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1 is fastest on busy cores)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs trained in parallel")
    p.add_argument("--out-dir", default=os.path.join(REPO, "benchmarks", "results", "cpu"))
    p.add_argument("--work-dir", default=os.path.join(REPO, "runs", "train_synthetic"))
    p.add_argument("--quick", action="store_true", help="tiny smoke run; writes train_synthetic_quick.*")
    p.add_argument("--replot", metavar="JSON", help="only rewrite the .md/.png next to an existing results JSON")
    args = p.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            result = json.load(f)
        stem = os.path.splitext(args.replot)[0]
        write_markdown(result, stem + ".md")
        write_plot(result, stem + ".png")
        print(f"wrote {stem}.md/.png")
        return 0
    if args.quick:
        args.train_samples, args.val_samples, args.epochs, args.warmup = 48, 24, 3, 1
        args.baseline_epochs, args.batch_size = 1, 8
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *(argv or sys.argv[1:])])
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {args.jobs} job(s) × "
          f"{args.threads} thread(s), load {info.get('loadavg_start')}", flush=True)

    t0 = time.perf_counter()
    kw = dict(num_frames=args.frames, size=args.size, num_classes=args.classes)
    _G["args"] = args
    _G["train"] = CachedClips(SyntheticVideoDataset(args.train_samples, seed=args.seed, **kw))
    _G["val"] = CachedClips(SyntheticVideoDataset(args.val_samples, seed=args.seed + 1, **kw))
    if args.baseline != "none":
        _G["train_b"] = _G["train"].resized(args.baseline_size)
        _G["val_b"] = _G["val"].resized(args.baseline_size)
    _G["work"] = args.work_dir + ("_quick" if args.quick else "")
    t_data = time.perf_counter() - t0
    print(f"data: {args.train_samples} train / {args.val_samples} val clips rendered in {t_data:.1f} s", flush=True)

    runs: dict = {}
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        warm = pool.submit(task_warmup)
        base = pool.submit(task_baseline) if args.baseline != "none" else None
        w = warm.result()
        print(f"warm-up: {args.warmup} epochs in {w['seconds']:.0f} s", flush=True)
        branches = {rt: pool.submit(task_branch, rt, w["checkpoint"]) for rt in args.ratios}
        for rt, f in branches.items():
            runs[rt] = {**f.result(), "warmup_seconds_shared": w["seconds"]}
        baseline = base.result() if base is not None else None
    run_list = [runs[rt] for rt in args.ratios] + ([baseline] if baseline else [])

    total = time.perf_counter() - t_all
    try:
        info["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    sched = _schedule(args)
    result = {
        "benchmark": "train_synthetic", "command": command, "seed": args.seed, "machine": info,
        "device": "cpu", "precision": "float32", "jobs": args.jobs, "total_seconds": total, "data_seconds": t_data,
        "data": {"dataset": "afnet_edge.data.SyntheticVideoDataset", "classes": CLASS_NAMES[:args.classes],
                 "chance_top1": 100.0 / args.classes, "frames": args.frames, "size": args.size,
                 "train_samples": args.train_samples, "val_samples": args.val_samples,
                 "train_seed": args.seed, "val_seed": args.seed + 1, "distractor_prob": 0.25},
        "schedule": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in sched.items()},
                     "nav_gap_init": args.nav_gap, "official_nav_gap": 9.0, "official_lambda_rt": 0.5,
                     "baseline": args.baseline,
                     "baseline_size": args.baseline_size, "baseline_epochs": args.baseline_epochs,
                     "baseline_lr": args.baseline_lr},
        "runs": run_list,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, "train_synthetic" + ("_quick" if args.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    write_markdown(result, stem + ".md")
    write_plot(result, stem + ".png")
    print(f"total {total:.0f} s; wrote {stem}.json/.md/.png", flush=True)
    return 0


def _load(machine: dict, key: str) -> str:
    v = machine.get(key)
    return f"{v[0]:.1f}" if v else "?"


def _rows(result: dict) -> list[dict]:
    rows = []
    for r in result["runs"]:
        for sel, ev in r["eval"].items():
            rows.append({"model": r["model"], "size": r["size"], "rt": r["target_ratio"], "selection": sel,
                         "epochs": r["epochs"], "train_s": r["train_seconds"], **ev})
    return rows


def write_markdown(result: dict, path: str) -> None:
    d, s, m = result["data"], result["schedule"], result["machine"]
    lines = [
        "# Accuracy vs frame ratio on the synthetic temporal benchmark (CPU)",
        "",
        f"Generated by `{result['command']}` (seed {result['seed']}) in {result['total_seconds']:.0f} s on "
        f"{m['cpu']} ({m['cores']} cores shared with other jobs, 1-minute load average {_load(m, 'loadavg_start')} "
        f"at the start, {_load(m, 'loadavg_end')} at the end), torch {m['torch']}, {m['torch_threads']} thread(s), float32, commit "
        f"{m.get('git_commit', '?')}{' + uncommitted changes in the files it uses' if m.get('git_dirty') else ''}.",
        "",
        f"Data: {d['classes'].__len__()} classes ({', '.join(d['classes'])}; chance {d['chance_top1']:.1f} %), "
        f"T = {d['frames']} frames of {d['size']}×{d['size']} px, {d['train_samples']} training clips (seed "
        f"{d['train_seed']}), {d['val_samples']} validation clips (seed {d['val_seed']}), distractor frames with "
        f"probability {d['distractor_prob']}.",
        "",
        f"Schedule (AF-MobileNetV3): {s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']} (×0.1 at "
        f"{s['lr_steps']}), fc_lr5 {s['fc_lr5']}, rt_begin {s['rt_begin']} (shared warm-up), rt_end "
        f"{s['rt_end']}, lambda_rt {s['lambda_rt']} (official {s['official_lambda_rt']}), τ from {s['t0']} to "
        f"{s['t1']} until epoch {s['t_end']}, --gd {s['clip_grad']}, navigation select − skip bias starts at "
        f"{s['nav_gap_init']} (official {s['official_nav_gap']}); SGD momentum 0.9, weight decay 5e-4. "
        f"Dense baseline {s['baseline']}: the same clips area-averaged to {s['baseline_size']} px, "
        f"{s['baseline_epochs']} epochs, lr {s['baseline_lr']} (×0.1 at the same fraction of the run), same batch. "
        f"Runs trained {result['jobs']} at a time in separate processes; `train s` is each run's own wall time "
        f"(the warm-up shared by the AF runs is not included).",
        "",
        "FLOPs: official accounting (spec §9) per clip of T frames at this resolution, for the masks observed on "
        "the validation set; executed GMACs: what the compact execution runs.",
        "",
        "| model | px | target RT | selection | top-1 % | top-5 % | real ratio | official GFLOPs | executed GMACs | "
        "epochs | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in _rows(result):
        rt = "dense" if r["rt"] is None else f"{r['rt']:g}"
        lines.append(f"| {r['model']} | {r['size']} | {rt} | {r['selection']} | {r['top1']:.1f} | {r['top5']:.1f} | "
                     f"{r['real_ratio']:.3f} | {r['official_gflops']:.4f} | {r['executed_gmacs_compact']:.4f} | "
                     f"{r['epochs']} | {r['train_s']:.0f} |")
    sel = [(r["target_ratio"], r["selection_vs_distractors"]) for r in result["runs"]
           if r.get("selection_vs_distractors")]
    if sel:
        n = sel[0][1]["clips"]
        lines += ["", f"Frames kept by threshold selection (mean over navigation modules; first {n} validation "
                      f"clips, whose distractor frames are known from the generator):", "",
                  "| target RT | informative frames kept | distractor frames kept |", "|---|---|---|"]
        lines += [f"| {rt:g} | {v['kept_informative']:.3f} | {v['kept_distractor']:.3f} |" for rt, v in sel]
    lines += ["", "## Reading the numbers", ""] + _observations(result)
    lines += ["", "Per-epoch training logs are in the JSON file (`runs[*].history`)."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _observations(result: dict) -> list[str]:
    """Facts computed from the results (no hand-written numbers)."""
    chance = result["data"]["chance_top1"]
    af = [r for r in result["runs"] if r["target_ratio"] is not None]
    dense = [r for r in result["runs"] if r["target_ratio"] is None]
    out = []
    if af:
        accs = ", ".join(f"{r['eval']['threshold']['top1']:.1f} % at RT={r['target_ratio']:g} (real ratio "
                         f"{r['eval']['threshold']['real_ratio']:.2f})" for r in af)
        out.append(f"* AF-MobileNetV3 validation top-1 (threshold selection): {accs}; chance is {chance:.1f} %.")
        lag = [r for r in af if r["eval"]["threshold"]["real_ratio"] > r["target_ratio"] + 0.05]
        if lag:
            names = ", ".join(f"{r['target_ratio']:g}" for r in lag)
            out.append(f"* The real ratio stays above the target for RT = {names}: the compressed schedule gives the ratio "
                       f"loss {result['schedule']['epochs'] - result['schedule']['rt_begin']} epochs, the release 45.")
        last = [(r["target_ratio"], r["history"][-1]["train_top1"]) for r in af if r.get("history")]
        if last:
            out.append("* Training top-1 in the last epoch: " + ", ".join(f"{a:.1f} % (RT={rt:g})" for rt, a in last)
                       + " (measured in training mode: Gumbel sampling, dropout, weights changing during the epoch). "
                         "The models are still improving when the budget ends, so these are not converged "
                         "accuracies, and the differences between ratios mix the accuracy cost of skipping frames "
                         "with slower learning at low ratios.")
        r1 = af[-1]["eval"]["threshold"].get("official_gflops_r1")
        low = min(af, key=lambda r: r["eval"]["threshold"]["real_ratio"])["eval"]["threshold"]
        if r1:
            out.append(f"* FLOPs: AF-MobileNetV3's focal bodies are a small part of its work: the official count is "
                       f"{r1:.4f} GFLOPs per clip with every frame and {low['official_gflops']:.4f} at real ratio "
                       f"{low['real_ratio']:.2f}, a saving of {100 * (1 - low['official_gflops'] / r1):.1f} %. The "
                       f"paper's larger savings are for AF-ResNet, whose focal bodies are a larger share (spec §9).")
        sel = [(r["target_ratio"], r["selection_vs_distractors"]) for r in af if r.get("selection_vs_distractors")]
        if sel:
            out.append("* Kept fraction of informative vs distractor frames: " + ", ".join(
                f"{v['kept_informative']:.2f} vs {v['kept_distractor']:.2f} (RT={rt:g})" for rt, v in sel) +
                ". Where these are close, the navigation has learned how many frames to keep but not yet which.")
    for d in dense:
        out.append(f"* Dense baseline {d['model']} at {d['size']} px: {d['eval']['dense']['top1']:.1f} % with "
                   f"{d['eval']['dense']['official_gflops']:.4f} GFLOPs per clip (training top-1 in its last epoch "
                   f"{d['history'][-1]['train_top1']:.1f} %); trained from scratch on {result['data']['train_samples']} "
                   f"clips, a ResNet-50 is far from converged in this budget.")
    return out


def write_plot(result: dict, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("matplotlib is not installed (pip install matplotlib): no plot written", file=sys.stderr)
        return
    rows = _rows(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for sel, marker in (("threshold", "o"), ("gumbel", "s")):
        pts = sorted((r["real_ratio"], r["official_gflops"], r["top1"], r["rt"]) for r in rows
                     if r["selection"] == sel)
        if not pts:
            continue
        label = f"AF-MobileNetV3 ({sel})"
        axes[0].plot([p[0] for p in pts], [p[2] for p in pts], marker=marker, label=label)
        axes[1].plot([p[1] for p in pts], [p[2] for p in pts], marker=marker, label=label)
        if sel == "threshold":
            for p in pts:
                for ax, x in ((axes[0], p[0]), (axes[1], p[1])):
                    ax.annotate(f"RT={p[3]:g}", (x, p[2]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    for r in rows:
        if r["selection"] == "dense":
            label = f"{r['model']} {r['size']} px (dense)"
            axes[0].axhline(r["top1"], color="gray", ls="--", label=label)
            axes[1].plot([r["official_gflops"]], [r["top1"]], "k^", label=label)
            axes[1].annotate(f"{r['model']} {r['size']} px", (r["official_gflops"], r["top1"]),
                             textcoords="offset points", xytext=(-40, 8), fontsize=8)
    chance = result["data"]["chance_top1"]
    for ax in axes:
        ax.axhline(chance, color="red", ls=":", lw=1, label="chance")
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("real selection ratio (validation)")
    axes[1].set_xlabel("official GFLOPs per clip (T frames)")
    axes[1].set_xlim(left=0)
    axes[0].legend(fontsize=8)
    d = result["data"]
    fig.suptitle(f"Synthetic temporal benchmark: {len(d['classes'])} classes, T={d['frames']}, {d['size']} px "
                 f"(CPU, {result['total_seconds'] / 60:.1f} min)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
