"""bLVNet-TAM (shared/spec/blvnet-tam.md): the fused-op-shaped references against the spec's formulas (§4), the model
against a forward written from the spec text (§2–§3), the pair-aware path against the official one, the official
checkpoint layout (§6), the cost table (§5.1) and input checks. Small shapes (G = 4 frames, 32–64 px) keep the file
fast on the 2-core CI box; the architecture is size-independent."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import afnet_edge
from afnet_edge import load_checkpoint
from afnet_edge.checkpoint import CheckpointError, inspect_checkpoint
from afnet_edge.flops import count_flops, executed_macs_per_module, measure_macs, official_flops_table
from afnet_edge.kernels.blvnet_reference import (bl_merge, duplicate_pairs, fold_pair_weights, tam_official,
                                                 temporal_aggregate, temporal_aggregate_pair)
from afnet_edge.layers.blvnet import TAM, TapWeight
from afnet_edge.models.afnet_resnet import AmpleBottleneck

from conftest import randomize_model

REL = 1e-5


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def randomize(model: torch.nn.Module, seed: int = 0, size: int = 32) -> torch.nn.Module:
    """conftest's random convs and BN affine parameters, random TAM taps, and BN running statistics calibrated on a
    random clip (one train-mode forward with momentum 1), so that activations stay O(1) and the logits depend on the
    input through all ~100 layers (with arbitrary statistics the input's share of the logits fades to ~1e-4)."""
    randomize_model(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TapWeight):
                m.weight.copy_(0.6 * torch.randn(m.weight.shape, generator=g))
        for m in model.modules():  # residual branches of a trained-like scale: the random net stays well conditioned
            if isinstance(m, AmpleBottleneck):
                m.bn3.weight.mul_(0.3)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in bns:
            m.momentum = 1.0
        model.train()(torch.randn(2, model.num_frames, 3, size, size, generator=g))
        for m in bns:
            m.momentum = 0.1
    return model.eval()


def make(name: str = "blvnet_tam_r50", frames: int = 4, classes: int = 7, seed: int = 0, size: int = 32, **kw):
    return randomize(afnet_edge.create_model(name, num_classes=classes, num_frames=frames, **kw), seed, size)


@pytest.fixture(scope="module")
def r50():
    """One randomised R50 (G = 4, 7 classes, calibrated at 32 px) shared by the tests that only read it."""
    return make()


# -------------------------------------------------------------------------------------------- spec §4 formulas
def tam_formula(x: torch.Tensor, w: torch.Tensor, T: int) -> torch.Tensor:
    """§4.1 literally: out_t = ReLU(Σ_i w_i ⊙ x_{t+i−r}), x_s = 0 outside [0, T) of each clip."""
    n, c, h, wd = x.shape
    k, r = w.shape[0], w.shape[0] // 2
    v = x.view(n // T, T, c, h, wd)
    out = torch.full_like(v, float("nan"))
    for t in range(T):
        acc = torch.zeros_like(v[:, 0])
        for i in range(k):
            s = t + i - r
            if 0 <= s < T:
                acc = acc + w[i].view(1, c, 1, 1) * v[:, s]
        out[:, t] = torch.relu(acc)
    return out.view(n, c, h, wd)


@pytest.mark.parametrize("k,T", [(3, 6), (5, 4), (1, 3), (3, 1)])
def test_temporal_aggregate_and_official_tam_match_the_formula(k, T, rng):
    x = torch.randn(2 * T, 5, 3, 4, generator=rng)
    w = torch.randn(k, 5, generator=rng)
    ref = tam_formula(x, w, T)
    assert rel_err(temporal_aggregate(x, w, T), ref) <= REL
    assert rel_err(tam_official(x, [wi.view(5, 1, 1, 1) for wi in w], T), ref) <= REL
    assert bool((ref == 0).any()) and bool((ref > 0).any())   # the ReLU is active somewhere and not everywhere


def test_tam_module_key_names_and_init():
    t3, t5 = TAM(16, 3), TAM(16, 5)
    assert sorted(t3.state_dict()) == ["curr.weight", "next.weight", "prev.weight"]
    assert sorted(t5.state_dict()) == [f"blending_layers.{i}.weight" for i in range(5)]
    assert t3.weight().shape == (3, 16) and torch.equal(t3.weight()[0], t3.prev.weight.view(16))
    big = TAM(4096, 3)
    assert abs(float(big.curr.weight.detach().std()) - (2 / 4096) ** 0.5) < 0.1 * (2 / 4096) ** 0.5  # not the identity
    with pytest.raises(ValueError, match="blending_frames"):
        TAM(8, 4)


@pytest.mark.parametrize("k", [3, 5, 7, 1])
def test_pair_tam_equals_tam_on_duplicated_slots(k, rng):
    """§4.3: TAM over slots holding y_k twice == the folded pair form, both branch inputs."""
    P, c = 5, 6
    y = torch.randn(2 * P, c, 3, 2, generator=rng)
    w = torch.randn(k, c, generator=rng)
    slots = tam_formula(duplicate_pairs(y), w, 2 * P)
    wb, wl = fold_pair_weights(w)
    big, little = temporal_aggregate_pair(y, wb, wl, P)
    assert rel_err(big, slots[1::2]) <= REL
    assert rel_err(little, slots[0::2]) <= REL
    if k == 3:  # the closed form the spec writes out
        z = torch.zeros_like(w[0])
        assert torch.equal(wb, torch.stack([z, w[0] + w[1], w[2]]))
        assert torch.equal(wl, torch.stack([w[0], w[1] + w[2], z]))


def test_bl_merge_is_relu_of_replicated_big_plus_little(rng):
    big = torch.randn(3, 4, 5, 6, generator=rng)
    little = torch.randn(3, 4, 10, 12, generator=rng)
    up = big.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(bl_merge(big, little), torch.relu(up + little))
    same = torch.randn(3, 4, 5, 6, generator=rng)
    assert torch.equal(bl_merge(big, same), torch.relu(big + same))
    with pytest.raises(ValueError, match="big and little"):
        bl_merge(big, little[:, :2])


def test_reference_ops_reject_bad_shapes(rng):
    x = torch.randn(6, 4, 2, 2, generator=rng)
    with pytest.raises(ValueError, match="num_frames=4"):
        temporal_aggregate(x, torch.randn(3, 4), 4)
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C\)"):
        temporal_aggregate(x, torch.randn(2, 4), 3)
    with pytest.raises(ValueError, match="w_little"):
        temporal_aggregate_pair(x, torch.randn(3, 4), torch.randn(3, 5), 3)


# -------------------------------------------------------------------------------- the model from the spec text
def spec_forward(model, clip: torch.Tensor) -> torch.Tensor:
    """The official eval forward written from spec §2–§3 with this test's own TAM (formula), slot lists, pair
    duplication and 2× replication; bottleneck blocks are the model's (their internals are checked separately)."""
    bm, G = model.baseline_model, model.num_frames
    B = clip.shape[0]
    n = B * G
    big_rows = [b * G + g for b in range(B) for g in range(1, G, 2)]      # odd slots
    little_rows = [b * G + g for b in range(B) for g in range(0, G, 2)]   # even slots

    def tam(x, t, T):
        return tam_formula(x, t.weight(), T)

    def dup(y):
        out = y.new_full((n,) + tuple(y.shape[1:]), float("nan"))
        out[little_rows] = y
        out[big_rows] = y
        return out

    def up2(x):
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    x = F.relu(bm.bn1(bm.conv1(clip.reshape(n, 3, *clip.shape[-2:]))))
    x = tam(x, bm.tam, G)
    b = bm.bn_b0(bm.b_conv0(x[big_rows]))
    lt = F.relu(bm.bn_l0(bm.l_conv0(x[little_rows])))
    lt = bm.bn_l2(bm.l_conv2(F.relu(bm.bn_l1(bm.l_conv1(lt)))))
    x = dup(F.relu(bm.bn_bl_init(bm.bl_init(F.relu(b + lt)))))
    for layer in (bm.layer1, bm.layer2, bm.layer3):
        x = tam(x, layer.tam, G)
        b, lt = x[big_rows], x[little_rows]
        for blk in layer.big:
            b = blk(b)
        for blk in layer.little:
            lt = blk(lt)
        x = dup(layer.fusion(F.relu(up2(b) + layer.little_e(lt))))
    x = x[big_rows]
    for blk in bm.layer4:                       # §3.1 with_tam: TAM output to conv1 and downsample, raw x otherwise
        z = tam(x, blk.tam, G // 2)
        r = blk.downsample(z) if blk.downsample is not None else x
        z = F.relu(blk.bn1(blk.conv1(z)))
        z = F.relu(blk.bn2(blk.conv2(z)))
        x = F.relu(blk.bn3(blk.conv3(z)) + r)
    per_pair = model.new_fc(x.mean(dim=(2, 3)))
    return per_pair.view(B, G // 2, -1).mean(dim=1)


@torch.no_grad()
@pytest.mark.parametrize("name,frames,size", [("blvnet_tam_r50", 4, 64), ("blvnet_tam_r101", 6, 32)])
def test_both_executions_equal_the_spec_forward(name, frames, size, rng):
    model = make(name, frames, size=size)
    clip = torch.randn(2, frames, 3, size, size, generator=rng)
    ref = spec_forward(model, clip)
    official = model.configure(execution="masked")(clip).logits
    fast = model.configure(execution="compact")(clip).logits
    assert rel_err(official, ref) <= REL
    assert rel_err(fast, official) <= REL
    # Information flows: the two clips differ, and so do per-clip logits.
    assert float((fast[0] - fast[1]).abs().max()) > 1e-3 * float(fast.abs().max())


@torch.no_grad()
def test_pair_order_matters_little_even_big_odd(r50, rng):
    """Swapping the frames of each pair (even ↔ odd) changes the logits: branches are assigned by slot parity."""
    model = r50.configure(execution="compact")
    clip = torch.randn(1, 4, 3, 32, 32, generator=rng)
    swapped = clip[:, [1, 0, 3, 2]]
    a, b = model(clip).logits, model(swapped).logits
    assert float((a - b).abs().max()) > 1e-3 * float(a.abs().max())
    ref = spec_forward(model, swapped)
    assert rel_err(b, ref) <= REL


def test_exact_properties_layer4_residual_and_big_last_relu(r50, rng):
    model = r50
    bm = model.baseline_model
    for layer in (bm.layer1, bm.layer2, bm.layer3):
        assert [blk.last_relu for blk in layer.big] == [True] * (len(layer.big) - 1) + [False]
        assert all(blk.last_relu for blk in layer.little) and layer.fusion[0].last_relu
    blk = bm.layer4[1]
    assert blk.downsample is None
    x = torch.randn(4, 2048, 2, 2, generator=rng)        # 2 clips × P = 2 pairs
    with torch.no_grad():
        got = blk(x, 2)
        z = tam_formula(x, blk.tam.weight(), 2)
        body = blk.bn3(blk.conv3(F.relu(blk.bn2(blk.conv2(F.relu(blk.bn1(blk.conv1(z))))))))
        assert rel_err(got, torch.relu(body + x)) <= REL               # identity residual = pre-TAM x
        assert rel_err(got, torch.relu(body + z)) > 1e-3               # … and that is not the same thing
        big = bm.layer1.big(torch.randn(2, 64, 8, 8, generator=rng))
    assert bool((big < 0).any())                                        # no final ReLU on the big branch


@pytest.mark.parametrize("kw", [dict(blending_frames=5), dict(alpha=4, beta=2)])
def test_other_alpha_beta_and_blending_widths(kw, rng):
    model = make(frames=4, **kw)
    clip = torch.randn(1, 4, 3, 32, 32, generator=rng)
    with torch.no_grad():
        ref = spec_forward(model, clip)
        assert rel_err(model.configure(execution="masked")(clip).logits, ref) <= REL
        assert rel_err(model.configure(execution="compact")(clip).logits, ref) <= REL
    bm = model.baseline_model
    if "alpha" in kw:
        assert bm.l_conv0.out_channels == 16 and bm.layer2.little_e[0].in_channels == 128
        assert len(bm.layer2.little) == max(1, 4 // 2 - 1) and len(bm.layer3.little) == 2
    else:
        assert len(bm.layer4[0].tam.blending_layers) == 5


def test_float64_executions_agree_to_rounding_and_gradients_match(rng):
    """In float64 the two executions agree to rounding (the pair form is exact, not an approximation) in training
    mode (BN batch statistics), logits and gradients. (Two clips: with one, layer4's train-mode BN sees two values
    per channel and turns their rounding-level differences into ±1 — ill-conditioned, not a semantic difference.)"""
    model = make(frames=4, classes=3).double().train()
    for m in model.modules():  # deterministic; BN in train mode sees the same batches on both paths
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    clip = torch.randn(2, 4, 3, 32, 32, generator=rng, dtype=torch.float64)
    logits, grads = {}, {}
    for ex in ("masked", "compact"):
        model.zero_grad()
        out = model.configure(execution=ex)(clip).logits
        out.square().sum().backward()
        logits[ex] = out.detach()
        grads[ex] = {n: p.grad.clone() for n, p in model.named_parameters()
                     if ".tam." in n or n.startswith("baseline_model.tam.") or n == "new_fc.weight"}
    assert rel_err(logits["compact"], logits["masked"]) <= 1e-12
    assert len(grads["masked"]) == 3 * 7 + 1
    for n, g in grads["masked"].items():
        assert float(g.abs().max()) > 0, n
        assert rel_err(grads["compact"][n], g) <= 1e-9, n


# ------------------------------------------------------------------------------------------------------ inputs
def test_input_layouts_and_errors(r50, rng):
    model = r50.configure(execution="compact")
    clip = torch.randn(2, 4, 3, 32, 32, generator=rng)
    with torch.no_grad():
        a = model(clip).logits
        b = model(clip.reshape(2, 12, 32, 32)).logits   # the official (B, 3G, H, W)
    assert a.shape == (2, 7) and torch.equal(a, b)
    with pytest.raises(ValueError, match="num_frames=4"):
        model(torch.randn(2, 6, 3, 32, 32))
    with pytest.raises(ValueError, match="navigation"):
        model(clip, masks=[torch.ones(2, 4)])
    with pytest.raises(ValueError, match="num_frames must be an even int"):
        afnet_edge.create_model("blvnet_tam_r50", num_frames=5)
    with pytest.raises(ValueError, match="alpha must be"):
        afnet_edge.create_model("blvnet_tam_r50", alpha=3)
    with pytest.raises(ValueError, match="alpha must be a positive int dividing base_width=8"):
        afnet_edge.create_model("blvnet_tam_r50", base_width=8, alpha=16)
    with pytest.raises(ValueError, match="base_width must be a positive int"):
        afnet_edge.create_model("blvnet_tam_r50", base_width=0)
    with pytest.raises(ValueError, match="blending_frames must be"):
        afnet_edge.create_model("blvnet_tam_r101", blending_frames=2)


# ------------------------------------------------------------------------------------------------- checkpoints
SPEC_KEYS = {  # §6 examples: name → shape
    "baseline_model.tam.prev.weight": (64, 1, 1, 1),
    "baseline_model.l_conv0.weight": (32, 64, 3, 3),
    "baseline_model.layer1.little.0.downsample.0.weight": (128, 64, 1, 1),
    "baseline_model.layer1.little_e.0.weight": (256, 128, 1, 1),
    "baseline_model.layer2.big.0.downsample.1.weight": (512, 256, 1, 1),
    "baseline_model.layer4.0.tam.curr.weight": (1024, 1, 1, 1),
    "new_fc.weight": (174, 2048),
}


@pytest.mark.parametrize("name,entries,batches,params", [("blvnet_tam_r50", 449, 71, 25_020_142),
                                                        ("blvnet_tam_r101", 791, 128, 40_177_134)])
def test_state_dict_is_the_official_layout(name, entries, batches, params):
    with torch.device("meta"):
        model = afnet_edge.create_model(name)
    sd = model.state_dict()
    assert len(sd) == entries and sum(k.endswith("num_batches_tracked") for k in sd) == batches
    assert sum(p.numel() for p in model.parameters()) == params
    for k, shape in SPEC_KEYS.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith("baseline_model.fc.") for k in sd)
    groups = {"layer1.big": 42 if name.endswith("50") else 60, "layer3.little.": 18 if name.endswith("50") else 54,
              "layer4.0.": 27, "layer4.1.": 21}
    for g, count in groups.items():
        assert sum(k.startswith("baseline_model." + g) for k in sd) == count, g


@torch.no_grad()
def test_official_checkpoint_loads_strictly_and_reproduces_logits(r50, tmp_path, rng):
    src = r50
    clip = torch.randn(2, 4, 3, 32, 32, generator=rng)
    want = spec_forward(src, clip)
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    assert set(SPEC_KEYS) - {"new_fc.weight"} <= set(sd)
    plain, wrapped = tmp_path / "plain.pth.tar", tmp_path / "wrapped.pth.tar"
    torch.save(sd, plain)                                                      # the release's plain state dict
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, wrapped)  # training layout
    for path in (plain, wrapped):
        dst = afnet_edge.create_model("blvnet_tam_r50", num_frames=4, num_classes=7)
        report = load_checkpoint(dst, path)
        assert report.kind == "official_blvnet" and report.dropped == []
        for ex in ("masked", "compact"):
            assert rel_err(dst.configure(execution=ex)(clip).logits, want) <= REL
    info = inspect_checkpoint(plain)
    assert info["kind"] == "official_blvnet" and info["num_classes"] == 7


def test_checkpoint_errors_name_the_keys(tmp_path):
    with torch.device("meta"):
        sd = afnet_edge.create_model("blvnet_tam_r50", num_frames=4).state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in sd.items()}
    cases = {
        "missing": ({k: v for k, v in sd.items() if k != "baseline_model.layer4.0.tam.next.weight"},
                    r"1 missing key\(s\): baseline_model\.layer4\.0\.tam\.next\.weight"),
        "unexpected": ({**sd, "baseline_model.layer5.weight": torch.zeros(1)},
                       r"unexpected key\(s\): baseline_model\.layer5\.weight"),
        "shape": ({**sd, "baseline_model.tam.prev.weight": torch.zeros(32, 1, 1, 1)},
                  r"baseline_model\.tam\.prev\.weight: file \(32, 1, 1, 1\) vs model \(64, 1, 1, 1\)"),
        "foreign": ({"base_model.conv1.weight": torch.zeros(1)}, "is not a bLVNet-TAM checkpoint"),
    }
    for what, (bad, match) in cases.items():
        path = tmp_path / f"{what}.pth"
        torch.save(bad, path)
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(afnet_edge.create_model("blvnet_tam_r50", num_frames=4), path)


@torch.no_grad()
def test_dropout_zero_and_imagenet_layouts(r50, tmp_path, rng):
    src = r50.configure(execution="compact")
    clip = torch.randn(1, 4, 3, 32, 32, generator=rng)
    want = src(clip).logits
    # A release trained with dropout=0 keeps its classifier as baseline_model.fc.
    sd = {("baseline_model.fc." + k[7:] if k.startswith("new_fc.") else k): v for k, v in src.state_dict().items()}
    torch.save(sd, tmp_path / "nodrop.pth")
    dst = afnet_edge.create_model("blvnet_tam_r50", num_frames=4, num_classes=7)
    load_checkpoint(dst, tmp_path / "nodrop.pth")
    assert rel_err(dst(clip).logits, want) <= REL
    # ImageNet bL-ResNet: backbone keys without TAMs, 1000-class fc, DataParallel prefix.
    bb = {k[len("baseline_model."):]: v for k, v in src.state_dict().items()
          if k.startswith("baseline_model.") and ".tam." not in k and not k.startswith("baseline_model.tam.")}
    bb.update({"fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)})
    torch.save({"state_dict": {"module." + k: v for k, v in bb.items()}}, tmp_path / "imagenet.pth.tar")
    dst = afnet_edge.create_model("blvnet_tam_r50", num_frames=4, num_classes=7)
    before = dst.baseline_model.layer2.tam.next.weight.clone()
    report = load_checkpoint(dst, tmp_path / "imagenet.pth.tar")
    assert report.kind == "official_imagenet"
    assert {"fc.weight", "fc.bias", "tam.prev.weight", "layer4.2.tam.curr.weight"} <= set(report.dropped)
    assert len([k for k in report.dropped if "tam" in k]) == 21
    assert torch.equal(dst.baseline_model.conv1.weight, src.baseline_model.conv1.weight)
    assert torch.equal(dst.baseline_model.layer2.tam.next.weight, before)   # TAMs keep their (random) init


# ------------------------------------------------------------------------------------------------------- FLOPs
SPEC_COST = [("blvnet_tam_r50", 16, 23.85), ("blvnet_tam_r50", 32, 47.70), ("blvnet_tam_r101", 16, 32.15),
             ("blvnet_tam_r101", 32, 64.30), ("blvnet_tam_r101", 48, 96.45), ("blvnet_tam_r101", 64, 128.60)]


@pytest.mark.parametrize("name,frames,gmacs", SPEC_COST)
def test_count_flops_matches_the_spec_table(name, frames, gmacs):
    t = official_flops_table(name, frames)
    assert abs(t["official_gflops_r1"] - gmacs) <= 0.005 * gmacs, t
    assert abs(t["official_gflops_r1"] - gmacs) <= 0.006, t     # to the printed digits
    assert t["official_gflops_slope"] == 0.0                    # nothing is skipped: no ratio dependence


def test_per_pair_decomposition_matches_the_spec():
    """§5.1: per pair = one bL-ResNet image pass (2.856 / 3.893 GMACs with a 1000-class head) + conv1 on the second
    frame (0.118) + the TAMs (0.009)."""
    for name, image in (("blvnet_tam_r50", 2.856), ("blvnet_tam_r101", 3.893)):
        with torch.device("meta"):
            model = afnet_edge.create_model(name, num_frames=2)
        res = count_flops(model, head="imagenet")
        conv1 = 64 * 112 * 112 * 3 * 49 / 1e9
        tams = 3 * (64 * 112 ** 2 * 2 + (64 * 56 ** 2 + 256 * 28 ** 2 + 512 * 14 ** 2) * 2
                    + 1024 * 14 ** 2 + 2 * 2048 * 7 ** 2) / 1e9
        assert abs(tams - 0.009) < 0.0005
        assert abs(res["official_gflops"] - conv1 - tams - image) <= 0.0006, res["official_gflops"]
        assert abs(res["official_gflops"] - res["executed_gmacs_compact"] - tams
                   - 2048 * (1000 - model.num_classes) / 1e9) < 1e-9


@torch.no_grad()
def test_executed_macs_equal_hooked_forward(r50, rng):
    model = r50
    clip = torch.randn(2, 4, 3, 32, 32, generator=rng)
    want = executed_macs_per_module(model, image_size=32)
    for ex in ("masked", "compact"):
        got = measure_macs(model.configure(execution=ex), clip, warmup=False)["per_module"]
        assert set(got) == set(want), ex
        for k, v in want.items():
            assert abs(got[k] - v) <= 1e-9 * v, (ex, k, got[k], v)
