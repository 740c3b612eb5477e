"""The "no frame left behind" claim in miniature: full-video clustering vs uniform sampling vs every frame, on the
Move4MNIST-style videos (:mod:`afnet_edge.data.move4mnist`), trained on a CPU.

Schedule shape of the release (spec full-video-clustering.md §5, §6, §9: a TSM warm-up, then clustering), preceded by
a clean pre-training stage that stands in for the release's ImageNet weights (none can be downloaded here). Per seed,
with ``fullvideo_tsm_r18`` at width ×0.25 (16/32/64/128 channels) on 32×32 frames, one thread per process:

0. **pre-training**: TSM on K frames drawn from each video's *informative* frames only (``--informative-only``; the
   generator knows which frames show the moving digit), ``--pretrain-epochs`` epochs from scratch. Why: from scratch
   on the real inputs (K uniform frames, about a third of them informative) the network stays at chance for as long
   as this CPU can train it — the direction is a sub-pixel-per-frame drift and most sampled frames carry none of it —
   while the same network on informative frames leaves chance after 3-4 epochs (the diagnosis in
   ``benchmarks/results/cpu/move4mnist.md``). Validation never uses it: every setting is evaluated on its own input,
   every kind of frame included;
1. **warm-up**: TSM on K uniformly sampled frames (K clusters of one frame each = plain TSM), ``--warmup-epochs``;
2. from that checkpoint, ``--epochs`` more epochs in each of three settings, same data, seed and learning rate:

   * ``uniform``: K uniformly sampled frames (TSN segment sampling: random in training, centres in validation);
   * ``clustered``: all 32 frames through stem + layer1, clustered to K (slope rule), layers 2-4 on K;
   * ``all frames``: all 32 frames through the whole network (K = 32: every frame its own cluster).

Evaluated with ``afnet-edge eval`` on the validation split (unseen digit images). Writes
``benchmarks/results/cpu/move4mnist.{json,md}``: top-1 per setting and seed, mean ± spread, official GFLOPs per
video, wall times, the exact commands, machine and load.

Run from the repository root::

    python benchmarks/train_move4mnist.py                  # the committed experiment
    python benchmarks/train_move4mnist.py --quick          # a smoke run (writes *_quick.*, not a result)
    python benchmarks/train_move4mnist.py --md-from benchmarks/results/cpu/move4mnist.json   # re-render the .md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ("uniform", "clustered", "all frames")


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "afnet_edge.cli", *args]


def _run(cmd: list[str], log: str) -> float:
    t0 = time.time()
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(shlex.join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {shlex.join(cmd)}; see {log}")
    return time.time() - t0


def _frames_clusters(setting: str, k: int) -> tuple[int, int]:
    return {"uniform": (k, k), "clustered": (32, k), "all frames": (32, 32)}[setting]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--clusters", type=int, default=8, help="K (8)")
    p.add_argument("--size", type=int, default=32, help="frame side (32; the release: 64)")
    p.add_argument("--width", type=float, default=0.25,
                   help="channel width multiplier of the ResNet-18 (0.25: 16/32/64/128 channels; the release: 1)")
    p.add_argument("--train-samples", type=int, default=800)
    p.add_argument("--val-samples", type=int, default=300)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--pretrain-epochs", type=int, default=10,
                   help="epochs of TSM on K frames drawn from the informative frames only, before the warm-up "
                        "(10; 0 = none; a clean pre-training stage standing in for the release's ImageNet weights)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--parallel", type=int, default=2, help="training processes at a time, one thread each (2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (cpu)")
    p.add_argument("--dropout", type=float, default=0.2, help="classifier dropout (0.2; the release: 0.8)")
    p.add_argument("--work", default=os.path.join(REPO, "build", "move4mnist"))
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "cpu"))
    p.add_argument("--quick", action="store_true", help="tiny smoke run, written as move4mnist_quick.*")
    p.add_argument("--md-from", metavar="JSON", help="only rewrite the .md next to this results file from it")
    a = p.parse_args(argv)
    if a.md_from:
        with open(a.md_from) as f:
            res = json.load(f)
        with open(os.path.splitext(a.md_from)[0] + ".md", "w") as f:
            f.write(render_md(res))
        return 0
    if a.quick:
        a.seeds, a.train_samples, a.val_samples, a.warmup_epochs, a.epochs = [0], 32, 16, 1, 1
        a.pretrain_epochs = min(a.pretrain_epochs, 1)
    k = a.clusters
    os.makedirs(a.work, exist_ok=True)
    common = ["--data", "move4mnist", "--model", "fullvideo_tsm_r18", "--classes", "4", "--rule", "slope",
              "--size", str(a.size), "--width-mult", str(a.width), "--train-samples", str(a.train_samples), "--val-samples", "0",
              "--batch-size", str(a.batch_size), "--lr", str(a.lr), "--threads", "1", "--no-progress",
              "--device", a.device, "--dropout", str(a.dropout), "--no-fc-lr5"]
    started, load0 = time.time(), os.getloadavg()
    commands: list[str] = []
    walls: dict[str, float] = {}

    def warm(seed: int) -> str:
        start: list[str] = []
        if a.pretrain_epochs:
            pre = os.path.join(a.work, f"seed{seed}", "pretrain")
            cmd = _cli(["train", *common, "--frames", str(k), "--clusters", str(k), "--epochs",
                        str(a.pretrain_epochs), "--lr-steps", str(a.pretrain_epochs + 1), "--seed", str(seed),
                        "--data-seed", str(seed), "--informative-only", "--out", pre])
            commands.append(shlex.join(cmd[2:]))
            walls[f"pretrain/{seed}"] = _run(cmd, pre + ".log")
            start = ["--finetune", os.path.join(pre, "last.pth")]
        out = os.path.join(a.work, f"seed{seed}", "warmup")
        cmd = _cli(["train", *common, "--frames", str(k), "--clusters", str(k), "--epochs", str(a.warmup_epochs),
                    "--lr-steps", str(a.warmup_epochs + 1), "--seed", str(seed), "--data-seed", str(seed),
                    *start, "--out", out])
        commands.append(shlex.join(cmd[2:]))
        walls[f"warmup/{seed}"] = _run(cmd, out + ".log")
        return os.path.join(out, "last.pth")

    def branch(seed: int, setting: str, start: str) -> dict:
        n, kk = _frames_clusters(setting, k)
        tag = setting.replace(" ", "_")
        out = os.path.join(a.work, f"seed{seed}", tag)
        cmd = _cli(["train", *common, "--frames", str(n), "--clusters", str(kk), "--epochs", str(a.epochs),
                    "--lr-steps", str(max(1, a.epochs - 1)), "--seed", str(seed), "--data-seed", str(seed),
                    "--finetune", start, "--out", out])
        commands.append(shlex.join(cmd[2:]))
        walls[f"{tag}/{seed}"] = _run(cmd, out + ".log")
        ev = _cli(["eval", "--data", "move4mnist", "--checkpoint", os.path.join(out, "last.pth"), "--size",
                   str(a.size), "--val-samples", str(a.val_samples), "--data-seed", str(seed), "--threads", "1",
                   "--device", a.device, "--json", "--no-progress"])
        res = subprocess.run(ev, capture_output=True, text=True, cwd=REPO)
        if res.returncode:
            raise SystemExit(f"eval failed: {shlex.join(ev)}\n{res.stderr}")
        rec = json.loads(res.stdout)
        return {"seed": seed, "setting": setting, "frames": n, "clusters": kk, "top1": rec["top1"],
                "gflops": round(rec["official_gflops"], 3), "wall_s": round(walls[f"{tag}/{seed}"], 1)}

    with ThreadPoolExecutor(a.parallel) as pool:       # each seed's three branches queue as soon as its warm-up ends
        warms = {pool.submit(warm, s): s for s in a.seeds}
        jobs = []
        for f in as_completed(warms):
            jobs += [pool.submit(branch, warms[f], st, f.result()) for st in SETTINGS]
        rows = sorted((j.result() for j in jobs), key=lambda r: (SETTINGS.index(r["setting"]), r["seed"]))

    summary = {}
    for st in SETTINGS:
        t = np.array([r["top1"] for r in rows if r["setting"] == st], dtype=float)
        g = [r["gflops"] for r in rows if r["setting"] == st]
        summary[st] = {"top1_mean": round(float(t.mean()), 2),
                       "top1_std": round(float(t.std(ddof=1)) if len(t) > 1 else 0.0, 2),
                       "top1_min": round(float(t.min()), 2), "top1_max": round(float(t.max()), 2), "gflops": g[0],
                       "wall_s_mean": round(float(np.mean([r["wall_s"] for r in rows if r["setting"] == st])), 1)}
    res = {"experiment": "move4mnist", "quick": a.quick, "clusters": k, "size": a.size, "seeds": a.seeds,
           "width": a.width, "train_samples": a.train_samples, "val_samples": a.val_samples,
           "warmup_epochs": a.warmup_epochs, "pretrain_epochs": a.pretrain_epochs, "nice": os.nice(0), "threads_per_process": 1, "parallel": a.parallel,
           "epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size, "dropout": a.dropout, "device": a.device, "rows": rows, "summary": summary,
           "wall_s": {k_: round(v, 1) for k_, v in walls.items()}, "total_wall_s": round(time.time() - started, 1),
           "command": "python benchmarks/train_move4mnist.py" + (" --quick" if a.quick else ""),
           "commands": commands, "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
           "load_start": [round(x, 2) for x in load0], "load_end": [round(x, 2) for x in os.getloadavg()]}
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, "move4mnist" + ("_quick" if a.quick else ""))
    with open(stem + ".json.tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(stem + ".json.tmp", stem + ".json")
    with open(stem + ".md.tmp", "w") as f:
        f.write(render_md(res))
    os.replace(stem + ".md.tmp", stem + ".md")
    print(render_md(res))
    return 0


def render_md(res: dict) -> str:
    k = res["clusters"]
    pre = res.get("pretrain_epochs", 0)
    stages = (f"{pre} epochs of TSM on {k} frames drawn from each video's informative frames only (clean "
              f"pre-training, standing in for the release's ImageNet weights; `--informative-only`), then "
              if pre else "")
    lines = [f"# Move4MNIST-style videos: clustering 32 frames to K={k} vs uniform K vs all frames",
             "",
             f"`{res['command']}` — fullvideo_tsm_r18 ×{res.get('width', 1):g} width from scratch, "
             f"{res['size']}×{res['size']} px, "
             f"{res['train_samples']} training / {res['val_samples']} validation videos (unseen digit images); "
             f"{stages}the release's schedule shape: warm-up {res['warmup_epochs']} epochs of TSM on {k} uniform "
             f"frames, then {res['epochs']} epochs per setting from the same warm-up (lr {res['lr']}, ×0.1 for the "
             f"last epoch; batch {res['batch_size']}, dropout {res['dropout']}); seeds "
             f"{', '.join(map(str, res['seeds']))}; {res['machine']}, {res.get('parallel', 2)} training processes "
             f"of 1 thread at nice {res.get('nice', 0)} sharing the cores with other jobs (1-min load "
             f"{res['load_start'][0]} at the start, {res['load_end'][0]} at the end), "
             f"{res['total_wall_s'] / 60:.0f} min in all. Chance: 25 %. Validation: the settings' own inputs "
             f"(uniform: {k} segment centres; clustered and all frames: every frame).",
             "",
             "| setting | frames in | clusters | top-1 % mean ± std | min–max over seeds | official GFLOPs / video "
             "| fine-tune wall s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for st, s in res["summary"].items():
        n, kk = _frames_clusters(st, k)
        lines.append(f"| {st} | {n} | {kk} | {s['top1_mean']:.1f} ± {s.get('top1_std', 0.0):.1f} | "
                     f"{s['top1_min']:.1f}–{s['top1_max']:.1f} | {s['gflops']} | {s.get('wall_s_mean', '–')} |")
    seeds = res["seeds"]
    lines += ["", "Per seed (top-1 %):", "", "| setting | " + " | ".join(f"seed {x}" for x in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for st in res["summary"]:
        by = {r["seed"]: r["top1"] for r in res["rows"] if r["setting"] == st}
        lines.append(f"| {st} | " + " | ".join(f"{by[x]:.1f}" if x in by else "–" for x in seeds) + " |")
    lines += ["", "Wall time per stage (s): " + ", ".join(f"{k_} {v}" for k_, v in res["wall_s"].items()) + ".",
              "", "Commands (`afnet-edge …`):", "", "```"] + res["commands"] + ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
