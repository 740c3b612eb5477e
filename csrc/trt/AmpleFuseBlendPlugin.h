// AmpleFuseBlend: act(a ⊙ up(xl) + (1 − a) ⊙ xb), the attention-weighted merge of an AF stage
// (csrc/kernels/ample_fuse_blend.h), one pass.
//   inputs  xl (N, C, h, w) fp32|fp16, xb (N, C, H, W), a (N, C)
//   output  out (N, C, H, W), same type
//   fields  relu (0|1: act = ReLU)
//   chain   optional trailing inputs chain_start (N,) int32, chain_consts (L, C, H, W) + fields chain_relu_mask,
//           chain_upto (afnPluginCommon.h): blends the logical xb (pending blocks applied as it is read)
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct AmpleFuseBlendSpec {
  static constexpr char const* kName = "AmpleFuseBlend";
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t chain_relu_mask;
    int32_t chain_upto;
    int32_t relu;
  };
  static constexpr std::array<IntField<Params>, 3> kFields{{
      {"chain_relu_mask", &Params::chain_relu_mask, 0, kChainMaxMask},
      {"chain_upto", &Params::chain_upto, 0, kChainMaxBlocks},
      {"relu", &Params::relu, 0, 1},
  }};
};

class AmpleFuseBlendPlugin final : public PluginBase<AmpleFuseBlendPlugin, AmpleFuseBlendSpec> {
 public:
  explicit AmpleFuseBlendPlugin(Params const& params) noexcept : PluginBase(params) {}

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
};

using AmpleFuseBlendPluginCreator = PluginCreator<AmpleFuseBlendPlugin>;

}  // namespace trt
}  // namespace afn
