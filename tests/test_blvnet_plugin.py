"""bLVNet-TAM's ``plugin`` export flavour (issue 13 items 3-4): every TAM and merge as one TensorRT plugin node.

``afnet-edge export blvnet_tam_r50 --flavour plugin --dynamic-batch`` on the narrow R50 of tests/test_blvnet_export.py
(``base_width=8``, G = 4 frames, 32 px; random convs, TAM taps and BN statistics) must give standard ONNX operators
plus exactly the expected plugin nodes — one ``TemporalAggregate`` per stem / layer4 TAM (``num_frames`` G and G/2),
one two-output ``TemporalAggregatePair`` per bL stage (``num_pairs`` G/2, the folded weights of spec §4.3), one
``BLMerge`` per merge (layer0 and the three stages) — with the fields the C++ creators declare (``csrc/trt``, parsed
as for the other plugins) and the TAM weights as float32 constants equal to the model's taps. The graph is then *run*:
the nodes are bound to the pure-PyTorch references through onnxruntime-extensions and ONNX Runtime must match the
official-semantics PyTorch forward ≤ 1e-4 at batch 1 and 2. The plugins' CUDA side (fp32/fp16/bf16, both TAM forms,
the merge) is checked by the plugin harness (scripts/trt_plugin_check.sh), the kernels by tests/test_blvnet_kernels*.py
and the emulator.
"""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from conftest import plugin_graph_session, single_threaded_module

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed (pip install afnet_edge[onnx])")

from afnet_edge.checkpoint import save_checkpoint  # noqa: E402
from afnet_edge.cli import main  # noqa: E402
from afnet_edge.export import plugins as P  # noqa: E402
from afnet_edge.export.ops import flavour_scope  # noqa: E402
from afnet_edge.kernels import blvnet_ops  # noqa: E402
from afnet_edge.kernels import blvnet_reference as BR  # noqa: E402
from afnet_edge.layers.blvnet import TAM  # noqa: E402
from test_blvnet_export import G, MODEL, STANDARD, S, WIDTH, random_model  # noqa: E402
from test_blvnet_tam import rel_err  # noqa: E402
from test_export_onnx import cpp_plugin_fields  # noqa: E402

P_ = G // 2
#: (op, T field value) of the plugin nodes in graph order: stem TAM, layer0 merge, 3 × (stage TAM, merge), layer4
EXPECTED = ([("TemporalAggregate", G), ("BLMerge", None)] + [("TemporalAggregatePair", P_), ("BLMerge", None)] * 3
            + [("TemporalAggregate", P_)] * 3)


_single_thread = single_threaded_module()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The random narrow model and its plugin-flavour dynamic-batch export by the CLI from its checkpoint."""
    d = tmp_path_factory.mktemp("blv_plugin")
    model = random_model(3)
    ckpt, path = str(d / "blv.pth"), str(d / "blv_plugin.onnx")
    save_checkpoint(model, ckpt)
    assert main(["export", MODEL, "--checkpoint", ckpt, "--size", str(S), "--flavour", "plugin", "--dynamic-batch",
                 "--onnx", path]) == 0
    return model, path


_REGISTERED = []


def _bind(proto) -> "ort.InferenceSession":
    """ONNX Runtime session for a copy of ``proto`` whose bLVNet plugin nodes run the references (Python custom ops
    of onnxruntime-extensions, registered once per process: it keeps Python ops globally)."""
    ortx = pytest.importorskip("onnxruntime_extensions",
                               reason="onnxruntime-extensions not installed (needed to run plugin nodes on CPU)")
    if not _REGISTERED:
        D = ortx.PyCustomOpDef
        common = {"plugin_version": D.dt_string, "plugin_namespace": D.dt_string, "relu": D.dt_int64}
        t = torch.from_numpy

        @ortx.onnx_op(op_type="TemporalAggregate", inputs=[D.dt_float, D.dt_float], outputs=[D.dt_float],
                      attrs={**common, "num_frames": D.dt_int64})
        def _tam(x, w, **kw):
            return BR.temporal_aggregate(t(x), t(w), int(kw["num_frames"]), bool(kw["relu"])).numpy()

        @ortx.onnx_op(op_type="TemporalAggregatePair", inputs=[D.dt_float, D.dt_float, D.dt_float],
                      outputs=[D.dt_float, D.dt_float], attrs={**common, "num_pairs": D.dt_int64})
        def _tam_pair(y, wb, wl, **kw):
            big, little = BR.temporal_aggregate_pair(t(y), t(wb), t(wl), int(kw["num_pairs"]), bool(kw["relu"]))
            return big.contiguous().numpy(), little.contiguous().numpy()

        @ortx.onnx_op(op_type="BLMerge", inputs=[D.dt_float, D.dt_float], outputs=[D.dt_float], attrs=common)
        def _merge(big, little, **kw):
            return BR.bl_merge(t(big), t(little), bool(kw["relu"])).numpy()

        _REGISTERED.append(True)
    return plugin_graph_session(proto, ortx)


def test_plugin_graph_is_standard_ops_plus_exactly_the_blvnet_plugins(exported):
    model, path = exported
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    custom = [n for n in proto.graph.node if n.domain not in ("", "ai.onnx")]
    assert all(n.domain == P.PLUGIN_DOMAIN for n in custom)
    fields = cpp_plugin_fields()
    got = []
    for n in custom:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs.pop("plugin_version").decode() == P.PLUGIN_VERSION
        assert attrs.pop("plugin_namespace").decode() == P.PLUGIN_NAMESPACE
        assert list(attrs) == fields[n.op_type]["creator"], (n.op_type, attrs)    # the C++ field table, in order
        assert attrs["relu"] == 1
        got.append((n.op_type, attrs.get("num_frames", attrs.get("num_pairs"))))
        assert len(n.output) == len(P.BY_NAME[n.op_type].outputs)              # the pair node: both branch inputs
    assert got == EXPECTED
    standard = {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")}
    assert standard <= STANDARD and "Resize" not in standard, standard       # the merges are the BLMerge nodes
    consts = {i.name: i for i in proto.graph.initializer}
    for n in proto.graph.node:                                                # no TAM left as a temporal conv
        if n.op_type == "Conv":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            assert a.get("group", 1) == 1, n.name
    # the TAM weights: float32 (K, C) constants equal to the model's taps (folded for the pair nodes, §4.3)
    tams = [m for m in model.modules() if isinstance(m, TAM)]
    order = [tams[0]] + [tams[i] for i in (1, 2, 3)] + tams[4:]               # stem, stages, layer4 (graph order)
    tam_nodes = [n for n in custom if n.op_type != "BLMerge"]
    assert len(tam_nodes) == len(order) == 7
    for n, tam in zip(tam_nodes, order):
        w = tam.weight().detach()
        want = [w] if n.op_type == "TemporalAggregate" else list(BR.fold_pair_weights(w))
        for name, ref in zip(n.input[1:], want):
            init = consts[name]
            assert init.data_type == onnx.TensorProto.FLOAT and list(init.dims) == [3, tam.channels]
            assert torch.equal(torch.from_numpy(onnx.numpy_helper.to_array(init).copy()), ref.float())
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["afnet_edge.flavour"] == "plugin" and meta["afnet_edge.base_width"] == str(WIDTH)


def test_plugin_graph_runs_in_onnxruntime_and_matches_the_official_forward(exported):
    model, path = exported
    sess = _bind(onnx.load(path))
    g = torch.Generator().manual_seed(29)
    for b in (1, 2):
        clip = torch.randn(b, G, 3, S, S, generator=g)
        with torch.no_grad():
            official = model.configure(execution="masked")(clip).logits
            other = model(clip.flip(1)).logits
        got = torch.from_numpy(sess.run(None, {"clip": clip.numpy()})[0])
        assert got.shape == official.shape
        assert rel_err(got, official) <= 1e-4, f"batch {b}: relative error {rel_err(got, official):.2e}"
        assert rel_err(other, official) > 1e-2                                # the frame order counts


def test_markers_compute_the_references_eagerly(rng):
    """Inside flavour_scope('plugin') the three switch functions are the markers, whose eager value is the reference;
    outside it (and inside 'portable') the usual switch again."""
    x = torch.randn(3 * 4, 5, 3, 4, generator=rng)
    w = torch.randn(3, 5, generator=rng)
    wb, wl = BR.fold_pair_weights(w)
    big, little = torch.randn(6, 5, 2, 3, generator=rng), torch.randn(6, 5, 4, 6, generator=rng)
    with flavour_scope("plugin"):
        assert blvnet_ops.impl_active()
        assert torch.equal(blvnet_ops.temporal_aggregate(x, w, 4), BR.temporal_aggregate(x, w, 4))
        for a, b in zip(blvnet_ops.temporal_aggregate_pair(x, wb, wl, 4), BR.temporal_aggregate_pair(x, wb, wl, 4)):
            assert torch.equal(a, b)
        assert torch.equal(blvnet_ops.bl_merge(big[:, :, :2], little[:, :, :4]),
                           BR.bl_merge(big[:, :, :2], little[:, :, :4]))
        with pytest.raises(ValueError, match="not a multiple of num_frames"):
            blvnet_ops.temporal_aggregate(x, w, 5)
    with flavour_scope("portable"):
        assert not blvnet_ops.impl_active()
    assert not blvnet_ops.impl_active()
    with pytest.raises(TypeError, match="impl must be None or provide"):
        with blvnet_ops.use_impl("plugin"):
            pass


def test_trt_auto_flavour_picks_the_plugin_graph(monkeypatch):
    """``--trt --plugins auto`` where TensorRT takes plugins and the library exists: the plugin graph for bLVNet."""
    from afnet_edge.export import cli as export_cli
    monkeypatch.setattr(export_cli, "load_tensorrt", lambda backend: argparse.Namespace(supports_plugins=True))
    monkeypatch.setattr(export_cli, "find_plugin_library", lambda path: "/plugins/libafnet_edge_trt.so")
    args = argparse.Namespace(trt="x.engine", plugins="auto", flavour=None, model=MODEL, backend="tensorrt",
                              plugin_library=None)
    assert export_cli._choose_flavour(args) == "plugin"
    monkeypatch.setattr(export_cli, "find_plugin_library", lambda path: None)
    assert export_cli._choose_flavour(args) == "portable"
