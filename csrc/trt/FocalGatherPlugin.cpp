// FocalGather plugin: see FocalGatherPlugin.h; the kernel and its index map are in csrc/kernels/focal_gather.h.
#include "FocalGatherPlugin.h"

#include "../kernels/focal_gather.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 2;  // x, index
}  // namespace

int32_t FocalGatherPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                           DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  int64_t const n = in[0].desc.dims.d[0];
  if (n > 0 && n % mParams.num_frames != 0) {  // -1 (dynamic) is checked again in onShapeChange
    reportErrorf(kName, "x has %lld frames, not a multiple of num_frames=%d", static_cast<long long>(n),
                 mParams.num_frames);
    return -1;
  }
  return 0;
}

int32_t FocalGatherPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                              int32_t nbInputs) const noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (!isFloatType(inputTypes[0]) || !isIndexType(inputTypes[1])) {
    reportError(kName, "x must be fp32 or fp16 and index int64");
    return -1;
  }
  if (!chainTypesOk(kName, inputTypes, nbInputs, kIn, inputTypes[0])) return -1;
  outputTypes[0] = inputTypes[0];
  return 0;
}

int32_t FocalGatherPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                           int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                           IExprBuilder& /*exprBuilder*/) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 1) {
    reportError(kName, "x must have rank 4 (N, C, H, W) and index rank 1 (K,)");
    return -1;
  }
  if (!chainRanksOk(kName, inputs, nbInputs, kIn)) return -1;
  outputs[0].nbDims = 4;
  outputs[0].d[0] = inputs[1].d[0];
  for (int32_t i = 1; i < 4; ++i) outputs[0].d[i] = inputs[0].d[i];
  return 0;
}

bool FocalGatherPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                  int32_t nbInputs, int32_t nbOutputs) noexcept {
  if ((nbInputs != kIn && !hasChain(nbInputs, kIn)) || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  if (pos >= kIn && pos < nbInputs) return supportsChainInput(pos, inOut, kIn);
  return supportsLinear(pos, inOut, /*isIndex=*/pos == 1);
}

int32_t FocalGatherPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                                         int32_t nbOutputs) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  mNbInputs = nbInputs;
  bool const chain = hasChain(nbInputs, kIn);
  if (!chainShapesOk(kName, in[0].dims, chain ? &in[kIn].dims : nullptr, chain ? &in[kIn + 1].dims : nullptr,
                     mParams.chain_relu_mask, mParams.chain_upto)) {
    return -1;
  }
  int64_t const n = in[0].dims.d[0];
  if (n % mParams.num_frames != 0) {
    reportErrorf(kName, "x has %lld frames, not a multiple of num_frames=%d", static_cast<long long>(n),
                 mParams.num_frames);
    return -1;
  }
  if (out[0].dims.d[0] != in[1].dims.d[0]) {
    reportError(kName, "output rows do not match the index length");
    return -1;
  }
  return 0;
}

int32_t FocalGatherPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                   void const* const* inputs, void* const* outputs, void* workspace,
                                   cudaStream_t stream) noexcept {
  nvinfer1::Dims const& xd = inputDesc[0].dims;
  FocalGatherParams p{};
  p.x = inputs[0];
  p.index = int64Index(kName, inputDesc[1], inputs[1], workspace, stream);
  if (p.index == nullptr) return -1;
  p.y = outputs[0];
  p.N = xd.d[0];
  p.C = xd.d[1];
  p.HW = volume(xd, 2, 4);
  p.K = inputDesc[1].dims.d[0];
  p.num_frames = mParams.num_frames;
  p.shift = mParams.shift != 0;
  if (p.K == 0) return 0;
  p.chain =
      chainParams(hasChain(mNbInputs, kIn), inputDesc, inputs, kIn, mParams.chain_relu_mask, mParams.chain_upto);
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, focal_gather_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, focal_gather_cuda<__half>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

size_t FocalGatherPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept {
  return nbInputs == kIn || hasChain(nbInputs, kIn) ? indexWorkspaceSize(inputs[1]) : 0;
}

}  // namespace trt
}  // namespace afn
