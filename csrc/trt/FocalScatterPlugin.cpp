// FocalScatter plugin: see FocalScatterPlugin.h; the kernel is csrc/kernels/focal_scatter.h.
#include "FocalScatterPlugin.h"

#include "../kernels/focal_scatter.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 4;  // residual, y, index, const
constexpr int32_t kIndexPos = 2;
}  // namespace

int32_t FocalScatterPlugin::configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
                                            DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return checkIoCountChain(kName, nbInputs, kIn, nbOutputs) ? 0 : -1;
}

int32_t FocalScatterPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                               int32_t nbInputs) const noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (!isFloatType(inputTypes[0]) || inputTypes[1] != inputTypes[0] || inputTypes[3] != inputTypes[0] ||
      !isIndexType(inputTypes[kIndexPos])) {
    reportError(kName, "residual, y and const must share one type (fp32 or fp16) and index must be int64 or int32");
    return -1;
  }
  if (!chainTypesOk(kName, inputTypes, nbInputs, kIn, inputTypes[0])) return -1;
  outputTypes[0] = inputTypes[0];
  return 0;
}

int32_t FocalScatterPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
                                            DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                            DimsExprs* outputs, int32_t nbOutputs,
                                            IExprBuilder& /*exprBuilder*/) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4 || inputs[kIndexPos].nbDims != 1 || inputs[3].nbDims != 3) {
    reportError(kName, "expects residual (N, C, H, W), y (K, C, H, W), index (K,), const (C, H, W)");
    return -1;
  }
  if (!chainRanksOk(kName, inputs, nbInputs, kIn)) return -1;
  outputs[0] = inputs[0];
  return 0;
}

bool FocalScatterPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                   int32_t nbInputs, int32_t nbOutputs) noexcept {
  if ((nbInputs != kIn && !hasChain(nbInputs, kIn)) || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  if (pos >= kIn && pos < nbInputs) return supportsChainInput(pos, inOut, kIn);
  return supportsLinear(pos, inOut, /*isIndex=*/pos == kIndexPos);
}

int32_t FocalScatterPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs,
                                          PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCountChain(kName, nbInputs, kIn, nbOutputs)) return -1;
  mNbInputs = nbInputs;
  bool const chain = hasChain(nbInputs, kIn);
  if (!chainShapesOk(kName, in[0].dims, chain ? &in[kIn].dims : nullptr, chain ? &in[kIn + 1].dims : nullptr,
                     mParams.chain_relu_mask, mParams.chain_upto)) {
    return -1;
  }
  nvinfer1::Dims const& r = in[0].dims;
  nvinfer1::Dims const& y = in[1].dims;
  nvinfer1::Dims const& k = in[3].dims;
  bool ok = y.d[0] == in[kIndexPos].dims.d[0] && y.d[0] <= r.d[0];
  for (int32_t i = 1; i < 4; ++i) ok = ok && y.d[i] == r.d[i] && k.d[i - 1] == r.d[i];
  if (!ok) {
    reportErrorf(kName, "inconsistent shapes: residual (%lld, %lld, %lld, %lld), y (%lld, ...), index (%lld,), "
                 "const (%lld, %lld, %lld)", static_cast<long long>(r.d[0]), static_cast<long long>(r.d[1]),
                 static_cast<long long>(r.d[2]), static_cast<long long>(r.d[3]), static_cast<long long>(y.d[0]),
                 static_cast<long long>(in[kIndexPos].dims.d[0]), static_cast<long long>(k.d[0]),
                 static_cast<long long>(k.d[1]), static_cast<long long>(k.d[2]));
    return -1;
  }
  return 0;
}

int32_t FocalScatterPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                    void const* const* inputs, void* const* outputs, void* workspace,
                                    cudaStream_t stream) noexcept {
  nvinfer1::Dims const& rd = inputDesc[0].dims;
  FocalScatterParams p{};
  p.residual = inputs[0];
  p.y = inputs[1];
  p.index = int64Index(kName, inputDesc[kIndexPos], inputs[kIndexPos], workspace, stream);
  if (p.index == nullptr) return -1;
  p.const_map = hasChain(mNbInputs, kIn) ? nullptr : inputs[3];  // with a chain: not read (see header)
  p.out = outputs[0];
  p.N = rd.d[0];
  p.C = rd.d[1];
  p.HW = volume(rd, 2, 4);
  p.K = inputDesc[kIndexPos].dims.d[0];
  p.relu = mParams.relu != 0;
  p.chain =
      chainParams(hasChain(mNbInputs, kIn), inputDesc, inputs, kIn, mParams.chain_relu_mask, mParams.chain_upto);
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, focal_scatter_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, focal_scatter_cuda<__half>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

size_t FocalScatterPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept {
  return nbInputs == kIn || hasChain(nbInputs, kIn) ? indexWorkspaceSize(inputs[kIndexPos]) : 0;
}

}  // namespace trt
}  // namespace afn
