"""The compiled bLVNet-TAM ops (issue 13: ``temporal_aggregate``, ``temporal_aggregate_pair``, ``bl_merge`` in
afnet_edge._C) against :mod:`afnet_edge.kernels.blvnet_reference`.

Tolerances (the kernels compute in float — double for float64 — with float32 weights and round once):

* float32 / float64 TAM: ``|got − want| ≤ 1e-5·|want| + 1e-6·Σ|w·x|`` against a float64 evaluation of the reference
  (and against the float32 reference itself); float64 within 1e-12 relative.
* float16 / bfloat16 TAM: at most **1 ulp** of the output dtype (+ 2^-21·Σ|w·x|, the float accumulation's error,
  which matters only under cancellation near zero) from the float64 TAM of the same inputs and float32 weights;
  against ``blvnet_reference`` run in the 16-bit dtype (which rounds the weights to that dtype
  first) ``|got − ref| ≤ 2 ulp(|ref|) + 2·eps·Σ|w·x|`` (eps = 2^-10 float16, 2^-7 bfloat16).
* ``bl_merge``: bit-identical (``torch.equal``) in every dtype: one add, one rounding, like the reference.

Inputs are fresh random values (never zero); odd sizes, K = 1, 3, 5, 7 (taps past both clip ends), T = 1; pair
weights from :func:`fold_pair_weights` of random taps, and the pair op checked against the release's official op
sequence (duplicated pairs, per-tap TAM, slot gathers). The kernels' out-of-output writes are checked with NaN guards
in ``csrc/kernels/selftest.cpp`` (these ops allocate their outputs).
"""
from __future__ import annotations

import math
import os
import zlib

import pytest
import torch

from afnet_edge.kernels import blvnet_reference as ref
from afnet_edge.kernels import ext
from skip_reasons import NO_CUDA

REQUIRE_EXT = os.environ.get("AFNET_EDGE_REQUIRE_EXT") == "1"
HAVE_OPS = ext.AVAILABLE and ext.has_blvnet_kernels("cpu")
pytestmark = pytest.mark.skipif(not HAVE_OPS and not REQUIRE_EXT,
                                reason=f"afnet_edge._C without the bLVNet-TAM ops ({ext.import_error()})")
E = torch.ops.afnet_edge if HAVE_OPS else None
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA))]
MANT = {torch.float16: 10, torch.bfloat16: 7}


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not ext.has_blvnet_kernels("cuda"):
        pytest.skip(f"{NO_CUDA}: afnet_edge._C was built without CUDA kernels")
    return torch.device(request.param)


@pytest.fixture
def gen(request):
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))


def rand(shape, dtype, device, g) -> torch.Tensor:
    """Values in ±[0.1, 2): never zero."""
    mag = torch.rand(shape, generator=g, dtype=torch.float64) * 1.9 + 0.1
    sign = torch.randint(0, 2, shape, generator=g).to(torch.float64) * 2 - 1
    return (mag * sign).to(dtype).to(device)


def ulp(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Spacing of ``dtype`` at |v| (float64 tensor), the smallest normal's spacing below it."""
    fi = torch.finfo(dtype)
    a = v.abs().clamp_min(fi.tiny)
    return torch.exp2(torch.floor(torch.log2(a)) - MANT[dtype])


def tam64(x: torch.Tensor, w: torch.Tensor, t: int, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference TAM in float64 (float32 weights exact in float64) and Σ|w·x| (for the tolerance)."""
    want = ref.temporal_aggregate(x.double().cpu(), w.double().cpu(), t, relu)
    sabs = ref.temporal_aggregate(x.double().cpu().abs(), w.double().cpu().abs(), t, False)
    return want, sabs


def check_tam(got: torch.Tensor, want64: torch.Tensor, sabs: torch.Tensor, dtype: torch.dtype) -> None:
    got = got.double().cpu()
    if dtype == torch.float64:
        bound = 1e-12 * want64.abs() + 1e-13 * sabs
    elif dtype == torch.float32:
        bound = 1e-5 * want64.abs() + 1e-6 * sabs
    else:  # one rounding of a float accumulation: one ulp, plus the float sum's own error under cancellation
        bound = ulp(want64, dtype) + 2.0 ** -21 * sabs
    err = (got - want64).abs()
    assert bool((err <= bound).all()), f"max error {float(err.max()):.3g}, worst bound ratio {float((err / bound).max()):.3g}"


def check_vs_dtype_reference(got: torch.Tensor, refd: torch.Tensor, sabs: torch.Tensor, dtype: torch.dtype) -> None:
    got, r = got.double().cpu(), refd.double().cpu()
    eps = 2.0 ** -MANT[dtype]
    bound = 2 * ulp(r, dtype) + 2 * eps * sabs
    assert bool(((got - r).abs() <= bound).all())


TAM_SHAPES = [  # (B, T, C, H, W, K)
    (2, 8, 16, 7, 7, 3),     # f8-like clip, odd plane
    (3, 5, 5, 3, 5, 3),      # odd everything
    (2, 3, 4, 4, 4, 5),      # K = 5 > T: taps past both ends
    (1, 2, 3, 2, 6, 7),      # K = 7 > 2·T
    (4, 1, 6, 3, 3, 3),      # T = 1: centre tap only
    (2, 6, 8, 8, 8, 1),      # K = 1
    (1, 16, 64, 14, 14, 3),  # stage-like, several blocks
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", TAM_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("relu", [True, False])
def test_temporal_aggregate_matches_reference(device, gen, shape, dtype, relu):
    b, t, c, h, w, k = shape
    x = rand((b * t, c, h, w), dtype, device, gen)
    wt = rand((k, c), torch.float32, device, gen)
    got = E.temporal_aggregate(x, wt, t, relu)
    assert got.shape == x.shape and got.dtype == dtype and got.is_contiguous()
    want64, sabs = tam64(x, wt, t, relu)
    check_tam(got, want64, sabs, dtype)
    refd = ref.temporal_aggregate(x, wt, t, relu)  # the reference in x's dtype (weights cast to it)
    if dtype == torch.float32:
        torch.testing.assert_close(got, refd, rtol=1e-5, atol=1e-6 * float(sabs.max()))
    elif dtype in MANT:
        check_vs_dtype_reference(got, refd, sabs, dtype)
    if relu:
        assert bool((got >= 0).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 4, 16, 7, 7, 3), (3, 3, 5, 3, 5, 5), (2, 2, 4, 4, 4, 7), (4, 1, 6, 3, 3, 3),
                                   (1, 8, 32, 14, 14, 3)], ids=lambda s: "x".join(map(str, s)))
def test_temporal_aggregate_pair_matches_reference(device, gen, shape, dtype):
    b, p, c, h, w, k = shape
    y = rand((b * p, c, h, w), dtype, device, gen)
    w_big, w_little = ref.fold_pair_weights(rand((k, c), torch.float32, device, gen))
    big, little = E.temporal_aggregate_pair(y, w_big, w_little, p, True)
    for got, wf in ((big, w_big), (little, w_little)):
        assert got.shape == y.shape and got.dtype == dtype
        want64, sabs = tam64(y, wf, p, True)
        check_tam(got, want64, sabs, dtype)
    rb, rl = ref.temporal_aggregate_pair(y, w_big, w_little, p)
    if dtype == torch.float32:
        torch.testing.assert_close(big, rb, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(little, rl, rtol=1e-5, atol=1e-5)


def test_pair_op_is_the_official_stage_tam(gen):
    """The pair op on P pair features = the release's sequence: duplicate pairs into 2P slots, TAM per tap + pad/slice
    + stack + sum + ReLU, gather odd (big) / even (little) slots — ≤ 1e-5 relative in float32."""
    b, p, c, h, w = 2, 4, 24, 7, 7
    y = rand((b * p, c, h, w), torch.float32, "cpu", gen)
    taps = rand((3, c), torch.float32, "cpu", gen)
    x2 = ref.duplicate_pairs(y)  # rows 2m, 2m+1 = y_m: clip-major, so pair k of clip b is slots 2k, 2k+1 of clip b
    official = ref.tam_official(x2, [t.view(c, 1, 1, 1) for t in taps], 2 * p)
    big_rows, little_rows = ref.pair_rows(x2.shape[0], "cpu")
    big, little = E.temporal_aggregate_pair(y, *ref.fold_pair_weights(taps), p, True)
    torch.testing.assert_close(big, official[big_rows], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(little, official[little_rows], rtol=1e-5, atol=1e-6)


MERGE_SHAPES = [  # (N, C, h, w, H, W)
    (4, 8, 7, 7, 14, 14),    # 2× (layers 1–3)
    (3, 16, 14, 14, 14, 14),  # identity (layer0)
    (2, 5, 3, 5, 7, 11),     # general legacy nearest
    (2, 3, 4, 4, 8, 8),
    (1, 7, 5, 6, 3, 4),      # downsampling axes
    (2, 4, 4, 8, 8, 8),      # 2× rows, identity columns
    (2, 3, 7, 3, 14, 9),     # 2× rows, 3× columns
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", MERGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("relu", [True, False])
def test_bl_merge_is_bit_identical(device, gen, shape, dtype, relu):
    n, c, h, w, hh, ww = shape
    big = rand((n, c, h, w), dtype, device, gen)
    little = rand((n, c, hh, ww), dtype, device, gen)
    got = E.bl_merge(big, little, relu)
    want = ref.bl_merge(big, little, relu)
    assert got.dtype == dtype and got.shape == little.shape
    assert torch.equal(got, want)


def test_non_contiguous_inputs(gen):
    x = rand((8, 16, 6, 5), torch.float32, "cpu", gen).to(memory_format=torch.channels_last)
    wt = rand((16, 3), torch.float32, "cpu", gen).t()  # (3, 16), transposed view
    torch.testing.assert_close(E.temporal_aggregate(x, wt, 4, True), ref.temporal_aggregate(x, wt, 4), rtol=1e-5,
                               atol=1e-5)
    big = rand((2, 16, 5, 3), torch.float32, "cpu", gen).transpose(2, 3)
    little = rand((2, 16, 6, 10), torch.float32, "cpu", gen).to(memory_format=torch.channels_last)
    assert torch.equal(E.bl_merge(big, little, True), ref.bl_merge(big, little))


def test_empty_tensors(gen):
    x = torch.empty(0, 4, 3, 3)
    assert E.temporal_aggregate(x, torch.ones(3, 4), 2, True).shape == (0, 4, 3, 3)
    big, little = E.temporal_aggregate_pair(torch.empty(4, 0, 3, 3), torch.ones(3, 0), torch.ones(3, 0), 2, True)
    assert big.shape == little.shape == (4, 0, 3, 3)
    assert E.bl_merge(torch.empty(0, 4, 2, 2), torch.empty(0, 4, 4, 4), True).shape == (0, 4, 4, 4)


# ---------------------------------------------------------------------------------------------------------------------
# argument errors name the argument and the expected form
def test_errors(gen):
    x = rand((8, 4, 3, 3), torch.float32, "cpu", gen)
    w = rand((3, 4), torch.float32, "cpu", gen)
    with pytest.raises(ValueError, match=r"x must be a 4-D tensor \(B·T, C, H, W\)"):
        E.temporal_aggregate(x[0], w, 4, True)
    with pytest.raises(ValueError, match="x has 8 rows, not a multiple of num_frames = 3"):
        E.temporal_aggregate(x, w, 3, True)
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        E.temporal_aggregate(x, w, 0, True)
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C\) = \(odd K <= 63, 4\)"):
        E.temporal_aggregate(x, w[:2], 4, True)
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C\)"):
        E.temporal_aggregate(x, rand((3, 5), torch.float32, "cpu", gen), 4, True)
    with pytest.raises(TypeError, match=r"weight must be float32 \(K, C\)"):
        E.temporal_aggregate(x, w.half(), 4, True)
    with pytest.raises(TypeError, match="x must be float32, float16, bfloat16 or float64"):
        E.temporal_aggregate(x.int(), w, 4, True)
    with pytest.raises(ValueError, match="w_little must have w_big's shape"):
        E.temporal_aggregate_pair(x, w, rand((5, 4), torch.float32, "cpu", gen), 4, True)
    with pytest.raises(ValueError, match="y has 8 rows, not a multiple of num_pairs = 3"):
        E.temporal_aggregate_pair(x, w, w, 3, True)
    with pytest.raises(ValueError, match=r"w_big must have shape \(K, C\)"):
        E.temporal_aggregate_pair(x, w[:2], w[:2], 4, True)
    with pytest.raises(ValueError, match="big and little must agree in"):
        E.bl_merge(x[:4], rand((8, 4, 6, 6), torch.float32, "cpu", gen), True)
    with pytest.raises(TypeError, match="big must have the dtype of little"):
        E.bl_merge(x.double(), rand((8, 4, 6, 6), torch.float32, "cpu", gen), True)
    with pytest.raises(ValueError, match=r"big and little must be \(N, C, h, w\) and \(N, C, H, W\)"):
        E.bl_merge(x[0], x, True)
    with pytest.raises(ValueError, match="spatial sizes must be positive"):
        E.bl_merge(torch.empty(8, 4, 0, 3), x, True)


# ---------------------------------------------------------------------------------------------------------------------
# opcheck: schema, fake kernels, AOT dispatch
def _samples():
    g = torch.Generator().manual_seed(13)
    x = rand((8, 16, 3, 5), torch.float32, "cpu", g)
    w = rand((3, 16), torch.float32, "cpu", g)
    wb, wl = ref.fold_pair_weights(rand((5, 16), torch.float32, "cpu", g))
    return [
        ("temporal_aggregate", (x, w, 4, True)),
        ("temporal_aggregate", (x.half(), w, 2, False)),
        ("temporal_aggregate_pair", (x, wb, wl, 4, True)),
        ("bl_merge", (rand((4, 8, 3, 4), torch.float32, "cpu", g), rand((4, 8, 6, 8), torch.float32, "cpu", g), True)),
        ("bl_merge", (rand((4, 8, 6, 8), torch.bfloat16, "cpu", g), rand((4, 8, 6, 8), torch.bfloat16, "cpu", g),
                      False)),
    ]


@pytest.mark.parametrize("i", range(5))
@pytest.mark.parametrize("grad", [False, True])
def test_opcheck(i, grad):
    name, args = _samples()[i]
    if grad:    # the autograd registration too (floating inputs that require grad)
        args = tuple(a.detach().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                     for a in args)
    torch.library.opcheck(getattr(E, name).default, args)


# ---------------------------------------------------------------------------------------------------------------------
# Python entry points (ext.*): the op under no grad, the differentiable reference when grad is needed
def test_entry_points(gen):
    x = rand((6, 8, 4, 4), torch.float32, "cpu", gen)
    w = rand((3, 8), torch.float64, "cpu", gen)  # converted to float32 for the kernel
    assert torch.equal(ext.temporal_aggregate(x, w, 3), E.temporal_aggregate(x, w.float(), 3, True))
    wb, wl = ref.fold_pair_weights(w.float())
    for a, b in zip(ext.temporal_aggregate_pair(x, wb, wl, 3), E.temporal_aggregate_pair(x, wb, wl, 3, True)):
        assert torch.equal(a, b)
    big = rand((6, 8, 2, 2), torch.float32, "cpu", gen)
    assert torch.equal(ext.bl_merge(big, x), E.bl_merge(big, x, True))
    wg = w.float().requires_grad_()
    out = ext.temporal_aggregate(x, wg, 3)  # the kernel with its autograd formula (training runs it too)
    out.sum().backward()
    assert wg.grad is not None and bool(wg.grad.abs().sum() > 0)
    assert torch.equal(out.detach(), E.temporal_aggregate(x, w.float(), 3, True))


# ---------------------------------------------------------------------------------------------------------------------
# autograd: gradcheck (float64) and the gradients of the differentiable reference
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("frames, taps", [(4, 3), (2, 5), (1, 3), (4, 1)])
def test_temporal_aggregate_gradients(gen, relu, frames, taps):
    x = rand((8, 5, 3, 2), torch.float64, "cpu", gen).requires_grad_()
    w = rand((taps, 5), torch.float32, "cpu", gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: E.temporal_aggregate(v, w.detach(), frames, relu), (x,))
    out = E.temporal_aggregate(x, w, frames, relu)
    g = rand(tuple(out.shape), torch.float64, "cpu", gen)
    got = torch.autograd.grad(out, (x, w), g)
    want = torch.autograd.grad(ref.temporal_aggregate(x, w.double(), frames, relu), (x, w), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("relu", [True, False])
def test_temporal_aggregate_pair_gradients(gen, relu):
    y = rand((8, 6, 2, 3), torch.float64, "cpu", gen).requires_grad_()
    wb, wl = (t.detach().requires_grad_() for t in ref.fold_pair_weights(rand((5, 6), torch.float32, "cpu", gen)))
    assert torch.autograd.gradcheck(lambda v: E.temporal_aggregate_pair(v, wb.detach(), wl.detach(), 4, relu), (y,))
    outs = E.temporal_aggregate_pair(y, wb, wl, 4, relu)
    gs = [rand(tuple(o.shape), torch.float64, "cpu", gen) for o in outs]
    got = torch.autograd.grad(outs, (y, wb, wl), gs)
    want = torch.autograd.grad(ref.temporal_aggregate_pair(y, wb.double(), wl.double(), 4, relu), (y, wb, wl), gs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    # only the big output used: the little output's gradient is None in the backward
    got = torch.autograd.grad(E.temporal_aggregate_pair(y, wb, wl, 4, relu)[0], (y, wb), gs[0])
    want = torch.autograd.grad(ref.temporal_aggregate_pair(y, wb.double(), wl.double(), 4, relu)[0], (y, wb), gs[0])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("big_hw, little_hw", [((3, 4), (6, 8)), ((3, 5), (7, 9)), ((4, 4), (4, 4))])
def test_bl_merge_gradients(gen, big_hw, little_hw):
    big = rand((2, 3, *big_hw), torch.float64, "cpu", gen).requires_grad_()
    little = rand((2, 3, *little_hw), torch.float64, "cpu", gen).requires_grad_()
    for relu in (True, False):
        assert torch.autograd.gradcheck(lambda b, v: E.bl_merge(b, v, relu), (big, little))


def test_ulp_helper_can_fail():
    """The 1-ulp bound is tight: a value two float16 ulps away fails it."""
    v = torch.tensor([1.0, 3.0, -0.7], dtype=torch.float64)
    off = v + 2 * ulp(v, torch.float16)
    assert not bool(((off - v).abs() <= ulp(v, torch.float16)).any())
    assert math.isclose(float(ulp(torch.tensor([1.0], dtype=torch.float64), torch.float16)), 2 ** -10)


# ---------------------------------------------------------------------------------------------------------------------
# the model runs the kernels through the switch (kernels.blvnet_ops) and stays within the tolerance of the reference
def test_model_uses_kernels_and_matches_reference(gen, monkeypatch):
    import afnet_edge
    from afnet_edge.kernels import blvnet_ops

    from test_blvnet_tam import randomize
    model = randomize(afnet_edge.create_model("blvnet_tam_r50", num_classes=7, num_frames=4), 0, 32)
    model = model.configure(execution="compact").eval()
    clip = torch.randn(2, 4, 3, 32, 32, generator=gen)
    calls: dict[str, int] = {}

    def counting(name):
        real = getattr(ext, name)

        def f(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return real(*a, **k)
        return f
    for name in ("temporal_aggregate", "temporal_aggregate_pair", "bl_merge"):
        monkeypatch.setattr(ext, name, counting(name))
    with torch.no_grad():
        fused = model(clip).logits
        blvnet_ops.use_kernels(False)
        try:
            plain = model(clip).logits
        finally:
            blvnet_ops.use_kernels(True)
        masked = model.configure(execution="masked")(clip).logits
    # stem + layer4 TAMs (plain), layer1-3 stage TAMs (pair), layer0 + layer1-3 merges in the kernel pass, none with
    # use_kernels(False); the official (masked) execution runs the release's TAM ops but merges through the switch
    assert calls == {"temporal_aggregate": 4, "temporal_aggregate_pair": 3, "bl_merge": 8}, calls
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max())  # noqa: E731
    assert rel(fused, plain) <= 1e-5 and rel(fused, masked) <= 1e-5
    assert not torch.equal(fused, torch.zeros_like(fused))
