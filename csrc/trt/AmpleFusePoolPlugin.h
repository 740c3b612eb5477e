// AmpleFusePool: per-frame, per-channel mean of up(xl) + xb, the input of the fusion attention
// (csrc/kernels/ample_fuse_pool.h), without materialising the nearest-upsampled ample map.
//   inputs  xl (N, C, h, w) fp32|fp16, xb (N, C, H, W)
//   output  pooled (N, C), same type
//   fields  (none)
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

class AmpleFusePoolPlugin final : public PluginBase<AmpleFusePoolPlugin> {
 public:
  static constexpr char const* kName = "AmpleFusePool";

  AmpleFusePoolPlugin() noexcept = default;
  AmpleFusePoolPlugin(AmpleFusePoolPlugin const& /*other*/) noexcept {}

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
  PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  std::vector<PluginField> mSerial;
  PluginFieldCollection mSerialFC{};
};

class AmpleFusePoolPluginCreator final : public CreatorBase {
 public:
  AmpleFusePoolPluginCreator();
  AsciiChar const* getPluginName() const noexcept override { return AmpleFusePoolPlugin::kName; }
  IPluginV3* createPlugin(AsciiChar const* name, PluginFieldCollection const* fc,
                          TensorRTPhase phase) noexcept override;
};

}  // namespace trt
}  // namespace afn
