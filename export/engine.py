"""ONNX → serialised TensorRT engine, with a build log, a timing cache and a metadata sidecar.

``build_engine`` works with ``tensorrt`` (10.x/11.x, plugins supported) and with TensorRT for RTX (``tensorrt_rtx``,
portable graphs only; it builds on machines without a GPU, for the compute capabilities listed in ``rtx_targets``).

The sidecar ``<engine>.json`` records what the engine is for and where it can run: model, T, ratio, k, batch,
resolution, classes, flavour, precision, TensorRT module and version, plugin library version, the GPU it was built on
(or the RTX targets), input/output shapes and checksums. :mod:`afnet_edge.export.runtime` compares it with the
running system before deserialising, so a mismatch is a clear message instead of a TensorRT error.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time

from afnet_edge import __version__

from afnet_edge.models.registry import find_entry

from .onnx_export import GENERIC_KEYS, file_sha256, read_metadata
from .trt_backend import TensorRT, TensorRTError, gpu_info, load_plugins, load_tensorrt

SIDECAR_FORMAT = "afnet_edge-trt-engine/1"
PLUGIN_CHOICES = ("auto", "on", "off")
#: TensorRT for RTX targets used when no GPU is present (Turing cannot compile the fp32 GEMMs of the heads).
RTX_DEFAULT_TARGETS = ("SM80", "SM86", "SM89", "SM120")


def sidecar_path(engine_path: str) -> str:
    """``out.engine`` → ``out.engine.json``."""
    return engine_path + ".json"


def read_sidecar(engine_path: str) -> dict:
    """The sidecar of ``engine_path`` (FileNotFoundError naming how to recreate it when missing)."""
    path = sidecar_path(engine_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"engine metadata {path} not found: it is written next to the engine by "
                                f"`afnet-edge export --trt`; rebuild the engine (or pass check_sidecar=False)")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path} is not an afnet_edge engine sidecar (format {meta.get('format')!r}, expected "
                         f"{SIDECAR_FORMAT!r})")
    return meta


def _make_logger(trt, log_path: str | None, verbose: bool):
    mod = trt.module
    sev = mod.ILogger.Severity

    class BuildLogger(mod.ILogger):
        """Writes every message to the build log; keeps errors for the exception text."""

        def __init__(self):
            mod.ILogger.__init__(self)
            self.errors: list = []
            self._file = open(log_path, "w") if log_path else None

        def log(self, severity, msg):
            name = str(severity).split(".")[-1]
            if severity <= sev.ERROR:
                self.errors.append(msg)
            if self._file and (verbose or severity <= sev.INFO):
                self._file.write(f"[{name}] {msg}\n")
            if severity <= sev.WARNING and not self._file:
                print(f"[TensorRT {name}] {msg}")

        def close(self):
            if self._file:
                self._file.close()
                self._file = None

    return BuildLogger()


def build_engine(onnx_path: str, engine_path: str, *, fp16: bool = False, workspace_mib: int = 1024,
                 plugins: str = "auto", plugin_library: str | None = None, backend: str = "auto",
                 timing_cache: str | None = None, max_batch: int | None = None, log_path: str | None = None,
                 verbose: bool = False, rtx_targets=None) -> dict:
    """Build a TensorRT engine from an ONNX file written by :func:`~afnet_edge.export.onnx_export.export_onnx`.

    Args:
        onnx_path: the ONNX file (its ``afnet_edge.*`` metadata is required and copied into the sidecar).
        engine_path: output serialised engine (``.engine``/``.plan``); the sidecar goes to ``<engine>.json``.
        fp16: allow fp16 kernels (``BuilderFlag.FP16``; TensorRT for RTX builds strongly typed and refuses this).
        workspace_mib: builder workspace limit in MiB.
        plugins: ``"auto"``/``"on"``/``"off"`` — ``on`` requires the ONNX to be the ``plugin`` flavour and the plugin
            library to load; ``off`` requires ``portable``; ``auto`` follows the ONNX flavour.
        plugin_library: path of ``libafnet_edge_trt_plugins.so`` (else ``$AFNET_EDGE_TRT_PLUGINS`` / build folders).
        backend: ``"auto"``, ``"tensorrt"`` or ``"tensorrt_rtx"``.
        timing_cache: timing-cache file read before and written after the build (default
            ``<engine folder>/afnet_edge.timing.cache``; not used by TensorRT for RTX).
        max_batch: largest batch of the optimisation profile for dynamic-batch ONNX files (default: example batch).
        log_path: build log file (default ``<engine>.build.log``).
        verbose: also log TensorRT's VERBOSE messages.
        rtx_targets: TensorRT for RTX compute capabilities (names such as ``"SM86"``); default: the current GPU, or
            :data:`RTX_DEFAULT_TARGETS` without one.

    Returns the sidecar dict (also written to ``<engine>.json``).
    """
    if plugins not in PLUGIN_CHOICES:
        raise ValueError(f"plugins must be one of {PLUGIN_CHOICES}, got {plugins!r}")
    if isinstance(workspace_mib, bool) or not isinstance(workspace_mib, int) or workspace_mib < 1:
        raise ValueError(f"workspace must be a positive number of MiB, got {workspace_mib!r}")
    meta = read_metadata(onnx_path)
    if not meta:
        raise ValueError(f"{onnx_path} has no afnet_edge metadata: export it with `afnet-edge export MODEL --onnx`")
    entry = find_entry(meta.get("model"))
    if fp16 and entry is not None and entry.hooks.export.fp16_reason:
        raise ValueError(f"--fp16: {meta.get('model')} engines build in fp32: {entry.hooks.export.fp16_reason}")
    flavour = meta.get("flavour")
    if flavour == "plugin" and plugins == "off":
        raise ValueError(f"{onnx_path} is the plugin flavour but --plugins off was given: export with "
                         f"--flavour portable, or build with --plugins on|auto")
    if flavour == "portable" and plugins == "on":
        raise ValueError(f"{onnx_path} is the portable flavour (no plugin nodes) but --plugins on was given: export "
                         f"with --flavour plugin")
    parent = os.path.dirname(os.path.abspath(engine_path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"output folder {parent} does not exist")

    trt = load_tensorrt(backend)
    plugin_info = load_plugins(trt, plugin_library, meta.get("plugin_version") or None) \
        if flavour == "plugin" else None
    mod = trt.module
    log_path = log_path or engine_path + ".build.log"
    logger = _make_logger(trt, log_path, verbose)
    t0 = time.perf_counter()
    try:
        builder = mod.Builder(logger)
        network = builder.create_network(0)
        parser = mod.OnnxParser(network, logger)
        if not parser.parse_from_file(os.path.abspath(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise TensorRTError(f"TensorRT {trt.version} could not parse {onnx_path}: "
                                f"{errors[0] if errors else 'unknown error'} (log: {log_path})")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(mod.MemoryPoolType.WORKSPACE, workspace_mib << 20)
        if fp16:
            if not hasattr(mod.BuilderFlag, "FP16"):
                raise TensorRTError(f"{trt.name} {trt.version} builds strongly typed networks only and has no FP16 "
                                    f"builder flag: build fp32, or use tensorrt for --fp16")
            config.set_flag(mod.BuilderFlag.FP16)
        inp = network.get_input(0)
        shape = tuple(inp.shape)
        if meta.get("batch") == "dynamic" or shape[0] == -1:
            opt = int(meta.get("example_batch", 1))
            hi = max(opt, int(max_batch or opt))
            profile = builder.create_optimization_profile()
            rest = tuple(shape[1:])
            profile.set_shape(inp.name, (1,) + rest, (opt,) + rest, (hi,) + rest)
            config.add_optimization_profile(profile)
        gpu = gpu_info()
        targets = _configure_rtx(trt, config, gpu, rtx_targets)
        cache_path = _load_timing_cache(trt, config, timing_cache, engine_path)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise TensorRTError(f"TensorRT engine build failed: {logger.errors[-1] if logger.errors else 'no reason'}"
                                f" (log: {log_path})")
        with open(engine_path, "wb") as f:
            f.write(serialized)
        if cache_path:
            with open(cache_path, "wb") as f:
                f.write(config.get_timing_cache().serialize())
        io = {"inputs": [_tensor(network.get_input(i)) for i in range(network.num_inputs)],
              "outputs": [_tensor(network.get_output(i)) for i in range(network.num_outputs)]}
    finally:
        logger.close()

    keys = ("model", "num_frames", "num_classes", "num_navigation", "tsm", "ratio", "k", "selection", "batch",
            "example_batch", "height", "width", "flavour", "opset", "checkpoint", "checkpoint_sha256")
    sidecar = {
        "format": SIDECAR_FORMAT,
        **{k: meta.get(k) for k in keys},
        **{k: v for k, v in meta.items() if k not in keys and k not in GENERIC_KEYS},   # family entries (patch_size…)
        "max_batch": (max(int(meta.get("example_batch", 1)), int(max_batch or 0))
                      if meta.get("batch") == "dynamic" else meta.get("batch")),
        "precision": "fp16" if fp16 else "fp32",
        "tensorrt": {"module": trt.name, "version": trt.version},
        "plugin": ({**plugin_info.as_dict(), "library": os.path.basename(plugin_info.path)}
                   if plugin_info else None),
        "gpu": gpu,
        "rtx_targets": targets,
        **io,
        "workspace_mib": workspace_mib,
        "engine": os.path.basename(engine_path),
        "engine_sha256": file_sha256(engine_path),
        "onnx": os.path.basename(onnx_path),
        "onnx_sha256": file_sha256(onnx_path),
        "build_seconds": round(time.perf_counter() - t0, 2),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "afnet_edge_version": __version__,
    }
    with open(sidecar_path(engine_path), "w") as f:
        json.dump(sidecar, f, indent=2)
    return sidecar


def _tensor(t) -> dict:
    return {"name": t.name, "shape": [int(d) for d in t.shape], "dtype": str(t.dtype).split(".")[-1].lower()}


def _configure_rtx(trt: TensorRT, config, gpu: dict | None, targets) -> list | None:
    if trt.name != "tensorrt_rtx":
        return None
    mod = trt.module
    if targets is None:
        targets = ["CURRENT"] if gpu else list(RTX_DEFAULT_TARGETS)
    names = []
    for t in targets:
        key = str(t).upper().replace("_", "")
        if not hasattr(mod.ComputeCapability, key):
            known = [n for n in dir(mod.ComputeCapability) if n.startswith("SM") or n == "CURRENT"]
            raise ValueError(f"unknown TensorRT for RTX target {t!r}; expected one of {known}")
        names.append(key)
    config.num_compute_capabilities = len(names)
    for i, key in enumerate(names):
        config.set_compute_capability(getattr(mod.ComputeCapability, key), i)
    return names


def _load_timing_cache(trt: TensorRT, config, path: str | None, engine_path: str) -> str | None:
    if not hasattr(config, "create_timing_cache") or trt.name == "tensorrt_rtx":
        return None
    path = path or os.path.join(os.path.dirname(os.path.abspath(engine_path)), "afnet_edge.timing.cache")
    data = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, True)  # ignore_mismatch: a cache from another GPU/TensorRT is ignored, not fatal
    return path


def check_sidecar(sidecar: dict, trt: TensorRT | None, gpu: dict | None) -> None:
    """Raise TensorRTError when an engine described by ``sidecar`` cannot run on ``trt`` / ``gpu``."""
    built = sidecar.get("tensorrt") or {}
    if trt is not None:
        if built.get("module") and built["module"] != trt.name:
            raise TensorRTError(f"engine was built with {built['module']} but {trt.name} is running: engines of "
                                f"TensorRT and TensorRT for RTX are not interchangeable; rebuild with "
                                f"`afnet-edge export --trt` here")
        if built.get("version") and built["version"] != trt.version:
            raise TensorRTError(f"engine was built with {built.get('module', 'TensorRT')} {built['version']} but "
                                f"{trt.version} is running: serialised engines are tied to the exact TensorRT "
                                f"version; rebuild with `afnet-edge export --trt` on this system")
    if gpu is None:
        return
    targets = sidecar.get("rtx_targets")
    if targets and "CURRENT" not in targets:
        sm = "SM" + gpu["sm"][3:]
        if sm not in targets:
            raise TensorRTError(f"engine was built for {', '.join(targets)} but this GPU is {gpu['name']} "
                                f"({gpu['sm']}): rebuild with --rtx-targets {sm} or on this GPU")
        return
    built_gpu = sidecar.get("gpu")
    if built_gpu and built_gpu.get("compute_capability") != gpu["compute_capability"]:
        raise TensorRTError(f"engine was built on {built_gpu.get('name')} ({built_gpu.get('sm')}) but this GPU is "
                            f"{gpu['name']} ({gpu['sm']}): TensorRT engines are specific to the GPU architecture; "
                            f"rebuild with `afnet-edge export --trt` on this device")
