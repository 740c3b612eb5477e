"""TensorRT runtime checks that need no GPU: TensorRT discovery and version, plugin library discovery and version,
engine sidecar vs running TensorRT / GPU, clip shape vs engine, runner construction errors.

Executing an engine needs an NVIDIA GPU and is not covered here (see docs/datacenter.md, "Checking on a GPU").
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types

import pytest

from afnet_edge.export import runtime, trt_backend
from afnet_edge.export.engine import SIDECAR_FORMAT, check_sidecar
from afnet_edge.export.plugins import PLUGIN_NAMESPACE, PLUGIN_VERSION
from afnet_edge.export.runtime import TRTRunner, check_clip_shape, expected_clip_shape
from afnet_edge.export.trt_backend import (PluginLibrary, TensorRT, TensorRTError, check_plugin_library,
                                           find_plugin_library, load_plugins, load_tensorrt, plugin_library_info)
from skip_reasons import CUDA_PRESENT

SIDE = {"format": SIDECAR_FORMAT, "model": "af_resnet50", "num_frames": 12, "num_classes": 174, "height": 224,
        "width": 224, "batch": 2, "example_batch": 2, "max_batch": 2, "flavour": "portable", "precision": "fp16",
        "tensorrt": {"module": "tensorrt", "version": "10.3.0.30"},
        "gpu": {"name": "Orin", "compute_capability": "8.7", "sm": "sm_87", "driver": "12.6"}, "rtx_targets": None}


def _trt(name="tensorrt", version="10.3.0.30"):
    return TensorRT(module=types.SimpleNamespace(__version__=version), name=name, version=version)


def _gpu(cc="8.7", name="Orin"):
    major, minor = cc.split(".")
    return {"name": name, "compute_capability": cc, "sm": f"sm_{major}{minor}", "driver": "12.6"}


# ------------------------------------------------------------------------------------------- TensorRT discovery
def test_no_tensorrt_installed(monkeypatch):
    real = __import__("importlib").import_module

    def fake(name, *a, **k):
        if name.startswith("tensorrt"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(trt_backend.importlib, "import_module", fake)
    with pytest.raises(ImportError, match="TensorRT is not installed: install TensorRT >= 10"):
        load_tensorrt("auto")
    with pytest.raises(ImportError, match="tensorrt_rtx is not installed"):
        load_tensorrt("tensorrt_rtx")


def test_wrong_tensorrt_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="8.6.1"))
    with pytest.raises(TensorRTError, match="TensorRT 8.6.1 found, but afnet_edge needs TensorRT >= 10.0"):
        load_tensorrt("tensorrt")
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.13.3.9"))
    assert load_tensorrt("tensorrt").version == "10.13.3.9"
    with pytest.raises(ValueError, match="backend must be one of"):
        load_tensorrt("onnxruntime")


# -------------------------------------------------------------------------------------------- plugin library
def test_plugin_library_missing(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_plugin_library(str(tmp_path / "libnothing.so"))
    monkeypatch.setenv(trt_backend.PLUGIN_ENV, str(tmp_path / "libgone.so"))
    with pytest.raises(FileNotFoundError, match="AFNET_EDGE_TRT_PLUGINS"):
        find_plugin_library()
    monkeypatch.delenv(trt_backend.PLUGIN_ENV)
    monkeypatch.setattr(trt_backend, "_repo_root", lambda: str(tmp_path))
    monkeypatch.setattr(trt_backend.glob, "glob", lambda pattern: [])
    assert find_plugin_library() is None
    with pytest.raises(FileNotFoundError, match="plugin library libafnet_edge_trt_plugins.so not found: build it"):
        load_plugins(_trt())
    with pytest.raises(TensorRTError, match="no plugin layers"):
        load_plugins(_trt("tensorrt_rtx", "1.7.1.116"))


def test_plugin_library_version_checks():
    good = PluginLibrary("/x/lib.so", PLUGIN_VERSION, PLUGIN_NAMESPACE, "10.3.0")
    check_plugin_library(good, _trt(version="10.13.3.9"))  # same major: accepted
    with pytest.raises(TensorRTError, match=f"plugin version 0, but version {PLUGIN_VERSION} is needed: rebuild"):
        check_plugin_library(PluginLibrary("/x/lib.so", "0", PLUGIN_NAMESPACE, "10.3.0"), _trt())
    with pytest.raises(TensorRTError, match="namespace"):
        check_plugin_library(PluginLibrary("/x/lib.so", PLUGIN_VERSION, "other", "10.3.0"), _trt())
    with pytest.raises(TensorRTError, match="compiled against TensorRT 10.3.0 but TensorRT 11.1.0.106 is running"):
        check_plugin_library(good, _trt(version="11.1.0.106"))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_real_shared_libraries_of_other_versions(tmp_path):
    """A compiled stand-in library with the identity functions of another plugin version, and a library that is
    not ours at all, are both refused with what to do."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src = tmp_path / "fake.c"
    src.write_text('const char* afnetEdgeTrtPluginVersion(void){return "0";}\n'
                   f'const char* afnetEdgeTrtPluginNamespace(void){{return "{PLUGIN_NAMESPACE}";}}\n'
                   'const char* afnetEdgeTrtBuiltWithTensorRT(void){return "10.3.0";}\n')
    lib = tmp_path / "libafnet_edge_trt_plugins.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    info = plugin_library_info(str(lib))
    assert (info.plugin_version, info.namespace, info.built_with_tensorrt) == ("0", PLUGIN_NAMESPACE, "10.3.0")
    with pytest.raises(TensorRTError, match="plugin version 0"):
        check_plugin_library(info, _trt())
    other = tmp_path / "libother.so"
    (tmp_path / "other.c").write_text("int nothing_here(void){return 0;}\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(other), str(tmp_path / "other.c")], check=True)
    with pytest.raises(TensorRTError, match="is not an afnet_edge plugin library"):
        plugin_library_info(str(other))
    (tmp_path / "garbage.so").write_bytes(b"not an ELF file")
    with pytest.raises(TensorRTError, match="cannot load the plugin library"):
        plugin_library_info(str(tmp_path / "garbage.so"))


# ------------------------------------------------------------------------------------------- engine sidecar
def test_sidecar_accepts_the_system_it_was_built_on():
    check_sidecar(SIDE, _trt(), _gpu())


def test_sidecar_other_tensorrt_version():
    with pytest.raises(TensorRTError, match="built with tensorrt 10.3.0.30 but 10.13.3.9 is running.*rebuild"):
        check_sidecar(SIDE, _trt(version="10.13.3.9"), _gpu())
    with pytest.raises(TensorRTError, match="not interchangeable"):
        check_sidecar(SIDE, _trt("tensorrt_rtx", "1.7.1.116"), None)


def test_sidecar_other_gpu():
    with pytest.raises(TensorRTError, match=r"built on Orin \(sm_87\) but this GPU is NVIDIA H100 \(sm_90\)"):
        check_sidecar(SIDE, _trt(), _gpu("9.0", "NVIDIA H100"))
    rtx = {**SIDE, "tensorrt": {"module": "tensorrt_rtx", "version": "1.7.1.116"}, "gpu": None,
           "rtx_targets": ["SM86", "SM89"]}
    check_sidecar(rtx, _trt("tensorrt_rtx", "1.7.1.116"), _gpu("8.9", "RTX 4090"))
    with pytest.raises(TensorRTError, match="built for SM86, SM89 but this GPU is RTX 5090 \\(sm_120\\)"):
        check_sidecar(rtx, _trt("tensorrt_rtx", "1.7.1.116"), _gpu("12.0", "RTX 5090"))


# ----------------------------------------------------------------------------------------------- clip shapes
@pytest.mark.parametrize("shape, match", [
    ((2, 8, 3, 224, 224), "T=8 frames \\(engine: T=12"),
    ((2, 12, 3, 160, 160), "160×160 pixels \\(engine: 224×224"),
    ((1, 12, 3, 224, 224), "batch 1 \\(engine: batch 2"),
    ((2, 36, 224, 224), "must have shape \\(B, T, 3, H, W\\)"),
])
def test_clip_shape_other_than_the_engine(shape, match):
    with pytest.raises(ValueError, match=match):
        check_clip_shape(shape, SIDE)


def test_clip_shape_dynamic_batch():
    dyn = {**SIDE, "batch": "dynamic", "example_batch": 2, "max_batch": 4}
    for b in (1, 4):
        check_clip_shape((b, 12, 3, 224, 224), dyn)
    with pytest.raises(ValueError, match="batch 5 \\(engine profile: 1..4"):
        check_clip_shape((5, 12, 3, 224, 224), dyn)
    assert expected_clip_shape(dyn) == (2, 12, 3, 224, 224) and expected_clip_shape(dyn, 3)[0] == 3
    check_clip_shape((2, 12, 3, 224, 224), SIDE)


# --------------------------------------------------------------------------------------------------- runner
def test_runner_missing_engine_or_sidecar(tmp_path):
    with pytest.raises(FileNotFoundError, match="build it with `afnet-edge export"):
        TRTRunner(str(tmp_path / "none.engine"))
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(FileNotFoundError, match="e.engine.json not found"):
        TRTRunner(str(engine))
    (tmp_path / "e.engine.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an afnet_edge engine sidecar"):
        TRTRunner(str(engine))


def test_runner_refuses_engine_replaced_after_build(tmp_path, monkeypatch):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"\x01" * 64)
    side = {**SIDE, "engine_sha256": "0" * 64}
    (tmp_path / "e.engine.json").write_text(json.dumps(side))
    monkeypatch.setattr(runtime, "load_tensorrt", lambda backend: _trt())
    with pytest.raises(TensorRTError, match="does not match its sidecar"):
        TRTRunner(str(engine))


def test_runner_refuses_other_tensorrt_before_touching_cuda(tmp_path, monkeypatch):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"\x01" * 64)
    (tmp_path / "e.engine.json").write_text(json.dumps(SIDE))
    monkeypatch.setattr(runtime, "load_tensorrt", lambda backend: _trt(version="10.7.0.23"))
    monkeypatch.setattr(runtime, "cuda_backend", lambda *a: pytest.fail("CUDA touched before the version check"))
    with pytest.raises(TensorRTError, match="built with tensorrt 10.3.0.30 but 10.7.0.23"):
        TRTRunner(str(engine))


def test_cuda_backend_errors(monkeypatch):
    with pytest.raises(ValueError, match="cuda backend must be one of"):
        runtime.cuda_backend(0, "opencl")
    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these now raises ImportError
    with pytest.raises(ImportError, match="needs pycuda or cuda-python"):
        runtime.cuda_backend(0)


def test_predict_with_engine_missing_file(tmp_path):
    import numpy as np
    with pytest.raises(FileNotFoundError):
        runtime.predict_with_engine(str(tmp_path / "nope.engine"), np.zeros((1, 12, 3, 224, 224), np.float32))


def test_gpu_info_without_gpu_is_none():
    if os.path.exists("/dev/nvidia0"):
        pytest.skip(f"{CUDA_PRESENT} (/dev/nvidia0)")
    assert trt_backend.gpu_info() is None
