// BLMerge: bLVNet's big-little merge (csrc/kernels/bl_merge.h; spec blvnet-tam.md §3.3, §8.2) in one pass, the
// upsampled big map never materialised:
//   inputs  big (N, C, h, w), little (N, C, H, W), one of fp32|fp16|bf16
//   output  out (N, C, H, W), same type: act(big[n, c, ⌊i·h/H⌋, ⌊j·w/W⌋] + little[n, c, i, j]) — PyTorch's legacy
//           nearest (an exact 2× replication in layers 1–3, the identity in layer0 where the sizes agree)
//   fields  relu (0/1)
// No lazy constant chain (issue 16's chains belong to AFNet's frame tensors): no chain fields or inputs.
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

struct BLMergeSpec {
  static constexpr char const* kName = "BLMerge";
  struct Params {
    int32_t relu;
  };
  static constexpr std::array<IntField<Params>, 1> kFields{{
      {"relu", &Params::relu, 0, 1},
  }};
};

class BLMergePlugin final : public PluginBase<BLMergePlugin, BLMergeSpec> {
 public:
  explicit BLMergePlugin(Params const& params) noexcept : PluginBase(params) {}

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

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

 private:
  // big and little share N and C; dims < 0 (not known at build time) skipped.
  bool shapesOk(nvinfer1::Dims const& big, nvinfer1::Dims const& little) const noexcept;
};

using BLMergePluginCreator = PluginCreator<BLMergePlugin>;

}  // namespace trt
}  // namespace afn
