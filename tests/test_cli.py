"""CLI smoke tests: models, predict on a real (generated) video file, demo, and one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import afnet_edge
from afnet_edge.cli import main
from conftest import needs_av

# only the tests that read or write a video file need PyAV; the rest of the CLI is checked without it


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from afnet_edge.data.synthetic import SyntheticVideoDataset
    from afnet_edge.video import write_test_video
    sample = SyntheticVideoDataset(1, num_frames=20, size=(64, 80), seed=3).render(0)
    return write_test_video(tmp_path_factory.mktemp("v") / "clip.mp4", sample.frames, fps=10)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_models_lists_every_model(capsys):
    rc, out, _ = run(capsys, "models")
    assert rc == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == afnet_edge.list_models()


@needs_av
def test_predict_json_on_a_real_video(capsys, video, tmp_path):
    png = tmp_path / "sheet.png"
    rc, out, err = run(capsys, "predict", str(video), "--model", "af_mobilenetv3", "--random-weights", "--frames", "4",
                       "--size", "64", "--selection", "topk", "--ratio", "0.5", "--json", "--save-png", str(png))
    assert rc == 0
    res = json.loads(out)
    assert "RANDOM" in err                                     # no checkpoint: says so
    assert res["random_weights"] is True and res["video_frames"] == 20
    assert len(res["sampled_frames"]) == 4 and len(res["top"]) == 5
    assert abs(sum(t["prob"] for t in res["top"])) <= 1.0 + 1e-6
    assert list(res["selected"]) == ["list_gen2.0", "list_gen2.1", "list_gen3.0", "list_gen3.1", "list_gen3.2"]
    for frames in res["selected"].values():                    # topk 0.5 of 4 frames: 2 per module
        assert len(frames) == 2 and set(frames) <= set(res["sampled_frames"])
    from PIL import Image
    with Image.open(png) as im:
        assert im.size[0] > 4 * 64 and im.size[1] > 64


@needs_av
def test_predict_with_checkpoint_and_labels(capsys, video, tmp_path):
    model = afnet_edge.create_model("af_mobilenetv3", num_classes=3, num_frames=4)
    with torch.no_grad():
        model.base_model.fc[3].bias.copy_(torch.tensor([0.0, 9.0, 0.0]))   # class 1 wins whatever the frames
    ckpt = tmp_path / "m.pt"
    afnet_edge.save_checkpoint(model, ckpt)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    rc, out, err = run(capsys, "predict", str(video), "--model", "af_mobilenetv3", "--checkpoint", str(ckpt),
                       "--labels", str(labels), "--size", "64", "--topk", "2")
    assert rc == 0 and "RANDOM" not in err
    lines = out.splitlines()
    assert lines[1] == "top-2:" and "dog (1)" in lines[2]
    assert "frames processed by the focal branch" in out


@pytest.mark.parametrize("argv,match", [
    (["predict", "NOFILE.mp4"], "no such file"),
    pytest.param(["predict", "__TEXT__"], "cannot decode", marks=needs_av),
    pytest.param(["predict", "__VIDEO__", "--ratio", "1.5"], "--ratio", marks=needs_av),
    pytest.param(["predict", "__VIDEO__", "--model", "resnet9"], "--model", marks=needs_av),
    pytest.param(["predict", "__VIDEO__", "--frames", "0"], "--frames", marks=needs_av),
    pytest.param(["predict", "__VIDEO__", "--model", "af_mobilenetv3", "--no-tsm", "--random-weights"], "--no-tsm",
                 marks=needs_av),
    pytest.param(["predict", "__VIDEO__", "--checkpoint", "__TEXT__"], "not a PyTorch checkpoint", marks=needs_av),
    (["flops", "af_resnet50", "--ratio", "0"], "--ratio"),
    (["nonsense"], "invalid choice"),
])
def test_errors_are_one_line_with_exit_code_2(capsys, tmp_path, request, argv, match):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    video = request.getfixturevalue("video") if "__VIDEO__" in argv else None    # written only where needed
    argv = [str(text) if a == "__TEXT__" else str(video) if a == "__VIDEO__" else a for a in argv]
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if "warning" not in line]
    assert len(lines) == 1 and match in lines[0], err


def test_predict_rejects_non_finite_frames():
    from afnet_edge.predict import check_finite
    clip = torch.randn(4, 3, 32, 32)
    clip[2, 1, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        check_finite(clip, "VIDEO")


def test_console_script_runs_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-m", "afnet_edge.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("afnet-edge ")


@needs_av
def test_demo_end_to_end(tmp_path, capsys):
    rc, out, _ = run(capsys, "demo", "--out", str(tmp_path), "--random-weights", "--model", "af_mobilenetv3", "--size", "64",
                     "--repeats", "1", "--threads", "1")
    assert rc == 0
    res = json.loads((tmp_path / "demo.json").read_text())
    assert res["max_abs_diff_compact_vs_masked"] <= 1e-5
    assert abs(res["real_ratio"] - 5 / 12) < 1e-6              # topk 0.4 of 12 frames = 5 per module
    assert res["latency_masked_s"] > 0 and res["latency_compact_s"] > 0
    assert (tmp_path / "contact_sheet.png").stat().st_size > 0 and (tmp_path / "synthetic_clip.mp4").exists()
    assert "promised" in out
