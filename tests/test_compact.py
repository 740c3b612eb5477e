"""The compact execution (focal bodies on selected frames only) against the official masked semantics."""
from __future__ import annotations

import pytest
import torch

import afnet_edge
from afnet_edge.layers.focal import FocalBlock
from conftest import randomize_model

T = 4
B = 3
SIZE = 64

AF_CASES = [("af_resnet50", True), ("af_resnet50", False), ("af_resnet101", True), ("af_mobilenetv3", True)]


def _model(name, tsm, seed=0):
    opts = {} if name == "af_mobilenetv3" else {"tsm": tsm}
    return randomize_model(afnet_edge.create_model(name, num_classes=7, num_frames=T, **opts), seed)


@pytest.fixture(scope="module", params=AF_CASES, ids=[f"{n}-tsm{t}" for n, t in AF_CASES])
def model_and_clip(request):
    name, tsm = request.param
    g = torch.Generator().manual_seed(hash(request.param) % 1000)
    return _model(name, tsm), torch.randn(B, T, 3, SIZE, SIZE, generator=g)


def _masks(kind, L, g):
    if kind == "random":
        return [(torch.rand(B, T, generator=g) > 0.5).float() for _ in range(L)]
    if kind == "all":
        return [torch.ones(B, T) for _ in range(L)]
    if kind == "none":
        return [torch.zeros(B, T) for _ in range(L)]
    # different counts per video: video b keeps b frames (0, 1, 2), at random positions
    out = []
    for _ in range(L):
        m = torch.zeros(B, T)
        for b in range(B):
            m[b, torch.randperm(T, generator=g)[:b]] = 1
        out.append(m)
    return out


@pytest.mark.parametrize("kind", ["random", "all", "none", "per_video_counts"])
def test_compact_matches_masked_for_given_masks(model_and_clip, kind):
    model, clip = model_and_clip
    g = torch.Generator().manual_seed(7)
    masks = _masks(kind, model.num_navigation, g)
    with torch.no_grad():
        ref = model.configure(execution="masked")(clip, masks=masks)
        got = model.configure(execution="compact")(clip, masks=masks)
    assert (got.logits - ref.logits).abs().max().item() <= 1e-5
    assert ref.logits.abs().max().item() > 1e-3  # the comparison is not between two near-zero tensors
    for m_in, m_ref, m_got in zip(masks, ref.masks, got.masks):
        assert torch.equal(m_ref, m_in) and torch.equal(m_got.float(), m_in)


@pytest.mark.parametrize("selection", ["threshold", "topk"])
def test_compact_matches_masked_under_selection(model_and_clip, selection):
    model, clip = model_and_clip
    with torch.no_grad():
        ref = model.configure(execution="masked", selection=selection, ratio=0.5)(clip)
        got = model.configure(execution="compact", selection=selection, ratio=0.5)(clip)
    assert len(got.masks) == model.num_navigation
    for a, b in zip(ref.masks, got.masks):
        assert torch.equal(a, b.to(a.dtype))
    assert (got.logits - ref.logits).abs().max().item() <= 1e-5


def test_gumbel_compact_and_masked_draw_the_same_masks():
    model, clip = _model("af_resnet50", True), torch.randn(2, T, 3, SIZE, SIZE)
    model.configure(selection="gumbel")
    with torch.no_grad():
        ref = model.configure(execution="masked")(clip, generator=torch.Generator().manual_seed(3))
        got = model.configure(execution="compact")(clip, generator=torch.Generator().manual_seed(3))
        other = model(clip, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(a, b) for a, b in zip(ref.masks, got.masks))
    assert not all(torch.equal(a, b) for a, b in zip(ref.masks, other.masks))
    assert (got.logits - ref.logits).abs().max().item() <= 1e-5


def test_compact_really_skips_unselected_frames():
    model, clip = _model("af_resnet50", True), torch.randn(B, T, 3, SIZE, SIZE)
    seen = []
    hooks = [m.conv1.register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[0]))
             for m in model.modules() if isinstance(m, FocalBlock)]
    masks = _masks("per_video_counts", model.num_navigation, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(clip, masks=masks)   # first call also computes the constant maps (batch 1)
        seen.clear()
        model(clip, masks=masks)
    for h in hooks:
        h.remove()
    expected = [int(m.sum()) for m in masks]
    assert [s for s in seen] == [e for e in expected if e > 0]


def test_constant_map_cache_is_invalidated_by_weight_and_bn_changes():
    model = _model("af_resnet50", True)
    block = model.base_model.layer1.refine_module[0]
    k1 = block.constant_map(16, 16, torch.float32, torch.device("cpu"))
    assert block.constant_map(16, 16, torch.float32, torch.device("cpu")) is k1
    sd = model.state_dict()
    sd["base_model.layer1.refine_module.0.bn1.running_mean"] += 0.5
    model.load_state_dict(sd)
    k2 = block.constant_map(16, 16, torch.float32, torch.device("cpu"))
    assert not torch.allclose(k1, k2)
    with torch.no_grad():
        block.conv2.weight.mul_(2)
    k3 = block.constant_map(16, 16, torch.float32, torch.device("cpu"))
    assert not torch.allclose(k2, k3)
    # a different input size is a different map (border regions of the 3×3 conv)
    assert block.constant_map(8, 8, torch.float32, torch.device("cpu")).shape[-1] == 8
    model.train()
    assert not block._const_cache
    with pytest.raises(RuntimeError, match="eval"):
        block.constant_map(16, 16, torch.float32, torch.device("cpu"))


def test_constant_map_has_border_regions_and_reproduces_zero_input_body():
    block = _model("af_resnet50", True).base_model.layer1.refine_module[0]
    k = block.constant_map(10, 10, torch.float32, torch.device("cpu"))
    assert not torch.allclose(k[:, 0, 0], k[:, 5, 5])        # corner differs from the interior
    assert torch.allclose(k[:, 4, 4], k[:, 6, 5])             # the interior is constant
    x = torch.randn(T, block.conv1.in_channels, 10, 10)
    with torch.no_grad():
        out = block(x, torch.zeros(T))
        assert torch.allclose(out, torch.relu(k + block.residual(x)), atol=1e-6)


def test_topk_selects_exactly_k_frames_per_clip():
    model, clip = _model("af_mobilenetv3", True), torch.randn(B, T, 3, SIZE, SIZE)
    for ratio, k in [(0.25, 1), (0.5, 2), (0.6, 3), (1.0, 4)]:
        with torch.no_grad():
            out = model.configure(selection="topk", ratio=ratio)(clip)
        for m in out.masks:
            assert m.sum(dim=1).tolist() == [k] * B


def test_selection_rules_on_known_logits():
    from afnet_edge.kernels.reference import select_frames
    from afnet_edge.layers.navigation import threshold_select
    # (L=1, B=2, T=4, 2): margins [-1, 2, 0, 3] and [5, 5, -2, 5]
    skip = torch.zeros(1, 2, 4)
    sel = torch.tensor([[[-1.0, 2.0, 0.0, 3.0], [5.0, 5.0, -2.0, 5.0]]])
    logits = torch.stack([skip, sel], dim=-1)
    assert threshold_select(logits[0]).tolist() == [[0, 1, 0, 1], [1, 1, 0, 1]]
    index, counts, mask = select_frames(logits, "topk", 2)
    assert index.tolist() == [[1, 3, 4, 5]]            # ties go to the lower frame index
    assert counts.tolist() == [4]
    index, counts, mask = select_frames(logits, "threshold", 0)
    assert counts.tolist() == [5] and index[0, :5].tolist() == [1, 3, 4, 5, 7]
    assert index[0, 5:].tolist() == [8, 8, 8]          # padding is N


def test_training_mode_is_masked_gumbel_with_gradients_to_navigation():
    model = _model("af_mobilenetv3", True).train()
    # execution/selection are ignored in training; τ = 1 is where the official schedule starts
    model.configure(execution="compact", selection="threshold", temperature=1.0)
    clip = torch.randn(2, T, 3, SIZE, SIZE)
    out = model(clip)
    loss = out.logits.logsumexp(1).mean() + sum(m.mean() for m in out.masks)
    loss.backward()
    nav = model.base_model.list_gen2[0].conv_gs
    assert nav.weight.grad is not None and nav.weight.grad.abs().sum() > 0
    for m in out.masks:
        assert set(m.detach().unique().tolist()) <= {0.0, 1.0}


def test_gumbel_draws_in_float32_under_half_precision_logits():
    from afnet_edge.layers.navigation import gumbel_select
    logits = torch.randn(4, 6, 2)
    a = gumbel_select(logits, 1.0, torch.Generator().manual_seed(0))
    b = gumbel_select(logits.half(), 1.0, torch.Generator().manual_seed(0))
    assert b.dtype == torch.float16
    assert torch.equal(a, b.float())  # same draws, same decisions as the float32 (official) sampler
