"""The full-video clustering kernels (issue 14 item 2: csrc/kernels/fullvideo_cluster*, csrc/ops/*/fullvideo_cluster.cpp,
the section at the end of afnet_edge/kernels/ext.py) against the pure-PyTorch reference
(afnet_edge/kernels/fullvideo_reference.py): exact for bits, distances and boundaries; segment_mean within one
rounding. Fresh random inputs with many ties (exact zeros, −0, few distinct distances), ragged batches, N < K + 1,
bad input, opcheck. The CUDA cases skip without a CUDA device; the emulated CUDA run of the same kernels is
scripts/cuda_emu_check.sh (csrc/kernels/selftest.cpp).

Set AFNET_EDGE_REQUIRE_EXT=1 (CI) to make a missing extension a failure instead of a skip.
"""
from __future__ import annotations

import os

import pytest
import torch

from afnet_edge.kernels import ext
from afnet_edge.kernels import fullvideo_reference as ref
from skip_reasons import NO_CUDA

REQUIRE_EXT = os.environ.get("AFNET_EDGE_REQUIRE_EXT") == "1"
_WHY = f"afnet_edge._C has no full-video clustering kernels ({ext.import_error()})"
pytestmark = pytest.mark.skipif(not ext.has_fullvideo_kernels("cpu") and not REQUIRE_EXT, reason=_WHY)
E = torch.ops.afnet_edge if ext.has_fullvideo_kernels("cpu") else None
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA))]
FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def test_kernels_built():
    if not ext.has_fullvideo_kernels("cpu"):
        pytest.fail(_WHY)  # only reached with AFNET_EDGE_REQUIRE_EXT=1


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not ext.has_fullvideo_kernels("cuda"):
        pytest.skip(f"{NO_CUDA}: afnet_edge._C was built without CUDA kernels")
    return torch.device(request.param)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _activations(shape, dtype, g, device):
    """Random activations with ties at the sign boundary: ~1/4 exact zeros, some −0."""
    x = torch.randn(shape, generator=g)
    r = torch.rand(shape, generator=g)
    x = torch.where(r < 0.2, torch.zeros_like(x), x)
    x = torch.where((r >= 0.2) & (r < 0.25), torch.full_like(x, -0.0), x)
    return x.to(device=device, dtype=dtype)


def _ragged(lengths, device):
    o = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    o[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0)
    return o.to(device)


# ------------------------------------------------------------------------------------------------------ binarize_pack
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5, 37), (3, 64), (4, 2, 3, 5), (1, 1), (0, 7), (6, 31), (2, 33)])
def test_binarize_pack_matches_reference(device, dtype, shape):
    y = _activations(shape, dtype, _gen(hash((shape, str(dtype))) & 0xFFFF), device)
    got = E.binarize_pack(y)
    d = 1
    for s in shape[1:]:
        d *= s
    if shape[0] == 0:  # the reference cannot reshape an empty (0, ...) tensor; the kernel returns (0, ⌈D/32⌉)
        assert got.dtype == torch.int32 and got.shape == (0, (d + 31) // 32)
        return
    want = ref.binarize_pack(y)
    d = 1
    for s in shape[1:]:
        d *= s
    assert got.dtype == torch.int32 and got.shape == want.shape == (shape[0], (d + 31) // 32)
    assert torch.equal(got, want)


def test_binarize_pack_nan_and_negative_zero(device):
    y = torch.tensor([[float("nan"), -0.0, 0.0, 1e-30, -1e-30, float("inf"), float("-inf")]], device=device)
    bits = E.binarize_pack(y)
    assert bits.tolist() == [[0b0101000]] and torch.equal(bits, ref.binarize_pack(y))


def test_binarize_pack_noncontiguous(device):
    y = _activations((6, 40), torch.float32, _gen(3), device).t().contiguous().t()[::2]  # strided rows
    assert not y.is_contiguous()
    assert torch.equal(E.binarize_pack(y), ref.binarize_pack(y))


# --------------------------------------------------------------------------------------------------- adjacent_hamming
@pytest.mark.parametrize("n,d", [(9, 37), (2, 1), (1, 64), (0, 5), (40, 1000), (5, 32)])
def test_adjacent_hamming_matches_reference(device, n, d):
    g = _gen(n * 1000 + d)
    bits = torch.randint(-2 ** 31, 2 ** 31, (n, (d + 31) // 32), generator=g, dtype=torch.int64).to(
        device=device, dtype=torch.int32)
    if n > 2:
        bits[2] = bits[1]  # one pair at distance 0
    got = E.adjacent_hamming(bits)
    want = ref.adjacent_hamming(bits)
    assert got.dtype == torch.int32 and got.shape == (max(n - 1, 0),)
    assert torch.equal(got, want)


def test_adjacent_hamming_all_bits(device):
    """Words with the sign bit set (negative int32) and every bit flipping: the count is exact."""
    bits = torch.tensor([[-1, 0, 0x7FFFFFFF], [0, -1, -0x80000000], [-1, -1, -1]], dtype=torch.int32, device=device)
    assert E.adjacent_hamming(bits).tolist() == [32 + 32 + 32, 32 + 0 + 31]


# ------------------------------------------------------------------------------------------------- segment_boundaries
CASES = [  # (video lengths, K)
    ([16], 4), ([16], 1), ([3], 5), ([1], 3), ([5], 5), ([6], 5), ([12, 1, 7, 3, 20], 4), ([2, 2, 2], 2),
    ([50, 31], 8), ([4], 16),
]


@pytest.mark.parametrize("rule", ["slope", "even", "cumulative"])
@pytest.mark.parametrize("lengths,k", CASES)
@pytest.mark.parametrize("levels", [1, 2, 4, 1000])  # few distinct distances: many ties (1: all zero, H = 0)
def test_segment_boundaries_matches_reference(device, rule, lengths, k, levels):
    g = _gen(sum(lengths) * 31 + k * 7 + levels)
    n = sum(lengths)
    h = torch.randint(0, levels, (n - 1,), generator=g, dtype=torch.int32).to(device)
    fo = _ragged(lengths, device) if len(lengths) > 1 else None
    got_o, got_m = E.segment_boundaries(h, k, rule, fo)
    want_o, want_m = ref.segment_boundaries(h, k, rule, fo)
    assert got_o.dtype == torch.int64 and got_o.shape == (len(lengths), k + 1)
    assert torch.equal(got_o, want_o) and torch.equal(got_m, want_m)
    got_o2, got_m2 = ext.segment_boundaries(h, k, rule, fo)  # the Python entry point takes the same path
    assert torch.equal(got_o2, want_o) and torch.equal(got_m2, want_m)


def test_segment_boundaries_tie_goes_to_later_pair(device):
    # All distances equal: slope cuts after the K−1 *last* pairs (§4.1, ties to the later position).
    h = torch.full((7,), 5, dtype=torch.int32, device=device)
    offsets, m = E.segment_boundaries(h, 3, "slope")
    assert offsets.tolist() == [[0, 6, 7, 8]] and m.tolist() == [3]


def test_segment_boundaries_ext_falls_back_for_other_rules(device):
    g = _gen(5)
    lengths = [9, 4, 13]
    h = torch.randint(0, 3, (sum(lengths) - 1,), generator=g, dtype=torch.int32).to(device)
    fo = _ragged(lengths, device)
    for rule in ("cumulative_official",):
        got = ext.segment_boundaries(h, 3, rule, fo, num_bits=64)
        want = ref.segment_boundaries(h, 3, rule, fo, num_bits=64)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    got = ext.segment_boundaries(h, 3, "slope", fo, degenerate="even")
    want = ref.segment_boundaries(h, 3, "slope", fo, degenerate="even")
    assert all(torch.equal(a, b) for a, b in zip(got, want))


# --------------------------------------------------------------------------------------------------------- segment_mean
_TOL = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("rule", ["slope", "even", "cumulative", "cumulative_official"])
@pytest.mark.parametrize("lengths,k", [([16], 4), ([3], 5), ([12, 1, 7, 3, 20], 4), ([9, 30], 8)])
def test_segment_mean_matches_reference(device, dtype, rule, lengths, k):
    """fp32: ≤ 1e-6 relative to the reference (same summation order: equal in practice); fp16/bf16: one rounding of
    the output dtype (2^-10 / 2^-7 relative, plus a tiny absolute term for outputs near 0)."""
    g = _gen(sum(lengths) + k + FLOATS.index(dtype))
    n = sum(lengths)
    a = _activations((n, 3, 5), dtype, g, device) * 3 + 0.5
    fo = _ragged(lengths, device) if len(lengths) > 1 else None
    h = ref.adjacent_hamming(ref.binarize_pack(a))
    offsets, m = ref.segment_boundaries(h, k, rule, fo, num_bits=15)
    got = E.segment_mean(a, offsets, m, fo)
    want = ref.segment_mean(a, offsets, m, fo)
    assert got.dtype == dtype and got.shape == (len(lengths) * k, 3, 5)
    tol = _TOL[dtype]
    torch.testing.assert_close(got.double(), want.double(), rtol=tol, atol=tol * 1e-3)
    if dtype == torch.float32:  # and against the exact mean
        exact = ref.segment_mean(a.double(), offsets, m, fo)
        torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=1e-6)


def _grad_case(lengths, k, rule, dtype, device, seed, frame=(3, 5)):
    """Activations (N_total, *frame) and segments of a ragged batch (rule's boundaries from the reference)."""
    g = _gen(seed)
    n = sum(lengths)
    a = (_activations((n, *frame), torch.float64, g, "cpu") * 3 + 0.5).to(device=device, dtype=dtype)
    fo = _ragged(lengths, device) if len(lengths) > 1 else None
    h = ref.adjacent_hamming(ref.binarize_pack(a))
    offsets, m = ref.segment_boundaries(h, k, rule, fo, num_bits=15)
    return a, offsets, m, fo


# Ragged batches with N < K videos (padded duplicates share a frame's gradient), 1-frame videos, and
# cumulative_official (frames of the dropped final band get zero gradient).
_GRAD_CASES = [([12, 1, 7, 3, 20], 4, "slope"), ([3], 5, "cumulative"), ([9, 30, 2], 8, "cumulative_official"),
               ([16], 4, "even"), ([5, 14], 3, "cumulative")]


@pytest.mark.parametrize("lengths,k,rule", _GRAD_CASES)
def test_segment_mean_gradcheck(device, lengths, k, rule):
    """float64 gradcheck of the compiled op (forward and segment_mean_backward), and gradgradcheck (the backward's
    own formula is segment_mean)."""
    a, offsets, m, fo = _grad_case(lengths, k, rule, torch.float64, device, seed=sum(lengths) * k, frame=(2,))
    a.requires_grad_(True)
    f = lambda x: E.segment_mean(x, offsets, m, fo)  # noqa: E731
    assert torch.autograd.gradcheck(f, (a,))
    assert torch.autograd.gradgradcheck(f, (a,), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("lengths,k,rule", _GRAD_CASES)
def test_segment_mean_backward_matches_reference_autograd(device, dtype, lengths, k, rule):
    """ext.segment_mean with autograd runs the kernel (no fallback) and its gradient equals the reference's autograd
    gradient bit for bit (same fp32 sum order over the padded duplicates, one division, one rounding)."""
    a, offsets, m, fo = _grad_case(lengths, k, rule, dtype, device, seed=7 * sum(lengths) + k)
    go = (torch.randn((len(lengths) * k, 3, 5), generator=_gen(k), dtype=torch.float64) + 0.3).to(device, dtype)
    x = a.clone().requires_grad_(True)
    out = ext.segment_mean(x, offsets, m, fo)
    assert "segment_mean" in type(out.grad_fn).__name__.lower() or "segment_mean" in str(out.grad_fn.name())
    (gx,) = torch.autograd.grad(out, x, go)
    xr = a.clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(ref.segment_mean(xr, offsets, m, fo), xr, go)
    assert gx.dtype == dtype and gx.shape == a.shape
    assert torch.equal(gx, gr), (gx - gr).abs().max()


def test_segment_mean_backward_cases_are_discriminating():
    """The gradient cases exercise what a wrong backward would get wrong: padded duplicates (N < K, M < K: a backward
    that ignores rows j ≥ M differs) and dropped frames (cumulative_official: a backward that spreads over the whole
    video differs) — checked on the reference's own gradient."""
    a, offsets, m, fo = _grad_case([9, 30, 2], 8, "cumulative_official", torch.float64, "cpu", seed=7 * 41 + 8)
    assert bool((m < 8).any())  # padded rows exist
    go = torch.randn(24, 3, 5, dtype=torch.float64, generator=_gen(8))
    x = a.clone().requires_grad_(True)
    (g_all,) = torch.autograd.grad(ref.segment_mean(x, offsets, m, fo), x, go)
    keep = torch.arange(8).unsqueeze(0) < m.unsqueeze(1)  # zero the padded rows' gradient
    x = a.clone().requires_grad_(True)
    (g_nopad,) = torch.autograd.grad(ref.segment_mean(x, offsets, m, fo), x, go * keep.reshape(-1, 1, 1))
    assert not torch.equal(g_all, g_nopad)
    dropped = (offsets.gather(1, m.unsqueeze(1)).squeeze(1) < (fo[1:] - fo[:-1]))
    assert bool(dropped.any())  # some frames lie in no segment: their gradient is exactly 0
    for b in torch.nonzero(dropped).flatten().tolist():
        first = int(fo[b]) + int(offsets[b, int(m[b])])
        assert torch.count_nonzero(g_all[first:int(fo[b + 1])]) == 0


def test_segment_mean_backward_errors_name_the_argument():
    """Bad input names the argument (every grad_a row being written is checked on NaN-poisoned outputs by the
    emulated self-test, selftest.cpp)."""
    a, offsets, m, fo = _grad_case([12, 1, 7, 3, 20], 4, "slope", torch.float32, "cpu", seed=3)
    go = torch.randn(20, 3, 5, generator=_gen(4))
    with pytest.raises(ValueError, match=r"grad must have B\*K = 20 rows"):
        E.segment_mean_backward(go[:19], offsets, m, fo, a.shape[0])
    with pytest.raises(ValueError, match="frame_offsets must start at 0, end at N_total=44"):
        E.segment_mean_backward(go, offsets, m, fo, 44)
    with pytest.raises(TypeError, match="grad must be float32"):
        E.segment_mean_backward(go.int(), offsets, m, fo, a.shape[0])
    with pytest.raises(TypeError, match="num_segments must be int64"):
        E.segment_mean_backward(go, offsets, m.int(), fo, a.shape[0])


# ------------------------------------------------------------------------------------------------------------ pipeline
def test_pipeline_ragged_equals_reference(device):
    g = _gen(77)
    lengths = [20, 3, 11, 1]
    feats = _activations((sum(lengths), 8, 4, 4), torch.float32, g, device)
    fo = _ragged(lengths, device)
    h = ext.adjacent_hamming(ext.binarize_pack(feats))
    offsets, m = ext.segment_boundaries(h, 4, "slope", fo)
    got = ext.segment_mean(feats, offsets, m, fo)
    rh = ref.adjacent_hamming(ref.binarize_pack(feats))
    ro, rm = ref.segment_boundaries(rh, 4, "slope", fo)
    assert torch.equal(h, rh) and torch.equal(offsets, ro) and torch.equal(m, rm)
    torch.testing.assert_close(got, ref.segment_mean(feats, ro, rm, fo), rtol=1e-6, atol=1e-7)


# -------------------------------------------------------------------------------------------------------------- errors
def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="y must be float32"):
        E.binarize_pack(torch.ones(3, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="y must be"):
        E.binarize_pack(torch.tensor(1.0))
    with pytest.raises(TypeError, match="bits must be int32"):
        E.adjacent_hamming(torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"bits must be \(N, W\)"):
        E.adjacent_hamming(torch.ones(3, dtype=torch.int32))
    h = torch.randint(0, 5, (9,), dtype=torch.int32)
    with pytest.raises(TypeError, match="h must be int32"):
        E.segment_boundaries(h.long(), 3, "slope")
    with pytest.raises(ValueError, match="k .clusters. must be a positive integer"):
        E.segment_boundaries(h, 0, "slope")
    with pytest.raises(ValueError, match="rule must be 'slope', 'cumulative' or 'even'"):
        E.segment_boundaries(h, 3, "cumulative_official")
    with pytest.raises(ValueError, match="frame_offsets must start at 0, end at N_total=10"):
        E.segment_boundaries(h, 3, "slope", torch.tensor([0, 5, 5, 10]))
    with pytest.raises(ValueError, match="frame_offsets must start at 0, end at N_total=10"):
        E.segment_boundaries(h, 3, "slope", torch.tensor([0, 4, 9]))
    with pytest.raises(TypeError, match="frame_offsets must be int64"):
        E.segment_boundaries(h, 3, "slope", torch.tensor([0, 10], dtype=torch.int32))
    a = torch.randn(10, 3)
    off, m = ref.segment_boundaries(h, 3, "slope")
    with pytest.raises(ValueError, match="offsets .B=1, K.1. and frame_offsets .B.1,. disagree"):
        E.segment_mean(a, off, m, torch.tensor([0, 4, 10]))
    with pytest.raises(ValueError, match=r"num_segments must be \(B,\)"):
        E.segment_mean(a, off, m.repeat(2))
    with pytest.raises(TypeError, match="offsets must be int64"):
        E.segment_mean(a, off.int(), m)
    with pytest.raises(TypeError, match="a must be float32"):
        E.segment_mean(a.int(), off, m)
    with pytest.raises(ValueError, match="k .clusters. must be a positive integer"):
        ext.segment_boundaries(h, True, "slope")


# ------------------------------------------------------------------------------------------------------------- opcheck
def _opcheck_cases():
    g = _gen(11)
    y = _activations((7, 3, 11), torch.float32, g, "cpu")
    bits = ref.binarize_pack(y)
    h = ref.adjacent_hamming(bits)
    fo = torch.tensor([0, 4, 7])
    off, m = ref.segment_boundaries(h, 3, "slope", fo)
    return [("binarize_pack", (y,)), ("adjacent_hamming", (bits,)), ("segment_boundaries", (h, 3, "slope", fo)),
            ("segment_boundaries", (h, 2, "even", None)), ("segment_mean", (y, off, m, fo)),
            ("segment_mean", (y.half(), off[:1], m[:1], None)),
            ("segment_mean", (y.double().requires_grad_(True), off, m, fo)),
            ("segment_mean_backward", (torch.randn(6, 3, 11, generator=g), off, m, fo, 7)),
            ("segment_mean_backward", (torch.randn(3, 3, 11, generator=g, dtype=torch.float64).requires_grad_(True),
                                       off[1:], m[1:], None, 3))]


@pytest.mark.parametrize("i", range(9))
def test_opcheck(i):
    name, args = _opcheck_cases()[i]
    torch.library.opcheck(getattr(E, name).default, args)
