"""The typed seam between model code and the fused ops: every implementation satisfies ``FusedOps`` (parameter by
parameter), and ``use_ops`` chooses the implementation of a forward pass through the context (nesting, restoring,
a wrapper seeing every fused-op call), export included."""
from __future__ import annotations

import functools
import inspect
import threading

import pytest
import torch

import afnet_edge
from afnet_edge import kernels
from afnet_edge.export import ops as export_ops
from afnet_edge.kernels import OP_NAMES, FusedOps, ext, reference, signature_mismatches, use_ops, wrap_ops
from afnet_edge.layers.af_stage import DynamicFusion
from conftest import randomize_model

T, B, SIZE = 4, 2, 64

IMPLS = {
    "torch": kernels.ops("torch"),
    "ext": ext.OPS,  # the entry points exist (and fall back to the reference) even without the built extension
    "export-portable": export_ops.PORTABLE,
    "export-plugin": export_ops.PLUGIN,
}


# ------------------------------------------------------------------------------------------------- the protocol
@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_every_implementation_has_the_protocol_signatures(impl):
    assert isinstance(impl, FusedOps)
    for op in OP_NAMES:
        want = list(inspect.signature(getattr(FusedOps, op)).parameters.values())[1:]  # without self
        got = list(inspect.signature(getattr(impl, op)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in got] == [(p.name, p.kind, p.default) for p in want], op
    assert signature_mismatches(impl) == []


def test_protocol_keywords_are_keyword_only():
    sig = inspect.signature(FusedOps.focal_scatter)
    kinds = {n: p.kind for n, p in sig.parameters.items()}
    assert [n for n, k in kinds.items() if k is inspect.Parameter.KEYWORD_ONLY] == ["chain", "validate", "inplace",
                                                                                    "out"]
    for op in OP_NAMES:
        params = inspect.signature(getattr(FusedOps, op)).parameters
        assert "out" in params
        if op != "select_frames":  # every op that reads a stage tensor can read it through a lazy chain
            assert params["chain"].kind is inspect.Parameter.KEYWORD_ONLY and params["chain"].default is None


def _ns(**over):
    base = {op: getattr(IMPLS["torch"], op) for op in OP_NAMES}
    base.update(over)
    from types import SimpleNamespace
    return SimpleNamespace(name="bad", **base)


@pytest.mark.parametrize("bad_op, fn, match", [
    ("focal_gather", lambda x, index, num_frames, shift: x, "focal_gather: expected"),        # no keywords
    ("focal_gather", lambda x, index, num_frames, shift, **kw: x, "focal_gather: expected"),  # catch-all keywords
    ("focal_scatter", lambda residual, y, index, const, relu, validate=True, inplace=False, out=None: y,
     "focal_scatter: expected"),                                                               # positional keywords
    ("select_frames", lambda logits, mode, k=1, *, out=None: None, "select_frames: expected"),  # other default
    ("ample_fuse_pool", None, "ample_fuse_pool: missing"),
])
def test_signature_check_names_what_differs(bad_op, fn, match):
    impl = _ns(**{bad_op: fn})
    problems = signature_mismatches(impl)
    assert len(problems) == 1 and problems[0].startswith(match.split(":")[0]), problems
    with pytest.raises(TypeError, match=match):
        kernels.check_ops(impl, strict=True)


def _inputs(g):
    x = torch.randn(2 * T, 16, 8, 8, generator=g)
    index = torch.tensor([0, 3, 5], dtype=torch.int64)
    y = torch.randn(3, 16, 8, 8, generator=g)
    const = torch.randn(16, 8, 8, generator=g)
    xl = torch.randn(2 * T, 16, 4, 4, generator=g)
    a = torch.rand(2 * T, 16, generator=g)
    logits = torch.randn(3, 2, T, 2, generator=g)
    w1 = torch.randn(12, 8, generator=g) / 8 ** 0.5
    w3 = torch.randn(16, 6, 1, 1, generator=g) / 6 ** 0.5
    s1, b1 = 0.5 + torch.rand(12, generator=g), torch.randn(12, generator=g)
    s3, b3 = 0.5 + torch.rand(16, generator=g), torch.randn(16, generator=g)
    h = torch.randn(3, 12, 8, 8, generator=g)
    return {
        "focal_gather": ((x, index, T, True), reference.focal_gather(x, index, T, True)),
        "focal_scatter": ((x, y, index, const, True), reference.focal_scatter(x, y, index, const, True)),
        "ample_fuse_pool": ((xl, x), reference.ample_fuse_pool(xl, x)),
        "ample_fuse_blend": ((xl, x, a, False), reference.ample_fuse_blend(xl, x, a, False)),
        "select_frames": ((logits, "topk", 2), reference.select_frames(logits, "topk", 2)),
        "gather_conv1x1": ((x, index, T, True, w1, 2, s1, b1, True),
                           reference.gather_conv1x1(x, index, T, True, w1, 2, s1, b1, True)),
        "conv1x1_scatter": ((h, w3, 2, s3, b3, x, index, False),
                            reference.conv1x1_scatter(h, w3, 2, s3, b3, x, index, False)),
    }


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_every_implementation_computes_the_reference_and_fills_out(impl):
    g = torch.Generator().manual_seed(11)
    for op, (args, want) in _inputs(g).items():
        fn = getattr(impl, op)
        got = fn(*args)
        wants = want if isinstance(want, tuple) else (want,)
        gots = got if isinstance(got, tuple) else (got,)
        for w, o in zip(wants, gots):
            torch.testing.assert_close(o, w, rtol=1e-6, atol=1e-6, msg=op)
        outs = tuple(torch.full_like(w, 7.0) if w.is_floating_point() else torch.full_like(w, -7) for w in wants)
        res = fn(*args, out=outs if op == "select_frames" else outs[0])
        res = res if isinstance(res, tuple) else (res,)
        for w, o, r in zip(wants, outs, res):
            assert r is o, op
            torch.testing.assert_close(o, w, rtol=1e-6, atol=1e-6, msg=op)


def _chain_inputs(g):
    """Inputs of the chain-reading ops (with a random LazyChain) and their reference results."""
    x = torch.randn(2 * T, 20, 6, 6, generator=g)
    chain = reference.LazyChain(torch.randint(0, 4, (2 * T,), generator=g, dtype=torch.int32),
                                torch.randn(3, 20, 6, 6, generator=g), 0b101, 2)
    index = torch.tensor([0, 3, 4, 7], dtype=torch.int64)
    y = torch.randn(4, 20, 6, 6, generator=g)
    xl = torch.randn(2 * T, 20, 3, 3, generator=g)
    a = torch.rand(2 * T, 20, generator=g)
    w1, s1, b1 = torch.randn(8, 10, generator=g) / 3, 0.5 + torch.rand(8, generator=g), torch.randn(8, generator=g)
    w3, s3, b3 = torch.randn(20, 4, generator=g) / 2, 0.5 + torch.rand(20, generator=g), torch.randn(20, generator=g)
    h = torch.randn(4, 8, 6, 6, generator=g)
    logical = reference.chain_materialize(x, chain)
    return chain, {
        "focal_gather": ((x, index, T, True), reference.lazy_focal_gather(x, index, T, True, chain)),
        "focal_scatter": ((x, y, index, None, True), reference.lazy_focal_scatter(x, y, index, True, chain)),
        "ample_fuse_pool": ((xl, x), reference.ample_fuse_pool(xl, logical)),
        "ample_fuse_blend": ((xl, x, a, True), reference.ample_fuse_blend(xl, logical, a, True)),
        "gather_conv1x1": ((x, index, T, True, w1, 2, s1, b1, True),
                           reference.gather_conv1x1(x, index, T, True, w1, 2, s1, b1, True, chain)),
        "conv1x1_scatter": ((h, w3, 2, s3, b3, x, index, False),
                            reference.conv1x1_scatter(h, w3, 2, s3, b3, x, index, False, chain)),
    }


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_every_implementation_reads_through_lazy_chains(impl):
    """chain= on every op that reads a stage tensor: the reference semantics (the plugin flavour has no fused-GEMM
    plugin yet and refuses a chain there with a clear error; its four frame plugins take chains)."""
    g = torch.Generator().manual_seed(14)
    chain, cases = _chain_inputs(g)
    for op, (args, want) in cases.items():
        fn = getattr(impl, op)
        if impl is IMPLS["export-plugin"] and op in ("gather_conv1x1", "conv1x1_scatter"):
            with pytest.raises(NotImplementedError, match=f"export-plugin: {op} with a lazy chain"):
                fn(*args, chain=chain)
            continue
        snapshot = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        got = fn(*args, chain=chain)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6, msg=op)
        if op in ("focal_gather", "focal_scatter", "gather_conv1x1", "conv1x1_scatter"):
            assert torch.equal(got, want), op  # gather and scatter are exact in every implementation
        for a, b in zip(args, snapshot):  # not in place unless asked
            assert not isinstance(a, torch.Tensor) or torch.equal(a, b), op
        out = torch.full_like(want, 7.0)
        assert fn(*args, chain=chain, out=out) is out
        torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6, msg=op)


# --------------------------------------------------------------------------------------------------- use_ops
def test_use_ops_nests_and_restores():
    a = wrap_ops(IMPLS["torch"], lambda n, f: f, name="A")
    b = wrap_ops(IMPLS["torch"], lambda n, f: f, name="B")
    assert kernels.current_ops() is None
    with use_ops(a) as got_a:
        assert got_a is a and kernels.current_ops() is a
        with use_ops(b):
            assert kernels.current_ops() is b
            assert kernels.resolve_ops("ext") is b
        assert kernels.current_ops() is a
        with pytest.raises(RuntimeError, match="boom"):
            with use_ops(b):
                raise RuntimeError("boom")
        assert kernels.current_ops() is a
        with use_ops("torch") as by_name:
            assert by_name is IMPLS["torch"] and kernels.current_ops() is by_name
        assert kernels.current_ops() is a
    assert kernels.current_ops() is None
    assert kernels.resolve_ops("torch") is IMPLS["torch"]


def test_use_ops_is_per_thread():
    seen = []
    with use_ops(export_ops.PORTABLE):
        t = threading.Thread(target=lambda: seen.append(kernels.current_ops()))
        t.start()
        t.join()
        assert kernels.current_ops() is export_ops.PORTABLE
    assert seen == [None]


def test_use_ops_refuses_what_is_not_an_implementation():
    with pytest.raises(TypeError, match=r"FusedOps.*focal_scatter: missing"):
        with use_ops(_ns(focal_scatter=None)):
            pass
    with pytest.raises(ValueError, match="kernels must be one of"):
        with use_ops("cuda"):
            pass
    assert kernels.current_ops() is None


class Recorder:
    """Wraps an implementation and records every call of every op (and the ids of the tensors returned)."""

    def __init__(self, base):
        self.calls: list[str] = []
        self.ops = wrap_ops(base, self._wrap, name="recorder")

    def _wrap(self, name, fn):
        def recorded(*args, **kwargs):
            self.calls.append(name)
            return fn(*args, **kwargs)
        return recorded

    def count(self, name: str) -> int:
        return self.calls.count(name)


@functools.cache
def _model(name="af_resnet50"):
    return randomize_model(afnet_edge.create_model(name, num_classes=5, num_frames=T), seed=3).eval()


@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3"])
@pytest.mark.parametrize("selection", ["topk", "threshold"])
def test_wrapper_sees_every_fused_op_call_of_a_compact_forward(name, selection):
    model = _model(name).configure(execution="compact", selection=selection, ratio=0.5, kernels="torch")
    clip = torch.randn(B, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    stages = sum(isinstance(m, DynamicFusion) for m in model.modules())
    rec = Recorder(kernels.ops("torch"))
    assert wrap_ops(kernels.ops("torch"), rec._wrap).focal_gather.__wrapped__ is IMPLS["torch"].focal_gather
    assert signature_mismatches(rec.ops) == []
    with torch.no_grad():
        plain = model(clip)
        with use_ops(rec.ops):
            got = model(clip)
        after = model(clip)
    selected = sum(int(m.sum().item() > 0) for m in got.masks)  # an empty selection skips the gather
    assert stages >= 2 and model.num_navigation > stages
    assert rec.count("select_frames") == stages
    assert rec.count("ample_fuse_pool") == rec.count("ample_fuse_blend") == stages
    assert rec.count("focal_scatter") == model.num_navigation
    assert rec.count("focal_gather") == selected
    assert len(rec.calls) == 3 * stages + model.num_navigation + selected
    assert torch.equal(got.logits, plain.logits) and torch.equal(after.logits, plain.logits)
    n = len(rec.calls)
    with torch.no_grad():
        model(clip)
    assert len(rec.calls) == n  # outside the block the model's own configuration is used again


def test_use_ops_overrides_the_kernels_configuration():
    """Inside use_ops the configured backend is not consulted: an implementation whose ops all fail proves it."""
    def failing(name, fn):
        def fail(*args, **kwargs):
            raise RuntimeError(f"{name} called through use_ops")
        return fail
    model = _model().configure(execution="compact", selection="topk", ratio=0.5, kernels="torch")
    clip = torch.randn(1, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(6))
    with torch.no_grad(), use_ops(wrap_ops(kernels.ops("torch"), failing)):
        with pytest.raises(RuntimeError, match="called through use_ops"):
            model(clip)


@pytest.mark.parametrize("flavour", ["portable", "plugin"])
def test_export_wrapper_runs_the_flavour_through_use_ops(flavour):
    from afnet_edge.export.onnx_export import ExportWrapper
    model = _model()
    clip = torch.randn(1, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(8))
    rec = Recorder(export_ops.FLAVOURS[flavour])
    seen = []

    def spy(name, fn):
        def call(*args, **kwargs):
            seen.append(kernels.current_ops())
            return fn(*args, **kwargs)
        return call
    spied = wrap_ops(rec.ops, spy)
    with torch.no_grad():
        got = ExportWrapper(model, spied, 0.5)(clip)
        ref = model.configure(execution="compact", selection="topk", ratio=0.5, kernels="torch")(clip).logits
    stages = sum(isinstance(m, DynamicFusion) for m in model.modules())
    assert rec.count("select_frames") == stages and rec.count("focal_scatter") == model.num_navigation
    assert seen and all(s is spied for s in seen)
    assert kernels.current_ops() is None
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="FusedOps"):
        ExportWrapper(model, object(), 0.5)


def test_use_ops_under_torch_compile_without_graph_breaks():
    """Dynamo cannot read a ContextVar without a graph break: the compiled forward sees use_ops through the guarded
    mirror, in one graph, and recompiles when the implementation changes."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    model = _model("af_mobilenetv3").configure(execution="compact", selection="topk", ratio=0.5, kernels="torch")
    clip = torch.randn(1, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
    compiled = torch.compile(model, backend="eager")
    rec = Recorder(kernels.ops("torch"))
    with torch.no_grad():
        plain = compiled(clip).logits
        with use_ops(rec.ops):
            got = compiled(clip).logits
        n = len(rec.calls)
        again = compiled(clip).logits
    torch._dynamo.reset()
    assert dict(counters["graph_break"]) == {}
    assert n == 3 * 2 + 2 * model.num_navigation  # 2 stages; topk at ratio 0.5 selects frames in every block
    assert len(rec.calls) == n
    assert torch.equal(got, plain) and torch.equal(again, plain)


# ------------------------------------------------------------------------------- the stage runner and the fusion
def test_masked_fusion_is_the_reference_composition():
    """reference.ample_fuse (the masked / training path, one upsampling) = blend(attention(pool)) of the two
    reference ops: values to the bit, gradients to rounding (the composition sums xl's gradient over two upsamplings)."""
    g = torch.Generator().manual_seed(12)
    att = DynamicFusion(32, 16, bias=True)
    for relu in (True, False):
        xl = torch.randn(2 * T, 32, 7, 5, generator=g, requires_grad=True)
        xb = torch.randn(2 * T, 32, 14, 10, generator=g, requires_grad=True)
        got = reference.ample_fuse(xl, xb, att, relu)
        grads = torch.autograd.grad(got.square().sum(), (xl, xb, *att.parameters()))
        want = reference.ample_fuse_blend(xl, xb, att(reference.ample_fuse_pool(xl, xb)), relu)
        assert torch.equal(got, want)
        wgrads = torch.autograd.grad(want.square().sum(), (xl, xb, *att.parameters()))
        for a, b in zip(grads, wgrads):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_run_af_stage_takes_keywords_only():
    from afnet_edge.layers.af_stage import run_af_stage
    params = list(inspect.signature(run_af_stage).parameters.values())
    assert params[0].name == "x" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), params
    with pytest.raises(TypeError, match="positional"):
        run_af_stage(torch.randn(4, 3, 8, 8), None, [], [], [], None, None, True)


def test_ext_without_kernels_for_the_device_is_the_torch_implementation(monkeypatch):
    """Where the extension has no kernels (a CPU-only build given CUDA tensors; here: CPU kernels switched off), every
    ext entry point is the "torch" implementation, keywords included."""
    from afnet_edge.kernels import torch_ops
    monkeypatch.setitem(ext._KERNELS, "cpu", False)
    calls = []
    for op in OP_NAMES:
        fn = getattr(torch_ops, op)
        monkeypatch.setattr(torch_ops, op, lambda *a, _fn=fn, _op=op, **k: calls.append(_op) or _fn(*a, **k))
    g = torch.Generator().manual_seed(13)
    for op, (args, want) in _inputs(g).items():
        got = getattr(ext.OPS, op)(*args)
        for w, o in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            torch.testing.assert_close(o, w, rtol=1e-6, atol=1e-6, msg=op)
    assert calls == list(OP_NAMES)
    x, y, index, const, _ = _inputs(g)["focal_scatter"][0]
    want = reference.focal_scatter(x, y, index, const, False)
    buf = x.clone()
    assert ext.focal_scatter(buf, y, index, const, False, inplace=True) is buf and torch.equal(buf, want)
    with pytest.raises(ValueError, match="sorted"):
        ext.focal_scatter(x, y, index.flip(0), const, False)
    with pytest.raises(ValueError, match="either inplace"):
        ext.focal_scatter(x, y, index, const, False, inplace=True, out=torch.empty_like(x))
