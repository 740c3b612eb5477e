"""The skip summary of tests/conftest.py and the allow-list of tests/skip_reasons.py, run on throw-away test files in a
separate pytest process (the conftest loaded as a plugin), with and without AFNET_EDGE_SKIP_ALLOWLIST=1."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from skip_reasons import ALLOWED, CUDA_PRESENT, ENV, NO_CUDA, NO_FULL_TENSORRT, NO_JETSON, allowed_as

TESTS = Path(__file__).resolve().parent


def test_allow_list_matches_constants_and_details_only():
    assert allowed_as(NO_CUDA) == "NO_CUDA" and allowed_as(f"Skipped: {NO_CUDA}") == "NO_CUDA"
    assert allowed_as(f"{NO_CUDA}: AMP needs one") == "NO_CUDA"
    assert allowed_as(CUDA_PRESENT) == "CUDA_PRESENT"
    assert allowed_as(f"{NO_FULL_TENSORRT}: tensorrt not importable") == "NO_FULL_TENSORRT"
    assert allowed_as(NO_JETSON) == "NO_JETSON"
    for reason in ("PyAV not installed", "afnet_edge._C not built", f"{NO_CUDA} kernels in the build",
                   f"x {NO_CUDA}", "TensorRT for RTX not installed", ""):
        assert allowed_as(reason) is None, reason
    assert set(ALLOWED) == {"NO_CUDA", "CUDA_PRESENT", "NO_FULL_TENSORRT", "NO_JETSON"}


def _session(tmp_path: Path, files: dict[str, str], enforce: bool) -> subprocess.CompletedProcess:
    for name, body in files.items():
        (tmp_path / name).write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if enforce:
        env[ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


ALLOWED_ONLY = {"test_a.py": """
    import pytest
    from skip_reasons import NO_CUDA

    @pytest.mark.parametrize("i", range(3))
    @pytest.mark.skipif(True, reason=NO_CUDA)
    def test_gpu(i):
        pass

    def test_runs():
        assert 1 + 1 == 2
"""}
WITH_OTHER = {**ALLOWED_ONLY, "test_b.py": """
    import pytest
    pytest.importorskip("no_such_module_afnet_edge", reason="no_such_module not installed")

    def test_never():
        pass
""", "test_c.py": """
    import pytest

    def test_inside():
        pytest.skip("fixture data missing")
"""}


def test_only_allowed_skips_pass_when_enforced(tmp_path):
    res = _session(tmp_path, ALLOWED_ONLY, enforce=True)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    summary = out[out.index("skip summary"):]
    assert f"3 tests  [NO_CUDA]  {NO_CUDA}" in summary
    assert "every skip reason is on the allow-list" in summary and "NOT ALLOWED" not in summary


def test_other_skips_are_listed_and_fail_only_when_enforced(tmp_path):
    tolerant = _session(tmp_path, WITH_OTHER, enforce=False)
    assert tolerant.returncode == 0, tolerant.stdout + tolerant.stderr
    summary = tolerant.stdout[tolerant.stdout.index("skip summary"):]
    assert "1 module  [NOT ALLOWED]  no_such_module not installed" in summary
    assert "1 test  [NOT ALLOWED]  fixture data missing" in summary
    assert "3 tests  [NO_CUDA]" in summary
    assert "2 skip reason(s) not on the allow-list: tolerated here" in summary

    enforced = _session(tmp_path, WITH_OTHER, enforce=True)
    assert enforced.returncode == 1, enforced.stdout + enforced.stderr
    assert "2 skip reason(s) not on the allow-list: the session FAILS" in enforced.stdout
    assert "1 passed" in enforced.stdout                                 # nothing failed but the allow-list
