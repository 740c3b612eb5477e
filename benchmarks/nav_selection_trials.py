"""Exploratory trials (issue 11): under which training does AFNet's navigation learn to skip distractor frames?

Single-seed trials on the demo model's setting (AF-ResNet50 width 0.25, T = 8, 64 px, the synthetic benchmark with 40 %
distractor frames, 800 training / 240 held-out clips), with a plain training loop instead of
:class:`afnet_edge.training.Trainer` so that each trial can change one thing:

* ``--tie``: keep the navigation's per-position parameters (``conv_gs``, one 2×2 map and bias per frame position)
  equal across positions after every step, so a selection can depend only on the frame's content;
* ``--alpha``: the ample branch's channel divisor (official 2; 8 makes the ample branch weaker, so the focal branch
  carries more of the information);
* ``--warm`` / ``--warm-p`` / ``--mask-mode``: first train with random selections (probability ``--warm-p``, one mask
  per frame for all modules or one per module) instead of the navigation;
* ``--freeze-from`` / ``--bb-mult``: from that epoch on, the non-navigation parameters learn at ``--bb-mult`` × lr
  (0: frozen weights; BatchNorm statistics still update in training mode unless ``--freeze-bn``);
* ``--shared-logits``: every navigation module uses the first module's select/skip logits (each still draws its own
  Gumbel noise), so the first module's parameters get the gradient of all ten masks;
* ``--estimator local``: the navigation is not trained through the straight-through Gumbel gradient but with a
  per-frame local-expectation estimator: for the sampled masks of a batch, every frame position t is evaluated twice
  more (no gradient, BatchNorm in eval mode), with frame t sent to the focal branch in every module and with it
  skipped in every module; the loss difference Δ_t (kept − skipped) is the gradient of the expected loss w.r.t. the
  frame's selection probability, applied to every module's p_select (exact for one decision per frame shared by the
  modules, a shared credit otherwise); the ratio term uses the expected ratio (mean p_select per module). The network
  itself trains on the sampled masks' loss only: the straight-through path into the navigation is cut, and so is the
  navigation loss's path into the network through the navigation's input.
  ``--content-scale`` weighs the Δ term, ``--cf-positions`` evaluates only that many random positions per step
  (Δ scaled by 8/k), ``--center`` subtracts each clip's mean Δ (only the order of the frames' values then matters:
  the ratio term alone sets how many frames are kept), ``--normalize`` divides Δ by its batch standard deviation;
  the network's and the navigation's gradients are clipped separately;
* ``--no-focal-shift``: the focal blocks run without the temporal shift (temporal modelling left to the ample
  branch), so a distractor position's focal block sees only its own frame;
* the usual knobs of the official objective (``--lam`` λ_rt, ``--nav-lr`` the navigation's lr multiplier (official
  10), ``--tau0``/``--tau1`` the temperature schedule, ``--rt-begin``/``--rt-end`` the target-ratio schedule).

Every epoch prints the held-out top-1 with threshold selection, the real ratio and the fraction of informative
(``kin``) and distractor (``kdi``) frames the navigation modules keep, and the accuracy of the same network with
given selections in every module: all frames, none, only the informative frames (an oracle), only the distractors.
The logs of the trials run so far and what they show are in ``benchmarks/results/cpu/nav_selection_trials/``.
"""
import argparse, json, math, os, sys, time
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afnet_edge import create_model
from afnet_edge.data import SyntheticVideoDataset
from afnet_edge.layers.navigation import set_navigation_gap, Navigation
from train_synthetic import CachedClips
from afnet_edge.video import normalize_frames

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--seed", type=int, default=0)
p.add_argument("--train", type=int, default=800)
p.add_argument("--val", type=int, default=240)
p.add_argument("--dp", type=float, default=0.4)
p.add_argument("--warm", type=int, default=4)
p.add_argument("--warm-p", type=float, default=0.5)
p.add_argument("--mask-mode", default="module")  # module | frame (same mask for all modules)
p.add_argument("--nav", type=int, default=4)
p.add_argument("--rt", type=float, default=0.25)
p.add_argument("--lam", type=float, default=4.0)
p.add_argument("--lr", type=float, default=0.02)
p.add_argument("--nav-lr", type=float, default=1.0)  # multiplier for navigation params
p.add_argument("--tau0", type=float, default=1.0)
p.add_argument("--tau1", type=float, default=1.0)
p.add_argument("--gap", type=float, default=3.0)
p.add_argument("--bs", type=int, default=8)
p.add_argument("--width", type=float, default=0.25)
p.add_argument("--size", type=int, default=64)
p.add_argument("--load", default="")
p.add_argument("--save", default="")
p.add_argument("--tie", action="store_true")
p.add_argument("--freeze-from", type=int, default=999)
p.add_argument("--freeze-bn", action="store_true")
p.add_argument("--shared-logits", action="store_true")
p.add_argument("--bb-mult", type=float, default=0.0)
p.add_argument("--rt-begin", type=int, default=3)
p.add_argument("--rt-end", type=int, default=5)
p.add_argument("--lr-step", type=int, default=8)
p.add_argument("--alpha", type=int, default=2)
p.add_argument("--estimator", default="st", choices=("st", "local"))
p.add_argument("--no-focal-shift", action="store_true")  # focal blocks without the temporal shift (ample keeps it)
p.add_argument("--content-scale", type=float, default=1.0)  # local estimator: weight of the Δ term
p.add_argument("--center", action="store_true")  # local estimator: subtract each clip's mean Δ over the positions
p.add_argument("--normalize", action="store_true")  # local estimator: divide Δ by its batch standard deviation
p.add_argument("--cf-positions", type=int, default=8)  # local estimator: positions evaluated per step (random)
a = p.parse_args()
from afnet_edge.models import afnet_resnet as _ar
_ar.AFModule.__init__.__defaults__ = (a.alpha, 2)
torch.set_num_threads(1)
torch.manual_seed(a.seed); np.random.seed(a.seed)
kw = dict(num_frames=8, size=a.size, num_classes=6, distractor_prob=a.dp)
tr = CachedClips(SyntheticVideoDataset(a.train, seed=100 + a.seed, **kw))
va = CachedClips(SyntheticVideoDataset(a.val, seed=999, **kw))
m = create_model("af_resnet50", num_classes=6, num_frames=8, width=a.width)
set_navigation_gap(m, a.gap)
if a.no_focal_shift:  # a distractor position's focal block then sees only its own frame
    from afnet_edge.layers.focal import FocalBlock
    for mod in m.modules():
        if isinstance(mod, FocalBlock):
            mod.shift = False
if a.load:
    m.load_state_dict(torch.load(a.load))
m.configure(execution="masked")
L = m.num_navigation
nav_params = [q for mod in m.modules() if isinstance(mod, Navigation) for q in mod.parameters()]
nav_ids = {id(q) for q in nav_params}
other = [q for q in m.parameters() if id(q) not in nav_ids]
def batches(n, bs, g):
    perm = torch.randperm(n, generator=g).tolist()
    for i in range(0, n - bs + 1, bs):
        yield perm[i:i + bs]
def get(ds, idx):
    return torch.stack([normalize_frames(ds.frames[j]) for j in idx]), torch.from_numpy(ds.labels[idx])
def evaluate(mode):
    m.eval(); hits = 0; kin = kdi = nin = ndi = 0.0; ratio = 0.0
    with torch.no_grad():
        for i in range(0, len(va), 40):
            idx = np.arange(i, min(i + 40, len(va)))
            x, y = get(va, idx)
            dis = torch.from_numpy(va.distractor[idx])
            if mode == "nav":
                m.configure(selection="threshold"); out = m(x)
                mk = torch.stack(out.masks).float().mean(0)
                kin += float(mk[~dis].sum()); kdi += float(mk[dis].sum()); nin += int((~dis).sum()); ndi += int(dis.sum())
                ratio += float(mk.sum())
            else:
                if mode == "inf": mk = (~dis).float()
                elif mode == "dis": mk = dis.float()
                else: mk = torch.full((len(idx), 8), {"ones": 1.0, "zeros": 0.0}[mode])
                out = m(x, masks=[mk for _ in range(L)])
            hits += int((out.logits.argmax(1) == y).sum())
    r = {"top1": 100 * hits / len(va)}
    if mode == "nav":
        r.update(ratio=ratio / (len(va) * 8), kin=kin / nin, kdi=kdi / ndi)
    return r
g = torch.Generator().manual_seed(a.seed)
t0 = time.time()
# phase 1: random masks
opt = torch.optim.SGD(m.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
for ep in range(a.warm):
    m.train(); tl = 0; n = 0
    for idx in batches(len(tr), a.bs, g):
        x, y = get(tr, np.array(idx))
        if a.mask_mode == "frame":
            base = (torch.rand(len(idx), 8, generator=g) < a.warm_p).float()
            masks = [base for _ in range(L)]
        else:
            masks = [(torch.rand(len(idx), 8, generator=g) < a.warm_p).float() for _ in range(L)]
        out = m(x, masks=masks)
        loss = F.cross_entropy(out.logits, y)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 20); opt.step()
        tl += float(loss.detach()); n += 1
    print(f"warm ep{ep} loss {tl/n:.3f} " + " ".join(f"{k} {evaluate(k)['top1']:.1f}" for k in ("ones", "zeros", "inf", "dis")) + f" [{time.time()-t0:.0f}s]", flush=True)
if a.save:
    torch.save(m.state_dict(), a.save)
# phase 2: navigation
groups = [{"params": nav_params, "lr": a.lr * a.nav_lr}]
groups.append({"params": other, "lr": a.lr})
opt = torch.optim.SGD(groups, momentum=0.9, weight_decay=5e-4)
ipe = len(tr) // a.bs; steps = a.nav * ipe; s = 0
navs = [mod for mod in m.modules() if isinstance(mod, Navigation)]
def tie():
    with torch.no_grad():
        for nv in navs:
            w = nv.conv_gs.weight.view(8, 2, 2); w.copy_(w.mean(0, keepdim=True).expand_as(w))
            b = nv.conv_gs.bias.view(8, 2); b.copy_(b.mean(0, keepdim=True).expand_as(b))
if a.tie: tie()
if a.shared_logits:  # every module uses the first module's logits (its own Gumbel noise still decides its mask)
    _cache = {}
    _first_forward = navs[0].forward
    def _first(x):
        _cache["logits"] = _first_forward(x)
        return _cache["logits"]
    navs[0].forward = _first
    for nv in navs[1:]:
        nv.forward = lambda x: _cache["logits"]
_nav_logits: list = []
if a.estimator == "local":  # record every module's logits (with gradient); the masks are drawn from detached logits
    for nv in navs:
        def _rec(x, _f=nv.forward):  # the navigation's loss does not reach the network through its input
            z = _f(x.detach()); _nav_logits.append(z); return z.detach()
        nv.forward = _rec
def local_step(x, y, rt):
    _nav_logits.clear()
    out = m(x)
    ce = F.cross_entropy(out.logits, y)
    sampled = [mk.detach() for mk in out.masks]
    b = len(y)
    with torch.no_grad():
        was = [mod.training for mod in m.modules()]
        m.eval()
        cf = []
        pos = torch.randperm(8, generator=g)[:a.cf_positions].sort().values.tolist()
        for t in pos:
            for v in (0.0, 1.0):
                cf.append([mk.clone().index_fill_(1, torch.tensor([t]), v) for mk in sampled])
        big = [torch.cat([c[l] for c in cf]) for l in range(L)]
        k = len(pos)
        lo = m(x.repeat(2 * k, 1, 1, 1, 1), masks=big).logits
        for mod, w in zip(m.modules(), was): mod.training = w
        cl = F.cross_entropy(lo, y.repeat(2 * k), reduction="none").view(k, 2, b)
        delta = torch.zeros(b, 8)
        delta[:, pos] = (cl[:, 1] - cl[:, 0]).t() * (8 / k)  # (B, T): loss with frame t kept minus skipped
        if a.center:  # only the order of the frames' values matters; the ratio term alone sets how many are kept
            delta[:, pos] -= delta[:, pos].mean(1, keepdim=True)
        if a.normalize:  # the scale of the loss differences changes as the network trains; keep the step size fixed
            delta[:, pos] /= delta[:, pos].std() + 1e-6
    ps = [F.softmax(z.float(), -1)[..., 1] for z in _nav_logits]
    navl = a.content_scale * sum((delta * pl).sum(1).mean() for pl in ps) / L
    rl = a.lam * torch.stack([(rt - pl.mean()) ** 2 for pl in ps]).mean()
    ratios = torch.stack([mk.float().mean() for mk in out.masks])
    return ce + navl + rl, ratios
def train_mode(ep):
    m.train()
    if a.freeze_bn and ep >= a.freeze_from:  # BatchNorm statistics of everything but the navigation stay fixed
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and not any(mod is q for nv in navs for q in nv.modules()):
                mod.eval()
for ep in range(a.nav):
    train_mode(ep); tl = tr_ = 0; n = 0
    if ep < a.rt_begin: rt = 1.0
    elif ep >= a.rt_end: rt = a.rt
    else: rt = 1 - (1 - a.rt) * (ep - a.rt_begin + 1) / (a.rt_end - a.rt_begin + 1)
    for k, gr in enumerate(opt.param_groups): gr["lr"] = gr.setdefault("base", gr["lr"]) * (0.1 if ep >= a.lr_step else 1.0) * (a.bb_mult if (k == 1 and ep >= a.freeze_from) else 1.0)
    if a.bb_mult == 0 and ep >= a.freeze_from:  # frozen weights: no gradient through them (saves time)
        for q in other: q.requires_grad_(False)
    for idx in batches(len(tr), a.bs, g):
        if a.estimator == "local" and s % 50 == 49:
            print(f"  step {s + 1} {evaluate('nav')}", flush=True); train_mode(ep)
        frac = min(1.0, s / max(1, int(steps * 0.9)))
        tau = a.tau0 * (a.tau1 / a.tau0) ** frac
        m.configure(temperature=tau, selection="gumbel")
        x, y = get(tr, np.array(idx))
        if a.estimator == "local":
            loss, ratios = local_step(x, y, rt)
        else:
            out = m(x)
            ratios = torch.stack([mk.float().mean() for mk in out.masks])
            lrt = a.lam * ((rt - ratios) ** 2).mean()
            loss = F.cross_entropy(out.logits, y) + lrt
        opt.zero_grad(); loss.backward()
        if a.estimator == "local":  # the navigation's gradient must not shrink the network's through a shared norm
            torch.nn.utils.clip_grad_norm_(other, 20); torch.nn.utils.clip_grad_norm_(nav_params, 20)
        else:
            torch.nn.utils.clip_grad_norm_(m.parameters(), 20)
        opt.step()
        if a.tie: tie()
        tl += float(loss.detach()); tr_ += float(ratios.mean()); n += 1; s += 1
    print(f"nav ep{ep} loss {tl/n:.3f} train ratio {tr_/n:.3f} rt {rt:.2f} tau {tau:.3f} eval {evaluate('nav')} oracle " + " ".join(f"{k} {evaluate(k)['top1']:.1f}" for k in ('ones', 'zeros', 'inf', 'dis')) + f" [{time.time()-t0:.0f}s]", flush=True)
print("FINAL", json.dumps({**vars(a), **evaluate("nav"), "ones": evaluate("ones")["top1"], "zeros": evaluate("zeros")["top1"]}))
