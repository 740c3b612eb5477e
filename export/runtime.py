"""TensorRT runtime for afnet_edge engines: :class:`TRTRunner` and :func:`predict_with_engine`.

The runner checks the engine's sidecar against the running TensorRT and GPU, loads the plugin library when the
engine has plugin layers, deserialises once, allocates device and pinned host buffers for every I/O tensor once,
and runs ``execute_async_v3`` on its own CUDA stream — optionally replaying a captured CUDA graph (static shapes make
that possible). Device memory goes through ``pycuda`` when installed, else NVIDIA's ``cuda-python``
(``cuda.bindings``); install one of them (``pip install afnet_edge[tensorrt]`` brings cuda-python).

For benchmarks (``afnet-edge bench --backend trt``): ``runner.set_input(clip)`` once, then time
``runner.launch()`` + ``runner.synchronize()`` (or use :meth:`TRTRunner.benchmark`, which times with CUDA events).
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from .engine import check_sidecar as check_engine_sidecar
from .engine import read_sidecar
from .onnx_export import clip_frames, file_sha256
from .trt_backend import TensorRTError, gpu_info, load_plugins, load_tensorrt


# ------------------------------------------------------------------------------------------------ GPU presence
NO_GPU = ("no usable CUDA GPU/driver here: a TensorRT engine runs only on an NVIDIA GPU (no CUDA driver or device "
          "found); without a GPU, check a portable ONNX export with `afnet-edge verify --onnx`")


def cuda_device_count() -> int:
    """Number of CUDA devices the NVIDIA driver reports (``cuDeviceGetCount`` through ``libcuda``), 0 without a driver
    or device. Needs neither TensorRT nor a Python CUDA binding, so a machine without a GPU is told so first."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
        except AttributeError:
            return 0
        return int(count.value)
    return 0


def require_gpu() -> None:
    """Raise :class:`TensorRTError` (a ValueError) when no CUDA device is present."""
    if cuda_device_count() < 1:
        raise TensorRTError(NO_GPU)


# ------------------------------------------------------------------------------------------------ CUDA back-ends
class _CudaPy:
    """pycuda back-end."""

    name = "pycuda"

    def __init__(self, device: int):
        import pycuda.driver as cuda
        self.cuda = cuda
        cuda.init()
        if cuda.Device.count() <= device:
            raise TensorRTError(f"no CUDA device {device} (found {cuda.Device.count()})")
        self.ctx = cuda.Device(device).retain_primary_context()
        self.ctx.push()
        self.stream = cuda.Stream()

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def malloc(self, nbytes: int):
        return self.cuda.mem_alloc(max(1, nbytes))

    def ptr(self, mem) -> int:
        return int(mem)

    def host_empty(self, shape, dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def htod(self, mem, host: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(mem, host, self.stream)

    def dtoh(self, host: np.ndarray, mem) -> None:
        self.cuda.memcpy_dtoh_async(host, mem, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def begin_capture(self) -> None:
        if not hasattr(self.stream, "begin_capture"):
            raise TensorRTError("this pycuda has no stream capture: install cuda-python for CUDA graphs, or run "
                                "without cuda_graph")
        self.stream.begin_capture()

    def end_capture(self):
        graph = self.stream.end_capture()
        return graph.instance()

    def launch_graph(self, graph_exec) -> None:
        graph_exec.launch(self.stream)

    def time_ms(self, fn, iterations: int) -> list:
        out = []
        for _ in range(iterations):
            a, b = self.cuda.Event(), self.cuda.Event()
            a.record(self.stream)
            fn()
            b.record(self.stream)
            b.synchronize()
            out.append(b.time_since(a))
        return out

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.pop()
            self.ctx = None


class _CudaBindings:
    """cuda-python (``cuda.bindings.runtime``) back-end."""

    name = "cuda-python"

    def __init__(self, device: int):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        self.rt = cudart
        count = self._ok(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if count <= device:
            raise TensorRTError(f"no CUDA device {device} (found {count})")
        self._ok(cudart.cudaSetDevice(device), "cudaSetDevice")
        self.stream = self._ok(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._host: list = []

    def _ok(self, res, what: str):
        err, *rest = res if isinstance(res, tuple) else (res,)
        if int(err) != 0:
            _, msg = self.rt.cudaGetErrorString(err)
            msg = msg.decode() if isinstance(msg, bytes) else str(msg)
            raise TensorRTError(f"{what} failed: {msg}" + (" (no usable CUDA GPU/driver here)" if int(err) in
                                                          (35, 100) else ""))
        return rest[0] if len(rest) == 1 else (tuple(rest) if rest else None)

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def malloc(self, nbytes: int):
        return self._ok(self.rt.cudaMalloc(max(1, nbytes)), "cudaMalloc")

    def ptr(self, mem) -> int:
        return int(mem)

    def host_empty(self, shape, dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        p = self._ok(self.rt.cudaMallocHost(max(1, nbytes)), "cudaMallocHost")
        self._host.append(p)
        import ctypes
        buf = (ctypes.c_byte * max(1, nbytes)).from_address(int(p))
        return np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def htod(self, mem, host: np.ndarray) -> None:
        self._ok(self.rt.cudaMemcpyAsync(int(mem), host.ctypes.data, host.nbytes,
                                         self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream), "cudaMemcpyAsync")

    def dtoh(self, host: np.ndarray, mem) -> None:
        self._ok(self.rt.cudaMemcpyAsync(host.ctypes.data, int(mem), host.nbytes,
                                         self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream), "cudaMemcpyAsync")

    def synchronize(self) -> None:
        self._ok(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def begin_capture(self) -> None:
        self._ok(self.rt.cudaStreamBeginCapture(self.stream,
                                                self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
                 "cudaStreamBeginCapture")

    def end_capture(self):
        graph = self._ok(self.rt.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        return self._ok(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch_graph(self, graph_exec) -> None:
        self._ok(self.rt.cudaGraphLaunch(graph_exec, self.stream), "cudaGraphLaunch")

    def time_ms(self, fn, iterations: int) -> list:
        a = self._ok(self.rt.cudaEventCreate(), "cudaEventCreate")
        b = self._ok(self.rt.cudaEventCreate(), "cudaEventCreate")
        out = []
        for _ in range(iterations):
            self._ok(self.rt.cudaEventRecord(a, self.stream), "cudaEventRecord")
            fn()
            self._ok(self.rt.cudaEventRecord(b, self.stream), "cudaEventRecord")
            self._ok(self.rt.cudaEventSynchronize(b), "cudaEventSynchronize")
            out.append(float(self._ok(self.rt.cudaEventElapsedTime(a, b), "cudaEventElapsedTime")))
        return out

    def close(self) -> None:
        for p in self._host:
            self.rt.cudaFreeHost(p)
        self._host = []


def cuda_backend(device: int = 0, prefer: str = "auto"):
    """The CUDA memory back-end: ``"pycuda"``, ``"cuda-python"`` or ``"auto"`` (pycuda, then cuda-python)."""
    order = {"auto": ("pycuda", "cuda-python"), "pycuda": ("pycuda",), "cuda-python": ("cuda-python",)}
    if prefer not in order:
        raise ValueError(f"cuda backend must be one of {tuple(order)}, got {prefer!r}")
    for name in order[prefer]:
        try:
            if name == "pycuda":
                import pycuda.driver  # noqa: F401
                return _CudaPy(device)
            try:
                from cuda.bindings import runtime  # noqa: F401
            except ImportError:
                from cuda import cudart  # noqa: F401
            return _CudaBindings(device)
        except ImportError:
            continue
    raise ImportError("the TensorRT runner needs pycuda or cuda-python for device memory: "
                      "`pip install cuda-python` (or `pip install afnet_edge[tensorrt]`), or pycuda")


# ------------------------------------------------------------------------------------------------------- checks
def expected_clip_shape(sidecar: dict, batch: int | None = None) -> tuple:
    """``(B, T, 3, H, W)`` the engine accepts (``batch`` within the profile for dynamic-batch engines)."""
    b = sidecar.get("batch")
    if b == "dynamic":
        b = batch if batch is not None else sidecar.get("example_batch", 1)
    return (int(b), clip_frames(sidecar), 3, int(sidecar["height"]), int(sidecar["width"]))


def check_clip_shape(shape: tuple, sidecar: dict) -> None:
    """Raise ValueError naming the engine's shape when ``shape`` is not one it was built for."""
    shape = tuple(int(s) for s in shape)
    T, H, W = clip_frames(sidecar), int(sidecar["height"]), int(sidecar["width"])
    dynamic = sidecar.get("batch") == "dynamic"
    hi = int(sidecar.get("max_batch") or sidecar.get("example_batch") or 1)
    want = f"({'1..' + str(hi) if dynamic else sidecar.get('batch')}, {T}, 3, {H}, {W})"
    if len(shape) != 5 or shape[2] != 3:
        raise ValueError(f"clip must have shape (B, T, 3, H, W) = {want} for this engine, got {shape}")
    problems = []
    if shape[1] != T:
        problems.append(f"T={shape[1]} frames (engine: T={T}; sample {T} frames per clip or rebuild with --frames "
                        f"{shape[1]})")
    if (shape[3], shape[4]) != (H, W):
        problems.append(f"{shape[3]}×{shape[4]} pixels (engine: {H}×{W}; resize/crop to {H}×{W} or rebuild with "
                        f"--size)")
    if dynamic:
        if not 1 <= shape[0] <= hi:
            problems.append(f"batch {shape[0]} (engine profile: 1..{hi}; rebuild with --max-batch {shape[0]})")
    elif shape[0] != int(sidecar.get("batch")):
        problems.append(f"batch {shape[0]} (engine: batch {sidecar.get('batch')}; split the input or rebuild with "
                        f"--batch {shape[0]} / --dynamic-batch)")
    if problems:
        raise ValueError(f"clip shape {shape} does not fit the engine {want}: {'; '.join(problems)}")


# ------------------------------------------------------------------------------------------------------- runner
class TRTRunner:
    """Run an afnet_edge TensorRT engine.

    Args:
        engine_path: serialised engine written by ``afnet-edge export --trt`` (its sidecar ``<engine>.json`` is read
            and checked against the running TensorRT and GPU unless ``check_sidecar=False``).
        plugin_library: ``libafnet_edge_trt_plugins.so`` for plugin engines (default: ``$AFNET_EDGE_TRT_PLUGINS`` or
            the build folders of this checkout).
        cuda_graph: capture ``execute_async_v3`` in a CUDA graph on the first run and replay it afterwards.
        device: CUDA device index.
        cuda: ``"auto"``, ``"pycuda"`` or ``"cuda-python"``.
        batch: batch to allocate for dynamic-batch engines (default: the export's example batch).

    ``runner(clip)`` takes ``clip`` ``(B, T, 3, H, W)`` float32 (numpy or torch, normalised RGB) and returns the logits
    ``(B, num_classes)`` as a numpy float32 array.
    """

    def __init__(self, engine_path: str, plugin_library: str | None = None, cuda_graph: bool = False,
                 device: int = 0, cuda: str = "auto", batch: int | None = None, check_sidecar: bool = True):
        if not os.path.isfile(engine_path):
            raise FileNotFoundError(f"engine {engine_path} not found; build it with `afnet-edge export MODEL --trt "
                                    f"{engine_path}`")
        self.engine_path = engine_path
        self.sidecar = read_sidecar(engine_path) if check_sidecar else {}
        backend = (self.sidecar.get("tensorrt") or {}).get("module", "auto")
        # A missing package (TensorRT, cuda-python) is reported only where there is a GPU to use it on.
        try:
            self.trt = load_tensorrt(backend)
        except ImportError:
            require_gpu()
            raise
        if self.sidecar:
            if self.sidecar.get("engine_sha256") and self.sidecar["engine_sha256"] != file_sha256(engine_path):
                raise TensorRTError(f"{engine_path} does not match its sidecar (checksum differs): the engine was "
                                    f"replaced after the build; rebuild with `afnet-edge export --trt`")
            check_engine_sidecar(self.sidecar, self.trt, gpu_info())
        try:
            self._cuda = cuda_backend(device, cuda)
        except ImportError:
            require_gpu()
            raise
        self.plugin = None
        if self.sidecar.get("flavour") == "plugin" or plugin_library:
            wanted = (self.sidecar.get("plugin") or {}).get("version") or None
            self.plugin = load_plugins(self.trt, plugin_library, wanted) if wanted else \
                load_plugins(self.trt, plugin_library)
        mod = self.trt.module
        self._logger = mod.Logger(mod.Logger.WARNING)
        self._runtime = mod.Runtime(self._logger)
        with open(engine_path, "rb") as f:
            self.engine = self._runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise TensorRTError(f"TensorRT {self.trt.version} could not deserialise {engine_path} (built for another "
                                f"TensorRT version or GPU, or a plugin is missing): rebuild with `afnet-edge export "
                                f"--trt` on this system")
        self.context = self.engine.create_execution_context()
        self._names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._inputs = [n for n in self._names if self.engine.get_tensor_mode(n) == mod.TensorIOMode.INPUT]
        self._outputs = [n for n in self._names if self.engine.get_tensor_mode(n) == mod.TensorIOMode.OUTPUT]
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            raise TensorRTError(f"{engine_path} has inputs {self._inputs} and outputs {self._outputs}; an afnet_edge "
                                f"engine has one input (clip) and one output (logits)")
        self.input_name, self.output_name = self._inputs[0], self._outputs[0]
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if shape[0] == -1:
            shape = expected_clip_shape(self.sidecar, batch) if self.sidecar else (batch or 1,) + shape[1:]
            check_clip_shape(shape, self.sidecar) if self.sidecar else None
            self.context.set_input_shape(self.input_name, shape)
        self.input_shape = tuple(int(s) for s in shape)
        self.output_shape = tuple(int(s) for s in self.context.get_tensor_shape(self.output_name))
        self._host_in = self._cuda.host_empty(self.input_shape, np.float32)
        self._host_out = self._cuda.host_empty(self.output_shape, np.float32)
        self._dev_in = self._cuda.malloc(self._host_in.nbytes)
        self._dev_out = self._cuda.malloc(self._host_out.nbytes)
        self.context.set_tensor_address(self.input_name, self._cuda.ptr(self._dev_in))
        self.context.set_tensor_address(self.output_name, self._cuda.ptr(self._dev_out))
        self.cuda_graph = bool(cuda_graph)
        self._graph = None

    # -------------------------------------------------------------------------------------------- execution
    def set_input(self, clip) -> None:
        """Copy ``clip`` ``(B, T, 3, H, W)`` to the device input buffer (asynchronously on the runner's stream)."""
        arr = clip.detach().cpu().numpy() if hasattr(clip, "detach") else np.asarray(clip)
        if self.sidecar:
            check_clip_shape(arr.shape, self.sidecar)
        if tuple(arr.shape) != self.input_shape:
            raise ValueError(f"clip has shape {tuple(arr.shape)} but this runner was allocated for "
                             f"{self.input_shape}; create the runner with batch={arr.shape[0]}")
        if arr.dtype != np.float32:
            raise TypeError(f"clip must be float32 (normalised RGB), got {arr.dtype}")
        np.copyto(self._host_in, arr)
        self._cuda.htod(self._dev_in, self._host_in)

    def launch(self) -> None:
        """Enqueue one inference on the device buffers (CUDA graph replay when enabled)."""
        if not self.cuda_graph:
            if not self.context.execute_async_v3(self._cuda.stream_handle):
                raise TensorRTError("execute_async_v3 failed (see TensorRT's log above)")
            return
        if self._graph is None:
            # One eager run lets TensorRT finish lazy initialisation before capture.
            if not self.context.execute_async_v3(self._cuda.stream_handle):
                raise TensorRTError("execute_async_v3 failed (see TensorRT's log above)")
            self._cuda.synchronize()
            self._cuda.begin_capture()
            self.context.execute_async_v3(self._cuda.stream_handle)
            self._graph = self._cuda.end_capture()
        self._cuda.launch_graph(self._graph)

    def synchronize(self) -> None:
        self._cuda.synchronize()

    def __call__(self, clip) -> np.ndarray:
        """Logits ``(B, num_classes)`` float32 for ``clip`` ``(B, T, 3, H, W)``."""
        self.set_input(clip)
        self.launch()
        self._cuda.dtoh(self._host_out, self._dev_out)
        self._cuda.synchronize()
        return np.array(self._host_out, copy=True)

    def benchmark(self, iterations: int = 100, warmup: int = 10) -> dict:
        """Median/mean/min/p90 device time in ms of :meth:`launch` on the current input, timed with CUDA events."""
        for _ in range(warmup):
            self.launch()
        self._cuda.synchronize()
        times = np.array(self._cuda.time_ms(self.launch, iterations))
        return {"median_ms": float(np.median(times)), "mean_ms": float(times.mean()), "min_ms": float(times.min()),
                "p90_ms": float(np.percentile(times, 90)), "iterations": iterations, "warmup": warmup,
                "cuda_graph": self.cuda_graph, "cuda_backend": self._cuda.name}

    def close(self) -> None:
        self._graph = None
        self.context = None
        self.engine = None
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def predict_with_engine(engine_path: str, clip, plugin_library: str | None = None) -> np.ndarray:
    """Logits ``(B, num_classes)`` of ``clip`` ``(B, T, 3, H, W)`` float32 through the engine at ``engine_path``."""
    arr = clip.detach().cpu().numpy() if hasattr(clip, "detach") else np.asarray(clip)
    with TRTRunner(engine_path, plugin_library=plugin_library, batch=int(arr.shape[0]) if arr.ndim == 5 else None) \
            as runner:
        return runner(arr)
