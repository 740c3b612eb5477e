"""afnet_edge: AFNet video recognition that really skips the unselected frames.

Builds the optional extension ``afnet_edge._C`` (torch operators ``torch.ops.afnet_edge.*``) from ``csrc/ops`` and
``csrc/kernels`` with ninja:

* CPU operators always; CUDA operators when torch has CUDA and nvcc is found (``AFNET_EDGE_CUDA=0/1`` forces the
  choice; CUDA architectures follow ``TORCH_CUDA_ARCH_LIST`` as for any torch extension).
* Without an importable torch at build time (e.g. pip's build isolation) the pure-Python package is installed without
  the extension and a warning says so; everything then falls back to ``afnet_edge.kernels.reference``.
* ``AFNET_EDGE_EXT=0`` skips the extension on purpose.

    pip install --no-build-isolation -e .        # or: python setup.py develop
    MAX_JOBS=2 pip install -v --no-build-isolation -e .   # -v: show ninja's per-file progress lines

Incremental rebuilds: every way of building (``pip install -e .``, ``python setup.py develop``, ``python setup.py
build_ext --inplace``) compiles into the same folder, ``build/temp-afnet_edge`` (:data:`BUILD_TEMP`), where ninja keeps
the object files and its dependency log, so a rebuild after editing one ``.cpp`` recompiles that file only and links.
torch prefixes the compilers with ``ccache`` (or ``sccache``) when one is installed, which also makes a build from a
clean folder fast the second time. pip hides a build's output unless ``-v`` is given; ``setup.py develop`` passes
``-v`` to pip so ninja's ``[n/N]`` lines are shown.
"""
import os
import sys

import setuptools
from setuptools import find_packages, setup
from setuptools.command.develop import develop as _develop

ROOT = os.path.dirname(os.path.abspath(__file__))
OPS = ("focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames", "gather_conv1x1",
       "conv1x1_scatter", "temporal_aggregate", "bl_merge", "fullvideo_cluster",
       "focus_crop")
#: Where ninja writes the object files, for every build path (pip's editable build would use a fresh temporary folder
#: each time and so recompile everything).
BUILD_TEMP = os.path.join(ROOT, "build", "temp-afnet_edge")


def _warn(msg: str) -> None:
    bar = "=" * 100
    print(f"\n{bar}\nWARNING (afnet_edge): {msg}\n{bar}\n", file=sys.stderr, flush=True)


def _extension_setup() -> dict:
    """``ext_modules`` and ``cmdclass`` for afnet_edge._C, or {} when it cannot or should not be built."""
    if os.environ.get("AFNET_EDGE_EXT", "1") == "0":
        _warn("AFNET_EDGE_EXT=0: installing without the compiled extension afnet_edge._C")
        return {}
    try:
        import torch
        from torch.utils import cpp_extension
    except Exception as exc:  # torch absent (build isolation) or broken
        _warn(f"torch is not importable at build time ({exc.__class__.__name__}: {exc}); installing the pure-Python "
              "package WITHOUT the extension afnet_edge._C (the ops fall back to the PyTorch reference). To build "
              "it: pip install --no-build-isolation -e .  (with torch installed)")
        return {}

    want = os.environ.get("AFNET_EDGE_CUDA")
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc") if cpp_extension.CUDA_HOME else None
    cuda_possible = torch.version.cuda is not None and nvcc is not None and os.path.exists(nvcc)
    if want == "1" and not cuda_possible:
        raise SystemExit("afnet_edge: AFNET_EDGE_CUDA=1 but CUDA cannot be built here (torch.version.cuda="
                         f"{torch.version.cuda}, nvcc={nvcc}); unset it or use AFNET_EDGE_CUDA=0")
    use_cuda = cuda_possible if want is None else want == "1"

    rel = lambda *p: os.path.relpath(os.path.join(ROOT, *p), ROOT)  # noqa: E731  (setuptools wants relative paths)
    sources = [rel("csrc", "ops", "schema.cpp")]
    sources += [rel("csrc", "ops", "cpu", f"{op}.cpp") for op in OPS]
    sources += [rel("csrc", "kernels", f"{op}_cpu.cpp") for op in OPS]
    include_dirs = [os.path.join(ROOT, "csrc", "kernels"), os.path.join(ROOT, "csrc", "ops")]
    cxx_flags = ["-O3"]
    macros = []
    if use_cuda:
        sources += [rel("csrc", "ops", "cuda", f"{op}.cpp") for op in OPS]
        sources += [rel("csrc", "kernels", f"{op}.cu") for op in OPS]
        macros.append(("AFN_WITH_CUDA_RUNTIME", None))
        ext = cpp_extension.CUDAExtension(
            "afnet_edge._C", sources, include_dirs=include_dirs, define_macros=macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]})
    else:
        ext = cpp_extension.CppExtension("afnet_edge._C", sources, include_dirs=include_dirs,
                                         extra_compile_args={"cxx": cxx_flags})
    missing = [s for s in sources if not os.path.exists(os.path.join(ROOT, s))]
    if missing:
        raise SystemExit(f"afnet_edge: extension sources missing: {missing}")
    print(f"afnet_edge: building afnet_edge._C with {'CPU + CUDA' if use_cuda else 'CPU'} operators "
          f"(torch {torch.__version__}, CUDA {torch.version.cuda}, nvcc {nvcc if use_cuda else '-'})", flush=True)
    return {"ext_modules": [ext], "cmdclass": {"build_ext": _incremental_build_ext(cpp_extension.BuildExtension)}}


def _incremental_build_ext(base):
    """torch's ``BuildExtension`` (ninja) compiling into the fixed :data:`BUILD_TEMP`, with a progress note."""

    class build_ext(base.with_options(use_ninja=True)):
        def finalize_options(self) -> None:
            super().finalize_options()
            self.build_temp = BUILD_TEMP  # after the base: pip's editable build sets a temporary folder

        def build_extensions(self) -> None:
            import shutil
            os.makedirs(self.build_temp, exist_ok=True)
            # ninja prints "[n/N] <command>" per compiled file (shown by `pip install -v` and `setup.py develop`).
            os.environ.setdefault("NINJA_STATUS", "afnet_edge [%f/%t] ")
            wrapper = next((w for w in ("ccache", "sccache") if shutil.which(w)), None)
            jobs = os.environ.get("MAX_JOBS", "ninja's default")
            sources = sum(len(e.sources) for e in self.extensions)
            print(f"afnet_edge: compiling {sources} sources with ninja (MAX_JOBS={jobs}) in {self.build_temp}; only "
                  f"files changed since the last build are recompiled; compiler cache: "
                  f"{wrapper or 'none (install ccache to cache objects across clean builds)'}", flush=True)
            super().build_extensions()

    return build_ext


class develop(_develop):
    """`python setup.py develop`. setuptools >= 80 turned it into `pip install -e .`, whose build isolation would hide
    torch and so skip the extension; run pip without build isolation instead (older setuptools: unchanged)."""

    def run(self) -> None:
        if int(setuptools.__version__.split(".")[0]) < 80:
            return super().run()
        import subprocess
        # -v shows ninja's per-file progress; the object files are shared with `pip install -e .` (BUILD_TEMP).
        cmd = [sys.executable, "-m", "pip", "install", "-v", "-e", ROOT, "--no-build-isolation", "--use-pep517"]
        cmd += ["--target", self.install_dir] * bool(getattr(self, "install_dir", None))
        cmd += ["--no-deps"] * bool(getattr(self, "no_deps", False))
        cmd += ["--user"] * bool(getattr(self, "user", False))
        cmd += ["--prefix", self.prefix] * bool(getattr(self, "prefix", None))
        cmd += ["--index-url", self.index_url] * bool(getattr(self, "index_url", None))
        subprocess.check_call(cmd)


_ext = _extension_setup()
_cmdclass = dict(_ext.pop("cmdclass", {}))
_cmdclass["develop"] = develop

setup(
    name="afnet_edge",
    version="0.1.0",
    description="AFNet (NeurIPS 2022) reference models with a compact frame-skipping path, kernels and export",
    python_requires=">=3.10",
    # afnet_edge/export is a committed link to the repository-root export/ folder (docs/layout.md)
    packages=find_packages(include=["afnet_edge", "afnet_edge.*"]),
    # the shipped demo model (afnet_edge/demo_model.py) and the extension's type stub
    package_data={"afnet_edge": ["assets/demo_model.pth", "assets/demo_model.json", "_C.pyi"]},
    install_requires=["torch>=2.4", "numpy", "tqdm", "pillow"],
    extras_require={
        "video": ["av"],
        "onnx": ["onnx", "onnxruntime", "onnx-graphsurgeon"],
        "tensorrt": ["tensorrt>=10", "cuda-python"],
        "plot": ["matplotlib"],
        # The Move4MNIST-style generator (--data move4mnist) draws digits from scikit-learn's bundled 8×8 digits.
        "data": ["scikit-learn"],
        "test": ["pytest", "av", "onnx", "onnxruntime", "onnx-graphsurgeon", "matplotlib", "grimp", "scikit-learn"],
        # Static checks CI runs besides the tests: the type checker (scripts/ci_typecheck.sh).
        "dev": ["mypy"],
        # TensorRT for RTX: builds engines without a GPU (CI proves the engine build with it).
        "rtx": ["tensorrt-rtx-cu13-bindings", "tensorrt-rtx-cu13-libs", "onnxruntime-extensions"],
        # Triton serving (afnet-edge serve / classify): the tritonserver bundled in nvidia-pytriton and its client.
        # nvidia-pytriton pins numpy<2 (its Python backend stub reads NumPy 1.x arrays): a separate environment is
        # best; CI installs it --no-deps and gives the stub a numpy<2 venv (docs/serving.md).
        "serve": ["nvidia-pytriton==0.7.0", "tritonclient[http,grpc]"],
        # Everything the demo, the CLI and the test suite use (not TensorRT itself: see docs/jetson.md).
        "all": ["av", "onnx", "onnxruntime", "onnx-graphsurgeon", "matplotlib", "pytest", "grimp", "scikit-learn"],
    },
    entry_points={"console_scripts": ["afnet-edge=afnet_edge.cli:main"]},
    cmdclass=_cmdclass,
    **_ext,
)
