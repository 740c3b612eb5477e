"""Official-layout and own-format checkpoints: round trips and every failure mode."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import (CheckpointError, inspect_checkpoint, load_checkpoint, save_checkpoint,
                                   save_official_checkpoint, to_official_state_dict)

KEYS = Path(__file__).parent / "data" / "official_keys"
DTYPES = {"float32": torch.float32, "int64": torch.int64}


def official_state_dict(json_name: str, num_frames: int | None = None, seed: int = 0) -> tuple[dict, dict]:
    """A random state dict laid out exactly as the official JSON table (optionally re-shaped for another T)."""
    ref = json.loads((KEYS / f"{json_name}.json").read_text())
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in ref["state_dict"].items():
        shape = list(v["shape"])
        if num_frames is not None and "conv_gs" in k:
            shape[0] = 2 * num_frames
        if v["dtype"] == "int64":
            sd[k] = torch.randint(0, 1000, shape, generator=g)
        else:
            sd[k] = torch.randn(shape, generator=g)
    return sd, ref


def official_file(tmp_path, json_name, **kw) -> tuple[Path, dict]:
    sd, ref = official_state_dict(json_name, **kw)
    obj = {k: 0 for k in ref["checkpoint_file_top_level_keys"] if not k.startswith("(")}
    obj.update(state_dict=sd, arch="AF_resnet50", epoch=55, best_prec1=48.3)
    path = tmp_path / f"{json_name}.pth.tar"
    torch.save(obj, path)
    return path, sd


@pytest.mark.parametrize("name,json_name", [("af_resnet50", "af_resnet50_tsn"), ("af_resnet101", "af_resnet101_tsn"),
                                            ("af_mobilenetv3", "af_mobilenetv3_tsn")])
def test_official_tsn_checkpoint_round_trip(tmp_path, name, json_name):
    path, sd = official_file(tmp_path, json_name)
    info = inspect_checkpoint(path)
    assert (info["kind"], info["num_frames"], info["num_classes"]) == ("official_tsn", 12, 174)
    model = afnet_edge.create_model(name, num_classes=174, num_frames=12)
    report = load_checkpoint(model, path)
    assert report.kind == "official_tsn" and report.dropped == []
    mine = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(mine[k[len("module."):]], v), k
    assert to_official_state_dict(model).keys() == sd.keys()


@pytest.mark.parametrize("name,json_name,dropped", [
    ("af_resnet50", "af_resnet50_imagenet", ["fc.bias", "fc.weight"]),
    ("af_mobilenetv3", "af_mobilenetv3_imagenet", ["fc.3.bias", "fc.3.weight"])])
def test_official_imagenet_backbone_file(tmp_path, name, json_name, dropped):
    sd, _ = official_state_dict(json_name)
    if name == "af_mobilenetv3":  # the JSON lists the video head; an ImageNet file has a 1000-class one
        sd["module.fc.3.weight"] = torch.randn(1000, 1280)
        sd["module.fc.3.bias"] = torch.randn(1000)
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": sd}, path)
    model = afnet_edge.create_model(name, num_classes=174, num_frames=12)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if "new_fc" in k or "fc.3" in k}
    report = load_checkpoint(model, path)
    assert report.kind == "official_imagenet"
    assert report.dropped == dropped
    back = model.base_model.state_dict()
    for k, v in sd.items():
        if k[len("module."):] in back and k[len("module."):] not in dropped:
            assert torch.equal(back[k[len("module."):]], v)
    for k, v in model.state_dict().items():  # the video head is untouched
        if k in head_before:
            assert torch.equal(v, head_before[k])


def test_own_format_round_trip_and_meta(tmp_path):
    a = afnet_edge.create_model("af_mobilenetv3", num_classes=9, num_frames=6)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    path = tmp_path / "own.pt"
    save_checkpoint(a, path, epoch=3, note="hello")
    info = inspect_checkpoint(path)
    assert info == {"kind": "afnet_edge", "num_tensors": len(a.state_dict()), "num_frames": 6, "num_classes": 9,
                    "arch": "af_mobilenetv3", "tsm": True, "options": {}}
    b = afnet_edge.create_model("af_mobilenetv3", num_classes=9, num_frames=6)
    report = load_checkpoint(b, path)
    assert report.meta["epoch"] == 3 and report.meta["note"] == "hello"
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not list(tmp_path.glob(".tmp_ckpt_*"))


def test_official_writer_is_read_back_as_official(tmp_path):
    a = afnet_edge.create_model("af_resnet50", num_classes=5, num_frames=4)
    path = tmp_path / "ckpt.pth.tar"
    save_official_checkpoint(a, path, epoch=7)
    obj = torch.load(path, weights_only=True)
    assert obj["epoch"] == 7 and all(k.startswith("module.") for k in obj["state_dict"])
    b = afnet_edge.create_model("af_resnet50", num_classes=5, num_frames=4)
    assert load_checkpoint(b, path).kind == "official_tsn"
    with pytest.raises(ValueError, match="unknown entries"):
        save_official_checkpoint(a, path, accuracy=1)


def test_wrong_num_frames_names_the_navigation(tmp_path):
    path, _ = official_file(tmp_path, "af_resnet50_tsn")  # T = 12
    model = afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=8)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(model, path)
    msg = str(e.value)
    assert "conv_gs.weight" in msg and "num_frames=12" in msg and "num_frames=8" in msg


def test_missing_and_unexpected_keys_are_named(tmp_path):
    sd, _ = official_state_dict("af_resnet50_tsn")
    del sd["module.base_model.layer2.fusion.0.bn3.bias"]
    sd["module.base_model.layer9.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "c.pth")
    model = afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=12)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(model, tmp_path / "c.pth")
    assert "layer2.fusion.0.bn3.bias" in str(e.value) and "layer9.weight" in str(e.value)
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k])


def test_wrong_classes_and_wrong_model(tmp_path):
    path, _ = official_file(tmp_path, "af_resnet50_tsn")
    with pytest.raises(CheckpointError, match="new_fc.weight"):
        load_checkpoint(afnet_edge.create_model("af_resnet50", num_classes=10, num_frames=12), path)
    with pytest.raises(CheckpointError, match="missing key"):
        load_checkpoint(afnet_edge.create_model("af_resnet101", num_classes=174, num_frames=12), path)
    own = tmp_path / "own.pt"
    save_checkpoint(afnet_edge.create_model("af_mobilenetv3", num_frames=12), own)
    with pytest.raises(CheckpointError, match="'af_mobilenetv3' model, not 'af_resnet50'"):
        load_checkpoint(afnet_edge.create_model("af_resnet50", num_frames=12), own)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, I am not a checkpoint")
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=2)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(model, text)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(model, tmp_path / "missing.pth")
    torch.save({"epoch": 3}, tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        load_checkpoint(model, tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(model, tmp_path)


def test_tsm_wrapper_names_map_onto_dense_baseline(tmp_path):
    src = afnet_edge.create_model("tsm_resnet50", num_classes=3, num_frames=8)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    sd = {("module." + k).replace(".conv1.weight", ".conv1.net.weight") if ".layer" in "." + k else "module." + k: v
          for k, v in src.state_dict().items()}
    assert any(".conv1.net." in k for k in sd)
    torch.save({"state_dict": sd}, tmp_path / "tsm.pth")
    dst = afnet_edge.create_model("tsm_resnet50", num_classes=3, num_frames=8)
    load_checkpoint(dst, tmp_path / "tsm.pth")
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_pickled_python_objects_are_refused_with_advice(tmp_path):
    import datetime
    torch.save({"state_dict": {"w": torch.zeros(1)}, "when": datetime.datetime(2022, 11, 1)}, tmp_path / "obj.pt")
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=2)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(model, tmp_path / "obj.pt")
    (tmp_path / "short.txt").write_text("not a video")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(model, tmp_path / "short.txt")
