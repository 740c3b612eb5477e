"""Model construction, forward contract, input layouts, configuration and bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import afnet_edge
from conftest import randomize_model

KEYS = Path(__file__).parent / "data" / "official_keys"


def test_list_models():
    assert afnet_edge.list_models() == sorted(
        ["adafocus_v1", "adafocus_v1_tsm", "adafocus_v2_mn2", "adafocus_v2_rn", "adafocus_v2_tsm", "af_mobilenetv3", "af_resnet101",
         "af_resnet50", "blvnet_tam_r101", "blvnet_tam_r50", "fullvideo_tsm_r18", "fullvideo_tsm_r50", "tsm_resnet50",
         "tsn_resnet50"])


@pytest.mark.parametrize("name,json_name,nav", [("af_resnet50", "af_resnet50_tsn", 10),
                                                 ("af_resnet101", "af_resnet101_tsn", 27),
                                                 ("af_mobilenetv3", "af_mobilenetv3_tsn", 5)])
def test_state_dict_matches_official_layout(name, json_name, nav):
    ref = json.loads((KEYS / f"{json_name}.json").read_text())
    model = afnet_edge.create_model(name, num_classes=ref["num_class"], num_frames=ref["num_segments"])
    sd = model.state_dict()
    official = {k[len("module."):]: v["shape"] for k, v in ref["state_dict"].items()}
    assert set(sd) == set(official)
    assert {k: list(v.shape) for k, v in sd.items()} == official
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters"]
    assert model.num_navigation == nav


def test_tsm_flag_does_not_change_keys():
    a = afnet_edge.create_model("af_resnet50", tsm=True).state_dict()
    b = afnet_edge.create_model("af_resnet50", tsm=False).state_dict()
    assert list(a) == list(b)
    with pytest.raises(ValueError, match="always applies TSM"):
        afnet_edge.create_model("af_mobilenetv3", tsm=False)


@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3", "tsn_resnet50", "tsm_resnet50"])
def test_forward_contract_and_layouts(name):
    T = 3
    model = randomize_model(afnet_edge.create_model(name, num_classes=6, num_frames=T))
    clip = torch.randn(2, T, 3, 64, 64)
    with torch.no_grad():
        out = model(clip)
        official = model(clip.reshape(2, 3 * T, 64, 64))
        frames = model(clip.reshape(2 * T, 3, 64, 64))
    assert out.logits.shape == (2, 6)
    assert len(out.masks) == model.num_navigation
    for m in out.masks:
        assert m.shape == (2, T)
    assert torch.equal(out.logits, official.logits) and torch.equal(out.logits, frames.logits)


def test_logits_are_mean_of_per_frame_logits():
    T = 3
    model = randomize_model(afnet_edge.create_model("tsn_resnet50", num_classes=4, num_frames=T))
    clip = torch.randn(2, T, 3, 64, 64)
    with torch.no_grad():
        out = model(clip).logits
        per_frame = model.new_fc(model.base_model(clip.reshape(-1, 3, 64, 64)))
    assert torch.allclose(out, per_frame.view(2, T, 4).mean(1), atol=1e-6)


def test_tsm_changes_dense_output():
    tsn = randomize_model(afnet_edge.create_model("tsn_resnet50", num_classes=4, num_frames=4))
    tsm = afnet_edge.create_model("tsm_resnet50", num_classes=4, num_frames=4)
    tsm.load_state_dict(tsn.state_dict())
    clip = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(tsn(clip).logits, tsm(clip).logits)


def test_default_configuration_and_create_model_options():
    m = afnet_edge.create_model("af_mobilenetv3", num_frames=8, selection="topk", ratio=0.25, execution="masked")
    assert not m.training
    assert m.config() == {"execution": "masked", "selection": "topk", "ratio": 0.25, "kernels": "auto",
                          "temperature": 0.01, "plan": "eager"}
    d = afnet_edge.create_model("af_resnet50")
    assert (d.execution, d.selection, d.num_frames, d.num_classes) == ("compact", "threshold", 12, 174)


@pytest.mark.parametrize("kwargs,match", [
    ({"execution": "fast"}, "execution"), ({"selection": "random"}, "selection"), ({"ratio": 0.0}, "ratio"),
    ({"ratio": 1.5}, "ratio"), ({"ratio": math.nan}, "ratio"), ({"ratio": "half"}, "ratio"),
    ({"kernels": "cuda"}, "kernels"), ({"temperature": 0}, "temperature")])
def test_configure_rejects_bad_values(kwargs, match):
    m = afnet_edge.create_model("af_mobilenetv3", num_frames=2)
    with pytest.raises(ValueError, match=match):
        m.configure(**kwargs)


def test_create_model_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        afnet_edge.create_model("resnet9")
    with pytest.raises(TypeError, match="create_model"):
        afnet_edge.create_model("tsn_resnet50", tsm=True)
    with pytest.raises(ValueError, match="num_frames"):
        afnet_edge.create_model("af_resnet50", num_frames=0)


@pytest.fixture(scope="module")
def small():
    return afnet_edge.create_model("af_mobilenetv3", num_classes=3, num_frames=4)


@pytest.mark.parametrize("clip,exc,match", [
    (torch.randn(4, 3, 64), ValueError, "rank"),
    (torch.randn(1, 5, 3, 64, 64), ValueError, "num_frames=4"),
    (torch.randn(1, 4, 1, 64, 64), ValueError, "3 colour channels"),
    (torch.randn(1, 7, 64, 64), ValueError, r"\(B, 12, H, W\)"),
    (torch.randn(6, 3, 64, 64), ValueError, "whole clips"),
    (torch.randn(1, 4, 3, 16, 64), ValueError, "at least 32"),
    (torch.randint(0, 255, (1, 4, 3, 64, 64), dtype=torch.uint8), TypeError, "floating-point"),
    (torch.randn(1, 4, 3, 64, 64, dtype=torch.float64), TypeError, "dtype"),
    (torch.randn(0, 4, 3, 64, 64), ValueError, "batch size 0"),
    ([[1.0]], TypeError, "torch.Tensor"),
])
def test_bad_input_is_rejected_before_any_conv(small, clip, exc, match):
    with pytest.raises(exc, match=match):
        small(clip)


def test_bad_masks_are_rejected(small):
    clip = torch.randn(2, 4, 3, 64, 64)
    good = [torch.ones(2, 4) for _ in range(5)]
    with pytest.raises(ValueError, match="expected 5, got 4"):
        small(clip, masks=good[:4])
    with pytest.raises(ValueError, match=r"masks\[1\] must have shape"):
        small(clip, masks=[good[0], torch.ones(2, 3)] + good[2:])
    with pytest.raises(ValueError, match="only 0 and 1"):
        small(clip, masks=[torch.full((2, 4), 0.5)] + good[1:])
    with pytest.raises(TypeError, match="list"):
        small(clip, masks=torch.ones(5, 2, 4))
