"""Test cases for the C++ plugin harness (tests/trt_harness/harness.cpp): the exact plugin fields the ONNX exporter
writes, random inputs, and the pure-PyTorch reference output of the same op on the same data.

    python tests/trt_harness/make_cases.py OUT_DIR

1. Exports small AF models (:data:`MODELS`, T=4, 64×64) and a narrow AdaFocusV2-MN2 (T=2, P=32: its ``FocusCrop``
   node) in the ``plugin`` flavour with the project's own exporter and takes every distinct (op type, attributes) of
   their plugin nodes — so the harness creates each plugin
   from what TensorRT's ONNX parser would hand its creator, not from a second copy of the field list.
2. For each of those and each float type (fp32, fp16) and two shape sets (odd sizes that take the scalar tails,
   sizes that take the vector paths), draws fresh random inputs and computes
   :mod:`afnet_edge.kernels.reference` in float64 on exactly the values the plugin sees (fp16 inputs are rounded
   first). Index inputs are int64 as exported, plus one int32 case per index-taking op (widened in the workspace).
   Lazy constant chains (issue 16): per node kind, fp32 and fp16 cases with a random chain (L=3 blocks, start in
   [0, 3], random ReLU bits; ``chain_upto`` 2 for the gather / scatter, 3 for the fusion readers) as the two
   trailing inputs ``chain_start`` / ``chain_consts``, the node's fields with ``chain_relu_mask`` / ``chain_upto`` set
   to the chain's. Their reference is computed in the plugin's own type (the chain's per-block rounding is part of
   the semantics): gather and scatter must then match exactly; the scatter case also feeds a non-zero const, which
   a chained scatter must not read.
   FocusCrop (:func:`make_crop_case`): fp32/fp16/bf16 frames, fp32 actions; the exported node plus the same node in
   ``floor`` mode and with an odd patch size; reference :func:`afnet_edge.kernels.adafocus_reference.focus_crop`.
   bLVNet-TAM (:func:`make_blvnet_case`; nodes from a narrow ``blvnet_tam_r50``, G=4, base width 8, 32 px): every
   exported TemporalAggregate (num_frames 4 and 2), TemporalAggregatePair (two outputs) and BLMerge node in fp32,
   fp16 and bf16 on odd and aligned maps, plus relu=0, K=5 taps (wider than a 2-row clip) and, for BLMerge, equal
   sizes (layer0) and a non-2× nearest map; fp32 weights; reference :mod:`afnet_edge.kernels.blvnet_reference`.
   Full-video clustering (:func:`make_cluster_case`; the SegmentCluster node of a narrow ``fullvideo_tsm_r18``
   plugin export, K=4, cumulative): that node and the same with ``rule`` slope / even and ``clusters`` 1 and 7, in
   fp32, fp16 and bf16, on one video (no frame_offsets input) and on ragged batches with videos shorter than K and
   one-frame videos (frame_offsets int64, and int32 widened in the workspace); post-ReLU activations with many exact
   zeros and repeated frames (tied distances); reference :mod:`afnet_edge.kernels.fullvideo_reference` on float64
   copies of the typed values: the offsets output (int64) exactly, the means fp32 ~1e-5, fp16/bf16 half an ulp.
3. Writes ``OUT_DIR/cases.txt`` (one block per case, whitespace-separated tokens) and one raw little-endian file per
   tensor. A dimension written ``N=8`` is the symbolic batch axis of a dynamic-batch engine (value 8 here).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

import afnet_edge
from afnet_edge.export import plugins as P
from afnet_edge.export.onnx_export import export_onnx
from afnet_edge.kernels import adafocus_reference as AR
from afnet_edge.kernels import blvnet_reference as BR
from afnet_edge.kernels import fullvideo_reference as FR
from afnet_edge.kernels import reference as R

P_MODES = P.FOCUS_CROP_MODES

T, SIZE = 4, 64
#: Models whose plugin export supplies the fields (AF-MobileNetV3 fuses without ReLU, AF-ResNet50 with it).
MODELS = ("af_mobilenetv3", "af_resnet50")
#: AdaFocus' FocusCrop node comes from a narrow AdaFocusV2-MN2 (T=2, P=32; GRU 128, MLP 256: the same graph).
ADA_NAME, ADA_T, ADA_P = "adafocus_v2_mn2_harness", 2, 32
_ONNX_TYPES = {1: "FLOAT", 2: "INT", 3: "STRING", 6: "FLOATS", 7: "INTS"}


def _adafocus_export(tmp: str) -> str:
    """Plugin-flavour export of a narrow registered AdaFocusV2-MN2 (its one FocusCrop node)."""
    from afnet_edge.models import adafocus
    from afnet_edge.models.registry import BenchDefaults, registered

    def small(num_classes: int = 5, num_frames: int = ADA_T, patch_size: int = ADA_P, frame_order: bool = True):
        return adafocus.AdaFocusV2(ADA_NAME, "mn2", num_classes, num_frames, patch_size, hidden_dim=128,
                                   frame_order=frame_order, classifier_dim=256)

    with registered(ADA_NAME, small, adafocus.HOOKS, default_frames=ADA_T,
                    bench=BenchDefaults(False, (ADA_T,), "harness")):
        model = afnet_edge.create_model(ADA_NAME)
        return export_onnx(model, os.path.join(tmp, "adafocus_plugin.onnx"), flavour="plugin").path


#: bLVNet-TAM's plugin nodes come from a narrow R50 (G=4 frames: stem TAM num_frames=4, layer4 TAMs num_frames=2).
BLV_G, BLV_WIDTH, BLV_SIZE = 4, 8, 32


def _blvnet_export(tmp: str) -> str:
    """Plugin-flavour export of a narrow ``blvnet_tam_r50`` (its TemporalAggregate(Pair) / BLMerge nodes)."""
    model = afnet_edge.create_model("blvnet_tam_r50", num_classes=5, num_frames=BLV_G, base_width=BLV_WIDTH)
    return export_onnx(model, os.path.join(tmp, "blvnet_plugin.onnx"), flavour="plugin", size=BLV_SIZE).path


#: Full-video clustering's SegmentCluster node comes from a narrow fullvideo_tsm_r18 (K=4, cumulative, N=8, 32 px).
FV_NAME, FV_N, FV_K = "fullvideo_tsm_harness", 8, 4


def _fullvideo_export(tmp: str) -> str:
    """Plugin-flavour export of a narrow registered full-video model (its one SegmentCluster node)."""
    from afnet_edge.models import fullvideo
    from afnet_edge.models.registry import BenchDefaults, registered

    def small(num_classes: int = 5, num_frames: int = FV_N, clusters: int = FV_K, rule: str = "cumulative",
              max_frames: int | None = 1024, degenerate: str = "none"):
        return fullvideo.FullVideoTSM(FV_NAME, fullvideo.BasicBlock, (1, 1, 1, 1), num_classes, num_frames, clusters,
                                      rule, max_frames, 0.5, degenerate, False, width=0.25)

    with registered(FV_NAME, small, fullvideo.HOOKS, default_frames=FV_N,
                    bench=BenchDefaults(False, (FV_N,), "harness")):
        model = afnet_edge.create_model(FV_NAME)
        return export_onnx(model, os.path.join(tmp, "fullvideo_plugin.onnx"), flavour="plugin", size=32).path


def exported_plugin_nodes(tmp: str) -> list[tuple[str, str, str, list]]:
    """Distinct ``(op type, plugin_version, plugin_namespace, [(attr, ONNX type, values)])`` of the plugin nodes the
    exporter writes for small models (:data:`MODELS` and a narrow AdaFocusV2), in graph order."""
    import onnx
    seen, out = set(), []
    nodes = []
    for arch in MODELS:
        model = afnet_edge.create_model(arch, num_classes=7, num_frames=T)
        res = export_onnx(model, os.path.join(tmp, f"{arch}_plugin.onnx"), frames=T, ratio=0.5, batch=1,
                          flavour="plugin", size=SIZE)
        nodes += list(onnx.load(res.path).graph.node)
    nodes += list(onnx.load(_adafocus_export(tmp)).graph.node)
    nodes += list(onnx.load(_blvnet_export(tmp)).graph.node)
    nodes += list(onnx.load(_fullvideo_export(tmp)).graph.node)
    for node in nodes:
        if node.domain != P.PLUGIN_DOMAIN:
            continue
        version = namespace = None
        fields = []
        for a in node.attribute:
            kind = _ONNX_TYPES.get(a.type, str(a.type))
            value = onnx.helper.get_attribute_value(a)
            if a.name == "plugin_version":
                version = value.decode()
            elif a.name == "plugin_namespace":
                namespace = value.decode()
            else:
                values = list(value) if isinstance(value, (list, tuple)) else [value]
                fields.append((a.name, kind, values))
        key = (node.op_type, version, namespace, repr(fields))
        if key not in seen:
            seen.add(key)
            out.append((node.op_type, version, namespace, fields))
    return out


def _index(b: int, k: int, g: torch.Generator) -> torch.Tensor:
    """Sorted unique frame rows ``b·T + t`` with ``k`` frames per clip (as the exporter's top-k produces them)."""
    rows = [sorted(torch.randperm(T, generator=g)[:k].tolist()) for _ in range(b)]
    return torch.tensor([i * T + t for i, r in enumerate(rows) for t in r], dtype=torch.int64)


def _shapes(kind: str) -> dict:
    # odd: scalar tails (H·W odd, C not a multiple of 8·vector); aligned: 16-byte vectors; non-uniform resize in odd
    return {"odd": dict(B=2, k=3, C=20, H=5, W=7, h=3, w=4), "aligned": dict(B=2, k=2, C=16, H=8, W=8, h=4, w=4)}[kind]


CHAIN_L = 3


def make_chain_case(op: str, fields: dict, dtype: str, shapes: str, g: torch.Generator):
    """A chained case: (inputs, output, tolerance) as :func:`make_case`, and the chain's (relu_mask, upto)."""
    s = _shapes(shapes)
    B, C, H, W, h, w = s["B"], s["C"], s["H"], s["W"], s["h"], s["w"]
    N = B * T
    tdt = torch.float16 if dtype == "f16" else torch.float32
    upto = CHAIN_L if op in ("AmpleFusePool", "AmpleFuseBlend") else CHAIN_L - 1
    relu_mask = int(torch.randint(0, 2 ** CHAIN_L, (1,), generator=g))
    start = torch.randint(0, CHAIN_L + 1, (N,), generator=g, dtype=torch.int32)
    consts = torch.randn(CHAIN_L, C, H, W, generator=g).to(tdt)
    chain = R.LazyChain(start, consts, relu_mask, upto)

    def rnd(*shape):  # in the plugin's type: the chain's arithmetic is done in it
        return torch.randn(*shape, generator=g).to(tdt)

    n_sym = f"N={N}"
    chain_ins = [("chain_start", start, [n_sym]), ("chain_consts", consts, [CHAIN_L, C, H, W])]
    if op == "FocalGather":
        index = _index(B, s["k"], g)
        K = index.numel()
        x = rnd(N, C, H, W)
        ref = R.lazy_focal_gather(x, index, fields["num_frames"], bool(fields["shift"]), chain)
        ins = [("x", x, [n_sym, C, H, W]), ("index", index, [f"K={K}"])]
        out = ("y", ref, [f"K={K}", C, H, W])
        tol = (0.0, 0.0)
    elif op == "FocalScatter":
        index = _index(B, s["k"], g)
        K = index.numel()
        residual, y, const = rnd(N, C, H, W), rnd(K, C, H, W), rnd(C, H, W)
        ref = R.lazy_focal_scatter(residual, y, index, bool(fields["relu"]), chain)  # const: not read
        ins = [("residual", residual, [n_sym, C, H, W]), ("y", y, [f"K={K}", C, H, W]), ("index", index, [f"K={K}"]),
               ("const", const, [C, H, W])]
        out = ("out", ref, [n_sym, C, H, W])
        tol = (0.0, 0.0)
    elif op == "AmpleFusePool":
        xl, xb = rnd(N, C, h, w), rnd(N, C, H, W)
        ref = R.ample_fuse_pool(xl.double(), R.chain_materialize(xb, chain).double())
        ins = [("xl", xl, [n_sym, C, h, w]), ("xb", xb, [n_sym, C, H, W])]
        out = ("pooled", ref, [n_sym, C])
        tol = (1e-6, 1e-5) if dtype == "f32" else (1e-5, 2.0 ** -11)
    elif op == "AmpleFuseBlend":
        xl, xb = rnd(N, C, h, w), rnd(N, C, H, W)
        a = torch.sigmoid(torch.randn(N, C, generator=g)).to(tdt)
        ref = R.ample_fuse_blend(xl.double(), R.chain_materialize(xb, chain).double(), a.double(), bool(fields["relu"]))
        ins = [("xl", xl, [n_sym, C, h, w]), ("xb", xb, [n_sym, C, H, W]), ("a", a, [n_sym, C])]
        out = ("out", ref, [n_sym, C, H, W])
        tol = (1e-6, 1e-6) if dtype == "f32" else (1e-6, 2.0 ** -11)
    else:
        raise ValueError(f"op must be one of {sorted(P.BY_NAME)}, got {op!r}")
    name, ref, dims = out
    return ins + chain_ins, (name, ref.to(torch.float64), dims), tol, (relu_mask, upto)


def make_case(op: str, fields: dict, dtype: str, shapes: str, index_dtype: str, g: torch.Generator):
    """(inputs [(name, tensor, dims)], output (name, float64 reference, dims), (atol, rtol))."""
    s = _shapes(shapes)
    B, C, H, W, h, w = s["B"], s["C"], s["H"], s["W"], s["h"], s["w"]
    N = B * T
    tdt = torch.float16 if dtype == "f16" else torch.float32

    def rnd(*shape):  # values exactly representable in the plugin's type; the reference sees the same values
        return torch.randn(*shape, generator=g).to(tdt).to(torch.float64)

    n_sym = f"N={N}"
    if op == "FocalGather":
        index = _index(B, s["k"], g)
        K = index.numel()
        x = rnd(N, C, H, W)
        ref = R.focal_gather(x, index, fields["num_frames"], bool(fields["shift"]))
        ins = [("x", x, [n_sym, C, H, W]), ("index", index, [f"K={K}"])]
        out = ("y", ref, [f"K={K}", C, H, W])
        tol = (0.0, 0.0)  # a copy: exact in every type
    elif op == "FocalScatter":
        index = _index(B, s["k"], g)
        K = index.numel()
        residual, y, const = rnd(N, C, H, W), rnd(K, C, H, W), rnd(C, H, W)
        ref = R.focal_scatter(residual, y, index, const, bool(fields["relu"]))
        ins = [("residual", residual, [n_sym, C, H, W]), ("y", y, [f"K={K}", C, H, W]), ("index", index, [f"K={K}"]),
               ("const", const, [C, H, W])]
        out = ("out", ref, [n_sym, C, H, W])
        tol = (1e-6, 1e-6) if dtype == "f32" else (1e-6, 2.0 ** -11)  # one fp32 add, rounded once: 0.5 ulp
    elif op == "AmpleFusePool":
        xl, xb = rnd(N, C, h, w), rnd(N, C, H, W)
        ref = R.ample_fuse_pool(xl, xb)
        ins = [("xl", xl, [n_sym, C, h, w]), ("xb", xb, [n_sym, C, H, W])]
        out = ("pooled", ref, [n_sym, C])
        tol = (1e-6, 1e-5) if dtype == "f32" else (1e-5, 2.0 ** -11)  # fp32 accumulation, one rounding
    elif op == "AmpleFuseBlend":
        xl, xb = rnd(N, C, h, w), rnd(N, C, H, W)
        a = torch.sigmoid(torch.randn(N, C, generator=g)).to(tdt).to(torch.float64)
        ref = R.ample_fuse_blend(xl, xb, a, bool(fields["relu"]))
        ins = [("xl", xl, [n_sym, C, h, w]), ("xb", xb, [n_sym, C, H, W]), ("a", a, [n_sym, C])]
        out = ("out", ref, [n_sym, C, H, W])
        tol = (1e-6, 1e-6) if dtype == "f32" else (1e-6, 2.0 ** -11)
    else:
        raise ValueError(f"op must be one of {sorted(P.BY_NAME)}, got {op!r}")
    ins = [(n, t.to(torch.int32) if t.dtype == torch.int64 and index_dtype == "i32" else t, d) for n, t, d in ins]
    return ins, out, tol


#: FocusCrop shape sets (P from the case's patch_size field): "odd" frames (C, H, W odd), "aligned" frames.
_CROP_SHAPES = {"odd": dict(N=7, C=3, dH=7, dW=11), "aligned": dict(N=6, C=2, dH=8, dW=16)}
_TORCH_TYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def make_crop_case(fields: dict, dtype: str, shapes: str, g: torch.Generator):
    """A FocusCrop case: (inputs, output (name, float64 reference, dims), (atol, rtol)).

    Frames exactly representable in the plugin's type; actions uniform in [0, 1] plus the edges (0, 1: the far-edge
    taps read 0 with weight 0), values outside [0, 1] (clamped) and one integer pixel position. The reference is
    :func:`afnet_edge.kernels.adafocus_reference.focus_crop` on float64 frames with the same float32 actions (the
    window position in fp32, as the kernel; the blend in float64).
    """
    s = _CROP_SHAPES[shapes]
    P = fields["patch_size"]
    N, C, H, W = s["N"], s["C"], P + s["dH"], P + s["dW"]
    x = torch.randn(N, C, H, W, generator=g).to(_TORCH_TYPES[dtype]).to(torch.float64)
    a = torch.rand(N, 2, generator=g)
    edges = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-0.25, 1.5], [3.0 / (H - P), 0.3]])
    a[1:1 + len(edges)] = edges                           # rows 0 and 5.. stay sub-pixel random
    mode = next(k for k, v in P_MODES.items() if v == fields["mode"])
    ref = AR.focus_crop(x, a, P, mode)
    n_sym = f"N={N}"
    ins = [("x", x, [n_sym, C, H, W]), ("centres", a, [n_sym, 2])]
    out = ("patches", ref, [n_sym, C, P, P])
    if mode == "floor":
        tol = (0.0, 0.0)                                  # a copy: exact in every type
    else:                                                 # fp32 blend, one rounding to the plugin's type
        tol = {"f32": (1e-6, 1e-5), "f16": (1e-6, 2.0 ** -11), "bf16": (1e-6, 2.0 ** -8)}[dtype]
    return ins, out, tol


#: bLVNet shape sets. TAM: B clips of T rows (T from the node), C channels, H×W maps (odd: scalar tails; aligned:
#: vectors). BLMerge: big (N, C, h, w) → little (N, C, H, W); "same" is layer0's merge, "uneven" a non-2× nearest map.
_TAM_SHAPES = {"odd": dict(B=2, C=3, H=5, W=7), "aligned": dict(B=2, C=4, H=4, W=8)}
_MERGE_SHAPES = {"odd": dict(N=3, C=3, h=3, w=5, H=6, W=10), "aligned": dict(N=2, C=4, h=4, w=8, H=8, W=16),
                 "same": dict(N=3, C=2, h=5, w=7, H=5, W=7), "uneven": dict(N=2, C=3, h=3, w=4, H=5, W=7)}
#: (atol, rtol): fp32 accumulation, one rounding to the plugin's type (half an ulp).
_BLV_TOL = {"f32": (2e-6, 1e-5), "f16": (2e-6, 2.0 ** -11), "bf16": (2e-6, 2.0 ** -8)}


def make_blvnet_case(op: str, fields: dict, dtype: str, shapes: str, taps: int, g: torch.Generator):
    """A bLVNet case: (inputs, [outputs (name, float64 reference, dims)], (atol, rtol)).

    Maps exactly representable in the plugin's type, random fp32 weights ``(taps, C)``; the reference is
    :mod:`afnet_edge.kernels.blvnet_reference` in float64 on the same values."""
    tdt = _TORCH_TYPES[dtype]

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(tdt).to(torch.float64)

    relu = bool(fields["relu"])
    if op == "BLMerge":
        s = _MERGE_SHAPES[shapes]
        N, C = s["N"], s["C"]
        big, little = rnd(N, C, s["h"], s["w"]), rnd(N, C, s["H"], s["W"])
        n_sym = f"N={N}"
        ins = [("big", big, [n_sym, C, s["h"], s["w"]]), ("little", little, [n_sym, C, s["H"], s["W"]])]
        outs = [("out", BR.bl_merge(big, little, relu), [n_sym, C, s["H"], s["W"]])]
        return ins, outs, _BLV_TOL[dtype]
    s = _TAM_SHAPES[shapes]
    T = fields["num_frames"] if op == "TemporalAggregate" else fields["num_pairs"]
    N, C, H, W = s["B"] * T, s["C"], s["H"], s["W"]
    n_sym = f"N={N}"
    x = rnd(N, C, H, W)

    def weight():  # float32 values (the plugin's weights), used in float64 by the reference
        return (0.7 * torch.randn(taps, C, generator=g)).float()
    dims = [n_sym, C, H, W]
    if op == "TemporalAggregate":
        w = weight()
        ins = [("x", x, dims), ("weight", w, [taps, C])]
        outs = [("out", BR.temporal_aggregate(x, w.double(), T, relu), dims)]
    else:
        wb, wl = weight(), weight()
        ins = [("y", x, dims), ("w_big", wb, [taps, C]), ("w_little", wl, [taps, C])]
        big_in, little_in = BR.temporal_aggregate_pair(x, wb.double(), wl.double(), T, relu)
        outs = [("big_in", big_in, dims), ("little_in", little_in, dims)]
    return ins, outs, _BLV_TOL[dtype]


#: SegmentCluster shape sets: activations (C, h, w) per frame (odd: D = 105, words with padding bits; aligned:
#: D = 256) and the video lengths (None: one video, no frame_offsets input).
_CLUSTER_SHAPES = {"one_odd": ((3, 5, 7), None), "one_aligned": ((4, 8, 8), None),
                   "ragged_odd": ((3, 5, 7), (9, 1, 3, 14)), "ragged_aligned": ((4, 8, 8), (2, 17, 5))}


def make_cluster_case(fields: dict, dtype: str, shapes: str, index_dtype: str, g: torch.Generator):
    """A SegmentCluster case: (inputs, [means, offsets outputs], (atol, rtol)). Post-ReLU activations (~40 % exact
    zeros) in the plugin's type, a repeated stretch per video (zero distances: ties) and the reference on float64
    copies of the same values (the sign pattern is the same)."""
    (c, h, w), lengths = _CLUSTER_SHAPES[shapes]
    tdt = _TORCH_TYPES[dtype]
    n = sum(lengths) if lengths else 14
    a = torch.relu(torch.randn(n, c, h, w, generator=g) - 0.25)
    if n > 8:
        a[4:7] = a[4:5]                                        # still frames: tied (zero) distances
    a = a.to(tdt).to(torch.float64)
    k, rule = fields["clusters"], next(r for r, v in P.SEGMENT_CLUSTER_RULES.items() if v == fields["rule"])
    fo = None
    n_sym = f"N={n}"
    ins = [("a", a, [n_sym, c, h, w])]
    if lengths:
        fo = torch.tensor([0, *torch.cumsum(torch.tensor(lengths), 0).tolist()], dtype=torch.int64)
        ins.append(("frame_offsets", fo, [len(lengths) + 1]))
    hd = FR.adjacent_hamming(FR.binarize_pack(a))
    offsets, m = FR.segment_boundaries(hd, k, rule, fo)
    means = FR.segment_mean(a, offsets, m, fo)
    b = len(lengths) if lengths else 1
    outs = [("means", means, [b * k, c, h, w]), ("offsets", offsets.to(torch.float64), [b, k + 1])]
    return ins, outs, _BLV_TOL[dtype]


#: inputs that are float32 whatever the plugin's float type (FocusCrop's positions, the TAM weights)
FP32_INPUTS = ("centres", "weight", "w_big", "w_little")
#: outputs that are int64 whatever the plugin's float type (SegmentCluster's segment offsets)
INT64_OUTPUTS = ("offsets",)


def _write(path: str, t: torch.Tensor, dtype: str) -> None:
    if dtype == "bf16":  # numpy has no bfloat16: the raw 16-bit patterns (little-endian int16)
        bits = t.detach().contiguous().to(torch.bfloat16).view(torch.int16).numpy()
        bits.astype(np.dtype(np.int16).newbyteorder("<")).tofile(path)
        return
    np_dtype = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32}[dtype]
    t.detach().contiguous().numpy().astype(np.dtype(np_dtype).newbyteorder("<")).tofile(path)


def _case_lines(cid: str, op: str, dtype: str, version: str, namespace: str, fields: list, ins: list, out: tuple,
                tol: tuple, out_dir: str, floats: str, int_dtype=lambda name, t: "i64") -> list:
    """One case block of cases.txt (and its tensor files)."""
    lines = [f"case {cid} {op} {dtype}", f"version {version}", f"namespace {namespace}", f"floats {floats}"]
    for name, kind, vals in fields:
        lines.append(f"field {name} {kind} {len(vals)} " + " ".join(str(int(v)) for v in vals))
    for name, t, dims in ins:
        if name in FP32_INPUTS:
            tdt = "f32"  # FocusCrop's positions, TAM weights: float32 whatever the frames' type
        elif t.is_floating_point():
            tdt = dtype
        else:
            tdt = int_dtype(name, t)
        fname = f"{cid}_{name}.bin"
        _write(os.path.join(out_dir, fname), t, tdt)
        lines.append(f"in {name} {tdt} {len(dims)} " + " ".join(map(str, dims)) + f" {fname}")
    for oname, ref, odims in (out if isinstance(out, list) else [out]):  # a list: several outputs, in order
        fname = f"{cid}_{oname}_ref.bin"
        _write(os.path.join(out_dir, fname), ref, "f64")
        odt = "i64" if oname in INT64_OUTPUTS else dtype
        lines.append(f"out {oname} {odt} {len(odims)} " + " ".join(map(str, odims)) + f" {fname}")
    lines.append(f"tol {tol[0]!r} {tol[1]!r}")
    lines.append("end")
    return lines


def main(out_dir: str) -> int:
    os.makedirs(out_dir, exist_ok=True)
    nodes = exported_plugin_nodes(out_dir)
    missing = set(P.BY_NAME) - {n[0] for n in nodes}
    if missing:
        raise SystemExit(f"make_cases: the export has no {sorted(missing)} node")
    g = torch.Generator().manual_seed(20261202)
    lines, n = [], 0
    for op, version, namespace, fields in nodes:
        values = {name: vals[0] for name, kind, vals in fields}
        if op == "FocusCrop":
            # the exported node (V2: bilinear, P from the export), then the same node with V1's floor mode and with
            # an odd patch size (scalar tails), in fp32, fp16 and bf16
            variants = [({}, dt, sh) for dt in ("f32", "f16", "bf16") for sh in ("odd", "aligned")]
            variants += [({"mode": P_MODES["floor"]}, dt, "odd") for dt in ("f32", "f16", "bf16")]
            variants += [({"patch_size": 7}, "f32", "odd"), ({"patch_size": 7}, "f16", "odd"),
                         ({"patch_size": 7, "mode": P_MODES["floor"]}, "bf16", "odd")]
            for change, dtype, shapes in variants:
                case_fields = [(nm, kind, [change[nm]] if nm in change else vals) for nm, kind, vals in fields]
                ins, out, tol = make_crop_case({**values, **change}, dtype, shapes, g)
                tag = "_".join(f"{k}{v}" for k, v in change.items())
                cid = f"c{n:02d}_{op}_{dtype}_{shapes}{'_' + tag if tag else ''}"
                n += 1
                lines += _case_lines(cid, op, dtype, version, namespace, case_fields, ins, out, tol, out_dir,
                                     floats="f32,f16,bf16")
            continue
        if op in P.BLVNET_PLUGINS:
            # each exported node in fp32/fp16/bf16 on odd and aligned maps (K = the export's 3 taps), then relu=0,
            # K=5 (TAMs: wider than a 2-row clip), and for BLMerge equal sizes (layer0) and a non-2× nearest map
            shape_sets = ("odd", "aligned")
            variants = [({}, dt, sh, 3) for dt in ("f32", "f16", "bf16") for sh in shape_sets]
            variants += [({"relu": 0}, "f32", "odd", 3), ({"relu": 0}, "bf16", "aligned", 3)]
            if op == "BLMerge":
                variants += [({}, "f32", "same", 3), ({}, "f16", "same", 3), ({}, "f32", "uneven", 3),
                             ({}, "bf16", "uneven", 3)]
            else:
                variants += [({}, "f32", "odd", 5), ({}, "f16", "aligned", 5)]
            for change, dtype, shapes, taps in variants:
                case_fields = [(nm, kind, [change[nm]] if nm in change else vals) for nm, kind, vals in fields]
                ins, outs, tol = make_blvnet_case(op, {**values, **change}, dtype, shapes, taps, g)
                tag = "_".join(f"{k}{v}" for k, v in change.items()) + ("" if taps == 3 else f"K{taps}")
                t_tag = "".join(f"_{k[:1]}{v}" for k, v in values.items() if k in ("num_frames", "num_pairs"))
                cid = f"c{n:02d}_{op}{t_tag}_{dtype}_{shapes}{'_' + tag if tag else ''}"
                n += 1
                lines += _case_lines(cid, op, dtype, version, namespace, case_fields, ins, outs, tol, out_dir,
                                     floats="f32,f16,bf16")
            continue
        if op == "SegmentCluster":
            # the exported node (cumulative, K=4) and rules slope / even, K = 1 and K = 7 (longer than some videos),
            # fp32/fp16/bf16, one video (no frame_offsets input) and ragged batches (int64 and int32 offsets)
            variants = [({}, dt, sh, "i64") for dt in ("f32", "f16", "bf16") for sh in _CLUSTER_SHAPES]
            variants += [({"rule": P.SEGMENT_CLUSTER_RULES[r]}, dt, sh, "i64") for r in ("slope", "even")
                         for dt, sh in (("f32", "ragged_odd"), ("f16", "one_aligned"), ("bf16", "ragged_aligned"))]
            variants += [({"clusters": 7, "rule": 0}, "f32", "ragged_odd", "i32"), ({"clusters": 7}, "f16",
                         "ragged_aligned", "i64"), ({"clusters": 1}, "f32", "one_odd", "i64"),
                         ({"clusters": 1, "rule": 0}, "bf16", "ragged_odd", "i64"), ({}, "f32", "ragged_aligned", "i32")]
            for change, dtype, shapes, index_dtype in variants:
                case_fields = [(nm, kind, [change[nm]] if nm in change else vals) for nm, kind, vals in fields]
                ins, outs, tol = make_cluster_case({**values, **change}, dtype, shapes, index_dtype, g)
                tag = "_".join(f"{k}{v}" for k, v in change.items())
                cid = f"c{n:02d}_{op}_{dtype}_{shapes}_{index_dtype}{'_' + tag if tag else ''}"
                n += 1
                lines += _case_lines(cid, op, dtype, version, namespace, case_fields, ins, outs, tol, out_dir,
                                     floats="f32,f16,bf16", int_dtype=lambda name, t, idt=index_dtype: idt)
            continue
        takes_index = "index" in P.BY_NAME[op].inputs
        variants = [(dt, sh, "i64", False) for dt in ("f32", "f16") for sh in ("odd", "aligned")]
        if takes_index:
            variants.append(("f32", "odd", "i32", False))
        variants += [(dt, sh, "i64", True) for dt, sh in (("f32", "odd"), ("f16", "aligned"), ("f16", "odd"))]
        for dtype, shapes, index_dtype, chained in variants:
            case_fields = fields
            if chained:
                ins, (oname, ref, odims), (atol, rtol), (mask, upto) = make_chain_case(op, values, dtype, shapes, g)
                chain_values = {"chain_relu_mask": mask, "chain_upto": upto}
                case_fields = [(nm, kind, [chain_values[nm]] if nm in chain_values else vals)
                               for nm, kind, vals in fields]
            else:
                ins, (oname, ref, odims), (atol, rtol) = make_case(op, values, dtype, shapes, index_dtype, g)
            cid = f"c{n:02d}_{op}_{dtype}_{shapes}_{index_dtype}{'_chain' if chained else ''}"
            n += 1
            lines += _case_lines(cid, op, dtype, version, namespace, case_fields, ins, (oname, ref, odims),
                                 (atol, rtol), out_dir, floats="f32,f16",
                                 int_dtype=lambda name, t, idt=index_dtype: "i32" if name == "chain_start" else idt)
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"make_cases: {n} cases from {len(nodes)} exported plugin node kinds "
          f"({', '.join(sorted({x[0] for x in nodes}))}) -> {out_dir}/cases.txt")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_cases.py OUT_DIR")
    sys.exit(main(sys.argv[1]))
