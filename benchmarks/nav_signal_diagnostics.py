"""Where does the navigation's learning signal go? Two measurements on a saved trial network (issue 11).

Run on a state dict written by ``benchmarks/nav_selection_trials.py --save`` (AF-ResNet50 width 0.25, T = 8, 64 px)::

    python benchmarks/nav_selection_trials.py --warm 7 --warm-p 1.0 --mask-mode frame --nav 0 --save r1.pt
    python benchmarks/nav_signal_diagnostics.py r1.pt

1. **Can the navigation see distractors?** Every navigation module reads its stage's ample tensor; its spatial mean
   (what the module's ``conv_pool`` sees) is recorded for 400 training clips (seed 100) and the 240 held-out clips
   (seed 999), and two supervised probes are fitted to say "distractor or not" per frame: a linear one on all channels
   and one with the navigation's own shape (C → 2 → BatchNorm → ReLU → 1). Probe accuracy on the held-out frames
   against the majority rate: if it is high, the module *can* separate the frames; the labels are used only here.
2. **Does the loss reward keeping informative frames?** For random selections at ratio 1, 0.5 and 0.25 (one Bernoulli
   mask per module, as the trained navigation would draw), the loss increase when frame t is skipped in every module
   instead of kept in every module, averaged separately over informative and distractor frames of 120 held-out clips.
   This is the per-frame signal an unbiased estimator of the selection gradient would see.
3. **What the straight-through gradient sees instead.** The derivative of the loss w.r.t. each module's mask at
   every frame, with every frame selected (what the official estimator passes to module ``l``'s logits at ratio 1),
   averaged separately over informative and distractor frames of the 240 held-out clips.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afnet_edge import create_model  # noqa: E402
from afnet_edge.data import SyntheticVideoDataset  # noqa: E402
from afnet_edge.layers.navigation import Navigation, set_navigation_gap  # noqa: E402
from afnet_edge.video import normalize_frames  # noqa: E402
from train_synthetic import CachedClips  # noqa: E402

T = 8
p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("state_dict", help="a state dict saved by nav_selection_trials.py --save")
p.add_argument("--dp", type=float, default=0.4, help="distractor probability of the clips (the trials' 0.4)")
a = p.parse_args()
torch.set_num_threads(1)
kw = dict(num_frames=T, size=64, num_classes=6, distractor_prob=a.dp)
m = create_model("af_resnet50", num_classes=6, num_frames=T, width=0.25)
set_navigation_gap(m, 3)
m.load_state_dict(torch.load(a.state_dict))
m.configure(execution="masked", selection="threshold")
m.eval()
navs = [q for q in m.modules() if isinstance(q, Navigation)]
L = len(navs)


def clips(ds, idx):
    return torch.stack([normalize_frames(ds.frames[j]) for j in idx]), torch.from_numpy(ds.labels[idx])


def pooled_inputs(ds):
    store = [[] for _ in navs]
    hooks = [nv.register_forward_hook(lambda mod, inp, out, k=k: store[k].append(inp[0].mean((2, 3))))
             for k, nv in enumerate(navs)]
    with torch.no_grad():
        for i in range(0, len(ds), 40):
            m(clips(ds, np.arange(i, min(i + 40, len(ds))))[0])
    for h in hooks:
        h.remove()
    return [torch.cat(s) for s in store], torch.from_numpy(ds.distractor.reshape(-1)).float()


def probe(ftr, ytr, fva, yva, bottleneck):
    torch.manual_seed(0)
    c = ftr.shape[1]
    net = (nn.Sequential(nn.Linear(c, 2, bias=False), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 1)) if bottleneck
           else nn.Linear(c, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    for _ in range(300):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(net((ftr - mu) / sd).squeeze(1), ytr).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return 100 * float(((net((fva - mu) / sd).squeeze(1) > 0).float() == yva).float().mean())


tr = CachedClips(SyntheticVideoDataset(400, seed=100, **kw))
va = CachedClips(SyntheticVideoDataset(240, seed=999, **kw))
(ftr, ytr), (fva, yva) = pooled_inputs(tr), pooled_inputs(va)
print(f"1. distractor-vs-informative probes on the navigation inputs (held-out frames; majority "
      f"{100 * max(float(yva.mean()), 1 - float(yva.mean())):.1f} %)")
for k in range(L):
    print(f"   module {k} (C={ftr[k].shape[1]}): linear {probe(ftr[k], ytr, fva[k], yva, False):.1f} %, "
          f"navigation-shaped (C→2→BN→ReLU→1) {probe(ftr[k], ytr, fva[k], yva, True):.1f} %", flush=True)

print("2. loss increase when frame t is skipped in every module instead of kept, at random selections")
g = torch.Generator().manual_seed(0)
for ratio in (1.0, 0.5, 0.25):
    inf, dis = [], []
    for i in range(0, 120, 20):
        idx = np.arange(i, i + 20)
        x, y = clips(va, idx)
        d_mask = torch.from_numpy(va.distractor[idx])
        base = [(torch.rand(len(idx), T, generator=g) < ratio).float() for _ in range(L)]
        with torch.no_grad():
            for t in range(T):
                pos = torch.tensor([t])
                on = F.cross_entropy(m(x, masks=[b.index_fill(1, pos, 1.0) for b in base]).logits, y, reduction="none")
                off = F.cross_entropy(m(x, masks=[b.index_fill(1, pos, 0.0) for b in base]).logits, y, reduction="none")
                inf.append((off - on)[~d_mask[:, t]])
                dis.append((off - on)[d_mask[:, t]])
    u, v = torch.cat(inf), torch.cat(dis)
    print(f"   ratio {ratio}: informative {float(u.mean()):+.3f} (sd {float(u.std()):.3f}, n {u.numel()}), "
          f"distractor {float(v.mean()):+.3f} (sd {float(v.std()):.3f}, n {v.numel()})", flush=True)

print("3. straight-through signal: d loss / d mask of each module at every frame, every frame selected")
grads = [([], []) for _ in range(L)]
for i in range(0, len(va), 40):
    idx = np.arange(i, min(i + 40, len(va)))
    x, y = clips(va, idx)
    d_mask = torch.from_numpy(va.distractor[idx])
    masks = [torch.ones(len(idx), T, requires_grad=True) for _ in range(L)]
    F.cross_entropy(m(x, masks=masks).logits, y, reduction="sum").backward()
    for k, mk in enumerate(masks):
        grads[k][0].append(mk.grad[~d_mask])
        grads[k][1].append(mk.grad[d_mask])
for k, (gi, gd) in enumerate(grads):
    u, v = torch.cat(gi), torch.cat(gd)
    print(f"   module {k}: informative {float(u.mean()):+.4f} (sd {float(u.std()):.4f}), "
          f"distractor {float(v.mean()):+.4f} (sd {float(v.std()):.4f})", flush=True)
