"""A newcomer's path without potholes (issue 11, items 4 and 5): each test failed before its fix.

Short videos, conflicting ``--from-onnx`` options, ``verify --engine`` without a GPU, checkpoints of another T, text
files as checkpoints, the model read from the checkpoint, detached eval masks, help texts, exportable selections only,
``models`` without RST markup, the demo's output folder and timing warnings, warnings after file errors, and the
contact sheet's header.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os

import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, to_official_state_dict
from afnet_edge.cli import main, make_parser
from conftest import needs_av

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx (extra afnet_edge[onnx]) is needed to write ONNX files")


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _video(path, frames: int, height: int = 64, width: int = 80, seed: int = 3):
    from afnet_edge.data.synthetic import SyntheticVideoDataset
    from afnet_edge.video import write_test_video
    sample = SyntheticVideoDataset(1, num_frames=frames, size=(height, width), seed=seed).render(0)
    return write_test_video(path, sample.frames, fps=10)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    return _video(tmp_path_factory.mktemp("v") / "short.mp4", 5)


@pytest.fixture(scope="module")
def square_video(tmp_path_factory):
    return _video(tmp_path_factory.mktemp("v") / "square.mp4", 16, 96, 96, seed=5)


@pytest.fixture(scope="module")
def mobilenet_ckpt(tmp_path_factory):
    """An afnet_edge checkpoint of AF-MobileNetV3, T=4, 3 classes."""
    path = tmp_path_factory.mktemp("c") / "m.pth"
    save_checkpoint(afnet_edge.create_model("af_mobilenetv3", num_classes=3, num_frames=4), path)
    return path


# ------------------------------------------------------------------------------------------------ short videos
@needs_av
def test_short_video_warns_once_and_says_how_frames_were_repeated(capsys, short_video, mobilenet_ckpt):
    rc, out, err = run(capsys, "predict", short_video, "--checkpoint", mobilenet_ckpt, "--frames", "4", "--size",
                       "64", "--json")
    assert rc == 0 and json.loads(out)["repeated_frames"] is None         # 5 frames for T=4: nothing repeated
    rc, out, err = run(capsys, "predict", short_video, "--model", "af_mobilenetv3", "--random-weights",
                       "--frames", "12", "--size", "64",
                       "--json")
    assert rc == 0
    warnings = [line for line in err.splitlines() if "short.mp4" in line and "warning" in line]
    assert len(warnings) == 1, err
    assert "5 frames for T=12" in warnings[0] and "frame 0 is used for all 12 segments" in warnings[0]
    assert json.loads(out)["sampled_frames"] == [0] * 12
    rc, out, err = run(capsys, "predict", short_video, "--model", "af_mobilenetv3", "--random-weights",
                       "--frames", "12", "--size", "64",
                       "--short", "spread", "--json")
    assert rc == 0 and "each repeated 2-3 times in order" in err
    spread = json.loads(out)["sampled_frames"]
    assert spread == sorted(spread) and set(spread) == {0, 1, 2, 3, 4}   # every frame, in order


@needs_av
def test_min_frames_refuses_short_videos(capsys, short_video):
    rc, out, err = run(capsys, "predict", short_video, "--model", "af_mobilenetv3", "--random-weights",
                       "--frames", "12", "--size", "64",
                       "--min-frames", "12")
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--min-frames 12" in lines[0] and "only 5 frames" in lines[0], err


def test_repeated_frames_note():
    from afnet_edge.video import official_val_indices, repeated_frames_note
    assert repeated_frames_note("a.mp4", 40, official_val_indices(40, 12)) is None
    note = repeated_frames_note("dir/a.mp4", 12, official_val_indices(12, 12))  # n == T: official gives frame 0
    assert note.startswith("'a.mp4' has 12 frames for T=12: frame 0 is used for all 12 segments")


# ------------------------------------------------------------------------------------------------ --from-onnx
def _fake_export(path, **meta):
    """A tiny ONNX file carrying afnet_edge export metadata (the graph is irrelevant to the option checks)."""
    import onnx
    from onnx import TensorProto, helper

    from afnet_edge.export.onnx_export import META_PREFIX
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    proto = helper.make_model(g)
    for k, v in meta.items():
        e = proto.metadata_props.add()
        e.key, e.value = META_PREFIX + k, str(v)
    onnx.save(proto, str(path))
    return str(path)


@needs_onnx
@pytest.mark.parametrize("option, value, named", [
    ("--ratio", "0.4", "ratio=0.5"),
    ("--frames", "8", "num_frames=12"),
    ("--batch", "4", "batch=1"),
])
def test_from_onnx_conflicting_options_are_errors(tmp_path, capsys, monkeypatch, option, value, named):
    from afnet_edge.export import cli as export_cli
    onnx_path = _fake_export(tmp_path / "x.onnx", model="af_mobilenetv3", num_frames=12, num_classes=174, ratio=0.5,
                             batch=1, example_batch=1, height=224, width=224)

    def reached(*a, **k):
        raise RuntimeError("engine build reached")
    monkeypatch.setattr(export_cli, "build_engine", reached)
    rc, out, err = run(capsys, "export", "af_mobilenetv3", "--from-onnx", onnx_path, "--trt", tmp_path / "x.engine",
                       option, value)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert f"{option} {value}" in lines[0] and named in lines[0]
    # the same values as the file's are accepted (the build is reached)
    same = {"--ratio": "0.5", "--frames": "12", "--batch": "1"}[option]
    with pytest.raises(RuntimeError, match="engine build reached"):
        main(["export", "af_mobilenetv3", "--from-onnx", onnx_path, "--trt", str(tmp_path / "x.engine"), option,
              same])


# ------------------------------------------------------------------------------------------------ verify --engine
def test_verify_engine_without_gpu_says_so_first(tmp_path, capsys, monkeypatch, mobilenet_ckpt):
    from afnet_edge.export import runtime
    from afnet_edge.export.engine import SIDECAR_FORMAT
    engine = tmp_path / "e.engine"
    engine.write_bytes(os.urandom(64))
    side = {"format": SIDECAR_FORMAT, "model": "af_mobilenetv3", "num_frames": 4, "num_classes": 3, "height": 64,
            "width": 64, "batch": 1, "example_batch": 1, "ratio": 0.5, "flavour": "portable", "precision": "fp32",
            "tensorrt": {"module": "tensorrt", "version": "10.3.0.30"}, "gpu": None, "rtx_targets": None}
    (tmp_path / "e.engine.json").write_text(json.dumps(side))
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 0)  # a machine without a GPU, wherever this runs
    rc, out, err = run(capsys, "verify", "--engine", engine, "--checkpoint", mobilenet_ckpt)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert "no usable CUDA GPU" in lines[0] and "pip install" not in lines[0] and "cuda-python`" not in lines[0]


def test_runner_reports_missing_packages_only_where_a_gpu_is(tmp_path, monkeypatch):
    from afnet_edge.export import runtime
    from afnet_edge.export.engine import SIDECAR_FORMAT
    from afnet_edge.export.trt_backend import TensorRTError
    engine = tmp_path / "e.engine"
    engine.write_bytes(os.urandom(64))
    (tmp_path / "e.engine.json").write_text(json.dumps({"format": SIDECAR_FORMAT, "tensorrt": {"module": "tensorrt"}}))

    def no_tensorrt(backend):
        raise ImportError("TensorRT is not installed: pip install tensorrt")
    monkeypatch.setattr(runtime, "load_tensorrt", no_tensorrt)
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 0)
    with pytest.raises(TensorRTError, match="no usable CUDA GPU"):
        runtime.TRTRunner(str(engine))
    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 1)
    with pytest.raises(ImportError, match="pip install tensorrt"):
        runtime.TRTRunner(str(engine))


def test_cuda_device_count_without_gpu_is_zero():
    from afnet_edge.export.runtime import cuda_device_count
    n = cuda_device_count()
    assert isinstance(n, int) and n >= 0
    if not os.path.exists("/dev/nvidia0"):
        assert n == 0


# ------------------------------------------------------------------------------------------------ checkpoints
@needs_av
def test_checkpoint_of_another_T_names_it_and_the_option(capsys, square_video, tmp_path):
    ckpt = tmp_path / "t8.pth"
    save_checkpoint(afnet_edge.create_model("af_mobilenetv3", num_classes=3, num_frames=8), ckpt)
    rc, out, err = run(capsys, "predict", square_video, "--checkpoint", ckpt, "--frames", "12", "--size", "64")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert "this checkpoint was trained with T=8" in lines[0] and "use --frames 8" in lines[0]
    assert "shape mismatch" not in lines[0]


def test_official_checkpoint_of_another_T_via_the_family_hook(tmp_path):
    """No stored T: the family's checkpoint_info hook reads it from the file (official layout)."""
    torch.save({"state_dict": to_official_state_dict(afnet_edge.create_model("af_resnet50", num_classes=5,
                                                                             num_frames=8))}, tmp_path / "o.pth")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(afnet_edge.create_model("af_resnet50", num_classes=5, num_frames=12), tmp_path / "o.pth")
    assert "trained with T=8" in str(e.value) and "use --frames 8" in str(e.value)
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("text", ["cat dog\n", "not a video\n", "hello world\n", '{"a": 1}\n', "101\n"])
def test_text_file_as_checkpoint_is_one_clear_line(tmp_path, text):
    path = tmp_path / "notes.txt"
    path.write_text(text)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(afnet_edge.create_model("af_mobilenetv3", num_frames=2), path)
    msg = str(e.value)
    assert "is not a PyTorch checkpoint" in msg and len(msg.splitlines()) == 1
    assert "weights_only" not in msg and "PyTorch 2.6" not in msg


@needs_av
def test_predict_takes_the_model_from_the_checkpoint(capsys, square_video, mobilenet_ckpt):
    rc, out, err = run(capsys, "predict", square_video, "--checkpoint", mobilenet_ckpt, "--size", "64", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["model"] == "af_mobilenetv3" and len(res["sampled_frames"]) == 4 and len(res["top"]) == 3


# ------------------------------------------------------------------------------------------------ model output
@pytest.mark.parametrize("execution", ["compact", "masked"])
@pytest.mark.parametrize("selection", ["gumbel", "threshold", "topk"])
def test_eval_masks_are_detached_train_masks_are_not(selection, execution):
    model = afnet_edge.create_model("af_mobilenetv3", num_classes=3, num_frames=4, kernels="torch",
                                    selection=selection, execution=execution, ratio=0.5)
    clip = torch.randn(2, 4, 3, 64, 64)
    out = model(clip)                                          # eval, autograd on
    assert out.logits.requires_grad
    assert out.masks and all(m.grad_fn is None and not m.requires_grad for m in out.masks)
    model.train()
    out = model(clip)
    assert any(m.requires_grad for m in out.masks)             # training keeps the straight-through graph


# ------------------------------------------------------------------------------------------------ command line
def _subparsers() -> dict:
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_command_has_help():
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in _subparsers().items()
               for a in p._actions if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not missing, f"options without help: {missing}"


def test_eval_data_help_is_its_own():
    subs = _subparsers()
    helps = {name: {a.dest: a.help for a in subs[name]._actions} for name in ("train", "eval")}
    for dest in ("val_samples", "data_seed"):
        assert helps["eval"][dest] != helps["train"][dest], dest


def test_export_selection_offers_exportable_policies_only(capsys):
    p = _subparsers()["export"]
    sel = next(a for a in p._actions if a.dest == "selection")
    assert tuple(sel.choices) == ("topk",)
    rc, out, err = run(capsys, "export", "af_mobilenetv3", "--onnx", "x.onnx", "--selection", "threshold")
    assert rc == 2 and "data-dependent shapes" in err


def test_models_output_has_no_rst_markup(capsys):
    rc, out, _ = run(capsys, "models")
    assert rc == 0 and "``" not in out and "tsm=False" in out


def test_random_weights_warning_comes_after_file_errors(capsys, tmp_path):
    rc, out, err = run(capsys, "predict", tmp_path / "missing.mp4")
    assert rc == 2
    assert err.strip().splitlines() == [f"afnet-edge: error: video: no such file '{tmp_path / 'missing.mp4'}'"]


# ------------------------------------------------------------------------------------------------ demo
def test_timing_warnings():
    from afnet_edge.demo import timing_warnings
    assert timing_warnings({"masked": [1.0, 1.05, 1.1]}, load=0.5, cores=2) == []
    loaded = timing_warnings({"masked": [1.0, 1.0]}, load=3.5, cores=2)
    assert len(loaded) == 1 and "load average 3.5 > 2 cores" in loaded[0]
    varied = timing_warnings({"masked": [1.0, 1.0], "compact": [0.5, 0.8, 0.6]}, load=None, cores=2)
    assert len(varied) == 1 and "compact runs varied by 50%" in varied[0]


@needs_av
def test_demo_writes_to_a_temporary_folder_and_warns_on_a_loaded_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    rc, out, err = run(capsys, "demo", "--random-weights", "--model", "af_mobilenetv3", "--size", "64",
                       "--repeats", "2",
                       "--threads", "1")
    assert rc == 0
    assert list(tmp_path.iterdir()) == []                      # nothing written into the current directory
    res_path = out.strip().splitlines()[-1].rsplit("all numbers in ", 1)[1]
    res = json.loads(open(res_path).read())
    assert os.path.dirname(res_path) != str(tmp_path) and os.path.isfile(res["contact_sheet"])
    assert res["load_average"] == 99.0 and any("load average 99.0" in w for w in res["timing_warnings"])
    assert "machine was loaded" in err


# ------------------------------------------------------------------------------------------------ contact sheet
def test_aspect_note():
    from afnet_edge.predict import aspect_note
    assert aspect_note((480, 640)) is None and aspect_note((240, 320)) is None
    note = aspect_note((1080, 1920), crop=224)
    assert "1920x1080 -> 320x240 WITHOUT keeping the aspect ratio" in note and "224x224" in note


@needs_av
def test_contact_sheet_header(capsys, square_video, tmp_path, monkeypatch):
    from PIL import Image

    from afnet_edge import predict as predict_mod
    drawn: list[str] = []
    real = predict_mod.contact_sheet

    def spy(pred, path, thumb=112, *, title=None, notes=(), **kw):
        drawn.extend([title, *notes])
        return real(pred, path, thumb, title=title, notes=notes, **kw)
    monkeypatch.setattr(predict_mod, "contact_sheet", spy)
    png = tmp_path / "sheet.png"
    rc, out, err = run(capsys, "predict", square_video, "--model", "af_mobilenetv3", "--random-weights", "--frames", "6",
                       "--size", "64",
                       "--selection", "topk", "--ratio", "0.5", "--save-png", png, "--json")
    assert rc == 0
    res = json.loads(out)
    assert drawn[0] == "square.mp4 - af_mobilenetv3 T=6 - RANDOM WEIGHTS (classes mean nothing)"
    assert any("96x96 -> 320x240 WITHOUT keeping the aspect ratio" in n for n in drawn[1:])
    assert res["resized_without_aspect"] and res["real_ratio"] == pytest.approx(0.5)
    with Image.open(png) as im:
        assert im.size[0] >= 6 * 64 and im.size[1] > 112 + 5 * 14
        header = im.crop((0, 0, im.size[0], 40)).convert("L")
        assert header.getextrema()[0] < 100                    # the title is drawn (dark text on white)
