"""The TensorRT plugin contract of afnet_edge: names, version, namespace and fields of every plugin.

This module is the Python half of a contract whose C++ half is ``csrc/trt``: each plugin's creator declares exactly
the fields listed here (same names, same order, ``kINT32`` scalars), and serialises exactly them. Each C++ plugin
writes its fields once, in the field table ``kFields`` of its ``<Name>Spec`` (``csrc/trt/<Name>Plugin.h``), which
drives the creator's field list, ``createPlugin`` and ``getFieldsToSerialize``. ``tests/test_export_onnx.py`` parses
those tables and the ONNX nodes of a ``plugin`` export and fails on any difference; ``tests/trt_harness`` creates
every plugin through its creator from the fields of an actual export and runs it (``scripts/trt_plugin_check.sh``).
Bump :data:`PLUGIN_VERSION` here *and* in ``csrc/trt/afnPluginCommon.h`` when a field or a semantic changes.

Plugin semantics (the CUDA kernels of ``csrc/kernels``; pure-PyTorch reference in :mod:`afnet_edge.kernels.reference`):

=================  ===================================================  ================================  ===========
plugin             inputs                                               output                            fields
=================  ===================================================  ================================  ===========
FocalGather        x (N, C, H, W), index int64 (K,)                     y (K, C, H, W)                    num_frames,
                                                                                                          shift
FocalScatter       residual (N, C, H, W), y (K, C, H, W), index int64   out (N, C, H, W)                  relu
                   (K,), const (C, H, W)
AmpleFusePool      xl (N, C, h, w), xb (N, C, H, W)                     pooled (N, C)
AmpleFuseBlend     xl (N, C, h, w), xb (N, C, H, W), a (N, C)           out (N, C, H, W)                  relu
FocusCrop          x (N, C, H, W), centres float32 (N, 2)               patches (N, C, P, P)              mode,
                                                                                                          patch_size
TemporalAggregate  x (N, C, H, W), weight float32 (K, C)                out (N, C, H, W)                  num_frames,
                                                                                                          relu
TemporalAggregate  y (N, C, H, W), w_big float32 (K, C), w_little        big_in (N, C, H, W),              num_pairs,
Pair               float32 (K, C)                                       little_in (N, C, H, W)            relu
BLMerge            big (N, C, h, w), little (N, C, H, W)                out (N, C, H, W)                  relu
SegmentCluster     a (N, C, h, w), frame_offsets int64 (B+1,)           means (B·K, C, h, w),             clusters,
                                                                        offsets int64 (B, K+1)            rule
=================  ===================================================  ================================  ===========

The first four are AFNet's (reference :mod:`afnet_edge.kernels.reference`); ``FocusCrop`` is AdaFocus' patch crop
(:func:`afnet_edge.kernels.adafocus_reference.focus_crop`: ``mode`` 0 = ``bilinear`` (V2), 1 = ``floor`` (V1),
``patch_size`` = P; ``centres`` are the (row, col) actions in [0, 1], float32 whatever the frames' type). Its frames
may also be bf16, and it has no lazy-chain fields or inputs (chains are an AFNet execution plan).

The last three are bLVNet-TAM's (:mod:`afnet_edge.kernels.blvnet_reference`, spec blvnet-tam.md §4, §8.2):
``TemporalAggregate`` is the TAM ``act(Σ_i weight[i] ⊙ x_{t+i−K/2})`` over the ``num_frames`` rows of each clip
(zero padding in time at the clip's ends, K odd ≤ 63), ``TemporalAggregatePair`` the stage TAM on pair features
(``num_pairs`` rows per clip, the folded weights of §4.3; its TWO outputs, big and little branch input, come from one
read), ``BLMerge`` ``act(nearest_up(big) + little)``; ``relu`` 1 = act is ReLU. Tensors fp32, fp16 or bf16, the TAM
weights float32 whatever the frames' type; no lazy-chain fields or inputs.

``SegmentCluster`` is full-video clustering (:mod:`afnet_edge.kernels.fullvideo_reference`, spec
full-video-clustering.md §3, §4, §4.6, §11.3): bits ``a > 0``, neighbour Hamming distances, K contiguous segments per
video by ``rule`` (:data:`SEGMENT_CLUSTER_RULES`: 0 slope, 1 even, 2 cumulative — the repaired rule in exact
integers; ``cumulative_official`` has no kernel), the fp32-accumulated mean of every segment. ``frame_offsets`` are
the CSR rows of a ragged batch (the C++ plugin also runs without that input: one video); ``a`` fp32, fp16 or bf16;
two outputs, the means (a's type) and the segments' local frame offsets (int64). No lazy-chain fields or inputs.

Every AFNet plugin also has the fields ``chain_relu_mask`` and ``chain_upto`` and two optional trailing inputs
``chain_start`` int32 ``(N,)`` and ``chain_consts`` ``(L, C, H, W)`` (a lazy constant chain, issue 16:
:class:`afnet_edge.kernels.reference.LazyChain`): with them the plugin reads the logical frame tensor (x / residual /
xb: each frame's pending blocks ``start[f] .. chain_upto − 1`` applied as it is read), and FocalScatter writes only the
selected rows (the others are returned as stored; its const input is then not read). Without them both fields are 0.
Version 3 (these fields are new and required, so version-2 nodes and engines must be re-exported).

Float tensors are fp32 or fp16 (all of one node in the same type), linear (NCHW) format; ``index`` is int64, sorted
ascending and unique (the export's ``topk`` selection produces it that way); the plugins also accept an int32 index
(widened to int64 in their workspace) in case TensorRT narrows the tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Version string of every afnet_edge plugin (``plugin_version`` attribute, ``getPluginVersion()``).
PLUGIN_VERSION = "3"
#: Namespace the plugin library registers its creators under (``plugin_namespace`` attribute).
PLUGIN_NAMESPACE = "afnet_edge"
#: ONNX domain of the plugin nodes. TensorRT's ONNX parser looks plugins up by op type, ``plugin_version`` and
#: ``plugin_namespace`` only; the custom domain keeps ``onnx.checker`` from rejecting unknown ops of the default domain.
PLUGIN_DOMAIN = "afnet_edge.trt"
#: Base name of the plugin shared library built by ``csrc/trt`` (``libafnet_edge_trt_plugins.so``).
PLUGIN_LIBRARY = "afnet_edge_trt_plugins"


@dataclass(frozen=True)
class PluginSpec:
    """One plugin: its TensorRT name, the Python op word it implements, inputs, and int32 fields in order."""

    name: str
    op: str
    inputs: tuple
    outputs: tuple
    fields: tuple


#: The fields and optional trailing inputs of a lazy constant chain, the same for every plugin. Fields are listed in
#: the order the ONNX exporter writes node attributes (by name), which the plugin harness requires of the creators.
CHAIN_FIELDS = ("chain_relu_mask", "chain_upto")
CHAIN_INPUTS = ("chain_start", "chain_consts")

PLUGINS: dict = {
    "focal_gather": PluginSpec("FocalGather", "focal_gather", ("x", "index"), ("y",),
                               (*CHAIN_FIELDS, "num_frames", "shift")),
    "focal_scatter": PluginSpec("FocalScatter", "focal_scatter", ("residual", "y", "index", "const"), ("out",),
                                (*CHAIN_FIELDS, "relu")),
    "ample_fuse_pool": PluginSpec("AmpleFusePool", "ample_fuse_pool", ("xl", "xb"), ("pooled",), CHAIN_FIELDS),
    "ample_fuse_blend": PluginSpec("AmpleFuseBlend", "ample_fuse_blend", ("xl", "xb", "a"), ("out",),
                                   (*CHAIN_FIELDS, "relu")),
    "focus_crop": PluginSpec("FocusCrop", "focus_crop", ("x", "centres"), ("patches",), ("mode", "patch_size")),
    "temporal_aggregate": PluginSpec("TemporalAggregate", "temporal_aggregate", ("x", "weight"), ("out",),
                                     ("num_frames", "relu")),
    "temporal_aggregate_pair": PluginSpec("TemporalAggregatePair", "temporal_aggregate_pair",
                                          ("y", "w_big", "w_little"), ("big_in", "little_in"), ("num_pairs", "relu")),
    "bl_merge": PluginSpec("BLMerge", "bl_merge", ("big", "little"), ("out",), ("relu",)),
    "segment_cluster": PluginSpec("SegmentCluster", "segment_cluster", ("a", "frame_offsets"), ("means", "offsets"),
                                  ("clusters", "rule")),
}

#: The plugins of AFNet's compact path (the ``plugin`` flavour of an AF model emits exactly these).
AFNET_PLUGINS = ("FocalGather", "FocalScatter", "AmpleFusePool", "AmpleFuseBlend")
#: ``FocusCrop``'s ``mode`` field: the crop mode of :func:`afnet_edge.kernels.adafocus_reference.focus_crop` → value.
FOCUS_CROP_MODES = {"bilinear": 0, "floor": 1}
#: The plugins of bLVNet-TAM's pair-aware path (its ``plugin`` flavour emits exactly these).
BLVNET_PLUGINS = ("TemporalAggregate", "TemporalAggregatePair", "BLMerge")

#: ``SegmentCluster``'s ``rule`` field: the clustering rule of :mod:`afnet_edge.kernels.fullvideo_reference` → value
#: (BoundaryRule of csrc/kernels/fullvideo_cluster.h).
SEGMENT_CLUSTER_RULES = {"slope": 0, "even": 1, "cumulative": 2}
#: The plugin of full-video clustering's plugin flavour.
FULLVIDEO_PLUGINS = ("SegmentCluster",)

#: TensorRT plugin name -> spec.
BY_NAME: dict = {s.name: s for s in PLUGINS.values()}
