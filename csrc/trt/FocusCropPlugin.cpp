// FocusCrop plugin: see FocusCropPlugin.h; the kernel and its index map are in csrc/kernels/focus_crop.h.
#include "FocusCropPlugin.h"

#include "../kernels/focus_crop.h"

namespace afn {
namespace trt {

namespace {
constexpr int32_t kIn = 2;  // x, centres

// Frame types the kernel is instantiated for (the positions are fp32 whatever the frames' type).
bool isFrameType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }
}  // namespace

bool FocusCropPlugin::shapesOk(nvinfer1::Dims const& x, nvinfer1::Dims const& c) const noexcept {
  if (x.nbDims != 4 || c.nbDims != 2) {
    reportError(kName, "expects x (N, C, H, W) and centres (N, 2)");
    return false;
  }
  int64_t const n = x.d[0], h = x.d[2], w = x.d[3], P = mParams.patch_size;
  if ((c.d[0] >= 0 && n >= 0 && c.d[0] != n) || (c.d[1] >= 0 && c.d[1] != 2)) {
    reportErrorf(kName, "centres must be (N, 2) with N = %lld frames of x, got (%lld, %lld)",
                 static_cast<long long>(n), static_cast<long long>(c.d[0]), static_cast<long long>(c.d[1]));
    return false;
  }
  if ((h >= 0 && h < P) || (w >= 0 && w < P)) {
    reportErrorf(kName, "patch_size=%lld does not fit in the %lld×%lld frames (1 <= P <= min(H, W))",
                 static_cast<long long>(P), static_cast<long long>(h), static_cast<long long>(w));
    return false;
  }
  return true;
}

int32_t FocusCropPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                         DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  return shapesOk(in[0].desc.dims, in[1].desc.dims) ? 0 : -1;  // -1 dims (dynamic) checked again in onShapeChange
}

int32_t FocusCropPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                            int32_t nbInputs) const noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  if (!isFrameType(inputTypes[0]) || inputTypes[1] != DataType::kFLOAT) {
    reportError(kName, "x must be fp32, fp16 or bf16 and centres fp32");
    return -1;
  }
  outputTypes[0] = inputTypes[0];
  return 0;
}

int32_t FocusCropPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                         int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                         IExprBuilder& exprBuilder) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  if (inputs[0].nbDims != 4 || inputs[1].nbDims != 2) {
    reportError(kName, "x must have rank 4 (N, C, H, W) and centres rank 2 (N, 2)");
    return -1;
  }
  nvinfer1::IDimensionExpr const* p = exprBuilder.constant(mParams.patch_size);
  if (p == nullptr) {
    reportError(kName, "could not create the constant patch size expression");
    return -1;
  }
  outputs[0].nbDims = 4;
  outputs[0].d[0] = inputs[0].d[0];
  outputs[0].d[1] = inputs[0].d[1];
  outputs[0].d[2] = p;
  outputs[0].d[3] = p;
  return 0;
}

// Linear (NCHW) only; x and the output share one of fp32/fp16/bf16 (TensorRT asks positions in order, so x's type is
// fixed when the output is queried); centres fp32 always (an fp16 grid coordinate is ≈ 0.05 px coarse at 224, §6.3).
bool FocusCropPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                int32_t nbOutputs) noexcept {
  if (nbInputs != kIn || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos == 1) return d.type == DataType::kFLOAT;
  return isFrameType(d.type) && (pos == 0 || d.type == inOut[0].desc.type);
}

int32_t FocusCropPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                       int32_t nbOutputs) noexcept {
  if (!checkIoCount(kName, nbInputs, kIn, nbOutputs, 1)) return -1;
  mNbInputs = nbInputs;
  return shapesOk(in[0].dims, in[1].dims) ? 0 : -1;
}

int32_t FocusCropPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                 void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                 cudaStream_t stream) noexcept {
  nvinfer1::Dims const& x = inputDesc[0].dims;
  FocusCropParams p{};
  p.x = inputs[0];
  p.centres = inputs[1];
  p.out = outputs[0];
  p.N = x.d[0];
  p.C = x.d[1];
  p.H = x.d[2];
  p.W = x.d[3];
  p.P = mParams.patch_size;
  p.mode = mParams.mode == 1 ? CropMode::kFloor : CropMode::kBilinear;
  switch (inputDesc[0].type) {
    case DataType::kFLOAT: return checkLaunch(kName, focus_crop_cuda<float>(p, stream));
    case DataType::kHALF: return checkLaunch(kName, focus_crop_cuda<__half>(p, stream));
    case DataType::kBF16: return checkLaunch(kName, focus_crop_cuda<__nv_bfloat16>(p, stream));
    default: reportError(kName, "unsupported data type at enqueue"); return -1;
  }
}

}  // namespace trt
}  // namespace afn
