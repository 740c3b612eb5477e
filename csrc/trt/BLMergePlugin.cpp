// BLMerge plugin: see BLMergePlugin.h; the kernel and its nearest map are in csrc/kernels/bl_merge.h.
#include "BLMergePlugin.h"

#include "../kernels/bl_merge.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 2;  // big, little

// Types the kernel is instantiated for.
bool isMapType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }
}  // namespace

bool BLMergePlugin::shapesOk(nvinfer1::Dims const& big, nvinfer1::Dims const& little) const noexcept {
  if (big.nbDims != 4 || little.nbDims != 4) {
    reportError(kName, "expects big (N, C, h, w) and little (N, C, H, W)");
    return false;
  }
  for (int32_t j = 0; j < 2; ++j) {
    if (big.d[j] >= 0 && little.d[j] >= 0 && big.d[j] != little.d[j]) {
      reportErrorf(kName, "big and little must share N and C, got big (%lld, %lld, ...) and little (%lld, %lld, ...)",
                   static_cast<long long>(big.d[0]), static_cast<long long>(big.d[1]),
                   static_cast<long long>(little.d[0]), static_cast<long long>(little.d[1]));
      return false;
    }
  }
  for (int32_t j = 2; j < 4; ++j) {
    if (big.d[j] == 0 || little.d[j] == 0) {
      reportError(kName, "big and little must have non-empty spatial sizes");
      return false;
    }
  }
  return true;
}

int32_t BLMergePlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                       DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  return shapesOk(in[0].desc.dims, in[1].desc.dims) ? 0 : -1;  // -1 dims (dynamic) checked again in onShapeChange
}

int32_t BLMergePlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                          int32_t nbInputs) const noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  if (!isMapType(inputTypes[0]) || inputTypes[1] != inputTypes[0]) {
    reportError(kName, "big and little must both be fp32, fp16 or bf16");
    return -1;
  }
  outputTypes[0] = inputTypes[1];
  return 0;
}

int32_t BLMergePlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                       int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                       IExprBuilder& /*exprBuilder*/) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
    reportError(kName, "big and little must have rank 4");
    return -1;
  }
  outputs[0] = inputs[1];
  return 0;
}

// Linear (NCHW) only; all three tensors share one of fp32/fp16/bf16 (TensorRT asks positions in order).
bool BLMergePlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                              int32_t nbOutputs) noexcept {
  if (nbInputs != kIn || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  return isMapType(d.type) && (pos == 0 || d.type == inOut[0].desc.type);
}

int32_t BLMergePlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                     int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  mNbInputs = nbInputs;
  return shapesOk(in[0].dims, in[1].dims) ? 0 : -1;
}

int32_t BLMergePlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                               void const* const* inputs, void* const* outputs, void* /*workspace*/,
                               cudaStream_t stream) noexcept {
  nvinfer1::Dims const& b = inputDesc[0].dims;
  nvinfer1::Dims const& l = inputDesc[1].dims;
  BLMergeParams p{};
  p.big = inputs[0];
  p.little = inputs[1];
  p.out = outputs[0];
  p.NC = l.d[0] * l.d[1];
  p.h = b.d[2];
  p.w = b.d[3];
  p.H = l.d[2];
  p.W = l.d[3];
  p.relu = mParams.relu != 0;
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, bl_merge_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, bl_merge_cuda<__half>(p, stream));
    case DataType::kBF16: return checkLaunch(kName, bl_merge_cuda<__nv_bfloat16>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

}  // namespace trt
}  // namespace afn
