"""Build-side behaviour of the optional extension: setup.py without torch, the AFNET_EDGE_CUDA switch, and the
fallback of afnet_edge.kernels when afnet_edge._C is absent. Subprocesses only (no compilation: fast)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, env_extra=None, pythonpath=None, timeout=120):
    env = dict(os.environ)
    env.update(env_extra or {})
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_setup_without_torch_installs_pure_python_with_a_warning(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('torch hidden by the test (as under build isolation)')\n")
    res = _run(["setup.py", "--version"], pythonpath=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "0.1.0"
    assert "torch is not importable at build time" in res.stderr
    assert "WITHOUT the extension afnet_edge._C" in res.stderr


def test_setup_can_skip_the_extension_on_request():
    res = _run(["setup.py", "--version"], env_extra={"AFNET_EDGE_EXT": "0"})
    assert res.returncode == 0 and "AFNET_EDGE_EXT=0" in res.stderr


def test_forcing_cuda_without_cuda_torch_is_a_clear_error():
    import torch
    if torch.version.cuda is not None:
        pytest.skip("torch has CUDA here: AFNET_EDGE_CUDA=1 is satisfiable")
    res = _run(["setup.py", "--version"], env_extra={"AFNET_EDGE_CUDA": "1"})
    assert res.returncode != 0
    assert "AFNET_EDGE_CUDA=1 but CUDA cannot be built here" in res.stderr


def test_kernels_fall_back_to_the_reference_without_the_extension():
    code = textwrap.dedent("""
        import sys
        sys.modules["afnet_edge._C"] = None          # makes `from .. import _C` raise ImportError
        import torch
        from afnet_edge.kernels import ext, extension_available, ops
        assert not ext.AVAILABLE and not extension_available() and ext.import_error() is not None
        assert ops("auto").name == "torch"
        try:
            ops("ext")
        except RuntimeError as exc:
            assert "not built" in str(exc)
        else:
            raise AssertionError("ops('ext') must fail without the extension")
        x = torch.randn(8, 16, 2, 2)
        idx = torch.tensor([1, 5])
        assert torch.equal(ext.focal_gather(x, idx, 4, True), ops("torch").focal_gather(x, idx, 4, True))
        print("ok")
    """)
    res = _run(["-c", code])
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_benchmark_refuses_without_cuda():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the benchmark would run")
    res = _run(["benchmarks/bench_kernels.py"])
    assert res.returncode == 2
    assert "no CUDA device" in res.stderr and "nothing was measured" in res.stderr


def test_benchmark_smoke_run_on_cpu():
    from afnet_edge.kernels import ext
    if not ext.AVAILABLE:
        pytest.skip("afnet_edge._C not built")
    res = _run(["benchmarks/bench_kernels.py", "--smoke"])
    assert res.returncode == 0, res.stderr
    assert "smoke run on CPU done" in res.stdout and "select_frames" in res.stdout
