"""Full-video clustering export through the generic driver (spec §11.3; the family's ExportAdapter: wrapper, no
frame selection, portable flavour only): static N and K, slope rule, standard ONNX operators at opset 17 (no TopK,
Scatter, CumSum, Loop or Pad), ONNX Runtime against the model's own forward (the device clustering ops) on random
clips with random BN statistics — logits ≤ 1e-4 relative and the segment boundaries equal, tie cases included — a
TensorRT for RTX engine built on the CPU with its sidecar, and the portable flavour's refusals (cumulative rules,
ragged input; both export in the plugin flavour: tests/test_fullvideo_plugin.py)."""
from __future__ import annotations

import argparse
import io
import json
import os
import warnings

import numpy as np
import pytest
import torch

import afnet_edge
from conftest import randomize_model
from skip_reasons import CUDA_PRESENT  # noqa: F401  (the allow-list module: skips below name allowed reasons)

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from afnet_edge.checkpoint import save_checkpoint  # noqa: E402
from afnet_edge.cli import main  # noqa: E402
from afnet_edge.export.onnx_export import export_onnx  # noqa: E402
from afnet_edge.export.trt_backend import load_tensorrt  # noqa: E402
from afnet_edge.models import fullvideo  # noqa: E402
from afnet_edge.models.registry import BenchDefaults, registered  # noqa: E402

from conftest import RTX, needs_rtx  # noqa: E402
N, K, C, H, TARGET = 10, 4, 5, 32, "SM86"
SMALL = "fullvideo_tsm_narrow_test"
STANDARD = {"Conv", "Relu", "MaxPool", "Add", "Reshape", "Slice", "Concat", "Greater", "Cast", "Sub", "Abs",
            "ReduceSum", "Unsqueeze", "Equal", "Mul", "Less", "MatMul", "Div", "GlobalAveragePool", "Flatten", "Gemm",
            "ReduceMean", "ReduceMax", "ReduceMin", "Where", "Constant", "ConstantOfShape", "Shape", "Expand"}


def _small(num_classes: int = C, num_frames: int = N, clusters: int = K, rule: str = "slope",
           max_frames: int | None = 1024, degenerate: str = "none", width: float = 0.25) -> fullvideo.FullVideoTSM:
    """ResNet-18 layout with one block per stage and stages 16/32/64/128 wide: the graph and its operators are the
    registered models' (BasicBlock, shift-wrapped conv1 in layers 2–4), the file and the engine ~50x smaller."""
    return fullvideo.FullVideoTSM(SMALL, fullvideo.BasicBlock, (1, 1, 1, 1), num_classes, num_frames, clusters, rule,
                                  max_frames, 0.5, degenerate, False, width=width)


@pytest.fixture(scope="module")
def small_registered():
    with registered(SMALL, _small, fullvideo.HOOKS, default_frames=N, bench=BenchDefaults(False, (N,), "small")):
        yield


def _model(seed: int = 0, **kw) -> fullvideo.FullVideoTSM:
    return randomize_model(afnet_edge.create_model(SMALL, num_classes=C, **kw), seed).eval()


@pytest.fixture(scope="module")
def exported(small_registered, tmp_path_factory):
    """The small model with random weights and BN statistics, saved, exported by the CLI (N = 10, K = 4)."""
    d = tmp_path_factory.mktemp("fv_export")
    torch.manual_seed(14)
    model = _model(seed=14, num_frames=N, clusters=K)
    ckpt = str(d / "fv.pth")
    save_checkpoint(model, ckpt)
    path = str(d / "fv.onnx")
    assert main(["export", SMALL, "--checkpoint", ckpt, "--frames", str(N), "--clusters", str(K), "--rule", "slope",
                 "--size", str(H), "--onnx", path]) == 0
    return model, ckpt, path


def _onnx_with_segments(model, batch: int) -> "ort.InferenceSession":
    """The exported computation with the boundaries as a second output (the CLI graph has logits only), batch axis
    symbolic (as ``--dynamic-batch``)."""
    buf = io.BytesIO()
    clip = torch.randn(batch, model.num_frames, 3, H, H)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(fullvideo.ExportForward(model, segments=True), (clip,), buf, dynamo=False, opset_version=17,
                          input_names=["clip"], output_names=["logits", "segments"],
                          dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}, "segments": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)
    return ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def _tie_clips(g: torch.Generator) -> torch.Tensor:
    """Three videos of N frames whose neighbour distances tie: two distinct frames in blocks 4+6 (one nonzero
    distance, the other K−2 cuts among zeros), all frames identical (every distance 0), and a period-2 pattern
    a b a b … (all distances equal and nonzero)."""
    a, b = torch.randn(2, 3, H, H, generator=g)
    return torch.stack([torch.stack([a] * 4 + [b] * 6), torch.stack([a] * N),
                        torch.stack([a if t % 2 == 0 else b for t in range(N)])])


def _rel(ref: torch.Tensor, got: np.ndarray) -> float:
    return float(np.abs(got - ref.numpy()).max() / ref.abs().max())


# -------------------------------------------------------------------------------------------- the portable graph
def test_portable_graph_uses_standard_ops_and_records_the_family(exported):
    _, _, path = exported
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node) and ops <= STANDARD, ops - STANDARD
    assert {"Greater", "Abs", "ReduceSum", "Less", "MatMul"} <= ops                 # bits, distances, rank, means
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    for v in list(proto.graph.input) + list(proto.graph.output):                    # static shapes throughout
        assert all(d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)
    meta = {p.key[len("afnet_edge."):]: p.value for p in proto.metadata_props}
    assert meta["model"] == SMALL and meta["num_frames"] == str(N) and meta["clusters"] == str(K)
    assert meta["rule"] == "slope" and meta["selection"] == "none" and meta["k"] == str(N)
    assert meta["max_frames"] == "1024" and meta["degenerate"] == "none"


def test_cli_verify_onnx_runtime_matches_pytorch(exported, capsys):
    _, ckpt, path = exported
    capsys.readouterr()
    assert main(["verify", "--onnx", path, "--checkpoint", ckpt, "--json"]) == 0      # K, rule from the metadata
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["max_rel_error"] <= 1e-4 and res["top1_agreement"] == 1.0 and res["clips"] >= 2


def test_onnx_runtime_segments_and_tie_rule_equal_the_model(small_registered):
    """Random clips and tie cases through ONNX Runtime: logits ≤ 1e-4 relative and boundaries exactly equal to the
    model's forward; the tie boundaries also equal the spec's rule written out (later position wins)."""
    model = _model(seed=5, num_frames=N, clusters=K)
    sess = _onnx_with_segments(model, batch=3)
    g = torch.Generator().manual_seed(6)
    tied = _tie_clips(g)
    for clip in (torch.randn(3, N, 3, H, H, generator=g), tied, torch.randn(1, N, 3, H, H, generator=g)):
        logits, segs = sess.run(None, {"clip": clip.numpy()})        # batch 1: the symbolic batch axis
        with torch.no_grad():
            ref = model(clip)
        assert _rel(ref.logits, logits) <= 1e-4
        assert np.array_equal(segs, ref.segments.numpy()), (segs, ref.segments)
    # h = [0,0,0,d,0,0,0,0,0] → cuts after 3 and after the two latest zeros; all-equal → the last K−1 positions
    assert sess.run(None, {"clip": tied.numpy()})[1].tolist() == [[0, 4, 8, 9, 10], [0, 7, 8, 9, 10], [0, 7, 8, 9, 10]]
    # degenerate="even" (the Where of the graph, run eagerly): all-equal distances switch to even segments
    even = _model(seed=5, num_frames=N, clusters=K, degenerate="even")
    with torch.no_grad():
        got, ref = even.forward_portable(tied), even(tied)
    assert got.segments.tolist() == ref.segments.tolist() == [[0, 4, 8, 9, 10], [0, 3, 6, 8, 10], [0, 3, 6, 8, 10]]


@pytest.mark.parametrize("n,k,deg,max_frames", [(3, 5, "none", 1024),      # N < K: single frames, last repeated
                                                (6, 1, "none", 1024),      # K = 1: the mean of every frame
                                                (2, 2, "even", 1024),      # N < 3 with degenerate="even"
                                                (7, 3, "even", 1024),
                                                (12, 3, "none", 5)])       # N > max_frames: the stride schedule
def test_portable_forward_equals_the_model(small_registered, n, k, deg, max_frames):
    """The traced computation run eagerly on the graph-constant cases and random/tied clips: same boundaries, same
    logits (the ONNX Runtime tests above cover the general case in the exported file)."""
    model = _model(seed=n + k, num_frames=n, clusters=k, degenerate=deg, max_frames=max_frames)
    g = torch.Generator().manual_seed(n * k)
    clip = torch.randn(2, n, 3, H, H, generator=g)
    clip[1, n // 2:] = clip[1, :1]                                 # repeated frames: tied distances
    with torch.no_grad():
        ref, got = model(clip), model.forward_portable(clip)
    assert torch.equal(got.segments, ref.segments) and torch.equal(got.num_segments, ref.num_segments)
    assert float((got.logits - ref.logits).abs().max() / ref.logits.abs().max()) <= 1e-5


def test_temporal_shift_matches_the_index_definition():
    """The Slice/Concat shift equals spec §2.2 written per index (channels [0, C/8) from k+1, [C/8, C/4) from
    k−1, the rest unchanged; zeros where the neighbour is missing)."""
    x = torch.randn(2 * 3, 16, 2, 2)
    got = fullvideo.temporal_shift(x, 3).view(2, 3, 16, 2, 2)
    v = x.view(2, 3, 16, 2, 2)
    for k in range(3):
        assert torch.equal(got[:, k, :2], v[:, k + 1, :2] if k < 2 else torch.zeros_like(v[:, k, :2]))
        assert torch.equal(got[:, k, 2:4], v[:, k - 1, 2:4] if k > 0 else torch.zeros_like(v[:, k, 2:4]))
        assert torch.equal(got[:, k, 4:], v[:, k, 4:])
    assert torch.equal(fullvideo.temporal_shift(x, 1)[:, :4], torch.zeros(6, 4, 2, 2))


# ------------------------------------------------------------------------------------------------------- refusals
def test_export_refusals_name_the_option(small_registered, exported, tmp_path, capsys):
    model, _, _ = exported
    for rule, hint in (("cumulative", "--flavour plugin"), ("cumulative_official", "no kernel")):
        with pytest.raises(ValueError, match=f"rule='{rule}'.*--rule.*{hint}"):
            export_onnx(_model(num_frames=N, clusters=K, rule=rule), str(tmp_path / "c.onnx"))
    with pytest.raises(ValueError, match="ragged"):
        fullvideo.ExportForward(model)([torch.randn(3, 3, H, H), torch.randn(5, 3, H, H)])
    with pytest.raises(ValueError, match="ragged"):
        model.forward_portable(torch.randn(8, 3, H, H))
    with pytest.raises(ValueError, match="B ≥ 1 and N ≥ 1"):
        model.forward_portable(torch.randn(1, 0, 3, H, H))
    for argv in (["--rule", "cumulative"], ["--rule", "cumulative_official", "--flavour", "plugin"]):
        capsys.readouterr()
        assert main(["export", SMALL, "--random-weights", "--frames", str(N), "--size", str(H), *argv,
                     "--onnx", str(tmp_path / "x.onnx")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--rule" in err, err
    assert not os.path.exists(tmp_path / "x.onnx")
    # fp16 engines would round and overflow the Hamming counts: refused before TensorRT is even looked for
    _, _, path = exported
    capsys.readouterr()
    assert main(["export", SMALL, "--from-onnx", path, "--trt", str(tmp_path / "h.engine"), "--fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--fp16" in err and "Hamming" in err, err
    assert not os.path.exists(tmp_path / "h.engine")


def test_trt_auto_flavour_follows_the_plugin_library(small_registered, monkeypatch):
    """``--trt`` with ``--plugins auto``: the plugin graph (SegmentCluster) where the plugin library exists, as for
    AFNet; the portable graph without it."""
    from afnet_edge.export import cli as export_cli
    monkeypatch.setattr(export_cli, "load_tensorrt", lambda backend: argparse.Namespace(supports_plugins=True))
    monkeypatch.setattr(export_cli, "find_plugin_library", lambda path: "/plugins/libafnet_edge_trt.so")
    args = argparse.Namespace(trt="x.engine", plugins="auto", flavour=None, model=SMALL, backend="tensorrt",
                              plugin_library=None)
    assert export_cli._choose_flavour(args) == "plugin"
    args.model = "af_resnet50"
    assert export_cli._choose_flavour(args) == "plugin"
    monkeypatch.setattr(export_cli, "find_plugin_library", lambda path: None)
    args.model = SMALL
    assert export_cli._choose_flavour(args) == "portable"


def test_empty_inputs_give_clear_errors(small_registered):
    model = _model(num_frames=N, clusters=K)
    for bad in (torch.randn(0, N, 3, H, H), torch.randn(2, 0, 3, H, H)):
        with pytest.raises(ValueError, match="video must be"):
            model(bad)
    with pytest.raises(ValueError, match="frame_offsets"):
        model(torch.randn(0, 3, H, H), frame_offsets=[0, 0])
    meta = _model(num_frames=N, clusters=K).to("meta")  # device offsets: only shapes are checked (no sync)
    with pytest.raises(ValueError, match="at least one frame"):
        meta(torch.rand(1, 3, H, H, device="meta"), frame_offsets=torch.tensor([0, 1, 1], device="meta"))
    with pytest.raises(ValueError, match="no frames"):
        model.stream().push(torch.randn(0, 3, H, H)).finish()


# -------------------------------------------------------------------------------------------- TensorRT for RTX
@needs_rtx
def test_rtx_engine_builds_on_the_cpu_with_sidecar(exported, tmp_path, capsys):
    _, _, path = exported
    engine = str(tmp_path / "fv.engine")
    assert main(["export", SMALL, "--from-onnx", path, "--trt", engine, "--backend", "tensorrt_rtx",
                 "--rtx-targets", TARGET]) == 0, capsys.readouterr().err
    side = json.load(open(engine + ".json"))
    assert os.path.getsize(engine) > 10_000
    assert side["model"] == SMALL and side["num_frames"] == N and side["num_classes"] == C
    assert side["clusters"] == str(K) and side["rule"] == "slope" and side["selection"] == "none"
    assert side["inputs"] == [{"name": "clip", "shape": [1, N, 3, H, H], "dtype": "float"}]
    assert side["outputs"] == [{"name": "logits", "shape": [1, C], "dtype": "float"}]
    assert side["tensorrt"]["module"] == "tensorrt_rtx" and side["rtx_targets"] == [TARGET]
