"""The compiled AdaFocus crop (issue 12 item 4: ``afnet_edge::focus_crop`` and its backward ops
``focus_crop_grad_x`` / ``focus_crop_grad_centres``) against :func:`afnet_edge.kernels.adafocus_reference.focus_crop`
and the official ``affine_grid`` + ``grid_sample``; the models' ``kernels`` switch.

Tolerances: ``bilinear`` float32 ≤ 1e-5 from the reference (same fp32 corner and weights, float arithmetic, one
rounding) and ≤ 2e-4 from the official grid_sample crop (spec §2.3); float16 / bfloat16 within 2 ulp of ±2 (values
are in ±[0.1, 2)) of the float64 crop at the same fp32 coordinates; ``floor`` bit-exact in every dtype. Gradients:
float64 gradcheck (positions away from integer corners), float32 against the reference's autograd. The kernels'
out-of-output writes, the CUDA launchers and their equality with the CPU twins are checked by
``csrc/kernels/selftest.cpp`` under scripts/cuda_emu_check.sh (ASan/UBSan, TSan, negative controls).
"""
from __future__ import annotations

import os
import zlib

import pytest
import torch
import torch.nn.functional as F

import afnet_edge
from afnet_edge.kernels import adafocus_ops, ext
from afnet_edge.kernels import adafocus_reference as ref
from skip_reasons import NO_CUDA

REQUIRE_EXT = os.environ.get("AFNET_EDGE_REQUIRE_EXT") == "1"
HAVE_OPS = ext.AVAILABLE and ext.has_crop_kernels("cpu")
pytestmark = pytest.mark.skipif(not HAVE_OPS and not REQUIRE_EXT,
                                reason=f"afnet_edge._C without the focus_crop ops ({ext.import_error()})")
E = torch.ops.afnet_edge if HAVE_OPS else None
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA))]
EPS = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not ext.has_crop_kernels("cuda"):
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


def positions(n: int, g, device, dtype=torch.float32) -> torch.Tensor:
    """Random actions in (0, 1) with the far edge (1), the near edge (0) and a mixed row among them."""
    a = torch.rand(n, 2, generator=g, dtype=torch.float64).to(dtype)
    a[0] = 1.0
    a[1] = 0.0
    a[2] = torch.tensor([1.0, 0.37])
    return a.to(device)


def official_crop(x: torch.Tensor, a: torch.Tensor, patch: int) -> torch.Tensor:
    """The official V2 crop (spec §2.3): affine matrix on x's device, affine_grid, grid_sample (defaults)."""
    n, c, h, w = x.shape
    y1, x1 = a[:, 0] * (h - patch), a[:, 1] * (w - patch)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = patch / w, patch / h
    theta[:, 0, 2] = -1 + (2 * x1 + patch) / w
    theta[:, 1, 2] = -1 + (2 * y1 + patch) / h
    grid = F.affine_grid(theta, [n, c, patch, patch], align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


# ------------------------------------------------------------------------------------------------- forward parity
@pytest.mark.parametrize("shape", [(6, 3, 224, 224, 128), (5, 2, 37, 51, 19), (3, 4, 9, 9, 9)])
def test_bilinear_float32_matches_reference_and_grid_sample(device, gen, shape):
    n, c, h, w, p = shape
    x = rand((n, c, h, w), torch.float32, device, gen)
    a = positions(n, gen, device)
    out = ext.focus_crop(x, a, p)
    assert out.shape == (n, c, p, p) and out.dtype == torch.float32 and out.is_contiguous()
    want = ref.focus_crop(x, a, p)
    assert float((out - want).abs().max()) <= 1e-5
    assert float((out - official_crop(x, a, p)).abs().max()) <= 2e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_bilinear_low_precision_within_two_ulp(device, gen, dtype):
    x = rand((4, 3, 40, 48), dtype, device, gen)
    a = positions(4, gen, device)
    out = ext.focus_crop(x, a, 24)
    assert out.dtype == dtype
    want = ref.focus_crop(x.double(), a, 24)          # the same fp32 corner (reference keeps fp32 coordinates)
    assert float((out.double() - want).abs().max()) <= 2 * EPS[dtype] * 2
    # and the reference run in the 16-bit dtype (which rounds its weights to that dtype) within the same bound x2
    assert float((out.double() - ref.focus_crop(x, a, 24).double()).abs().max()) <= 4 * EPS[dtype] * 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_floor_is_bit_exact(device, gen, dtype):
    x = rand((5, 3, 33, 45), dtype, device, gen)
    a = positions(5, gen, device, torch.float64 if dtype == torch.float64 else torch.float32)
    out = ext.focus_crop(x, a, 17, mode="floor")
    assert torch.equal(out, ref.focus_crop(x, a, 17, mode="floor"))


def test_positions_are_taken_in_fp32_and_clamped(gen):
    x = rand((4, 2, 30, 30), torch.float32, "cpu", gen)
    a = torch.tensor([[-0.3, 1.7], [0.25, 0.5], [1.0, 0.0], [0.999, 0.001]])
    for mode in ref.CROP_MODES:
        assert float((ext.focus_crop(x, a, 11, mode) - ref.focus_crop(x, a, 11, mode)).abs().max()) <= 1e-6
    # float16 positions are promoted to float32 on their device (as the reference does)
    a16 = a.clamp(0, 1).half()
    assert torch.equal(ext.focus_crop(x, a16, 11, "floor"), ref.focus_crop(x, a16, 11, "floor"))


# -------------------------------------------------------------------------------------------------------- gradients
def _off_integer(a: torch.Tensor, spans: tuple[int, int]) -> torch.Tensor:
    """Positions whose corners sit at fractional parts in [0.25, 0.75] (the gradient jumps at integers)."""
    s = torch.tensor(spans, dtype=a.dtype)
    return ((a * s).floor().clamp(max=s - 1) + 0.25 + 0.5 * torch.rand_like(a)) / s


def test_gradcheck_float64_frames_and_positions(gen):
    x = rand((2, 2, 10, 12), torch.float64, "cpu", gen).requires_grad_(True)
    a = _off_integer(torch.rand(2, 2, generator=gen, dtype=torch.float64), (10 - 5, 12 - 5)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda xx, aa: ext.focus_crop(xx, aa, 5), (x, a), eps=1e-6, atol=1e-7)
    xf = x.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda xx: ext.focus_crop(xx, a.detach(), 5, "floor"), (xf,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["bilinear", "floor"])
def test_gradients_match_the_reference_autograd(device, gen, mode):
    x = rand((4, 3, 24, 28), torch.float32, device, gen)
    a = positions(4, gen, device)
    a[3] = torch.tensor([-0.2, 1.3])                   # clamped: no gradient, as torch.clamp's backward
    g = rand((4, 3, 13, 13), torch.float32, device, gen)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    as_ = [a.clone().requires_grad_(mode == "bilinear") for _ in range(2)]
    ext.focus_crop(xs[0], as_[0], 13, mode).backward(g)
    ref.focus_crop(xs[1], as_[1], 13, mode).backward(g)
    assert float((xs[0].grad - xs[1].grad).abs().max()) <= 1e-5
    if mode == "bilinear":
        scale = float(as_[1].grad.abs().max())
        assert float((as_[0].grad - as_[1].grad).abs().max()) <= 1e-4 * scale
        assert torch.equal(as_[0].grad[3], torch.zeros(2, device=device))
    else:
        assert not ext.focus_crop(x, a.requires_grad_(True), 13, mode).requires_grad


class DeviceSpy(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the device of every tensor an op receives or returns."""

    def __init__(self):
        super().__init__()
        self.devices: set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves((args, kwargs, out)):
            if isinstance(t, torch.Tensor):
                self.devices.add(t.device.type)
        return out


@pytest.mark.parametrize("mode", ["bilinear", "floor"])
def test_forward_and_backward_create_nothing_on_the_host(mode):
    # on the meta device (fake kernels) a constant made on the host would show up as a cpu tensor
    x = torch.empty(4, 3, 224, 224, device="meta", requires_grad=True)
    a = torch.empty(4, 2, device="meta", dtype=torch.float16, requires_grad=True)   # converted on its device
    with DeviceSpy() as spy:
        out = ext.focus_crop(x, a, 128, mode)
        out.sum().backward()
    assert out.shape == (4, 3, 128, 128) and x.grad is not None and x.grad.shape == x.shape
    assert (a.grad is not None) == (mode == "bilinear")
    assert spy.devices == {"meta"}


# --------------------------------------------------------------------------------------------------------- opcheck
def _opcheck_cases():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(3, 2, 11, 13, generator=g)
    a = torch.rand(3, 2, generator=g)
    grad = torch.randn(3, 2, 6, 6, generator=g)
    return [("focus_crop", (x.clone().requires_grad_(True), a.clone().requires_grad_(True), 6, "bilinear")),
            ("focus_crop", (x, a, 6, "floor")),
            ("focus_crop_grad_x", (grad, a, 11, 13, "bilinear")),
            ("focus_crop_grad_centres", (grad, x, a, "bilinear"))]


@pytest.mark.parametrize("i", range(4))
def test_opcheck(i):
    name, args = _opcheck_cases()[i]
    torch.library.opcheck(getattr(E, name).default, args)


# -------------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call", ["entry", "op"])
def test_bad_arguments_name_the_argument(call):
    x, a = torch.randn(2, 3, 16, 16), torch.rand(2, 2)
    run = ext.focus_crop if call == "entry" else E.focus_crop
    cases = [((x[0], a, 8, "bilinear"), ValueError, "x must be"),
             ((x.to(torch.int32), a, 8, "bilinear"), (ValueError, TypeError), "x must be"),
             ((x, a[:1], 8, "bilinear"), ValueError, "centres must"),
             ((x, a.view(2, 2, 1), 8, "bilinear"), ValueError, "centres must"),
             ((x, a, 0, "bilinear"), ValueError, "patch must"),
             ((x, a, 17, "bilinear"), ValueError, "patch must"),
             ((x, a, 8, "nearest"), ValueError, "mode must")]
    if call == "op":                                   # the raw op takes the coordinate type only
        cases.append(((x, a.double(), 8, "bilinear"), TypeError, "centres must be float32"))
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            run(*args)
    with pytest.raises(ValueError, match="grad must"):
        E.focus_crop_grad_x(torch.randn(2, 3, 8, 7), a, 16, 16, "bilinear")
    with pytest.raises(ValueError, match="grad must"):
        E.focus_crop_grad_centres(torch.randn(2, 4, 8, 8), x, a, "bilinear")


# ------------------------------------------------------------------------------------------------- the model switch
def test_switch_choices(monkeypatch):
    x = torch.randn(2, 3, 16, 16)
    assert adafocus_ops.uses_kernel(x, "auto") and adafocus_ops.uses_kernel(x, "ext")
    assert not adafocus_ops.uses_kernel(x, "torch")
    with afnet_edge.kernels.use_ops("torch"):
        assert not adafocus_ops.uses_kernel(x, "auto")
    with pytest.raises(ValueError, match="kernels must be"):
        adafocus_ops.uses_kernel(x, "cuda")
    monkeypatch.setattr(adafocus_ops, "extension_available", lambda: False)
    assert not adafocus_ops.uses_kernel(x, "auto")
    with pytest.raises(RuntimeError, match="not built"):
        adafocus_ops.uses_kernel(x, "ext")


def _count_calls(monkeypatch) -> list:
    calls: list = []
    real = ext.focus_crop

    def spy(*args, **kw):
        calls.append(args[3] if len(args) > 3 else kw.get("mode", "bilinear"))
        return real(*args, **kw)
    monkeypatch.setattr(ext, "focus_crop", spy)
    return calls


def small_model(name: str, seed: int, **kw) -> torch.nn.Module:
    """A registered AdaFocus model whose MobileNetV2 glance is replaced by a cheap stand-in with the same output
    shape (N, 1280, 7, 7): the crop, the policy and the local network are the model's own; the test stays fast."""
    torch.manual_seed(seed)
    model = afnet_edge.create_model(name, num_classes=5, num_frames=2, patch_size=48, **kw)
    model.global_CNN = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(7), torch.nn.Conv2d(3, 1280, 1),
                                           torch.nn.Tanh())
    return model


@pytest.mark.parametrize("name,mode", [("adafocus_v2_mn2", "bilinear"), ("adafocus_v1", "floor")])
def test_models_use_the_op_and_keep_the_reference_results(monkeypatch, name, mode):
    model = small_model(name, 0).eval()
    clip = torch.randn(2, 2, 3, 224, 224)
    calls = _count_calls(monkeypatch)
    with torch.no_grad():
        want = model.configure(kernels="torch")(clip)
        assert calls == []
        got = model.configure(kernels="ext")(clip)
    assert calls == [mode]
    assert torch.equal(got.locations, want.locations)
    assert float((got.logits - want.logits).abs().max()) <= 1e-4 * max(1.0, float(want.logits.abs().max()))


def test_v2_training_gradients_through_the_op_match_the_reference(monkeypatch):
    # the policy learns only through the crop's position gradient (spec §2.9): it must match the reference's
    model = small_model("adafocus_v2_mn2", 1, dropout=0.0).train()
    clip = torch.randn(2, 2, 3, 224, 224)
    grads = []
    calls = _count_calls(monkeypatch)
    for kernels in ("torch", "ext"):
        model.zero_grad(set_to_none=True)
        model.configure(kernels=kernels)(clip).step_logits.sum().backward()
        grads.append(model.policy_stn.fc[0].weight.grad.clone())
    assert calls == ["bilinear"]
    assert float(grads[0].abs().max()) > 0
    assert float((grads[1] - grads[0]).abs().max()) <= 1e-3 * float(grads[0].abs().max())
