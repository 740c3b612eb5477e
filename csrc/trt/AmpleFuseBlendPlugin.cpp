// AmpleFuseBlend plugin: see AmpleFuseBlendPlugin.h; the kernel is csrc/kernels/ample_fuse_blend.h.
#include "AmpleFuseBlendPlugin.h"

#include "../kernels/ample_fuse_blend.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 3;  // xl, xb, a
}  // namespace

int32_t AmpleFuseBlendPlugin::configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
                                              DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return checkIoCountChain(kName, nbInputs, kIn, nbOutputs) ? 0 : -1;
}

int32_t AmpleFuseBlendPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                                 DataType const* inputTypes, int32_t nbInputs) const noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (!isFloatType(inputTypes[0]) || inputTypes[1] != inputTypes[0] || inputTypes[2] != inputTypes[0]) {
    reportError(kName, "xl, xb and a must share one type (fp32 or fp16)");
    return -1;
  }
  if (!chainTypesOk(kName, inputTypes, nbInputs, kIn, inputTypes[0])) return -1;
  outputTypes[0] = inputTypes[0];
  return 0;
}

int32_t AmpleFuseBlendPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
                                              DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                              DimsExprs* outputs, int32_t nbOutputs,
                                              IExprBuilder& /*exprBuilder*/) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4 || inputs[2].nbDims != 2) {
    reportError(kName, "expects xl (N, C, h, w), xb (N, C, H, W) and a (N, C)");
    return -1;
  }
  if (!chainRanksOk(kName, inputs, nbInputs, kIn)) return -1;
  outputs[0] = inputs[1];
  return 0;
}

bool AmpleFuseBlendPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                     int32_t nbInputs, int32_t nbOutputs) noexcept {
  if ((nbInputs != kIn && !hasChain(nbInputs, kIn)) || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  if (pos >= kIn && pos < nbInputs) return supportsChainInput(pos, inOut, kIn);
  return supportsLinear(pos, inOut, /*isIndex=*/false);
}

int32_t AmpleFuseBlendPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs,
                                            PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  mNbInputs = nbInputs;
  bool const chain = hasChain(nbInputs, kIn);
  if (!chainShapesOk(kName, in[1].dims, chain ? &in[kIn].dims : nullptr, chain ? &in[kIn + 1].dims : nullptr,
                     mParams.chain_relu_mask, mParams.chain_upto)) {
    return -1;
  }
  nvinfer1::Dims const& l = in[0].dims;
  nvinfer1::Dims const& b = in[1].dims;
  nvinfer1::Dims const& a = in[2].dims;
  if (l.d[0] != b.d[0] || l.d[1] != b.d[1] || a.d[0] != b.d[0] || a.d[1] != b.d[1] || l.d[2] > b.d[2] ||
      l.d[3] > b.d[3] || l.d[2] < 1 || l.d[3] < 1) {
    reportErrorf(kName, "inconsistent shapes: xl (%lld, %lld, %lld, %lld), xb (%lld, %lld, %lld, %lld), "
                 "a (%lld, %lld)", static_cast<long long>(l.d[0]), static_cast<long long>(l.d[1]),
                 static_cast<long long>(l.d[2]), static_cast<long long>(l.d[3]), static_cast<long long>(b.d[0]),
                 static_cast<long long>(b.d[1]), static_cast<long long>(b.d[2]), static_cast<long long>(b.d[3]),
                 static_cast<long long>(a.d[0]), static_cast<long long>(a.d[1]));
    return -1;
  }
  return 0;
}

int32_t AmpleFuseBlendPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                      void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                      cudaStream_t stream) noexcept {
  nvinfer1::Dims const& l = inputDesc[0].dims;
  nvinfer1::Dims const& b = inputDesc[1].dims;
  AmpleFuseBlendParams p{};
  p.xl = inputs[0];
  p.xb = inputs[1];
  p.a = inputs[2];
  p.out = outputs[0];
  p.NC = b.d[0] * b.d[1];
  p.h = l.d[2];
  p.w = l.d[3];
  p.H = b.d[2];
  p.W = b.d[3];
  p.relu = mParams.relu != 0;
  p.C = b.d[1];
  p.chain =
      chainParams(hasChain(mNbInputs, kIn), inputDesc, inputs, kIn, mParams.chain_relu_mask, mParams.chain_upto);
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, ample_fuse_blend_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, ample_fuse_blend_cuda<__half>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

}  // namespace trt
}  // namespace afn
