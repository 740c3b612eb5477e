"""Environment capture, read only: versions (torch, CUDA, cuDNN, driver, TensorRT, ONNX Runtime), hardware, load,
git commit, Jetson power/clock state, and the device slug that names ``benchmarks/results/<slug>/``."""
from __future__ import annotations

import os
import platform
import re
import subprocess

import torch

from .. import __version__, kernels

__all__ = ["parse_tegra_release", "parse_nvpmodel", "jetson_state", "jetson_slug", "device_slug",
           "collect_environment"]

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    return _run(["git", "-C", _REPO_ROOT, *args])


def collect_environment(device: str = "cpu") -> dict:
    """Versions and hardware: device, driver, CUDA, cuDNN, torch, TensorRT, ONNX Runtime, CPU model/threads, load,
    git commit, Jetson state. Read only."""
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
    try:
        env["extension"] = bool(kernels.extension_available())
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

