"""Model benchmarks: latency, throughput, memory and the *realised ratio* of AFNet's frame skipping.

``afnet-edge bench`` (and ``benchmarks/bench_models.py``, which calls :func:`main`) times a grid of
models × backends × modes × precisions × batches × frames × ratios and writes, under
``benchmarks/results/<device slug>/``, a results JSON (:data:`SCHEMA`), a markdown page and PNG plots.

Backends (``--backends``):

* ``masked``        — the official execution: every focal body on every frame, masks multiplied in. The anchor with
  "no real saving"; its cost does not depend on the ratio, so it is measured once per configuration (``ratio: null``)
  unless ``--masked-per-ratio``.
* ``compact-torch`` — compact execution (focal bodies only on the ``k = ceil(r·T)`` selected frames), fused ops in
  pure PyTorch (``model.configure(kernels="torch")``).
* ``compact-ext``   — compact execution with the compiled ``afnet_edge._C`` kernels (skipped, with the reason, when the
  extension is not built or has no kernels for the device).
* ``onnxruntime``   — the compact ``topk`` graph exported by :func:`afnet_edge.export.export_onnx`, run by ONNX Runtime
  (CPU provider on CPU, CUDA provider on a GPU; fp32 only).
* ``trt``           — a TensorRT engine given with ``--engine`` (model, T, ratio, batch, precision from its sidecar).

Dense baselines (``tsn_resnet50``, ``tsm_resnet50``) have no masked/compact distinction: every torch backend maps to
one backend called ``dense``. Modes (``--modes``) apply to the torch backends: ``eager``, ``cudagraph`` (the whole
forward captured in one CUDA graph; ``topk`` selection keeps every shape static; CUDA only) and ``compile``
(``torch.compile``; a failure is recorded as a skipped row with the error). Selection is always ``topk`` so that every
configuration has a fixed compact batch (``k = ceil(r·T)`` frames per clip in every navigation module).

Timing: warm-up runs, then ``repeats`` timed runs, each on its own: CUDA events around one forward after a device
synchronisation on a GPU, ``time.perf_counter`` around one (synchronous) forward on a CPU; p50 = median. Inputs are
random normal clips (never zeros), rotated among 3 buffers in eager/compile modes (the CUDA-graph mode reads its one
static input buffer). Clocks are never touched; their state is recorded where readable. Weights are random with
variance-preserving scales and random BN statistics (or a ``--checkpoint``): timing does not depend on their values
except through frame selection, which ``topk`` fixes.

Derived metrics (:func:`derive`): ``speedup_vs_masked`` = masked p50 / p50 (same model, T, precision, batch, size and
mode); ``flops_implied_speedup`` = official F(1) / F(r) (spec §9: every focal frame vs the selected fraction);
``realised_ratio`` = ``speedup_vs_masked / flops_implied_speedup`` (1.0 = skipping buys everything the FLOPs promise);
``realised_ratio_vs_r1`` the same against the backend's own r = 1 run (for backends without a masked twin: ONNX Runtime,
TensorRT).

Memory: on CUDA the allocator's peak (``torch.cuda.max_memory_allocated``) over one forward; everywhere for the torch
eager modes the *peak of live tensor bytes* created during one forward, tracked op by op with a dispatch mode
(deterministic, independent of the host allocator's caching: glibc keeps freed pages, so a CPU RSS delta measures the
allocator's history rather than the model); weights and the cached focal constant maps are reported separately. For
ONNX Runtime the resident-set growth over session creation + first run (``/proc/self/status`` VmHWM after resetting it
through ``/proc/self/clear_refs``), which includes ORT's arena and its copy of the weights.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

__all__ = ["SCHEMA", "BACKENDS", "MODES", "PRECISIONS", "GridSpec", "Case", "expand_grid", "run_grid", "derive",
           "validate_results", "collect_environment", "device_slug", "measure_ceilings", "write_outputs",
           "format_markdown", "make_plots", "timing_stats", "time_callable", "live_tensor_peak",
           "parse_tegra_release", "parse_nvpmodel", "jetson_state", "jetson_slug", "randomize_weights", "profile_compact",
           "format_profile", "proto_ample_fuse_pool", "proto_ample_fuse_blend", "proto_focal_scatter", "main",
           "register"]

SCHEMA = "afnet_edge.bench/1"
BACKENDS = ("masked", "compact-torch", "compact-ext", "onnxruntime", "trt")
TORCH_BACKENDS = ("masked", "compact-torch", "compact-ext")
COMPACT_BACKENDS = ("compact-torch", "compact-ext", "onnxruntime", "trt")
DENSE = "dense"
MODES = ("eager", "cudagraph", "compile")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
N_INPUT_BUFFERS = 3
DEFAULT_RESULTS = os.path.join("benchmarks", "results")

QUICK = dict(models=["af_mobilenetv3"], frames=[12], baseline_frames=[8], ratios=[0.25, 0.5], batches=[1],
             backends=["masked", "compact-torch"], modes=["eager"], precisions=["fp32"], size=64, warmup=2,
             repeats=5, threads=1)


# ------------------------------------------------------------------------------------------------------ the grid
@dataclass(frozen=True)
class Case:
    """One measurement: ``ratio`` is None for ratio-independent rows (masked anchor, dense baselines)."""

    model: str
    frames: int
    backend: str
    mode: str
    precision: str
    batch: int
    ratio: float | None
    size: int
    engine: str | None = None

    @property
    def label(self) -> str:
        return self.backend if self.mode == "eager" else f"{self.backend}+{self.mode}"


@dataclass
class GridSpec:
    """What to measure. Lists are the grid's axes; see ``afnet-edge bench --help`` for each."""

    models: list = field(default_factory=lambda: ["af_resnet50", "af_mobilenetv3", "tsn_resnet50", "tsm_resnet50"])
    frames: list = field(default_factory=lambda: [12])
    baseline_frames: list = field(default_factory=lambda: [8, 16])
    ratios: list = field(default_factory=lambda: [0.25, 0.4, 0.5, 1.0])
    batches: list = field(default_factory=lambda: [1])
    backends: list = field(default_factory=lambda: ["masked", "compact-torch", "compact-ext", "onnxruntime"])
    modes: list = field(default_factory=lambda: ["eager"])
    precisions: list = field(default_factory=lambda: ["fp32"])
    size: int = 224
    device: str = "cpu"
    warmup: int = 3
    repeats: int = 30
    quick: bool = False
    engines: list = field(default_factory=list)
    checkpoint: str | None = None
    seed: int = 0
    masked_per_ratio: bool = False
    channels_last: bool = False
    compile_mode: str = "default"
    threads: int | None = None
    progress: bool = True
    ceilings: bool = True
    interleave: bool = False


def _family(name: str) -> str:
    from .models import model_entry
    return model_entry(name).family


def expand_grid(spec: GridSpec) -> list[Case]:
    """The cases of ``spec`` in execution order: per (model, T, precision, batch) the masked anchor first."""
    order = {b: i for i, b in enumerate(BACKENDS)}
    backends = sorted(dict.fromkeys(spec.backends), key=lambda b: order[b])
    cases: list[Case] = []
    for model in spec.models:
        dense = _family(model) == "dense"
        for T in (spec.baseline_frames if dense else spec.frames):
            for precision in spec.precisions:
                for batch in spec.batches:
                    for backend in backends:
                        if backend == "trt":
                            continue  # engine rows come from --engine
                        if dense:
                            be = DENSE if backend in TORCH_BACKENDS else backend
                            ratios = [None]
                        else:
                            be = backend
                            ratios = [None] if backend == "masked" and not spec.masked_per_ratio else spec.ratios
                        modes = spec.modes if backend in TORCH_BACKENDS else ["eager"]
                        for mode in modes:
                            for r in ratios:
                                c = Case(model, int(T), be, mode, precision, int(batch),
                                         None if r is None else float(r), spec.size)
                                if c not in cases:
                                    cases.append(c)
    for engine in spec.engines:
        cases.append(_engine_case(engine, spec))
    return cases


def _engine_case(engine: str, spec: GridSpec) -> Case:
    from .export.engine import read_sidecar
    if not os.path.isfile(engine):
        raise FileNotFoundError(f"--engine {engine}: file not found")
    sc = read_sidecar(engine)
    batch = sc.get("batch")
    batch = int(sc.get("example_batch", 1)) if batch == "dynamic" else int(batch)
    if int(sc.get("height", 0)) != int(sc.get("width", 0)):
        raise ValueError(f"--engine {engine}: non-square input {sc.get('height')}×{sc.get('width')} is not supported")
    mode = "cudagraph" if "cudagraph" in spec.modes else "eager"
    return Case(str(sc["model"]), int(sc["num_frames"]), "trt", mode, str(sc.get("precision", "fp32")), batch,
                float(sc["ratio"]), int(sc["height"]), engine=engine)


# ------------------------------------------------------------------------------------------------------ timing
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


def time_callable(fn, warmup: int, repeats: int, cuda: bool = False) -> tuple[list[float], list[float]]:
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


# ------------------------------------------------------------------------------------------------------ memory
def live_tensor_peak(fn) -> int:
    """Peak bytes of tensor storage created by ``fn()`` and alive at the same time (pre-existing tensors, e.g.
    weights and inputs, are not counted). Tracked per aten op with a ``TorchDispatchMode``; works on any device."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class _Live(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.refs: dict[int, list] = {}   # storage data_ptr -> [bytes, number of live tensors on it]
            self.cur = 0
            self.peak = 0

        def _release(self, key: int) -> None:
            ent = self.refs.get(key)
            if ent is None:
                return
            ent[1] -= 1
            if ent[1] <= 0:
                self.cur -= ent[0]
                del self.refs[key]

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                st = t.untyped_storage()
                key, nbytes = st.data_ptr(), st.nbytes()
                if key == 0 or nbytes == 0:
                    continue
                ent = self.refs.get(key)
                if ent is None:
                    if key in {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                               if isinstance(a, torch.Tensor)}:
                        continue  # a view of, or an in-place op on, a tensor that existed before fn()
                    ent = self.refs[key] = [nbytes, 0]
                    self.cur += nbytes
                    self.peak = max(self.peak, self.cur)
                ent[1] += 1
                weakref.finalize(t, self._release, key)
            return out

    mode = _Live()
    with mode:
        fn()
    return mode.peak


def _rss_kib() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _state_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes of parameters + buffers, bytes of cached focal constant maps)."""
    w = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    c = 0
    for m in model.modules():
        for entry in getattr(m, "_const_cache", {}).values():
            k = entry[1] if isinstance(entry, tuple) else entry
            if isinstance(k, torch.Tensor):
                c += k.numel() * k.element_size()
    return w, c


MIB = float(1 << 20)


# ------------------------------------------------------------------------------------------------------ environment
def _run(cmd: list[str], timeout: float = 10.0) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (res.stdout or res.stderr).strip() if res.returncode == 0 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_tegra_release(text: str) -> dict:
    """``/etc/nv_tegra_release`` → ``{"l4t": "36.4.0", "board": ..., "raw": ...}``.

    The first line reads e.g. ``# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, ...``.
    """
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    out = {"raw": first}
    if m:
        out["l4t"] = f"{m.group(1)}.{m.group(2)}"
    b = re.search(r"BOARD:\s*([^,]+)", first)
    if b:
        out["board"] = b.group(1).strip()
    return out


def parse_nvpmodel(text: str) -> dict:
    """``nvpmodel -q`` output (``NV Power Mode: MAXN`` then the mode id) → ``{"mode": "MAXN", "id": 0}``."""
    out: dict = {}
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    for i, line in enumerate(lines):
        m = re.match(r"NV Power Mode:\s*(.+)", line)
        if m:
            out["mode"] = m.group(1).strip()
            if i + 1 < len(lines) and lines[i + 1].isdigit():
                out["id"] = int(lines[i + 1])
    return out


def jetson_state() -> dict | None:
    """JetPack / L4T version and the power/clock state of a Jetson, read only (None when not on a Jetson).

    Reads ``/etc/nv_tegra_release``, ``dpkg-query nvidia-jetpack``, ``/proc/device-tree/model``, ``nvpmodel -q`` and
    ``jetson_clocks --show`` (the latter may need root; its absence is recorded). Nothing is changed.
    """
    if not os.path.exists("/etc/nv_tegra_release"):
        return None
    with open("/etc/nv_tegra_release") as f:
        out: dict = {"tegra_release": parse_tegra_release(f.read())}
    out["jetpack"] = _run(["dpkg-query", "--showformat=${Version}", "--show", "nvidia-jetpack"]) or "unknown"
    try:
        with open("/proc/device-tree/model", "rb") as f:
            out["module"] = f.read().decode(errors="replace").strip("\x00").strip()
    except OSError:
        out["module"] = "unknown"
    q = _run(["nvpmodel", "-q"])
    out["nvpmodel"] = parse_nvpmodel(q) if q else "not readable (nvpmodel missing or needs root)"
    clocks = _run(["jetson_clocks", "--show"])
    out["jetson_clocks"] = clocks if clocks else "not readable (jetson_clocks missing or needs root)"
    return out


def jetson_slug(module: str, nvpmodel=None) -> str | None:
    """``/proc/device-tree/model`` (e.g. "NVIDIA Jetson AGX Orin Developer Kit") → ``orin-agx``, ``orin-nx``,
    ``orin-nano`` (``orin-nano-super`` when the power mode is a SUPER one), ``thor``; None when unknown."""
    mod = module.lower()
    mode = str((nvpmodel or {}).get("mode", "") if isinstance(nvpmodel, dict) else "").upper()
    if "orin nano" in mod:
        return "orin-nano-super" if "SUPER" in mode else "orin-nano"
    for key, slug in (("agx orin", "orin-agx"), ("orin nx", "orin-nx"), ("thor", "thor")):
        if key in mod:
            return slug
    return None


def device_slug(device: str = "cpu", threads: int | None = None) -> str:
    """Folder name under ``benchmarks/results``: ``h100-sxm``, ``h100-pcie``, ``a100-sxm``, ``orin-agx`` …; for a CPU
    ``cpu-<model>-<threads>t``; otherwise the slugified device name."""
    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
        js = jetson_state()
        if js:
            slug = jetson_slug(str(js.get("module", "")), js.get("nvpmodel"))
            if slug:
                return slug
        n = name.lower()
        table = (("h100", "hbm3", "h100-sxm"), ("h100", "pcie", "h100-pcie"), ("h100", "nvl", "h100-nvl"),
                 ("h200", "", "h200"), ("a100", "sxm", "a100-sxm"), ("a100", "pcie", "a100-pcie"))
        for a, b, slug in table:
            if a in n and b in n:
                return slug
        return _slugify(name.replace("NVIDIA", ""))
    threads = threads or torch.get_num_threads()
    return f"cpu-{_slugify(_cpu_model())}-{threads}t"


def _git(*args: str) -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return _run(["git", "-C", root, *args])


def collect_environment(device: str = "cpu") -> dict:
    """Versions and hardware: device, driver, CUDA, cuDNN, torch, TensorRT, ONNX Runtime, CPU model/threads, load,
    git commit, Jetson state. Read only."""
    from . import __version__
    env: dict = {
        "device": "cpu", "device_type": torch.device(device).type, "device_slug": device_slug(device),
        "torch": torch.__version__, "python": platform.python_version(), "afnet_edge": __version__,
        "platform": platform.platform(), "machine": platform.machine(), "host": platform.node(),
        "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        # allocator and threading knobs change CPU timings a lot (page faults of fresh large tensors)
        "env_vars": {k: os.environ.get(k) for k in ("LD_PRELOAD", "MALLOC_CONF", "GLIBC_TUNABLES", "OMP_NUM_THREADS",
                                                    "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if os.environ.get(k)},
    }
    from .kernels import extension_available
    try:
        env["extension"] = bool(extension_available())
    except Exception as e:  # an extension mid-rebuild can fail with anything
        env["extension"] = f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    for mod in ("onnxruntime", "onnx", "numpy"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            env[mod] = None
    env["tensorrt"] = None
    for mod in ("tensorrt", "tensorrt_rtx"):
        try:
            env["tensorrt"] = f"{mod} {__import__(mod).__version__}"
            break
        except Exception:
            continue
    if torch.device(device).type == "cuda":
        d = torch.device(device)
        props = torch.cuda.get_device_properties(d)
        env.update({
            "device": torch.cuda.get_device_name(d), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "gpu_memory_gib": round(props.total_memory / (1 << 30), 2), "sm_count": props.multi_processor_count,
            "compute_capability": f"{props.major}.{props.minor}",
            "allow_tf32_conv": bool(torch.backends.cudnn.allow_tf32),
            "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        })
        q = _run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,"
                  "persistence_mode,temperature.gpu", "--format=csv,noheader", f"--id={d.index or 0}"])
        if q:
            keys = ("driver", "clock_sm_mhz", "clock_sm_max_mhz", "clock_mem_mhz", "power_limit", "persistence_mode",
                    "temperature_c")
            env["gpu_state"] = dict(zip(keys, [s.strip() for s in q.split(",")]))
            env["driver"] = env["gpu_state"]["driver"]
        else:
            env["driver"] = None
    else:
        env["device"] = env["cpu_model"]
    js = jetson_state()
    if js:
        env["jetson"] = js
    return env


# ------------------------------------------------------------------------------------------------------ ceilings
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


# ------------------------------------------------------------------------------------------------------ models
@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random conv/linear weights of variance-preserving scale and random BN affine parameters and statistics, so
    that activations stay O(1) (no denormals, no all-zero branches) and focal constant maps are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
            mod.bias.copy_(0.2 * torch.randn(c, generator=g))
            mod.running_mean.copy_(0.2 * torch.randn(c, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
            if mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
    return model


def _build_model(name: str, frames: int, spec: GridSpec):
    from .models import create_model
    model = create_model(name, num_frames=frames, selection="topk")
    if spec.checkpoint:
        from .checkpoint import load_checkpoint
        load_checkpoint(model, spec.checkpoint)
    else:
        randomize_weights(model, spec.seed)
    return model.eval()


def _inputs(case: Case, device: torch.device, dtype: torch.dtype, seed: int, channels_last: bool) -> list:
    g = torch.Generator().manual_seed(seed + 7919 * case.batch + case.frames)
    xs = []
    for _ in range(N_INPUT_BUFFERS):
        x = torch.randn(case.batch, case.frames, 3, case.size, case.size, generator=g).to(device=device, dtype=dtype)
        xs.append(x)
    return xs


def _ext_skip_reason(device: torch.device) -> str | None:
    try:
        from .kernels import extension_available
        if not extension_available():
            from .kernels import ext
            err = ext.import_error()
            return f"afnet_edge._C is not built ({type(err).__name__ if err else 'no operators'}); build it with " \
                   f"`pip install --no-build-isolation -e .`"
        from .kernels.ext import has_kernels
        if not has_kernels(device):
            return f"afnet_edge._C has no {device.type} kernels (built without them)"
    except Exception as e:
        return f"afnet_edge._C cannot be used: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def _skip_reason(case: Case, device: torch.device) -> str | None:
    """Why ``case`` cannot run here (None when it can)."""
    if case.mode == "cudagraph" and device.type != "cuda" and case.backend != "trt":
        return "CUDA graphs need a CUDA device"
    if case.backend == "compact-ext":
        return _ext_skip_reason(device)
    if case.backend == "onnxruntime":
        if case.precision != "fp32":
            return "the exported ONNX graph is fp32 (ONNX Runtime fp16 needs a converted graph; not benchmarked)"
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (`pip install afnet_edge[onnx]`)"
        if device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here (`pip install onnxruntime-gpu`); CPU timings on a " \
                   "GPU machine would not be comparable"
        if device.type not in ("cpu", "cuda"):
            return f"onnxruntime backend supports cpu and cuda devices, not {device.type}"
    if case.backend == "trt" and device.type != "cuda":
        return "TensorRT engines need a CUDA device"
    if case.precision == "fp16" and device.type == "cpu" and case.backend in TORCH_BACKENDS + (DENSE,):
        return None  # allowed (slow on most CPUs; measured as asked)
    return None


# ------------------------------------------------------------------------------------------------------ runners
class _Runner:
    """``run()`` executes one forward on the next input; ``logits(x)`` the output for a given input (checks)."""

    cuda = False
    notes: str = ""

    def run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _configure(model, case: Case) -> None:
    if case.backend == DENSE:
        return
    execution = "masked" if case.backend == "masked" else "compact"
    kernels = {"masked": "torch", "compact-torch": "torch", "compact-ext": "ext"}[case.backend]
    model.configure(execution=execution, selection="topk", ratio=case.ratio if case.ratio is not None else 1.0,
                    kernels=kernels)


class _TorchRunner(_Runner):
    def __init__(self, model, case: Case, xs: list, spec: GridSpec, device: torch.device):
        self.model, self.case, self.xs, self.device = model, case, xs, device
        self.cuda = device.type == "cuda"
        self.i = 0
        _configure(model, case)
        fwd = lambda x: model(x).logits  # noqa: E731
        self.static_out = None
        if case.mode == "compile":
            torch._dynamo.reset()
            self.fn = torch.compile(fwd, mode=None if spec.compile_mode == "default" else spec.compile_mode)
            with torch.no_grad():
                self.fn(xs[0])  # compile now: a failure is reported as a skipped row
        elif case.mode == "cudagraph":
            with torch.no_grad():
                s = torch.cuda.Stream(device)
                s.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(s):
                    for _ in range(3):  # fills the constant-map caches and lets cuDNN pick its algorithms
                        fwd(xs[0])
                torch.cuda.current_stream(device).wait_stream(s)
                self.static_in = xs[0].clone()
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.static_out = fwd(self.static_in)
            self.fn = None
        else:
            self.fn = fwd

    reconfigure = False  # interleaved timing: other cases reconfigure the shared model between runs

    def run(self) -> None:
        with torch.no_grad():
            if self.case.mode == "cudagraph":
                self.graph.replay()
            else:
                if self.reconfigure:
                    _configure(self.model, self.case)
                self.fn(self.xs[self.i % len(self.xs)])
                self.i += 1

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        _configure(self.model, self.case)
        with torch.no_grad():
            if self.case.mode == "cudagraph":
                self.static_in.copy_(x)
                self.graph.replay()
                torch.cuda.synchronize(self.device)
                return self.static_out.clone()
            return self.fn(x)

    def close(self) -> None:
        self.graph = None
        self.static_out = None
        if self.case.mode == "compile":
            torch._dynamo.reset()


class _OrtRunner(_Runner):
    def __init__(self, model, case: Case, xs: list, spec: GridSpec, device: torch.device, workdir: str):
        import numpy as np
        import onnxruntime as ort
        from .export import export_onnx
        self.case = case
        p = next(model.parameters())
        # Module.float()/.cpu() work in place: export from a copy when the timed model is elsewhere or not fp32.
        model_cpu = model if (p.device.type == "cpu" and p.dtype == torch.float32) else \
            copy.deepcopy(model).float().cpu()
        path = os.path.join(workdir, f"{case.model}_T{case.frames}_r{case.ratio}_b{case.batch}.onnx")
        hwm_ok = _reset_hwm()
        before = _rss_kib().get("VmRSS")
        res = export_onnx(model_cpu, path, ratio=1.0 if case.ratio is None else case.ratio, batch=case.batch,
                          size=case.size, seed=spec.seed)
        self.export = res
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads() if device.type == "cpu" else 0
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
        _reset_hwm()
        before = _rss_kib().get("VmRSS", before)
        self.sess = ort.InferenceSession(path, sess_options=so, providers=providers)
        self.name = self.sess.get_inputs()[0].name
        self.xs = [x.detach().float().cpu().numpy() for x in xs]
        self.sess.run(None, {self.name: self.xs[0]})
        after = _rss_kib().get("VmHWM")
        self.rss_delta_mib = (after - before) / 1024 if hwm_ok and after and before else None
        ref = self.sess.run(None, {self.name: res.example_clip.numpy()})[0]
        self.check = float(np.abs(ref - res.reference_logits.numpy()).max())
        self.providers = self.sess.get_providers()
        self.i = 0
        os.remove(path)

    def run(self) -> None:
        self.sess.run(None, {self.name: self.xs[self.i % len(self.xs)]})
        self.i += 1


# ------------------------------------------------------------------------------------------------------ grid run
def _flops_info(model, case: Case) -> dict:
    from .flops import count_flops
    if case.backend == DENSE or not getattr(model, "num_navigation", 0):
        res = count_flops(model, ratio=1.0, image_size=case.size)
        return {"official_gflops": res["official_gflops"], "executed_gmacs": res["executed_gmacs_compact"]}
    r = 1.0 if case.ratio is None else case.ratio
    res = count_flops(model, ratio=r, image_size=case.size)
    masked = case.backend == "masked"
    return {
        "official_gflops": res["official_gflops_r1"] if masked else res["official_gflops"],
        "official_gflops_r0": res["official_gflops_r0"], "official_gflops_r1": res["official_gflops_r1"],
        "executed_gmacs": res["executed_gmacs_masked"] if masked else res["executed_gmacs_compact"],
        "executed_gmacs_masked": res["executed_gmacs_masked"],
        "selected_frames_per_clip": None if masked else res["selected_frames_per_clip"][0],
    }


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _start_case(case: Case, model, spec: GridSpec, device: torch.device, workdir: str):
    """Row skeleton and a ready runner for ``case`` (``(row, None)`` when it is skipped or failed to set up)."""
    row: dict = {**asdict(case), "label": case.label, "status": "ok"}
    row.pop("engine")
    if case.engine:
        row["engine"] = os.path.basename(case.engine)
    reason = _skip_reason(case, device)
    if reason:
        row.update(status="skipped", reason=reason)
        return row, None
    row["loadavg_1m_before"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    xs = _inputs(case, device, PRECISIONS[case.precision], spec.seed, spec.channels_last)
    try:
        if case.backend == "onnxruntime":
            runner = _OrtRunner(model, case, xs, spec, device, workdir)
            row["check_max_abs_diff_vs_export_reference"] = runner.check
            row["providers"] = runner.providers
            row["ort_threads"] = torch.get_num_threads() if device.type == "cpu" else None
            if device.type == "cuda":  # host clock around a synchronous session.run (device <-> host copies in)
                row["timing_note"] = "host perf_counter around session.run (includes host<->device copies)"
            row["memory"] = {"peak_rss_delta_mib": runner.rss_delta_mib,
                             "method": "VmHWM growth over ORT session creation + first run (arena + weights)"}
        else:
            runner = _TorchRunner(model, case, xs, spec, device)
    except Exception as e:  # compile/capture/export failures are results too
        row.update(status="skipped", reason=f"{case.mode if case.mode != 'eager' else case.backend} failed: "
                                            f"{_first_line(e)}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return row, None
    runner.xs0 = xs[0]
    return row, runner


def _finish_case(case: Case, row: dict, runner, model, spec: GridSpec, device: torch.device, anchors: dict,
                 dev_ms: list, host_ms: list) -> dict:
    """Statistics, memory, correctness check and FLOPs of a timed case; closes its runner."""
    cuda = device.type == "cuda"
    try:
        if case.backend != "onnxruntime":
            x0 = runner.xs0
            row["memory"] = _torch_memory(model, runner, case, device, x0)
            out = runner.logits(x0).float()
            if not bool(torch.isfinite(out).all()):
                row["warning"] = "non-finite logits"
            if not (case.backend in ("masked", DENSE) and case.mode == "eager"):
                ref = _reference_logits(model, case, x0, anchors)
                row["check_max_abs_diff_vs_masked"] = float((out.cpu() - ref).abs().max())
    except Exception as e:
        row.update(status="skipped", reason=f"post-timing check failed: {_first_line(e)}")
        return row
    finally:
        runner.close()
        if cuda:
            torch.cuda.empty_cache()
    row["latency_ms"] = timing_stats(dev_ms)
    if cuda and case.backend != "onnxruntime":
        row["host_latency_ms"] = timing_stats(host_ms)
    row["throughput_clips_s"] = case.batch / (row["latency_ms"]["p50"] * 1e-3)
    row["warmup"], row["repeats"] = spec.warmup, spec.repeats
    row["flops"] = _flops_info(model, case)
    row["loadavg_1m_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return row


def _measure_case(case: Case, model, spec: GridSpec, device: torch.device, workdir: str, anchors: dict) -> dict:
    """Set up, time (warm-up then ``repeats`` runs back to back) and finish one case."""
    if case.backend == "trt":
        row = {**asdict(case), "label": case.label, "status": "ok", "engine": os.path.basename(case.engine)}
        reason = _skip_reason(case, device)
        if reason:
            row.update(status="skipped", reason=reason)
            return row
        return _measure_trt(case, spec, row)
    row, runner = _start_case(case, model, spec, device, workdir)
    if runner is None:
        return row
    try:
        dev_ms, host_ms = time_callable(runner.run, spec.warmup, spec.repeats,
                                        cuda=device.type == "cuda" and case.backend != "onnxruntime")
    except Exception as e:
        runner.close()
        row.update(status="skipped", reason=f"{case.label} failed while timed: {_first_line(e)}")
        return row
    return _finish_case(case, row, runner, model, spec, device, anchors, dev_ms, host_ms)


def _measure_group(cases: list, model, spec: GridSpec, device: torch.device, workdir: str, anchors: dict) -> list:
    """Time eager cases of one (model, T, precision, batch) *interleaved*: after every case's warm-up, each of the
    ``repeats`` rounds runs every case once (in a rotating order). Load changes on a shared machine then hit all
    cases alike, so their ratios (speed-up, realised ratio) stay meaningful even when absolute times drift."""
    started = [(c, *_start_case(c, model, spec, device, workdir)) for c in cases]
    live = [(c, row, rn) for c, row, rn in started if rn is not None]
    for _, _, rn in live:
        rn.reconfigure = True
    times = {id(rn): ([], []) for _, _, rn in live}
    failed = {}
    for c, row, rn in live:
        try:
            time_callable(rn.run, spec.warmup, 0, cuda=device.type == "cuda" and c.backend != "onnxruntime")
        except Exception as e:
            failed[id(rn)] = f"{c.label} failed in warm-up: {_first_line(e)}"
    for i in range(spec.repeats):
        k = i % max(1, len(live))
        for c, row, rn in live[k:] + live[:k]:
            if id(rn) in failed:
                continue
            try:
                d, h = time_callable(rn.run, 0, 1, cuda=device.type == "cuda" and c.backend != "onnxruntime")
            except Exception as e:
                failed[id(rn)] = f"{c.label} failed while timed: {_first_line(e)}"
                continue
            times[id(rn)][0].extend(d)
            times[id(rn)][1].extend(h)
    out = []
    for c, row, rn in started:
        if rn is None:
            out.append(row)
        elif id(rn) in failed:
            rn.close()
            row.update(status="skipped", reason=failed[id(rn)])
            out.append(row)
        else:
            row["interleaved_with"] = len(live)
            out.append(_finish_case(c, row, rn, model, spec, device, anchors, *times[id(rn)]))
    return out


def _reference_logits(model, case: Case, x: torch.Tensor, cache: dict) -> torch.Tensor:
    """Eager masked (official) logits of ``x`` at the case's ratio: what every torch backend/mode must reproduce."""
    key = (case.model, case.frames, case.precision, case.batch, case.size, case.ratio)
    if key not in cache:
        if case.backend != DENSE:
            model.configure(execution="masked", selection="topk", ratio=1.0 if case.ratio is None else case.ratio,
                            kernels="torch")
        with torch.no_grad():
            cache[key] = model(x).logits.float().cpu()
    return cache[key]


def _torch_memory(model, runner: _TorchRunner, case: Case, device: torch.device, x: torch.Tensor) -> dict:
    _configure(model, case)
    w, c = _state_bytes(model)
    mem = {"weights_mib": w / MIB, "constant_maps_mib": c / MIB, "input_mib": x.numel() * x.element_size() / MIB}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        runner.run()
        torch.cuda.synchronize(device)
        mem["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
        mem["cuda_peak_over_resident_mib"] = (torch.cuda.max_memory_allocated(device) - base) / MIB
    if case.mode == "eager":
        with torch.no_grad():
            mem["peak_activation_mib"] = live_tensor_peak(lambda: runner.fn(x)) / MIB
        mem["method"] = "peak of live tensor bytes created in one forward (dispatch-mode tracking)" + \
            ("; CUDA allocator peak over one forward" if device.type == "cuda" else "")
    return mem


def _measure_trt(case: Case, spec: GridSpec, row: dict) -> dict:
    try:
        from .export.runtime import TRTRunner
        with TRTRunner(case.engine, cuda_graph=case.mode == "cudagraph") as runner:
            g = torch.Generator().manual_seed(spec.seed)
            runner.set_input(torch.randn(runner.input_shape, generator=g))
            bm = runner.benchmark(iterations=spec.repeats, warmup=spec.warmup)
    except Exception as e:
        row.update(status="skipped", reason=f"trt failed: {_first_line(e)}")
        return row
    row["latency_ms"] = {"p50": bm["median_ms"], "p90": bm["p90_ms"], "mean": bm["mean_ms"], "min": bm["min_ms"],
                         "n": bm["iterations"], "max": None, "std": None}
    row["throughput_clips_s"] = case.batch / (bm["median_ms"] * 1e-3)
    row["warmup"], row["repeats"] = spec.warmup, spec.repeats
    from .flops import count_flops
    from .models import create_model
    with torch.device("meta"):
        m = create_model(case.model, num_frames=case.frames)
    res = count_flops(m, ratio=case.ratio, image_size=case.size)
    row["flops"] = {k: res[k] for k in ("official_gflops", "official_gflops_r0", "official_gflops_r1")}
    row["flops"]["executed_gmacs"] = res["executed_gmacs_compact"]
    row["memory"] = {"method": "not measured for TensorRT engines"}
    return row


def run_grid(spec: GridSpec, argv: list[str] | None = None) -> dict:
    """Measure every case of ``spec`` and return the results document (:data:`SCHEMA`)."""
    device = torch.device(spec.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
        torch.backends.cudnn.benchmark = True
    threads_before = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        return _run_grid(spec, argv, device)
    finally:
        torch.set_num_threads(threads_before)


def _run_grid(spec: GridSpec, argv: list[str] | None, device: torch.device) -> dict:
    cases = expand_grid(spec)
    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env = collect_environment(str(device))
    doc: dict = {
        "schema": SCHEMA,
        "kind": "measurement",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "afnet-edge bench " + " ".join(shlex.quote(a) for a in (argv or [])),
        "argv": list(argv or []),
        "environment": env,
        "grid": {k: v for k, v in asdict(spec).items() if k != "progress"},
        "timing": {"warmup": spec.warmup, "repeats": spec.repeats, "quick": spec.quick,
                   "statistic": "p50 = median of single-run times",
                   "method": ("CUDA events around each run after a device synchronisation" if device.type == "cuda"
                              else "time.perf_counter around each (synchronous) run"),
                   "inputs": f"random normal clips, {N_INPUT_BUFFERS} rotating buffers (CUDA graphs: 1 static)",
                   "selection": "topk (k = ceil(r*T) frames per clip in every navigation module)",
                   "interleaved": spec.interleave,
                   "order": ("interleaved: per model/T/precision/batch, every eager case runs once per round, "
                             "rounds rotate the order" if spec.interleave else "each case's runs back to back"),
                   "clocks": "not changed (state recorded in environment where readable)"},
        "load_average": {"before": load_before},
        "rows": [],
    }
    if spec.ceilings:
        doc["ceilings"] = measure_ceilings(str(device), quick=spec.quick)
    from tqdm import tqdm
    models: dict = {}
    anchors: dict = {}

    def get_model(case: Case):
        key = (case.model, case.frames, case.precision)
        if key not in models:
            models.clear()  # one model at a time: keeps memory flat on small devices
            if device.type == "cuda":
                torch.cuda.empty_cache()
            m = _build_model(case.model, case.frames, spec)
            m = m.to(device=device, dtype=PRECISIONS[case.precision])
            if spec.channels_last:
                m = m.to(memory_format=torch.channels_last)
            models[key] = m
        return models[key]

    # units of work: single cases, or (interleave) the eager cases of one model/T/precision/batch/size together
    units: list = []
    groups: dict = {}
    for case in cases:
        if spec.interleave and case.mode == "eager" and case.backend != "trt":
            k = (case.model, case.frames, case.precision, case.batch, case.size)
            if k not in groups:
                groups[k] = []
                units.append(groups[k])
            groups[k].append(case)
        else:
            units.append([case])
    with tempfile.TemporaryDirectory(prefix="afnet_bench_") as workdir:
        bar = tqdm(total=len(cases), desc="bench", unit="case", disable=not spec.progress, file=sys.stderr,
                   dynamic_ncols=True)
        for unit in units:
            c0 = unit[0]
            bar.set_postfix_str(f"{c0.model} T={c0.frames} {c0.precision} b={c0.batch} "
                                + (f"{len(unit)} cases interleaved" if len(unit) > 1 else f"{c0.label} r={c0.ratio}"),
                                refresh=True)
            model = None if c0.backend == "trt" else get_model(c0)
            if len(unit) > 1:
                doc["rows"].extend(_measure_group(unit, model, spec, device, workdir, anchors))
            else:
                doc["rows"].append(_measure_case(c0, model, spec, device, workdir, anchors))
            bar.update(len(unit))
        bar.close()
    doc["load_average"]["after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    derive(doc)
    return doc


# ------------------------------------------------------------------------------------------------------ analysis
def _ok(row: dict) -> bool:
    return row.get("status") == "ok" and isinstance(row.get("latency_ms"), dict)


def _same_config(a: dict, b: dict, keys=("model", "frames", "precision", "batch", "size")) -> bool:
    return all(a.get(k) == b.get(k) for k in keys)


def derive(doc: dict) -> dict:
    """Fill ``speedup_vs_masked``, ``flops_implied_speedup``, ``realised_ratio`` (from p50), ``realised_ratio_min``
    (from the fastest run of each) and ``realised_ratio_vs_r1`` in every compact row that has its anchor (in place;
    returns ``doc``)."""
    rows = doc.get("rows", [])
    for row in rows:
        for k in ("speedup_vs_masked", "flops_implied_speedup", "realised_ratio", "realised_ratio_vs_r1",
                  "anchor", "realised_ratio_min"):
            row.pop(k, None)
        if not _ok(row) or row.get("backend") not in COMPACT_BACKENDS or row.get("ratio") is None:
            continue
        fl = row.get("flops") or {}
        if not fl.get("official_gflops") or not fl.get("official_gflops_r1"):
            continue
        implied = fl["official_gflops_r1"] / fl["official_gflops"]
        row["flops_implied_speedup"] = implied
        p50 = row["latency_ms"]["p50"]
        for a in rows:
            if _ok(a) and a.get("backend") == "masked" and a.get("mode") == row.get("mode") and _same_config(a, row) \
                    and (a.get("ratio") is None or a.get("ratio") == row.get("ratio")) \
                    and row.get("backend") in TORCH_BACKENDS:
                row["speedup_vs_masked"] = a["latency_ms"]["p50"] / p50
                row["realised_ratio"] = row["speedup_vs_masked"] / implied
                # the same from the fastest run of each: more robust on a shared, loaded CPU
                row["realised_ratio_min"] = a["latency_ms"]["min"] / row["latency_ms"]["min"] / implied
                row["anchor"] = f"masked{'' if a['mode'] == 'eager' else '+' + a['mode']} r={a.get('ratio')}"
                break
        for a in rows:
            if _ok(a) and a.get("backend") == row.get("backend") and a.get("mode") == row.get("mode") \
                    and _same_config(a, row) and a.get("ratio") == 1.0:
                r1 = a["flops"]["official_gflops"]
                row["realised_ratio_vs_r1"] = (a["latency_ms"]["p50"] / p50) / (r1 / fl["official_gflops"])
                break
    return doc


_REQUIRED_TOP = ("schema", "kind", "created", "command", "environment", "grid", "timing", "rows", "load_average")
_REQUIRED_ENV = ("device", "device_type", "device_slug", "torch", "python", "cpu_model", "torch_threads",
                 "git_commit", "tensorrt", "onnxruntime")
_REQUIRED_ROW = ("model", "frames", "backend", "mode", "precision", "batch", "ratio", "size", "status", "label")


def validate_results(doc: dict) -> list[str]:
    """Problems of a results document (empty list = valid): required keys, positive numbers, and derived metrics
    that agree with the latencies and FLOPs they are computed from."""
    probs: list[str] = []
    if not isinstance(doc, dict):
        return ["results must be a JSON object"]
    for k in _REQUIRED_TOP:
        if k not in doc:
            probs.append(f"missing top-level key {k!r}")
    if doc.get("schema") != SCHEMA:
        probs.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    env = doc.get("environment") or {}
    for k in _REQUIRED_ENV:
        if k not in env:
            probs.append(f"environment lacks {k!r}")
    if env.get("device_type") == "cuda":
        for k in ("cuda", "driver", "cudnn"):
            if k not in env:
                probs.append(f"environment lacks {k!r} (CUDA run)")
    rows = doc.get("rows")
    if not isinstance(rows, list) or not rows:
        return probs + ["rows must be a non-empty list"]
    by_id = rows
    for i, row in enumerate(rows):
        where = f"rows[{i}] ({row.get('model')} {row.get('label')} r={row.get('ratio')})"
        for k in _REQUIRED_ROW:
            if k not in row:
                probs.append(f"{where}: missing {k!r}")
        if row.get("status") not in ("ok", "skipped"):
            probs.append(f"{where}: status must be 'ok' or 'skipped'")
        if row.get("status") == "skipped":
            if not row.get("reason"):
                probs.append(f"{where}: skipped without a reason")
            continue
        lat = row.get("latency_ms") or {}
        for k in ("p50", "p90", "mean", "min"):
            v = lat.get(k)
            if not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
                probs.append(f"{where}: latency_ms.{k} must be a positive number, got {v!r}")
        if isinstance(lat.get("p50"), (int, float)) and isinstance(lat.get("p90"), (int, float)) \
                and lat["p90"] < lat["p50"]:
            probs.append(f"{where}: p90 < p50")
        if not isinstance(lat.get("n"), int) or lat["n"] < 1:
            probs.append(f"{where}: latency_ms.n must be a positive integer")
        tp = row.get("throughput_clips_s")
        if not isinstance(tp, (int, float)) or not tp > 0:
            probs.append(f"{where}: throughput_clips_s must be positive")
        elif isinstance(lat.get("p50"), (int, float)) and lat["p50"] > 0 and \
                not math.isclose(tp, row["batch"] / (lat["p50"] * 1e-3), rel_tol=1e-6):
            probs.append(f"{where}: throughput_clips_s != batch / p50")
        fl = row.get("flops") or {}
        for k in ("official_gflops", "executed_gmacs"):
            if not isinstance(fl.get(k), (int, float)) or not fl[k] > 0:
                probs.append(f"{where}: flops.{k} must be positive")
        if "realised_ratio" in row:
            anchor = [a for a in by_id if _ok(a) and a.get("backend") == "masked" and a.get("mode") == row["mode"]
                      and _same_config(a, row) and (a.get("ratio") is None or a.get("ratio") == row.get("ratio"))]
            if not anchor:
                probs.append(f"{where}: realised_ratio without a masked anchor row")
                continue
            speed = anchor[0]["latency_ms"]["p50"] / lat["p50"]
            implied = fl["official_gflops_r1"] / fl["official_gflops"]
            if not math.isclose(row.get("speedup_vs_masked", -1), speed, rel_tol=1e-9):
                probs.append(f"{where}: speedup_vs_masked {row.get('speedup_vs_masked')} != anchor p50 / p50 = {speed}")
            if not math.isclose(row.get("flops_implied_speedup", -1), implied, rel_tol=1e-9):
                probs.append(f"{where}: flops_implied_speedup != official_gflops_r1 / official_gflops")
            if not math.isclose(row["realised_ratio"], speed / implied, rel_tol=1e-9):
                probs.append(f"{where}: realised_ratio != speedup_vs_masked / flops_implied_speedup")
            if "realised_ratio_min" in row and not math.isclose(
                    row["realised_ratio_min"], anchor[0]["latency_ms"]["min"] / lat["min"] / implied, rel_tol=1e-9):
                probs.append(f"{where}: realised_ratio_min != anchor min / min / flops_implied_speedup")
    return probs


# ------------------------------------------------------------------------------------------------------ reports
_PRETTY = {"af_resnet50": "AF-ResNet50", "af_resnet101": "AF-ResNet101", "af_mobilenetv3": "AF-MobileNetV3",
           "tsn_resnet50": "TSN-ResNet50", "tsm_resnet50": "TSM-ResNet50"}


def _fmt(v, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}" if abs(v) >= 0.01 else f"{v:.2e}"
    return str(v)


def best_rows(doc: dict, model: str, frames: int, precision: str, batch: int, ratio=None,
              backends=None) -> dict | None:
    """Fastest ok row (lowest p50) of a configuration, over backends and modes."""
    cand = [r for r in doc.get("rows", []) if _ok(r) and r["model"] == model and r["frames"] == frames
            and r["precision"] == precision and r["batch"] == batch
            and (ratio is None or r.get("ratio") == ratio) and (backends is None or r["backend"] in backends)]
    return min(cand, key=lambda r: r["latency_ms"]["p50"]) if cand else None


def targets(doc: dict) -> list[dict]:
    """The issue's targets evaluated on this results file (each: name, status met/missed/not measured, detail)."""
    out = []
    rows = doc.get("rows", [])
    dev = (doc.get("environment") or {}).get("device_type")
    # 1. realised ratio >= 0.9, AF-ResNet50 (TSM) T=12, r in {0.25, 0.4}, batch 8, fp16, GPU
    sel = [r for r in rows if _ok(r) and r["model"] == "af_resnet50" and r["frames"] == 12 and r["batch"] == 8
           and r["precision"] == "fp16" and r.get("ratio") in (0.25, 0.4) and "realised_ratio" in r]
    if dev != "cuda" or not sel:
        why = "this file is not a GPU run" if dev != "cuda" else "no fp16 batch-8 AF-ResNet50 T=12 compact rows"
        out.append({"target": "realised ratio ≥ 0.9 (AF-ResNet50 T=12, r∈{0.25,0.4}, batch 8, fp16, GPU)",
                    "status": "not measured", "detail": why})
    else:
        best = {}
        for r in sel:
            if r["ratio"] not in best or r["realised_ratio"] > best[r["ratio"]]["realised_ratio"]:
                best[r["ratio"]] = r
        ok = all(b["realised_ratio"] >= 0.9 for b in best.values()) and len(best) == 2
        detail = "; ".join(f"r={k}: {v['realised_ratio']:.3f} ({v['label']})" for k, v in sorted(best.items()))
        out.append({"target": "realised ratio ≥ 0.9 (AF-ResNet50 T=12, r∈{0.25,0.4}, batch 8, fp16, GPU)",
                    "status": "met" if ok else "missed", "detail": detail})
    # 2. AF-ResNet50 T=12 r=0.4 latency below TSM-ResNet50 T=8 (same batch/precision, best backend of each)
    found = False
    for prec in sorted({r["precision"] for r in rows}):
        for b in sorted({r["batch"] for r in rows}):
            af = best_rows(doc, "af_resnet50", 12, prec, b, ratio=0.4)
            tsm = best_rows(doc, "tsm_resnet50", 8, prec, b)
            if af and tsm:
                found = True
                a, t = af["latency_ms"]["p50"], tsm["latency_ms"]["p50"]
                out.append({"target": f"AF-ResNet50 T=12 r=0.4 faster than TSM-ResNet50 T=8 ({prec}, batch {b})",
                            "status": "met" if a < t else "missed",
                            "detail": f"{a:.2f} ms ({af['label']}) vs {t:.2f} ms ({tsm['label']}): "
                                      f"{t / a:.3f}× {'faster' if a < t else 'slower'}"
                                      if a < t else f"{a:.2f} ms ({af['label']}) vs {t:.2f} ms ({tsm['label']}): "
                                                    f"{a / t:.3f}× slower"})
    if not found:
        out.append({"target": "AF-ResNet50 T=12 r=0.4 faster than TSM-ResNet50 T=8", "status": "not measured",
                    "detail": "this file lacks AF-ResNet50 T=12 r=0.4 or TSM-ResNet50 T=8 rows"})
    # 3. AF-MobileNetV3 T=12 batch 1 vs the ResNet variants (reported)
    for prec in sorted({r["precision"] for r in rows}):
        mb = [r for r in rows if _ok(r) and r["model"] == "af_mobilenetv3" and r["frames"] == 12 and r["batch"] == 1
              and r["precision"] == prec]
        if not mb:
            continue
        parts = []
        for r in sorted(mb, key=lambda r: (r.get("ratio") or 0, r["label"])):
            if r["backend"] in ("masked",) or r.get("ratio") in (0.4, 0.5):
                parts.append(f"{r['label']} r={r.get('ratio')}: {r['latency_ms']['p50']:.2f} ms")
        for name, T in (("af_resnet50", 12), ("tsm_resnet50", 8), ("tsm_resnet50", 16), ("tsn_resnet50", 8)):
            best = best_rows(doc, name, T, prec, 1)
            if best:
                parts.append(f"best {_PRETTY.get(name, name)} T={T}: {best['latency_ms']['p50']:.2f} ms "
                             f"({best['label']}{'' if best.get('ratio') is None else ' r=' + str(best['ratio'])})")
        out.append({"target": f"AF-MobileNetV3 T=12 batch 1 vs ResNet variants ({prec})", "status": "reported",
                    "detail": "; ".join(parts)})
    return out


def format_markdown(doc: dict, plots: list[str] | None = None) -> str:
    """The results page: environment, command, the table of every row, skipped rows with reasons, targets."""
    env = doc.get("environment", {})
    lines = [f"# Model benchmark — {env.get('device')} (`{env.get('device_slug')}`)", "",
             f"Generated by `afnet_edge.bench` from `{doc.get('_json_name', 'results JSON')}`; do not edit by hand.",
             "", "```", doc.get("command", ""), "```", ""]
    facts = [("created", doc.get("created")), ("git commit", f"{env.get('git_commit')}"
                                                             f"{' (dirty tree)' if env.get('git_dirty') else ''}"),
             ("torch", env.get("torch")), ("CUDA / driver / cuDNN",
                                          f"{env.get('cuda')} / {env.get('driver')} / {env.get('cudnn')}"
                                          if env.get("device_type") == "cuda" else "– (CPU run)"),
             ("TensorRT", env.get("tensorrt")), ("ONNX Runtime", env.get("onnxruntime")),
             ("CPU", f"{env.get('cpu_model')}, {env.get('cpu_affinity') or env.get('cpu_count')} cores visible, "
                     f"torch threads {env.get('torch_threads')}"),
             ("load average before → after",
              f"{_fmt_load((doc.get('load_average') or {}).get('before'))} → "
              f"{_fmt_load((doc.get('load_average') or {}).get('after'))}"),
             ("timing", f"{doc['timing'].get('method')}; warm-up {doc['timing'].get('warmup')}, "
                        f"{doc['timing'].get('repeats')} runs{' (--quick)' if doc['timing'].get('quick') else ''}; "
                        f"{doc['timing'].get('inputs')}; order: {doc['timing'].get('order', 'each case back to back')}"),
             ("selection", doc["timing"].get("selection"))]
    if env.get("env_vars"):
        facts.append(("environment variables", ", ".join(f"`{k}={v}`" for k, v in env["env_vars"].items())))
    if env.get("gpu_state"):
        facts.append(("GPU state (read only)", ", ".join(f"{k}={v}" for k, v in env["gpu_state"].items())))
    if env.get("jetson"):
        js = env["jetson"]
        facts.append(("Jetson", f"{js.get('module')}, L4T {js.get('tegra_release', {}).get('l4t')}, JetPack "
                                f"{js.get('jetpack')}, nvpmodel {js.get('nvpmodel')}"))
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts] + [""]
    if env.get("device_type") == "cpu":
        la = (doc.get("load_average") or {}).get("before") or [0]
        cores = env.get("cpu_affinity") or env.get("cpu_count") or 1
        if la and la[0] > 0.5 * cores:
            lines += [f"**Shared, loaded CPU**: the 1-minute load average ({la[0]:.1f}) exceeded half of the "
                      f"{cores} visible cores when the run started; other processes competed for the cores, so "
                      f"absolute times are inflated and noisy (see p90 and the per-row load). Ratios between rows "
                      f"measured close in time are more robust than absolute numbers.", ""]
    ce = doc.get("ceilings")
    if ce:
        items = [f"{k} = {_fmt(v)}" for k, v in ce.items() if isinstance(v, float)]
        lines += [f"Measured ceilings (micro-benchmarks): {', '.join(items)}.", ""]
    lines += ["## Results", "",
              "p50/p90: latency of one batch (ms). clips/s = batch / p50. Official GFLOPs: spec §9 accounting per clip "
              "(masked rows: F(1), every focal frame). Executed GMACs: conv/linear MACs the code runs per clip. "
              "Speed-up and realised ratio against the masked run of the same model, T, precision, batch and mode; "
              "FLOPs-implied = F(1)/F(r); realised ratio = speed-up / FLOPs-implied from the medians, "
              "realised (min) the same from the fastest run of each (more robust on a loaded machine); realised vs own "
              "r=1: the same backend at r=1 as the anchor (what skipping buys inside one implementation).", "",
              "| model | T | backend | prec | batch | r | p50 ms | p90 ms | clips/s | peak MiB (torch: live activations; ORT: RSS growth) | official GFLOPs "
              "| executed GMACs | speed-up vs masked | FLOPs-implied | realised ratio | realised (min) | realised vs own r=1 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc.get("rows", []):
        if not _ok(r):
            continue
        mem = r.get("memory") or {}
        peak = mem.get("cuda_peak_over_resident_mib", mem.get("peak_activation_mib", mem.get("peak_rss_delta_mib")))
        fl = r.get("flops") or {}
        lines.append(
            f"| {_PRETTY.get(r['model'], r['model'])} | {r['frames']} | {r['label']} | {r['precision']} | {r['batch']} "
            f"| {_fmt(r.get('ratio'))} | {_fmt(r['latency_ms']['p50'])} | {_fmt(r['latency_ms']['p90'])} "
            f"| {_fmt(r['throughput_clips_s'])} | {_fmt(peak, 1)} | {_fmt(fl.get('official_gflops'))} "
            f"| {_fmt(fl.get('executed_gmacs'))} | {_fmt(r.get('speedup_vs_masked'), 3)} "
            f"| {_fmt(r.get('flops_implied_speedup'), 3)} | {_fmt(r.get('realised_ratio'), 3)} "
            f"| {_fmt(r.get('realised_ratio_min'), 3)} | {_fmt(r.get('realised_ratio_vs_r1'), 3)} |")
    skipped = [r for r in doc.get("rows", []) if r.get("status") == "skipped"]
    if skipped:
        lines += ["", "## Skipped", "", "| model | T | backend | prec | batch | r | reason |", "|---|---|---|---|---|---|---|"]
        for r in skipped:
            lines.append(f"| {_PRETTY.get(r['model'], r['model'])} | {r['frames']} | {r['label']} | {r['precision']} "
                         f"| {r['batch']} | {_fmt(r.get('ratio'))} | {str(r.get('reason')).replace('|', '/')} |")
    checks = [r for r in doc.get("rows", []) if _ok(r) and ("check_max_abs_diff_vs_masked" in r
                                                            or "check_max_abs_diff_vs_export_reference" in r)]
    if checks:
        worst = max(max(r.get("check_max_abs_diff_vs_masked", 0), r.get("check_max_abs_diff_vs_export_reference", 0))
                    for r in checks)
        lines += ["", f"Correctness alongside timing: the largest |logit difference| of a timed compact/ORT run against "
                      f"its reference (masked run on the same input, or the export's PyTorch output) is {worst:.2e}.",
                  ""]
    lines += ["", "## Targets", "", "| target | status | detail |", "|---|---|---|"]
    for t in targets(doc):
        lines.append(f"| {t['target']} | {t['status']} | {t['detail']} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in plots]
    return "\n".join(lines) + "\n"


def _fmt_load(la) -> str:
    return "–" if not la else " / ".join(f"{x:.2f}" for x in la)


def make_plots(doc: dict, out_dir: str, name: str) -> list[str]:
    """PNG plots: latency vs ratio per backend (one panel per model/T/precision/batch, with the masked anchor, the
    FLOPs-ideal curve and the dense baselines), and AFNet vs TSM at equal frames and at equal latency."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plots need matplotlib (`pip install matplotlib`)") from e
    rows = [r for r in doc.get("rows", []) if _ok(r)]
    dev = (doc.get("environment") or {}).get("device_slug", "")
    paths = []
    groups = sorted({(r["model"], r["frames"], r["precision"], r["batch"]) for r in rows
                     if r.get("ratio") is not None and r["backend"] != DENSE})
    if groups:
        n = len(groups)
        cols = min(3, n)
        rws = math.ceil(n / cols)
        fig, axes = plt.subplots(rws, cols, figsize=(5.2 * cols, 3.9 * rws), squeeze=False)
        for ax, (model, T, prec, b) in zip(axes.flat, groups):
            sel = [r for r in rows if (r["model"], r["frames"], r["precision"], r["batch"]) == (model, T, prec, b)]
            for label in sorted({r["label"] for r in sel if r.get("ratio") is not None}):
                pts = sorted((r["ratio"], r["latency_ms"]["p50"]) for r in sel
                             if r["label"] == label and r.get("ratio") is not None)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            masked = [r for r in sel if r["backend"] == "masked" and r["mode"] == "eager"]
            if masked:
                m = masked[0]
                ax.axhline(m["latency_ms"]["p50"], color="k", ls="--", lw=1, label="masked (eager)")
                fl = m["flops"]
                if fl.get("official_gflops_r0") is not None:
                    xs = [i / 20 for i in range(1, 21)]
                    ideal = [m["latency_ms"]["p50"] * (fl["official_gflops_r0"] + (fl["official_gflops_r1"]
                             - fl["official_gflops_r0"]) * x) / fl["official_gflops_r1"] for x in xs]
                    ax.plot(xs, ideal, color="grey", ls=":", lw=1, label="FLOPs-ideal from masked")
            for base in ("tsm_resnet50", "tsn_resnet50"):
                for Tb in sorted({r["frames"] for r in rows if r["model"] == base}):
                    br = best_rows(doc, base, Tb, prec, b)
                    if br and model.startswith("af_resnet"):
                        ax.axhline(br["latency_ms"]["p50"], ls="-.", lw=1, color="tab:red" if base.startswith("tsm")
                                   else "tab:brown", alpha=0.7, label=f"{_PRETTY[base]} T={Tb} (best)")
            ax.set_title(f"{_PRETTY.get(model, model)} T={T} {prec} batch {b}", fontsize=9)
            ax.set_xlabel("selection ratio r")
            ax.set_ylabel("p50 latency (ms)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        fig.suptitle(f"Latency vs ratio — measured on {dev}", fontsize=10)
        fig.tight_layout()
        p = os.path.join(out_dir, f"{name}_latency_vs_ratio.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    # AFNet vs TSM: equal frames (bars) and equal latency (frames per clip vs latency)
    combos = sorted({(r["precision"], r["batch"]) for r in rows})
    if any(r["model"].startswith(("tsm", "tsn")) for r in rows) and any(r["model"].startswith("af_") for r in rows):
        fig, axes = plt.subplots(len(combos), 2, figsize=(11, 3.9 * len(combos)), squeeze=False)
        for (prec, b), (ax1, ax2) in zip(combos, axes):
            frames = sorted({r["frames"] for r in rows if r["precision"] == prec and r["batch"] == b})
            labels, vals, colors = [], [], []
            for T in frames:
                for model in ("af_resnet50", "af_mobilenetv3", "tsm_resnet50", "tsn_resnet50"):
                    ratios = [None] if not model.startswith("af_") else [0.4, 0.5, 1.0]
                    for r in ratios:
                        br = best_rows(doc, model, T, prec, b, ratio=r,
                                       backends=COMPACT_BACKENDS if r is not None else None)
                        if br:
                            labels.append(f"{_PRETTY[model]}\nT={T}{'' if r is None else f' r={r}'}")
                            vals.append(br["latency_ms"]["p50"])
                            colors.append("tab:blue" if model.startswith("af_") else "tab:red")
            ax1.bar(range(len(vals)), vals, color=colors)
            ax1.set_xticks(range(len(vals)))
            ax1.set_xticklabels(labels, fontsize=6, rotation=60, ha="right")
            ax1.set_ylabel("p50 latency (ms), best backend")
            ax1.set_title(f"Latency by model, grouped by frames T (equal T side by side) — {prec} batch {b}",
                          fontsize=9)
            ax1.grid(axis="y", alpha=0.3)
            for model, marker in (("af_resnet50", "o"), ("af_mobilenetv3", "s"), ("tsm_resnet50", "^"),
                                  ("tsn_resnet50", "v")):
                pts = []
                for T in frames:
                    for r in ([None] if not model.startswith("af_") else sorted({x.get("ratio") for x in rows
                                                                                 if x["model"] == model
                                                                                 and x.get("ratio") is not None})):
                        br = best_rows(doc, model, T, prec, b, ratio=r,
                                       backends=COMPACT_BACKENDS if r is not None else None)
                        if br:
                            pts.append((br["latency_ms"]["p50"], T, r))
                if pts:
                    ax2.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=_PRETTY[model])
                    for lat, T, r in pts:
                        if r is not None:
                            ax2.annotate(f"r={r}", (lat, T), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax2.set_xlabel("p50 latency (ms), best backend")
            ax2.set_ylabel("frames looked at per clip (T)")
            ax2.set_title(f"Equal latency: frames per clip vs latency — {prec} batch {b}", fontsize=9)
            ax2.grid(alpha=0.3)
            ax2.legend(fontsize=7)
        fig.suptitle(f"AFNet vs TSM — measured on {dev}", fontsize=10)
        fig.tight_layout()
        p = os.path.join(out_dir, f"{name}_afnet_vs_tsm.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def write_outputs(doc: dict, out_dir: str, name: str, plots: bool = True) -> dict:
    """Write ``<name>.json``, ``<name>.md`` and the plots into ``out_dir``; returns ``{"json", "md", "plots"}``."""
    os.makedirs(out_dir, exist_ok=True)
    jpath = os.path.join(out_dir, f"{name}.json")
    doc["_json_name"] = os.path.basename(jpath)
    with open(jpath, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    pngs: list[str] = []
    note = None
    if plots:
        try:
            pngs = make_plots(doc, out_dir, name)
        except ImportError as e:
            note = str(e)
    md = format_markdown(doc, pngs)
    if note:
        md += f"\nPlots skipped: {note}\n"
    mpath = os.path.join(out_dir, f"{name}.md")
    with open(mpath, "w") as f:
        f.write(md)
    return {"json": jpath, "md": mpath, "plots": pngs}


# ------------------------------------------------------------------------------------------------------ profile
# Prototype formulations of three pure-PyTorch fused ops, used ONLY by `afnet-edge bench --profile` to measure what a
# change to afnet_edge.kernels.reference would buy (the models never call these). Each falls back to the reference
# where its shortcut does not apply, and the profile checks their outputs against the reference.
def proto_ample_fuse_pool(xl: torch.Tensor, xb: torch.Tensor, **_) -> torch.Tensor:
    """``mean(up(xl) + xb)`` = ``mean(xl) + mean(xb)`` when ``up`` is nearest upsampling by an integer factor (every
    low-resolution pixel is repeated equally often): no upsampled map is materialised. ``(N, C)``."""
    from .kernels import reference
    (h, w), (H, W) = xl.shape[-2:], xb.shape[-2:]
    if H % h or W % w:
        return reference.ample_fuse_pool(xl, xb)
    return xl.mean(dim=(2, 3)) + xb.mean(dim=(2, 3))


def proto_ample_fuse_blend(xl: torch.Tensor, xb: torch.Tensor, a: torch.Tensor, relu: bool, **_) -> torch.Tensor:
    """``act(a·up(xl) + (1−a)·xb)`` with ``up`` expressed as a broadcast over 6-D views (integer factors): one output
    allocation, no upsampled map, ReLU in place. Same arithmetic as the reference (products, then one sum)."""
    from .kernels import reference
    n, c, H, W = xb.shape
    h, w = xl.shape[-2:]
    if H % h or W % w:
        return reference.ample_fuse_blend(xl, xb, a, relu)
    a6 = a.view(n, c, 1, 1, 1, 1)
    out = (a6 * xl.reshape(n, c, h, 1, w, 1)) + ((1 - a6) * xb.reshape(n, c, h, H // h, w, W // w))
    out = out.view(n, c, H, W)
    return out.relu_() if relu else out


def proto_focal_scatter(residual: torch.Tensor, y: torch.Tensor, index: torch.Tensor, const, relu: bool, *,
                        inplace: bool = False, **_) -> torch.Tensor:
    """Reference semantics computed in place: the selected rows ``residual[index] + y`` first (K frames), then
    ``+ const``, the row copy and the ReLU in place on one full-size buffer — ``residual`` itself when ``inplace``
    (the model allows it from the second focal block on), else a fresh ``residual + const``. Two full passes and at
    most one allocation, against three passes and three allocations (plus a copy back when ``inplace``) in
    ``ops("torch")``. Index values are trusted (they come from ``select_frames``)."""
    sel = residual.index_select(0, index) + y if index.numel() > 0 else None
    if inplace and not torch.is_grad_enabled():
        base = residual.add_(const.unsqueeze(0)) if const is not None else residual
    else:
        base = residual + const.unsqueeze(0) if const is not None else residual.clone()
    if sel is not None:
        base.index_copy_(0, index, sel)
    return base.relu_() if relu else base


def _proto_ops():
    from types import SimpleNamespace
    from .kernels import ops
    t = ops("torch")
    return SimpleNamespace(name="torch+proto", focal_gather=t.focal_gather, focal_scatter=proto_focal_scatter,
                           ample_fuse_pool=proto_ample_fuse_pool, ample_fuse_blend=proto_ample_fuse_blend,
                           select_frames=t.select_frames)


class _Timed:
    """Accumulates wall time per category while installed (CPU: ops are synchronous, so wall time is op time)."""

    def __init__(self):
        self.acc: dict = {}
        self.calls: dict = {}

    def wrap(self, fn, cat: str):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.acc[cat] = self.acc.get(cat, 0.0) + (time.perf_counter() - t0) * 1e3
                self.calls[cat] = self.calls.get(cat, 0) + 1
        return timed


def _minor_faults() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def profile_compact(model_name: str = "af_resnet50", frames: int = 12, size: int = 224, batch: int = 1,
                    ratios=(0.25, 0.5, 1.0), repeats: int = 5, seed: int = 0, top_ops: int = 12,
                    progress: bool = True) -> dict:
    """Where the time of the compact path goes on the CPU, and what the prototype ops would change.

    For masked and for compact at each ratio (pure-PyTorch ops, ``topk``), interleaved over ``repeats`` rounds:
    end-to-end latency (min/median), minor page faults per forward, a breakdown of the forward into focal bodies,
    focal residuals, gather, scatter, fusion pool, fusion blend, frame selection, constant-map lookups and the rest;
    the same for compact with the prototype ops (:func:`proto_ample_fuse_pool`, :func:`proto_ample_fuse_blend`,
    :func:`proto_focal_scatter`), whose logits are compared with the masked model's; the top aten ops by self CPU time
    (``torch.profiler``) of masked and compact at the first ratio; and the cost of the constant-map cache key.
    """
    import afnet_edge.models.common as common
    from .layers.focal import FocalBlock
    from tqdm import tqdm
    device = torch.device("cpu")
    model = _build_model(model_name, frames, GridSpec(seed=seed))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, frames, 3, size, size, generator=g)
    configs = [("masked", None, False)] + [("compact", r, False) for r in ratios] + \
              [("compact+proto", r, True) for r in ratios]
    results = {c[0] + ("" if c[1] is None else f" r={c[1]:g}"): {"latency_ms": [], "faults": [], "components": []}
               for c in configs}
    timer = _Timed()
    orig_ops = common.ops
    blocks = [m for m in model.modules() if isinstance(m, FocalBlock)]
    saved = []

    def install(proto: bool):
        from .kernels import ops as ops_fn
        base = _proto_ops() if proto else ops_fn("torch")
        from types import SimpleNamespace
        wrapped = SimpleNamespace(name=base.name, **{n: timer.wrap(getattr(base, n), n) for n in
                                                     ("focal_gather", "focal_scatter", "ample_fuse_pool",
                                                      "ample_fuse_blend", "select_frames")})
        common.ops = lambda backend="auto": wrapped
        for b in blocks:
            saved.append(b)
            b.body = timer.wrap(type(b).body.__get__(b), "focal body")
            b.residual = timer.wrap(type(b).residual.__get__(b), "focal residual")
            b.constant_map = timer.wrap(type(b).constant_map.__get__(b), "constant maps (cache lookup)")

    def uninstall():
        common.ops = orig_ops
        for b in blocks:
            for n in ("body", "residual", "constant_map"):
                b.__dict__.pop(n, None)

    refs = {}
    with torch.no_grad():
        for r in ratios:
            model.configure(execution="masked", selection="topk", ratio=r, kernels="torch")
            refs[r] = model(x).logits
    maxdiff: dict = {}
    bar = tqdm(range(repeats), desc="profile", disable=not progress, file=sys.stderr)
    try:
        for _ in bar:
            for name, r, proto in configs:
                key = name + ("" if r is None else f" r={r:g}")
                model.configure(execution="masked" if r is None else "compact", selection="topk",
                                ratio=1.0 if r is None else r, kernels="torch")
                install(proto)
                try:
                    with torch.no_grad():
                        out = model(x)  # warm (constant maps, allocator)
                        timer.acc.clear()
                        timer.calls.clear()
                        f0 = _minor_faults()
                        t0 = time.perf_counter()
                        out = model(x)
                        dt = (time.perf_counter() - t0) * 1e3
                        f1 = _minor_faults()
                finally:
                    uninstall()
                res = results[key]
                res["latency_ms"].append(dt)
                res["faults"].append(f1 - f0)
                comp = dict(timer.acc)
                comp["other (stem, ample branch, navigation, shifts/masks, fusion block, layer4, head)"] = \
                    dt - sum(comp.values())
                res["components"].append(comp)
                if r is not None:
                    maxdiff[key] = max(maxdiff.get(key, 0.0), float((out.logits - refs[r]).abs().max()))
    finally:
        uninstall()
    summary = {}
    for key, res in results.items():
        best = min(range(len(res["latency_ms"])), key=lambda i: res["latency_ms"][i])
        summary[key] = {"latency_min_ms": res["latency_ms"][best],
                        "latency_median_ms": statistics.median(res["latency_ms"]),
                        "minor_page_faults_median": statistics.median(res["faults"]),
                        "components_of_fastest_ms": res["components"][best],
                        "max_abs_logit_diff_vs_masked": maxdiff.get(key)}
    # top aten ops
    tops = {}
    for name, r in (("masked", None), ("compact", ratios[0])):
        model.configure(execution="masked" if r is None else "compact", selection="topk",
                        ratio=1.0 if r is None else r, kernels="torch")
        with torch.no_grad():
            model(x)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                model(x)
        ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top_ops]
        tot = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1.0
        tops[name + ("" if r is None else f" r={r:g}")] = [
            {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / tot,
             "calls": e.count} for e in ev]
    # first forward at a compact batch size never seen before (threshold selection changes it clip by clip): any
    # shape-keyed cost (oneDNN primitive creation, allocator growth) shows as first-call minus second-call time
    new_k = []
    from .kernels.reference import topk_count
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
    # cost of the cache key of every focal block's constant map
    t0 = time.perf_counter()
    for _ in range(100):
        for b in blocks:
            b._state_key()
    key_ms = (time.perf_counter() - t0) * 1e3 / 100
    return {"schema": "afnet_edge.bench.profile/1", "kind": "measurement",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": collect_environment("cpu"),
            "config": {"model": model_name, "frames": frames, "size": size, "batch": batch, "ratios": list(ratios),
                       "repeats": repeats, "threads": torch.get_num_threads(), "selection": "topk",
                       "weights": f"random (seed {seed})"},
            "summary": summary, "rounds": results, "top_ops": tops,
            "state_key_ms_per_forward": key_ms, "focal_blocks": len(blocks), "new_compact_batch": new_k,
            "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


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
             "| configuration | min ms | median ms | minor page faults / forward | max abs Δlogit vs masked |",
             "|---|---|---|---|---|"]
    for k, v in doc["summary"].items():
        lines.append(f"| {k} | {v['latency_min_ms']:.0f} | {v['latency_median_ms']:.0f} | "
                     f"{v['minor_page_faults_median']:,.0f} | {_fmt(v['max_abs_logit_diff_vs_masked'])} |")
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


# ------------------------------------------------------------------------------------------------------ CLI
def _csv(kind, choices=None):
    def parse(text: str):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("must be a comma-separated list")
        out = []
        for s in items:
            try:
                v = kind(s)
            except (ValueError, argparse.ArgumentTypeError) as e:
                raise argparse.ArgumentTypeError(f"{s!r}: {e}") from None
            if choices is not None and v not in choices:
                raise argparse.ArgumentTypeError(f"{s!r} is not one of {', '.join(choices)}")
            out.append(v)
        return out
    return parse


def add_bench_args(p: argparse.ArgumentParser) -> None:
    from .cli_args import positive_int, ratio_arg
    from .models import list_models
    p.add_argument("--quick", action="store_true",
                   help="tiny CPU grid for CI (af_mobilenetv3 at 64², batch 1, r ∈ {0.25, 0.5}, masked vs "
                        "compact-torch, 2 warm-up + 5 runs); explicit options override its choices")
    p.add_argument("--models", type=_csv(str, list_models()), default=None, help="comma-separated model names")
    p.add_argument("--frames", type=_csv(positive_int), default=None, help="T of the AFNet models (default: 12)")
    p.add_argument("--baseline-frames", type=_csv(positive_int), default=None,
                   help="T of the dense baselines (default: 8,16)")
    p.add_argument("--ratios", type=_csv(ratio_arg), default=None, help="selection ratios (default: 0.25,0.4,0.5,1.0)")
    p.add_argument("--batches", type=_csv(positive_int), default=None, help="batch sizes (default: 1 on CPU, 1,8,32 "
                                                                            "on CUDA)")
    p.add_argument("--backends", type=_csv(str, BACKENDS), default=None,
                   help=f"subset of {','.join(BACKENDS[:-1])} (trt comes with --engine)")
    p.add_argument("--modes", type=_csv(str, MODES), default=None,
                   help="eager,cudagraph,compile (default: eager on CPU, all three on CUDA)")
    p.add_argument("--precisions", type=_csv(str, tuple(PRECISIONS)), default=None,
                   help="fp32,fp16,bf16 (default: fp32 on CPU, fp16,fp32 on CUDA)")
    p.add_argument("--size", type=positive_int, default=None, help="input height = width (default: 224)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    p.add_argument("--warmup", type=positive_int, default=None, help="warm-up runs per case (CPU 3, CUDA 20)")
    p.add_argument("--repeats", type=positive_int, default=None, help="timed runs per case (CPU 30, CUDA 100)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch (and ORT) CPU threads")
    p.add_argument("--engine", action="append", default=[], metavar="ENGINE",
                   help="TensorRT engine to time (repeatable; its sidecar gives model, T, ratio, batch, precision)")
    p.add_argument("--checkpoint", default=None, help="weights to load (default: random weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    p.add_argument("--masked-per-ratio", action="store_true",
                   help="time the masked anchor at every ratio (its cost does not depend on r)")
    p.add_argument("--channels-last", action="store_true", help="model weights in channels_last memory format")
    p.add_argument("--compile-mode", default="default",
                   choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"))
    p.add_argument("--no-ceilings", action="store_true", help="skip the compute/bandwidth micro-benchmarks")
    p.add_argument("--interleave", choices=("auto", "on", "off"), default="auto",
                   help="time the eager cases of one model/T/precision/batch round-robin, so that load drift on a "
                        "shared machine hits them alike (auto: on for CPU, off for CUDA)")
    p.add_argument("--out", default=None, help="output folder (default: benchmarks/results/<device slug>)")
    p.add_argument("--name", default=None, help="file stem of the outputs (default: models, or quick)")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--render", default=None, metavar="RESULTS_JSON",
                   help="measure nothing: re-derive and re-write the markdown and plots of an existing results file "
                        "(next to it)")
    p.add_argument("--profile", action="store_true",
                   help="instead of the grid: profile the compact path on the CPU (first model, T, size, batch; "
                        "masked vs compact vs compact with prototype ops; page faults; top ops); writes "
                        "<out>/<name>.json and .md (name default: profile_<model>)")


def spec_from_args(args) -> GridSpec:
    """Grid from parsed ``afnet-edge bench`` options (device-dependent defaults, ``--quick`` presets)."""
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    cuda = dev.type == "cuda"
    base = GridSpec(device=str(dev))
    if cuda:
        base.batches, base.modes, base.precisions = [1, 8, 32], list(MODES), ["fp16", "fp32"]
        base.warmup, base.repeats = 20, 100
    if args.quick:
        for k, v in QUICK.items():
            setattr(base, k, list(v) if isinstance(v, list) else v)
        base.quick, base.ceilings = True, False
    for k in ("models", "frames", "baseline_frames", "ratios", "batches", "backends", "modes", "precisions", "size",
              "warmup", "repeats", "threads", "checkpoint"):
        v = getattr(args, k)
        if v is not None:
            setattr(base, k, v)
    from .flops import MIN_SIZE, SIZE_MULTIPLE
    if base.size < MIN_SIZE or base.size % SIZE_MULTIPLE:
        raise ValueError(f"--size must be a multiple of {SIZE_MULTIPLE} that is at least {MIN_SIZE}, got {base.size}")
    if "trt" in base.backends and not args.engine:
        raise ValueError("--backends trt needs --engine ENGINE (a TensorRT engine built by `afnet-edge export --trt`)")
    base.backends = [b for b in base.backends if b != "trt"]
    base.engines = list(args.engine)
    base.seed, base.masked_per_ratio, base.channels_last = args.seed, args.masked_per_ratio, args.channels_last
    base.compile_mode, base.progress = args.compile_mode, not args.no_progress
    if args.no_ceilings:
        base.ceilings = False
    base.interleave = (args.interleave == "on") or (args.interleave == "auto" and not cuda)
    if not base.quick and base.repeats < 30:
        print(f"afnet-edge bench: note: {base.repeats} repeats (< 30) recorded in the results", file=sys.stderr)
    if base.checkpoint and not os.path.isfile(base.checkpoint):
        raise FileNotFoundError(f"--checkpoint {base.checkpoint}: file not found")
    return base


def canonical_argv(args) -> list[str]:
    """The options of a parsed ``afnet-edge bench`` command line that differ from their defaults, in a form that
    reproduces the run (recorded as the results' ``command``)."""
    parser = getattr(args, "_parser", None)
    if parser is None:
        return []
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "func", "_parser"):
            continue
        v = getattr(args, action.dest, None)
        if v == action.default or v is None:
            continue
        opt = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            out.append(opt)
        elif isinstance(action, argparse._AppendAction):
            for item in v:
                out += [opt, str(item)]
        elif isinstance(v, list):
            out += [opt, ",".join(_fmt_arg(x) for x in v)]
        else:
            out += [opt, _fmt_arg(v)]
    return out


def _fmt_arg(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cmd_profile(spec: GridSpec, args, argv: list[str], out: str) -> int:
    if torch.device(spec.device).type != "cpu":
        raise ValueError("--profile measures the CPU path; use --device cpu (GPU: use the grid and nsys)")
    threads = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        ratios = [r for r in spec.ratios] if spec.ratios else [0.25, 0.5, 1.0]
        doc = profile_compact(spec.models[0], spec.frames[0], spec.size, spec.batches[0], tuple(ratios),
                              repeats=max(1, min(spec.repeats, 10)) if not args.repeats else args.repeats,
                              seed=spec.seed, progress=spec.progress)
    finally:
        torch.set_num_threads(threads)
    doc["command"] = "afnet-edge bench " + " ".join(shlex.quote(a) for a in argv)
    name = args.name or f"profile_{spec.models[0]}"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    md = format_profile(doc).replace("\n\n", f"\n\n```\n{doc['command']}\n```\n\n", 1)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {os.path.join(out, name)}.json and .md")
    return 0


def _cmd_render(path: str, plots: bool) -> int:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--render {path}: file not found")
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"--render {path}: not an afnet_edge.bench results file (schema {doc.get('schema')!r})")
    derive(doc)
    probs = validate_results(doc)
    name = os.path.splitext(os.path.basename(path))[0]
    paths = write_outputs(doc, os.path.dirname(os.path.abspath(path)), name, plots=plots)
    print(f"re-rendered {paths['md']}" + (f" and {len(paths['plots'])} plot(s)" if paths["plots"] else ""))
    if probs:
        print("afnet-edge bench: results failed validation:\n  " + "\n  ".join(probs), file=sys.stderr)
        return 1
    return 0


def _cmd_bench(args) -> int:
    if args.render:
        return _cmd_render(args.render, not args.no_plots)
    spec = spec_from_args(args)
    argv = canonical_argv(args)
    out = args.out or os.path.join(DEFAULT_RESULTS, device_slug(spec.device, spec.threads))
    if args.profile:
        return _cmd_profile(spec, args, argv, out)
    name = args.name or ("quick" if spec.quick else "models")
    doc = run_grid(spec, argv)
    probs = validate_results(doc)
    paths = write_outputs(doc, out, name, plots=not args.no_plots)
    ok = sum(1 for r in doc["rows"] if r["status"] == "ok")
    print(f"{ok} measured, {len(doc['rows']) - ok} skipped; wrote {paths['json']}, {paths['md']}"
          + (f" and {len(paths['plots'])} plot(s)" if paths["plots"] else ""))
    for r in doc["rows"]:
        if r["status"] == "ok":
            rr = f"  realised {r['realised_ratio']:.3f}" if "realised_ratio" in r else ""
            print(f"  {r['model']:15s} T={r['frames']:<3d} {r['label']:24s} {r['precision']} b={r['batch']:<3d} "
                  f"r={_fmt(r.get('ratio')):5s} p50 {r['latency_ms']['p50']:9.2f} ms{rr}")
        else:
            print(f"  {r['model']:15s} T={r['frames']:<3d} {r['label']:24s} skipped: {r['reason']}")
    if probs:
        print("afnet-edge bench: results failed validation:\n  " + "\n  ".join(probs), file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    """Add ``afnet-edge bench``."""
    p = sub.add_parser("bench", help="time models × backends × precisions × batches × ratios; write results JSON, "
                                     "markdown and plots under benchmarks/results/<device>/")
    add_bench_args(p)
    p.set_defaults(func=_cmd_bench, _parser=p)

