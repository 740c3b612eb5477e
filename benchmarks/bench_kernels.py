#!/usr/bin/env python3
"""Benchmark of afnet_edge's fused CUDA ops at AF-ResNet50 production sizes (224², T = 12).

For every op, stage, batch B, selection ratio and precision it measures, with CUDA events after warm-up (median of
many runs over rotating input buffers, so that inputs do not sit in L2 when they would not in the model):

* the fused op (``afnet_edge.kernels.ext``, i.e. ``torch.ops.afnet_edge.*``),
* the unfused PyTorch sequence it replaces (``afnet_edge.kernels.reference``),
* a device-to-device copy of the same byte count in the same run (the achievable bandwidth),

and reports GB/s from the bytes each op must move (every input read once, every output written once).

    python benchmarks/bench_kernels.py                       # all ops, B ∈ {1, 8, 32}, r ∈ {0.25, 0.5, 1.0}, fp16+fp32
    python benchmarks/bench_kernels.py --batches 8 --dtypes fp16 --ops focal_gather focal_scatter

Writes benchmarks/results/<device>/kernels.json and kernels.md (device, driver, CUDA, torch, command, shapes). Needs a
CUDA device and the extension built with CUDA kernels; exits with a message (status 2) otherwise — it never reports
numbers it did not measure. ``--smoke`` runs tiny CPU-timed sizes to check the script itself and writes nothing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from afnet_edge.kernels import ext, reference

T = 12
# stage: (focal channels, focal H=W, ample map after base_transform H=W, navigation modules L)
STAGES = {"layer1": (256, 56, 28, 2), "layer2": (512, 28, 14, 3), "layer3": (1024, 14, 7, 5)}
SMOKE_STAGES = {"layer1": (16, 8, 4, 2)}
OPS = ("focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames")
DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--dtypes", nargs="+", default=["fp16", "fp32"], choices=sorted(DTYPES))
    p.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=50, help="timed runs per measurement (median reported)")
    p.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU to test the script; writes nothing")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------------
class Timer:
    """Median time of fn(i) for rotating buffer indices i, in microseconds (CUDA events, or perf_counter on CPU)."""

    def __init__(self, device: torch.device, warmup: int, iters: int):
        self.device, self.warmup, self.iters = device, warmup, iters

    def __call__(self, fn, rotation: int) -> float:
        for i in range(self.warmup):
            fn(i % rotation)
        times = []
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            for i in range(self.iters):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn(i % rotation)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) * 1e3)
        else:
            for i in range(self.iters):
                t0 = time.perf_counter()
                fn(i % rotation)
                times.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(times)


def rotation_for(set_bytes: int, device: torch.device) -> int:
    """Input sets to rotate through so that one pass over them is at least 4× the L2 cache (at most 8 sets)."""
    if device.type != "cuda":
        return 2
    l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
    return max(1, min(8, math.ceil(4 * l2 / max(set_bytes, 1))))


def rand(shape, dtype, device):
    return (torch.rand(shape, device=device, dtype=torch.float32) * 2 - 1).to(dtype)


def topk_index(b: int, k: int, device) -> torch.Tensor:
    """Random k frames per clip, sorted, as frame rows b·T + t (the layout select_frames produces)."""
    t = torch.rand(b, T, device=device).argsort(dim=1)[:, :k].sort(dim=1).values
    return (t + torch.arange(b, device=device).view(-1, 1) * T).flatten()


def nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


# ---------------------------------------------------------------------------------------------------------------------
def make_case(op, stage, b, ratio, dtype, device):
    """(fused fn, torch fn, builder of one input set, bytes moved, shape text) for one measurement."""
    c, hw, hw_small, L = (SMOKE_STAGES if device.type == "cpu" else STAGES)[stage]
    n, k = b * T, reference.topk_count(ratio, T)
    K = b * k

    if op == "focal_gather":
        def build():
            return rand((n, c, hw, hw), dtype, device), topk_index(b, k, device)
        fused = lambda s: ext.focal_gather(s[0], s[1], T, True, validate=False)  # noqa: E731
        unfused = lambda s: reference.focal_gather(s[0], s[1], T, True)  # noqa: E731
        moved = lambda s: 2 * K * c * hw * hw * s[0].element_size() + nbytes(s[1])  # noqa: E731
        shape = f"x {n}x{c}x{hw}x{hw} -> {K} frames"
    elif op == "focal_scatter":
        def build():
            return (rand((n, c, hw, hw), dtype, device), rand((K, c, hw, hw), dtype, device),
                    topk_index(b, k, device), rand((c, hw, hw), dtype, device))
        fused = lambda s: ext.focal_scatter(s[0], s[1], s[2], s[3], True, validate=False)  # noqa: E731
        unfused = lambda s: reference.focal_scatter(s[0], s[1], s[2], s[3], True)  # noqa: E731
        moved = lambda s: 2 * nbytes(s[0]) + nbytes(s[1], s[2], s[3])  # noqa: E731
        shape = f"residual {n}x{c}x{hw}x{hw}, {K} selected, const, ReLU"
    elif op == "ample_fuse_pool":
        def build():
            return rand((n, c, hw_small, hw_small), dtype, device), rand((n, c, hw, hw), dtype, device)
        fused = lambda s: ext.ample_fuse_pool(s[0], s[1])  # noqa: E731
        unfused = lambda s: reference.ample_fuse_pool(s[0], s[1])  # noqa: E731
        moved = lambda s: nbytes(s[0], s[1]) + n * c * s[0].element_size()  # noqa: E731
        shape = f"xl {n}x{c}x{hw_small}², xb {n}x{c}x{hw}²"
    elif op == "ample_fuse_blend":
        def build():
            return (rand((n, c, hw_small, hw_small), dtype, device), rand((n, c, hw, hw), dtype, device),
                    torch.rand((n, c), device=device).to(dtype))
        fused = lambda s: ext.ample_fuse_blend(s[0], s[1], s[2], True)  # noqa: E731
        unfused = lambda s: reference.ample_fuse_blend(s[0], s[1], s[2], True)  # noqa: E731
        moved = lambda s: 2 * nbytes(s[1]) + nbytes(s[0], s[2])  # noqa: E731
        shape = f"xl {n}x{c}x{hw_small}², xb {n}x{c}x{hw}², ReLU"
    else:  # select_frames: tiny, latency-bound; reported in µs
        def build():
            return (rand((L, b, T, 2), dtype, device),)
        fused = lambda s: ext.select_frames(s[0], "topk", k)  # noqa: E731
        unfused = lambda s: reference.select_frames(s[0], "topk", k)  # noqa: E731
        moved = lambda s: nbytes(s[0]) + L * K * 8 + L * 8 + L * b * T * s[0].element_size()  # noqa: E731
        shape = f"logits {L}x{b}x{T}x2, topk k={k}"
    return fused, unfused, build, moved, shape


def measure(args, device):
    timer = Timer(device, args.warmup, args.iters)
    rows = []
    stages = list(SMOKE_STAGES) if args.smoke else args.stages
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        for stage in stages:
            for b in args.batches:
                for ratio in args.ratios:
                    for op in args.ops:
                        if op in ("ample_fuse_pool", "ample_fuse_blend") and ratio != args.ratios[0]:
                            continue  # the fusion ops do not depend on the ratio
                        fused, unfused, build, moved, shape = make_case(op, stage, b, ratio, dtype, device)
                        first = build()
                        set_bytes = nbytes(*[t for t in first if isinstance(t, torch.Tensor)])
                        sets = [first] + [build() for _ in range(rotation_for(set_bytes, device) - 1)]
                        bytes_moved = moved(first)
                        t_fused = timer(lambda i: fused(sets[i]), len(sets))
                        t_torch = timer(lambda i: unfused(sets[i]), len(sets))
                        # copy of the same byte count: read bytes/2 + write bytes/2
                        elems = max(1, bytes_moved // 2 // 2)
                        src = [torch.empty(elems, dtype=torch.float16, device=device) for _ in range(len(sets))]
                        dst = [torch.empty_like(s) for s in src]
                        t_copy = timer(lambda i: dst[i].copy_(src[i]), len(sets))
                        rows.append({
                            "op": op, "stage": stage, "B": b, "T": T, "ratio": ratio, "dtype": dname,
                            "shape": shape, "bytes": bytes_moved, "rotation": len(sets),
                            "fused_us": t_fused, "torch_us": t_torch, "copy_us": t_copy,
                            "fused_GBps": bytes_moved / t_fused / 1e3, "copy_GBps": 4 * elems / t_copy / 1e3,
                            "fraction_of_copy": t_copy / t_fused, "speedup_vs_torch": t_torch / t_fused,
                        })
                        r = rows[-1]
                        print(f"{op:17s} {stage} B={b:<2d} r={ratio:<4} {dname}: fused {r['fused_us']:9.1f} µs "
                              f"({r['fused_GBps']:7.1f} GB/s, {100 * r['fraction_of_copy']:5.1f}% of copy), "
                              f"torch {r['torch_us']:9.1f} µs (×{r['speedup_vs_torch']:.2f})", flush=True)
                        del sets, src, dst
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
    return rows


def environment(device) -> dict:
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(sm=f"{props.major}{props.minor}", sms=props.multi_processor_count,
                   memory_GiB=round(props.total_memory / 2**30, 1),
                   L2_MiB=round(getattr(props, "L2_cache_size", 0) / 2**20, 1))
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except Exception:  # no nvidia-smi (e.g. Jetson): the CUDA driver API version instead
            env["driver"] = f"CUDA driver API {torch._C._cuda_getDriverVersion()}"
    return env


def write_results(rows, env, out_dir: Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "kernels.json").write_text(json.dumps({"environment": env, "results": rows}, indent=1) + "\n")
    lines = [f"# Fused kernels on {env['device']}", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, driver {env.get('driver')}, {env['date']}  ",
             f"command: `{env['command']}`  ",
             "GB/s = bytes the op must move (inputs read once, outputs written once) / median time; "
             "'% copy' = that op's time for a device-to-device copy of the same bytes ÷ the op's time; "
             "'vs torch' = unfused PyTorch reference time ÷ fused time.", "",
             "| op | stage | B | r | dtype | shape | fused µs | GB/s | % copy | torch µs | vs torch |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['stage']} | {r['B']} | {r['ratio']} | {r['dtype']} | {r['shape']} | "
                     f"{r['fused_us']:.1f} | {r['fused_GBps']:.0f} | {100 * r['fraction_of_copy']:.0f}% | "
                     f"{r['torch_us']:.1f} | {r['speedup_vs_torch']:.2f}× |")
    (out_dir / "kernels.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke:
        if not ext.AVAILABLE:
            print("bench_kernels: afnet_edge._C is not built", file=sys.stderr)
            return 2
        args.batches, args.ratios, args.warmup, args.iters = [1, 2], [0.5], 1, 3
        measure(args, torch.device("cpu"))
        print("bench_kernels: smoke run on CPU done (nothing written)")
        return 0
    if not torch.cuda.is_available():
        print("bench_kernels: no CUDA device (torch.cuda.is_available() is False); nothing was measured. "
              "Run it on a machine with an NVIDIA GPU and the extension built with CUDA kernels.", file=sys.stderr)
        return 2
    if not ext.has_kernels("cuda"):
        print("bench_kernels: afnet_edge._C has no CUDA kernels (not built, or built without CUDA: "
              f"{ext.import_error()}); rebuild with `pip install --no-build-isolation -e .` on a CUDA machine.",
              file=sys.stderr)
        return 2
    device = torch.device("cuda")
    env = environment(device)
    rows = measure(args, device)
    out_dir = Path(args.out_dir) / re.sub(r"[^a-z0-9]+", "-", env["device"].lower()).strip("-")
    write_results(rows, env, out_dir)
    print(f"bench_kernels: wrote {out_dir / 'kernels.json'} and {out_dir / 'kernels.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
