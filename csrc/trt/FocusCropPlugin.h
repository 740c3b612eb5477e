// FocusCrop: AdaFocus' batched patch crop at data-dependent positions (csrc/kernels/focus_crop.h; spec adafocus.md
// §2.3, §6.3): one P × P window per frame at a per-frame position, sub-pixel bilinear (V2) or integer (V1), with no
// sampling grid materialised and the positions kept in fp32 whatever the frames' type.
//   inputs  x (N, C, H, W) fp32|fp16|bf16, centres (N, 2) fp32 — (row, col) actions in [0, 1] (clamped; NaN -> 0);
//           the window's top-left corner is (a_y·(H − P), a_x·(W − P)) pixels, computed in fp32
//   output  patches (N, C, P, P), same type as x
//   fields  mode (0 bilinear, 1 floor: CropMode of the kernel), patch_size (P, 1 <= P <= min(H, W))
// No lazy constant chain (issue 16's chains belong to AFNet's frame tensors): no chain fields or inputs.
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct FocusCropSpec {
  static constexpr char const* kName = "FocusCrop";
  static constexpr int32_t kMaxPatch = 1 << 16;
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t mode;
    int32_t patch_size;
  };
  static constexpr std::array<IntField<Params>, 2> kFields{{
      {"mode", &Params::mode, 0, 1},
      {"patch_size", &Params::patch_size, 1, kMaxPatch},
  }};
};

class FocusCropPlugin final : public PluginBase<FocusCropPlugin, FocusCropSpec> {
 public:
  explicit FocusCropPlugin(Params const& params) noexcept : PluginBase(params) {}

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

 private:
  // Frames x (N, C, H, W) and centres (N, 2) against the patch size; dims < 0 (not known at build time) skipped.
  bool shapesOk(nvinfer1::Dims const& x, nvinfer1::Dims const& centres) const noexcept;
};

using FocusCropPluginCreator = PluginCreator<FocusCropPlugin>;

}  // namespace trt
}  // namespace afn
