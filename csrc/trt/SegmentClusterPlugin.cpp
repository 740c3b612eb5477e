// SegmentCluster plugin: see SegmentClusterPlugin.h; the kernels are csrc/kernels/fullvideo_cluster.h.
#include "SegmentClusterPlugin.h"

#include "../kernels/fullvideo_cluster.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kOut = 2;  // means, offsets

bool isFrameType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }
bool ioCountOk(int32_t nbInputs, int32_t nbOutputs) { return (nbInputs == 1 || nbInputs == 2) && nbOutputs == kOut; }
bool reportIoCount(int32_t nbInputs, int32_t nbOutputs) {
  if (ioCountOk(nbInputs, nbOutputs)) return true;
  reportErrorf(SegmentClusterSpec::kName, "expects inputs (a[, frame_offsets]) and outputs (means, offsets), got %d "
               "inputs and %d outputs", nbInputs, nbOutputs);
  return false;
}

constexpr size_t kAlign = 256;
size_t align(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Workspace layout (SegmentClusterPlugin.h) for N frames of D elements, B videos; `widen`: int32 frame_offsets.
struct Layout {
  size_t bits, h, m, fo, total;
};
Layout layout(int64_t N, int64_t D, int64_t B, bool widen) {
  Layout l{};
  int64_t const n = N > 0 ? N : 0, d = D > 0 ? D : 0, b = B > 0 ? B : 0;
  l.bits = 0;
  l.h = l.bits + align(static_cast<size_t>(n * ((d + 31) / 32)) * sizeof(int32_t));
  l.m = l.h + align(static_cast<size_t>(n > 2 ? n - 1 : 1) * sizeof(int32_t));
  l.fo = l.m + align(static_cast<size_t>(b > 0 ? b : 1) * sizeof(int64_t));
  l.total = l.fo + (widen ? static_cast<size_t>(b + 1) * sizeof(int64_t) : 0);
  return l;
}
}  // namespace

bool SegmentClusterPlugin::shapesOk(nvinfer1::Dims const& a, nvinfer1::Dims const* fo, bool runtime) const noexcept {
  if (a.nbDims < 2) {
    reportErrorf(kName, "a must be the activations (N, D...) with rank >= 2 (one frame per row), got rank %d",
                 a.nbDims);
    return false;
  }
  if (runtime && a.d[0] < 1) {
    reportErrorf(kName, "a has %lld frames; the clustering needs at least one", static_cast<long long>(a.d[0]));
    return false;
  }
  if (fo != nullptr) {
    if (fo->nbDims != 1 || (fo->d[0] >= 0 && fo->d[0] < 2)) {
      reportErrorf(kName, "frame_offsets must be (B+1,) with B >= 1 videos, got rank %d (%lld)", fo->nbDims,
                   static_cast<long long>(fo->nbDims > 0 ? fo->d[0] : -1));
      return false;
    }
    if (runtime && a.d[0] < fo->d[0] - 1) {
      reportErrorf(kName, "a has %lld frames for %lld videos in frame_offsets: every video needs one",
                   static_cast<long long>(a.d[0]), static_cast<long long>(fo->d[0] - 1));
      return false;
    }
  }
  return true;
}

int32_t SegmentClusterPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                              DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!reportIoCount(nbInputs, nbOutputs)) return -1;
  return shapesOk(in[0].desc.dims, nbInputs == 2 ? &in[1].desc.dims : nullptr, false) ? 0 : -1;
}

int32_t SegmentClusterPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                 int32_t nbInputs) const noexcept {
  if (!reportIoCount(nbInputs, nbOutputs)) return -1;
  if (!isFrameType(inputTypes[0]) || (nbInputs == 2 && !isIndexType(inputTypes[1]))) {
    reportError(kName, "a must be fp32, fp16 or bf16 and frame_offsets int64 (or int32)");
    return -1;
  }
  outputTypes[0] = inputTypes[0];
  outputTypes[1] = DataType::kINT64;
  return 0;
}

int32_t SegmentClusterPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
                                              DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                              DimsExprs* outputs, int32_t nbOutputs,
                                              IExprBuilder& exprBuilder) noexcept {
  if (!reportIoCount(nbInputs, nbOutputs)) return -1;
  if (inputs[0].nbDims < 2 || (nbInputs == 2 && inputs[1].nbDims != 1)) {
    reportError(kName, "a must have rank >= 2 (N, D...) and frame_offsets rank 1 (B+1,)");
    return -1;
  }
  nvinfer1::IDimensionExpr const* k = exprBuilder.constant(mParams.clusters);
  nvinfer1::IDimensionExpr const* b = nbInputs == 2 ? exprBuilder.operation(nvinfer1::DimensionOperation::kSUB, *inputs[1].d[0],
                                                                  *exprBuilder.constant(1))
                                          : exprBuilder.constant(1);
  if (k == nullptr || b == nullptr) return -1;
  outputs[0] = inputs[0];
  outputs[0].d[0] = exprBuilder.operation(nvinfer1::DimensionOperation::kPROD, *b, *k);
  outputs[1].nbDims = 2;
  outputs[1].d[0] = b;
  outputs[1].d[1] = exprBuilder.constant(static_cast<int64_t>(mParams.clusters) + 1);
  return outputs[0].d[0] != nullptr && outputs[1].d[1] != nullptr ? 0 : -1;
}

// Linear only; a fp32/fp16/bf16 and means of a's type (TensorRT asks positions in order, so a's type is fixed when
// the output is queried); frame_offsets int64 or int32; offsets int64.
bool SegmentClusterPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                     int32_t nbInputs, int32_t nbOutputs) noexcept {
  if (!ioCountOk(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) return false;
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos == 0) return isFrameType(d.type);
  if (pos < nbInputs) return isIndexType(d.type);
  if (pos == nbInputs) return d.type == inOut[0].desc.type;
  return d.type == DataType::kINT64;
}

size_t SegmentClusterPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                              DynamicPluginTensorDesc const* /*outputs*/,
                                              int32_t nbOutputs) const noexcept {
  if (!ioCountOk(nbInputs, nbOutputs)) return 0;
  nvinfer1::Dims const& a = inputs[0].max;
  int64_t const B = nbInputs == 2 ? inputs[1].max.d[0] - 1 : 1;
  bool const widen = nbInputs == 2 && inputs[1].desc.type == DataType::kINT32;
  return layout(a.d[0], volume(a, 1, a.nbDims), B, widen).total;
}

int32_t SegmentClusterPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs,
                                            PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!reportIoCount(nbInputs, nbOutputs)) return -1;
  mNbInputs = nbInputs;
  return shapesOk(in[0].dims, nbInputs == 2 ? &in[1].dims : nullptr, true) ? 0 : -1;
}

int32_t SegmentClusterPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                      void const* const* inputs, void* const* outputs, void* workspace,
                                      cudaStream_t stream) noexcept {
  nvinfer1::Dims const& ad = inputDesc[0].dims;
  bool const ragged = mNbInputs == 2;
  int64_t const N = ad.d[0], D = volume(ad, 1, ad.nbDims), K = mParams.clusters;
  int64_t const B = ragged ? inputDesc[1].dims.d[0] - 1 : 1;
  if (N < 1 || B < 1) {
    reportError(kName, "enqueue without frames or videos");
    return -1;
  }
  bool const widen = ragged && inputDesc[1].type == DataType::kINT32;
  Layout const l = layout(N, D, B, widen);
  char* ws = static_cast<char*>(workspace);
  int32_t* bits = reinterpret_cast<int32_t*>(ws + l.bits);
  int32_t* h = reinterpret_cast<int32_t*>(ws + l.h);
  int64_t* m = reinterpret_cast<int64_t*>(ws + l.m);
  int64_t const* fo = nullptr;
  if (ragged) {
    fo = int64Index(kName, inputDesc[1], inputs[1], ws + l.fo, stream);
    if (fo == nullptr) return -1;
  }
  BinarizePackParams bp{inputs[0], bits, N, D};
  AdjacentHammingParams hp{bits, h, N, (D + 31) / 32};
  SegmentBoundariesParams sp{h, fo, static_cast<int64_t*>(outputs[1]), m, N, B, K,
                             static_cast<BoundaryRule>(mParams.rule)};
  SegmentMeanParams mp{inputs[0], static_cast<int64_t const*>(outputs[1]), m, fo, outputs[0], N, B, K, D};
  cudaError_t err = cudaSuccess;
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: err = binarize_pack_cuda<float>(bp, stream); break;
    case DataType::kHALF: err = binarize_pack_cuda<__half>(bp, stream); break;
    case DataType::kBF16: err = binarize_pack_cuda<__nv_bfloat16>(bp, stream); break;
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
  if (checkLaunch(kName, err) != 0) return -1;
  if (checkLaunch(kName, adjacent_hamming_cuda(hp, stream)) != 0) return -1;
  if (checkLaunch(kName, segment_boundaries_cuda(sp, stream)) != 0) return -1;
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, segment_mean_cuda<float>(mp, stream));
    case DataType::kHALF: return checkLaunch(kName, segment_mean_cuda<__half>(mp, stream));
    default: return checkLaunch(kName, segment_mean_cuda<__nv_bfloat16>(mp, stream));
  }
}

}  // namespace trt
}  // namespace afn
