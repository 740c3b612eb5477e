"""``afnet-edge bench --cross-family``: every model family at its published operating point, measured in one run on
one machine, each family's **official-style execution** next to its **fused / fast** one.

Models and operating points come from the registry (:class:`afnet_edge.models.registry.OperatingPoint` in each
model's :class:`~afnet_edge.models.registry.BenchDefaults`). Executions per family (:func:`executions`):

* AFNet (``afnet``): official = masked execution (every focal body on every frame, masks multiplied in, PyTorch ops);
  fused = compact execution, plan ``fused``, the compiled extension's kernels where built (else the PyTorch ops).
  Both with ``topk`` selection at the operating point's ratio, so they compute the same function.
* AdaFocus (``adafocus``): official = the release's crop (θ made on the host and copied, ``affine_grid`` +
  ``grid_sample``: :func:`afnet_edge.kernels.adafocus_ops.release_crop`); fused = the ``focus_crop`` kernel.
* bLVNet-TAM (``blvnet``): official = the release's op sequence (``execution="masked"``: pair duplication, per-tap
  TAM, index selects); fused = the pair-aware layout with the fused TAM-pair / merge ops (``execution="compact"``).
* Full-video clustering (``fullvideo``): official = the release's host round trip (:func:`release_cluster_forward`:
  layer1 output copied to the host in fp32, NumPy sign + normalised Hamming per video in a Python loop, the rule in
  Python, per-segment slices and means on the device); fused = on-device clustering (bits, Hamming, boundaries,
  segment means: the extension's kernels where built), no host synchronisation.
* dense baselines (``dense``): one execution.

Per execution: p50 latency of one clip at batch 1, clips/s at the throughput batch (p50 of a batch), the official
GFLOPs and executed GMACs (:func:`afnet_edge.flops.count_flops`), the activation traffic of one clip (elements read +
written by every kernel, weights excluded, counted op by op with a dispatch mode: :func:`count_traffic`) and the
peak of live activation bytes; and the largest logit difference to the official execution on the same clip.
Timing: warm-up, then the executions of one model and batch **interleaved** round by round (load drift on a shared
machine hits them alike). Machine, threads and the load average before/after every model are recorded.
"""
from __future__ import annotations

import datetime
import os
import shlex
import sys
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..flops import count_flops
from ..models import create_model, model_entry
from .environment import collect_environment
from .memory import MIB, live_tensor_peak
from .projection import _GATHER, _NO_KERNEL, _WRITE_ONLY
from .runners import randomize_weights
from .timing import time_callable, timing_stats

__all__ = ["SCHEMA", "CROSS_FAMILY", "executions", "release_cluster_forward", "release_segments", "count_traffic",
           "run_cross_family", "format_markdown", "table_block", "validate_cross_family"]

SCHEMA = "afnet_edge.crossfamily/1"
CROSS_FAMILY = ("af_resnet50", "adafocus_v2_mn2", "tsm_resnet50", "blvnet_tam_r50", "fullvideo_tsm_r50")
PROVISIONAL_LOAD = 1.5          # 1-minute load average above which the numbers are marked provisional


# --------------------------------------------------------------------------------- full-video: the release's path
def release_segments(d: list, h: list, k: int, rule: str) -> list:
    """K inclusive ``(first, last)`` frame pairs of one video as the release's Python code picks them (spec §4), padded
    by repeating the last emitted segment. ``d``: normalised Hamming distances (float), ``h``: the same as integer
    counts (the repaired ``cumulative`` rule compares integers, §4.2)."""
    n = len(d) + 1

    def pad(segs):
        return segs + [segs[-1]] * (k - len(segs))

    if n < k:
        return pad([(t, t) for t in range(n)])
    if rule == "slope":
        order = sorted(range(n - 1), key=lambda t: d[t])                # stable: the later position wins ties
        cuts = sorted(order[len(order) - (k - 1):]) if k > 1 else []
        segs, s = [], 0
        for p in cuts:
            segs.append((s, p))
            s = p + 1
        return segs + [(s, n - 1)]
    if rule == "cumulative_official":
        run = [0.0]
        for x in d:
            run.append(run[-1] + x)
        if run[-1] == 0:
            return [(t, t) for t in range(k)]                             # first K frames, unaveraged
        theta, c, start, segs = run[-1] / k, 1, 0, []
        for f in range(1, n):
            if run[f] > c * theta:
                segs.append((start, f - 1))
                c += 1
                start = f
        return pad(segs)                                                  # the open segment is dropped
    if rule == "cumulative":
        total = sum(h)
        if total == 0:                                                    # even segments (§4.4)
            q, r = divmod(n, k)
            segs, s = [], 0
            for j in range(k):
                size = q + (1 if j < r else 0)
                segs.append((s, s + size - 1))
                s += size
            return segs
        c, start, segs, acc = 1, 0, [], 0
        for f in range(1, n):
            acc += h[f - 1]
            if k * acc > c * total:
                segs.append((start, f - 1))
                c += 1
                start = f
        return pad(segs + [(start, n - 1)])
    raise ValueError(f"rule must be slope, cumulative or cumulative_official, got {rule!r}")


@torch.no_grad()
def release_cluster_forward(model, video: torch.Tensor) -> torch.Tensor:
    """Logits of a full-video model with the clustering run as the release runs it (spec §4.6, §11.1): the layer1
    output of every video copied to the host as fp32, ``np.sign`` bits and normalised Hamming distances per video in a
    Python loop, the rule in Python, then per-segment slices and means on the device, concatenated. ``video``
    ``(B, N, 3, H, W)``; the model's ``rule`` (``degenerate="none"`` only)."""
    if model.degenerate != "none":
        raise ValueError("release_cluster_forward: the release has no degenerate='even' option")
    frames, offs = model.prepare(video)
    b = offs.shape[0] - 1
    feats = model.base_model.per_frame(frames)
    n = feats.shape[0] // b
    host = feats.float().cpu().numpy().reshape(b, n, -1)                 # device -> host, fp32 (and a sync)
    means = []
    for v in range(b):
        bits = np.sign(host[v])
        mism = [bits[t] != bits[t + 1] for t in range(n - 1)]
        d = [float(m.mean()) for m in mism]
        h = [int(m.sum()) for m in mism]
        for first, last in release_segments(d, h, model.clusters, model.rule):
            means.append(feats[v * n + first: v * n + last + 1].mean(0))
    return model.head(torch.stack(means), b)


def release_cluster_means(model, feats: torch.Tensor, b: int) -> torch.Tensor:
    """The release's clustering step alone (layer1 outputs ``(B·N, C, h, w)`` of B equal-length videos → cluster means
    ``(B·K, C, h, w)``): host copy, NumPy bits and distances, Python rule, per-segment slices (see
    :func:`release_cluster_forward`)."""
    n = feats.shape[0] // b
    host = feats.float().cpu().numpy().reshape(b, n, -1)
    means = []
    for v in range(b):
        bits = np.sign(host[v])
        mism = [bits[t] != bits[t + 1] for t in range(n - 1)]
        for first, last in release_segments([float(m.mean()) for m in mism], [int(m.sum()) for m in mism],
                                            model.clusters, model.rule):
            means.append(feats[v * n + first: v * n + last + 1].mean(0))
    return torch.stack(means)


def naive_cluster_means(model, feats: torch.Tensor, b: int) -> torch.Tensor:
    """The clustering step written with plain tensor ops on the device (spec §11.1 item 2): byte-per-element booleans
    ``(a > 0)``, ``!=`` and ``sum`` for the Hamming counts, the device rule for the cuts, then a loop of K slices and
    means per video (one host read of the cut positions)."""
    from ..kernels.fullvideo_reference import segment_boundaries
    n = feats.shape[0] // b
    pos = (feats > 0).reshape(b * n, -1)
    h = (pos[1:] != pos[:-1]).sum(-1).to(torch.int32)        # (B·N − 1,): pairs across videos ignored by offsets
    offs = torch.arange(b + 1, device=feats.device) * n
    bounds, m = segment_boundaries(h, model.clusters, model.rule, offs,
                                   num_bits=feats[0].numel(), degenerate=model.degenerate)
    cuts, counts = bounds.tolist(), m.tolist()
    means = []
    for v in range(b):
        segs = [(cuts[v][j], cuts[v][j + 1]) for j in range(counts[v])]
        segs += [segs[-1]] * (model.clusters - len(segs))
        means += [feats[v * n + f: v * n + e].mean(0) for f, e in segs]
    return torch.stack(means)


@torch.no_grad()
def clustering_stage(model, clip: torch.Tensor, warmup: int, repeats: int, cuda: bool) -> dict:
    """Time the clustering step alone (layer1 outputs → cluster means) three ways on the same features: this
    package's on-device ops (:meth:`FullVideoTSM.cluster`), the release's host round trip, naive boolean tensor ops.
    Checks that the three give the same means."""
    frames, offs = model.prepare(clip)
    b = offs.shape[0] - 1
    feats = model.base_model.per_frame(frames)
    ways = {"fused (on device)": lambda: model.cluster(feats, offs)[0],
            "release host round trip": lambda: release_cluster_means(model, feats, b),
            "naive bool ops": lambda: naive_cluster_means(model, feats, b)}
    ref = ways["fused (on device)"]().float()
    out: dict = {"frames": int(feats.shape[0] // b), "clusters": model.clusters, "rule": model.rule,
                 "layer1_bytes_per_video": float(feats[0].numel() * feats.element_size() * feats.shape[0] // b)}
    for k, fn in ways.items():
        d, _ = time_callable(fn, warmup, repeats, cuda)
        z = fn().float()
        out[k] = {"p50_ms": timing_stats(d)["p50"], "max_abs_diff_vs_fused": float((z - ref).abs().max())}
    return out


# ------------------------------------------------------------------------------------------------- executions
def _ext_ready(device: torch.device) -> bool:
    from .runners import ext_skip_reason
    return ext_skip_reason(device) is None


def executions(name: str, model: nn.Module, ratio: float | None, device: torch.device) -> list[tuple]:
    """``[(execution, description, fn)]`` of model ``name``: ``fn(clip) -> logits``; the first is the official-style
    execution (or the only one of a dense baseline). Each ``fn`` sets the model's configuration it needs."""
    family = model_entry(name).hooks.family
    ext = _ext_ready(device)
    kern = "ext" if ext else "torch"
    kern_note = "extension kernels" if ext else "PyTorch ops (extension not built here)"
    if family == "afnet":
        r = 1.0 if ratio is None else ratio

        def official(x):
            model.configure(execution="masked", selection="topk", ratio=r, kernels="torch")
            return model(x).logits

        def fused(x):
            model.configure(execution="compact", selection="topk", ratio=r, kernels=kern, plan="fused")
            return model(x).logits
        return [("official", "masked: every focal body on every frame (the release's execution), topk", official),
                ("fused", f"compact, plan fused, {kern_note}, topk", fused)]
    if family == "adafocus":
        from ..kernels.adafocus_ops import official_crop

        def official(x):
            with official_crop():
                return model(x).logits

        def fused(x):
            model.configure(kernels="auto")
            return model(x).logits
        return [("official", "the release's crop: θ made on the host and copied, affine_grid + grid_sample", official),
                ("fused", f"focus_crop kernel ({kern_note})", fused)]
    if family == "blvnet":
        def official(x):
            model.configure(execution="masked", kernels="torch")
            return model(x).logits

        def fused(x):
            model.configure(execution="compact", kernels="auto")
            return model(x).logits
        return [("official", "the release's op sequence: pair duplication, per-tap TAM, branch index selects",
                 official),
                ("fused", f"pair-aware layout, fused TAM-pair and merge ops ({kern_note})", fused)]
    if family == "fullvideo":
        def official(x):
            return release_cluster_forward(model, x)

        def fused(x):
            return model(x).logits
        return [("official", "the release's host round trip: layer1 output to the host (fp32), NumPy Hamming and "
                             "rule per video, per-segment slices", official),
                ("fused", f"on-device clustering, no host sync ({kern_note})", fused)]
    return [("dense", "every frame through the network", lambda x: model(x).logits)]


# ---------------------------------------------------------------------------------------------- traffic counter
class _Traffic(TorchDispatchMode):
    def __init__(self, weights: set):
        super().__init__()
        self.weights = weights
        self.kernels = 0
        self.read = self.written = self.weight_read = 0.0
        self.float_elems = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        if getattr(func, "is_view", False) or name in _NO_KERNEL:
            return out
        ins = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        nb = lambda t: float(t.numel() * t.element_size())  # noqa: E731
        written = sum(nb(o) for o in outs)
        w = [a for a in ins if id(a) in self.weights]
        acts = [a for a in ins if id(a) not in self.weights]
        if name in _WRITE_ONLY:
            read = 0.0
        elif name in _GATHER:
            read = written + sum(nb(a) for a in acts if not a.is_floating_point())
        else:
            read = sum(nb(a) for a in acts)
        self.kernels += 1
        self.read += read
        self.written += written
        self.weight_read += sum(nb(a) for a in w)
        fl = [o for o in outs if o.is_floating_point()] + ([] if name in _GATHER else
                                                           [a for a in acts if a.is_floating_point()])
        self.float_elems += float(sum(t.numel() for t in fl))
        return out


def count_traffic(fn: Callable, x: torch.Tensor, model: nn.Module) -> dict:
    """Activation traffic of ``fn(x)``: every ATen (or extension) op is one kernel that reads its tensor inputs and
    writes its outputs (views and allocations excluded; gathers read what they write plus the index); weights and
    buffers of ``model`` are counted apart. Returns bytes read / written (as run), the float elements moved (×2 = the
    fp16 bytes, the unit of the specs' traffic tables), weight bytes read and the number of kernels."""
    weights = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
    mode = _Traffic(weights)
    with torch.no_grad(), mode:
        fn(x)
    return {"kernels": mode.kernels, "activation_bytes_read": mode.read, "activation_bytes_written": mode.written,
            "activation_bytes": mode.read + mode.written, "float_elements_moved": mode.float_elems,
            "fp16_equivalent_bytes": 2.0 * mode.float_elems, "weight_bytes_read": mode.weight_read,
            "method": "dispatch-mode count of one forward: every kernel reads its tensor inputs and writes its "
                      "outputs; views/allocations not counted; weights and buffers apart; host<->device copies count"}


# ------------------------------------------------------------------------------------------------------- run
def _load() -> list | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _load1() -> float | None:
    la = _load()
    return la[0] if la else None


def _point(name: str, frames: dict | None, options: dict | None) -> tuple[int, float | None, dict, str]:
    op = model_entry(name).bench.operating_point
    if op is None:
        raise ValueError(f"--models: {name} has no published operating point (BenchDefaults.operating_point); "
                         f"models with one: {', '.join(CROSS_FAMILY)}")
    opts = dict(op.options)
    opts.update((options or {}).get(name, {}))
    return int((frames or {}).get(name, op.frames)), op.ratio, opts, op.source


def _input_size(name: str, size: int) -> int:
    from ..models.adafocus import FRAME_SIZE
    return FRAME_SIZE if model_entry(name).hooks.family == "adafocus" else size


def run_cross_family(models=CROSS_FAMILY, batches=(1, 8), size: int = 224, device: str = "cpu",
                     warmup: int = 1, repeats: int = 5, throughput_repeats: int | None = None,
                     threads: int | None = None, seed: int = 0, frames: dict | None = None,
                     options: dict | None = None, traffic: bool = True, argv: list | None = None,
                     progress: bool = True) -> dict:
    """Measure the cross-family comparison; returns the results document (:data:`SCHEMA`).

    ``batches``: (latency batch, throughput batch); ``repeats`` timed runs at the latency batch,
    ``throughput_repeats`` (default ``repeats``) at the throughput batch. ``frames`` / ``options``: per-model
    overrides of the operating point (tests use tiny ones; the AdaFocus models always take 224² frames)."""
    dev = torch.device(device)
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(models, tuple(batches), size, dev, warmup, repeats, throughput_repeats or repeats, seed,
                    frames, options, traffic, argv, progress)
    finally:
        torch.set_num_threads(threads_before)


def _log(progress: bool, text: str) -> None:
    if progress:
        print(f"[cross-family] {text}", file=sys.stderr, flush=True)


def _run(models, batches, size, dev, warmup, repeats, t_repeats, seed, frames, options, traffic, argv,
         progress) -> dict:
    cuda = dev.type == "cuda"
    doc: dict = {
        "schema": SCHEMA, "kind": "measurement",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "afnet-edge bench " + " ".join(shlex.quote(a) for a in (argv or [])),
        "environment": collect_environment(str(dev)),
        "settings": {"batches": list(batches), "size": size, "warmup": warmup, "repeats": repeats,
                     "throughput_repeats": t_repeats, "precision": "fp32", "seed": seed,
                     "weights": "random (variance-preserving scales, random BN statistics)",
                     "timing": ("CUDA events around each run after a synchronisation" if cuda else
                                "time.perf_counter around each (synchronous) run") +
                               "; p50 = median; executions of one model and batch interleaved round by round",
                     "inputs": "random normal clips (B, T, 3, H, W)"},
        "load_average": {"before": _load()},
        "rows": [],
    }
    for name in models:
        T, ratio, opts, source = _point(name, frames, options)
        _log(progress, f"{name}: T={T} r={ratio} {opts}")
        model = create_model(name, num_frames=T, **opts)
        randomize_weights(model, seed)
        model = model.to(dev).eval()
        s = _input_size(name, size)
        execs = executions(name, model, ratio, dev)
        fl = count_flops(model, ratio=1.0 if ratio is None else ratio, image_size=s)
        family = model_entry(name).hooks.family
        rows = {e: {"model": name, "label": model_entry(name).bench.label, "family": family, "frames": T,
                    "ratio": ratio, "options": opts, "operating_point_source": source, "size": s,
                    "execution": e, "description": d, "status": "ok", "loadavg_1m_before": _load1()}
                for e, d, _ in execs}
        for e, _, _ in execs:
            executed = fl["executed_gmacs_masked"] if (family == "afnet" and e == "official") else \
                fl["executed_gmacs_compact"]
            rows[e]["flops"] = {"official_gflops": fl["official_gflops"], "executed_gmacs": executed}
        g = torch.Generator().manual_seed(seed + 101)
        for bi, b in enumerate(batches):
            xs = [torch.randn(b, T, 3, s, s, generator=g).to(dev) for _ in range(2)]
            live = []
            for e, _, fn in execs:
                try:
                    with torch.no_grad():
                        time_callable(lambda: fn(xs[0]), warmup, 0, cuda)
                    live.append((e, fn))
                except Exception as ex:  # a failing execution is a result too
                    rows[e].update(status="skipped", reason=f"{type(ex).__name__}: {str(ex).splitlines()[0]}"[:300])
            times: dict = {e: [] for e, _ in live}
            n = repeats if bi == 0 else t_repeats
            for i in range(n):
                order = live[i % len(live):] + live[:i % len(live)] if live else []
                for e, fn in order:
                    with torch.no_grad():
                        d, _ = time_callable(lambda: fn(xs[i % 2]), 0, 1, cuda)
                    times[e].extend(d)
            for e, _ in live:
                st = timing_stats(times[e])
                key = "latency_ms" if bi == 0 else "throughput_batch_ms"
                rows[e][key] = st
                rows[e]["batch" if bi == 0 else "throughput_batch"] = b
                if bi == 0:
                    rows[e]["latency_per_clip_ms"] = st["p50"] / b
                else:
                    rows[e]["throughput_clips_s"] = b / (st["p50"] * 1e-3)
            _log(progress, f"  b={b}: " + ", ".join(f"{e} p50 {timing_stats(times[e])['p50']:.1f} ms"
                                                    for e, _ in live))
            if bi == 0:  # checks, traffic and memory on the latency batch
                ref = None
                for e, fn in live:
                    with torch.no_grad():
                        out = fn(xs[0]).float().cpu()
                    if ref is None:
                        ref = out
                    diff = float((out - ref).abs().max())
                    rows[e]["check_max_abs_diff_vs_official"] = diff
                    rows[e]["check_max_rel_diff_vs_official"] = diff / max(float(ref.abs().max()), 1e-12)
                    if not bool(torch.isfinite(out).all()):
                        rows[e]["warning"] = "non-finite logits"
                    if traffic:
                        t = count_traffic(fn, xs[0], model)
                        rows[e]["traffic"] = {k: (v / b if isinstance(v, float) else v) for k, v in t.items()}
                        rows[e]["traffic"]["per"] = "clip" if b == 1 else f"clip (batch {b} divided by {b})"
                        with torch.no_grad():
                            rows[e]["peak_activation_mib"] = live_tensor_peak(lambda: fn(xs[0])) / MIB
                if family == "fullvideo":
                    try:
                        doc.setdefault("clustering_stage", {})[name] = clustering_stage(
                            model, xs[0], warmup, max(3, repeats), cuda)
                    except Exception as ex:
                        doc.setdefault("clustering_stage", {})[name] = {
                            "error": f"{type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}"[:300]}
        for e in rows:
            rows[e]["loadavg_1m_after"] = _load1()
        doc["rows"].extend(rows.values())
        del model
        if cuda:
            torch.cuda.empty_cache()
    if "adafocus_v2_mn2" in models or "adafocus_v2_rn" in models:
        doc["adafocus_cost_per_patch"] = _adafocus_costs([m for m in models if m.startswith("adafocus_v2")])
    doc["load_average"]["after"] = _load()
    la = [x for x in [(doc["load_average"]["before"] or [None])[0]] +
          [r.get("loadavg_1m_before") for r in doc["rows"]] + [r.get("loadavg_1m_after") for r in doc["rows"]]
          if x is not None]
    doc["load_average"]["max_1m_seen"] = max(la) if la else None
    doc["provisional"] = bool(dev.type == "cpu" and la and max(la) > PROVISIONAL_LOAD)
    return doc


def _adafocus_costs(names: list) -> list:
    """Official GFLOPs per clip of the V2 models at every released patch size (meta device; no timing)."""
    out = []
    for name in names:
        for p in (96, 128, 160):
            with torch.device("meta"):
                m = create_model(name, patch_size=p)
            out.append({"model": name, "patch_size": p, "frames": m.num_frames,
                        "official_gflops": count_flops(m, image_size=224)["official_gflops"]})
    return out


# ------------------------------------------------------------------------------------------------- checking
def validate_cross_family(doc: dict) -> list[str]:
    """Problems of a results document (empty when fine): fields present, numbers positive, fused = official."""
    probs = []
    if doc.get("schema") != SCHEMA:
        probs.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA}")
    for r in doc.get("rows", []):
        tag = f"{r.get('model')}/{r.get('execution')}"
        if r.get("status") != "ok":
            continue
        for k in ("latency_per_clip_ms", "throughput_clips_s"):
            if not (isinstance(r.get(k), (int, float)) and r[k] > 0):
                probs.append(f"{tag}: {k} missing or not positive")
        if not r.get("flops", {}).get("official_gflops", 0) > 0:
            probs.append(f"{tag}: official GFLOPs missing")
        rel = r.get("check_max_rel_diff_vs_official")
        if rel is not None and rel > 1e-3:
            probs.append(f"{tag}: logits differ from the official execution by {rel:.2e} (relative)")
    return probs


# --------------------------------------------------------------------------------------------------- report
def _f(v, fmt: str = ".1f") -> str:
    return "–" if v is None else format(v, fmt)


def table_block(doc: dict, path: str = "") -> str:
    """The markdown comparison table of a results document (docs/performance.md's crossfamily block)."""
    env, st = doc["environment"], doc["settings"]
    la = doc.get("load_average", {})
    b1, b8 = st["batches"][0], st["batches"][-1]
    cores = env.get("cpu_affinity") or env.get("cpu_count")
    where = env.get("device") if env.get("device_type") != "cpu" else \
        f"{env.get('cpu_model')}, {env.get('torch_threads')} thread(s) of {cores} cores"
    head = (f"Measured in one run on one machine: **{where}**, torch {env.get('torch')}, {st['precision']}, "
            f"{st['size']}² (AdaFocus: 224² frames), random weights; load average "
            f"{_f((la.get('before') or [None])[0])} at start, at most {_f(la.get('max_1m_seen'))} during the run"
            + (" — **PROVISIONAL** (the shared machine was loaded above "
               f"{PROVISIONAL_LOAD}; the ratios between interleaved rows are the reliable part)"
               if doc.get("provisional") else "")
            + f". {st['repeats']} timed runs at batch {b1}, {st['throughput_repeats']} at batch {b8}, p50. "
            f"`{doc['command']}`" + (f" · [{os.path.basename(path)}](/{path})" if path else ""))
    out = [head, "",
           f"| model | operating point | execution | latency/clip b={b1} (ms) | clips/s b={b8} | official GFLOPs | "
           f"executed GMACs | activation traffic/clip (GB, fp16 equiv.) | kernels/clip | peak activations (MiB) | "
           f"max rel. Δlogits vs official |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        opts = ", ".join(f"{k}={v}" for k, v in r.get("options", {}).items())
        point = f"T={r['frames']}" + (f", r={r['ratio']:g}" if r.get("ratio") is not None else "") + \
            (f", {opts}" if opts else "")
        if r.get("status") != "ok":
            out.append(f"| {r['label']} | {point} | {r['execution']} | skipped: {r.get('reason', '')} |"
                       + " |" * 7)
            continue
        tr = r.get("traffic") or {}
        fp16 = tr.get("fp16_equivalent_bytes")
        rel = r.get("check_max_rel_diff_vs_official")
        rel_txt = "–" if rel is None or r["execution"] in ("official", "dense") else f"{rel:.1e}"
        out.append(f"| {r['label']} | {point} | {r['execution']} | {_f(r.get('latency_per_clip_ms'))} | "
                   f"{_f(r.get('throughput_clips_s'), '.2f')} | {r['flops']['official_gflops']:.2f} | "
                   f"{r['flops']['executed_gmacs']:.2f} | {_f(None if fp16 is None else fp16 / 1e9, '.2f')} | "
                   f"{_f(tr.get('kernels'), 'd') if tr else '–'} | {_f(r.get('peak_activation_mib'), '.0f')} | "
                   f"{rel_txt} |")
    for name, c in (doc.get("clustering_stage") or {}).items():
        if "error" in c:
            out += ["", f"{name} clustering step: failed ({c['error']})."]
            continue
        ways = [k for k in c if isinstance(c[k], dict)]
        out += ["", f"{name} clustering step alone (layer1 outputs of N = {c['frames']} frames → K = {c['clusters']} "
                    f"means, rule {c['rule']}, {c['layer1_bytes_per_video'] / 1e6:.0f} MB of layer1 output per "
                    f"video), p50 at batch {b1}: " +
                "; ".join(f"{k} {c[k]['p50_ms']:.2f} ms" + ("" if k.startswith("fused") else
                                                            f" (max |Δ| {c[k]['max_abs_diff_vs_fused']:.1e})")
                          for k in ways) + "."]
    costs = doc.get("adafocus_cost_per_patch")
    if costs:
        out += ["", "AdaFocusV2 cost per clip at each released patch size P (official GFLOPs, `count_flops`): " +
                "; ".join(f"{c['model']} P={c['patch_size']}: {c['official_gflops']:.2f}" for c in costs) + "."]
    out += ["", "official = the release's execution (AFNet: masked; AdaFocusV2: affine_grid + grid_sample crop with "
                "a host-made θ; bLVNet-TAM: duplicated pairs and per-tap TAM; full-video: clustering on the host); "
                "fused = this package's fast path. Activation traffic: elements read + written by every kernel of "
                "one forward (weights excluded; NumPy work on the host not counted) × 2 bytes — the unit of the bLVNet-TAM "
                "spec's 2.49 GB per clip for the release's graph (§8.1, ATen ops intercepted the same way)."]
    return "\n".join(out) + "\n"


def format_markdown(doc: dict, path: str = "") -> str:
    """The results page (``cross_family.md``)."""
    return "# Cross-family comparison\n\n" + table_block(doc, path) + \
        "\nRows: " + "; ".join(f"**{r['label']} {r['execution']}**: {r['description']}" for r in doc["rows"]) + ".\n"
