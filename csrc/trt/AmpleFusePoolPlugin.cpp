// AmpleFusePool plugin: see AmpleFusePoolPlugin.h; the kernel is csrc/kernels/ample_fuse_pool.h.
#include "AmpleFusePoolPlugin.h"

#include "../kernels/ample_fuse_pool.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 2;  // xl, xb
}  // namespace

int32_t AmpleFusePoolPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                             DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  int64_t const h = in[0].desc.dims.d[2], w = in[0].desc.dims.d[3];
  if (h > 0 && w > 0 && h + w > kAmplePoolMaxWeights) {
    reportErrorf(kName, "ample map %lld×%lld too large: h + w must be at most %lld", static_cast<long long>(h),
                 static_cast<long long>(w), static_cast<long long>(kAmplePoolMaxWeights));
    return -1;
  }
  return 0;
}

int32_t AmpleFusePoolPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                int32_t nbInputs) const noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (!isFloatType(inputTypes[0]) || inputTypes[1] != inputTypes[0]) {
    reportError(kName, "xl and xb must share one type (fp32 or fp16)");
    return -1;
  }
  if (!chainTypesOk(kName, inputTypes, nbInputs, kIn, inputTypes[0])) return -1;
  outputTypes[0] = inputTypes[0];
  return 0;
}

int32_t AmpleFusePoolPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
                                             DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                             DimsExprs* outputs, int32_t nbOutputs,
                                             IExprBuilder& /*exprBuilder*/) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
    reportError(kName, "expects xl (N, C, h, w) and xb (N, C, H, W)");
    return -1;
  }
  if (!chainRanksOk(kName, inputs, nbInputs, kIn)) return -1;
  outputs[0].nbDims = 2;
  outputs[0].d[0] = inputs[1].d[0];
  outputs[0].d[1] = inputs[1].d[1];
  return 0;
}

bool AmpleFusePoolPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                    int32_t nbInputs, int32_t nbOutputs) noexcept {
  if ((nbInputs != kIn && !hasChain(nbInputs, kIn)) || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  if (pos >= kIn && pos < nbInputs) return supportsChainInput(pos, inOut, kIn);
  return supportsLinear(pos, inOut, /*isIndex=*/false);
}

int32_t AmpleFusePoolPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs,
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
  if (l.d[0] != b.d[0] || l.d[1] != b.d[1] || l.d[2] > b.d[2] || l.d[3] > b.d[3] || l.d[2] < 1 || l.d[3] < 1) {
    reportErrorf(kName, "xl (%lld, %lld, %lld, %lld) must have xb's frames and channels and be no larger than xb "
                 "(%lld, %lld, %lld, %lld)", static_cast<long long>(l.d[0]), static_cast<long long>(l.d[1]),
                 static_cast<long long>(l.d[2]), static_cast<long long>(l.d[3]), static_cast<long long>(b.d[0]),
                 static_cast<long long>(b.d[1]), static_cast<long long>(b.d[2]), static_cast<long long>(b.d[3]));
    return -1;
  }
  if (l.d[2] + l.d[3] > kAmplePoolMaxWeights) {
    reportError(kName, "ample map too large for the pooling kernel");
    return -1;
  }
  return 0;
}

int32_t AmpleFusePoolPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                     void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                     cudaStream_t stream) noexcept {
  nvinfer1::Dims const& l = inputDesc[0].dims;
  nvinfer1::Dims const& b = inputDesc[1].dims;
  AmpleFusePoolParams p{};
  p.xl = inputs[0];
  p.xb = inputs[1];
  p.out = outputs[0];
  p.NC = b.d[0] * b.d[1];
  p.h = l.d[2];
  p.w = l.d[3];
  p.H = b.d[2];
  p.W = b.d[3];
  p.C = b.d[1];
  p.chain =
      chainParams(hasChain(mNbInputs, kIn), inputDesc, inputs, kIn, mParams.chain_relu_mask, mParams.chain_upto);
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, ample_fuse_pool_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, ample_fuse_pool_cuda<__half>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

}  // namespace trt
}  // namespace afn
