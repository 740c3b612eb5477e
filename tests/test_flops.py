"""FLOPs: the official accounting (spec §9 table, per-image numbers, baselines) and the executed MACs, the latter
checked module by module against forward hooks on real compact / masked runs."""
from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

import afnet_edge
from afnet_edge import cli, model_commands
from afnet_edge.flops import (count_flops, executed_macs_per_module, format_flops, measure_macs,
                              official_flops_table)

from conftest import randomize_model

REL = 0.005  # the spec table is given to 3-4 significant digits; the task asks for 0.5 %


def close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * abs(b)


def as_printed(a: float, spec: float) -> bool:
    """``a`` agrees with the spec value to the digits the spec prints (± 0.6 units of its last digit)."""
    decimals = len(repr(spec).split(".")[1]) if "." in repr(spec) else 0
    return abs(a - spec) <= 0.6 * 10 ** -decimals


# ------------------------------------------------------------------------------------------ official accounting
# Spec §9: F(r=0), F(r=1) and the slope, per clip at 224².
SPEC_TABLE = [
    ("af_resnet50", 8, 14.752, 23.127, 8.375),
    ("af_resnet50", 12, 22.128, 34.691, 12.562),
    ("af_resnet101", 12, 24.920, 59.755, 34.836),
    ("af_mobilenetv3", 12, 2.088, 2.321, 0.233),
]


@pytest.mark.parametrize("name,T,r0,r1,slope", SPEC_TABLE)
def test_official_table_matches_spec(name, T, r0, r1, slope):
    t = official_flops_table(name, T)
    assert (t["model"], t["num_frames"], t["image_size"]) == (name, T, 224)
    for key, spec in (("official_gflops_r0", r0), ("official_gflops_r1", r1), ("official_gflops_slope", slope)):
        assert close(t[key], spec), (key, t)
        assert as_printed(t[key], spec), (key, t)  # much tighter than 0.5 %: every quirk shows


@pytest.mark.parametrize("name,per_image", [("af_resnet50", 2.889), ("af_resnet101", 4.977),
                                            ("af_mobilenetv3", 0.1945)])
def test_per_image_numbers_with_imagenet_head(name, per_image):
    t = official_flops_table(name, 1, head="imagenet")
    assert close(t["official_gflops_r1"], per_image), t
    assert as_printed(t["official_gflops_r1"], per_image), t
    # the video head differs from the ImageNet one (ResNet: 2048·2048 Dropout quirk; MobileNet: 174 classes)
    assert official_flops_table(name, 1)["official_gflops_r1"] != t["official_gflops_r1"]


def test_resnet_video_head_counts_dropout_as_2048x2048():
    """The official AF-ResNet count uses the Dropout-replaced fc (2048·2048 per frame) and never new_fc."""
    a = count_flops(afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=12), ratio=1.0)
    b = count_flops(afnet_edge.create_model("af_resnet50", num_classes=10, num_frames=12), ratio=1.0)
    assert a["official_gflops"] == b["official_gflops"]                      # classes do not enter
    head = a["per_stage"]["head"]["official_gflops"]
    assert math.isclose(head, 12 * (2048 * 2048 + 2048 * 7 * 7) / 1e9, rel_tol=1e-12)
    assert a["executed_gmacs_compact"] > b["executed_gmacs_compact"]         # the real new_fc is executed


def test_navigation_conv_gs_quirk_is_quadratic_in_T():
    """Official: conv_gs (4T MACs per clip) is counted per frame, 4T² per clip; everything else is linear in T.
    Executed MACs are exactly linear in T."""
    f8, f12 = official_flops_table("af_resnet50", 8), official_flops_table("af_resnet50", 12)
    L = 10
    for key in ("official_gflops_r0", "official_gflops_r1"):
        assert math.isclose(f12[key] - 1.5 * f8[key], L * 4 * (12 ** 2 - 1.5 * 8 ** 2) / 1e9, abs_tol=1e-12)
    e8 = count_flops(afnet_edge.create_model("af_resnet50", num_frames=8), ratio=1.0)
    e12 = count_flops(afnet_edge.create_model("af_resnet50", num_frames=12), ratio=1.0)
    for key in ("executed_gmacs_masked", "executed_gmacs_r0"):
        assert math.isclose(e12[key], 1.5 * e8[key], rel_tol=1e-13)


def test_count_flops_on_real_model_equals_table():
    model = afnet_edge.create_model("af_resnet50", num_frames=12)
    res = count_flops(model, ratio=0.4)
    assert close(res["official_gflops"], 22.128 + 12.562 * 0.4)
    json.dumps(res)  # JSON-serialisable


def test_official_is_affine_in_ratio():
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=12)
    r0 = count_flops(model, ratio=1.0)["official_gflops_r0"]
    slope = count_flops(model, ratio=1.0)["official_gflops_slope"]
    g = torch.Generator().manual_seed(7)
    prev = None
    for r in sorted(torch.rand(5, generator=g).clamp_min(1e-3).tolist()):
        f = count_flops(model, ratio=r)["official_gflops"]
        assert math.isclose(f, r0 + slope * r, rel_tol=1e-12)
        assert prev is None or f > prev
        prev = f


def test_official_with_masks_uses_batch_mean_per_block():
    """Masks with the same whole-batch mean r in every block give the official count at r, whatever their layout."""
    model = afnet_edge.create_model("af_resnet50", num_frames=8)
    L = model.num_navigation
    g = torch.Generator().manual_seed(3)
    masks = []
    for _ in range(L):  # 3 clips × 8 frames, exactly 6 selected in each block, at random positions
        m = torch.zeros(24)
        m[torch.randperm(24, generator=g)[:6]] = 1
        masks.append(m.view(3, 8))
    res = count_flops(model, masks=masks)
    assert res["ratio_source"] == "masks" and res["ratio"] == 0.25
    assert math.isclose(res["official_gflops"], count_flops(model, ratio=0.25)["official_gflops"], rel_tol=1e-12)
    assert res["selected_frames_per_clip"] == [2.0] * L


def test_tsm_does_not_change_counts():
    on = count_flops(afnet_edge.create_model("af_resnet50", num_frames=8, tsm=True), ratio=0.3)
    off = count_flops(afnet_edge.create_model("af_resnet50", num_frames=8, tsm=False), ratio=0.3)
    assert on["tsm"] and not off["tsm"]
    for k in ("official_gflops", "official_gflops_r0", "official_gflops_r1", "executed_gmacs_compact",
              "executed_gmacs_masked", "executed_gmacs_r0", "per_stage"):
        assert on[k] == off[k], k
    tsm = count_flops(afnet_edge.create_model("tsm_resnet50", num_frames=8))
    tsn = count_flops(afnet_edge.create_model("tsn_resnet50", num_frames=8))
    assert tsm["official_gflops"] == tsn["official_gflops"]
    assert tsm["executed_gmacs_compact"] == tsn["executed_gmacs_compact"]


def test_dense_baseline_is_32_7_gflops():
    res = count_flops(afnet_edge.create_model("tsm_resnet50", num_frames=8))
    assert close(res["official_gflops"], 32.7)
    assert res["official_gflops_r0"] == res["official_gflops_r1"] == res["official_gflops"]
    assert res["executed_gmacs_compact"] == res["executed_gmacs_masked"] == res["official_gflops"]
    assert res["selected_frames_per_clip"] == []
    # ResNet-50 per image, 1000-class fc: the familiar 4.09 GMACs (performance-notes)
    assert close(official_flops_table("tsm_resnet50", 1, head="imagenet")["official_gflops_r1"], 4.09)


# ---------------------------------------------------------------------------------------------- executed MACs
@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3"])
def test_executed_masks_all_ones_and_zeros(name):
    model = afnet_edge.create_model(name, num_frames=6)
    L, T = model.num_navigation, 6
    ones = count_flops(model, masks=[torch.ones(2, T)] * L)
    zeros = count_flops(model, masks=[torch.zeros(2, T)] * L)
    assert math.isclose(ones["executed_gmacs_compact"], ones["executed_gmacs_masked"], rel_tol=1e-12)
    assert math.isclose(zeros["executed_gmacs_compact"], zeros["executed_gmacs_r0"], rel_tol=1e-12)
    assert math.isclose(zeros["official_gflops"], zeros["official_gflops_r0"], rel_tol=1e-12)
    assert math.isclose(ones["official_gflops"], ones["official_gflops_r1"], rel_tol=1e-12)
    body = sum(ones["focal_body_gmacs_per_frame"])
    assert body > 0
    assert math.isclose(ones["executed_gmacs_masked"] - ones["executed_gmacs_r0"], T * body, rel_tol=1e-9)
    # a ratio selects k = ceil(r·T) frames per clip, as topk does
    half = count_flops(model, ratio=0.4)
    assert half["selected_frames_per_clip"] == [3.0] * L
    assert math.isclose(half["executed_gmacs_compact"], half["executed_gmacs_r0"] + 3 * body, rel_tol=1e-9)
    for st in ones["per_stage"].values():
        assert st["executed_gmacs_compact"] <= st["executed_gmacs_masked"] + 1e-15


def _force_navigation(model, select: bool) -> None:
    """Make every navigation module choose all frames (select) or none, by its conv_gs bias."""
    from afnet_edge.layers.navigation import Navigation
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Navigation):
                m.conv_gs.weight.zero_()
                m.conv_gs.bias[0::2] = -50.0 if select else 50.0
                m.conv_gs.bias[1::2] = 50.0 if select else -50.0


def _hooks_vs_analytic(model, clip, **kw):
    meas = measure_macs(model, clip)
    if "masks" not in kw and "ratio" not in kw:
        kw["masks"] = meas["masks"]
    ana = executed_macs_per_module(model, clip.shape[-1], **kw)
    ana = {k: v for k, v in ana.items() if v != 0}  # a focal block with no selected frame does not run at all
    assert set(meas["per_module"]) == set(ana)
    for k, v in ana.items():
        assert math.isclose(meas["per_module"][k], v, rel_tol=1e-12), (k, meas["per_module"][k], v)
    return meas


@pytest.mark.parametrize("name,T,size", [("af_resnet50", 4, 64), ("af_resnet50", 3, 96),
                                         ("af_mobilenetv3", 4, 64), ("af_resnet101", 2, 32),
                                         ("tsm_resnet50", 2, 64)])
def test_hooks_match_analytic_topk(name, T, size, one_thread):
    """Real compact run with topk selection (navigation running): per-module MACs == analytic at that ratio."""
    model = randomize_model(afnet_edge.create_model(name, num_classes=7, num_frames=T), seed=1)
    model.configure(execution="compact", selection="topk", ratio=0.5, kernels="torch")
    clip = torch.randn(2, T, 3, size, size, generator=torch.Generator().manual_seed(2))
    meas = _hooks_vs_analytic(model, clip, ratio=0.5)
    res = count_flops(model, ratio=0.5, image_size=size)
    assert math.isclose(meas["gmacs_per_clip"], res["executed_gmacs_compact"], rel_tol=1e-12)
    if model.num_navigation:
        assert res["executed_gmacs_compact"] < res["executed_gmacs_masked"]


@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3"])
def test_hooks_match_analytic_threshold_masks(name, one_thread):
    """Threshold selection on random navigation: analytic(masks=out.masks) == hooks, module by module."""
    T = 4
    model = randomize_model(afnet_edge.create_model(name, num_classes=5, num_frames=T), seed=4)
    model.configure(execution="compact", selection="threshold", kernels="torch")
    clip = torch.randn(3, T, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    meas = _hooks_vs_analytic(model, clip)
    sel = torch.stack(meas["masks"]).mean().item()
    assert 0 < sel < 1, "random navigation should select some but not all frames"
    res = count_flops(model, masks=meas["masks"], image_size=64)
    assert math.isclose(meas["gmacs_per_clip"], res["executed_gmacs_compact"], rel_tol=1e-12)


@pytest.mark.parametrize("name", ["af_resnet50", "af_mobilenetv3"])
def test_hooks_all_and_none_selected(name, one_thread):
    """Navigation forced to select all / no frames: compact == masked count / r=0 count; masked run == masked."""
    T = 4
    model = randomize_model(afnet_edge.create_model(name, num_classes=5, num_frames=T), seed=6)
    model.configure(selection="threshold", kernels="torch")
    clip = torch.randn(2, T, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    res = count_flops(model, image_size=64)
    for select, key in ((True, "executed_gmacs_masked"), (False, "executed_gmacs_r0")):
        _force_navigation(model, select)
        model.configure(execution="compact")
        meas = measure_macs(model, clip)
        assert all(bool((m == float(select)).all()) for m in meas["masks"])
        assert math.isclose(meas["gmacs_per_clip"], res[key], rel_tol=1e-12), (select, meas["gmacs_per_clip"])
        model.configure(execution="masked")
        dense = measure_macs(model, clip, warmup=False)
        assert math.isclose(dense["gmacs_per_clip"], res["executed_gmacs_masked"], rel_tol=1e-12)


# ------------------------------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("ratio", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), True])
def test_bad_ratio(ratio):
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=4)
    with pytest.raises(ValueError, match="ratio"):
        count_flops(model, ratio=ratio)


@pytest.mark.parametrize("size,exc", [(16, ValueError), (0, ValueError), (48, ValueError), (225, ValueError),
                                      (224.0, TypeError), ("224", TypeError), (True, TypeError)])
def test_bad_image_size(size, exc):
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=4)
    with pytest.raises(exc, match="image_size"):
        count_flops(model, image_size=size)


def test_bad_masks_and_other_arguments():
    model = afnet_edge.create_model("af_mobilenetv3", num_frames=4)
    ok = [torch.ones(2, 4)] * 5
    count_flops(model, masks=ok)
    with pytest.raises(ValueError, match="expected 5, got 4"):
        count_flops(model, masks=ok[:4])
    with pytest.raises(ValueError, match=r"masks\[2\] must have shape"):
        count_flops(model, masks=ok[:2] + [torch.ones(2, 5)] + ok[3:])
    with pytest.raises(ValueError, match=r"masks\[0\] must have shape"):
        count_flops(model, masks=[torch.ones(8)] + ok[1:])
    with pytest.raises(ValueError, match=r"masks\[1\] has batch size 3"):
        count_flops(model, masks=[ok[0], torch.ones(3, 4)] + ok[2:])
    with pytest.raises(ValueError, match="only 0 and 1"):
        count_flops(model, masks=ok[:4] + [torch.full((2, 4), 0.5)])
    with pytest.raises(TypeError, match="masks must be a list"):
        count_flops(model, masks=torch.ones(5, 2, 4))
    with pytest.raises(ValueError, match="not both"):
        count_flops(model, ratio=0.5, masks=ok)
    with pytest.raises(ValueError, match="head"):
        count_flops(model, head="kinetics")
    with pytest.raises(TypeError, match="afnet_edge video model"):
        count_flops(torch.nn.Conv2d(3, 3, 1))
    dense = afnet_edge.create_model("tsn_resnet50", num_frames=2)
    assert count_flops(dense, masks=[])["executed_gmacs_compact"] > 0
    with pytest.raises(ValueError, match="expected 0"):
        count_flops(dense, masks=[torch.ones(1, 2)])


# --------------------------------------------------------------------------------------------------------- CLI
def test_cli_flops_json_equals_library(capsys):
    assert cli.main(["flops", "af_resnet50", "--frames", "12", "--ratio", "0.4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = count_flops(afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=12), ratio=0.4)
    assert out == json.loads(json.dumps(lib))
    assert close(out["official_gflops"], 22.128 + 12.562 * 0.4)


def test_cli_flops_text_and_errors(capsys):
    assert cli.main(["flops", "af_mobilenetv3", "--frames", "8", "--ratio", "0.25"]) == 0
    text = capsys.readouterr().out
    assert "official (spec 9)" in text and "executed compact" in text and "stage2" in text
    assert cli.main(["flops", "af_mobilenetv3", "--size", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "image_size must be a multiple of 32" in err


def test_cmd_flops_body(capsys):
    """_cmd_flops on a namespace shaped like the `flops` parser's (independent of the other sub-commands)."""
    ns = argparse.Namespace(model="af_resnet50", frames=12, classes=None, no_tsm=False, checkpoint=None,
                            ratio=0.4, size=224, json=True)
    assert model_commands._cmd_flops(ns) == 0
    out = json.loads(capsys.readouterr().out)
    lib = count_flops(afnet_edge.create_model("af_resnet50", num_frames=12), ratio=0.4)
    assert out == json.loads(json.dumps(lib))
    ns.json = False
    assert model_commands._cmd_flops(ns) == 0
    assert capsys.readouterr().out.strip() == format_flops(lib)
