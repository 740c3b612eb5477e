"""Does AdaFocusV2's policy learn where to look? A tiny CPU experiment with the one-stage objective (issue 12 item 6).

Synthetic task: 224² frames of Gaussian noise (std 0.5); only one 96×96 corner of every frame carries the class,
as an oriented grating (class k: orientation k·π/C, random phase per frame). The informative corner is the top-left
(``--region tl``: rows and columns 0..95) or, as the control that the policy follows the content and not a drift of
its own, the bottom-right (``--region br``: 128..223); the untrained policy looks at the centre (≈ 0.5), inside
neither. A narrow AdaFocusV2-MN2 (policy GRU 128, classifier MLP 256, one bottleneck per local
ResNet stage; P = 32, T = 2) is trained from scratch with the family's objective through :class:`Trainer` (two
branches, aux heads, stop-gradient into π, the per-network learning rates of spec §2.9). Measured on held-out clips
in eval mode, before and after training: the policy's mean action (row, col) and the fraction of patches that lie
entirely inside the informative corner. Writes ``benchmarks/results/cpu/adafocus_region.json``.

Run from the repository root::

    python benchmarks/train_adafocus_region.py --region tl --steps 150
    python benchmarks/train_adafocus_region.py --region br --steps 150
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
from torch.utils.data import Dataset

from afnet_edge.models import adafocus as A
from afnet_edge.models.registry import BenchDefaults, registered
from afnet_edge.training import TrainConfig, Trainer

NAME = "adafocus_v2_mn2_region_experiment"
T, P, C, H, Q = 2, 32, 4, 224, 96


def narrow(num_classes: int = C, num_frames: int = T, patch_size: int = P, frame_order: bool = True,
           dropout: float = 0.2, focus_frames: int | None = None) -> A.AdaFocusV2:
    model = A.AdaFocusV2(NAME, "mn2", num_classes, num_frames, patch_size, hidden_dim=128, dropout=dropout,
                         frame_order=frame_order, classifier_dim=256)
    for i in range(1, 5):
        setattr(model.local_CNN, f"layer{i}", getattr(model.local_CNN, f"layer{i}")[:1])
    return model


class RegionGratings(Dataset):
    """Clip ``i``: label ``i mod C``; noise everywhere, the class grating only inside the ``region`` corner."""

    def __init__(self, n: int, region: str, seed: int):
        self.n, self.region, self.seed = n, region, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.seed * 100003 + i)
        k = i % C
        theta = k * math.pi / C
        y, x = torch.meshgrid(torch.arange(Q, dtype=torch.float32), torch.arange(Q, dtype=torch.float32),
                              indexing="ij")
        clip = 0.5 * torch.randn(T, 3, H, H, generator=g)
        r0 = 0 if self.region == "tl" else H - Q
        for t in range(T):
            phase = float(torch.rand((), generator=g)) * 2 * math.pi
            wave = 1.5 * torch.sin(2 * math.pi * (x * math.cos(theta) + y * math.sin(theta)) / 12.0 + phase)
            clip[t, :, r0:r0 + Q, r0:r0 + Q] += wave
        return clip, k


@torch.no_grad()
def where_it_looks(model: A.AdaFocusV2, data: Dataset, region: str) -> dict:
    model.eval()
    locs, hits, correct = [], 0, 0
    for i in range(0, len(data), 8):
        clips, labels = zip(*(data[j] for j in range(i, min(i + 8, len(data)))))
        out = model(torch.stack(clips))
        a = out.locations.reshape(-1, 2)
        locs.append(a)
        top = a * (H - P)                                     # patch top-left corner in pixels (§2.3)
        r0 = 0 if region == "tl" else H - Q
        inside = ((top >= r0) & (top + P <= r0 + Q)).all(dim=1)
        hits += int(inside.sum())
        correct += int((out.logits.argmax(1) == torch.tensor(labels)).sum())
    a = torch.cat(locs)
    return {"mean_row": float(a[:, 0].mean()), "mean_col": float(a[:, 1].mean()), "std_row": float(a[:, 0].std()),
            "std_col": float(a[:, 1].std()), "inside_fraction": hits / a.shape[0], "top1": 100.0 * correct / len(data)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--region", choices=("tl", "br"), default="tl")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/cpu/adafocus_region.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = RegionGratings(args.steps * args.batch_size, args.region, args.seed)
    val = RegionGratings(args.val, args.region, args.seed + 1)
    with registered(NAME, narrow, A.HOOKS, default_frames=T, bench=BenchDefaults(False, (T,), "region")):
        model = narrow()
        before = where_it_looks(model, val, args.region)
        cfg = TrainConfig(epochs=1, batch_size=args.batch_size, lr=args.lr, lr_steps=(), weight_decay=1e-4,
                          clip_grad=None, seed=args.seed)
        tr = Trainer(model, train, cfg, device="cpu", log=None)
        tr.step_log = []
        t0 = time.perf_counter()
        tr.fit()
        seconds = time.perf_counter() - t0
        after = where_it_looks(model, val, args.region)
    losses = [s["loss"] for s in tr.step_log]
    k = max(1, len(losses) // 10)
    rec = {"region": args.region, "steps": len(losses), "batch_size": args.batch_size, "lr": args.lr,
           "seed": args.seed, "T": T, "P": P, "classes": C, "val_clips": args.val,
           "loss_first_10pct": sum(losses[:k]) / k, "loss_last_10pct": sum(losses[-k:]) / k,
           "before": before, "after": after, "train_seconds": round(seconds, 1),
           "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
                      f"{args.threads} thread(s), load {os.getloadavg()[0]:.1f}",
           "command": "python benchmarks/train_adafocus_region.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(json.dumps(rec, indent=1))
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        runs = []
        if os.path.exists(args.out):
            with open(args.out) as f:
                runs = json.load(f).get("runs", [])
        runs = [r for r in runs if (r["region"], r["seed"]) != (args.region, args.seed)] + [rec]
        with open(args.out, "w") as f:
            json.dump({"experiment": "AdaFocusV2 policy location on a one-corner synthetic task", "runs": runs},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
