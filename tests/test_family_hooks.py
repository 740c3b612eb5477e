"""Registry hooks beyond the first families (issue 9 follow-up): value-taking family CLI options (``CliOption``),
the family's cost line in ``format_flops`` (``flops_note``), the family that recognises a file's marker keys
describing it in ``inspect_checkpoint``, and checkpoints whose official arch string several models share.
(Multi-part files through ``read_state_dict``: tests/test_adafocus.py, the V1 test.)"""
from __future__ import annotations

import argparse
import json
import re

import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import inspect_checkpoint
from afnet_edge.cli import main
from afnet_edge.cli_args import add_model_args, build_model, model_from_checkpoint
from afnet_edge.flops import count_flops, format_flops
from afnet_edge.models.registry import (BenchDefaults, CliOption, FamilyHooks, cli_options, flag_options,
                                        registered)
from conftest import randomize_model

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def parse(*argv) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_model_args(p, model_default=None)
    return p.parse_args(list(argv))


# ------------------------------------------------------------------------------------------------ value options
def test_flops_cli_takes_family_value_options(capsys):
    rc, out, err = run(capsys, "flops", "adafocus_v2_mn2", "--patch-size", "96", "--json")
    assert rc == 0, err
    want = count_flops(afnet_edge.create_model("adafocus_v2_mn2", patch_size=96), ratio=0.5)
    default = count_flops(afnet_edge.create_model("adafocus_v2_mn2"), ratio=0.5)
    got = json.loads(out)
    assert got["official_gflops"] == pytest.approx(want["official_gflops"], rel=1e-12)
    assert got["official_gflops"] < 0.8 * default["official_gflops"]          # P=96 really reached the model

    rc, out, err = run(capsys, "flops", "fullvideo_tsm_r50", "--clusters", "16", "--frames", "48", "--json")
    assert rc == 0, err
    got = json.loads(out)
    with torch.device("meta"):
        want = count_flops(afnet_edge.create_model("fullvideo_tsm_r50", num_frames=48, clusters=16))
        k8 = count_flops(afnet_edge.create_model("fullvideo_tsm_r50", num_frames=48))
    assert got["num_frames"] == 48
    assert got["official_gflops"] == pytest.approx(want["official_gflops"], rel=1e-12)
    assert got["official_gflops"] > k8["official_gflops"]                      # K=16 costs more than the default 8


def test_value_options_reach_create_model():
    args = parse("--model", "fullvideo_tsm_r18", "--clusters", "3", "--rule", "cumulative_official",
                 "--max-frames", "64", "--classes", "5")
    model = build_model(args)
    assert (model.clusters, model.rule, model.max_frames) == (3, "cumulative_official", 64)
    model = build_model(parse("--model", "blvnet_tam_r50", "--alpha", "4", "--beta", "2", "--frames", "4"))
    assert (model.alpha, model.beta) == (4, 2)
    model = build_model(parse("--model", "adafocus_v1", "--patch-size", "160"))
    assert model.patch_size == 160
    model = build_model(parse("--model", "fullvideo_tsm_r18", "--classes", "5"))     # not given: model defaults
    assert (model.clusters, model.rule, model.max_frames) == (16, "slope", 1024)


@pytest.mark.parametrize("argv,match", [
    (("flops", "af_resnet50", "--patch-size", "96"), "--patch-size applies to adafocus_v2_mn2/.* only, not af_resnet50"),
    (("flops", "tsm_resnet50", "--clusters", "4"), "--clusters applies to fullvideo_tsm_r50/fullvideo_tsm_r18 only"),
    (("flops", "adafocus_v1", "--alpha", "2"), "--alpha applies to blvnet_tam_r50/blvnet_tam_r101 only"),
    (("flops", "fullvideo_tsm_r18", "--clusters", "0"), "--clusters: must be a positive integer, got '0'"),
    (("flops", "adafocus_v1", "--patch-size", "9.5"), "--patch-size: must be a positive integer, got '9.5'"),
    (("flops", "fullvideo_tsm_r18", "--rule", "nearest"), "--rule: invalid choice: 'nearest'"),
])
def test_value_option_errors_are_one_line_with_exit_code_2(capsys, argv, match):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err), err


def test_cli_option_is_declared_and_checked_by_the_registry():
    with pytest.raises(ValueError, match="type must be one of"):
        CliOption("--width", "width", "float", "bad type")
    opt = CliOption("--toy-width", "width", "positive_int", "toy width")
    hooks = FamilyHooks("toy", checkpoint_filter=lambda sd, m: None, flops_walk=lambda *a: None, cli_options=(opt,))

    def factory(num_classes=3, num_frames=2, width=1):
        raise AssertionError("not built here")
    with registered("toy_model", factory, hooks, 2, BenchDefaults(False, (2,), "toy")):
        assert opt in cli_options()
        assert flag_options("toy_model", {"toy_width": 7}) == {"width": 7}
        assert flag_options("toy_model", {"toy_width": None}) == {}
        with pytest.raises(ValueError, match="--toy-width applies to toy_model only, not af_resnet50"):
            flag_options("af_resnet50", {"toy_width": 7})
        clash = FamilyHooks("toy2", checkpoint_filter=lambda sd, m: None, flops_walk=lambda *a: None,
                            cli_options=(CliOption("--toy-width", "width", "nonneg_int", "other"),))
        with pytest.raises(RuntimeError, match="declared differently"):
            with registered("toy_model2", factory, clash, 2, BenchDefaults(False, (2,), "toy")):
                pass
    assert opt not in cli_options()


# ------------------------------------------------------------------------------------------------- cost line
def test_format_flops_uses_the_family_cost_line():
    with torch.device("meta"):
        fv = count_flops(afnet_edge.create_model("fullvideo_tsm_r50", num_frames=48, clusters=16))
        bl = count_flops(afnet_edge.create_model("blvnet_tam_r50", num_frames=16))
        tsm = count_flops(afnet_edge.create_model("tsm_resnet50"))
    af = count_flops(afnet_edge.create_model("adafocus_v2_mn2", patch_size=96))
    for res, words in ((fv, ("48 frames", "16 cluster")), (af, ("glance", "96x96")), (bl, ("frame pair", "8 pairs"))):
        text = format_flops(res)
        assert "dense model" not in text and all(w in text for w in words), text
        assert res["cost_note"] in text
    assert "cost_note" not in tsm
    assert "(dense model: every frame computed)" in format_flops(tsm)


# ------------------------------------------------------------------------------- which family describes a file
def _fullvideo_files(tmp_path, arch: str = "resnet18"):
    src = randomize_model(afnet_edge.create_model("fullvideo_tsm_r18", num_classes=5, clusters=4), 3)
    sd = {"module." + k: v.clone() for k, v in src.state_dict().items()}
    release = tmp_path / "ckpt.pth.tar"
    torch.save({"epoch": 3, "arch": arch, "state_dict": sd, "optimizer": {}, "best_prec1": 0.0}, release)
    stock = {k.replace(".conv1.", ".conv1.net.") if ".layer1." in k else k: v for k, v in sd.items()}
    stock_path = tmp_path / "tsm.pth.tar"
    torch.save({"epoch": 3, "arch": arch, "state_dict": stock}, stock_path)
    return src, release, stock_path


def test_inspect_takes_the_family_that_recognises_the_file(tmp_path):
    _, release, stock = _fullvideo_files(tmp_path)
    info = inspect_checkpoint(release)
    assert (info["kind"], info["families"], info["num_classes"]) == ("official_fullvideo", ["fullvideo"], 5)
    info = inspect_checkpoint(stock)                      # stock TSM layout: the generic TSN description
    assert info["kind"] == "official_tsn" and "dense" in info["families"] and "fullvideo" not in info["families"]
    tsn = afnet_edge.create_model("af_resnet50", num_classes=7, num_frames=4)
    from afnet_edge.checkpoint import save_official_checkpoint
    save_official_checkpoint(randomize_model(tsn, 1), tmp_path / "af.pth.tar")
    info = inspect_checkpoint(tmp_path / "af.pth.tar")
    assert (info["kind"], info["num_frames"], info["num_classes"]) == ("official_tsn", 4, 7)
    assert "afnet" in info["families"]


def test_shared_official_arch_resolves_by_layout_or_asks_for_model(tmp_path):
    src, release, stock = _fullvideo_files(tmp_path)
    assert model_from_checkpoint(inspect_checkpoint(release)) == "fullvideo_tsm_r18"
    model = build_model(parse("--checkpoint", str(release), "--frames", "6", "--clusters", "4"))
    x = torch.randn(1, 6, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(x).logits, src(x).logits)
    # A stock TSM file says "resnet18" as well, but its layout is the dense family's: which model is not known
    with pytest.raises(ValueError, match=r"does not say which model.*pass --model \(one of .*fullvideo_tsm_r18"):
        model_from_checkpoint(inspect_checkpoint(stock))
    args = parse("--checkpoint", str(stock))
    with pytest.raises(ValueError, match="tsm_resnet50"):
        build_model(args)
    # --model settles it
    model = build_model(parse("--model", "fullvideo_tsm_r18", "--checkpoint", str(stock), "--clusters", "4",
                              "--frames", "6"))
    with torch.no_grad():
        assert torch.equal(model(x).logits, src(x).logits)
