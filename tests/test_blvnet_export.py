"""bLVNet-TAM export through the generic driver (the family's ExportAdapter: ``ExportForward``, no frame selection;
the portable flavour here, the plugin flavour in tests/test_blvnet_plugin.py; spec blvnet-tam.md §4, §8): the TAM as
depthwise temporal convolutions on constant kernels, standard ONNX operators at opset 17 with none of the release
graph's ScatterND / Gather / 5-D Pad, no rank-5 tensor after the input, ONNX Runtime against the official-semantics
PyTorch forward ≤ 1e-4 (random convs, random BN statistics, random TAM taps, two clips so that the TAM's zero padding
at the clip boundary counts), the CLI round trip (export from a checkpoint whose shapes give the narrow model's
options, verify), and a TensorRT for RTX engine built on the CPU with its sidecar. The exported model is a narrow R50
(``base_width=8``: the graph and the ops of the release, 1/64 of its weights) at 32 px with G = 4 frames."""
from __future__ import annotations

import json
import os

import pytest
import torch

import afnet_edge
from afnet_edge.kernels.blvnet_reference import fold_pair_weights, temporal_aggregate, temporal_aggregate_pair
from afnet_edge.layers.blvnet import TAM
from test_blvnet_tam import randomize, rel_err

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install afnet_edge[onnx])")
pytest.importorskip("onnx_graphsurgeon", reason="onnx-graphsurgeon not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from afnet_edge.checkpoint import inspect_checkpoint, save_checkpoint  # noqa: E402
from afnet_edge.cli import main  # noqa: E402

from conftest import RTX, needs_rtx, single_threaded_module  # noqa: E402
MODEL, G, C, S, WIDTH, BATCH, TARGET = "blvnet_tam_r50", 4, 5, 32, 8, 2, "SM86"
STANDARD = {"Conv", "Relu", "Add", "Reshape", "Transpose", "Slice", "Resize", "AveragePool", "GlobalAveragePool",
            "Flatten", "Gemm", "ReduceMean", "BatchNormalization", "Constant"}
#: what a straight export of the release's graph holds (spec §8.1) and the pair-aware graph must not
FORBIDDEN = {"ScatterND", "Gather", "GatherElements", "GatherND", "Pad", "ConstantOfShape", "Where", "Expand",
             "Concat", "ReduceSum", "NonZero", "Conv3D"}
TAMS = 1 + 2 * 3 + 3        # stem, two convs (big / little input) per bL stage, three layer4 blocks


_single_thread = single_threaded_module()


def random_model(seed: int = 0, **kw) -> torch.nn.Module:
    """A narrow R50 with random convs, random TAM taps and BN statistics calibrated on a random clip
    (test_blvnet_tam's ``randomize``), then every running mean / variance moved at random (±0.3 σ, ×0.6..1.6) so the
    statistics are not the batch's own."""
    model = afnet_edge.create_model(MODEL, num_classes=C, num_frames=G, base_width=WIDTH, **kw)
    randomize(model, seed, S)
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.add_(0.3 * m.running_var.sqrt() * torch.randn(n, generator=g))
                m.running_var.mul_(0.6 + torch.rand(n, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The random narrow model, its checkpoint and its portable export by the CLI from the checkpoint alone (no
    --base-width: the file's shapes give base_width, alpha and blending_frames)."""
    d = tmp_path_factory.mktemp("blv_export")
    model = random_model()
    ckpt, path = str(d / "blv.pth"), str(d / "blv.onnx")
    save_checkpoint(model, ckpt)
    assert main(["export", MODEL, "--checkpoint", ckpt, "--size", str(S), "--batch", str(BATCH), "--onnx", path]) == 0
    return model, ckpt, path


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_constant_kernels_equal_the_taps(k, rng):
    """The exported form of every TAM (conv_kernels + temporal_conv) is the fused-op reference, both TAM forms."""
    tam = TAM(6, k)
    with torch.no_grad():
        for t in tam.taps():
            t.copy_(torch.randn(t.shape, generator=rng))
    x = torch.randn(2 * 4, 6, 3, 5, generator=rng)
    w = tam.weight().detach()
    want_pair = temporal_aggregate_pair(x, *fold_pair_weights(w), 4)
    with torch.no_grad(), tam.constant_kernels(tam.conv_kernels()):
        got, got_pair = tam(x, 4), tam.pair(x, 4)
    assert tam._constant is None                                   # the context restores the parameter path
    assert rel_err(got, temporal_aggregate(x, w, 4)) <= 1e-6
    for a, b in zip(got_pair, want_pair):
        assert rel_err(a, b) <= 1e-6


def test_checkpoint_gives_the_narrow_options(exported):
    _, ckpt, _ = exported
    # base_width, alpha and blending_frames from the weights' shapes; beta (no weight shape) from the options the
    # checkpoint records
    assert inspect_checkpoint(ckpt)["options"] == {"base_width": WIDTH, "alpha": 2, "blending_frames": 3, "beta": 4}


def test_portable_graph_is_standard_pair_aware_and_matches_the_official_forward(exported, rng):
    model, _, path = exported
    proto = onnx.load(path)
    nodes = proto.graph.node
    ops = {n.op_type for n in nodes}
    assert all(n.domain in ("", "ai.onnx") for n in nodes) and ops <= STANDARD, ops - STANDARD
    assert not ops & FORBIDDEN
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in list(proto.graph.value_info) + list(proto.graph.output)}
    assert ranks and max(ranks.values()) == 4                      # only the input clip is rank 5
    assert [len(i.type.tensor_type.shape.dim) for i in proto.graph.input] == [5]
    consts = {t.name: t for t in proto.graph.initializer}
    temporal = []
    for n in nodes:
        if n.op_type != "Conv":
            continue
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        w = consts[n.input[1]]                                     # every kernel is a constant
        if a.get("group", 1) > 1:
            temporal.append(n)
            assert list(w.dims) == [a["group"], 1, 3, 1] and a["pads"] == [1, 0, 1, 0] and len(n.input) == 2
    assert len(temporal) == TAMS
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["afnet_edge.model"] == MODEL and meta["afnet_edge.base_width"] == str(WIDTH)
    assert meta["afnet_edge.blending_frames"] == "3" and meta["afnet_edge.selection"] == "none"
    assert meta["afnet_edge.k"] == str(G) and meta["afnet_edge.batch"] == str(BATCH)

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    clip = torch.randn(BATCH, G, 3, S, S, generator=rng)
    got = torch.from_numpy(sess.run(None, {"clip": clip.numpy()})[0])
    with torch.no_grad():
        official = model.configure(execution="masked")(clip).logits
        compact = model.configure(execution="compact")(clip).logits
        other = model(torch.randn(BATCH, G, 3, S, S, generator=rng)).logits
        swapped = model(clip.flip(1)).logits
    assert rel_err(got, official) <= 1e-4 and rel_err(got, compact) <= 1e-4
    assert rel_err(other, official) > 1e-2 and rel_err(swapped, official) > 1e-2   # the input and its order count


def test_cli_verify_onnx_runtime_matches_pytorch(exported, capsys):
    _, ckpt, path = exported
    capsys.readouterr()
    assert main(["verify", "--onnx", path, "--checkpoint", ckpt, "--json"]) == 0   # options from the metadata
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["max_rel_error"] <= 1e-4 and res["top1_agreement"] == 1.0 and res["clips"] == 2 * BATCH


@needs_rtx
def test_rtx_engine_builds_on_the_cpu_with_sidecar(exported, tmp_path, capsys):
    _, _, path = exported
    engine = str(tmp_path / "blv.engine")
    assert main(["export", MODEL, "--from-onnx", path, "--trt", engine, "--backend", "tensorrt_rtx",
                 "--rtx-targets", TARGET]) == 0, capsys.readouterr().err
    side = json.load(open(engine + ".json"))
    assert os.path.getsize(engine) > 100_000
    assert side["model"] == MODEL and side["num_frames"] == G and side["num_classes"] == C
    assert side["base_width"] == str(WIDTH) and side["selection"] == "none" and side["flavour"] == "portable"
    assert side["inputs"] == [{"name": "clip", "shape": [BATCH, G, 3, S, S], "dtype": "float"}]
    assert side["outputs"] == [{"name": "logits", "shape": [BATCH, C], "dtype": "float"}]
    assert side["tensorrt"]["module"] == "tensorrt_rtx" and side["rtx_targets"] == [TARGET]
