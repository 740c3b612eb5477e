"""Diagnostics behind the Move4MNIST experiment's recipe (benchmarks/results/cpu/move4mnist_diagnosis.md): a plain
training loop of ``FullVideoTSM`` (ResNet-18 layout, stage widths w, 2w, 4w, 8w) on pre-rendered Move4MNIST-style
videos, one thread, SGD momentum 0.9 + gradient clipping 20 (or Adam), reporting training loss / top-1 per epoch and
validation top-1 (segment centres, every kind of frame) every third epoch.

    --n 64 --w 64 --lr 0.005                # can it overfit 64 videos? (pipeline, labels, BN, normalisation)
    --n 1200 --val 300 --w 16 --lr 0.01     # uniform TSN sampling of 8 of 32 frames, as in training
    ... --info 1                            # the same, frames drawn from the informative ones only

Rendered videos are cached in --cache (uint8 .npy).
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
from afnet_edge.data.move4mnist import Move4MNISTDataset
from afnet_edge.models.fullvideo import FullVideoTSM, BasicBlock
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=64); p.add_argument("--frames", type=int, default=8)
p.add_argument("--k", type=int, default=8); p.add_argument("--size", type=int, default=32)
p.add_argument("--w", type=int, default=64); p.add_argument("--lr", type=float, default=0.02)
p.add_argument("--epochs", type=int, default=30); p.add_argument("--bs", type=int, default=16)
p.add_argument("--opt", default="sgd"); p.add_argument("--dropout", type=float, default=0.0)
p.add_argument("--val", type=int, default=0); p.add_argument("--save", default=""); p.add_argument("--info", type=int, default=0); p.add_argument("--wd", type=float, default=5e-4)
p.add_argument("--cache", default="build/move4mnist_diag")
a = p.parse_args()
torch.manual_seed(0)
ds = Move4MNISTDataset(a.n, a.frames, a.size, 0, "train", random_sampling=a.frames < 32)
t0 = time.time()
os.makedirs(a.cache, exist_ok=True)
fn = f"{a.cache}/G_{a.n}_{a.size}.npy"
if os.path.exists(fn): G = torch.from_numpy(np.load(fn))
else:
    G = torch.from_numpy(np.stack([ds.render(i).frames for i in range(a.n)])); np.save(fn, G.numpy())
Y = torch.tensor([ds.label_of(i) for i in range(a.n)])
if a.info:
    fk = f"{a.cache}/K_{a.n}_{a.size}.npy"
    if os.path.exists(fk): KIND = np.load(fk)
    else: KIND = np.stack([ds.render(i).kind for i in range(a.n)]); np.save(fk, KIND)
print("data", G.shape, round(time.time()-t0,1), "s", flush=True)
from afnet_edge.video import MEAN, STD
def norm(g):
    x = g.float().div(255.).unsqueeze(2).expand(-1, -1, 3, -1, -1)
    return (x - torch.tensor(MEAN).view(1,1,3,1,1)) / torch.tensor(STD).view(1,1,3,1,1)
def sample(idx):
    if a.frames == 32: return norm(G[idx])
    rng = np.random.default_rng()
    if a.info:
        fi = np.stack([np.sort(rng.choice(np.flatnonzero(KIND[i] == 0), a.frames, replace=True)) for i in idx.tolist()])
        return norm(G[idx][torch.arange(len(idx))[:, None], torch.from_numpy(fi)])
    fi = np.stack([ds.frame_indices(0, rng) for _ in idx])
    return norm(G[idx][torch.arange(len(idx))[:, None], torch.from_numpy(fi)])
if a.val:
    vs = Move4MNISTDataset(a.val, a.frames, a.size, 1, "val")
    fv = f"{a.cache}/V_{a.val}_{a.size}_{a.frames}.pt"
    XV = torch.load(fv) if os.path.exists(fv) else torch.stack([vs[i][0] for i in range(a.val)])
    torch.save(XV, fv)
    YV = torch.tensor([vs[i][1] for i in range(a.val)])
w = a.w
m = FullVideoTSM("r18", BasicBlock, (2,2,2,2), 4, a.frames, a.k, "slope", 1024, a.dropout, "none", False, w / 64)
params = m.parameters()
opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=a.wd) if a.opt == "sgd" else torch.optim.Adam(params, lr=a.lr)
for ep in range(a.epochs):
    m.train(); perm = torch.randperm(a.n); correct = 0; tl = 0; t0 = time.time()
    for i in range(0, a.n, a.bs):
        idx = perm[i:i+a.bs]
        out = m(sample(idx)).logits
        loss = nn.functional.cross_entropy(out, Y[idx])
        opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 20); opt.step()
        correct += (out.argmax(1) == Y[idx]).sum().item(); tl += loss.item() * len(idx)
    msg = f"ep {ep} loss {tl/a.n:.3f} train_acc {100*correct/a.n:.1f} {time.time()-t0:.1f}s"
    if a.val and (ep % 3 == 2 or ep == a.epochs-1):
        m.eval()
        with torch.no_grad(): pv = torch.cat([m(XV[j:j+32]).logits for j in range(0, a.val, 32)]).argmax(1)
        msg += f" val {100*(pv==YV).float().mean():.1f}"
    print(msg, flush=True)
    if a.save: torch.save(m.state_dict(), a.save)
