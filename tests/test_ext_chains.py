"""The compiled ops (afnet_edge._C) with lazy constant chains (issue 16) against afnet_edge.kernels.reference:
focal_gather / focal_scatter bit-exact (torch.equal) in float32, float16 and bfloat16; ample_fuse_pool / _blend
within the documented tolerance of the float64 reference and bit-identical to the same op on the materialised tensor;
a whole lazy stage equal to the eager compact stage; argument errors; opcheck of the chain overloads. The torch-side
implementation of chains is tested in tests/test_lazy_chains.py.

Inputs are fresh random values (never zero), outputs poisoned with NaN through ``out=``; chains have random start
values in [0, L], every ``upto`` in [0, L] and random ReLU bits.
"""
from __future__ import annotations

import os

import pytest
import torch

from afnet_edge.kernels import ext, reference
from afnet_edge.kernels.reference import LazyChain, chain_materialize

REQUIRE_EXT = os.environ.get("AFNET_EDGE_REQUIRE_EXT") == "1"
pytestmark = pytest.mark.skipif(not ext.AVAILABLE and not REQUIRE_EXT,
                                reason=f"afnet_edge._C not built ({ext.import_error()})")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
E = torch.ops.afnet_edge if ext.AVAILABLE else None


# The kernel tests' device fixture (CPU, CUDA when built), seeded generator, non-zero inputs and NaN-poisoned
# outputs, shared rather than copied.
from test_kernels import device, gen, poisoned, rand  # noqa: E402,F401  (fixtures are used by name)


def make_chain(n, chw, L, upto, dtype, device, gen, relu_mask=None) -> LazyChain:
    """A random chain over n frames: start in [0, L], consts (L, *chw), random ReLU bits (unless given)."""
    start = torch.randint(0, L + 1, (n,), generator=gen, dtype=torch.int32).to(device)
    consts = rand((L, *chw), dtype, device, gen)
    if relu_mask is None:
        relu_mask = int(torch.randint(0, 2 ** L, (1,), generator=gen)) if L else 0
    return LazyChain(start, consts, relu_mask, upto)


def tol(dtype):  # as tests/test_kernels.py (docs/kernels.md: pool/blend accumulate in float)
    return {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3),
            torch.bfloat16: dict(rtol=2e-2, atol=2e-2), torch.float64: dict(rtol=1e-12, atol=1e-12)}[dtype]


CHAIN_CASES = [(L, upto) for L in (0, 1, 3) for upto in range(L + 1)]


# ---------------------------------------------------------------------------------------------------------------------
# focal_gather / focal_scatter: bit-exact
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shift", [True, False], ids=["shift", "noshift"])
@pytest.mark.parametrize("L,upto", CHAIN_CASES, ids=lambda v: str(v))
def test_focal_gather_with_chain_is_exact(device, dtype, shift, L, upto, gen):
    B, T, C, H, W = 2, 6, 16, 3, 5
    x = rand((B * T, C, H, W), dtype, device, gen)
    index = torch.tensor([0, 2, 3, 5, 7, 11], device=device)
    chain = make_chain(B * T, (C, H, W), L, upto, dtype, device, gen)
    want = reference.lazy_focal_gather(x, index, T, shift, chain)
    out = poisoned(want.shape, dtype, device)
    x0, start0 = x.clone(), chain.start.clone()
    got = ext.focal_gather(x, index, T, shift, chain=chain, out=out)
    assert got is out and torch.equal(got, want)
    assert torch.equal(ext.focal_gather(x, index, T, shift, chain=chain), want)
    assert torch.equal(x, x0) and torch.equal(chain.start, start0)  # inputs untouched


def test_focal_gather_neighbours_get_their_own_chain(gen):
    """A frame with nothing pending next to frames with long chains: the shifted channel segments must carry the
    neighbours' chains (and a chain=None gather differs, so the comparison can fail)."""
    T, C = 4, 16
    x = rand((T, C, 2, 2), torch.float32, "cpu", gen)
    start = torch.tensor([0, 3, 0, 3], dtype=torch.int32)  # frames 1, 3: nothing pending; 0, 2: all 3 blocks
    chain = LazyChain(start, rand((3, C, 2, 2), torch.float32, "cpu", gen), 0b010, 3)
    index = torch.tensor([1, 3])
    got = ext.focal_gather(x, index, T, True, chain=chain)
    assert torch.equal(got, reference.lazy_focal_gather(x, index, T, True, chain))
    assert torch.equal(got[:, 2 * (C // 8):], x[index, 2 * (C // 8):])  # own channels: nothing pending
    assert not torch.equal(got[0, :C // 8], x[2, :C // 8])                # next frame's channels: its chain applied


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "id"])
@pytest.mark.parametrize("L,upto", CHAIN_CASES, ids=lambda v: str(v))
def test_focal_scatter_with_chain_is_exact(device, dtype, relu, L, upto, gen):
    N, C, H, W = 9, 16, 3, 4
    residual = rand((N, C, H, W), dtype, device, gen)
    index = torch.tensor([0, 3, 4, 8], device=device)
    y = rand((index.numel(), C, H, W), dtype, device, gen)
    chain = make_chain(N, (C, H, W), L, upto, dtype, device, gen)
    want = reference.lazy_focal_scatter(residual, y, index, relu, chain)
    # out of place, into a poisoned out=
    out = poisoned(want.shape, dtype, device)
    got = ext.focal_scatter(residual, y, index, None, relu, chain=chain, out=out)
    assert got is out and torch.equal(got, want)
    assert torch.equal(ext.focal_scatter(residual, y, index, None, relu, chain=chain), want)
    # in place: the unselected rows are left exactly as stored (poison them to see that they are not even rewritten)
    res = residual.clone()
    unsel = torch.tensor([f for f in range(N) if f not in index.tolist()], device=device)
    res[unsel] = float("nan")
    got = ext.focal_scatter(res, y, index, None, relu, chain=chain, inplace=True)
    assert got is res
    assert torch.equal(res[index], want[index]) and bool(res[unsel].isnan().all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_focal_scatter_chain_edge_selections(device, dtype, gen):
    N, C = 6, 8
    residual = rand((N, C, 2, 3), dtype, device, gen)
    chain = make_chain(N, (C, 2, 3), 2, 2, dtype, device, gen)
    for index in (torch.tensor([], dtype=torch.int64), torch.arange(N)):
        index = index.to(device)
        y = rand((index.numel(), C, 2, 3), dtype, device, gen)
        want = reference.lazy_focal_scatter(residual, y, index, True, chain)
        assert torch.equal(ext.focal_scatter(residual, y, index, None, True, chain=chain), want)
        res = residual.clone()
        assert torch.equal(ext.focal_scatter(res, y, index, None, True, chain=chain, inplace=True), want)


def test_non_contiguous_chain_tensors(gen):
    N, C = 8, 16
    x = rand((N, C, 3, 4), torch.float32, "cpu", gen)
    consts = rand((3, C, 4, 3), torch.float32, "cpu", gen).transpose(2, 3)  # (3, C, 3, 4), not contiguous
    start = torch.randint(0, 4, (2 * N,), generator=gen, dtype=torch.int32)[::2]
    chain = LazyChain(start, consts, 0b101, 3)
    index = torch.tensor([1, 4, 6])
    assert torch.equal(ext.focal_gather(x, index, 4, True, chain=chain),
                       reference.lazy_focal_gather(x, index, 4, True, chain))


# ---------------------------------------------------------------------------------------------------------------------
# A whole lazy stage equals the eager compact stage, bit for bit
def _body(z: torch.Tensor, j: int) -> torch.Tensor:
    """A stand-in focal body: deterministic, element-wise, different per block, in the storage dtype."""
    return torch.tanh(z * (0.5 + 0.25 * j)) - 0.125 * j


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shift", [True, False], ids=["shift", "noshift"])
def test_lazy_stage_equals_eager_stage(device, dtype, shift, gen):
    B, T, C, H, W, L = 2, 5, 16, 3, 4, 4
    N = B * T
    x = rand((N, C, H, W), dtype, device, gen)
    consts = rand((L, C, H, W), dtype, device, gen)
    relu_mask = 0b1011
    sel = torch.rand((L, N), generator=gen) < 0.45
    sel[0, 3], sel[:, 7] = True, False  # a frame never selected
    index = [torch.nonzero(sel[j]).flatten().to(device) for j in range(L)]
    # eager compact: every block rewrites every frame (unselected: φ_j(v + K_j))
    s_eager = x.clone()
    for j in range(L):
        y = _body(reference.focal_gather(s_eager, index[j], T, shift), j)
        s_eager = reference.focal_scatter(s_eager, y, index[j], consts[j], bool(relu_mask >> j & 1))
    # lazy: only the selected rows are ever written; everyone else's blocks stay pending
    s = x.clone()
    start = torch.zeros(N, dtype=torch.int32, device=device)
    for j in range(L):
        c = LazyChain(start, consts, relu_mask, j)
        y = _body(ext.focal_gather(s, index[j], T, shift, chain=c), j)
        s = ext.focal_scatter(s, y, index[j], None, bool(relu_mask >> j & 1), chain=c, inplace=True)
        start.index_fill_(0, index[j], j + 1)
    final = LazyChain(start, consts, relu_mask, L)
    assert torch.equal(chain_materialize(s, final), s_eager)
    assert torch.equal(s[7], x[7])  # the never-selected frame was never rewritten
    # the fusion readers with upto = L see the eager tensor
    xl = rand((N, C, 2, 2), dtype, device, gen)
    a = torch.rand((N, C), generator=gen).to(dtype).to(device)
    assert torch.equal(ext.ample_fuse_pool(xl, s, chain=final), ext.ample_fuse_pool(xl, s_eager))
    assert torch.equal(ext.ample_fuse_blend(xl, s, a, True, chain=final), ext.ample_fuse_blend(xl, s_eager, a, True))


# ---------------------------------------------------------------------------------------------------------------------
# ample_fuse_pool / ample_fuse_blend: logical xb
AMPLE_SIZES = [(6, 8, (4, 4), (8, 8)), (3, 5, (7, 7), (14, 14)), (4, 3, (3, 5), (7, 11)), (2, 4, (6, 6), (6, 6))]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sizes", AMPLE_SIZES, ids=lambda s: f"{s[2][0]}x{s[2][1]}to{s[3][0]}x{s[3][1]}")
@pytest.mark.parametrize("L", [1, 4])
def test_ample_fuse_pool_with_chain(device, dtype, sizes, L, gen):
    n, c, (h, w), (hh, ww) = sizes
    xl, xb = rand((n, c, h, w), dtype, device, gen), rand((n, c, hh, ww), dtype, device, gen)
    chain = make_chain(n, (c, hh, ww), L, L, dtype, device, gen)
    logical = chain_materialize(xb, chain)
    out = poisoned((n, c), dtype, device)
    got = ext.ample_fuse_pool(xl, xb, chain=chain, out=out)
    assert got is out
    torch.testing.assert_close(got, reference.ample_fuse_pool(xl.double(), logical.double()).to(dtype), **tol(dtype))
    assert torch.equal(got, ext.ample_fuse_pool(xl, logical))  # same sums in the same order
    assert not torch.equal(got, ext.ample_fuse_pool(xl, xb)) or bool((chain.start >= L).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "id"])
@pytest.mark.parametrize("sizes", AMPLE_SIZES, ids=lambda s: f"{s[2][0]}x{s[2][1]}to{s[3][0]}x{s[3][1]}")
def test_ample_fuse_blend_with_chain(device, dtype, relu, sizes, gen):
    n, c, (h, w), (hh, ww) = sizes
    L = 3
    xl, xb = rand((n, c, h, w), dtype, device, gen), rand((n, c, hh, ww), dtype, device, gen)
    a = torch.rand((n, c), generator=gen).clamp(0.05, 0.95).to(dtype).to(device)
    chain = make_chain(n, (c, hh, ww), L, L, dtype, device, gen)
    logical = chain_materialize(xb, chain)
    out = poisoned(xb.shape, dtype, device)
    got = ext.ample_fuse_blend(xl, xb, a, relu, chain=chain, out=out)
    assert got is out
    want = reference.ample_fuse_blend(xl.double(), logical.double(), a.double(), relu).to(dtype)
    torch.testing.assert_close(got, want, **tol(dtype))
    assert torch.equal(got, ext.ample_fuse_blend(xl, logical, a, relu))


def test_fusion_with_partial_upto(gen):
    """upto < L reads only the due blocks (a reader in the middle of the stage)."""
    n, c = 4, 8
    xl, xb = rand((n, c, 3, 3), torch.float32, "cpu", gen), rand((n, c, 6, 6), torch.float32, "cpu", gen)
    chain = make_chain(n, (c, 6, 6), 4, 2, torch.float32, "cpu", gen)
    assert torch.equal(ext.ample_fuse_pool(xl, xb, chain=chain),
                       ext.ample_fuse_pool(xl, chain_materialize(xb, chain)))


# ---------------------------------------------------------------------------------------------------------------------
# errors
def test_chain_argument_errors(gen):
    N, C = 4, 16
    x = rand((N, C, 2, 2), torch.float32, "cpu", gen)
    index = torch.tensor([1, 2])
    y = rand((2, C, 2, 2), torch.float32, "cpu", gen)
    good = make_chain(N, (C, 2, 2), 2, 1, torch.float32, "cpu", gen)
    # the Python entry points
    with pytest.raises(ValueError, match="const must be None"):
        ext.focal_scatter(x, y, index, x[0], True, chain=good)
    with pytest.raises(TypeError, match="chain.start must be an int32"):
        ext.focal_gather(x, index, 2, True, chain=good._replace(start=good.start.long()))
    with pytest.raises(ValueError, match="chain.consts must be"):
        ext.ample_fuse_pool(x, x, chain=good._replace(consts=good.consts[:, :8]))
    with pytest.raises(ValueError, match="chain.upto"):
        ext.focal_scatter(x, y, index, None, True, chain=good._replace(upto=3))
    with pytest.raises(TypeError, match="chain must be a LazyChain"):
        ext.focal_gather(x, index, 2, True, chain=(good.start, good.consts, 0, 1))
    with pytest.raises(ValueError, match="chain.start values"):
        ext.focal_gather(x, index, 2, True, chain=good._replace(start=good.start + 5))
    # the schema directly: clear errors naming the argument
    with pytest.raises(ValueError, match="chain_start and chain_consts must be given together"):
        E.focal_gather(x, index, 2, True, good.start, None, 0, 1)
    with pytest.raises(ValueError, match="chain_relu_mask and chain_upto need a chain"):
        E.ample_fuse_pool(x, x, None, None, 0, 1)
    with pytest.raises(TypeError, match="chain_start must be int32"):
        E.focal_gather(x, index, 2, True, good.start.long(), good.consts, 0, 1)
    with pytest.raises(ValueError, match=r"chain_start must be \(N,\)"):
        E.focal_scatter(x, y, index, None, True, good.start[:3], good.consts, 0, 1)
    with pytest.raises(ValueError, match="chain_consts must be"):
        E.ample_fuse_blend(x, x, x[:, :, 0, 0], True, good.start, good.consts[:, :, :1], 0, 1)
    with pytest.raises(TypeError, match="chain_consts must have the dtype"):
        E.focal_gather(x, index, 2, True, good.start, good.consts.double(), 0, 1)
    with pytest.raises(ValueError, match=r"chain_upto must be in \[0, L=2\]"):
        E.focal_gather(x, index, 2, True, good.start, good.consts, 0, 3)
    with pytest.raises(ValueError, match="chain_relu_mask must be >= 0"):
        E.focal_gather(x, index, 2, True, good.start, good.consts, -1, 1)
    with pytest.raises(ValueError, match="at most 62 blocks"):
        E.focal_gather(x, index, 2, True, good.start, x.new_ones((63, C, 2, 2)), 0, 1)
    with pytest.raises(ValueError, match="const must be None with a lazy chain"):
        E.focal_scatter(x, y, index, x[0], True, good.start, good.consts, 0, 1)


def test_chain_with_autograd_is_an_error(gen):
    N, C = 4, 8
    x = rand((N, C, 2, 2), torch.float32, "cpu", gen).requires_grad_()
    chain = make_chain(N, (C, 2, 2), 2, 2, torch.float32, "cpu", gen)
    with pytest.raises(ValueError, match="inference-only"):
        ext.focal_gather(x, torch.tensor([1]), 2, True, chain=chain)
    with pytest.raises(ValueError, match="inference-only"):
        ext.ample_fuse_blend(x, x, torch.rand(N, C), True, chain=chain)
    with pytest.raises(ValueError, match="inference-only"):  # the schema under autograd, bypassing the entry point
        E.ample_fuse_pool(x, x, chain.start, chain.consts, 0, 2)
    with torch.no_grad():  # fine without autograd
        assert torch.equal(ext.focal_gather(x, torch.tensor([1]), 2, True, chain=chain),
                           reference.lazy_focal_gather(x.detach(), torch.tensor([1]), 2, True, chain))


# ---------------------------------------------------------------------------------------------------------------------
# opcheck of the chain arguments (schema, fake kernels, autograd registration, AOT dispatch)
def _chain_samples():
    g = torch.Generator().manual_seed(16)
    r = lambda *s: rand(s, torch.float32, "cpu", g)  # noqa: E731
    idx = torch.tensor([0, 2, 3, 7])
    x, y, xl, xb = r(8, 16, 3, 4), r(4, 16, 3, 4), r(8, 16, 3, 2), r(8, 16, 6, 4)
    a = torch.rand(8, 16, generator=g)
    st = torch.randint(0, 4, (8,), generator=g, dtype=torch.int32)
    cx, cb = (st, r(3, 16, 3, 4), 0b101, 2), (st, r(3, 16, 6, 4), 0b011, 3)
    return [
        ("focal_gather", (x, idx, 4, True, *cx), {}),
        ("focal_gather.out", (x, idx, 4, False, *cx), {"out": torch.empty(4, 16, 3, 4)}),
        ("focal_scatter", (x, y, idx, None, True, *cx), {}),
        ("focal_scatter.out", (x, y, idx, None, False, *cx), {"out": torch.empty(8, 16, 3, 4)}),
        ("focal_scatter_", (x.clone(), y, idx, None, True, *cx), {}),
        ("ample_fuse_pool", (xl, xb, *cb), {}),
        ("ample_fuse_pool.out", (xl, xb, *cb), {"out": torch.empty(8, 16)}),
        ("ample_fuse_blend", (xl, xb, a, True, *cb), {}),
        ("ample_fuse_blend.out", (xl, xb, a, False, *cb), {"out": torch.empty(8, 16, 6, 4)}),
    ]


@pytest.mark.parametrize("name,args,kwargs", _chain_samples() if ext.AVAILABLE else [],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_opcheck_with_chain(name, args, kwargs):
    op_name, _, overload = name.partition(".")
    torch.library.opcheck(getattr(getattr(E, op_name), overload or "default"), args, kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# export/ops.py PLUGIN flavour: chains travel as two trailing plugin inputs and two fields
def test_plugin_flavour_with_chain(tmp_path, gen):
    onnx = pytest.importorskip("onnx", reason="onnx not installed (export extra)")
    import io

    from afnet_edge.export import ops as X
    from afnet_edge.export import plugins as P

    T, C, L = 4, 16, 3
    x = rand((2 * T, C, 3, 4), torch.float32, "cpu", gen)
    xl = rand((2 * T, C, 2, 2), torch.float32, "cpu", gen)
    a = torch.rand(2 * T, C, generator=gen)
    index = torch.tensor([0, 2, 5, 7])
    chain = make_chain(2 * T, (C, 3, 4), L, 2, torch.float32, "cpu", gen)
    final = chain._replace(upto=L)
    y = rand((4, C, 3, 4), torch.float32, "cpu", gen)
    # eagerly the markers compute the reference
    assert torch.equal(X.PLUGIN.focal_gather(x, index, T, True, chain=chain),
                       reference.lazy_focal_gather(x, index, T, True, chain))
    assert torch.equal(X.PLUGIN.focal_scatter(x, y, index, None, True, chain=chain),
                       reference.lazy_focal_scatter(x, y, index, True, chain))
    with pytest.raises(ValueError, match="const must be None"):
        X.PLUGIN.focal_scatter(x, y, index, x[0], True, chain=chain)

    class Stage(torch.nn.Module):
        def forward(self, x, xl, a, start, consts):
            c = LazyChain(start, consts, 0b101, 2)
            g = X.PLUGIN.focal_gather(x, index, T, True, chain=c)
            s = X.PLUGIN.focal_scatter(x, g * 0.5, index, None, True, chain=c)
            cl = LazyChain(start, consts, 0b101, L)
            p = X.PLUGIN.ample_fuse_pool(xl, s, chain=cl)
            q = X.PLUGIN.ample_fuse_pool(xl, s)  # no chain: no extra inputs, fields 0
            return X.PLUGIN.ample_fuse_blend(xl, s, a, False, chain=cl) + p.mean() + q.mean()

    buf = io.BytesIO()
    torch.onnx.export(Stage(), (x, xl, a, final.start, final.consts), buf, dynamo=False, opset_version=17,
                      custom_opsets={P.PLUGIN_DOMAIN: 1})
    graph = onnx.load_from_string(buf.getvalue()).graph
    graph_inputs = [i.name for i in graph.input]
    nodes = [n for n in graph.node if n.domain == P.PLUGIN_DOMAIN]
    by_op = {}
    for n in nodes:
        by_op.setdefault(n.op_type, []).append(n)
    assert sorted(by_op) == ["AmpleFuseBlend", "AmpleFusePool", "FocalGather", "FocalScatter"]
    for n in nodes:
        attrs = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        assert attrs["plugin_version"].decode() == P.PLUGIN_VERSION == "3"
        assert sorted(k for k in attrs if not k.startswith("plugin_")) == sorted(P.BY_NAME[n.op_type].fields)
        n_own = len(P.BY_NAME[n.op_type].inputs)
        chained = len(n.input) == n_own + 2
        assert len(n.input) in (n_own, n_own + 2)
        if chained:  # the graph inputs start / consts feed the trailing inputs
            assert list(n.input[n_own:]) == graph_inputs[3:5], (n.input, graph_inputs)
            assert attrs["chain_relu_mask"] == 0b101 and attrs["chain_upto"] == (2 if n.op_type.startswith("Focal")
                                                                                 else L)
        else:
            assert attrs["chain_relu_mask"] == 0 and attrs["chain_upto"] == 0
    assert sum(len(n.input) == len(P.BY_NAME[n.op_type].inputs) for n in by_op["AmpleFusePool"]) == 1  # no chain


# ---------------------------------------------------------------------------------------------------------------------
# whole models on the extension: the lazy plan is bit-identical to the eager plan
@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3"])
def test_models_lazy_plan_on_the_extension_is_bit_identical_to_eager(name, one_thread):
    import afnet_edge
    from conftest import randomize_model

    T = 4
    model = randomize_model(afnet_edge.create_model(name, num_classes=7, num_frames=T), seed=3).eval()
    g = torch.Generator().manual_seed(13)
    clip = torch.randn(2, T, 3, 64, 64, generator=g)
    masks = [(torch.rand(2, T, generator=g) > 0.5).float() for _ in range(model.num_navigation)]
    masks[0][0] = 0.0  # a video with nothing selected in block 0
    runs = {}
    with torch.no_grad():
        for kernels, plan in (("ext", "eager"), ("ext", "lazy"), ("torch", "lazy")):
            model.configure(execution="compact", kernels=kernels, plan=plan)
            runs[kernels, plan] = (model(clip, masks=masks).logits,
                                   model.configure(selection="topk", ratio=0.5)(clip).logits)
    for i in range(2):
        assert torch.equal(runs["ext", "lazy"][i], runs["ext", "eager"][i])
        torch.testing.assert_close(runs["ext", "lazy"][i], runs["torch", "lazy"][i], rtol=1e-5, atol=1e-5)
    # the lazy plan really hands chains to the extension's ops
    from afnet_edge.kernels import use_ops, wrap_ops
    chained = []

    def spy(op, fn):
        def call(*args, **kwargs):
            if kwargs.get("chain") is not None:
                chained.append(op)
            return fn(*args, **kwargs)
        return call
    with torch.no_grad(), use_ops(wrap_ops(ext.OPS, spy)):
        got = model.configure(execution="compact", plan="lazy", selection="threshold")(clip, masks=masks).logits
    assert torch.equal(got, runs["ext", "lazy"][0])
    assert {"focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend"} <= set(chained), chained
