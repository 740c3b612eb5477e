"""ONNX export of all AF models, both flavours: checker, ONNX Runtime vs PyTorch, plugin nodes vs the C++ creators.

Small inputs (T=4, 64×64, batch 1) keep the exports to seconds; random weights and BN statistics (conftest) make every
block carry information. The plugin graph is also *run*: its plugin nodes are bound to the pure-PyTorch reference of
each fused op through onnxruntime-extensions (when installed), which checks the node wiring, input order, constant
maps and attributes numerically.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

import afnet_edge
from conftest import plugin_graph_session, randomize_model, single_threaded_module

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed (pip install afnet_edge[onnx])")

from afnet_edge.export import plugins as P  # noqa: E402
from afnet_edge.export.onnx_export import check_model_matches, export_onnx, read_metadata  # noqa: E402
from afnet_edge.layers.focal import FocalBlock  # noqa: E402

T, SIZE, CLASSES = 4, 64, 7
MODELS = ["af_resnet50", "af_resnet101", "af_mobilenetv3"]
STAGES = {"af_resnet50": 3, "af_resnet101": 3, "af_mobilenetv3": 2}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRT_DIR = os.path.join(REPO, "csrc", "trt")


_single_thread = single_threaded_module()


def _session(path_or_bytes, so=None):
    so = so or ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def _model(name: str, seed: int = 0):
    return randomize_model(afnet_edge.create_model(name, num_classes=CLASSES, num_frames=T), seed)


def _reference(model, clip: torch.Tensor, ratio: float) -> np.ndarray:
    ref = afnet_edge.create_model(model.arch, num_classes=CLASSES, num_frames=T)
    ref.load_state_dict(model.state_dict())
    ref.configure(execution="compact", selection="topk", ratio=ratio, kernels="torch")
    with torch.no_grad():
        return ref(clip).logits.numpy()


@pytest.fixture(scope="module", params=MODELS)
def exported(request, tmp_path_factory):
    """(model, {flavour: ExportResult}) for one model, exported once per test module."""
    name = request.param
    model = _model(name, seed=MODELS.index(name))
    out = tmp_path_factory.mktemp(name)
    res = {fl: export_onnx(model, str(out / f"{name}_{fl}.onnx"), frames=T, ratio=0.5, batch=1, flavour=fl,
                           size=SIZE)
           for fl in ("portable", "plugin")}
    return model, res


# ----------------------------------------------------------------------------------------------------- portable
def test_portable_passes_checker_and_uses_standard_ops_only(exported):
    model, res = exported
    proto = onnx.load(res["portable"].path)
    onnx.checker.check_model(proto, full_check=True)
    domains = {n.domain for n in proto.graph.node}
    assert domains <= {"", "ai.onnx"}, domains
    ops = {n.op_type for n in proto.graph.node}
    assert {"TopK", "ScatterND", "Gather", "Conv"} <= ops
    assert not ops & {"NonZero", "Loop", "If"}, "static shapes: no data-dependent ops"
    # every shape static: the graph input and output are fully known
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, T, 3, SIZE, SIZE]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [1, CLASSES]


def test_portable_matches_pytorch_in_onnxruntime(exported):
    model, res = exported
    sess = _session(res["portable"].path)
    g = torch.Generator().manual_seed(99)
    for clip in (res["portable"].example_clip, torch.randn(1, T, 3, SIZE, SIZE, generator=g)):
        want = _reference(model, clip, 0.5)
        got = sess.run(None, {"clip": clip.numpy()})[0]
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel <= 1e-4, f"relative error {rel:.2e}"
        assert (got.argmax(-1) == want.argmax(-1)).all()


def test_metadata_recorded(exported):
    model, res = exported
    for fl, r in res.items():
        meta = read_metadata(r.path)
        assert meta["model"] == model.arch and meta["num_frames"] == T and meta["num_classes"] == CLASSES
        assert meta["ratio"] == 0.5 and meta["k"] == 2 and meta["batch"] == 1 and meta["flavour"] == fl
        assert meta["height"] == SIZE and meta["width"] == SIZE and meta["afnet_edge_version"] == afnet_edge.__version__
        assert meta["plugin_version"] == (P.PLUGIN_VERSION if fl == "plugin" else "")
        check_model_matches(meta, model)


# ------------------------------------------------------------------------------------------------------- plugin
def _focal_blocks(model) -> list:
    return [m for m in model.modules() if isinstance(m, FocalBlock)]


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_plugin_graph_nodes_and_attributes(exported):
    model, res = exported
    proto = onnx.load(res["plugin"].path)
    onnx.checker.check_model(proto)
    nodes = [n for n in proto.graph.node if n.domain == P.PLUGIN_DOMAIN]
    by_op: dict = {}
    for n in nodes:
        by_op.setdefault(n.op_type, []).append(n)
    focal = _focal_blocks(model)
    assert len(by_op["FocalGather"]) == len(by_op["FocalScatter"]) == len(focal)
    assert len(by_op["AmpleFusePool"]) == len(by_op["AmpleFuseBlend"]) == STAGES[model.arch]
    for n in nodes:
        a = _attrs(n)
        assert a.pop("plugin_version").decode() == P.PLUGIN_VERSION
        assert a.pop("plugin_namespace").decode() == P.PLUGIN_NAMESPACE
        assert tuple(a) == P.BY_NAME[n.op_type].fields or sorted(a) == sorted(P.BY_NAME[n.op_type].fields)
    # Field values follow the model, block by block (the graph is topologically sorted = model order).
    assert [_attrs(n)["num_frames"] for n in by_op["FocalGather"]] == [T] * len(focal)
    assert [_attrs(n)["shift"] for n in by_op["FocalGather"]] == [int(b.shift) for b in focal]
    assert [_attrs(n)["relu"] for n in by_op["FocalScatter"]] == [int(b.last_relu) for b in focal]
    blend_relu = int(model.arch.startswith("af_resnet"))
    assert [_attrs(n)["relu"] for n in by_op["AmpleFuseBlend"]] == [blend_relu] * STAGES[model.arch]
    # The index input of gather/scatter is int64 and comes from the TopK selection.
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*proto.graph.value_info, *proto.graph.input)}
    for n in by_op["FocalGather"]:
        assert types.get(n.input[1]) == onnx.TensorProto.INT64
    # Constant maps are initializers (fed straight into FocalScatter).
    inits = {i.name for i in proto.graph.initializer}
    assert all(n.input[3] in inits for n in by_op["FocalScatter"])


_REFERENCE_OPS_REGISTERED = []


def _register_reference_ops(ortx) -> None:
    """Register the four plugin ops once per process (onnxruntime-extensions keeps Python ops globally)."""
    if _REFERENCE_OPS_REGISTERED:
        return
    from afnet_edge.kernels import reference as R
    D = ortx.PyCustomOpDef
    common = {"plugin_version": D.dt_string, "plugin_namespace": D.dt_string}
    t = torch.from_numpy

    @ortx.onnx_op(op_type="FocalGather", inputs=[D.dt_float, D.dt_int64], outputs=[D.dt_float],
                  attrs={**common, "num_frames": D.dt_int64, "shift": D.dt_int64})
    def _gather(x, index, **kw):
        return R.focal_gather(t(x), t(index), int(kw["num_frames"]), bool(kw["shift"])).numpy()

    @ortx.onnx_op(op_type="FocalScatter", inputs=[D.dt_float, D.dt_float, D.dt_int64, D.dt_float],
                  outputs=[D.dt_float], attrs={**common, "relu": D.dt_int64})
    def _scatter(r, y, index, const, **kw):
        return R.focal_scatter(t(r), t(y), t(index), t(const), bool(kw["relu"])).numpy()

    @ortx.onnx_op(op_type="AmpleFusePool", inputs=[D.dt_float, D.dt_float], outputs=[D.dt_float], attrs=common)
    def _pool(xl, xb, **kw):
        return R.ample_fuse_pool(t(xl), t(xb)).numpy()

    @ortx.onnx_op(op_type="AmpleFuseBlend", inputs=[D.dt_float, D.dt_float, D.dt_float], outputs=[D.dt_float],
                  attrs={**common, "relu": D.dt_int64})
    def _blend(xl, xb, a, **kw):
        return R.ample_fuse_blend(t(xl), t(xb), t(a), bool(kw["relu"])).numpy()

    _REFERENCE_OPS_REGISTERED.append(True)


def _bind_reference_plugins(proto):
    """Session for a copy of ``proto`` whose plugin nodes run the pure-PyTorch reference ops through
    onnxruntime-extensions (Python custom ops in its ``ai.onnx.contrib`` domain)."""
    ortx = pytest.importorskip("onnxruntime_extensions",
                               reason="onnxruntime-extensions not installed (needed to run plugin nodes on CPU)")
    _register_reference_ops(ortx)
    return plugin_graph_session(proto, ortx)


def test_plugin_graph_computes_the_model(exported):
    model, res = exported
    sess = _bind_reference_plugins(onnx.load(res["plugin"].path))
    clip = torch.randn(1, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    want = _reference(model, clip, 0.5)
    got = sess.run(None, {"clip": clip.numpy()})[0]
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-4


# ------------------------------------------------------------------------------- C++ creators == ONNX attributes
def _function_body(src: str, signature: str) -> str:
    start = src.index(signature)
    i = src.index("{", start)
    depth = 0
    for j in range(i, len(src)):
        depth += {"{": 1, "}": -1}.get(src[j], 0)
        if depth == 0:
            return src[i:j + 1]
    raise AssertionError(f"unbalanced braces after {signature}")


def cpp_plugin_fields() -> dict:
    """{plugin name: {"creator": [...], "serialised": [...], "parsed": [...]}} read from csrc/trt.

    Each plugin writes its fields once, in the table ``kFields`` of its ``<Name>Spec`` (``<Name>Plugin.h``); the
    creator's field list, ``createPlugin``'s parsing and ``getFieldsToSerialize`` are generic code in
    ``afnPluginCommon.h`` (``PluginCreator``, ``parseFields``, ``PluginBase``). The three lists are read from the code
    that produces each of them: it is checked here that each generic function draws its fields from the table, as
    scalar kINT32, that every plugin uses that generic code, and that no plugin builds a ``PluginField`` anywhere else.
    """
    common = open(os.path.join(TRT_DIR, "afnPluginCommon.h")).read()
    creator_body = _function_body(common, "PluginCreator() noexcept")
    create_body = _function_body(common, "IPluginV3* createPlugin(")
    serial_body = _function_body(common, "PluginFieldCollection const* getFieldsToSerialize() noexcept override")
    parse_body = _function_body(common, "bool parseFields(")
    scalar = r"PluginFieldType::kINT32,\s*1\)"
    assert re.search(r"PluginField\(Spec::kFields\[i\]\.name,\s*nullptr,\s*" + scalar, creator_body), creator_body
    assert "parseFields<Spec>(fc, params)" in create_body, create_body
    assert re.search(r"auto const& f = Spec::kFields\[i\];", parse_body), parse_body
    assert re.search(r"auto const& f = Spec::kFields\[i\];", serial_body), serial_body
    assert re.search(r"PluginField\(f\.name,\s*&\(mParams\.\*f\.member\),\s*" + scalar, serial_body), serial_body
    # a table entry can only name an int32 scalar member
    assert re.search(r"using Member = int32_t Params::\*;", common) and re.search(r"\n  Member member;", common)
    assert "f.type != PluginFieldType::kINT32 || f.length != 1" in open(os.path.join(TRT_DIR, "afnPluginCommon.cpp")).read()
    out = {}
    for spec in P.PLUGINS.values():
        cls = f"{spec.name}Plugin"
        src = open(os.path.join(TRT_DIR, f"{cls}.cpp")).read()
        hdr = open(os.path.join(TRT_DIR, f"{cls}.h")).read()
        assert "PluginField(" not in src + hdr, f"{cls} builds a PluginField outside its field table"
        assert re.search(rf"class {cls} final : public PluginBase<{cls}, {spec.name}Spec>", hdr), cls
        assert re.search(rf"using {cls}Creator = PluginCreator<{cls}>;", hdr), cls
        table = _function_body(hdr, f"struct {spec.name}Spec ")
        assert re.search(rf'static constexpr char const\* kName = "{spec.name}";', table), cls
        params = re.search(r"struct Params \{(.*?)\};", table, re.S)
        assert params, (cls, table)
        members = re.findall(r"(\S+) (\w+);", params.group(1))
        m = re.search(r"std::array<IntField<Params>,\s*(\d+)>\s*kFields\{(.*?)\};", table, re.S)
        assert m, (cls, table)
        entries = re.findall(r'\{"(\w+)",\s*&Params::(\w+),\s*[^,{}]+,\s*[^,{}]+\}', m.group(2))
        assert len(entries) == int(m.group(1)) == m.group(2).count('{"'), (cls, m.group(0))
        assert all(name == member for name, member in entries), (cls, entries)  # each field fills its namesake
        assert members == [("int32_t", name) for name, _ in entries], (cls, members, entries)
        fields = [name for name, _ in entries]
        out[spec.name] = {"creator": fields, "serialised": fields, "parsed": fields}
    return out


def test_cpp_creators_declare_exactly_the_python_fields():
    common = open(os.path.join(TRT_DIR, "afnPluginCommon.h")).read()
    assert f'kPluginVersion = "{P.PLUGIN_VERSION}"' in common
    assert f'kPluginNamespace = "{P.PLUGIN_NAMESPACE}"' in common
    fields = cpp_plugin_fields()
    for name, f in fields.items():
        expected = list(P.BY_NAME[name].fields)
        assert f["creator"] == expected, (name, f)
        assert f["serialised"] == f["creator"], (name, f)       # creator fields == serialised fields
        assert f["parsed"] == f["creator"], (name, f)           # createPlugin reads exactly them


def test_onnx_plugin_nodes_carry_exactly_the_cpp_fields(exported):
    _, res = exported
    fields = cpp_plugin_fields()
    proto = onnx.load(res["plugin"].path)
    seen = set()
    for n in proto.graph.node:
        if n.domain != P.PLUGIN_DOMAIN:
            continue
        names = [a.name for a in n.attribute]
        assert sorted(names) == sorted(["plugin_version", "plugin_namespace", *fields[n.op_type]["creator"]]), \
            (n.op_type, names)
        seen.add(n.op_type)
    assert seen == set(P.AFNET_PLUGINS) and seen <= set(fields)  # FocusCrop: AdaFocus (tests/test_adafocus_plugin.py)


# ------------------------------------------------------------------------------------------------- bad input
def test_refuses_data_dependent_selection(tmp_path):
    model = _model("af_mobilenetv3")
    for sel in ("threshold", "gumbel"):
        with pytest.raises(ValueError, match="data-dependent shapes"):
            export_onnx(model, str(tmp_path / "x.onnx"), frames=T, selection=sel, size=SIZE)


@pytest.mark.parametrize("kwargs, match", [
    ({"frames": 8}, "does not match the model"),
    ({"ratio": 0.0}, "ratio must be"),
    ({"batch": 0}, "batch must be"),
    ({"flavour": "magic"}, "flavour must be"),
    ({"opset": 9}, "opset must be"),
    ({"size": 16}, "at least 32"),
])
def test_bad_export_arguments(tmp_path, kwargs, match):
    model = _model("af_mobilenetv3")
    args = {"frames": T, "size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=match):
        export_onnx(model, str(tmp_path / "x.onnx"), **args)
    assert not (tmp_path / "x.onnx").exists()


def test_metadata_from_another_model_is_refused(exported):
    model, res = exported
    other = "af_mobilenetv3" if model.arch != "af_mobilenetv3" else "af_resnet50"
    with pytest.raises(ValueError, match="exported from another model"):
        check_model_matches(read_metadata(res["portable"].path),
                            afnet_edge.create_model(other, num_classes=CLASSES, num_frames=T))
    with pytest.raises(ValueError, match="T=4"):
        check_model_matches(read_metadata(res["portable"].path),
                            afnet_edge.create_model(model.arch, num_classes=CLASSES, num_frames=8))


def test_read_metadata_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_metadata(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffnot a protobuf at all" * 10)
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        read_metadata(str(bad))


@pytest.mark.parametrize("flavour", ["portable", "plugin"])
def test_dynamic_batch_runs_other_batches(tmp_path, flavour):
    model = _model("af_mobilenetv3", seed=3)
    res = export_onnx(model, str(tmp_path / "dyn.onnx"), frames=T, ratio=0.75, batch=2, dynamic_batch=True,
                      size=SIZE, flavour=flavour)
    proto = onnx.load(res.path)
    assert read_metadata(proto)["batch"] == "dynamic"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # no example-batch frame count (N = 2·T = 8, K = 2·k = 6) may survive on a frame axis: ONNX Runtime and
    # TensorRT trust recorded shapes, and a stale one breaks every other batch size
    for v in proto.graph.value_info:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4:
            assert dims[0].dim_value not in (2 * T, 2 * 3), (v.name, dims)
    if flavour == "portable":
        sess = _session(res.path)
    else:
        sess = _bind_reference_plugins(proto)
    g = torch.Generator().manual_seed(11)
    for b in (1, 3):
        clip = torch.randn(b, T, 3, SIZE, SIZE, generator=g)
        want = _reference(model, clip, 0.75)
        got = sess.run(None, {"clip": clip.numpy()})[0]
        assert got.shape == (b, CLASSES)
        assert np.abs(got - want).max() / np.abs(want).max() <= 1e-4


def test_export_is_a_plain_package_path():
    """afnet_edge.export resolves through the committed link afnet_edge/export -> ../export (docs/layout.md): no
    import hook anywhere in the sources."""
    pkg = os.path.dirname(os.path.abspath(afnet_edge.__file__))
    link = os.path.join(pkg, "export")
    if os.path.islink(link):  # a checkout (an installed wheel holds a real folder)
        assert os.path.realpath(link) == os.path.realpath(os.path.join(REPO, "export"))
    hooks = []
    for root in (pkg, os.path.join(REPO, "export")):
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(".py") and "meta_path" in open(os.path.join(dirpath, f), encoding="utf-8").read():
                    hooks.append(os.path.join(dirpath, f))
    assert hooks == [], f"sys.meta_path manipulation in {hooks}"


def test_export_package_comes_from_the_imported_tree():
    """afnet_edge.export must be the export code of the same checkout/installation as afnet_edge itself, even when
    an editable install of another checkout is on the path (its finder also claims the name)."""
    import afnet_edge.export as exp
    pkg = os.path.dirname(os.path.abspath(afnet_edge.__file__))
    here = os.path.dirname(os.path.abspath(exp.__file__))
    assert here in (os.path.join(pkg, "export"), os.path.join(os.path.dirname(pkg), "export")), (pkg, here)
