"""Full-video clustering's plugin flavour (spec full-video-clustering.md §11.3): ``--flavour plugin`` replaces the
clustering step by one ``SegmentCluster`` node (csrc/trt/SegmentClusterPlugin.h), so the cumulative rule and ragged
batches (frames + ``frame_offsets``) export. The graph is checked against the C++ field table, then run in ONNX
Runtime with the node bound to the pure-PyTorch reference (conftest.plugin_graph_session; the C++ plugin itself runs
in tests/trt_harness) and compared with the model's own forward (the device clustering ops): logits ≤ 1e-4 relative,
segment boundaries equal — on random clips with random BN statistics, on ragged batches with videos shorter than K,
and with a negative control (the node's rule switched: the outputs change)."""
from __future__ import annotations

import io
import warnings

import pytest
import torch

import afnet_edge
from conftest import plugin_graph_session, randomize_model, single_threaded_module

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed (pip install afnet_edge[onnx])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install afnet_edge[onnx])")

from afnet_edge.cli import main  # noqa: E402
from afnet_edge.export import plugins as P  # noqa: E402
from afnet_edge.export.onnx_export import export_onnx  # noqa: E402
from afnet_edge.export.ops import flavour_scope  # noqa: E402
from afnet_edge.kernels import fullvideo_reference as FR  # noqa: E402
from afnet_edge.models import fullvideo  # noqa: E402
from afnet_edge.models.registry import BenchDefaults, registered  # noqa: E402
from test_export_onnx import cpp_plugin_fields  # noqa: E402

N, K, C, H = 10, 4, 5, 32
SMALL = "fullvideo_tsm_plugin_test"
_single_thread = single_threaded_module()


def _small(num_classes: int = C, num_frames: int = N, clusters: int = K, rule: str = "cumulative",
           max_frames: int | None = 1024, degenerate: str = "none") -> fullvideo.FullVideoTSM:
    """ResNet-18 layout, one block per stage, stages 16/32/64/128 wide (as tests/test_fullvideo_export.py)."""
    return fullvideo.FullVideoTSM(SMALL, fullvideo.BasicBlock, (1, 1, 1, 1), num_classes, num_frames, clusters, rule,
                                  max_frames, 0.5, degenerate, False, width=0.25)


@pytest.fixture(scope="module")
def small_registered():
    with registered(SMALL, _small, fullvideo.HOOKS, default_frames=N, bench=BenchDefaults(False, (N,), "small")):
        yield


def _model(seed: int = 0, **kw) -> fullvideo.FullVideoTSM:
    return randomize_model(afnet_edge.create_model(SMALL, num_classes=C, **kw), seed).eval()


_REGISTERED = []


def _bind(proto):
    """ONNX Runtime session whose SegmentCluster nodes run :mod:`afnet_edge.kernels.fullvideo_reference`."""
    ortx = pytest.importorskip("onnxruntime_extensions",
                               reason="onnxruntime-extensions not installed (needed to run plugin nodes on CPU)")
    if not _REGISTERED:
        D = ortx.PyCustomOpDef
        rules = {v: k for k, v in P.SEGMENT_CLUSTER_RULES.items()}

        @ortx.onnx_op(op_type="SegmentCluster", inputs=[D.dt_float, D.dt_int64], outputs=[D.dt_float, D.dt_int64],
                      attrs={"plugin_version": D.dt_string, "plugin_namespace": D.dt_string, "clusters": D.dt_int64,
                             "rule": D.dt_int64})
        def _segment_cluster(a, fo, **kw):
            a, fo = torch.from_numpy(a), torch.from_numpy(fo)
            h = FR.adjacent_hamming(FR.binarize_pack(a))
            offsets, m = FR.segment_boundaries(h, int(kw["clusters"]), rules[int(kw["rule"])], fo)
            return FR.segment_mean(a, offsets, m, fo).contiguous().numpy(), offsets.numpy()

        _REGISTERED.append(True)
    return plugin_graph_session(proto, ortx)


def _export_wrapper(model, args: tuple, names: list) -> "onnx.ModelProto":
    """torch.onnx.export of the family's wrapper (segments output too) made inside the plugin flavour scope."""
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), flavour_scope("plugin"):
        warnings.simplefilter("ignore")
        wrapper = fullvideo.ExportForward(model, segments=True).eval()
        torch.onnx.export(wrapper, args, buf, dynamo=False, opset_version=17, input_names=names,
                          output_names=["logits", "segments"], custom_opsets={P.PLUGIN_DOMAIN: 1})
    return onnx.load_from_string(buf.getvalue())


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_cli_export_has_one_segment_cluster_node(small_registered, tmp_path):
    """The CLI's plugin export of a cumulative model: one SegmentCluster node with the C++ table's fields, the rest
    standard operators (no Loop/Scan, no portable slope graph), and it runs in ONNX Runtime against the model."""
    path = str(tmp_path / "fv_plugin.onnx")
    assert main(["export", SMALL, "--random-weights", "--frames", str(N), "--size", str(H), "--rule", "cumulative",
                 "--flavour", "plugin", "--batch", "2", "--onnx", path]) == 0
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    custom = [n for n in proto.graph.node if n.domain not in ("", "ai.onnx")]
    assert [(n.op_type, n.domain) for n in custom] == [("SegmentCluster", P.PLUGIN_DOMAIN)]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in custom[0].attribute}
    assert attrs.pop("plugin_version").decode() == P.PLUGIN_VERSION
    assert attrs.pop("plugin_namespace").decode() == P.PLUGIN_NAMESPACE
    assert list(attrs) == cpp_plugin_fields()["SegmentCluster"]["creator"] == ["clusters", "rule"]
    assert attrs == {"clusters": K, "rule": P.SEGMENT_CLUSTER_RULES["cumulative"]}
    assert len(custom[0].input) == 2 and len(custom[0].output) == 2
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Loop", "Scan", "TopK", "CumSum", "Greater", "MatMul"}, ops   # no portable clustering left
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["afnet_edge.flavour"] == "plugin" and meta["afnet_edge.rule"] == "cumulative"


@pytest.mark.parametrize("rule", ["cumulative", "slope"])
def test_plugin_graph_matches_the_model_in_onnxruntime(small_registered, rule):
    """Clip (B=2, N) export: logits ≤ 1e-4 relative and boundaries equal to the model's own forward, with repeated
    frames (tied distances, uneven cuts); negative control: the node's rule switched changes the boundaries."""
    model = _model(3, rule=rule)
    g = torch.Generator().manual_seed(11)
    example = torch.randn(2, N, 3, H, H, generator=g)
    proto = _export_wrapper(model, (example,), ["clip"])
    sess = _bind(proto)
    for seed in (1, 2):
        clip = torch.randn(2, N, 3, H, H, generator=torch.Generator().manual_seed(seed))
        clip[1, 3:7] = clip[1, 3:4]                                   # a still stretch: zero distances
        with torch.no_grad():
            ref = model(clip)
        logits, segments = (torch.from_numpy(x) for x in sess.run(None, {"clip": clip.numpy()}))
        assert torch.equal(segments, ref.segments), (segments, ref.segments)
        assert _rel(logits, ref.logits) <= 1e-4
    other = "slope" if rule == "cumulative" else "cumulative"
    for n in proto.graph.node:
        if n.op_type == "SegmentCluster":
            for a in n.attribute:
                if a.name == "rule":
                    a.i = P.SEGMENT_CLUSTER_RULES[other]
    with torch.no_grad():
        want_other = _model(3, rule=other)(clip).segments
    _, seg_other = _bind(proto).run(None, {"clip": clip.numpy()})
    assert torch.equal(torch.from_numpy(seg_other), want_other)
    assert not torch.equal(want_other, ref.segments)                  # the control distinguishes the rules


def test_ragged_batch_exports_and_matches(small_registered):
    """Ragged export (frames (ΣN_i, 3, H, W) + frame_offsets (B+1,) inputs): other offsets at run time, videos
    shorter than K (one segment per frame, padded), one-frame videos — equal boundaries, logits ≤ 1e-4."""
    model = _model(5, rule="cumulative")
    total = 16
    frames = torch.randn(total, 3, H, H, generator=torch.Generator().manual_seed(7))
    proto = _export_wrapper(model, (frames, torch.tensor([0, 6, 9, total])), ["frames", "frame_offsets"])
    assert {i.name for i in proto.graph.input} == {"frames", "frame_offsets"}
    sess = _bind(proto)
    for offs in ([0, 6, 9, total], [0, 1, 3, total], [0, 13, 14, total]):
        fo = torch.tensor(offs)
        with torch.no_grad():
            ref = model(frames, frame_offsets=fo)
        logits, segments = (torch.from_numpy(x) for x in sess.run(None, {"frames": frames.numpy(),
                                                                         "frame_offsets": fo.numpy()}))
        assert torch.equal(segments, ref.segments), (offs, segments, ref.segments)
        assert _rel(logits, ref.logits) <= 1e-4, offs


def test_forward_plugin_eagerly_equals_forward(small_registered):
    """forward_plugin with the reference step (the marker outside an export) equals forward: clip and ragged."""
    from afnet_edge.export.ops import plugin_segment_cluster
    model = _model(9, rule="cumulative")
    clip = torch.randn(2, N, 3, H, H, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got, ref = model.forward_plugin(clip, None, plugin_segment_cluster), model(clip)
        assert torch.equal(got.segments, ref.segments) and torch.equal(got.num_segments, ref.num_segments)
        assert _rel(got.logits, ref.logits) <= 1e-5
        frames, fo = clip.reshape(-1, 3, H, H)[:13], torch.tensor([0, 2, 13])
        got, ref = model.forward_plugin(frames, fo, plugin_segment_cluster), model(frames, frame_offsets=fo)
        assert torch.equal(got.segments, ref.segments) and torch.equal(got.num_segments, ref.num_segments)
        assert _rel(got.logits, ref.logits) <= 1e-5


def test_plugin_refusals_name_the_option(small_registered, tmp_path, capsys):
    with pytest.raises(ValueError, match="cumulative_official.*SegmentCluster"):
        export_onnx(_model(rule="cumulative_official"), str(tmp_path / "o.onnx"), flavour="plugin", size=H)
    with pytest.raises(ValueError, match="degenerate='even'"):
        export_onnx(_model(rule="slope", degenerate="even"), str(tmp_path / "d.onnx"), flavour="plugin", size=H)
    capsys.readouterr()
    assert main(["export", SMALL, "--random-weights", "--frames", str(N), "--size", str(H), "--rule",
                 "cumulative_official", "--flavour", "plugin", "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--rule" in err and "SegmentCluster" in err, err
    with flavour_scope("plugin"):
        wrapper = fullvideo.ExportForward(_model(rule="cumulative"))
    with pytest.raises(ValueError, match="frame_offsets"):
        wrapper.model.forward_plugin(torch.randn(4, 3, H, H), None, lambda *a: None)
