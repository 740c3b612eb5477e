// FocalGather: the compact batch of selected frames, TSM shift fused (csrc/kernels/focal_gather.h).
//   inputs  x (N, C, H, W) fp32|fp16, index (K,) int64 — frame rows b·T + t, sorted ascending, unique (int32 is
//           accepted too and widened in the workspace)
//   output  y (K, C, H, W), same type as x
//   fields  num_frames (T, N % T == 0), shift (0|1: apply the temporal shift while gathering)
//   chain   optional trailing inputs chain_start (N,) int32, chain_consts (L, C, H, W) + fields chain_relu_mask,
//           chain_upto (afnPluginCommon.h): gathers from the logical x, each source frame (and each shifted-in
//           neighbour segment) with its own pending blocks applied
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct FocalGatherSpec {
  static constexpr char const* kName = "FocalGather";
  static constexpr int32_t kMaxFrames = 1 << 16;
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t chain_relu_mask;
    int32_t chain_upto;
    int32_t num_frames;
    int32_t shift;
  };
  static constexpr std::array<IntField<Params>, 4> kFields{{
      {"chain_relu_mask", &Params::chain_relu_mask, 0, kChainMaxMask},
      {"chain_upto", &Params::chain_upto, 0, kChainMaxBlocks},
      {"num_frames", &Params::num_frames, 1, kMaxFrames},
      {"shift", &Params::shift, 0, 1},
  }};
};

class FocalGatherPlugin final : public PluginBase<FocalGatherPlugin, FocalGatherSpec> {
 public:
  explicit FocalGatherPlugin(Params const& params) noexcept : PluginBase(params) {}

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
                          DynamicPluginTensorDesc const* outputs,
                          int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

using FocalGatherPluginCreator = PluginCreator<FocalGatherPlugin>;

}  // namespace trt
}  // namespace afn
