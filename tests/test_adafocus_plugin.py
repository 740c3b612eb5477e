"""AdaFocusV2's ``plugin`` export flavour: the patch crop as one ``FocusCrop`` TensorRT plugin node (issue 12 item 5).

``afnet-edge export MODEL --flavour plugin`` on a registered narrow AdaFocusV2-MN2 (dynamic batch) must give standard
ONNX operators plus exactly one ``FocusCrop`` node in the plugin domain, with the fields the C++ creator declares
(``csrc/trt/FocusCropPlugin.h``, parsed as for the AFNet plugins). The graph is then *run*: the ``FocusCrop`` node is
bound to the pure-PyTorch reference crop through onnxruntime-extensions, and ONNX Runtime must match the PyTorch
model ≤ 1e-4 at batch 1 and 2. The plugin's CUDA side (the kernel behind the node, fp32/fp16/bf16, both modes) is
checked by the plugin harness (scripts/trt_plugin_check.sh), its kernel by tests/test_adafocus_kernel*.py and the
emulator. A tiny traced graph covers the ``floor`` mode (AdaFocus V1's crop) of the marker.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import afnet_edge
from conftest import plugin_graph_session, single_threaded_module

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed (pip install afnet_edge[onnx])")

from afnet_edge.checkpoint import save_checkpoint  # noqa: E402
from afnet_edge.cli import main  # noqa: E402
from afnet_edge.export import plugins as P  # noqa: E402
from afnet_edge.export.ops import flavour_scope, plugin_focus_crop  # noqa: E402
from afnet_edge.kernels import adafocus_ops  # noqa: E402
from afnet_edge.kernels import adafocus_reference as AR  # noqa: E402
from afnet_edge.models import adafocus  # noqa: E402
from afnet_edge.models.registry import BenchDefaults, registered  # noqa: E402
from test_export_onnx import cpp_plugin_fields  # noqa: E402

T, PATCH, C, H = 2, 32, 5, 224
SMALL = "adafocus_v2_mn2_plugin_test"


_single_thread = single_threaded_module()


def _small(num_classes: int = C, num_frames: int = T, patch_size: int = PATCH, frame_order: bool = True):
    # narrow policy GRU and classifier MLP (128 / 256 instead of 2048 / 4096) and a local ResNet with one bottleneck
    # per stage (still 2048 features): the crop and every op around it as in adafocus_v2_mn2, a third of the weights,
    # which keeps the export (tracing, ONNX folding, serialisation) short
    model = adafocus.AdaFocusV2(SMALL, "mn2", num_classes, num_frames, patch_size, hidden_dim=128,
                                frame_order=frame_order, classifier_dim=256)
    for i in range(1, 5):
        stage = getattr(model.local_CNN, f"layer{i}")
        setattr(model.local_CNN, f"layer{i}", stage[:1])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, ONNX path) of ``afnet-edge export SMALL --flavour plugin --dynamic-batch`` from a checkpoint. The
    factory's initialisation (identity BN statistics) as in tests/test_adafocus_export.py: with calibrated BN the
    logits of a random network on noise clips are ill-conditioned in the sub-pixel actions."""
    d = tmp_path_factory.mktemp("ada_plugin")
    with registered(SMALL, _small, adafocus.HOOKS, default_frames=T, bench=BenchDefaults(False, (T,), "small")):
        torch.manual_seed(82)
        model = afnet_edge.create_model(SMALL, num_classes=C, num_frames=T, patch_size=PATCH).eval()
        ckpt, path = str(d / "ada.pth"), str(d / "ada_plugin.onnx")
        save_checkpoint(model, ckpt)
        assert main(["export", SMALL, "--checkpoint", ckpt, "--patch-size", str(PATCH), "--flavour", "plugin",
                     "--dynamic-batch", "--onnx", path]) == 0
        yield model, path


_REGISTERED = []


def _bind(proto) -> "ort.InferenceSession":
    """ONNX Runtime session for a copy of ``proto`` whose FocusCrop nodes run the reference crop (Python custom op of
    onnxruntime-extensions, registered once per process: it keeps Python ops globally)."""
    ortx = pytest.importorskip("onnxruntime_extensions",
                               reason="onnxruntime-extensions not installed (needed to run plugin nodes on CPU)")
    if not _REGISTERED:
        D = ortx.PyCustomOpDef
        attrs = {"plugin_version": D.dt_string, "plugin_namespace": D.dt_string, "mode": D.dt_int64,
                 "patch_size": D.dt_int64}
        modes = {v: k for k, v in P.FOCUS_CROP_MODES.items()}

        @ortx.onnx_op(op_type="FocusCrop", inputs=[D.dt_float, D.dt_float], outputs=[D.dt_float], attrs=attrs)
        def _focus_crop(x, centres, **kw):
            return AR.focus_crop(torch.from_numpy(x), torch.from_numpy(centres), int(kw["patch_size"]),
                                 modes[int(kw["mode"])]).numpy()

        _REGISTERED.append(True)
    return plugin_graph_session(proto, ortx)


def _dims(vi) -> list:
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def test_plugin_graph_is_standard_ops_plus_one_focus_crop(exported):
    _, path = exported
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    custom = [n for n in proto.graph.node if n.domain not in ("", "ai.onnx")]
    assert [(n.domain, n.op_type) for n in custom] == [(P.PLUGIN_DOMAIN, "FocusCrop")]
    standard = {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")}
    assert all(onnx.defs.has(op) for op in standard), standard
    assert "GRU" in standard and not standard & {"GatherElements", "Floor", "Pad"}, standard  # the crop is the node
    node = custom[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs.pop("plugin_version").decode() == P.PLUGIN_VERSION
    assert attrs.pop("plugin_namespace").decode() == P.PLUGIN_NAMESPACE
    assert attrs == {"mode": P.FOCUS_CROP_MODES["bilinear"], "patch_size": PATCH}
    assert list(attrs) == cpp_plugin_fields()["FocusCrop"]["creator"]    # the C++ field table, in its order
    # x (B·T frames, 3, 224, 224) float32 and centres float32 (B·T, 2) in, frame axis symbolic (the output's shape
    # is left to TensorRT in a dynamic-batch graph: ONNX shape inference cannot see through a custom node)
    info = {v.name: v for v in (*proto.graph.value_info, *proto.graph.input, *proto.graph.output)}
    x, centres = info[node.input[0]], info[node.input[1]]
    assert x.type.tensor_type.elem_type == centres.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(x)[1:] == [3, H, H] and _dims(centres)[1:] == [2]
    assert all(isinstance(_dims(v)[0], str) for v in (x, centres)), "frame axis baked into a constant"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["afnet_edge.flavour"] == "plugin" and meta["afnet_edge.plugin_version"] == P.PLUGIN_VERSION
    assert meta["afnet_edge.model"] == SMALL and meta["afnet_edge.patch_size"] == str(PATCH)


def test_plugin_graph_runs_in_onnxruntime_and_matches_pytorch(exported):
    model, path = exported
    sess = _bind(onnx.load(path))
    g = torch.Generator().manual_seed(17)
    for b in (1, 2):
        clip = torch.randn(b, T, 3, H, H, generator=g)
        with torch.no_grad():
            want = model(clip).logits.numpy()
        got = sess.run(None, {"clip": clip.numpy()})[0]
        assert got.shape == (b, C)
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel <= 1e-4, f"batch {b}: relative error {rel:.2e}"
        assert (got.argmax(-1) == want.argmax(-1)).all()


class _Crop(torch.nn.Module):
    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x, centres):
        return adafocus_ops.focus_crop(x, centres, 5, self.mode, kernels="torch")


@pytest.mark.parametrize("mode", ["floor", "bilinear"])
def test_focus_crop_marker_traces_to_one_node_and_computes_the_reference(tmp_path, mode):
    """The crop switch inside flavour_scope('plugin') emits one FocusCrop node with the mode's field; eagerly it is
    the reference; bound in ONNX Runtime it reproduces the reference (floor: exactly), edge and outside actions
    included."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 9, 11, generator=g)
    centres = torch.tensor([[0.0, 1.0], [1.0, 0.37], [-0.2, 1.3], [0.61, 0.125]])
    want = AR.focus_crop(x, centres, 5, mode)
    with flavour_scope("plugin"):
        assert torch.equal(_Crop(mode)(x, centres), want)
        path = str(tmp_path / "crop.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")    # the tracer's notes on the reference's Python-scalar sizes
            torch.onnx.export(_Crop(mode), (x, centres), path, dynamo=False, opset_version=17,
                              input_names=["x", "centres"], custom_opsets={P.PLUGIN_DOMAIN: 1})
    proto = onnx.load(path)
    assert [n.op_type for n in proto.graph.node] == ["FocusCrop"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.graph.node[0].attribute}
    assert attrs["mode"] == P.FOCUS_CROP_MODES[mode] and attrs["patch_size"] == 5
    got = _bind(proto).run(None, {"x": x.numpy(), "centres": centres.numpy()})[0]
    if mode == "floor":
        assert np.array_equal(got, want.numpy())
    else:
        assert np.abs(got - want.numpy()).max() <= 1e-6
    with flavour_scope("portable"):     # the model's own switch again: standard ops when traced
        assert adafocus_ops._CROP.get() is None


def test_plugin_crop_bad_input():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="patch must be"):
        plugin_focus_crop(x, torch.rand(2, 2), 9)
    with pytest.raises(ValueError, match="centres must be"):
        plugin_focus_crop(x, torch.rand(3, 2), 4)
    with pytest.raises(TypeError, match="fn must be a callable"):
        with adafocus_ops.use_crop("plugin"):  # type: ignore[arg-type]
            pass
