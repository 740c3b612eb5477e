"""``afnet-edge bench --profile``: where the time of a forward goes on the CPU, for the masked (official) execution,
the compact execution with the pure-PyTorch fused ops and the compact execution with the compiled extension's fused
ops (``afnet_edge._C``; left out, with the reason, where it is not built or has no CPU kernels).

The fused ops are timed through the ops seam: the forward runs inside ``use_ops(timed)``, where ``timed`` is a fused-ops
implementation that wraps each op of the chosen backend with a timer. The focal blocks' body, residual and
constant-map methods are timed by wrapping them on the block instances for the duration of one forward.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import os
import resource
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from ..kernels import OP_NAMES, ops, use_ops
from ..kernels.reference import topk_count
from ..layers.focal import FocalBlock
from .environment import collect_environment
from .grid import GridSpec
from .report import _fmt, _fmt_load
from .runners import build_model, ext_skip_reason


__all__ = ["profile_compact", "format_profile"]

OTHER = "other (stem, ample branch, navigation, shifts/masks, fusion block, layer4, head)"


class _Timed:
    """Accumulates wall time per category while installed (CPU: ops are synchronous, so wall time is op time)."""

    def __init__(self) -> None:
        self.acc: dict = {}
        self.calls: dict = {}

    def wrap(self, fn: Callable, cat: str) -> Callable:
        """``fn`` timed under ``cat`` (same signature and docstring: a wrapped op still satisfies the ops seam)."""
        @functools.wraps(fn)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.acc[cat] = self.acc.get(cat, 0.0) + (time.perf_counter() - t0) * 1e3
                self.calls[cat] = self.calls.get(cat, 0) + 1
        return timed

    def ops(self, backend: str) -> SimpleNamespace:
        """A fused-ops implementation: ``ops(backend)`` with every op timed under its own name."""
        base = ops(backend)
        return SimpleNamespace(name=base.name, **{n: self.wrap(getattr(base, n), n) for n in OP_NAMES})

    @contextlib.contextmanager
    def blocks(self, blocks: list) -> Iterator[None]:
        """Time the focal blocks' body, residual convolution and constant-map lookup (instance attributes that
        shadow the methods; removed on exit)."""
        try:
            for b in blocks:
                b.body = self.wrap(type(b).body.__get__(b), "focal body")
                b.residual = self.wrap(type(b).residual.__get__(b), "focal residual")
                b.constant_map = self.wrap(type(b).constant_map.__get__(b), "constant maps (cache lookup)")
            yield
        finally:
            for b in blocks:
                for n in ("body", "residual", "constant_map"):
                    b.__dict__.pop(n, None)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _key(label: str, ratio: float | None) -> str:
    return label if ratio is None else f"{label} r={ratio:g}"


def _configure(model, label: str, ratio: float | None) -> None:
    model.configure(execution="masked" if label == "masked" else "compact", selection="topk",
                    ratio=1.0 if ratio is None else ratio, kernels="ext" if label == "compact-ext" else "torch")


def profile_compact(model_name: str = "af_resnet50", frames: int = 12, size: int = 224, batch: int = 1,
                    ratios=(0.25, 0.5, 1.0), repeats: int = 5, seed: int = 0, top_ops: int = 12,
                    progress: bool = True) -> dict:
    """Where the time of the compact path goes on the CPU, with the PyTorch ops and with the extension's ops.

    Input: random clips ``(batch, frames, 3, size, size)``, random weights (``seed``), ``topk`` selection. For masked
    and, at each ratio, for ``compact-torch`` and ``compact-ext`` (the latter only where the extension has CPU
    kernels; otherwise ``skipped`` says why), interleaved over ``repeats`` rounds: end-to-end latency (min/median, ms),
    minor page faults per forward, a breakdown of the forward into focal bodies, focal residuals, gather, scatter,
    fusion pool, fusion blend, frame selection, constant-map lookups and the rest, and the largest logit difference
    against the masked model; the top aten ops by self CPU time (``torch.profiler``) of masked and of each compact
    backend at the first ratio; the first forwards at compact batch sizes not seen before; and the cost of the
    constant-map cache key. Returns the profile document (schema ``afnet_edge.bench.profile/1``).
    """
    model = build_model(model_name, frames, GridSpec(seed=seed))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, frames, 3, size, size, generator=g)
    labels = ["compact-torch"]
    skipped = {}
    ext_reason = ext_skip_reason(torch.device("cpu"))
    if ext_reason is None:
        labels.append("compact-ext")
    else:
        skipped["compact-ext"] = ext_reason
    configs = [("masked", None)] + [(label, r) for label in labels for r in ratios]
    results = {_key(*c): {"latency_ms": [], "faults": [], "components": []} for c in configs}
    timer = _Timed()
    blocks = [m for m in model.modules() if isinstance(m, FocalBlock)]

    refs = {}
    with torch.no_grad():
        for r in ratios:
            _configure(model, "masked", r)
            refs[r] = model(x).logits
    maxdiff: dict = {}
    for _ in tqdm(range(repeats), desc="profile", disable=not progress, file=sys.stderr):
        for label, r in configs:
            key = _key(label, r)
            _configure(model, label, r)
            timed_ops = timer.ops("ext" if label == "compact-ext" else "torch")
            with torch.no_grad(), use_ops(timed_ops), timer.blocks(blocks):
                out = model(x)  # warm (constant maps, allocator)
                timer.acc.clear()
                timer.calls.clear()
                f0 = _minor_faults()
                t0 = time.perf_counter()
                out = model(x)
                dt = (time.perf_counter() - t0) * 1e3
                f1 = _minor_faults()
            res = results[key]
            res["latency_ms"].append(dt)
            res["faults"].append(f1 - f0)
            comp = dict(timer.acc)
            comp[OTHER] = dt - sum(comp.values())
            res["components"].append(comp)
            if r is not None:
                maxdiff[key] = max(maxdiff.get(key, 0.0), float((out.logits - refs[r]).abs().max()))
    summary = {}
    for key, res in results.items():
        best = min(range(len(res["latency_ms"])), key=lambda i: res["latency_ms"][i])
        summary[key] = {"latency_min_ms": res["latency_ms"][best],
                        "latency_median_ms": statistics.median(res["latency_ms"]),
                        "minor_page_faults_median": statistics.median(res["faults"]),
                        "components_of_fastest_ms": res["components"][best],
                        "max_abs_logit_diff_vs_masked": maxdiff.get(key)}
    return {"schema": "afnet_edge.bench.profile/1", "kind": "measurement",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": collect_environment("cpu"),
            "config": {"model": model_name, "frames": frames, "size": size, "batch": batch, "ratios": list(ratios),
                       "repeats": repeats, "threads": torch.get_num_threads(), "selection": "topk",
                       "weights": f"random (seed {seed})"},
            "summary": summary, "skipped": skipped, "rounds": results,
            "top_ops": _top_ops(model, x, [("masked", None)] + [(label, ratios[0]) for label in labels], top_ops),
            "state_key_ms_per_forward": _state_key_ms(blocks), "focal_blocks": len(blocks),
            "new_compact_batch": _new_compact_batch(model, x, frames, ratios),
            "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _top_ops(model, x: torch.Tensor, configs: list, top: int) -> dict:
    """The ``top`` aten ops by self CPU time of one forward per configuration (after one warm forward)."""
    tops = {}
    for label, r in configs:
        _configure(model, label, r)
        with torch.no_grad():
            model(x)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                model(x)
        ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
        tot = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1.0
        tops[_key(label, r)] = [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3,
                                 "share": e.self_cpu_time_total / tot, "calls": e.count} for e in ev]
    return tops


def _new_compact_batch(model, x: torch.Tensor, frames: int, ratios) -> list:
    """First forward at a compact batch size never seen before (threshold selection changes it clip by clip): any
    shape-keyed cost (oneDNN primitive creation, allocator growth) shows as first-call minus second-call time."""
    new_k = []
    seen = {topk_count(r, frames) for r in ratios} | {frames}
    for k in [k for k in range(1, frames) if k not in seen][:3]:
        model.configure(execution="compact", selection="topk", ratio=k / frames, kernels="torch")
        with torch.no_grad():
            t0 = time.perf_counter()
            model(x)
            t1 = time.perf_counter()
            model(x)
            t2 = time.perf_counter()
            model(x)
            t3 = time.perf_counter()
        new_k.append({"k": k, "first_ms": (t1 - t0) * 1e3, "second_ms": (t2 - t1) * 1e3, "third_ms": (t3 - t2) * 1e3})
    return new_k


def _state_key_ms(blocks: list) -> float:
    """Cost (ms per forward) of the cache key of every focal block's constant map."""
    t0 = time.perf_counter()
    for _ in range(100):
        for b in blocks:
            b._state_key()
    return (time.perf_counter() - t0) * 1e3 / 100


def format_profile(doc: dict) -> str:
    """Markdown summary of :func:`profile_compact`."""
    cfg, env = doc["config"], doc["environment"]
    lines = [f"# Compact-path profile — {cfg['model']} T={cfg['frames']} {cfg['size']}² batch {cfg['batch']}, "
             f"{env.get('device')} ({cfg['threads']} thread(s))", "",
             "Generated by `afnet-edge bench --profile`; do not edit by hand. Wall times of one forward; "
             f"{cfg['repeats']} interleaved rounds; components from the fastest round. Load average at start "
             f"{_fmt_load(env.get('loadavg'))}, at end {_fmt_load(doc.get('loadavg_after'))} (shared machine: "
             "compare rows, not absolute numbers). Allocator/threading environment: "
             f"`{env.get('env_vars') or 'defaults (glibc malloc)'}`.", "",
             "compact-torch: fused ops in pure PyTorch; compact-ext: the compiled extension's fused ops.", "",
             "| configuration | min ms | median ms | minor page faults / forward | max abs Δlogit vs masked |",
             "|---|---|---|---|---|"]
    for k, v in doc["summary"].items():
        lines.append(f"| {k} | {v['latency_min_ms']:.0f} | {v['latency_median_ms']:.0f} | "
                     f"{v['minor_page_faults_median']:,.0f} | {_fmt(v['max_abs_logit_diff_vs_masked'])} |")
    for label, reason in (doc.get("skipped") or {}).items():
        lines.append(f"| {label} | skipped: {reason} | | | |")
    cats = []
    for v in doc["summary"].values():
        for c in v["components_of_fastest_ms"]:
            if c not in cats:
                cats.append(c)
    keys = list(doc["summary"])
    lines += ["", "Breakdown of the fastest forward (ms):", "",
              "| component | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for c in cats:
        lines.append(f"| {c} | " + " | ".join(_fmt(doc["summary"][k]["components_of_fastest_ms"].get(c), 1)
                                             for k in keys) + " |")
    for name, ops_ in doc["top_ops"].items():
        lines += ["", f"Top aten ops by self CPU time, {name} (torch.profiler, one forward):", "",
                  "| op | self ms | share | calls |", "|---|---|---|---|"]
        for o in ops_:
            lines.append(f"| `{o['op']}` | {o['self_ms']:.1f} | {o['share']:.1%} | {o['calls']} |")
    lines += ["", f"Constant-map cache key (`FocalBlock._state_key`, every parameter's pointer and version) of all "
                  f"{doc['focal_blocks']} focal blocks: {doc['state_key_ms_per_forward']:.3f} ms per forward."]
    if doc.get("new_compact_batch"):
        lines += ["", "First forwards at a compact batch size not seen before (k frames per clip; threshold selection "
                      "changes k clip by clip): a shape-keyed cost (e.g. oneDNN primitive creation) shows as first − "
                      "second.", "", "| k | first ms | second ms | third ms |", "|---|---|---|---|"]
        for e in doc["new_compact_batch"]:
            lines.append(f"| {e['k']} | {e['first_ms']:.0f} | {e['second_ms']:.0f} | {e['third_ms']:.0f} |")
    return "\n".join(lines) + "\n"

