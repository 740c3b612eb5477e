"""Tests of the compiled ops (afnet_edge._C) against the pure-PyTorch reference, per op: correctness on fresh random
inputs (never zeros; outputs poisoned with NaN through `out=` so unwritten elements show), float32/float16/bfloat16,
edge cases, bad input, torch.library.opcheck, gradcheck (float64), export. Parametrised over devices; the CUDA cases
skip with a reason when no CUDA device (or no CUDA kernels in the build) is present.

Set AFNET_EDGE_REQUIRE_EXT=1 (CI) to make a missing extension a failure instead of a skip.
"""
from __future__ import annotations

import inspect
import os
import zlib

import pytest
import torch

from afnet_edge.kernels import ext, ops, reference
from skip_reasons import NO_CUDA

REQUIRE_EXT = os.environ.get("AFNET_EDGE_REQUIRE_EXT") == "1"
_WHY_NO_EXT = f"afnet_edge._C not built ({ext.import_error()})"

pytestmark = pytest.mark.skipif(not ext.AVAILABLE and not REQUIRE_EXT, reason=_WHY_NO_EXT)

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason=NO_CUDA))]
E = torch.ops.afnet_edge if ext.AVAILABLE else None


def test_extension_built():
    if not ext.AVAILABLE:
        pytest.fail(_WHY_NO_EXT)  # only reached with AFNET_EDGE_REQUIRE_EXT=1
    assert ops("auto") is ext.OPS and ops("ext").name == "ext"


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not ext.has_kernels("cuda"):
        pytest.skip("afnet_edge._C was built without CUDA kernels")
    return torch.device(request.param)


@pytest.fixture
def gen(request):
    """A generator seeded from the test id: fresh inputs per test, reproducible runs."""
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))


def rand(shape, dtype, device, gen, lo=0.1, hi=2.0):
    """Values in ±[lo, hi): never zero, so zero-filled or unwritten outputs cannot pass by accident."""
    mag = lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    return (mag * sign).to(dtype).to(device)


def poisoned(shape, dtype, device):
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def tol(dtype):
    return {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10),
            torch.float16: dict(rtol=4e-3, atol=4e-3), torch.bfloat16: dict(rtol=3e-2, atol=3e-2)}[dtype]


def selection(n, kind, gen, device):
    if kind == "empty":
        idx = torch.zeros(0, dtype=torch.int64)
    elif kind == "full":
        idx = torch.arange(n)
    elif kind == "one":
        idx = torch.tensor([n // 2])
    else:
        keep = torch.rand(n, generator=gen) < 0.5
        keep[0] = keep[-1] = True  # clip edges selected: both zero-filled shift groups are exercised
        idx = keep.nonzero().flatten()
    return idx.to(torch.int64).to(device)


# ---------------------------------------------------------------------------------------------------------------------
# focal_gather
GATHER_CASES = [  # B, T, C, H, W, selection
    (2, 4, 16, 5, 6, "half"),
    (2, 4, 16, 4, 4, "full"),
    (2, 4, 16, 4, 4, "empty"),
    (3, 3, 12, 7, 7, "half"),    # C % 8 != 0, odd plane
    (2, 3, 5, 3, 2, "half"),     # C < 8: fold = 0
    (1, 1, 16, 2, 2, "one"),     # T = 1: both shifted groups are zeros
    (2, 12, 64, 14, 14, "half"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shift", [True, False], ids=["shift", "noshift"])
@pytest.mark.parametrize("case", GATHER_CASES, ids=lambda c: "x".join(map(str, c)))
def test_focal_gather_matches_reference(device, dtype, shift, case, gen):
    b, t, c, h, w, kind = case
    x = rand((b * t, c, h, w), dtype, device, gen)
    index = selection(b * t, kind, gen, device)
    want = reference.focal_gather(x, index, t, shift)
    out = poisoned(want.shape, dtype, device)
    got = ext.focal_gather(x, index, t, shift, out=out)
    assert got is out
    assert torch.equal(got, want)  # a pure copy: bit-exact
    assert torch.equal(ext.focal_gather(x, index, t, shift), want)


def test_focal_gather_unsorted_and_duplicated_indices_are_a_plain_gather(device, gen):
    x = rand((8, 16, 3, 3), torch.float32, device, gen)
    index = torch.tensor([5, 1, 1, 7], device=device)
    assert torch.equal(ext.focal_gather(x, index, 4, True), reference.focal_gather(x, index, 4, True))


def test_focal_gather_out_of_range(device, gen):
    x = rand((8, 16, 2, 2), torch.float32, device, gen)
    bad = torch.tensor([1, 8], device=device)
    with pytest.raises(ValueError, match=r"in \[0, 8\)"):
        ext.focal_gather(x, bad, 4, True)
    # unvalidated: the kernel zero-fills the frame of an out-of-range entry instead of reading outside x
    got = ext.focal_gather(x, torch.tensor([1, 8, -3], device=device), 4, True, validate=False)
    assert torch.equal(got[0], reference.focal_gather(x, torch.tensor([1], device=device), 4, True)[0])
    assert torch.equal(got[1:], torch.zeros_like(got[1:]))


# ---------------------------------------------------------------------------------------------------------------------
# focal_scatter
SCATTER_CASES = [  # N, C, H, W, selection
    (8, 16, 5, 6, "half"),
    (6, 16, 4, 4, "full"),
    (6, 16, 4, 4, "empty"),
    (5, 12, 7, 7, "half"),
    (24, 64, 14, 14, "half"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_const", [True, False], ids=["const", "noconst"])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "id"])
@pytest.mark.parametrize("case", SCATTER_CASES, ids=lambda c: "x".join(map(str, c)))
def test_focal_scatter_matches_reference(device, dtype, with_const, relu, case, gen):
    n, c, h, w, kind = case
    residual = rand((n, c, h, w), dtype, device, gen)
    index = selection(n, kind, gen, device)
    y = rand((index.numel(), c, h, w), dtype, device, gen)
    const = rand((c, h, w), dtype, device, gen) if with_const else None
    want = reference.focal_scatter(residual, y, index, const, relu)
    out = poisoned(want.shape, dtype, device)
    got = ext.focal_scatter(residual, y, index, const, relu, out=out)
    assert got is out
    assert torch.equal(got, want)  # one add in float, one rounding: bit-exact with the reference
    inplace = residual.clone()
    assert ext.focal_scatter(inplace, y, index, const, relu, inplace=True) is inplace
    assert torch.equal(inplace, want)


def test_focal_scatter_index_policy(device, gen):
    residual = rand((6, 8, 2, 2), torch.float32, device, gen)
    y = rand((2, 8, 2, 2), torch.float32, device, gen)
    const = rand((8, 2, 2), torch.float32, device, gen)
    for bad, msg in (([3, 1], "sorted"), ([2, 2], "sorted"), ([1, 6], r"in \[0, 6\)"), ([-1, 2], r"in \[0, 6\)")):
        index = torch.tensor(bad, device=device)
        with pytest.raises(ValueError, match=msg):
            ext.focal_scatter(residual, y, index, const, True)
        # unvalidated: defined result, never an out-of-bounds access; entries that match no frame are ignored
        got = ext.focal_scatter(residual, y, index, const, True, validate=False)
        assert got.shape == residual.shape and torch.isfinite(got).all()
    got = ext.focal_scatter(residual, y, torch.tensor([1, 6], device=device), const, False, validate=False)
    want = reference.focal_scatter(residual, y[:1], torch.tensor([1], device=device), const, False)
    assert torch.equal(got, want)


def test_focal_scatter_inplace_falls_back_when_autograd_needs_inputs(gen):
    residual = rand((4, 8, 2, 2), torch.float64, "cpu", gen).requires_grad_()
    y = rand((2, 8, 2, 2), torch.float64, "cpu", gen)
    out = ext.focal_scatter(residual, y, torch.tensor([0, 3]), None, True, inplace=True)
    assert out is not residual and out.requires_grad


# ---------------------------------------------------------------------------------------------------------------------
# ample_fuse_pool / ample_fuse_blend
AMPLE_SIZES = [  # N, C, (h, w), (H, W)
    (3, 5, (4, 4), (8, 8)),        # exact ×2
    (2, 8, (7, 7), (14, 14)),      # layer3-like, ×2 with an odd source
    (2, 3, (3, 5), (7, 11)),       # odd targets, general legacy-nearest map
    (2, 3, (5, 6), (3, 4)),        # downsampling
    (2, 4, (6, 6), (6, 6)),        # identity
    (1, 2, (48, 48), (96, 96)),    # large plane: block-per-plane reduction
    (1, 2, (40, 30), (97, 101)),   # large plane, non-uniform weights
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sizes", AMPLE_SIZES, ids=lambda s: f"{s[2][0]}x{s[2][1]}to{s[3][0]}x{s[3][1]}")
def test_ample_fuse_pool_matches_reference(device, dtype, sizes, gen):
    n, c, (h, w), (hh, ww) = sizes
    xl, xb = rand((n, c, h, w), dtype, device, gen), rand((n, c, hh, ww), dtype, device, gen)
    want = reference.ample_fuse_pool(xl.double(), xb.double()).to(dtype)  # exact target; the op sums in float
    out = poisoned((n, c), dtype, device)
    got = ext.ample_fuse_pool(xl, xb, out=out)
    assert got is out
    torch.testing.assert_close(got, want, **tol(dtype))
    torch.testing.assert_close(ext.ample_fuse_pool(xl, xb), reference.ample_fuse_pool(xl, xb), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "id"])
@pytest.mark.parametrize("sizes", AMPLE_SIZES[:5], ids=lambda s: f"{s[2][0]}x{s[2][1]}to{s[3][0]}x{s[3][1]}")
def test_ample_fuse_blend_matches_reference(device, dtype, relu, sizes, gen):
    n, c, (h, w), (hh, ww) = sizes
    xl, xb = rand((n, c, h, w), dtype, device, gen), rand((n, c, hh, ww), dtype, device, gen)
    a = torch.rand((n, c), generator=gen).clamp(0.05, 0.95).to(dtype).to(device)
    want = reference.ample_fuse_blend(xl.double(), xb.double(), a.double(), relu).to(dtype)
    out = poisoned(want.shape, dtype, device)
    got = ext.ample_fuse_blend(xl, xb, a, relu, out=out)
    assert got is out
    torch.testing.assert_close(got, want, **tol(dtype))
    torch.testing.assert_close(ext.ample_fuse_blend(xl, xb, a, relu), reference.ample_fuse_blend(xl, xb, a, relu),
                               **tol(dtype))


def test_ample_ops_reject_bad_shapes(device, gen):
    xl, xb = rand((2, 4, 3, 3), torch.float32, device, gen), rand((2, 4, 6, 6), torch.float32, device, gen)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        ext.ample_fuse_pool(xl[:1], xb)
    with pytest.raises(ValueError, match="positive"):
        ext.ample_fuse_pool(xl[:, :, :0], xb)
    with pytest.raises(TypeError, match="dtype"):
        ext.ample_fuse_pool(xl.double(), xb)
    with pytest.raises(ValueError, match="a must be"):
        ext.ample_fuse_blend(xl, xb, torch.rand(2, 3, device=device), False)


# ---------------------------------------------------------------------------------------------------------------------
# select_frames
def check_select(got, want):
    for g, w, name in zip(got, want, ("index", "counts", "mask")):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert torch.equal(g, w), name


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("mode,k", [("threshold", 0), ("topk", 0), ("topk", 1), ("topk", 5), ("topk", 12)])
def test_select_frames_matches_reference(device, dtype, ties, mode, k, gen):
    L, B, T = 5, 3, 12
    if ties:  # few distinct values: equal margins everywhere, plus a NaN margin
        logits = (torch.randint(-2, 3, (L, B, T, 2), generator=gen) * 0.5).to(dtype).to(device)
        logits[1, 0, 3, 1] = float("nan")
    else:
        logits = rand((L, B, T, 2), dtype, device, gen)
    want = reference.select_frames(logits, mode, k)
    outs = (torch.full_like(want[0], -7), torch.full_like(want[1], -7), poisoned(want[2].shape, dtype, device))
    got = ext.select_frames(logits, mode, k, out=outs)
    assert all(g is o for g, o in zip(got, outs))
    check_select(got, want)
    check_select(ext.select_frames(logits, mode, k), want)


@pytest.mark.parametrize("shape", [(1, 100, 7, 2), (2, 0, 4, 2), (0, 3, 4, 2), (3, 2, 300, 2)], ids=str)
@pytest.mark.parametrize("mode", ["threshold", "topk"])
def test_select_frames_sizes(device, shape, mode, gen):
    logits = rand(shape, torch.float32, device, gen)
    k = min(3, shape[2])
    check_select(ext.select_frames(logits, mode, k), reference.select_frames(logits, mode, k))


def test_select_frames_bad_input(device):
    logits = torch.randn(2, 3, 4, 2, device=device)
    with pytest.raises(ValueError, match="k must be"):
        ext.select_frames(logits, "topk", 5)
    with pytest.raises(ValueError, match="mode"):
        ext.select_frames(logits, "top", 1)
    with pytest.raises(ValueError, match=r"\(L, B, T, 2\)"):
        ext.select_frames(logits[..., :1], "threshold")
    with pytest.raises(TypeError, match="float"):
        ext.select_frames(logits.to(torch.int32), "threshold")


# ---------------------------------------------------------------------------------------------------------------------
# inputs: strides, alignment, dtypes, devices
def misaligned(t):
    """Same values, data pointer one element past an aligned address: forces the kernels' scalar paths."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = buf[1:].view(t.shape)
    view.copy_(t)
    return view


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_non_contiguous_and_misaligned_inputs(device, dtype, gen):
    x = rand((8, 16, 6, 6), dtype, device, gen)
    index = torch.tensor([0, 3, 5, 7], device=device)
    views = {
        "channels_last": x.to(memory_format=torch.channels_last),
        "transposed": x.transpose(2, 3).contiguous().transpose(2, 3),
        "misaligned": misaligned(x),
    }
    want_g = reference.focal_gather(x, index, 4, True)
    y = rand((4, 16, 6, 6), dtype, device, gen)
    want_s = reference.focal_scatter(x, y, index, y[0], True)
    xl = rand((8, 16, 3, 3), dtype, device, gen)
    a = torch.rand(8, 16, generator=gen).to(dtype).to(device)
    want_b = reference.ample_fuse_blend(xl, x, a, True)
    for name, v in views.items():
        assert torch.equal(ext.focal_gather(v, index, 4, True), want_g), name
        assert torch.equal(ext.focal_scatter(v, misaligned(y), index, y[0], True), want_s), name
        torch.testing.assert_close(ext.ample_fuse_blend(misaligned(xl), v, a, True), want_b, **tol(dtype))
        torch.testing.assert_close(ext.ample_fuse_pool(xl, v), reference.ample_fuse_pool(xl, x), **tol(dtype))
    strided_index = torch.tensor([0, 9, 3, 9, 5, 9, 7], device=device)[::2]
    assert torch.equal(ext.focal_gather(x, strided_index, 4, True), want_g)
    inplace = x.clone().to(memory_format=torch.channels_last)  # non-contiguous in-place target
    ext.focal_scatter(inplace, y, index, y[0], True, inplace=True)
    assert torch.equal(inplace, want_s)


def test_dtype_and_argument_errors(device, gen):
    x = rand((8, 16, 2, 2), torch.float32, device, gen)
    index = torch.tensor([1, 2], device=device)
    with pytest.raises(TypeError, match="int64"):
        ext.focal_gather(x, index.int(), 4, True)
    with pytest.raises(TypeError, match="int64"):
        E.focal_gather(x, index.int(), 4, True)  # the op itself checks too
    with pytest.raises(ValueError, match="multiple of num_frames"):
        ext.focal_gather(x, index, 3, True)
    with pytest.raises(ValueError, match="num_frames"):
        ext.focal_gather(x, index, 0, True)
    with pytest.raises(TypeError, match="float32, float16"):
        ext.focal_gather(x.to(torch.int32), index, 4, True)
    y = rand((2, 16, 2, 2), torch.float16, device, gen)
    with pytest.raises(TypeError, match="dtype"):
        ext.focal_scatter(x, y, index, None, True)
    with pytest.raises(ValueError, match="one entry per frame"):
        ext.focal_scatter(x, y.float(), index[:1], None, True)
    with pytest.raises(ValueError, match="const must be"):
        ext.focal_scatter(x, y.float(), index, x[0, :8], True)
    with pytest.raises(ValueError, match="out must have shape"):
        ext.focal_gather(x, index, 4, True, out=torch.empty(3, 16, 2, 2, device=device))
    with pytest.raises(ValueError, match="contiguous"):
        ext.focal_gather(x, index, 4, True, out=torch.empty(16, 2, 2, 2, device=device).transpose(0, 1))
    with pytest.raises(ValueError, match="autograd"):
        ext.focal_gather(x.requires_grad_(), index, 4, True, out=torch.empty(2, 16, 2, 2, device=device))


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_device_mismatch_is_an_error():
    if not ext.has_kernels("cuda"):
        pytest.skip("afnet_edge._C was built without CUDA kernels")
    x = torch.randn(8, 16, 2, 2, device="cuda")
    with pytest.raises(ValueError, match="device"):
        E.focal_gather(x, torch.tensor([1, 2]), 4, True)
    with pytest.raises(ValueError, match="device"):
        E.ample_fuse_pool(torch.randn(8, 16, 1, 1), x)


# ---------------------------------------------------------------------------------------------------------------------
# opcheck (schema, fake kernels, autograd registration, AOT dispatch) and gradcheck
def _op_samples():
    g = torch.Generator().manual_seed(7)
    r = lambda *s: rand(s, torch.float32, "cpu", g)  # noqa: E731
    idx = torch.tensor([0, 2, 3, 7])
    x, y, cmap, xl, xb = r(8, 16, 3, 4), r(4, 16, 3, 4), r(16, 3, 4), r(8, 16, 3, 2), r(8, 16, 6, 4)
    a = torch.rand(8, 16, generator=g)
    return [
        ("focal_gather", (x.clone().requires_grad_(), idx, 4, True), {}),
        ("focal_gather", (x, idx, 4, False), {}),
        ("focal_gather.out", (x, idx, 4, True), {"out": torch.empty(4, 16, 3, 4)}),
        ("focal_scatter", (x.clone().requires_grad_(), y.clone().requires_grad_(), idx,
                           cmap.clone().requires_grad_(), True), {}),
        ("focal_scatter", (x, y, idx, None, False), {}),
        ("focal_scatter.out", (x, y, idx, cmap, True), {"out": torch.empty(8, 16, 3, 4)}),
        ("focal_scatter_", (x.clone(), y, idx, cmap, True), {}),
        ("ample_fuse_pool", (xl.clone().requires_grad_(), xb.clone().requires_grad_()), {}),
        ("ample_fuse_pool.out", (xl, xb), {"out": torch.empty(8, 16)}),
        ("ample_fuse_blend", (xl.clone().requires_grad_(), xb.clone().requires_grad_(),
                              a.clone().requires_grad_(), True), {}),
        ("ample_fuse_blend.out", (xl, xb, a, False), {"out": torch.empty(8, 16, 6, 4)}),
        ("select_frames", (r(3, 2, 12, 2), "threshold", 0), {}),
        ("select_frames", (r(3, 2, 12, 2), "topk", 4), {}),
        ("select_frames.out", (r(3, 2, 12, 2), "topk", 4),
         {"index": torch.empty(3, 8, dtype=torch.int64), "counts": torch.empty(3, dtype=torch.int64),
          "mask": torch.empty(3, 2, 12)}),
    ]


@pytest.mark.parametrize("name,args,kwargs", _op_samples() if ext.AVAILABLE else [],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_opcheck(name, args, kwargs):
    op_name, _, overload = name.partition(".")
    op = getattr(getattr(E, op_name), overload or "default")
    torch.library.opcheck(op, args, kwargs)


@pytest.mark.parametrize("shift", [True, False])
def test_gradcheck_focal_gather(shift, gen):
    x = rand((8, 12, 3, 2), torch.float64, "cpu", gen).requires_grad_()
    index = torch.tensor([0, 1, 3, 4, 7])
    assert torch.autograd.gradcheck(lambda t: ext.focal_gather(t, index, 4, shift), (x,))
    assert torch.autograd.gradgradcheck(lambda t: ext.focal_gather(t, index, 4, shift), (x,))


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("with_const", [True, False])
def test_gradcheck_focal_scatter(relu, with_const, gen):
    r = rand((6, 8, 2, 3), torch.float64, "cpu", gen).requires_grad_()
    y = rand((3, 8, 2, 3), torch.float64, "cpu", gen).requires_grad_()
    c = rand((8, 2, 3), torch.float64, "cpu", gen).requires_grad_() if with_const else None
    index = torch.tensor([0, 2, 5])
    inputs = (r, y, c) if with_const else (r, y)
    fn = lambda r_, y_, c_=None: ext.focal_scatter(r_, y_, index, c_, relu)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("sizes", [((3, 3), (6, 6)), ((3, 5), (7, 11)), ((4, 4), (4, 4))], ids=str)
def test_gradcheck_ample_ops(sizes, gen):
    (h, w), (hh, ww) = sizes
    xl = rand((2, 3, h, w), torch.float64, "cpu", gen).requires_grad_()
    xb = rand((2, 3, hh, ww), torch.float64, "cpu", gen).requires_grad_()
    a = torch.rand(2, 3, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(ext.ample_fuse_pool, (xl, xb))
    for relu in (True, False):
        assert torch.autograd.gradcheck(lambda l_, b_, a_: ext.ample_fuse_blend(l_, b_, a_, relu), (xl, xb, a))


def test_gradients_match_reference(gen):
    """Same gradients as autograd through the reference (float32, all four differentiable ops chained)."""
    x = rand((8, 16, 4, 4), torch.float32, "cpu", gen)
    xl = rand((8, 16, 2, 2), torch.float32, "cpu", gen)
    cmap = rand((16, 4, 4), torch.float32, "cpu", gen)
    index = torch.tensor([1, 2, 6])
    grads = []
    for o in (ops("torch"), ext.OPS):
        leaves = [t.clone().requires_grad_() for t in (x, xl, cmap)]
        xx, ll, cc = leaves
        y = o.focal_gather(xx, index, 4, True) * 1.5
        s = o.focal_scatter(xx, y, index, cc, True)
        a = torch.sigmoid(o.ample_fuse_pool(ll, s))
        o.ample_fuse_blend(ll, s, a, True).square().sum().backward()
        grads.append([t.grad for t in leaves])
    for g_ref, g_ext in zip(*grads):
        torch.testing.assert_close(g_ext, g_ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# API surface and tracing
def test_signatures_match_reference():
    for name in ("focal_gather", "focal_scatter", "ample_fuse_pool", "ample_fuse_blend", "select_frames"):
        ref = [p for p in inspect.signature(getattr(reference, name)).parameters.values()]
        for backend in (ops("torch"), ext.OPS):
            params = list(inspect.signature(getattr(backend, name)).parameters.values())
            positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
            assert [p.name for p in positional] == [p.name for p in ref], (backend.name, name)
            assert all(p.kind is p.KEYWORD_ONLY for p in params[len(positional):])


def test_torch_backend_takes_the_same_keywords(gen):
    o = ops("torch")
    x = rand((4, 8, 2, 2), torch.float32, "cpu", gen)
    index = torch.tensor([1, 3])
    with pytest.raises(ValueError, match="sorted"):
        o.focal_scatter(x, x[:2], torch.tensor([3, 1]), None, True)
    out = poisoned((2, 8, 2, 2), torch.float32, "cpu")
    assert o.focal_gather(x, index, 2, True, validate=False, out=out) is out
    res = x.clone()
    assert o.focal_scatter(res, x[:2], index, None, True, inplace=True) is res


def test_export_traces_the_ops(gen):
    """torch.export sees the custom ops (fake kernels) and the exported program reproduces eager."""
    class Stage(torch.nn.Module):
        def forward(self, x, logits, xl):
            index, counts, mask = E.select_frames(logits, "topk", 2)
            idx = index[0]
            y = E.focal_gather(x, idx, 4, True) * 2.0
            s = E.focal_scatter(x, y, idx, None, True)
            a = torch.sigmoid(E.ample_fuse_pool(xl, s))
            return E.ample_fuse_blend(xl, s, a, True), counts, mask

    args = (rand((8, 16, 4, 4), torch.float32, "cpu", gen), rand((1, 2, 4, 2), torch.float32, "cpu", gen),
            rand((8, 16, 2, 2), torch.float32, "cpu", gen))
    prog = torch.export.export(Stage(), args)
    targets = {str(n.target) for n in prog.graph.nodes if n.op == "call_function"}
    assert {"afnet_edge.select_frames.default", "afnet_edge.focal_gather.default",
            "afnet_edge.focal_scatter.default"} <= targets
    for got, want in zip(prog.module()(*args), Stage()(*args)):
        assert torch.equal(got, want)


def test_torch_compile_fullgraph(gen):
    """torch.compile (AOT autograd, no codegen) traces every op in one graph, the in-place scatter included."""
    def stage(x, logits, xl):
        index, counts, mask = ext.select_frames(logits, "topk", 2)
        idx = index[0]
        y = ext.focal_gather(x, idx, 4, True, validate=False) * 2.0
        s = ext.focal_scatter(x, y, idx, None, True, validate=False)
        s2 = ext.focal_scatter(s.clone(), y, idx, s[0], False, validate=False, inplace=True)
        a = torch.sigmoid(ext.ample_fuse_pool(xl, s2))
        return ext.ample_fuse_blend(xl, s2, a, True), counts, mask

    args = (rand((8, 16, 4, 4), torch.float32, "cpu", gen), rand((1, 2, 4, 2), torch.float32, "cpu", gen),
            rand((8, 16, 2, 2), torch.float32, "cpu", gen))
    compiled = torch.compile(stage, backend="aot_eager", fullgraph=True)
    for got, want in zip(compiled(*args), stage(*args)):
        assert torch.equal(got, want)


# ---------------------------------------------------------------------------------------------------------------------
# CUDA only: CPU twin vs CUDA kernel at production-like sizes, no host sync for topk, graph capture
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_matches_cpu_twin_at_model_sizes(dtype, gen):
    if not ext.has_kernels("cuda"):
        pytest.skip("afnet_edge._C was built without CUDA kernels")
    b, t = 2, 12
    for c, h in ((256, 56), (512, 28), (1024, 14)):
        x = rand((b * t, c, h, h), dtype, "cpu", gen)
        index = selection(b * t, "half", gen, "cpu")
        y = rand((index.numel(), c, h, h), dtype, "cpu", gen)
        xl = rand((b * t, c, h // 2, h // 2), dtype, "cpu", gen)
        a = torch.rand(b * t, c, generator=gen).to(dtype)
        xc, ic, yc, xlc, ac = (v.cuda() for v in (x, index, y, xl, a))
        assert torch.equal(ext.focal_gather(xc, ic, t, True).cpu(), ext.focal_gather(x, index, t, True))
        assert torch.equal(ext.focal_scatter(xc, yc, ic, xc[0], True).cpu(), ext.focal_scatter(x, y, index, x[0], True))
        torch.testing.assert_close(ext.ample_fuse_pool(xlc, xc).cpu(), ext.ample_fuse_pool(xl, x), **tol(dtype))
        torch.testing.assert_close(ext.ample_fuse_blend(xlc, xc, ac, True).cpu(), ext.ample_fuse_blend(xl, x, a, True),
                                   **tol(dtype))


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_topk_path_has_no_sync_and_captures_in_a_graph(gen):
    if not ext.has_kernels("cuda"):
        pytest.skip("afnet_edge._C was built without CUDA kernels")
    x = rand((24, 64, 14, 14), torch.float16, "cuda", gen)
    logits = rand((3, 2, 12, 2), torch.float16, "cuda", gen)

    def step():
        index, _, _ = ext.select_frames(logits, "topk", 4)
        idx = index[1]
        y = ext.focal_gather(x, idx, 12, True, validate=False)
        return ext.focal_scatter(x, y, idx, None, True, validate=False)

    want = step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    graph = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        step()
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(graph):
        static_out = step()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_out, want)
