"""The gather/scatter-fused 1×1 convolutions of the fused plan (issue 16): ``ext.gather_conv1x1`` and
``ext.conv1x1_scatter`` (CPU twin of the tensor-core kernels) against ``reference.gather_conv1x1`` /
``reference.conv1x1_scatter`` on fresh random inputs with random lazy chains, TSM on and off, groups 1 and 2, empty
selections, in place / out= / functional forms, the Python fallback path, argument errors and opcheck.

``ext`` runs the compiled kernels for float16 / bfloat16 and the reference composition for float32 / float64 (the
issue's contract: "fp32 falls back", so fp32 stays bit-equal to the reference); the float32 / float64 CPU twin is
tested through ``torch.ops.afnet_edge.*`` directly.

Tolerances (both sides compute in float32 and round once; only the summation order differs — the reference's
F.conv2d vs the kernels' ascending order): float32 / float64 max |diff| <= 1e-5 · max |reference|; float16 / bfloat16
per element within one unit in the last place of the storage type (rtol 2^-10 / 2^-7) plus 1e-5 · max |reference|.
Rows the scatter does not select must equal the residual bit for bit. The emulated CUDA kernels are checked by
csrc/kernels/selftest.cpp under scripts/cuda_emu_check.sh (bit-equal to the CPU twin there).
"""
from __future__ import annotations

import zlib

import pytest
import torch

from afnet_edge.kernels import ext, reference
from afnet_edge.kernels.reference import LazyChain
from skip_reasons import NO_CUDA

pytestmark = pytest.mark.skipif(not ext._FUSED_GEMM_KERNELS["cpu"],
                                reason=f"afnet_edge._C not built with the fused 1x1 ops ({ext.import_error()})")

E = torch.ops.afnet_edge if ext.AVAILABLE else None
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


@pytest.fixture
def gen(request):
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))


def rand(shape, dtype, gen, lo=0.1, hi=2.0):
    """Values in ±[lo, hi) (never zero)."""
    mag = lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    return (mag * sign).to(dtype)


def make_chain(n: int, chw: tuple, dtype, gen, L: int = 3) -> LazyChain:
    """Random pending chains: start in [0, L], constant maps (L, C, H, W), random ReLU bits, upto in [1, L]."""
    start = torch.randint(0, L + 1, (n,), generator=gen, dtype=torch.int32)
    consts = rand((L, *chw), dtype, gen, 0.05, 1.0)
    mask = int(torch.randint(0, 2 ** L, (1,), generator=gen))
    upto = int(torch.randint(1, L + 1, (1,), generator=gen))
    return LazyChain(start, consts, mask, upto)


def folded(o: int, gen):
    return (0.5 + torch.rand(o, generator=gen)).float(), (torch.rand(o, generator=gen) - 0.5).float()


def assert_tol(got: torch.Tensor, want: torch.Tensor) -> float:
    """Returns max |diff| / max |want| after checking the per-dtype tolerance (module docstring)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    assert not got.isnan().any(), "unwritten (NaN-poisoned) output elements"
    g, w = got.double(), want.double()
    scale = w.abs().max().item() if w.numel() else 1.0
    diff = (g - w).abs()
    if want.dtype in (torch.float32, torch.float64):
        assert diff.max().item() <= 1e-5 * scale if w.numel() else True
    else:
        ulp = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}[want.dtype]
        bad = diff > ulp * w.abs() + 1e-5 * scale
        assert not bad.any(), f"{int(bad.sum())} elements off by more than one ulp, max diff {diff.max().item()}"
    return diff.max().item() / scale if w.numel() else 0.0


def selection(n: int, gen, kind: str = "some") -> torch.Tensor:
    if kind == "empty":
        return torch.zeros(0, dtype=torch.int64)
    keep = torch.rand(n, generator=gen) < 0.5
    keep[0] = keep[-1] = True
    return keep.nonzero().flatten()


# ---------------------------------------------------------------------------------------------------- gather_conv1x1
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("with_chain", [False, True])
def test_gather_conv1x1_matches_reference(dtype, groups, shift, with_chain, gen):
    B, T, C, O, H, W = 2, 4, 64, 48, 7, 5  # C = 64: fold 8 < a 32-channel K chunk; H·W = 35 not a multiple of 16
    x = rand((B * T, C, H, W), dtype, gen)
    w = rand((O, C // groups, 1, 1), dtype, gen, 0.01, 0.2)
    scale, bias = folded(O, gen)
    idx = selection(B * T, gen)
    chain = make_chain(B * T, (C, H, W), dtype, gen) if with_chain else None
    relu = bool(torch.rand(1, generator=gen) < 0.5)
    out = torch.full((idx.numel(), O, H, W), float("nan"), dtype=dtype)
    want = reference.gather_conv1x1(x, idx, T, shift, w, groups, scale, bias, relu, chain)
    E.gather_conv1x1.out(x, idx, T, shift, w, groups, scale, bias, relu, *ext._gemm_chain_args(chain), out=out)
    assert_tol(out, want)  # the compiled kernel (CPU twin), every dtype
    got = ext.gather_conv1x1(x, idx, T, shift, w.flatten(1), groups, scale, bias, relu, chain=chain)
    if dtype in (torch.float32, torch.float64):
        assert torch.equal(got, want)  # ext: the reference composition
    else:
        assert torch.equal(got, out)  # ext: the kernel


def test_gather_conv1x1_reads_only_through_the_chain(gen):
    """With a chain, the result is the reference's on the materialised tensor — and differs from ignoring it."""
    T, C, O, H, W = 4, 16, 16, 3, 3
    x = rand((T, C, H, W), torch.float16, gen)
    w = rand((O, C), torch.float16, gen)
    scale, bias = folded(O, gen)
    chain = LazyChain(torch.zeros(T, dtype=torch.int32), rand((2, C, H, W), torch.float16, gen), 0b01, 2)
    idx = torch.tensor([0, 2])
    got = ext.gather_conv1x1(x, idx, T, True, w, 1, scale, bias, False, chain=chain)
    plain = ext.gather_conv1x1(reference.chain_materialize(x, chain), idx, T, True, w, 1, scale, bias, False)
    assert_tol(got, plain)
    assert (got - ext.gather_conv1x1(x, idx, T, True, w, 1, scale, bias, False)).abs().max() > 1e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_gather_conv1x1_empty_selection_and_edges(dtype, gen):
    x = rand((3, 24, 4, 4), dtype, gen)
    w = rand((8, 12), dtype, gen)
    scale, bias = folded(8, gen)
    empty = torch.zeros(0, dtype=torch.int64)
    assert ext.gather_conv1x1(x, empty, 3, True, w, 2, scale, bias, True).shape == (0, 8, 4, 4)
    idx = torch.tensor([2, 0, 2])  # unsorted, duplicated: a plain gather
    assert_tol(ext.gather_conv1x1(x, idx, 1, True, w, 2, scale, bias, True),  # T = 1: both shifted groups zero
               reference.gather_conv1x1(x, idx, 1, True, w, 2, scale, bias, True))


# --------------------------------------------------------------------------------------------------- conv1x1_scatter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("with_chain", [False, True])
@pytest.mark.parametrize("form", ["functional", "out", "inplace"])
def test_conv1x1_scatter_matches_reference(dtype, groups, with_chain, form, gen):
    N, C, Ch, H, W = 8, 64, 32, 5, 7
    residual = rand((N, C, H, W), dtype, gen)
    idx = selection(N, gen)
    h = rand((idx.numel(), Ch, H, W), dtype, gen)
    w = rand((C, Ch // groups, 1, 1), dtype, gen, 0.01, 0.3)
    scale, bias = folded(C, gen)
    chain = make_chain(N, (C, H, W), dtype, gen) if with_chain else None
    relu = bool(torch.rand(1, generator=gen) < 0.5)
    want = reference.conv1x1_scatter(h, w, groups, scale, bias, residual, idx, relu, chain)
    before = residual.clone()
    if dtype in (torch.float32, torch.float64):  # ext would take the reference composition: call the kernel
        chain_args = ext._gemm_chain_args(chain)
        if form == "functional":
            got = E.conv1x1_scatter(h, w, groups, scale, bias, residual, idx, relu, *chain_args)
        elif form == "out":
            got = torch.full_like(residual, float("nan"))
            E.conv1x1_scatter.out(h, w, groups, scale, bias, residual, idx, relu, *chain_args, out=got)
        else:
            E.conv1x1_scatter_(h, w, groups, scale, bias, residual, idx, relu, *chain_args)
            got = residual
        assert torch.equal(ext.conv1x1_scatter(h, w, groups, scale, bias, before, idx, relu, chain=chain), want)
    elif form == "functional":
        got = ext.conv1x1_scatter(h, w, groups, scale, bias, residual, idx, relu, chain=chain)
        assert torch.equal(residual, before)
    elif form == "out":
        out = torch.full_like(residual, float("nan"))
        got = ext.conv1x1_scatter(h, w, groups, scale, bias, residual, idx, relu, chain=chain, out=out)
        assert got is out
    else:
        got = ext.conv1x1_scatter(h, w, groups, scale, bias, residual, idx, relu, chain=chain, inplace=True)
        assert got is residual
    unselected = torch.ones(N, dtype=torch.bool)
    unselected[idx] = False
    assert torch.equal(got[unselected], before[unselected])  # left as stored (pending), bit for bit
    assert_tol(got[idx], want[idx])


def test_conv1x1_scatter_empty_and_non_contiguous(gen):
    residual = rand((4, 16, 3, 3), torch.float16, gen)
    w = rand((16, 8), torch.float16, gen)
    scale, bias = folded(16, gen)
    empty = torch.zeros(0, dtype=torch.int64)
    h0 = rand((0, 8, 3, 3), torch.float16, gen)
    assert torch.equal(ext.conv1x1_scatter(h0, w, 1, scale, bias, residual, empty, True), residual)
    # channels_last residual, in place: written back into the caller's tensor
    res_cl = residual.clone().to(memory_format=torch.channels_last)
    idx = torch.tensor([1, 3])
    h = rand((2, 8, 3, 3), torch.float16, gen)
    want = reference.conv1x1_scatter(h, w, 1, scale, bias, residual, idx, True)
    got = ext.conv1x1_scatter(h, w, 1, scale, bias, res_cl, idx, True, inplace=True)
    assert got is res_cl
    assert_tol(got, want)


def test_fused_gemm_fallback_path_is_the_reference(gen, monkeypatch):
    """Where the compiled kernel does not apply (float32 on CUDA, sm < 80, an older build) the entry points run the
    reference composition; forced here on the CPU."""
    monkeypatch.setitem(ext._FUSED_GEMM_KERNELS, "cpu", False)
    x = rand((4, 16, 3, 3), torch.float32, gen)
    w = rand((8, 16), torch.float32, gen)
    scale, bias = folded(8, gen)
    chain = make_chain(4, (16, 3, 3), torch.float32, gen)
    idx = torch.tensor([0, 3])
    out = torch.full((2, 8, 3, 3), float("nan"))
    got = ext.gather_conv1x1(x, idx, 4, True, w, 1, scale, bias, True, chain=chain, out=out)
    assert got is out and torch.equal(got, reference.gather_conv1x1(x, idx, 4, True, w, 1, scale, bias, True, chain))
    w2 = rand((16, 8), torch.float32, gen)
    s2, b2 = folded(16, gen)
    h = rand((2, 8, 3, 3), torch.float32, gen)
    want = reference.conv1x1_scatter(h, w2, 1, s2, b2, x, idx, False, chain)
    assert ext.conv1x1_scatter(h, w2, 1, s2, b2, x, idx, False, chain=chain, inplace=True) is x
    assert torch.equal(x, want)


# ------------------------------------------------------------------------------------------------------------- errors
def test_fused_gemm_argument_errors(gen):
    x = rand((4, 16, 3, 3), torch.float16, gen)
    w = rand((8, 8), torch.float16, gen)
    scale, bias = folded(8, gen)
    idx = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="groups"):
        ext.gather_conv1x1(x, idx, 4, True, rand((8, 5), torch.float16, gen), 3, scale, bias, True)
    with pytest.raises(ValueError, match="weight must be"):
        ext.gather_conv1x1(x, idx, 4, True, rand((8, 7), torch.float16, gen), 2, scale, bias, True)
    with pytest.raises(ValueError, match="must divide the output channels"):
        ext.gather_conv1x1(x, idx, 4, True, rand((9, 8), torch.float16, gen), 2, *folded(9, gen), True)
    with pytest.raises(TypeError, match="scale must be float32"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale.half(), bias, True)
    with pytest.raises(ValueError, match="bias must be"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias[:4], True)
    with pytest.raises(TypeError, match="weight must have the dtype"):
        ext.gather_conv1x1(x, idx, 4, True, w.float(), 2, scale, bias, True)
    with pytest.raises(ValueError, match="index values"):
        ext.gather_conv1x1(x, torch.tensor([0, 9]), 4, True, w, 2, scale, bias, True)
    bad_chain = LazyChain(torch.zeros(4, dtype=torch.int32), rand((2, 16, 3, 3), torch.float16, gen), 0, 3)
    with pytest.raises(ValueError, match="chain_upto"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True, chain=bad_chain)
    with pytest.raises(TypeError, match="chain_start must be int32"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True,
                           chain=LazyChain(torch.zeros(4, dtype=torch.int64), bad_chain.consts, 0, 1))
    with pytest.raises(ValueError, match="chain_consts must be"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True,
                           chain=LazyChain(bad_chain.start, bad_chain.consts[:, :8], 0, 1))
    with pytest.raises(ValueError, match="given together"):
        E.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True, bad_chain.start, None, 0, 1)
    with pytest.raises(ValueError, match="need a chain"):
        E.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True, None, None, 1, 1)
    with pytest.raises(TypeError, match="chain must be"):
        ext.gather_conv1x1(x, idx, 4, True, w, 2, scale, bias, True, chain=(1, 2, 3, 4))
    # no autograd
    with pytest.raises(ValueError, match="no autograd"):
        ext.gather_conv1x1(x, idx, 4, True, w.clone().requires_grad_(), 2, scale, bias, True)
    # scatter
    h = rand((2, 8, 3, 3), torch.float16, gen)
    ws = rand((16, 4), torch.float16, gen)
    s16, b16 = folded(16, gen)
    with pytest.raises(ValueError, match="sorted ascending and unique"):
        ext.conv1x1_scatter(h, ws, 2, s16, b16, x, torch.tensor([2, 0]), True)
    with pytest.raises(ValueError, match="one entry per frame of h"):
        ext.conv1x1_scatter(h, ws, 2, s16, b16, x, torch.tensor([0]), True)
    with pytest.raises(ValueError, match="output channels"):
        ext.conv1x1_scatter(h, rand((8, 4), torch.float16, gen), 2, scale, bias, x, idx, True)
    with pytest.raises(ValueError, match="h must be"):
        ext.conv1x1_scatter(rand((2, 8, 3, 4), torch.float16, gen), ws, 2, s16, b16, x, idx, True)
    with pytest.raises(ValueError, match="either inplace=True or out="):
        ext.conv1x1_scatter(h, ws, 2, s16, b16, x, idx, True, inplace=True, out=torch.empty_like(x))
    with pytest.raises(ValueError, match="no autograd"):
        ext.conv1x1_scatter(h.clone().requires_grad_(), ws, 2, s16, b16, x, idx, True)


# ------------------------------------------------------------------------------------------------------------ opcheck
def _opcheck_cases():
    g = torch.Generator().manual_seed(7)
    x = rand((4, 16, 3, 3), torch.float32, g)
    w = rand((8, 8), torch.float32, g)
    s, b = folded(8, g)
    idx = torch.tensor([0, 3])
    st, k = torch.tensor([0, 1, 2, 0], dtype=torch.int32), rand((2, 16, 3, 3), torch.float32, g)
    h = rand((2, 8, 3, 3), torch.float32, g)
    ws = rand((16, 4), torch.float32, g)
    s16, b16 = folded(16, g)
    return [
        ("gather_conv1x1", (x, idx, 4, True, w, 2, s, b, True, None, None, 0, 0)),
        ("gather_conv1x1", (x, idx, 4, False, w, 2, s, b, False, st, k, 0b11, 2)),
        ("conv1x1_scatter", (h, ws, 2, s16, b16, x, idx, True, st, k, 0b01, 2)),
        ("conv1x1_scatter_", (h, ws, 2, s16, b16, x.clone(), idx, False, None, None, 0, 0)),
    ]


@pytest.mark.parametrize("name,args", _opcheck_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_opcheck(name, args):
    torch.library.opcheck(getattr(E, name).default, args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cuda_matches_reference(dtype, gen):
    """On a GPU: the tensor-core kernels (float16 / bfloat16) or the fallback (float32) against the reference."""
    d = torch.device("cuda")
    x = rand((12, 64, 14, 14), dtype, gen).to(d)
    w = rand((64, 32), dtype, gen, 0.01, 0.2).to(d)
    s, b = (t.to(d) for t in folded(64, gen))
    idx = torch.tensor([0, 3, 4, 11], device=d)
    chain = make_chain(12, (64, 14, 14), dtype, gen)
    chain = LazyChain(chain.start.to(d), chain.consts.to(d), chain.relu_mask, chain.upto)
    assert_tol(ext.gather_conv1x1(x, idx, 12, True, w, 2, s, b, True, chain=chain).cpu(),
               reference.gather_conv1x1(x, idx, 12, True, w, 2, s, b, True, chain).cpu())
    h = rand((4, 64, 14, 14), dtype, gen).to(d)
    want = reference.conv1x1_scatter(h, w, 2, s, b, x, idx, True, chain)
    assert_tol(ext.conv1x1_scatter(h, w, 2, s, b, x, idx, True, chain=chain, inplace=True).cpu(), want.cpu())
