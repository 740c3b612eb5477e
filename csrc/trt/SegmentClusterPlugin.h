// SegmentCluster: the on-device clustering of "No frame left behind" as one TensorRT plugin (csrc/kernels/
// fullvideo_cluster.h; spec full-video-clustering.md §3, §4, §4.6, §11.2, §11.3): binarize_pack -> adjacent_hamming
// -> segment_boundaries -> segment_mean on the enqueue stream, no host sync, so the whole step captures in a CUDA
// graph and engines can cut with the cumulative rule and take ragged batches (neither fits standard ONNX ops).
//   inputs  a (N, D...) fp32|fp16|bf16 — the layer1 activations of every frame, one frame per row (rank >= 2; the
//           trailing dims are flattened to D, bits follow the memory order, §3); optional frame_offsets (B+1,) int64
//           (or int32, widened in the workspace) — CSR rows of B videos (§4.6), 0 first, N last, strictly increasing
//           (not validated on the device: the kernels clamp, so bad offsets give some result, never an out-of-bounds
//           access); without it one video of N frames (B = 1)
//   outputs means (B·K, D...) of a's type — row b·K + j = mean of segment min(j, M_b − 1) of video b, fp32
//           accumulation; offsets (B, K+1) int64 — local frame indices of the segments (segments j >= M_b repeat
//           M_b − 1; offsets[j] = offsets[M_b] beyond), as afnet_edge.kernels.fullvideo_reference.segment_boundaries
//   fields  clusters (K >= 1), rule (0 slope, 1 even, 2 cumulative: BoundaryRule of the kernel; the release's
//           cumulative_official is a float64 reference rule with no kernel and no plugin code)
//   workspace  bits N·⌈D/32⌉ int32, distances max(N−1, 1) int32, M per video B int64, and (int32 frame_offsets only)
//           the widened offsets B+1 int64; each part 256-byte aligned; sized from the profile's max dims.
// No lazy constant chain: no chain fields or inputs.
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct SegmentClusterSpec {
  static constexpr char const* kName = "SegmentCluster";
  static constexpr int32_t kMaxClusters = 1 << 16;
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t clusters;
    int32_t rule;
  };
  static constexpr std::array<IntField<Params>, 2> kFields{{
      {"clusters", &Params::clusters, 1, kMaxClusters},
      {"rule", &Params::rule, 0, 2},
  }};
};

class SegmentClusterPlugin final : public PluginBase<SegmentClusterPlugin, SegmentClusterSpec> {
 public:
  explicit SegmentClusterPlugin(Params const& params) noexcept : PluginBase(params) {}

  int32_t getNbOutputs() const noexcept override { return 2; }

  // IPluginV3OneBuild
  int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs,
                          IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

 private:
  // a (N, D...) and frame_offsets (B+1,) (null: none); runtime: N >= 1 (the rules need a frame). Dims < 0 (not known
  // at build time) skipped.
  bool shapesOk(nvinfer1::Dims const& a, nvinfer1::Dims const* fo, bool runtime) const noexcept;
};

using SegmentClusterPluginCreator = PluginCreator<SegmentClusterPlugin>;

}  // namespace trt
}  // namespace afn
