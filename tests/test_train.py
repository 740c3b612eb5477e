"""Training and evaluation (afnet_edge.training): spec §6 optimiser groups, §7 objective and schedules, exact resume,
evaluation numbers, and the ``afnet-edge train`` / ``eval`` commands.

Everything runs on CPU with tiny clips (T=4, 32×32 px); torch uses one thread here (the CI machine has 2 shared
cores, and oversubscribed OpenMP threads make tiny convolutions orders of magnitude slower).
"""
from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn

from afnet_edge import create_model
from afnet_edge.cli import main
from afnet_edge.data import SyntheticVideoDataset, write_synthetic_videos
from afnet_edge.models.common import VideoOutput
from afnet_edge.training import (
    GROUPS,
    EpochSeeded,
    TrainConfig,
    Trainer,
    accuracy,
    adjust_learning_rate,
    adjust_ratio,
    build_optimizer,
    evaluate,
    get_optim_policies,
    lr_at,
    ratio_loss,
    seed_everything,
    temperature_at,
    topk_correct,
)
from skip_reasons import NO_CUDA

T, SIZE = 4, 32


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_mobilenet(classes: int = 4, seed: int = 0):
    seed_everything(seed)
    return create_model("af_mobilenetv3", num_classes=classes, num_frames=T, kernels="torch")


# ------------------------------------------------------------------------------------------------ schedules (§7)
def test_adjust_ratio_matches_spec_script_values():
    # scripts: rt_begin 10, rt_end 20: epochs 0–9 → 1.0; 10–14 → RT+2(1−RT)/3; 15–19 → RT+(1−RT)/3; ≥20 → RT
    rt = 0.5
    expect = {0: 1.0, 9: 1.0, 10: 0.5 + 2 * 0.5 / 3, 14: 0.5 + 2 * 0.5 / 3, 15: 0.5 + 0.5 / 3, 19: 0.5 + 0.5 / 3,
              20: 0.5, 54: 0.5}
    for e, v in expect.items():
        assert adjust_ratio(e, rt, 10, 20) == pytest.approx(v, abs=1e-15), e
    # odd span: floor((15 − 10) / 2) = 2 epochs at the first level
    assert [round(adjust_ratio(e, 0.25, 10, 15), 6) for e in range(9, 16)] == \
        [1.0, 0.75, 0.75, 0.5, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="rt_end"):
        adjust_ratio(0, 0.5, 20, 10)
    with pytest.raises(ValueError, match="rt"):
        adjust_ratio(0, 1.5, 10, 20)


def test_temperature_schedule_matches_spec_and_fixes_the_resume_quirk():
    t0, t1, t_end, I = 1.0, 0.01, 50, 100
    spec = lambda e, s: t0 * (t1 / t0) ** ((e * I + s) / (t_end * I))  # noqa: E731  (spec §7 formula)
    for e, s in [(0, 0), (0, 1), (10, 37), (25, 0), (49, 99)]:
        assert temperature_at(e, s, I, t0, t1, t_end) == pytest.approx(spec(e, s), rel=1e-12)
    assert temperature_at(0, 0, I, t0, t1, t_end) == 1.0
    assert temperature_at(25, 0, I, t0, t1, t_end) == pytest.approx(0.1, rel=1e-12)  # half-way: sqrt(t1/t0)
    last = temperature_at(49, I - 1, I, t0, t1, t_end)
    # From t_end on the official code stops updating: τ keeps the last annealed value — also after a resume (the
    # official code would fall back to --temp 1 there).
    for e, s in [(50, 0), (50, 57), (54, 99)]:
        assert temperature_at(e, s, I, t0, t1, t_end) == last
    assert last != 1.0 and last == pytest.approx(0.01 ** (4999 / 5000), rel=1e-12)
    assert temperature_at(7, 3, I, 5.0, t1, 0) == 5.0  # t_end = 0: no annealing


def test_step_lr_and_group_multipliers():
    assert [lr_at(e, 0.01, (25, 45)) for e in (0, 24, 25, 44, 45, 54)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001], rel=1e-12)
    model = tiny_mobilenet()
    opt = build_optimizer(model, lr=0.01, weight_decay=5e-4)
    adjust_learning_rate(opt, 30, 0.01, (25, 45), 5e-4)
    by_name = {g["name"]: g for g in opt.param_groups}
    mult = {name: (lr_mult, decay_mult) for name, lr_mult, decay_mult in GROUPS}
    for name, g in by_name.items():
        assert g["lr"] == pytest.approx(0.001 * mult[name][0], rel=1e-12), name
        assert g["weight_decay"] == pytest.approx(5e-4 * mult[name][1], rel=1e-12), name
    assert by_name["navi_conv_weight"]["lr"] == pytest.approx(0.01) and by_name["BN scale/shift"]["weight_decay"] == 0


# ------------------------------------------------------------------------------------------------ optimiser groups (§6)
def _official_groups(model, mobilenet: bool, fc_lr5: bool = True) -> dict:
    """The official grouping rules written from spec §6 (shape-based navigation detection, module order)."""
    g = {name: [] for name, _, _ in GROUPS}
    conv_count = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            conv_count += 1
            ps = list(m.parameters())
            if conv_count == 1:
                g["first_conv_weight"].append(ps[0])
                g["first_conv_bias"] += ps[1:]
            elif tuple(ps[0].shape) == (2 * T, 2, 1, 1) or ps[0].shape[0] == 2:
                g["navi_conv_weight"].append(ps[0])
                g["navi_conv_bias"] += ps[1:]
            else:
                g["normal_weight"].append(ps[0])
                g["normal_bias"] += ps[1:]
        elif isinstance(m, nn.Linear):
            ps = list(m.parameters())
            head = 1280 in tuple(ps[0].shape)
            if not fc_lr5:
                g["normal_weight"].append(ps[0])
                g["normal_bias"] += ps[1:]
            elif mobilenet and not head:
                g["normal_weight"] += ps
            else:
                g["lr5_weight"].append(ps[0])
                g["lr10_bias"] += ps[1:]
        elif isinstance(m, nn.BatchNorm2d):
            g["navi_bn" if m.num_features == 2 else "BN scale/shift"] += list(m.parameters())
    return g


@pytest.mark.parametrize("name", ["af_mobilenetv3", "af_resnet50", "tsm_resnet50"])
def test_optim_groups_match_spec(name):
    seed_everything(0)
    model = create_model(name, num_classes=5, num_frames=T)
    mobilenet = name == "af_mobilenetv3"
    for fc_lr5 in (True, False):
        groups = get_optim_policies(model, fc_lr5=fc_lr5)
        assert [(g["name"], g["lr_mult"], g["decay_mult"]) for g in groups] == list(GROUPS)
        expect = _official_groups(model, mobilenet, fc_lr5)
        for g in groups:
            assert [id(p) for p in g["params"]] == [id(p) for p in expect[g["name"]]], (name, g["name"])
        ids = [id(p) for g in groups for p in g["params"]]
        assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter exactly once
    groups = {g["name"]: {id(p) for p in g["params"]} for g in get_optim_policies(model)}
    ten_x = groups["navi_bn"] | groups["navi_conv_weight"] | groups["navi_conv_bias"]
    nav = {id(p) for n, p in model.named_parameters() if "list_gen" in n}
    assert ten_x == nav  # every navigation parameter, and only those, trains at lr×10
    assert len(nav) == 5 * model.num_navigation
    if name == "af_resnet50":  # dynamic_fusion Linears (no bias) go to lr×5 with new_fc
        att = {id(p) for n, p in model.named_parameters() if "att_gen" in n}
        assert att and att <= groups["lr5_weight"]
        assert groups["lr10_bias"] == {id(model.new_fc.bias)}
    if mobilenet:  # only the 1280-wide head is lr×5/×10; SE / fusion Linear biases are "normal weights"
        head = model.base_model.fc
        assert groups["lr5_weight"] == {id(head[0].weight), id(head[3].weight)}
        assert groups["lr10_bias"] == {id(head[0].bias), id(head[3].bias)}
        se_bias = {id(p) for n, p in model.named_parameters() if ".se.fc." in n and n.endswith("bias")}
        assert se_bias and se_bias <= groups["normal_weight"]
    first = model.base_model.conv if mobilenet else model.base_model.conv1
    assert groups["first_conv_weight"] == {id(first.weight)}


# ------------------------------------------------------------------------------------------------ objective
def test_ratio_loss_formula_and_gradient_direction():
    masks = [torch.tensor([[1.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 0.0]])]
    loss, real = ratio_loss(masks, 0.5, 0.5)
    # ratios 0.75 and 0.25 → 0.5 · ((0.5−0.75)² + (0.5−0.25)²) / 2
    assert loss.item() == pytest.approx(0.5 * (0.0625 + 0.0625) / 2)
    assert real.item() == pytest.approx(0.5)
    loss, real = ratio_loss([], 0.25, 0.5)
    assert loss.item() == 0.0 and real.item() == 1.0
    # through the straight-through Gumbel mask the ratio term pushes the "select" logits down when rt < ratio
    model = tiny_mobilenet().train().configure(temperature=1.0)  # τ = t0 = 1 at the start of training
    with torch.no_grad():  # select − skip margin 1 (P ≈ 0.73) so the soft Gumbel sample is not saturated
        for nav in list(model.base_model.list_gen2) + list(model.base_model.list_gen3):
            nav.conv_gs.bias[1::2] = nav.conv_gs.bias[0::2] + 1.0
    out = model(torch.randn(2, T, 3, SIZE, SIZE))
    loss, _ = ratio_loss(out.masks, 0.0, 1.0)
    loss.backward()
    for nav in list(model.base_model.list_gen2) + list(model.base_model.list_gen3):
        g = nav.conv_gs.bias.grad
        assert g is not None and torch.isfinite(g).all()
        assert (g[1::2] - g[0::2]).sum() > 0  # gradient descent lowers select − skip


def test_few_steps_reduce_loss_and_move_ratio_toward_target():
    model = tiny_mobilenet()
    with torch.no_grad():  # start from P(select) ≈ 0.73 instead of ≈ 1 so that a few steps can show the movement
        for n, p in model.named_parameters():
            if n.endswith("conv_gs.bias"):
                p[1::2] = p[0::2] + 1.0
    data = SyntheticVideoDataset(4, T, SIZE, 4, seed=3)  # one fixed batch: the classification loss must drop
    cfg = TrainConfig(epochs=20, batch_size=4, lr=0.02, lr_steps=(), rt=0.25, rt_begin=0, rt_end=0, lambda_rt=2.0,
                      t0=1.0, t_end=0, seed=0, eval_every=0)
    trainer = Trainer(model, data, cfg, log=None)
    trainer.step_log = []
    trainer.fit()
    log = trainer.step_log
    assert len(log) == 20 and all(r["rt"] == 0.25 for r in log)
    ratio = [r["ratio"] for r in log]
    cls = [r["loss_cls"] for r in log]
    assert np.mean(ratio[-5:]) < np.mean(ratio[:5]) - 0.1, ratio
    assert np.mean(cls[-5:]) < 0.5 * np.mean(cls[:5]), cls
    gaps = [float((p[1::2] - p[0::2]).mean().detach()) for n, p in model.named_parameters() if n.endswith("conv_gs.bias")]
    assert max(gaps) < 0.9  # every navigation module moved toward skipping


def test_bad_labels_and_batch_size():
    model = tiny_mobilenet(classes=3)
    data = SyntheticVideoDataset(8, T, SIZE, 4, seed=0)  # labels 0..3, model has 3 classes
    trainer = Trainer(model, data, TrainConfig(epochs=1, batch_size=8, seed=0), log=None)
    with pytest.raises(ValueError, match="out of range"):
        trainer.fit()
    with pytest.raises(ValueError, match="fewer than one batch"):
        Trainer(model, data, TrainConfig(epochs=1, batch_size=9), log=None)
    with pytest.raises(ValueError, match="CUDA"):
        Trainer(model, data, TrainConfig(epochs=1, batch_size=4, amp=True), device="cpu", log=None)


# ------------------------------------------------------------------------------------------------ resume
def _run_config(**kw):
    base = dict(epochs=3, batch_size=4, lr=0.02, lr_steps=(2,), rt=0.25, rt_begin=1, rt_end=2, lambda_rt=1.0,
                t0=1.0, t1=0.01, t_end=2, seed=7, eval_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _data():
    # 14 clips, batch 4: 3 iterations per epoch and 2 clips dropped (drop_last, as officially)
    return SyntheticVideoDataset(14, T, SIZE, 4, seed=1), SyntheticVideoDataset(4, T, SIZE, 4, seed=2)


def _same_optimizer_state(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        for name, v in a["state"][k].items():
            w = b["state"][k][name]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w


def test_resume_restores_the_exact_state(tmp_path):
    train, val = _data()
    # uninterrupted run (in pieces only to write checkpoints at chosen points; pieces and one fit are the same run)
    a = Trainer(tiny_mobilenet(seed=0), train, _run_config(), val, out_dir=tmp_path / "a", log=None)
    a.step_log = []
    a.fit(max_steps=2)  # stops mid-epoch 0 and writes last.pth
    assert (a.state.epoch, a.state.step) == (0, 2)
    shutil.copy(tmp_path / "a" / "last.pth", tmp_path / "mid.pth")
    a.fit(max_steps=4)  # → start of epoch 2 (≥ t_end = 2)
    assert (a.state.epoch, a.state.step) == (2, 0)
    shutil.copy(tmp_path / "a" / "last.pth", tmp_path / "e2.pth")
    a.fit()
    assert a.state.global_step == 9 and len(a.state.history) == 3
    ref = a.step_log
    rng_after = torch.get_rng_state()

    # one uninterrupted fit gives the same numbers as the pieces
    u = Trainer(tiny_mobilenet(seed=0), train, _run_config(), val, log=None)
    u.step_log = []
    u.fit()
    assert [r["loss"] for r in u.step_log] == [r["loss"] for r in ref]

    for ckpt, start in (("mid.pth", 2), ("e2.pth", 6)):
        b = Trainer(tiny_mobilenet(seed=123), train, _run_config(), val, out_dir=tmp_path / f"out_{start}", log=None)
        tr = b.resume(tmp_path / ckpt)
        assert tr["global_step"] == start
        # the temperature continues exactly: at epoch 2 ≥ t_end it is the last annealed value, not --temp 1
        assert b.model.temperature == ref[start]["temperature"]
        if start == 6:
            assert b.model.temperature == temperature_at(1, 2, 3, 1.0, 0.01, 2) != 1.0
        b.step_log = []
        b.fit()
        got = b.step_log
        assert [(r["epoch"], r["step"]) for r in got] == [(r["epoch"], r["step"]) for r in ref[start:]]
        for key in ("loss", "loss_cls", "loss_rt", "ratio", "temperature", "lr", "rt", "correct1"):
            assert [r[key] for r in got] == [r[key] for r in ref[start:]], (ckpt, key)  # bitwise
        for (n, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            assert torch.equal(p, q), n
        _same_optimizer_state(a.optimizer.state_dict(), b.optimizer.state_dict())
        untimed = lambda h: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in h]  # noqa: E731
        assert untimed(b.state.history) == untimed(a.state.history) and b.state.best_top1 == a.state.best_top1
        assert torch.equal(torch.get_rng_state(), rng_after)  # same random numbers consumed after the resume


def test_resume_rejects_another_model_and_weights_only_files(tmp_path):
    train, val = _data()
    a = Trainer(tiny_mobilenet(), train, _run_config(epochs=1), val, out_dir=tmp_path, log=None)
    a.fit()
    assert (tmp_path / "last.pth").exists() and (tmp_path / "best.pth").exists()
    other_classes = Trainer(tiny_mobilenet(classes=5), train, _run_config(), log=None)
    with pytest.raises(ValueError, match="num_classes: checkpoint 4 vs model 5"):
        other_classes.resume(tmp_path / "last.pth")
    seed_everything(0)
    other_t = Trainer(create_model("af_mobilenetv3", num_classes=4, num_frames=6), SyntheticVideoDataset(
        8, 6, SIZE, 4), _run_config(), log=None)
    with pytest.raises(ValueError, match="num_frames: checkpoint 4 vs model 6"):
        other_t.resume(tmp_path / "last.pth")
    with pytest.raises(ValueError, match="weights only"):
        Trainer(tiny_mobilenet(), train, _run_config(), log=None).resume(tmp_path / "best.pth")
    b = Trainer(tiny_mobilenet(), train, _run_config(batch_size=2), log=None)
    b.resume(tmp_path / "last.pth")  # epoch boundary: another batch size is fine


def test_official_layout_checkpoint_loads(tmp_path):
    from afnet_edge.checkpoint import OFFICIAL_TOP_LEVEL_KEYS, inspect_checkpoint, load_checkpoint
    train, val = _data()
    a = Trainer(tiny_mobilenet(), train, _run_config(epochs=1), val, out_dir=tmp_path, log=None,
                official_layout=True)
    a.fit()
    path = tmp_path / "ckpt.pth.tar"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    assert set(OFFICIAL_TOP_LEVEL_KEYS) <= set(obj) and obj["epoch"] == 1 and obj["arch"] == "AF_mobilenetv3"
    assert all(k.startswith("module.base_model.") for k in obj["state_dict"])
    assert [g["name"] for g in obj["optimizer"]["param_groups"]] == [g[0] for g in GROUPS]
    assert [len(g["params"]) for g in obj["optimizer"]["param_groups"]] == \
        [len(g["params"]) for g in a.optimizer.param_groups]
    assert obj["val_acc_top1"] == [a.state.history[0]["val_top1"]]
    assert inspect_checkpoint(path)["kind"] == "official_tsn"
    b = tiny_mobilenet(seed=5)
    load_checkpoint(b, path)
    for (n, p), q in zip(a.model.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), n


def test_finetune_loads_everything_but_a_new_classifier(tmp_path):
    from afnet_edge.checkpoint import save_checkpoint
    from afnet_edge.training.finetune import classifier_keys, load_for_finetuning
    src = tiny_mobilenet(classes=4, seed=1)
    save_checkpoint(src, tmp_path / "src.pth")
    dst = tiny_mobilenet(classes=6, seed=2)
    fresh_head = {k: v.clone() for k, v in dst.state_dict().items() if k in classifier_keys(dst)}
    rep = load_for_finetuning(dst, tmp_path / "src.pth")
    assert rep["reset"] == ["base_model.fc.3.bias", "base_model.fc.3.weight"]
    for k, v in dst.state_dict().items():
        assert torch.equal(v, fresh_head[k] if k in fresh_head else src.state_dict()[k]), k
    seed_everything(0)
    other_t = create_model("af_mobilenetv3", num_classes=6, num_frames=6)
    with pytest.raises(ValueError, match="conv_gs"):
        load_for_finetuning(other_t, tmp_path / "src.pth")
    with pytest.raises(ValueError, match="missing key"):
        load_for_finetuning(create_model("tsm_resnet50", num_classes=6, num_frames=T), tmp_path / "src.pth")


def test_epoch_seeded_samples_do_not_depend_on_the_global_generator():
    class Noisy(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.randint(0, 1000, (3,)), int(np.random.randint(1000))

    ds = EpochSeeded(Noisy(), seed=3)
    torch.manual_seed(0)
    x0, y0 = ds[2]
    state = torch.get_rng_state()
    torch.manual_seed(99)
    np.random.seed(5)
    x1, y1 = ds[2]
    assert torch.equal(x0, x1) and y0 == y1
    ds.epoch = 1
    x2, _ = ds[2]
    assert not torch.equal(x0, x2)
    torch.manual_seed(0)
    ds.epoch = 0
    ds[2]
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left untouched


class _Jitter(torch.utils.data.Dataset):
    """Synthetic clips plus torch-random noise (a stand-in for random crops / TSN sampling)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        clip, label = self.ds[i]
        return clip + 0.1 * torch.rand(clip.shape), label


def test_data_randomness_does_not_depend_on_workers():
    data = _Jitter(SyntheticVideoDataset(8, T, SIZE, 4, seed=1))
    losses = []
    for workers in (0, 1):
        trainer = Trainer(tiny_mobilenet(), data, _run_config(epochs=1, workers=workers), log=None)
        trainer.step_log = []
        trainer.fit()
        losses.append([r["loss"] for r in trainer.step_log])
    assert len(losses[0]) == 2 and losses[0] == losses[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason=f"{NO_CUDA}: AMP (float16 autocast + GradScaler) needs one")
def test_amp_training_on_cuda():
    train, _ = _data()
    trainer = Trainer(tiny_mobilenet(), train, _run_config(epochs=1), device="cuda", log=None)
    assert trainer.amp and trainer.scaler is not None
    trainer.step_log = []
    trainer.fit()
    assert all(math.isfinite(r["loss"]) for r in trainer.step_log)
    assert trainer.state.skipped_steps < len(trainer.step_log)


# ------------------------------------------------------------------------------------------------ evaluation
class _Stub(nn.Module):
    """Returns fixed logits per clip id (clip[0, 0, 0, 0] holds the id) and masks with known ratios."""

    def __init__(self, logits: torch.Tensor, masks: list):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.logits, self.masks, self.num_classes = logits, masks, logits.shape[1]

    def forward(self, clip):
        ids = clip[:, 0, 0, 0, 0].long()
        return VideoOutput(self.logits[ids], [m[ids] for m in self.masks])


class _Clips(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        clip = torch.rand(T, 3, 8, 8)
        clip[0, 0, 0, 0] = i
        return clip, self.labels[i]


def test_topk_accuracy_hand_checked():
    # 6 classes; the label's rank among the logits (1 = best) is 1, 3, 6, 5, 2 for the five clips
    logits = torch.tensor([
        [0.1, 0.9, 0.2, 0.3, 0.0, -1.0],   # label 1 (0.9): rank 1
        [0.5, 0.4, 0.3, 0.6, 0.1, 0.0],    # label 4 (0.1): after 0.6, 0.5, 0.4, 0.3 → rank 5
        [3.0, 2.0, 1.0, 0.0, -1.0, -2.0],  # label 5 (−2): rank 6
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],    # label 1 (1.0): after 5, 4, 3, 2 → rank 5
        [1.0, 2.0, 0.0, 0.0, 0.0, 0.0],    # label 0 (1.0): rank 2
    ])
    labels = [1, 4, 5, 1, 0]
    # top-1 hits: clip 0 → 20 %; top-2: clips 0, 4 → 40 %; top-5: clips 0, 1, 3, 4 → 80 %
    assert topk_correct(logits, torch.tensor(labels), (1, 5)) == [1, 4]
    assert accuracy(logits, torch.tensor(labels), (1, 2, 5)) == pytest.approx([20.0, 40.0, 80.0])
    m1 = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.float32)
    m2 = torch.ones(5, T)
    res = evaluate(_Stub(logits, [m1, m2]), _Clips(labels), batch_size=2, flops=False)
    assert res["top1"] == pytest.approx(20.0) and res["top5"] == pytest.approx(80.0) and res["num_clips"] == 5
    # module ratios 10/20 and 1 → real ratio 0.75
    assert res["module_ratios"] == pytest.approx([0.5, 1.0]) and res["real_ratio"] == pytest.approx(0.75)
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).item()
    assert res["loss"] == pytest.approx(ce, rel=1e-6)


def test_evaluate_real_model_ratio_and_official_flops():
    from afnet_edge.flops import count_flops
    model = tiny_mobilenet()
    data = SyntheticVideoDataset(6, T, SIZE, 4, seed=4)
    model.configure(ratio=0.5)
    res = evaluate(model, data, batch_size=4, selection="topk")
    # topk keeps ceil(0.5·4) = 2 frames per clip in every module: the real ratio is exactly 0.5
    assert res["module_ratios"] == [0.5] * 5 and res["real_ratio"] == 0.5
    assert res["official_gflops"] == pytest.approx(count_flops(model, ratio=0.5, image_size=SIZE)["official_gflops"])
    assert model.selection == "threshold" and not model.training  # configuration restored
    dense = evaluate(model, data, batch_size=4, selection="threshold")  # official init: every frame selected
    assert dense["real_ratio"] == 1.0 and dense["official_gflops"] > res["official_gflops"]
    with torch.no_grad():
        logits = model(torch.stack([data[i][0] for i in range(6)])).logits
    labels = torch.tensor([data[i][1] for i in range(6)])
    assert dense["top1"] == pytest.approx(accuracy(logits, labels, (1,))[0])


# ------------------------------------------------------------------------------------------------ CLI
TINY = ["--model", "af_mobilenetv3", "--frames", str(T), "--classes", "4", "--size", str(SIZE), "--threads", "1",
        "--no-progress"]


def test_cli_train_eval_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", *TINY, "--train-samples", "8", "--val-samples", "4", "--batch-size", "4", "--epochs", "1",
            "--rt-begin", "0", "--rt-end", "1", "--t-end", "1", "--out", out, "--official-layout"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "val top1" in text
    for f in ("last.pth", "best.pth", "log.jsonl", "ckpt.pth.tar"):
        assert os.path.exists(os.path.join(out, f)), f
    rec = json.loads(open(os.path.join(out, "log.jsonl")).read().splitlines()[-1])
    # default RT 0.5 with rt_begin 0, rt_end 1: epoch 0 is in the last step before RT, RT + (1 − RT)/3
    assert rec["epoch"] == 0 and rec["rt"] == pytest.approx(0.5 + 0.5 / 3)
    # continue the same run for one more epoch (model and sizes come from the checkpoint)
    assert main(["train", "--resume", os.path.join(out, "last.pth"), "--epochs", "2", "--train-samples", "8",
                 "--val-samples", "4", "--batch-size", "4", "--size", str(SIZE), "--rt-begin", "0", "--rt-end", "1",
                 "--t-end", "1", "--out", out, "--no-progress", "--threads", "1"]) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", os.path.join(out, "best.pth"), "--val-samples", "4", "--size", str(SIZE),
                 "--json", "--no-progress", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model"] == "af_mobilenetv3" and res["num_clips"] == 4 and 0 <= res["top1"] <= 100
    assert 0 < res["real_ratio"] <= 1 and res["official_gflops"] > 0
    assert main(["eval", "--checkpoint", os.path.join(out, "ckpt.pth.tar"), "--val-samples", "4", "--size",
                 str(SIZE), "--selection", "topk", "--ratio", "0.5", "--no-progress", "--threads", "1"]) == 0
    assert "real ratio 0.5000" in capsys.readouterr().out


def test_cli_list_data_and_bad_input(tmp_path, capsys):
    ds = SyntheticVideoDataset(4, 6, SIZE, 4, seed=0)
    lst = write_synthetic_videos(ds, tmp_path / "clips", 4, layout="frames")
    assert main(["train", *TINY, "--data", "list", "--list", lst, "--val-list", lst, "--batch-size", "2",
                 "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert "val top1" in capsys.readouterr().out

    def fails(argv, pattern):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and pattern in err, err

    fails(["train", *TINY, "--data", "list", "--list", str(tmp_path / "missing.txt")], "no such list file")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fails(["train", *TINY, "--data", "list", "--list", str(empty)], "empty.txt")
    fails(["train", *TINY[:4], "--data", "list", "--list", lst], "--classes")
    fails(["train", *TINY[:4], "--classes", "3", "--data", "list", "--list", lst], "label")  # labels 0..3
    fails(["train", *TINY, "--amp"], "CUDA")
    fails(["train", *TINY, "--rt", "1.5"], "--rt")
    fails(["train", *TINY, "--hold-ratio", "0.5"], "--hold-ratio")            # needs --nav-estimator local
    fails(["train", *TINY, "--nav-estimator", "local", "--hold-ratio", "1.5"], "--hold-ratio")
    fails(["train", *TINY, "--classes", "20"], "--classes")  # synthetic benchmark has at most 14 classes
    last = str(tmp_path / "run" / "last.pth")
    fails(["train", "--model", "af_resnet50", "--resume", last], "af_mobilenetv3")
    fails(["train", "--resume", last, "--classes", "7"], "classes")
    fails(["train", "--resume", str(tmp_path / "run" / "best.pth"), "--data", "list", "--list", lst,
           "--batch-size", "2", "--no-progress"], "weights only")
    fails(["eval", *TINY[:4], "--classes", "4", "--checkpoint", str(tmp_path / "nope.pth")], "nope.pth")
    fails(["eval", "--checkpoint", last, "--model", "tsm_resnet50"], "af_mobilenetv3")
    fails(["train", "--finetune", last, "--resume", last], "not --resume and --finetune")
    # fine-tune the 4-class run into 6 classes on the synthetic benchmark
    assert main(["train", "--finetune", last, "--classes", "6", "--size", str(SIZE), "--train-samples", "4",
                 "--val-samples", "0", "--batch-size", "4", "--epochs", "1", "--threads", "1", "--no-progress",
                 "--out", str(tmp_path / "ft")]) == 0
    assert "new classifier (base_model.fc.3.bias, base_model.fc.3.weight)" in capsys.readouterr().out
