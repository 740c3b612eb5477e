"""A model family plugs in at one place: a toy family defined here, registered for the test only, works through the
generic drivers (create_model, list_models / ``afnet-edge models``, load_checkpoint, count_flops / ``afnet-edge
flops``, export metadata) with no edit to them."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn as nn

import afnet_edge
from afnet_edge import cli
from afnet_edge.checkpoint import CheckpointError, inspect_checkpoint, load_checkpoint, save_checkpoint
from afnet_edge.flops import count_flops, executed_macs_per_module, format_flops, measure_macs
from afnet_edge.models import model_entry, registry
from afnet_edge.models.common import VideoClassifier
from afnet_edge.models.flops_walk import FlopsWalk
from afnet_edge.models.registry import (BenchDefaults, CliFlag, ExportAdapter, FamilyHooks, MappedCheckpoint,
                                        registered)

TOY = "toy_convnet"
WIDE = CliFlag("--toy-wide", "width", 16, "toy family only: 16 channels instead of 8")


# ----------------------------------------------------------------------------------------------- the toy family
class ToyVideo(VideoClassifier):
    """conv(3→C, 3×3, stride 2) → ReLU → conv(C→C, 3×3, stride 2) → global pool → Linear(C, classes), per frame."""

    def __init__(self, num_classes: int, num_frames: int, width: int = 8):
        super().__init__(num_classes, num_frames)
        self.arch = TOY
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1))
        self.head = nn.Linear(width, num_classes)

    def forward_frames(self, frames: torch.Tensor, ctx) -> torch.Tensor:
        return self.head(self.features(frames).mean(dim=(2, 3)))


def toy_filter(sd: dict, model: nn.Module) -> MappedCheckpoint:
    """The toy's "official" layout: ``net.0.*`` / ``net.2.*`` / ``classifier.*`` → ``features.*`` / ``head.*``."""
    if not any(k.startswith("net.") for k in sd):
        raise ValueError("is not a toy checkpoint (no net.* keys)")
    return MappedCheckpoint("official_toy", {k.replace("net.", "features.").replace("classifier.", "head."): v
                                             for k, v in sd.items()})


def toy_info(sd: dict) -> dict:
    return {"kind": "official_toy", "num_classes": int(sd["classifier.weight"].shape[0])} \
        if "classifier.weight" in sd else {}


def toy_flops(walk: FlopsWalk, model: ToyVideo, size: int, head: str) -> None:
    walk.stage = "features"
    s = walk.conv(model.features[0], (3, size, size))
    s = walk.conv(model.features[2], s)
    walk.stage = "head"
    walk.off("pool", s[0] * s[1] * s[2])
    walk.linear(model.head)
    walk.off("head", model.head.in_features * model.head.out_features)


TOY_HOOKS = FamilyHooks(family="toy", checkpoint_filter=toy_filter, checkpoint_info=toy_info, flops_walk=toy_flops,
                        export=ExportAdapter(metadata=lambda m: {"channels": m.head.in_features}), cli_flags=(WIDE,))


def make_toy(num_classes: int = 174, num_frames: int = 4, width: int = 8) -> ToyVideo:
    """Toy conv net for the registry test."""
    return ToyVideo(num_classes, num_frames, width)


@pytest.fixture
def toy():
    assert TOY not in afnet_edge.list_models()
    with registered(TOY, make_toy, TOY_HOOKS, default_frames=4, default_size=64,
                    bench=BenchDefaults(skips_frames=False, frames=(4,), label="Toy")) as entry:
        yield entry
    assert TOY not in afnet_edge.list_models()


def expected_macs(width: int, classes: int, size: int, frames: int) -> tuple[float, float]:
    """(executed, official) MACs per clip, computed by hand."""
    h1 = size // 2
    h2 = h1 // 2
    conv = width * h1 * h1 * 3 * 9 + width * h2 * h2 * width * 9
    executed = (conv + width * classes) * frames
    official = (conv + width * h2 * h2 + width * classes) * frames
    return executed, official


# ------------------------------------------------------------------------------------------------------ the tests
def test_create_and_list(toy, capsys):
    assert TOY in afnet_edge.list_models() and model_entry(TOY) is toy
    m = afnet_edge.create_model(TOY, num_classes=5)
    assert isinstance(m, ToyVideo) and m.num_frames == 4 and not m.training
    clip = torch.randn(2, 4, 3, 32, 32)
    out = m(clip)
    assert out.logits.shape == (2, 5) and out.masks == []
    assert cli.main(["models"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(TOY)]
    assert len(line) == 1 and " toy " in line[0] and "T=4" in line[0] and "Toy conv net" in line[0]


def test_unregistered_after_the_fixture():
    assert TOY not in afnet_edge.list_models()
    with pytest.raises(ValueError, match="unknown model 'toy_convnet'"):
        afnet_edge.create_model(TOY)


def test_scoped_registration_refuses_duplicates(toy):
    with pytest.raises(RuntimeError, match="registered twice"):
        with registered(TOY, make_toy, TOY_HOOKS, default_frames=4, bench=toy.bench):
            pass
    assert model_entry(TOY) is toy  # the failed registration did not remove the first one


def toy_official(model: ToyVideo, prefix: str = "module.") -> dict:
    return {prefix + k.replace("features.", "net.").replace("head.", "classifier."): torch.randn_like(v)
            for k, v in model.state_dict().items()}


def test_official_checkpoint_through_the_family_mapping(toy, tmp_path):
    src = afnet_edge.create_model(TOY, num_classes=7)
    sd = toy_official(src)
    path = tmp_path / "toy.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    info = inspect_checkpoint(path)
    assert info["kind"] == "official_toy" and info["num_classes"] == 7

    model = afnet_edge.create_model(TOY, num_classes=7)
    for p in model.parameters():
        p.data.fill_(float("nan"))  # poisoned: every value must come from the file
    report = load_checkpoint(model, path)
    assert report.kind == "official_toy" and report.dropped == [] and report.meta == {"epoch": 3}
    mine = model.state_dict()
    for k, v in sd.items():
        ours = k[len("module."):].replace("net.", "features.").replace("classifier.", "head.")
        assert torch.equal(mine[ours], v), k


def test_official_checkpoint_is_strict(toy, tmp_path):
    model = afnet_edge.create_model(TOY, num_classes=7)
    sd = toy_official(model)
    missing = dict(sd)
    del missing["module.net.2.bias"]
    torch.save({"state_dict": missing}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): features\.2\.bias"):
        load_checkpoint(model, tmp_path / "missing.pth")
    extra = dict(sd, **{"module.net.9.weight": torch.randn(3)})
    torch.save({"state_dict": extra}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): features\.9\.weight"):
        load_checkpoint(model, tmp_path / "extra.pth")
    torch.save({"state_dict": {"module.other.weight": torch.randn(3)}}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="foreign.pth' is not a toy checkpoint"):
        load_checkpoint(model, tmp_path / "foreign.pth")


def test_own_format_round_trip(toy, tmp_path):
    src = afnet_edge.create_model(TOY, num_classes=3, num_frames=6, width=16)
    for p in src.parameters():
        p.data.normal_()
    save_checkpoint(src, tmp_path / "own.pt")
    info = inspect_checkpoint(tmp_path / "own.pt")
    assert (info["kind"], info["arch"], info["num_frames"], info["num_classes"]) == ("afnet_edge", TOY, 6, 3)
    dst = afnet_edge.create_model(TOY, num_classes=3, num_frames=6, width=16)
    assert load_checkpoint(dst, tmp_path / "own.pt").kind == "afnet_edge"
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


@pytest.mark.parametrize("width,size,frames", [(8, 64, 4), (16, 96, 3)])
def test_count_flops_through_the_family_walk(toy, width, size, frames):
    model = afnet_edge.create_model(TOY, num_classes=11, num_frames=frames, width=width)
    res = count_flops(model, image_size=size)
    executed, official = expected_macs(width, 11, size, frames)
    assert res["executed_gmacs_compact"] == pytest.approx(executed / 1e9, rel=1e-12)
    assert res["executed_gmacs_masked"] == res["executed_gmacs_compact"]
    assert res["official_gflops"] == pytest.approx(official / 1e9, rel=1e-12)
    assert res["official_gflops_slope"] == 0 and res["selected_frames_per_clip"] == []
    assert list(res["per_stage"]) == ["features", "head"]
    # The walk's executed count agrees with what a forward really runs, module by module.
    measured = measure_macs(model, torch.randn(2, frames, 3, size, size))
    analytic = executed_macs_per_module(model, image_size=size)
    assert measured["per_module"].keys() == analytic.keys()
    for k, v in analytic.items():
        assert measured["per_module"][k] == pytest.approx(v, rel=1e-12), k
    assert "dense model" in format_flops(res)


def test_cli_flops_with_family_flag_and_default_size(toy, capsys):
    assert cli.main(["flops", TOY, "--toy-wide", "--classes", "5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    executed, _ = expected_macs(16, 5, 64, 4)  # --toy-wide → width 16; the entry's size 64 and T=4
    assert res["model"] == TOY and res["image_size"] == 64 and res["num_frames"] == 4
    assert res["executed_gmacs_compact"] == pytest.approx(executed / 1e9, rel=1e-12)
    # A family flag is refused for another family, and another family's flag for the toy.
    assert cli.main(["flops", "af_mobilenetv3", "--toy-wide"]) == 2
    err = capsys.readouterr().err
    assert "--toy-wide applies to toy_convnet only, not af_mobilenetv3" in err
    assert cli.main(["flops", TOY, "--no-tsm"]) == 2
    assert "--no-tsm applies to af_resnet50/af_resnet101 only, not toy_convnet" in capsys.readouterr().err


def test_flags_from_recorded_options(toy):
    assert registry.flags_from_info(TOY, {"width": 16}) == {"toy_wide": True}
    assert registry.flags_from_info(TOY, {"width": 8}) == {}
    assert registry.flags_from_info("af_resnet50", {"tsm": False}) == {"no_tsm": True}
    assert registry.flags_from_info("af_mobilenetv3", {"tsm": False}) == {}


def test_export_adapter_metadata(toy, tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install afnet_edge[onnx])")
    pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed (pip install afnet_edge[onnx])")
    import onnxruntime as ort
    from afnet_edge.export.onnx_export import check_model_matches, export_onnx, read_metadata
    model = afnet_edge.create_model(TOY, num_classes=5, width=16)
    for p in model.parameters():
        p.data.normal_()
    res = export_onnx(model, str(tmp_path / "toy.onnx"), size=32)
    meta = read_metadata(tmp_path / "toy.onnx")
    assert (meta["model"], meta["num_frames"], meta["num_classes"], meta["channels"]) == (TOY, 4, 5, "16")
    assert (meta["height"], meta["width"]) == (32, 32)
    check_model_matches(meta, model)  # the family entry (read back as text) matches the model
    with pytest.raises(ValueError, match=r"channels=16 \(model has channels=8\)"):
        check_model_matches(meta, afnet_edge.create_model(TOY, num_classes=5, width=8))
    sess = ort.InferenceSession(str(tmp_path / "toy.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"clip": res.example_clip.numpy()})[0]
    assert got.shape == (1, 5)
    assert abs(got - res.reference_logits.numpy()).max() <= 1e-4 * abs(res.reference_logits.numpy()).max()
    # A family entry may not overwrite afnet_edge's own metadata keys (here the input width).
    clashing = dataclasses.replace(TOY_HOOKS, export=ExportAdapter(metadata=lambda m: {"width": 8}), cli_flags=())
    with registered("toy_clash", make_toy, clashing, default_frames=4, bench=toy.bench):
        bad = afnet_edge.create_model("toy_clash", num_classes=5)
        bad.arch = "toy_clash"
        with pytest.raises(ValueError, match=r"redefines \['width'\]"):
            export_onnx(bad, str(tmp_path / "clash.onnx"), size=32)


def test_bench_defaults_of_the_registered_models():
    for name in afnet_edge.list_models():
        e = model_entry(name)
        assert e.bench.skips_frames == (e.family == "afnet"), name
        assert e.default_frames in e.bench.frames or not e.bench.skips_frames, name
