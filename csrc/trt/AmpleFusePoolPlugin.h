// AmpleFusePool: per-frame, per-channel mean of up(xl) + xb, the input of the fusion attention
// (csrc/kernels/ample_fuse_pool.h), without materialising the nearest-upsampled ample map.
//   inputs  xl (N, C, h, w) fp32|fp16, xb (N, C, H, W)
//   output  pooled (N, C), same type
//   fields  chain_relu_mask, chain_upto; optional trailing inputs chain_start (N,) int32, chain_consts
//           (L, C, H, W) (afnPluginCommon.h): pools the logical xb (pending blocks applied as it is read)
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct AmpleFusePoolSpec {
  static constexpr char const* kName = "AmpleFusePool";
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t chain_relu_mask;
    int32_t chain_upto;
  };
  static constexpr std::array<IntField<Params>, 2> kFields{{
      {"chain_relu_mask", &Params::chain_relu_mask, 0, kChainMaxMask},
      {"chain_upto", &Params::chain_upto, 0, kChainMaxBlocks},
  }};
};

class AmpleFusePoolPlugin final : public PluginBase<AmpleFusePoolPlugin, AmpleFusePoolSpec> {
 public:
  explicit AmpleFusePoolPlugin(Params const& params) noexcept : PluginBase(params) {}

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

using AmpleFusePoolPluginCreator = PluginCreator<AmpleFusePoolPlugin>;

}  // namespace trt
}  // namespace afn
