"""The shipped demo model and the defaults that use it (issue "useful out of the box").

* ``width``: the reduced-width ResNets the demo model is built from (channel counts, bad widths, checkpoints that
  carry their width so every command rebuilds the right model without being told);
* the demo model itself: its card, its float16 file, and that it does what its card says on clips it never saw
  (right classes; informative frames sent to the focal branch more often than distractors);
* the defaults: ``predict``/``export``/``verify``/``demo`` use it when no checkpoint is given and say so in one line;
  random weights only with ``--random-weights``.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import inspect_checkpoint, save_official_checkpoint
from afnet_edge.cli import main
from afnet_edge.cli_args import build_model
from afnet_edge.data import SyntheticVideoDataset
from afnet_edge.demo_model import DEMO_CHECKPOINT, demo_card, load_demo_model
from afnet_edge.video import normalize_frames, write_test_video

try:
    import av  # noqa: F401
    HAVE_AV = True
except ImportError:  # pragma: no cover
    HAVE_AV = False
needs_av = pytest.mark.skipif(not HAVE_AV, reason="PyAV not installed")

HELD_OUT_SEED = 4242  # neither a training (100 + s) nor the validation (999) seed of the demo model


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------------------- width
@pytest.mark.parametrize("name", ["af_resnet50", "tsm_resnet50", "tsn_resnet50"])
def test_width_scales_every_channel_count(name):
    full = afnet_edge.create_model(name, num_classes=5, num_frames=4)
    quarter = afnet_edge.create_model(name, num_classes=5, num_frames=4, width=0.25)
    shapes = {k: v.shape for k, v in full.state_dict().items()}
    for k, v in quarter.state_dict().items():
        assert k in shapes                                          # same module names as the official model
        if k.endswith("conv1.weight") and k.startswith("base_model.conv1"):
            assert v.shape[0] == shapes[k][0] // 4 == 16
    assert quarter.new_fc.in_features == 512 and full.new_fc.in_features == 2048
    clip = torch.randn(2, 4, 3, 64, 64)
    assert quarter(clip).logits.shape == (2, 5)


@pytest.mark.parametrize("width", [0.3, 0.1, 1 / 3])
def test_width_that_breaks_the_channel_arithmetic_is_refused(width):
    with pytest.raises(ValueError, match="width"):
        afnet_edge.create_model("af_resnet50", num_classes=5, num_frames=4, width=width)


def _args(**kw):
    base = dict(model=None, checkpoint=None, frames=None, classes=None, no_tsm=False, width_mult=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("official", [False, True])
def test_checkpoints_carry_their_width(tmp_path, official):
    model = afnet_edge.create_model("af_resnet50", num_classes=5, num_frames=4, width=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    path = str(tmp_path / "w.pth")
    (save_official_checkpoint if official else afnet_edge.save_checkpoint)(model, path)
    info = inspect_checkpoint(path)
    assert info["options"] == {"width": 0.5}
    rebuilt = build_model(_args(model="af_resnet50" if official else None, checkpoint=path))
    assert rebuilt.width == 0.5 and rebuilt.num_frames == 4 and rebuilt.num_classes == 5
    for k, v in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[k], v), k
    with pytest.raises(afnet_edge.CheckpointError):               # a width given against the file: not loaded
        build_model(_args(model="af_resnet50", checkpoint=path, width_mult=0.25))


def test_full_width_checkpoint_reports_width_one(tmp_path):
    model = afnet_edge.create_model("tsm_resnet50", num_classes=3, num_frames=4)
    path = str(tmp_path / "dense.pth")
    afnet_edge.save_checkpoint(model, path)
    assert inspect_checkpoint(path)["options"] == {"width": 1.0}


# ---------------------------------------------------------------------------------------------------- the model
def test_demo_card_and_file():
    card = demo_card()
    assert card["model"] == "af_resnet50" and card["options"] == {"width": 0.25}
    assert len(card["class_names"]) == card["num_classes"]
    assert os.path.getsize(DEMO_CHECKPOINT) < 5e6                  # "a few MB" in the package
    obj = torch.load(DEMO_CHECKPOINT, map_location="cpu", weights_only=True)
    floats = [v for v in obj["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    model = load_demo_model()
    assert not model.training and model.num_frames == card["num_frames"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _held_out(card, n):
    return SyntheticVideoDataset(n, num_frames=card["num_frames"], size=card["size"], num_classes=card["num_classes"],
                                 seed=HELD_OUT_SEED, distractor_prob=card["dataset"]["distractor_prob"])


def test_demo_model_classifies_clips_it_never_saw_and_skips_distractors():
    card = demo_card()
    ds = _held_out(card, 48)
    model = load_demo_model(selection="threshold")
    clips = torch.stack([ds[i][0] for i in range(len(ds))])
    labels = torch.tensor([ds.label_of(i) for i in range(len(ds))])
    distractor = torch.from_numpy(np.stack([ds.render(i).distractor for i in range(len(ds))]))
    with torch.no_grad():
        out = model(clips)
    acc = float((out.logits.argmax(1) == labels).float().mean())
    kept = torch.stack(out.masks).float().mean(0)               # (B, T): share of modules sending the frame to focal
    kept_inf, kept_dis = float(kept[~distractor].mean()), float(kept[distractor].mean())
    chance = 1 / card["num_classes"]
    assert acc >= chance + 0.5 * (card["results"]["top1"] / 100 - chance), (acc, card["results"]["top1"])
    # what the card (and the README through it) claims about the selection holds on clips it never saw
    res = card["results"]
    assert abs(kept_inf - res["kept_informative"]) < 0.1 and abs(kept_dis - res["kept_distractor"]) < 0.1, \
        (kept_inf, kept_dis, res)
    ratio = float(torch.stack(out.masks).float().mean())
    assert abs(ratio - res["real_ratio"]) < 0.1, (ratio, res["real_ratio"])
    # the point of the demo model: it looks at the informative frames, not at the distractors
    assert kept_inf >= 2 * kept_dis, (kept_inf, kept_dis)


def test_demo_model_compact_equals_masked():
    card = demo_card()
    ds = _held_out(card, 4)
    clips = torch.stack([ds[i][0] for i in range(4)])
    model = load_demo_model()
    with torch.no_grad():
        out = model(clips)
        masked = model.configure(execution="masked")(clips, masks=out.masks).logits
    torch.testing.assert_close(out.logits, masked, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------------------------------- defaults
@pytest.fixture(scope="module")
def demo_video(tmp_path_factory):
    card = demo_card()
    ds = _held_out(card, 8)
    i = next(i for i in range(len(ds)) if ds.render(i).distractor.sum() >= 1)
    sample = ds.render(i, num_frames=3 * card["num_frames"])
    path = str(tmp_path_factory.mktemp("demo") / "held_out.mp4")
    write_test_video(path, sample.frames, fps=12)
    return path, card["class_names"][sample.label]


@needs_av
def test_predict_without_checkpoint_uses_the_demo_model(capsys, demo_video, tmp_path):
    video, truth = demo_video
    png = tmp_path / "sheet.png"
    rc, out, err = run(capsys, "predict", video, "--json", "--save-png", png)
    assert rc == 0, err
    res = json.loads(out)
    assert res["demo_model"] is True and res["random_weights"] is False
    assert "using the demo model" in err and "knows only its" in err and "RANDOM" not in err
    notes = [line for line in err.splitlines() if "demo model" in line]
    assert len(notes) == 2                                       # one line says which weights, one what it knows
    assert res["top"][0]["name"] == truth, (res["top"], truth)
    assert os.path.getsize(png) > 0


@needs_av
def test_random_weights_only_when_asked(capsys, demo_video):
    video, _ = demo_video
    rc, out, err = run(capsys, "predict", video, "--random-weights", "--size", "64", "--frames", "4", "--json")
    assert rc == 0 and json.loads(out)["random_weights"] is True and "RANDOM" in err
    rc, out, err = run(capsys, "predict", video, "--model", "af_mobilenetv3")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--model af_mobilenetv3" in err and "--random-weights" in err
    rc, out, err = run(capsys, "predict", video, "--random-weights", "--checkpoint", DEMO_CHECKPOINT)
    assert rc == 2 and "--random-weights" in err and len(err.strip().splitlines()) == 1


def test_export_and_verify_default_to_the_demo_model(capsys, tmp_path):
    onnx = tmp_path / "demo.onnx"
    rc, out, err = run(capsys, "export", "--onnx", onnx)
    assert rc == 0, err
    assert "using the demo model" in err
    meta = afnet_edge.export.read_metadata(str(onnx))
    assert meta["height"] == demo_card()["size"] and os.path.basename(meta["checkpoint"]) == "demo_model.pth"
    rc, out, err = run(capsys, "verify", "--onnx", onnx, "--rounds", "1")
    assert rc == 0, err
    assert "exported from the demo model" in err and "OK" in out


@needs_av
def test_demo_command_classifies_held_out_clips(capsys, tmp_path):
    rc, out, err = run(capsys, "demo", "--out", tmp_path, "--clips", "3", "--repeats", "1", "--threads", "1")
    assert rc == 0, err
    res = json.loads((tmp_path / "demo.json").read_text())
    assert len(res["clips"]) == 3 and res["correct"] >= 2, res["clips"]
    assert res["max_abs_diff_compact_vs_masked"] <= 1e-5
    assert all(os.path.isfile(c["contact_sheet"]) for c in res["clips"])
    assert "correct" in out and "demo model" in err
    rc, out, err = run(capsys, "demo", "--out", tmp_path, "--size", "64")
    assert rc == 2 and "--random-weights" in err
