"""What does the shipped demo model's focal branch depend on? Accuracy of the demo model under given selections.

Why: a navigation can keep its trained share of frames without choosing them by content (the demo model trained with
the release's estimator sent distractors to the focal branch as often as informative frames). This measurement says
what the model's focal branch depends on:

* nothing the ample branch lacks (then any selection, even none, gives the same accuracy),
* the positions its navigation learned to select (then its own masks work, and the same number of frames at other
  positions, or only on the informative frames, does not), or
* the informative frames (then the oracle that keeps exactly them is as good as its own selections).

The reading under the tables is computed from the numbers, for whichever model was measured.

Every row runs the shipped model (masked execution, the official 0/1 multiply) on the same held-out clips of the
card's dataset with the navigation overridden by given masks (``model(clip, masks=...)``), one mask per clip shared
by all navigation modules except for "own" rows. Deterministic; seconds on a CPU core::

    python benchmarks/demo_model_masks.py

Writes ``benchmarks/results/cpu/demo_model_masks.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO, os.path.join(REPO, "benchmarks")):
    if path not in sys.path:
        sys.path.insert(0, path)

from afnet_edge.data import SyntheticVideoDataset  # noqa: E402
from afnet_edge.demo_model import demo_card, load_demo_model  # noqa: E402
from afnet_edge.video import normalize_frames  # noqa: E402
from train_synthetic import CachedClips, machine_info  # noqa: E402


def selections(own: torch.Tensor, distractor: torch.Tensor, seed: int) -> list[tuple[str, str, torch.Tensor]]:
    """``(name, what it tests, masks (L, B, T))`` for every row; ``own`` is the model's own masks ``(L, B, T)``."""
    g = torch.Generator().manual_seed(seed)
    n_mod, b, t = own.shape
    ratio = float(own.mean())
    inf = (~distractor).float()
    rnd = (torch.rand(b, t, generator=g) < ratio).float()
    # the model's own per-clip counts, moved to informative frames where the clip has enough of them
    take_inf = torch.zeros(b, t)
    for i in range(b):
        k = int(round(float(own[:, i].mean()) * t))
        idx = torch.nonzero(inf[i]).flatten()
        pick = idx[torch.randperm(idx.numel(), generator=g)[:k]]
        take_inf[i, pick] = 1.0
    perm = torch.roll(torch.arange(t), 1)
    rows = [
        ("own", "the navigation's own selections (threshold rule)", own),
        ("own, positions shifted by one", "the same selections one frame later (cyclic)", own[:, :, perm]),
        ("all frames", "every frame to the focal branch", torch.ones(n_mod, b, t)),
        ("no frame", "the ample branch alone", torch.zeros(n_mod, b, t)),
        ("informative frames only", "an oracle that skips exactly the distractors", inf.expand(n_mod, b, t)),
        ("distractor frames only", "the opposite oracle", distractor.float().expand(n_mod, b, t)),
        (f"random, ratio {float(rnd.mean()):.2f}", "as many frames as the model keeps, at random", rnd.expand(n_mod, b, t)),
        ("informative, own count", "the model's own count per clip, on informative frames only",
         take_inf.expand(n_mod, b, t)),
    ]
    return rows


def reading(rows: list[dict], pattern: torch.Tensor) -> list[str]:
    """The results file's reading of the rows, from the numbers (so it stays true for whichever model was measured).

    ``pattern`` is ``(L, T)``: how often module ``l`` selects position ``t`` with the model's own rule. A module whose
    rates are all below 0.05 or above 0.95 selects the same positions in every clip (content-blind)."""
    by = {r["selection"]: r for r in rows}
    own, shifted, orc = by["own"], by["own, positions shifted by one"], by["informative frames only"]
    fixed = ((pattern < 0.05) | (pattern > 0.95)).all(1)          # (L,) module selects fixed positions
    n_fixed = int(fixed.sum())
    pref = own["informative_kept"] / max(own["distractor_kept"], 1e-9)
    out = [f"* With its own selections the model is right on {own['top1']:.1f} % of the clips; the same selections "
           f"one frame later give {shifted['top1']:.1f} %, every frame {by['all frames']['top1']:.1f} %, no frame "
           f"{by['no frame']['top1']:.1f} %, and the oracle that skips exactly the distractors {orc['top1']:.1f} %.",
           f"* Its own selections send informative frames to the focal branch {pref:.2f}× as often as distractors "
           f"({own['informative_kept']:.3f} vs {own['distractor_kept']:.3f} kept).",
           f"* {n_fixed} of its {fixed.numel()} navigation modules select{'s' if n_fixed == 1 else ''} the same frame "
           f"positions in every clip (every rate in the position table below 0.05 or above 0.95)"
           + (": the selection is a fixed per-position pattern, whatever the clip shows." if bool(fixed.all()) else
              "; the selections of the others depend on what the clip shows." if bool(fixed.any()) else
              ": every module's selections depend on what the clip shows.")]
    cost = own["top1"] - shifted["top1"]
    out.append(f"* Moving its selections by one frame costs {cost:.1f} points"
               + (" and the oracle is below its own selections by "
                  f"{own['top1'] - orc['top1']:.1f} points: the network relies on the frames its own navigation "
                  "chooses, not on the informative frames as such." if orc["top1"] < own["top1"] - 5.0 else
                  "; the oracle is within 5 points of (or above) its own selections."))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--val-samples", type=int, default=240, help="held-out clips (the card's validation split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random selections")
    p.add_argument("--out-dir", default=os.path.join(REPO, "benchmarks", "results", "cpu"))
    p.add_argument("--checkpoint", default=None,
                   help="instead of the shipped model, a model of the same architecture trained by "
                        "benchmarks/train_demo_model.py (its final.pth); the results are written as --name")
    p.add_argument("--name", default="demo_model_masks", help="stem of the results files (demo_model_masks)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    card = demo_card()
    d = card["dataset"]
    model = load_demo_model(args.checkpoint, selection="threshold", execution="masked")
    val = CachedClips(SyntheticVideoDataset(args.val_samples, num_frames=d["num_frames"], size=d["size"],
                                            num_classes=d["num_classes"], seed=d["val_seed"],
                                            distractor_prob=d["distractor_prob"]))
    clip = torch.stack([normalize_frames(f) for f in val.frames])
    label = torch.from_numpy(val.labels)
    distractor = torch.from_numpy(val.distractor)
    rows = []
    with torch.no_grad():
        own = torch.stack(model(clip).masks).float()
        for name, what, masks in selections(own, distractor, args.seed):
            out = model(clip, masks=list(masks.unbind(0)))
            rows.append({"selection": name, "tests": what, "top1": 100.0 * float((out.logits.argmax(1) == label).float().mean()),
                         "ratio": float(masks.mean()),
                         "informative_kept": float(masks[:, ~distractor].mean()),
                         "distractor_kept": float(masks[:, distractor].mean())})
    pattern = own.mean(1)  # (L, T): how often module l selects position t
    result = {"pattern": [[round(float(v), 3) for v in row] for row in pattern], "benchmark": "demo_model_masks", "command": "python benchmarks/demo_model_masks.py" +
              ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv if argv is not None else sys.argv[1:])),
              "machine": machine_info(__file__), "seconds": time.perf_counter() - t0, "val_samples": args.val_samples,
              "dataset": d, "model": card["model"], "options": card["options"], "rows": rows}
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, args.name)
    with open(stem + ".json.tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(stem + ".json.tmp", stem + ".json")
    title = "The shipped demo model" if args.checkpoint is None else f"The model in {args.checkpoint}"
    lines = [f"# {title} under given frame selections (CPU)", "",
             f"Generated by `{result['command']}` in {result['seconds']:.0f} s (torch {result['machine']['torch']}, "
             f"1 thread). Model: {'the shipped demo model' if args.checkpoint is None else args.checkpoint} ({card['model']} width {card['options'].get('width', 1)}, "
             f"T = {card['num_frames']}, {card['size']} px), masked execution; {args.val_samples} held-out clips "
             f"(dataset seed {d['val_seed']}, distractor probability {d['distractor_prob']}); chance "
             f"{100 / card['num_classes']:.1f} %. Each row overrides the navigation with the masks named (the same "
             f"mask in every navigation module, except the rows built from the model's own masks).", "",
             "| selection | what it tests | top-1 % | frames to the focal branch | informative kept | distractors kept |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['selection']} | {r['tests']} | {r['top1']:.1f} | {r['ratio']:.3f} | {r['informative_kept']:.3f} | "
              f"{r['distractor_kept']:.3f} |" for r in rows]
    t = pattern.shape[1]
    lines += ["", "How often each navigation module selects each frame position with its own (threshold) rule:", "",
              "| module | " + " | ".join(f"frame {i}" for i in range(t)) + " |", "|---|" + "---|" * t]
    lines += [f"| {i} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for i, row in enumerate(result["pattern"])]
    lines += ["", "## Reading the numbers", ""] + reading(rows, pattern)
    with open(stem + ".md.tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(stem + ".md.tmp", stem + ".md")
    for r in rows:
        print(f"{r['selection']:>34}: top-1 {r['top1']:5.1f} %  ratio {r['ratio']:.3f}")
    print(f"wrote {stem}.json/.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
