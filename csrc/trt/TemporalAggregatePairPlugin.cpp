// TemporalAggregatePair plugin: see TemporalAggregatePairPlugin.h; checks and launch in TemporalAggregatePlugin.cpp.
#include "TemporalAggregatePairPlugin.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kOut = 2;  // big_in, little_in
constexpr int32_t kIn = 3;   // y, w_big, w_little
}  // namespace

int32_t TemporalAggregatePairPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                                     DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, kOut)) return -1;
  nvinfer1::Dims dims[kIn];
  for (int32_t i = 0; i < kIn; ++i) dims[i] = in[i].desc.dims;
  return tam::shapesOk(kName, "num_pairs", mParams.num_pairs, dims, kOut) ? 0 : -1;  // -1 dims: again in onShapeChange
}

int32_t TemporalAggregatePairPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                        int32_t nbInputs) const noexcept {
  return tam::outputDataTypes(kName, kOut, outputTypes, nbOutputs, inputTypes, nbInputs);
}

int32_t TemporalAggregatePairPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                                     int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                                     IExprBuilder& /*exprBuilder*/) noexcept {
  return tam::outputShapes(kName, kOut, inputs, nbInputs, outputs, nbOutputs);
}

bool TemporalAggregatePairPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                            int32_t nbOutputs) noexcept {
  return tam::formatOk(kOut, pos, inOut, nbInputs, nbOutputs);
}

int32_t TemporalAggregatePairPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                                   int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, kOut)) return -1;
  mNbInputs = nbInputs;
  nvinfer1::Dims dims[kIn];
  for (int32_t i = 0; i < kIn; ++i) dims[i] = in[i].dims;
  return tam::shapesOk(kName, "num_pairs", mParams.num_pairs, dims, kOut) ? 0 : -1;
}

int32_t TemporalAggregatePairPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                             void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                             cudaStream_t stream) noexcept {
  return tam::enqueue(kName, kOut, mParams.num_pairs, mParams.relu != 0, inputDesc, inputs, outputs, stream);
}

}  // namespace trt
}  // namespace afn
