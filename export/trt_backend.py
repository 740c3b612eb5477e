"""Finding TensorRT (``tensorrt`` or TensorRT for RTX), the afnet_edge plugin library, and the GPU.

Every function here fails with an error that says what to install or rebuild. The plugin library is
``libafnet_edge_trt_plugins.so`` built by ``csrc/trt/CMakeLists.txt``; loading it registers its creators in
TensorRT's global plugin registry (namespace ``afnet_edge``).
"""
from __future__ import annotations

import ctypes
import glob
import importlib
import os
from dataclasses import dataclass

from .plugins import BY_NAME, PLUGIN_LIBRARY, PLUGIN_NAMESPACE, PLUGIN_VERSION

BACKENDS = ("auto", "tensorrt", "tensorrt_rtx")
MIN_TENSORRT = (10, 0)
PLUGIN_ENV = "AFNET_EDGE_TRT_PLUGINS"
_INSTALL_HINT = ("install TensorRT >= 10 (Jetson: JetPack 6.1+ ships it, `sudo apt install python3-libnvinfer`; "
                 "x86: `pip install afnet_edge[tensorrt]`) or, to build portable engines without a GPU, TensorRT for "
                 "RTX: `pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs`")


class TensorRTError(ValueError):
    """An environment or compatibility problem the user can fix (wrong TensorRT, plugin library, GPU, engine)."""


@dataclass(frozen=True)
class TensorRT:
    """An imported TensorRT Python module and what it can do."""

    module: object
    name: str          # "tensorrt" or "tensorrt_rtx"
    version: str

    @property
    def supports_plugins(self) -> bool:
        """TensorRT for RTX has no plugin layers in its network API: only ``portable`` graphs build there."""
        return self.name == "tensorrt"


def _version_tuple(v: str) -> tuple:
    out = []
    for part in v.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def load_tensorrt(backend: str = "auto") -> TensorRT:
    """Import TensorRT: ``"tensorrt"``, ``"tensorrt_rtx"`` (module ``tensorrt_rtx`` or the standalone wheel's
    ``tensorrt_rtx_bindings``), or ``"auto"`` (tensorrt first, then TensorRT for RTX).

    Raises ImportError when none is installed and TensorRTError when the TensorRT found is older than 10.0.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    candidates = {"tensorrt": [("tensorrt", "tensorrt")],
                  "tensorrt_rtx": [("tensorrt_rtx", "tensorrt_rtx"), ("tensorrt_rtx_bindings", "tensorrt_rtx")]}
    order = candidates["tensorrt"] + candidates["tensorrt_rtx"] if backend == "auto" else candidates[backend]
    for module_name, kind in order:
        try:
            mod = importlib.import_module(module_name)
        except ImportError:
            continue
        version = str(getattr(mod, "__version__", "0"))
        if kind == "tensorrt" and _version_tuple(version) < MIN_TENSORRT:
            raise TensorRTError(f"TensorRT {version} found, but afnet_edge needs TensorRT >= 10.0 (IPluginV3 plugins, "
                                f"explicit-batch ONNX parser; JetPack 6.1+ ships 10.3): upgrade TensorRT")
        return TensorRT(module=mod, name=kind, version=version)
    wanted = "TensorRT" if backend == "auto" else backend
    raise ImportError(f"{wanted} is not installed: {_INSTALL_HINT}")


# ------------------------------------------------------------------------------------------------- plugin library
def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_plugin_library(path: str | None = None) -> str | None:
    """Path of ``libafnet_edge_trt_plugins.so``: ``path`` if given (must exist), else ``$AFNET_EDGE_TRT_PLUGINS``,
    else the CMake build folders of this checkout (``build/*/csrc/trt``, ``build/csrc/trt``), else None."""
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"plugin library {path} not found")
        return path
    env = os.environ.get(PLUGIN_ENV)
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"${PLUGIN_ENV}={env} does not exist")
        return env
    name = f"lib{PLUGIN_LIBRARY}.so"
    root = _repo_root()
    for pattern in (f"build/*/csrc/trt/{name}", f"build/csrc/trt/{name}", f"build/{name}", f"/usr/local/lib/{name}"):
        hits = sorted(glob.glob(pattern if pattern.startswith("/") else os.path.join(root, pattern)))
        if hits:
            return hits[0]
    return None


@dataclass(frozen=True)
class PluginLibrary:
    path: str
    plugin_version: str
    namespace: str
    built_with_tensorrt: str

    def as_dict(self) -> dict:
        return {"library": self.path, "version": self.plugin_version, "namespace": self.namespace,
                "built_with_tensorrt": self.built_with_tensorrt}


_LOADED: dict = {}


def plugin_library_info(path: str) -> PluginLibrary:
    """Load (``RTLD_GLOBAL``) the shared library at ``path`` and read its identity functions.

    Loading registers the creators with TensorRT (so TensorRT must be imported first). Raises TensorRTError for a
    library that cannot be loaded or is not an afnet_edge plugin library.
    """
    real = os.path.realpath(path)
    if real in _LOADED:
        return _LOADED[real]
    try:
        lib = ctypes.CDLL(real, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise TensorRTError(f"cannot load the plugin library {path}: {e}; rebuild it for this machine "
                            f"(docs/jetson.md, 'Building the plugin library')") from None
    values = []
    for fn in ("afnetEdgeTrtPluginVersion", "afnetEdgeTrtPluginNamespace", "afnetEdgeTrtBuiltWithTensorRT"):
        f = getattr(lib, fn, None)
        if f is None:
            raise TensorRTError(f"{path} is not an afnet_edge plugin library (no {fn}); pass the "
                                f"lib{PLUGIN_LIBRARY}.so built from csrc/trt")
        f.restype = ctypes.c_char_p
        values.append(f().decode())
    info = PluginLibrary(real, *values)
    _LOADED[real] = info
    return info


def check_plugin_library(info: PluginLibrary, trt: TensorRT | None, plugin_version: str = PLUGIN_VERSION) -> None:
    """Raise TensorRTError unless ``info`` serves ``plugin_version`` and was built for ``trt``'s major version."""
    if info.plugin_version != plugin_version:
        raise TensorRTError(f"plugin library {info.path} has plugin version {info.plugin_version}, but version "
                            f"{plugin_version} is needed: rebuild csrc/trt from this afnet_edge checkout "
                            f"(cmake --build ... --target {PLUGIN_LIBRARY})")
    if info.namespace != PLUGIN_NAMESPACE:
        raise TensorRTError(f"plugin library {info.path} registers namespace {info.namespace!r}, expected "
                            f"{PLUGIN_NAMESPACE!r}: rebuild csrc/trt from this checkout")
    if trt is not None and _version_tuple(info.built_with_tensorrt)[:1] != _version_tuple(trt.version)[:1]:
        raise TensorRTError(f"plugin library {info.path} was compiled against TensorRT {info.built_with_tensorrt} "
                            f"but TensorRT {trt.version} is running: rebuild it with -DTensorRT_ROOT pointing at "
                            f"this TensorRT")


def load_plugins(trt: TensorRT, path: str | None = None, plugin_version: str = PLUGIN_VERSION) -> PluginLibrary:
    """Find, load and check the plugin library, then confirm that TensorRT's registry holds every creator
    of :data:`~afnet_edge.export.plugins.BY_NAME` (a library built before a plugin existed is refused)."""
    if not trt.supports_plugins:
        raise TensorRTError(f"{trt.name} {trt.version} has no plugin layers: build the portable graph instead "
                            f"(--plugins off, or an ONNX exported with --flavour portable)")
    found = find_plugin_library(path)
    if found is None:
        raise FileNotFoundError(f"TensorRT plugin library lib{PLUGIN_LIBRARY}.so not found: build it "
                                f"(cmake -S . -B build/cmake -DTensorRT_ROOT=... && cmake --build build/cmake "
                                f"--target {PLUGIN_LIBRARY}, see docs/jetson.md) and pass --plugin-library PATH or "
                                f"set ${PLUGIN_ENV}; or use the portable graph (--plugins off)")
    info = plugin_library_info(found)
    check_plugin_library(info, trt, plugin_version)
    registry = trt.module.get_plugin_registry()
    missing = [name for name in BY_NAME
               if registry.get_creator(name, plugin_version, PLUGIN_NAMESPACE) is None]
    if missing:
        raise TensorRTError(f"plugin library {found} is loaded but TensorRT's registry lacks {', '.join(missing)} "
                            f"(version {plugin_version}, namespace {PLUGIN_NAMESPACE}); rebuild csrc/trt")
    return info


# ---------------------------------------------------------------------------------------------------------- GPU
def gpu_info() -> dict | None:
    """``{"name", "compute_capability" ("8.7"), "sm" ("sm_87"), "driver"}`` of CUDA device 0, or None when no CUDA
    device (or no Python CUDA binding) is available."""
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python < 12.6
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count < 1:
            return None
        err, prop = cudart.cudaGetDeviceProperties(0)
        if int(err) != 0:
            return None
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        err, drv = cudart.cudaDriverGetVersion()
        return _gpu_dict(name, prop.major, prop.minor, drv)
    except ImportError:
        pass
    except Exception:  # a binding present but no usable driver/device
        return None
    try:
        import pycuda.driver as cuda
        cuda.init()
        if cuda.Device.count() < 1:
            return None
        dev = cuda.Device(0)
        major, minor = dev.compute_capability()
        return _gpu_dict(dev.name(), major, minor, cuda.get_driver_version())
    except ImportError:
        return None
    except Exception:
        return None


def _gpu_dict(name: str, major: int, minor: int, driver: int) -> dict:
    return {"name": name, "compute_capability": f"{major}.{minor}", "sm": f"sm_{major}{minor}",
            "driver": f"{driver // 1000}.{(driver % 1000) // 10}" if driver else ""}
