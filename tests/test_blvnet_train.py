"""Training bLVNet-TAM (issue 13 item 5): the release's recipe (shared/spec/blvnet-tam.md §5.3) applied through the
family's ``TrainRecipe`` hook, the official frame sampling (§2: equal spacing, one random phase per clip) for list
data and longer synthetic videos, and a narrow model that learns the synthetic temporal task on the CPU.

Narrow models (``base_width=8``, T = 4 frames of 32 px) and one torch thread keep the file at a few seconds.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import afnet_edge
from afnet_edge.cli import main
from afnet_edge.data import SyntheticVideoDataset, VideoListDataset, write_synthetic_videos
from afnet_edge.data.transforms import train_augment
from afnet_edge.models import registry
from afnet_edge.training import TrainConfig, Trainer, evaluate, get_optim_policies, seed_everything
from afnet_edge.training.datasets import list_dataset, synthetic_splits
from afnet_edge.training.schedules import cosine_lr_at, policy_lr_at
from afnet_edge import video as V

MODEL, WIDTH, G, S = "blvnet_tam_r50", 8, 4, 32


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def narrow(classes: int = 2, seed: int = 0, **kw):
    seed_everything(seed)
    return afnet_edge.create_model(MODEL, num_classes=classes, num_frames=G, base_width=WIDTH, **kw)


# ------------------------------------------------------------------------------------------------ sampling (§2)
def spec_phase_indices(L: int, G_: int, o: int) -> list[int]:
    """§2 training rule written out: s = ⌊L/G⌋, frame g = g·s + o."""
    s = L // G_
    return [g * s + o for g in range(G_)]


@pytest.mark.parametrize("L,G_", [(20, 4), (23, 4), (16, 16), (50, 16), (7, 3)])
def test_phase_sampling_is_the_spec_formula(L, G_):
    s = L // G_
    seen = set()
    for seed in range(60):
        idx = V.phase_train_indices(L, G_, np.random.default_rng(seed))
        o = idx[0]
        assert 0 <= o < s, (idx, s)
        assert idx == spec_phase_indices(L, G_, o)      # one phase for the whole clip, equal spacing s
        seen.add(o)
    assert seen == set(range(s))                        # every phase in [0, s) is drawn
    # TSN (one independent offset per segment) is a different rule: unequal spacings occur
    spacings = {tuple(np.diff(V.tsn_train_indices(L, G_, np.random.default_rng(k)))) for k in range(60)}
    assert len(spacings) > 1 or s == 1


def test_phase_sampling_short_videos_and_dispatch():
    for seed in range(20):
        idx = V.phase_train_indices(5, 8, np.random.default_rng(seed))   # L < G: with replacement, sorted
        assert len(idx) == 8 and idx == sorted(idx) and all(0 <= i < 5 for i in idx)
    assert len({tuple(V.phase_train_indices(5, 8, np.random.default_rng(k))) for k in range(20)}) > 1
    assert V.train_indices(20, 4, np.random.default_rng(3), sampling="phase") == \
        V.phase_train_indices(20, 4, np.random.default_rng(3))
    assert V.train_indices(20, 4, np.random.default_rng(3), sampling="tsn") == \
        V.tsn_train_indices(20, 4, np.random.default_rng(3))
    with pytest.raises(ValueError, match="sampling: expected one of"):
        V.train_indices(20, 4, sampling="dense")
    assert V.TRAIN_SAMPLINGS == registry.TRAIN_SAMPLINGS


@pytest.fixture(scope="module")
def frames_list(tmp_path_factory):
    root = tmp_path_factory.mktemp("blv_frames")
    ds = SyntheticVideoDataset(2, num_frames=4, size=(32, 48), seed=5, distractor_prob=0.0)
    return ds, write_synthetic_videos(ds, root, 2, video_frames=18, layout="frames")


def test_list_dataset_phase_sampling_and_flip(frames_list):
    ds, flist = frames_list
    root = os.path.dirname(flist)
    data = VideoListDataset(root, flist, num_frames=4, train=True, size=24, scale_size=(32, 48), sampling="phase",
                            flip=True)
    rec = data.records[1]
    for k in range(20):
        idx = data.sample_indices(rec, np.random.default_rng(k))
        assert idx == spec_phase_indices(18, 4, idx[0]) and 0 <= idx[0] < 4
    plain = VideoListDataset(root, flist, num_frames=4, train=True, size=24, scale_size=(32, 48))
    assert plain.sampling == "tsn" and not plain.flip
    # the flip is one extra draw after the crop's: the clip is the unflipped one or its mirror, both occur
    src = ds.render(1, num_frames=18).frames[:4]
    kinds = set()
    for k in range(12):
        a = train_augment(src, np.random.default_rng(k), 24, (32, 48), flip=True)
        b = train_augment(src, np.random.default_rng(k), 24, (32, 48), flip=False)
        if torch.equal(a, b):
            kinds.add("same")
        else:
            torch.testing.assert_close(a, b.flip(-1), rtol=0, atol=0)
            kinds.add("mirrored")
    assert kinds == {"same", "mirrored"}
    with pytest.raises(ValueError, match="sampling: expected one of"):
        VideoListDataset(root, flist, num_frames=4, sampling="dense")


def test_list_data_shorter_side_resize_of_the_recipe(frames_list):
    """bLVNet-TAM's frames: shorter side 256 for training, 224 for evaluation (--disable_scaleup), scaled to --size;
    the aspect ratio kept as torchvision's Resize(int) keeps it."""
    ds, flist = frames_list
    root = os.path.dirname(flist)
    short = registry.train_recipe(narrow()).short_side
    assert short == (256, 224)
    ev = list_dataset(flist, root, 4, 14, False, size=24, short_side=short)
    tr = list_dataset(flist, root, 4, 14, True, size=24, short_side=short, sampling="phase")
    assert (ev.scale_short, tr.scale_short) == (24, 27)                 # round(224·24/224), round(256·24/224)
    frames = np.zeros((1, 32, 48, 3), np.uint8)                         # the written frames are 32×48
    assert ev.resize_to(frames) == (24, 36) and tr.resize_to(frames) == (27, 40)
    assert tr.resize_to(np.zeros((1, 48, 32, 3), np.uint8)) == (40, 27)
    fixed = VideoListDataset(root, flist, num_frames=4, size=24, scale_size=(24, 36))
    torch.testing.assert_close(ev[1][0], fixed[1][0], rtol=0, atol=0)
    assert list_dataset(flist, root, 4, 14, False, size=24).scale_short is None     # AFNet/TSN: 240×320 resize
    with pytest.raises(ValueError, match="scale_short: expected a shorter side >= size=24"):
        VideoListDataset(root, flist, num_frames=4, size=24, scale_short=20)


def test_synthetic_longer_videos_use_the_family_sampling():
    tr, va = synthetic_splits(4, 2, 3, 3, 32, seed=2, video_frames=12, sampling="phase")
    assert tr.sampling == "phase" and va.sampling is None
    video = tr.render(1, num_frames=12).frames
    phases = set()
    for k in range(16):
        torch.manual_seed(k)
        clip, _ = tr[1]
        match = [o for o in range(3) if torch.equal(clip, V.normalize_frames(video[spec_phase_indices(12, 4, o)]))]
        assert len(match) == 1
        phases.add(match[0])
    assert phases == {0, 1, 2}
    # validation: segment centres of the validation split's own videos, deterministic
    torch.testing.assert_close(va[0][0], V.normalize_frames(va.render(0, num_frames=12).frames[[1, 4, 7, 10]]),
                               rtol=0, atol=0)
    # without video_frames the clips are rendered with T frames, as before
    same, _ = synthetic_splits(4, 2, 3, 0, 32, seed=2)
    torch.testing.assert_close(same[1][0], V.normalize_frames(same.render(1).frames), rtol=0, atol=0)
    with pytest.raises(ValueError, match="video_frames: expected L >= num_frames=4"):
        SyntheticVideoDataset(3, 4, 32, 2, video_frames=3)


# ------------------------------------------------------------------------------------------------ recipe (§5.3)
def test_recipe_defaults_and_optimizer():
    model = narrow()
    cfg = TrainConfig.for_model(model)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.lr_policy, cfg.momentum, cfg.nesterov, cfg.weight_decay,
            cfg.clip_grad, cfg.fc_lr5) == (50, 64, 0.01, "cosine", 0.9, True, 5e-4, None, False)
    assert TrainConfig.for_model(model, lr=0.1, epochs=None).lr == 0.1      # explicit options win, None = unset
    trainer = Trainer(model, SyntheticVideoDataset(4, G, S, 2), TrainConfig.for_model(model, epochs=4, batch_size=4),
                      device="cpu", log=None)
    groups = trainer.optimizer.param_groups
    assert [g["name"] for g in groups] == ["all"]   # one group over model.parameters(): no lr multipliers
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.parameters()}
    g = groups[0]
    assert g["nesterov"] and g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 and g["lr"] == 0.01
    # weight decay reaches BN and TAM parameters (the AFNet groups exempt BN and would refuse the TAM taps)
    names = {id(p): n for n, p in model.named_parameters()}
    assert any(".tam." in names[id(p)] or names[id(p)].startswith("baseline_model.tam.") for p in g["params"])
    assert any("bn" in names[id(p)] for p in g["params"])
    with pytest.raises(ValueError, match="has parameters but no optimiser policy"):
        get_optim_policies(model)
    # the AFNet/TSN families keep the official AFNet recipe
    af = afnet_edge.create_model("af_mobilenetv3", num_classes=4, num_frames=4)
    assert TrainConfig.for_model(af) == TrainConfig()
    assert registry.train_recipe(af).sampling == "tsn" and registry.train_recipe(model).sampling == "phase"


def test_cosine_schedule():
    assert [round(cosine_lr_at(e, 0.01, 4), 12) for e in range(5)] == \
        [0.01, round(0.005 * (1 + math.cos(math.pi / 4)), 12), 0.005, round(0.005 * (1 - math.cos(math.pi / 4)), 12),
         0.0]
    assert policy_lr_at(30, 0.01, "step", (25, 45)) == pytest.approx(0.001)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 7, eta_min=0)
    for e in range(7):
        opt.step()
        sched.step()
        assert cosine_lr_at(e + 1, 0.01, 7) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
    with pytest.raises(ValueError, match="lr_policy must be one of"):
        TrainConfig(lr_policy="poly")


def test_narrow_blvnet_learns_the_synthetic_temporal_task():
    """Recipe settings (lr 0.01, Nesterov, cosine per epoch, weight decay on every parameter, no clipping; batch 8
    for the tiny run), phase sampling from 8-frame videos: 72 iterations on 96 clips of two classes that differ only
    in temporal order (left→right vs right→left). Held-out top-1 well above chance (50 %) in eval mode."""
    model = narrow()
    train, val = synthetic_splits(G, 2, 96, 64, S, seed=0, distractor_prob=0.0, video_frames=8, sampling="phase")
    cfg = TrainConfig.for_model(model, epochs=6, batch_size=8, eval_every=0)
    trainer = Trainer(model, train, cfg, device="cpu", log=None)
    trainer.step_log = []
    before = evaluate(model, val, batch_size=16, flops=False)
    history = trainer.fit()
    steps = trainer.step_log
    assert [r["lr"] for r in steps[::12]] == pytest.approx([cosine_lr_at(e, 0.01, 6) for e in range(6)])
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    after = evaluate(model, val, batch_size=16, flops=False)
    assert last < first - 0.1, [h["train_loss"] for h in history]
    assert after["top1"] >= 65.0 and after["top1"] > before["top1"] + 10, (before["top1"], after["top1"])


def test_cli_trains_with_the_family_recipe(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "--model", MODEL, "--base-width", str(WIDTH), "--data", "synthetic", "--classes", "2",
            "--frames", str(G), "--size", str(S), "--train-samples", "8", "--val-samples", "4", "--batch-size", "4",
            "--epochs", "2", "--video-frames", "8", "--no-progress", "--out", out, "--max-steps", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "recipe: bLVNet-TAM release recipe" in text and "nesterov" in text and "cosine to 0 over 2 epochs" in text
    assert "optimiser groups all," in text and "gradient clipping off" in text and "sampling phase" in text
    # resume continues with the same groups (the check compares with the model's own recipe)
    assert main(args[:-2] + ["--resume", os.path.join(out, "last.pth")]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert main(args[:-2] + ["--video-frames", "3", "--out", str(tmp_path / "bad")]) == 2
    assert "--video-frames must be >= the clip's frames T=4" in capsys.readouterr().err
    assert main(args[:-2] + ["--lr-steps", "1", "--out", str(tmp_path / "bad2")]) == 2
    assert "--lr-steps applies to --lr-policy step" in capsys.readouterr().err


def test_cli_list_data_with_the_family_recipe(frames_list, tmp_path, capsys):
    _, flist = frames_list
    assert main(["train", "--model", MODEL, "--base-width", str(WIDTH), "--data", "list", "--list", flist,
                 "--val-list", flist, "--classes", "14", "--frames", str(G), "--size", str(S), "--batch-size", "2",
                 "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "sampling phase" in text and "val top1" in text
