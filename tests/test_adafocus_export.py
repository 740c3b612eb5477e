"""AdaFocusV2 export through the generic driver (the family's ExportAdapter: wrapper, no frame selection; here the
portable flavour): standard ONNX operators at opset 17, ONNX Runtime against PyTorch ≤ 1e-4 (CLI export + verify with a
checkpoint, the patch size restored from the metadata), a TensorRT for RTX engine built on the CPU with its sidecar,
and the refusals (other variants, early exit). The plugin flavour: tests/test_adafocus_plugin.py."""
from __future__ import annotations

import json
import os

import pytest
import torch

import afnet_edge
from skip_reasons import CUDA_PRESENT  # noqa: F401  (the allow-list module: skips below name allowed reasons)
from test_adafocus import H

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from afnet_edge.checkpoint import save_checkpoint  # noqa: E402
from afnet_edge.cli import main  # noqa: E402
from afnet_edge.models import adafocus  # noqa: E402
from afnet_edge.models.registry import BenchDefaults, registered  # noqa: E402
from afnet_edge.export.onnx_export import export_onnx  # noqa: E402
from afnet_edge.export.trt_backend import load_tensorrt  # noqa: E402

try:
    RTX = load_tensorrt("tensorrt_rtx")
except ImportError:
    RTX = None
needs_rtx = pytest.mark.skipif(RTX is None, reason="TensorRT for RTX not installed "
                                                   "(pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs)")
T, P, C, TARGET = 2, 32, 5, "SM86"          # the smallest variant: MN2 glance, 2 frames, 32² patches
SMALL = "adafocus_v2_mn2_narrow_test"
STANDARD = {"Conv", "Clip", "Add", "Relu", "MaxPool", "ReduceMean", "Tanh", "Flatten", "Gemm", "BatchNormalization",
            "Transpose", "GRU", "Squeeze", "Unsqueeze", "MatMul", "Sigmoid", "Cast", "Mul", "Sub", "Concat", "Floor",
            "Slice", "Expand", "GatherElements", "Gather", "Pad", "Reshape", "Max", "Resize", "Shape", "Constant"}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A registered narrow AdaFocusV2-MN2 (policy GRU 128, classifier MLP 256 wide instead of 2048 / 4096: the graph
    and the ops are the same, the ONNX file and the engine 3x smaller) exported by the CLI."""
    with registered(SMALL, _small, adafocus.HOOKS, default_frames=T, bench=BenchDefaults(False, (T,), "small")):
        yield _export(tmp_path_factory.mktemp("ada_export"))


def _small(num_classes: int = C, num_frames: int = T, patch_size: int = P, frame_order: bool = True):
    return adafocus.AdaFocusV2(SMALL, "mn2", num_classes, num_frames, patch_size, hidden_dim=128,
                               frame_order=frame_order, classifier_dim=256)


def _export(d):
    # The factory's initialisation (kaiming convs, identity BN statistics), not calibrated BN statistics: the logits
    # of a random network on noise clips are ill-conditioned in the actions (with calibrated BN, a 1e-7 change of an
    # action moves the logits by ~5e-4 relative: sub-pixel shifts of white noise), so ONNX Runtime's own fp32
    # rounding in the GRU would dominate any comparison. Here the same graph is compared at ~1e-5.
    torch.manual_seed(81)
    model = afnet_edge.create_model(SMALL, num_classes=C, num_frames=T, patch_size=P)
    ckpt = str(d / "ada.pth")
    save_checkpoint(model, ckpt)
    path = str(d / "ada.onnx")
    assert main(["export", SMALL, "--checkpoint", ckpt, "--patch-size", str(P), "--onnx", path]) == 0
    return model, ckpt, path


def test_portable_graph_uses_standard_ops_and_records_the_family(exported):
    model, _, path = exported
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node) and ops <= STANDARD, ops - STANDARD
    assert {"GRU", "GatherElements", "Floor"} <= ops                       # the policy and the sub-pixel crop
    gru = next(n for n in proto.graph.node if n.op_type == "GRU")
    assert {a.name: a.i for a in gru.attribute}["linear_before_reset"] == 1   # torch's GRU (spec §2.2)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    assert sum(n.op_type == "Gemm" for n in proto.graph.node) == 4         # encoder, π fc, MLP, the last head only
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["afnet_edge.model"] == SMALL and meta["afnet_edge.patch_size"] == str(P)
    assert meta["afnet_edge.frame_order"] == "1" and meta["afnet_edge.selection"] == "none"
    assert meta["afnet_edge.k"] == str(T) and meta["afnet_edge.ratio"] == "1.0"


def test_cli_verify_onnx_runtime_matches_pytorch(exported, capsys):
    _, ckpt, path = exported
    capsys.readouterr()
    assert main(["verify", "--onnx", path, "--checkpoint", ckpt, "--json"]) == 0    # P = 32 from the metadata
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["max_rel_error"] <= 1e-4 and res["top1_agreement"] == 1.0 and res["clips"] >= 1


def test_export_refusals(exported, tmp_path):
    model, _, _ = exported
    with pytest.raises(ValueError, match="two clips"):
        export_onnx(afnet_edge.create_model("adafocus_v2_tsm", num_classes=C, num_frames=2, focus_frames=2,
                                            patch_size=P), str(tmp_path / "t.onnx"))
    try:
        model.set_exit_thresholds([1.0, 2.0])
        with pytest.raises(ValueError, match="early exit"):
            export_onnx(model, str(tmp_path / "e.onnx"))
    finally:
        model.set_exit_thresholds(None)


@needs_rtx
def test_rtx_engine_builds_on_the_cpu_with_sidecar(exported, tmp_path, capsys):
    _, _, path = exported
    engine = str(tmp_path / "ada.engine")
    assert main(["export", SMALL, "--from-onnx", path, "--trt", engine, "--backend", "tensorrt_rtx",
                 "--rtx-targets", TARGET]) == 0, capsys.readouterr().err
    side = json.load(open(engine + ".json"))
    assert os.path.getsize(engine) > 1_000_000
    assert side["model"] == SMALL and side["num_frames"] == T and side["num_classes"] == C
    assert side["patch_size"] == str(P) and side["frame_order"] == "1" and side["selection"] == "none"
    assert side["inputs"] == [{"name": "clip", "shape": [1, T, 3, H, H], "dtype": "float"}]
    assert side["outputs"] == [{"name": "logits", "shape": [1, C], "dtype": "float"}]
    assert side["tensorrt"]["module"] == "tensorrt_rtx" and side["rtx_targets"] == [TARGET]
