"""TensorRT engine build on a machine without a GPU: TensorRT for RTX (``tensorrt_rtx``) parses the portable ONNX,
constructs the network and serialises an engine for a named compute capability; plus the CLI path and bad input.

Skipped (with the reason) when neither TensorRT for RTX nor onnx is installed; CI installs
``tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs`` (scripts/ci_trt_rtx.sh).
"""
from __future__ import annotations

import json
import os

import pytest
import torch

import afnet_edge
from conftest import randomize_model, single_threaded_module
from skip_reasons import CUDA_PRESENT

pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from afnet_edge.cli import main  # noqa: E402
from afnet_edge.export.engine import build_engine, read_sidecar  # noqa: E402
from afnet_edge.export.onnx_export import export_onnx  # noqa: E402
from afnet_edge.export.trt_backend import TensorRTError  # noqa: E402

from conftest import RTX, needs_rtx  # noqa: E402
T, SIZE, CLASSES, TARGET = 4, 64, 7, "SM86"


_single_thread = single_threaded_module()


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("trt")
    model = randomize_model(afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), 4)
    return {fl: export_onnx(model, str(d / f"m_{fl}.onnx"), frames=T, ratio=0.5, batch=1, flavour=fl,
                            size=SIZE).path for fl in ("portable", "plugin")}


@needs_rtx
def test_rtx_builds_portable_engine_with_sidecar(onnx_files, tmp_path):
    engine = str(tmp_path / "m.engine")
    side = build_engine(onnx_files["portable"], engine, backend="tensorrt_rtx", rtx_targets=[TARGET])
    assert os.path.getsize(engine) > 1_000_000  # weights of AF-MobileNetV3 are in it
    assert side == read_sidecar(engine)
    assert side["model"] == "af_mobilenetv3" and side["num_frames"] == T and side["k"] == 2
    assert side["batch"] == 1 and side["height"] == SIZE and side["num_classes"] == CLASSES
    assert side["precision"] == "fp32" and side["flavour"] == "portable" and side["plugin"] is None
    assert side["tensorrt"] == {"module": "tensorrt_rtx", "version": RTX.version}
    assert side["rtx_targets"] == [TARGET]
    assert side["inputs"] == [{"name": "clip", "shape": [1, T, 3, SIZE, SIZE], "dtype": "float"}]
    assert side["outputs"] == [{"name": "logits", "shape": [1, CLASSES], "dtype": "float"}]
    assert os.path.isfile(engine + ".build.log")
    # The serialised engine is what TensorRT wrote: its checksum is recorded for the runner to compare.
    import hashlib
    assert side["engine_sha256"] == hashlib.sha256(open(engine, "rb").read()).hexdigest()


@needs_rtx
def test_rtx_refuses_plugin_graph_and_fp16(onnx_files, tmp_path):
    with pytest.raises(TensorRTError, match="no plugin layers"):
        build_engine(onnx_files["plugin"], str(tmp_path / "p.engine"), backend="tensorrt_rtx", rtx_targets=[TARGET])
    with pytest.raises(TensorRTError, match="strongly typed"):
        build_engine(onnx_files["portable"], str(tmp_path / "h.engine"), backend="tensorrt_rtx", fp16=True,
                     rtx_targets=[TARGET])
    with pytest.raises(ValueError, match="unknown TensorRT for RTX target"):
        build_engine(onnx_files["portable"], str(tmp_path / "t.engine"), backend="tensorrt_rtx",
                     rtx_targets=["SM999"])
    assert not any(p.suffix == ".engine" for p in tmp_path.iterdir())


def test_build_rejects_mismatched_plugin_choice(onnx_files, tmp_path):
    with pytest.raises(ValueError, match="plugin flavour but --plugins off"):
        build_engine(onnx_files["plugin"], str(tmp_path / "a.engine"), plugins="off")
    with pytest.raises(ValueError, match="portable flavour"):
        build_engine(onnx_files["portable"], str(tmp_path / "b.engine"), plugins="on")
    with pytest.raises(ValueError, match="plugins must be one of"):
        build_engine(onnx_files["portable"], str(tmp_path / "c.engine"), plugins="maybe")


def test_build_rejects_foreign_onnx(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = str(tmp_path / "foreign.onnx")
    onnx.save(helper.make_model(g), path)
    with pytest.raises(ValueError, match="no afnet_edge metadata"):
        build_engine(path, str(tmp_path / "f.engine"))


@needs_rtx
def test_cli_export_trt_with_rtx(tmp_path, capsys):
    engine = str(tmp_path / "cli.engine")
    rc = main(["export", "af_mobilenetv3", "--random-weights", "--frames", str(T), "--classes", str(CLASSES), "--size", str(SIZE),
               "--trt", engine, "--backend", "tensorrt_rtx", "--rtx-targets", TARGET])
    out = capsys.readouterr().out
    assert rc == 0 and "tensorrt_rtx" in out and os.path.isfile(engine)
    side = json.load(open(engine + ".json"))
    assert side["flavour"] == "portable"  # --plugins auto on TensorRT for RTX chooses the portable graph
    # --plugins on cannot be honoured by TensorRT for RTX: one line, exit 2
    rc = main(["export", "af_mobilenetv3", "--random-weights", "--frames", str(T), "--classes", str(CLASSES), "--size", str(SIZE),
               "--trt", str(tmp_path / "x.engine"), "--backend", "tensorrt_rtx", "--plugins", "on"])
    err = capsys.readouterr().err
    assert rc == 2 and "no plugin layers" in err and len(err.strip().splitlines()) == 1


def test_cli_export_onnx_and_verify_roundtrip(tmp_path, capsys):
    from afnet_edge.checkpoint import save_checkpoint
    model = randomize_model(afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), 8)
    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(model, ckpt)
    onnx_path = str(tmp_path / "m.onnx")
    rc = main(["export", "af_mobilenetv3", "--checkpoint", ckpt, "--ratio", "0.75", "--size", str(SIZE),
               "--onnx", onnx_path])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    rc = main(["verify", "--onnx", onnx_path, "--checkpoint", ckpt, "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["ok"] and res["top1_agreement"] == 1.0 and res["max_rel_error"] <= 1e-4
    assert res["metadata"]["checkpoint_sha256"]
    # another checkpoint of the same architecture is refused (its SHA-256 differs)
    other = str(tmp_path / "other.pth")
    save_checkpoint(randomize_model(afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), 9),
                    other)
    rc = main(["verify", "--onnx", onnx_path, "--checkpoint", other])
    assert rc == 2 and "different SHA-256" in capsys.readouterr().err
    # another model
    rc = main(["verify", "--onnx", onnx_path, "--checkpoint", ckpt, "--model", "af_resnet50"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("afnet-edge: error:")


@pytest.mark.parametrize("argv, match", [
    (["verify", "--onnx", "a.onnx", "--engine", "b.engine"], "exactly one of"),
    (["verify"], "exactly one of"),
    (["verify", "--engine", "missing.engine"], "not found"),
    (["export", "af_mobilenetv3"], "give --onnx"),
    (["export", "af_mobilenetv3", "--onnx", "x.onnx", "--plugins", "on"], "--plugins applies to --trt"),
    (["export", "af_mobilenetv3", "--onnx", "x.onnx", "--selection", "gumbel"], "data-dependent shapes"),
    (["export", "af_mobilenetv3", "--onnx", "x.onnx", "--ratio", "0"], "must be a number in (0, 1]"),
    (["export", "af_mobilenetv3", "--trt", "x.engine", "--flavour", "plugin", "--plugins", "off"], "contradicts"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err


def test_cli_verify_needs_the_checkpoint(onnx_files, capsys):
    assert main(["verify", "--onnx", onnx_files["portable"]]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err


def test_verify_refuses_plugin_onnx(onnx_files):
    from afnet_edge.export.verify import verify_onnx
    model = afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T)
    with pytest.raises(ValueError, match="only in TensorRT"):
        verify_onnx(onnx_files["plugin"], model)


def test_verify_onnx_library_reports_errors(onnx_files):
    from afnet_edge.export.verify import verify_onnx
    wrong = randomize_model(afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), 123)
    res = verify_onnx(onnx_files["portable"], wrong)
    assert not res["ok"] and res["max_abs_error"] > 0  # other weights: a real mismatch is reported, not hidden
    assert torch.isfinite(torch.tensor(res["max_rel_error"]))


@needs_rtx
def test_rtx_onnx_parser_finds_our_creators_and_passes_exactly_their_fields(onnx_files, tmp_path):
    """TensorRT's own ONNX parser (the one in TensorRT for RTX) must route every plugin node to the creator
    registered under (op type, plugin_version, plugin_namespace) and hand it exactly the fields that creator declares
    (names, kINT32 type, values from the node's attributes). Python stand-in creators declare the fields parsed from
    csrc/trt and record what they receive; TensorRT for RTX cannot add plugin layers, so each node is parsed alone."""
    import numpy as np
    import onnx
    import onnx_graphsurgeon as gs
    from test_export_onnx import cpp_plugin_fields

    from afnet_edge.export.plugins import AFNET_PLUGINS, BY_NAME, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION
    mod = RTX.module
    declared = cpp_plugin_fields()
    received: list = []

    class Recorder(mod.IPluginCreatorV3One):
        def __init__(self, name, fields):
            mod.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_namespace, self.plugin_version = name, PLUGIN_NAMESPACE, PLUGIN_VERSION
            self.field_names = mod.PluginFieldCollection(
                [mod.PluginField(f, np.array([], dtype=np.int32), mod.PluginFieldType.INT32) for f in fields])

        def create_plugin(self, name, fc, phase):
            received.append((self.name, [(f.name, f.type, np.array(f.data).tolist()) for f in fc]))
            return None  # no plugin object: parsing stops at this node, after the fields were recorded

    registry = mod.get_plugin_registry()
    creators = [Recorder(name, f["creator"]) for name, f in declared.items()]
    for c in creators:
        assert registry.register_creator(c, PLUGIN_NAMESPACE)
    try:
        graph = gs.import_onnx(onnx.load(onnx_files["plugin"]))
        first = {}
        for node in graph.nodes:
            if node.domain == PLUGIN_DOMAIN:
                first.setdefault(node.op, node)
        assert set(first) == set(AFNET_PLUGINS)
        # the other families' plugins (AdaFocus, bLVNet-TAM: their exports are checked in tests/test_adafocus_plugin.py
        # and tests/test_blvnet_plugin.py) as nodes with their spec's inputs, outputs and fields
        for spec in BY_NAME.values():
            if spec.name in first:
                continue
            ins = [gs.Variable(f"{spec.name}_{i}", np.float32, (4, 8, 8, 8)) for i in spec.inputs]
            outs = [gs.Variable(f"{spec.name}_{o}", np.float32, (4, 8, 8, 8)) for o in spec.outputs]
            attrs = {"plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE}
            attrs.update({f: j + 1 for j, f in enumerate(spec.fields)})
            first[spec.name] = gs.Node(spec.name, inputs=ins, outputs=outs, domain=PLUGIN_DOMAIN, attrs=attrs)
        assert set(first) == set(declared)
        for op, node in first.items():
            inputs = [t for t in node.inputs if isinstance(t, gs.Variable)]
            single = gs.Graph(nodes=[node], inputs=inputs, outputs=list(node.outputs),
                              opset=17, import_domains=[onnx.helper.make_opsetid(PLUGIN_DOMAIN, 1)])
            path = str(tmp_path / f"{op}.onnx")
            onnx.save(gs.export_onnx(single.cleanup()), path)
            before = len(received)
            network = mod.Builder(mod.Logger(mod.Logger.INTERNAL_ERROR)).create_network(0)
            parser = mod.OnnxParser(network, mod.Logger(mod.Logger.INTERNAL_ERROR))
            assert not parser.parse_from_file(path)  # our recorder returns no plugin
            assert len(received) == before + 1, f"the parser did not reach the {op} creator"
            name, fields = received[-1]
            attrs = {a: v for a, v in node.attrs.items() if a not in ("plugin_version", "plugin_namespace")}
            assert name == op
            assert [f for f, _, _ in fields] == declared[op]["creator"]
            assert all(t == mod.PluginFieldType.INT32 for _, t, _ in fields)
            assert {f: v for f, _, v in fields} == {k: [int(v)] for k, v in attrs.items()}
    finally:
        for c in creators:
            registry.deregister_creator(c)


@needs_rtx
def test_runner_and_verify_on_a_machine_without_gpu(onnx_files, tmp_path, capsys):
    """An engine that was built fine still needs a GPU to run: the runner gets past the sidecar checks and stops at
    CUDA with a message saying so (cuda-python reports no usable driver), and so does `afnet-edge verify --engine`."""
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed (scripts/ci_trt_rtx.sh installs it)")
    from afnet_edge.export.runtime import TRTRunner
    from afnet_edge.export.trt_backend import gpu_info
    if gpu_info() is not None:
        pytest.skip(f"{CUDA_PRESENT}: see docs/datacenter.md for the GPU checks")
    engine = str(tmp_path / "nogpu.engine")
    build_engine(onnx_files["portable"], engine, backend="tensorrt_rtx", rtx_targets=[TARGET])
    with pytest.raises(TensorRTError, match="no usable CUDA GPU/driver here"):
        TRTRunner(engine, cuda="cuda-python")
    from afnet_edge.checkpoint import save_checkpoint
    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(afnet_edge.create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), ckpt)
    assert main(["verify", "--engine", engine, "--checkpoint", ckpt]) == 2
    err = capsys.readouterr().err.strip()
    assert "no usable CUDA GPU/driver here" in err and len(err.splitlines()) == 1
