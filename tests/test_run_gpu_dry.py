"""benchmarks/run_gpu.sh cannot rot between GPU runs: its CPU dry run (every stage's command resolves, every Python
entry point runs in a checking form, output folders writable, nothing downloads) passes, fails on a bad bench option,
and the budgeted stage table in docs/performance.md is the script's own."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run_gpu.sh"
BUDGET_STAGES = ["env", "build", "kernel-test", "sanitize-memcheck", "sanitize-racecheck", "sanitize-synccheck",
                 "kernels", "headline-b8", "headline-b1"]


def _run(*args: str, extra_env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("AFNET_BENCH_EXTRA", None)
    env.update(extra_env or {})
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_budgeted_dry_run_passes():
    res = _run("--dry-run", "--budget", "9m")
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "FAILED" not in out
    assert f"[dry-run] plan: {' '.join(BUDGET_STAGES)} (budget 540 s, 15 s reserve)" in out
    for stage in BUDGET_STAGES:
        assert f"[dry-run] stage {stage}\n" in out
    assert "ok: Python commands of this dry run cannot open network connections (guard checked)" in out
    assert "ok: no curl/wget/git fetch/pip install without --no-index" in out
    assert "ok: writable: benchmarks/results/" in out
    assert "ok: setup.py loads and has build_ext" in out
    assert "ok: pytest collects: tests/test_kernels.py -k cuda" in out
    assert "ok: pytest collects: -k 'cuda and select_frames'" in out
    assert "ok: bench options on a tiny CPU grid" in out
    assert re.search(r"ok: bench_kernels\.py --dtypes fp16 --batches 1 8 (--smoke|--help)", out)
    assert out.rstrip().endswith(f"[dry-run] PASSED: {len(BUDGET_STAGES)} stages checked")
    assert not list((ROOT / "benchmarks" / "results").glob("*/dry_*")), "the dry run wrote into benchmarks/results"


def test_dry_run_fails_on_a_bench_option_that_does_not_exist():
    res = _run("--dry-run", "headline-b8", extra_env={"AFNET_BENCH_EXTRA": "--no-such-option 3"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED: bench options on a tiny CPU grid" in res.stdout and "--no-such-option" in res.stdout
    assert res.stdout.rstrip().endswith("[dry-run] FAILED: 1 check(s) failed")


@pytest.mark.parametrize("args,message", [
    (["--budget", "9x"], "--budget: expected a duration like 9m"),
    (["--budget", "10s"], "--budget must be more than 15s"),
    (["--dry-run", "grid-fp64"], "unknown stage grid-fp64"),
    (["--frobnicate"], "unknown option --frobnicate"),
])
def test_bad_arguments_are_one_line_with_exit_code_2(args, message):
    res = _run(*args, timeout=60)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def _listed() -> dict[str, int]:
    res = _run("--list", timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:] if re.match(r"^[a-z0-9-]+ +\d+ +\d+$", line)]
    assert f"budgeted order: {' '.join(BUDGET_STAGES)}" in res.stdout
    return {name: int(est) for name, est, _ in rows}


def test_documented_stage_estimates_are_the_scripts():
    est = _listed()
    doc = (ROOT / "docs" / "performance.md").read_text()
    section = doc[doc.index("### Budgeted run"):]
    documented = dict(re.findall(r"^\| \d+ \| `([a-z0-9-]+)` \|.*?\| (\d+) s \|", section, flags=re.M))
    assert list(documented) == BUDGET_STAGES
    assert {k: int(v) for k, v in documented.items()} == {k: est[k] for k in BUDGET_STAGES}
    total = sum(est[k] for k in BUDGET_STAGES)
    assert f"sum {total} s" in SCRIPT.read_text() and f"{total} s in all" in section
