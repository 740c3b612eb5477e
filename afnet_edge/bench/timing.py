"""Timing: per-run statistics, the timed loop (CUDA events on a GPU, ``perf_counter`` on a CPU) and the device's
measured compute/bandwidth ceilings (micro-benchmarks)."""
from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable

import torch

from .grid import PRECISIONS

__all__ = ["timing_stats", "time_callable", "measure_ceilings"]


def timing_stats(times_ms: list[float]) -> dict:
    """``{"p50", "p90", "mean", "std", "min", "max", "n"}`` in ms of a list of per-run times."""
    if not times_ms:
        raise ValueError("timing_stats needs at least one time")
    xs = sorted(float(t) for t in times_ms)
    n = len(xs)

    def pct(q: float) -> float:  # linear interpolation between closest ranks (numpy's default)
        pos = (n - 1) * q
        lo, hi = math.floor(pos), math.ceil(pos)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return {"p50": pct(0.5), "p90": pct(0.9), "mean": statistics.fmean(xs),
            "std": statistics.pstdev(xs) if n > 1 else 0.0, "min": xs[0], "max": xs[-1], "n": n}


def time_callable(fn: Callable[[], object], warmup: int, repeats: int,
                  cuda: bool = False) -> tuple[list[float], list[float]]:
    """Run ``fn()`` ``warmup`` times, then time ``repeats`` single runs.

    Returns ``(device_ms, host_ms)``: on CUDA, ``device_ms`` from events recorded around each run after a
    synchronisation (so a run never overlaps the previous one) and ``host_ms`` from ``perf_counter`` around the run
    plus a final synchronisation; on CPU both are the ``perf_counter`` times.
    """
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    dev, host = [], []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            end.synchronize()
            t1 = time.perf_counter()
            dev.append(start.elapsed_time(end))
            host.append((t1 - t0) * 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            host.append((t1 - t0) * 1e3)
    return (dev if cuda else host), host


def measure_ceilings(device: str = "cpu", quick: bool = False) -> dict:
    """Achieved compute and bandwidth ceilings of ``device`` (micro-benchmarks; median of several runs).

    * ``matmul_gflops_<prec>``: 2·n³ / time of an n×n matrix product (fp32; fp16 too on CUDA);
    * ``copy_gbs``: bytes read + written / time of a large tensor copy (``dst.copy_(src)``);
    * ``op_overhead_us``: time of one tiny elementwise op (8 elements) — the per-op (launch/dispatch) cost of eager
      PyTorch on this host.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    out: dict = {"device": device, "method": "median of timed runs after warm-up; see bench.measure_ceilings"}
    precs = ["fp32", "fp16"] if cuda else ["fp32"]
    n = (8192 if not quick else 2048) if cuda else (1024 if quick else 2048)
    for p in precs:
        dt = PRECISIONS[p]
        a = torch.randn(n, n, device=dev, dtype=dt)
        b = torch.randn(n, n, device=dev, dtype=dt)
        t, _ = time_callable(lambda: torch.mm(a, b), 2, 3 if quick else 7, cuda)
        out[f"matmul_gflops_{p}"] = 2 * n ** 3 / (statistics.median(t) * 1e-3) / 1e9
        out[f"matmul_n_{p}"] = n
        del a, b
    nbytes = (1 << 30 if not quick else 1 << 27) if cuda else (1 << 26 if quick else 1 << 28)
    src = torch.randn(nbytes // 4, device=dev)
    dst = torch.empty_like(src)
    t, _ = time_callable(lambda: dst.copy_(src), 2, 3 if quick else 7, cuda)
    out["copy_gbs"] = 2 * nbytes / (statistics.median(t) * 1e-3) / 1e9
    out["copy_bytes"] = nbytes
    del src, dst
    x = torch.randn(8, device=dev)
    reps = 200
    t, _ = time_callable(lambda: [torch.add(x, 1.0) for _ in range(reps)], 2, 5, cuda)
    out["op_overhead_us"] = statistics.median(t) * 1e3 / reps
    out["threads"] = torch.get_num_threads()
    out["loadavg"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return out

