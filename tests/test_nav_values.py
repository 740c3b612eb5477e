"""The local-expectation training of the navigation (afnet_edge.training.nav_values) and tied positions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from afnet_edge import create_model
from afnet_edge.data import SyntheticVideoDataset
from afnet_edge.layers.navigation import Navigation, record_navigation, set_navigation_gap, tie_navigation_positions
from afnet_edge.training import TrainConfig, Trainer, seed_everything
from afnet_edge.training import engine as train_engine
from afnet_edge.training.nav_values import expected_ratios, frame_values, ratio_bias_shifts, value_loss
from conftest import randomize_model, single_threaded_module

T, SIZE = 4, 32
_single_thread = single_threaded_module()


def model_and_batch(seed: int = 0, b: int = 3):
    seed_everything(seed)
    m = randomize_model(create_model("af_mobilenetv3", num_classes=5, num_frames=T, kernels="torch"), seed)
    m.configure(execution="masked")
    g = torch.Generator().manual_seed(seed + 1)
    clip = torch.randn(b, T, 3, SIZE, SIZE, generator=g)
    target = torch.randint(0, 5, (b,), generator=g)
    masks = [(torch.rand(b, T, generator=g) < 0.5).float() for _ in range(m.num_navigation)]
    return m, clip, target, masks


def test_frame_values_equal_one_forward_per_variant_and_leave_the_model_as_it_was():
    m, clip, target, masks = model_and_batch()
    m.train()
    bn = next(q for q in m.modules() if isinstance(q, torch.nn.BatchNorm2d))
    stats = bn.running_mean.clone()
    positions = [0, 2, 3]
    got = frame_values(m, clip, target, masks, positions)
    assert got.shape == (3, len(positions))
    assert all(q.training for q in m.modules())                 # training mode restored
    assert torch.equal(bn.running_mean, stats)                  # eval mode inside: statistics untouched
    m.eval()
    with torch.no_grad():
        for j, p in enumerate(positions):
            ce = []
            for v in (1.0, 0.0):
                mk = [x.clone() for x in masks]
                for x in mk:
                    x[:, p] = v
                ce.append(F.cross_entropy(m(clip, masks=mk).logits, target, reduction="none"))
            torch.testing.assert_close(got[:, j], ce[0] - ce[1], rtol=1e-5, atol=1e-5)
    assert got.abs().max() > 0                                   # the frames matter for this random network
    with pytest.raises(ValueError, match="positions"):
        frame_values(m, clip, target, masks, [T])


def test_value_loss_is_the_centred_normalised_credit_of_every_module():
    g = torch.Generator().manual_seed(3)
    logits = [torch.randn(2, T, 2, generator=g, requires_grad=True) for _ in range(3)]
    values = torch.randn(2, 2, generator=g)
    positions = [1, 3]
    loss = value_loss(logits, values, positions, scale=2.0)
    sd = (values - values.mean(1, keepdim=True)).std()
    ref, centred = [], []
    for z in logits:   # written out per clip and position
        p = torch.softmax(z, -1)[..., 1][:, positions]
        w = (p * (1 - p)).detach()
        c = torch.stack([values[i] - (values[i] * w[i]).sum() / w[i].sum() for i in range(2)])
        centred.append(c)
        ref.append(sum((p[i] * c[i]).sum() for i in range(2)) / 2)
    torch.testing.assert_close(loss, 2.0 * torch.stack(ref).mean() / (sd + 1e-6))
    loss.backward()
    for z, c in zip(logits, centred):
        margin_grad = z.grad[..., 1] - z.grad[..., 0]
        assert torch.all(margin_grad[:, [0, 2]] == 0)           # positions not valued get no credit
        # a frame whose (centred) value is negative — keeping it lowers the loss — has its select margin raised
        assert torch.equal(torch.sign(margin_grad[:, positions]), torch.sign(c))
        # ... and the module's margins are pulled up and down by equal amounts: no pull on the ratio
        torch.testing.assert_close(margin_grad.sum(1), torch.zeros(2), atol=1e-6, rtol=0)
    p = expected_ratios(logits)
    torch.testing.assert_close(p[0], torch.softmax(logits[0], -1)[..., 1])


def test_record_navigation_cuts_both_gradient_paths():
    m, clip, target, _ = model_and_batch()
    m.train()
    with record_navigation(m) as rec:
        out = m(clip)
    assert len(rec) == m.num_navigation and all(r.requires_grad for r in rec)
    assert all(nv.record is None for nv in m.modules() if isinstance(nv, Navigation))   # restored on exit
    nav = [q for nv in m.modules() if isinstance(nv, Navigation) for q in nv.parameters()]
    nav_ids = {id(q) for q in nav}
    other = [q for q in m.parameters() if id(q) not in nav_ids]
    # the recorded logits reach only the navigation's parameters
    g = torch.autograd.grad(sum(r.sum() for r in rec), nav + other, allow_unused=True)
    assert any(x is not None and x.abs().sum() > 0 for x in g[:len(nav)])
    assert all(x is None for x in g[len(nav):])
    # the classification loss reaches no navigation parameter (no straight-through path through the masks)
    g = torch.autograd.grad(F.cross_entropy(out.logits, target), nav, allow_unused=True)
    assert all(x is None or x.abs().sum() == 0 for x in g)
    # outside the context the official straight-through path is back
    g = torch.autograd.grad(F.cross_entropy(m(clip).logits, target), nav, allow_unused=True)
    assert any(x is not None and x.abs().sum() > 0 for x in g)


def test_tie_navigation_positions_makes_every_position_equal():
    m, *_ = model_and_batch()
    navs = [q for q in m.modules() if isinstance(q, Navigation)]
    before = navs[0].conv_gs.weight.view(T, 2, 2).mean(0).clone()
    assert not torch.allclose(navs[0].conv_gs.weight.view(T, 2, 2)[0], navs[0].conv_gs.weight.view(T, 2, 2)[1])
    assert tie_navigation_positions(m) == len(navs)
    for nv in navs:
        w, b = nv.conv_gs.weight.view(T, 2, 2), nv.conv_gs.bias.view(T, 2)
        assert torch.equal(w, w[:1].expand_as(w)) and torch.equal(b, b[:1].expand_as(b))
    torch.testing.assert_close(navs[0].conv_gs.weight.view(T, 2, 2)[0], before)


def _trainer(**cfg):
    seed_everything(0)
    # random weights: at the default initialisation the focal branches are zero, so no frame has any value
    m = randomize_model(create_model("af_mobilenetv3", num_classes=4, num_frames=T, kernels="torch"))
    set_navigation_gap(m, 0.0)   # p_select 0.5: the official 9 leaves gradients below float32 resolution
    data = SyntheticVideoDataset(8, num_frames=T, size=SIZE, num_classes=4, seed=1)
    base = dict(epochs=1, batch_size=4, lr=0.05, rt=0.25, rt_begin=0, rt_end=0, lambda_rt=1.0, weight_decay=0.0,
                eval_every=0, nav_estimator="local")
    return Trainer(m, data, TrainConfig(**{**base, **cfg}), device="cpu", log=None)


def _nav_and_other(model):
    nav_ids = {id(q) for nv in model.modules() if isinstance(nv, Navigation) for q in nv.parameters()}
    snap = [(id(q) in nav_ids, q.detach().clone()) for q in model.parameters()]
    return snap


def _changed(model, snap, nav: bool) -> bool:
    return any(not torch.equal(q, s) for q, (is_nav, s) in zip(model.parameters(), snap) if is_nav == nav)


def test_trainer_local_estimator_trains_the_navigation_only_through_its_own_terms():
    # no ratio term and no value term: the navigation must not move (no straight-through gradient), the network must
    tr = _trainer(lambda_rt=0.0, nav_value_scale=0.0)
    snap = _nav_and_other(tr.model)
    tr.train_epoch(max_steps=1)
    assert _changed(tr.model, snap, nav=False) and not _changed(tr.model, snap, nav=True)
    # with the value term the navigation learns; the step's record reports the sampled masks' real ratio
    tr = _trainer(lambda_rt=0.0, nav_value_scale=30.0, tie_positions=True)
    snap = _nav_and_other(tr.model)
    tr.train_epoch(max_steps=2)
    assert _changed(tr.model, snap, nav=True)
    assert 0.0 <= tr.last_step["ratio"] <= 1.0 and tr.last_step["loss_rt"] != 0.0
    for nv in tr.model.modules():                                   # still tied after the optimiser steps
        if isinstance(nv, Navigation):
            w = nv.conv_gs.weight.view(T, 2, 2)
            assert torch.equal(w, w[:1].expand_as(w))


def test_local_estimator_and_tied_positions_need_a_model_that_selects_frames():
    with pytest.raises(ValueError, match="nav_estimator"):
        TrainConfig(nav_estimator="reinforce")
    with pytest.raises(ValueError, match="nav_positions"):
        TrainConfig(nav_positions=0)
    seed_everything(0)
    dense = create_model("tsm_resnet50", num_classes=4, num_frames=T, width=0.25)
    data = SyntheticVideoDataset(4, num_frames=T, size=SIZE, num_classes=4, seed=1)
    for cfg in (dict(nav_estimator="local"), dict(tie_positions=True)):
        with pytest.raises(ValueError, match="navigation"):
            Trainer(dense, data, TrainConfig(epochs=1, batch_size=4, **cfg), device="cpu", log=None)


def test_ratio_bias_shifts_give_the_batch_exactly_the_target_expected_ratio():
    g = torch.Generator().manual_seed(5)
    # modules far from the target in both directions, one with spread-out margins
    logits = [torch.randn(3, T, 2, generator=g) * sc + off for sc, off in ((1.0, 0.0), (4.0, 0.0), (1.0, 3.0))]
    for z, sign in zip(logits, (1, 1, -1)):
        z[..., 1] += sign * 3.0
    for target in (0.1, 0.25, 0.5, 0.9):
        shift = ratio_bias_shifts(logits, target)
        assert shift.shape == (3,)
        for z, d in zip(logits, shift):
            got = torch.sigmoid(z[..., 1] - z[..., 0] + d).mean()
            torch.testing.assert_close(got, torch.tensor(target), atol=1e-5, rtol=0)
    assert ratio_bias_shifts(logits, 0.25)[0] < ratio_bias_shifts(logits, 0.5)[0]     # fewer frames: lower margins
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="target_ratio"):
            ratio_bias_shifts(logits, bad)
    with pytest.raises(ValueError, match="logits"):
        ratio_bias_shifts([], 0.5)


def test_record_navigation_names_the_module_of_every_recorded_tensor():
    m, clip, *_ = model_and_batch()
    navs = [q for q in m.modules() if isinstance(q, Navigation)]
    called = []       # (module, its output) in the order the forward pass calls them
    hooks = [nv.register_forward_hook(lambda mod, inp, out: called.append((mod, out))) for nv in navs]
    recorder = record_navigation(m)
    with recorder as rec:
        m(clip)
    for h in hooks:
        h.remove()
    assert [id(mod) for mod, _ in called] == [id(q) for q in recorder.sources]
    assert len(rec) == len(navs) and set(map(id, recorder.sources)) == set(map(id, navs))
    for (_, out), z in zip(called, rec):
        torch.testing.assert_close(out, z.detach(), rtol=0, atol=0)
    assert all(nv.record_sources is None for nv in navs)                 # restored on exit


@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_hold_ratio_moves_each_select_bias_by_its_share_of_the_shift(monkeypatch, rate):
    calls = []

    def spy(logits, target):
        out = ratio_bias_shifts(logits, target)
        calls.append(([z.detach().clone() for z in logits], target, out))
        return out

    monkeypatch.setattr(train_engine, "ratio_bias_shifts", spy)
    # no learning rate, no weight decay: the hold is the only thing that moves the navigation
    tr = _trainer(lr=0.0, lambda_rt=0.0, nav_value_scale=0.0, tie_positions=True, hold_ratio=rate)
    navs = [q for q in tr.model.modules() if isinstance(q, Navigation)]
    before = [nv.conv_gs.bias.detach().clone() for nv in navs]
    tr.train_epoch(max_steps=1)
    assert len(calls) == 1
    logits, target, shift = calls[0]
    assert target == 0.25 and len(logits) == len(navs)
    for nv, b0, d in zip(navs, before, shift):   # the forward calls the modules in the order they are built
        b1 = nv.conv_gs.bias.detach()
        torch.testing.assert_close(b1[1::2] - b0[1::2], torch.full((T,), rate * float(d)), atol=1e-5, rtol=0)
        assert torch.equal(b1[0::2], b0[0::2])                        # the skip bias stays
    # the first module reads the stem's features, which no mask changes: its expected ratio on the batch's logits,
    # moved by the full shift, is the target
    m0 = logits[0][..., 1] - logits[0][..., 0]
    torch.testing.assert_close(torch.sigmoid(m0 + shift[0]).mean(), torch.tensor(0.25), atol=1e-5, rtol=0)


def test_hold_ratio_does_nothing_at_ratio_one_and_needs_the_local_estimator():
    tr = _trainer(lr=0.0, lambda_rt=0.0, nav_value_scale=0.0, rt=1.0, hold_ratio=1.0)
    navs = [q for q in tr.model.modules() if isinstance(q, Navigation)]
    before = [nv.conv_gs.bias.detach().clone() for nv in navs]
    tr.train_epoch(max_steps=1)
    assert all(torch.equal(nv.conv_gs.bias, b) for nv, b in zip(navs, before))
    with pytest.raises(ValueError, match="hold_ratio .--hold-ratio. needs nav_estimator"):
        TrainConfig(hold_ratio=0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="hold_ratio must be"):
            TrainConfig(nav_estimator="local", hold_ratio=bad)


def test_natural_value_loss_moves_nearly_saturated_margins_by_their_centred_value_and_stays_bounded():
    g = torch.Generator().manual_seed(4)
    logits = [torch.randn(2, T, 2, generator=g) * 0.1 for _ in range(2)]
    logits[0][..., 1] += 4.0                     # p_select ≈ 0.98: the plain form's factor p (1 − p) ≈ 0.018
    logits[1][..., 1] -= 4.0                     # p_select ≈ 0.02
    logits = [z.requires_grad_() for z in logits]
    values = torch.randn(2, 3, generator=g)
    positions = [0, 1, 3]
    centred = values - values.mean(1, keepdim=True)
    sd = centred.std()
    plain = torch.autograd.grad(value_loss(logits, values, positions, 2.0), logits)
    natural = torch.autograd.grad(value_loss(logits, values, positions, 2.0, natural=True), logits)
    for z, gp, gn in zip(logits, plain, natural):
        # p (1 − p) ≥ ε = 0.01 here: d loss / d select-logit = scale · centred value / sd, averaged over the
        # 2 clips and the 2 modules (the centring weights are all 1: a plain mean)
        expected = torch.zeros(2, T)
        expected[:, positions] = 2.0 * centred / (sd + 1e-6) / 2 / 2
        torch.testing.assert_close(gn[..., 1], expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gn[..., 0], -expected, rtol=1e-4, atol=1e-6)
        assert gp[..., 1].abs().max() < 0.03 * expected.abs().max()     # the plain form has nearly stopped
    # far beyond the damping the natural form fades too: the loss is bounded, the margins do not grow without end
    far = [(z.detach() * 10).requires_grad_() for z in logits]
    assert all(gr.abs().max() < 1e-6 for gr in torch.autograd.grad(value_loss(far, values, positions, 2.0,
                                                                              natural=True), far))
    with pytest.raises(ValueError, match="nav_natural_gradient .--nav-natural-gradient. needs"):
        TrainConfig(nav_natural_gradient=True)
