"""AdaFocusV2's one-stage training objective through the generic trainer (issue 12 item 6; spec adafocus.md §2.9,
§3.7, §2.3).

On a registered narrow AdaFocusV2-MN2 (policy GRU 128, classifier MLP 256, one bottleneck per local ResNet stage;
T = 2, P = 32, batch 2; the crop, the policy and every loss term as in adafocus_v2_mn2):
(a) the family's loss equals the spec's formula computed by hand from the model's outputs: mean over the two branches
    (policy patches, uniformly random patches) of CE(every step's head) + CE(f_G aux per frame) + CE(f_L aux per
    frame); the random branch really crops at the random locations;
(b) stop-gradient: π gets gradient only from the policy branch's step heads and f_L aux head (through the bilinear
    crop), none from the random branch or the f_G aux head; f_G gets none through π;
(c) the optimiser groups and learning rates of §2.9 (and §3.7 for V2-TSM), V1 refused;
(d) ``afnet-edge train --data synthetic`` runs the objective end to end, and its checkpoint loads; a few SGD steps on
    a fixed batch lower the objective evaluated with fixed random draws.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import afnet_edge
from conftest import single_threaded_module
from afnet_edge.checkpoint import load_checkpoint
from afnet_edge.cli import main
from afnet_edge.models import adafocus as A
from afnet_edge.models.registry import BenchDefaults, registered
from afnet_edge.training import TrainConfig, Trainer

T, PATCH, C, B = 2, 32, 4, 2
SMALL = "adafocus_v2_mn2_train_test"


_single_thread = single_threaded_module()


def _small(num_classes: int = C, num_frames: int = T, patch_size: int = PATCH, frame_order: bool = True,
           dropout: float = 0.2, focus_frames: int | None = None):
    model = A.AdaFocusV2(SMALL, "mn2", num_classes, num_frames, patch_size, hidden_dim=128, dropout=dropout,
                         frame_order=frame_order, classifier_dim=256)
    for i in range(1, 5):
        setattr(model.local_CNN, f"layer{i}", getattr(model.local_CNN, f"layer{i}")[:1])
    return model


@pytest.fixture(scope="module")
def small_registered():
    with registered(SMALL, _small, A.HOOKS, default_frames=T, bench=BenchDefaults(False, (T,), "small")):
        yield


def _batch(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, 3, 224, 224, generator=g), torch.tensor([1, 3])


def _ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy written out: logits (B, S, C), label y (B,) repeated over S."""
    logp = z - z.logsumexp(-1, keepdim=True)
    return -logp.gather(-1, y[:, None, None].expand(-1, z.shape[1], 1)).mean()


def _branch(o, y: torch.Tensor) -> torch.Tensor:
    return _ce(o.step_logits, y) + _ce(o.aux["global"], y) + _ce(o.aux["local"], y)


def test_loss_is_the_spec_formula_on_both_branches():
    torch.manual_seed(0)
    model = _small().train()
    clip, y = _batch()
    torch.manual_seed(11)
    loss, logits = A.train_loss(model, model, clip, y)
    torch.manual_seed(11)                       # same draws: the random actions first, then the dropout masks
    rand = torch.rand(B, T, 2)
    out = model(clip, random_locations=rand)
    assert torch.equal(logits, out.logits)
    rb = out.random_branch
    assert rb is not None and torch.equal(rb.locations, rand)
    assert not torch.allclose(out.locations, rand)
    for o in (out, rb):
        assert o.step_logits.shape == o.aux["global"].shape == o.aux["local"].shape == (B, T, C)
    assert rb.aux["global"] is out.aux["global"]          # f_G runs once
    expected = (_branch(out, y) + _branch(rb, y)) / 2
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    # the formula's terms are not interchangeable: each branch's main term is a real, different number
    assert abs(float((_ce(out.step_logits, y) - _ce(rb.step_logits, y)).detach())) > 1e-4

    # the random branch crops at the random locations: with dropout off it equals the forward with locations=rand
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    out = model(clip, random_locations=rand)
    ref = model(clip, locations=rand)
    torch.testing.assert_close(out.random_branch.step_logits, ref.step_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.random_branch.aux["local"], ref.aux["local"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="random_locations"):
        model.eval()(clip, random_locations=rand)


def _grads(loss: torch.Tensor, module: nn.Module) -> list:
    params = [p for p in module.parameters()]
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def _nonzero(gs: list) -> bool:
    return any(g is not None and bool(g.abs().sum() > 0) for g in gs)


def _none(gs: list) -> bool:
    return all(g is None or not bool(g.abs().sum() > 0) for g in gs)


def test_policy_gradient_comes_only_through_the_policy_branch_crop():
    torch.manual_seed(1)
    model = _small().train()
    clip, y = _batch(6)
    rand = torch.rand(B, T, 2)
    out = model(clip, random_locations=rand)
    rb = out.random_branch
    pol, glance, local, cls = model.policy_stn, model.global_CNN, model.local_CNN, model.classifier
    main_a, local_a = _ce(out.step_logits, y), _ce(out.aux["local"], y)
    glob = _ce(out.aux["global"], y)
    rand_terms = _ce(rb.step_logits, y) + _ce(rb.aux["local"], y)
    # π: gradient from the policy branch's heads through the crop, none from the random branch or the f_G aux head
    assert _nonzero(_grads(main_a, pol)) and _nonzero(_grads(local_a, pol))
    assert _none(_grads(rand_terms, pol)) and _none(_grads(glob, pol))
    # stop-gradient into π's input: the f_L aux loss reaches π but not f_G; f_G learns from its aux head and f_C
    assert _none(_grads(local_a, glance))
    assert _nonzero(_grads(glob, glance)) and _nonzero(_grads(main_a, glance))
    assert _none(_grads(glob, local)) and _none(_grads(glob, cls))
    assert _nonzero(_grads(rand_terms, local)) and _nonzero(_grads(rand_terms, cls))
    # the total's π gradient is exactly the policy branch's (halved), whatever the other terms
    total = (main_a + glob + local_a + rand_terms + glob) / 2
    for g_tot, g_a in zip(_grads(total, pol), _grads((main_a + local_a) / 2, pol)):
        torch.testing.assert_close(g_tot, g_a, rtol=1e-5, atol=1e-7)
    # the policy's actions carry gradient (the crop's location gradient, §2.3), the random ones do not
    assert out.locations.requires_grad and not rb.locations.requires_grad


def test_param_groups_and_learning_rates(small_registered):
    torch.manual_seed(2)
    model = afnet_edge.create_model(SMALL, num_classes=C, num_frames=T, patch_size=PATCH)
    data = [(torch.zeros(T, 3, 224, 224), 0)] * B
    tr = Trainer(model, data, TrainConfig(epochs=1, batch_size=B, lr=0.002, weight_decay=1e-4, lr_steps=()),
                 device="cpu", log=None)
    tr.train_epoch(0)  # applies the epoch's learning rate without a step
    groups = tr.optimizer.param_groups
    assert [(g["name"], g["lr_mult"]) for g in groups] == [("policy", 0.1), ("glance", 0.5), ("local", 1.0),
                                                          ("classifier", 5.0)]
    for g in groups:
        assert g["lr"] == pytest.approx(0.002 * g["lr_mult"]) and g["weight_decay"] == pytest.approx(1e-4)
    members = {"policy": [model.policy_stn], "glance": [model.global_CNN, model.global_CNN_fc],
               "local": [model.local_CNN, model.local_CNN_fc], "classifier": [model.classifier]}
    for g in groups:
        assert {id(p) for p in g["params"]} == {id(p) for m in members[g["name"]] for p in m.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    # V2-TSM (§3.7): π 0.01, f_G (with its heads) 0.5, f_L 1.0
    tsm = A.adafocus_v2_tsm(num_classes=C)
    gt = A.train_param_groups(tsm)
    assert [(g["name"], g["lr_mult"]) for g in gt] == [("policy", 0.01), ("glance", 0.5), ("local", 1.0)]
    assert {id(p) for p in gt[0]["params"]} == {id(p) for p in tsm.policy_stn.parameters()}
    assert sum(len(g["params"]) for g in gt) == len(list(tsm.parameters()))
    with pytest.raises(ValueError, match="V1 is inference only"):
        A.train_param_groups(A.adafocus_v1(num_classes=C, num_frames=T, patch_size=PATCH))


def test_sgd_steps_lower_the_objective_on_a_fixed_batch(small_registered):
    torch.manual_seed(3)
    model = afnet_edge.create_model(SMALL, num_classes=C, num_frames=T, patch_size=PATCH)
    clip, y = _batch(7)
    tr = Trainer(model, [(clip[0], 1), (clip[1], 3)], TrainConfig(epochs=1, batch_size=B, lr=0.01, lr_steps=(),
                                                                 weight_decay=1e-4, clip_grad=None),
                 device="cpu", log=None)
    tr.train_epoch(0)
    pol0 = [p.detach().clone() for p in model.policy_stn.parameters()]

    def objective() -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)                  # the same random actions and dropout masks every time
            model.train()
            return float(A.train_loss(model, model, clip, y)[0].detach())

    before = objective()
    steps = [tr.train_step(clip, y, 1.0)["loss"] for _ in range(3)]
    after = objective()
    assert all(s == s for s in steps)
    assert after < before - 0.05, (before, after, steps)
    # the policy moved (its only gradient is the crop's location gradient)
    assert any(not torch.equal(a, p) for a, p in zip(pol0, model.policy_stn.parameters()))


def test_cli_train_synthetic_end_to_end_and_checkpoint_loads(small_registered, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--model", SMALL, "--data", "synthetic", "--size", "224", "--frames", str(T), "--classes",
               str(C), "--patch-size", str(PATCH), "--train-samples", "2", "--val-samples", "2", "--batch-size",
               str(B), "--epochs", "1", "--lr", "0.002", "--wd", "1e-4", "--gd", "0", "--lr-steps",
               "--no-progress", "--threads", "1", "--out", str(out), "--json"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "train_loss" in text and "val_top1" in text
    ckpt = torch.load(out / "last.pth", weights_only=True)
    assert [g["name"] for g in ckpt["optimizer"]["param_groups"]] == ["policy", "glance", "local", "classifier"]
    fresh = _small()
    load_checkpoint(fresh, str(out / "last.pth"))
    trained = fresh.state_dict()
    assert set(ckpt["state_dict"]) == set(trained)
    assert all(torch.equal(trained[k], v) for k, v in ckpt["state_dict"].items())
    # resuming checks the family's groups (not AFNet's) and accepts its own file
    rc = main(["train", "--model", SMALL, "--data", "synthetic", "--size", "224", "--frames", str(T), "--classes",
               str(C), "--patch-size", str(PATCH), "--train-samples", "2", "--val-samples", "0", "--batch-size",
               str(B), "--epochs", "2", "--max-steps", "1", "--lr-steps", "--no-progress", "--threads", "1",
               "--out", str(out), "--resume", str(out / "last.pth")])
    assert rc == 0


def test_v2_tsm_objective_and_policy_gradient_path():
    """§3.7: per branch CE(fused logits) + CE(f_G aux per frame) + CE(f_L aux per frame), mean of the two branches;
    the fused logits use detached features, so π learns only through the policy branch's f_L aux loss. The two clips
    travel concatenated along time (glance frames, then focus frames), as in the export."""
    torch.manual_seed(4)
    tg, tl = 2, 3
    model = A.AdaFocusV2TSM("adafocus_v2_tsm", C, tg, tl, PATCH, dropout=0.5)
    for i in range(1, 5):
        stage = getattr(model.local_CNN.base_model, f"layer{i}")
        setattr(model.local_CNN.base_model, f"layer{i}", stage[:1])
    model.train()
    g = torch.Generator().manual_seed(8)
    clip, y = torch.randn(B, tg + tl, 3, 224, 224, generator=g), torch.tensor([0, 2])
    torch.manual_seed(12)
    loss, logits = A.train_loss(model, model, clip, y)
    torch.manual_seed(12)
    rand = torch.rand(B, 1, 2)
    out = model(clip[:, :tg], clip[:, tg:], random_locations=rand)
    rb = out.random_branch
    assert torch.equal(logits, out.logits) and torch.equal(rb.locations, rand)

    def branch(o):
        return _ce(o.logits[:, None], y) + _ce(o.aux["global"], y) + _ce(o.aux["local"], y)
    torch.testing.assert_close(loss, (branch(out) + branch(rb)) / 2, rtol=1e-6, atol=1e-6)
    pol = model.policy_stn
    assert _nonzero(_grads(_ce(out.aux["local"], y), pol))
    for term in (_ce(out.logits[:, None], y), _ce(out.aux["global"], y), branch(rb)):
        assert _none(_grads(term, pol))
    assert _none(_grads(_ce(out.logits[:, None], y), model.global_CNN.base_model))   # fused: detached features
    with pytest.raises(ValueError, match="glance"):
        A.train_loss(model, model, clip[:, :tg], y)
    model.eval()                                # the one-clip layout (training data, eval) = the two clips
    with torch.no_grad():
        assert torch.equal(model(clip).logits, model(clip[:, :tg], clip[:, tg:]).logits)


class _Stop(Exception):
    pass


def test_list_data_training_augmentation_of_the_recipe(small_registered, tmp_path, monkeypatch):
    """§2.9: V2 trains with the multi-scale crop and a horizontal flip; V2-TSM without the flip (§3.1); both resize
    list-data frames to shorter side 256 (§1). Checked where ``afnet-edge train`` builds its list datasets."""
    from afnet_edge.models.registry import train_recipe
    from afnet_edge.training import commands
    seen = []

    def record(list_file, root, num_frames, num_classes, train, **kw):
        seen.append((train, kw))
        raise _Stop
    monkeypatch.setattr(commands, "list_dataset", record)
    flist = tmp_path / "train.txt"
    flist.write_text("v0 4 0\n")
    with pytest.raises(_Stop):
        main(["train", "--model", SMALL, "--data", "list", "--list", str(flist), "--frames", str(T), "--classes",
              str(C), "--patch-size", str(PATCH), "--no-progress", "--threads", "1", "--out", str(tmp_path / "r")])
    (train, kw), = seen
    assert train and kw["flip"] is True and kw["short_side"] == (256, 256) and kw["size"] == 224
    tsm = A.AdaFocusV2TSM("adafocus_v2_tsm", C, 2, 3, PATCH)
    recipe = train_recipe(tsm)
    assert recipe.flip_for(tsm) is False and recipe.short_side == (256, 256)
    assert train_recipe(afnet_edge.create_model("af_mobilenetv3", num_classes=C, num_frames=4)).flip_for(None) \
        is False
