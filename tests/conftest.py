"""Shared test helpers: random weights and BN statistics so that every code path carries information; and the skip
summary printed at the end of every run (grouped by reason, each marked with its allow-list entry from
``tests/skip_reasons.py``), which fails the session under ``AFNET_EDGE_SKIP_ALLOWLIST=1`` when a skip is not allowed."""
from __future__ import annotations

import collections
import importlib.util
import os

import pytest
import torch

from skip_reasons import ENV as SKIP_ALLOWLIST_ENV
from skip_reasons import allowed_as

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: PyAV present; the tests that read or write video files take ``@needs_av`` (CI installs it: such a skip fails CI)
HAVE_AV = importlib.util.find_spec("av") is not None
needs_av = pytest.mark.skipif(not HAVE_AV, reason="PyAV (extra afnet_edge[video]) is needed to read and write videos")



def _tensorrt_rtx():
    from afnet_edge.export.trt_backend import load_tensorrt
    try:
        return load_tensorrt("tensorrt_rtx")
    except ImportError:
        return None


#: TensorRT for RTX (builds engines without a GPU), or None; the engine-build tests take ``@needs_rtx`` (CI installs
#: it: such a skip fails CI)
RTX = _tensorrt_rtx()
needs_rtx = pytest.mark.skipif(RTX is None, reason="TensorRT for RTX not installed "
                                                   "(pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs)")


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (small tensors, large graphs: faster and steadier on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plugin_graph_session(proto, ortx):
    """ONNX Runtime session (CPU, one intra-op thread) for a copy of ``proto`` whose afnet_edge plugin nodes are moved
    to onnxruntime-extensions' ``ai.onnx.contrib`` domain, where the caller's Python custom ops (the pure-PyTorch
    references, registered with ``ortx.onnx_op``) run them."""
    import onnx
    import onnxruntime as ort

    from afnet_edge.export.plugins import PLUGIN_DOMAIN
    bound = onnx.ModelProto()
    bound.CopyFrom(proto)
    for n in bound.graph.node:
        if n.domain == PLUGIN_DOMAIN:
            n.domain = "ai.onnx.contrib"
    bound.opset_import.append(onnx.helper.make_opsetid("ai.onnx.contrib", 1))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.register_custom_ops_library(ortx.get_library_path())
    return ort.InferenceSession(bound.SerializeToString(), so, providers=["CPUExecutionProvider"])


def single_threaded_module():
    """An autouse module-scoped fixture (bind it in a test module: ``_single_thread = single_threaded_module()``):
    the module's tests run with one torch thread, restored afterwards — tiny tensors through large graphs are faster
    on one thread and immune to OpenMP spin-waits on a shared machine."""
    @pytest.fixture(autouse=True, scope="module")
    def _single_thread():
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)
    return _single_thread


def randomize_model(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BN random affine parameters and running statistics, every conv/linear fresh weights of a
    variance-preserving scale, and the navigation random logits, so that no block is an identity and the
    constant maps of the focal blocks are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(0.5 * torch.randn(mod.bias.shape, generator=g))
    return model


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


# --------------------------------------------------------------------------------------------- skips you can read
_SKIPS: collections.Counter = collections.Counter()   # (reason, "test" | "module") -> count, for this session
_VIOLATIONS: list[str] = []                            # reasons outside the allow-list


def _skip_reason(report) -> str | None:
    """The reason of a skipped test or collector report (None when it did not skip or is an xfail)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def pytest_sessionstart(session):
    _SKIPS.clear()
    _VIOLATIONS.clear()


def pytest_runtest_logreport(report):
    reason = _skip_reason(report)
    if reason is not None:
        _SKIPS[(reason, "test")] += 1


def pytest_collectreport(report):
    reason = _skip_reason(report)
    if reason is not None:
        _SKIPS[(reason, "module")] += 1


def pytest_sessionfinish(session, exitstatus):
    """Under AFNET_EDGE_SKIP_ALLOWLIST=1 a skip whose reason is not on the allow-list fails the session."""
    _VIOLATIONS[:] = sorted({reason for reason, _ in _SKIPS if allowed_as(reason) is None})
    if _VIOLATIONS and os.environ.get(SKIP_ALLOWLIST_ENV) == "1" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After pytest's own summaries: skipped tests grouped by reason, each with its allow-list entry or NOT ALLOWED."""
    result = yield
    tr = terminalreporter
    tr.section("skip summary (allow-list: tests/skip_reasons.py)", sep="=")
    if not _SKIPS:
        tr.write_line("no skips")
        return result
    by_reason: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for (reason, kind), n in _SKIPS.items():
        by_reason[reason][kind] += n
    for reason, kinds in sorted(by_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        count = ", ".join(f"{n} {kind}{'s' * (n != 1)}" for kind, n in sorted(kinds.items(), reverse=True))
        tr.write_line(f"{count:>16s}  [{allowed_as(reason) or 'NOT ALLOWED'}]  {reason.splitlines()[0]}")
    enforced = os.environ.get(SKIP_ALLOWLIST_ENV) == "1"
    if _VIOLATIONS:
        verdict = "the session FAILS" if enforced else f"tolerated here; {SKIP_ALLOWLIST_ENV}=1 (CI) fails the session"
        tr.write_line(f"{len(_VIOLATIONS)} skip reason(s) not on the allow-list: {verdict}", red=enforced, bold=True)
    else:
        tr.write_line("every skip reason is on the allow-list")
    return result
