// TemporalAggregate plugin and what it shares with TemporalAggregatePair (namespace tam): see
// TemporalAggregatePlugin.h; the kernel is csrc/kernels/temporal_aggregate.h (pair mode: weight2 / out2).
#include "TemporalAggregatePlugin.h"

#include "../kernels/temporal_aggregate.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kOut = 1;
constexpr int32_t kIn = 2;  // x, weight

// Frame types the kernel is instantiated for (the weights are fp32 whatever the frames' type).
bool isFrameType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }
}  // namespace

namespace tam {

bool shapesOk(char const* who, char const* tName, int64_t T, nvinfer1::Dims const* in, int32_t nOut) noexcept {
  nvinfer1::Dims const& x = in[0];
  if (x.nbDims != 4) {
    reportError(who, "expects frames (N, C, H, W)");
    return false;
  }
  int64_t const n = x.d[0], c = x.d[1];
  if (n >= 0 && n % T != 0) {
    reportErrorf(who, "%lld rows are not a multiple of %s=%lld (clip-major rows)", static_cast<long long>(n), tName,
                 static_cast<long long>(T));
    return false;
  }
  int64_t k = -1;
  for (int32_t i = 1; i <= nOut; ++i) {
    nvinfer1::Dims const& w = in[i];
    bool const rank = w.nbDims == 2;
    bool const badK = rank && w.d[0] >= 0 && (w.d[0] % 2 == 0 || w.d[0] < 1 || w.d[0] > kMaxTaps);
    bool const badC = rank && w.d[1] >= 0 && c >= 0 && w.d[1] != c;
    bool const otherK = rank && w.d[0] >= 0 && k >= 0 && w.d[0] != k;
    if (!rank || badK || badC || otherK) {
      reportErrorf(who, "weight input %d must be (K, C) with K odd in [1, %d] (the same K for every weight) and C = "
                   "%lld channels of the frames, got rank %d (%lld, %lld)", i, kMaxTaps, static_cast<long long>(c),
                   w.nbDims, static_cast<long long>(w.nbDims > 0 ? w.d[0] : -1),
                   static_cast<long long>(w.nbDims > 1 ? w.d[1] : -1));
      return false;
    }
    if (w.d[0] >= 0) k = w.d[0];
  }
  return true;
}

int32_t outputDataTypes(char const* who, int32_t nOut, DataType* outputTypes, int32_t nbOutputs,
                        DataType const* inputTypes, int32_t nbInputs) noexcept {
  if (!checkIoCount(who, nbInputs, 1 + nOut, nbOutputs, nOut)) return -1;
  bool ok = isFrameType(inputTypes[0]);
  for (int32_t i = 1; i <= nOut; ++i) ok = ok && inputTypes[i] == DataType::kFLOAT;
  if (!ok) {
    reportError(who, "frames must be fp32, fp16 or bf16 and the weights fp32");
    return -1;
  }
  for (int32_t o = 0; o < nOut; ++o) outputTypes[o] = inputTypes[0];
  return 0;
}

int32_t outputShapes(char const* who, int32_t nOut, DimsExprs const* inputs, int32_t nbInputs, DimsExprs* outputs,
                     int32_t nbOutputs) noexcept {
  if (!checkIoCount(who, nbInputs, 1 + nOut, nbOutputs, nOut)) return -1;
  bool ok = inputs[0].nbDims == 4;
  for (int32_t i = 1; i <= nOut; ++i) ok = ok && inputs[i].nbDims == 2;
  if (!ok) {
    reportError(who, "frames must have rank 4 (N, C, H, W) and the weights rank 2 (K, C)");
    return -1;
  }
  for (int32_t o = 0; o < nOut; ++o) outputs[o] = inputs[0];
  return 0;
}

// Linear (NCHW) only; the frames and every output share one of fp32/fp16/bf16 (TensorRT asks positions in order, so
// the frames' type is fixed when an output is queried); the weights fp32 always (the kernel reads them as float).
bool formatOk(int32_t nOut, int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
              int32_t nbOutputs) noexcept {
  if (nbInputs != 1 + nOut || nbOutputs != nOut || pos < 0 || pos >= nbInputs + nbOutputs) return false;
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos >= 1 && pos < nbInputs) return d.type == DataType::kFLOAT;
  return isFrameType(d.type) && (pos == 0 || d.type == inOut[0].desc.type);
}

int32_t enqueue(char const* who, int32_t nOut, int64_t T, bool relu, PluginTensorDesc const* inputDesc,
                void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
  nvinfer1::Dims const& x = inputDesc[0].dims;
  TemporalAggregateParams p{};
  p.x = inputs[0];
  p.weight = static_cast<float const*>(inputs[1]);
  p.out = outputs[0];
  if (nOut == 2) {
    p.weight2 = static_cast<float const*>(inputs[2]);
    p.out2 = outputs[1];
  }
  p.N = x.d[0];
  p.C = x.d[1];
  p.HW = x.d[2] * x.d[3];
  p.T = T;
  p.K = inputDesc[1].dims.d[0];
  p.relu = relu;
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(who, temporal_aggregate_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(who, temporal_aggregate_cuda<__half>(p, stream));
    case DataType::kBF16: return checkLaunch(who, temporal_aggregate_cuda<__nv_bfloat16>(p, stream));
    default: reportError(who, "unsupported data type at enqueue"); return -1;
  }
}

}  // namespace tam

int32_t TemporalAggregatePlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                                 DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, kOut)) return -1;
  nvinfer1::Dims dims[kIn];
  for (int32_t i = 0; i < kIn; ++i) dims[i] = in[i].desc.dims;
  return tam::shapesOk(kName, "num_frames", mParams.num_frames, dims, kOut) ? 0 : -1;  // -1 dims: again in onShapeChange
}

int32_t TemporalAggregatePlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                    int32_t nbInputs) const noexcept {
  return tam::outputDataTypes(kName, kOut, outputTypes, nbOutputs, inputTypes, nbInputs);
}

int32_t TemporalAggregatePlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                                 int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                                 IExprBuilder& /*exprBuilder*/) noexcept {
  return tam::outputShapes(kName, kOut, inputs, nbInputs, outputs, nbOutputs);
}

bool TemporalAggregatePlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                        int32_t nbOutputs) noexcept {
  return tam::formatOk(kOut, pos, inOut, nbInputs, nbOutputs);
}

int32_t TemporalAggregatePlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                               int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, kOut)) return -1;
  mNbInputs = nbInputs;
  nvinfer1::Dims dims[kIn];
  for (int32_t i = 0; i < kIn; ++i) dims[i] = in[i].dims;
  return tam::shapesOk(kName, "num_frames", mParams.num_frames, dims, kOut) ? 0 : -1;
}

int32_t TemporalAggregatePlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                         void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                         cudaStream_t stream) noexcept {
  return tam::enqueue(kName, kOut, mParams.num_frames, mParams.relu != 0, inputDesc, inputs, outputs, stream);
}

}  // namespace trt
}  // namespace afn
