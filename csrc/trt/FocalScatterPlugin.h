// FocalScatter: the full frame set after a compact focal body, residual + constant fill + ReLU fused
// (csrc/kernels/focal_scatter.h): out[f] = φ(residual[f] + (f == index[k] ? y[k] : const)).
//   inputs  residual (N, C, H, W) fp32|fp16, y (K, C, H, W), index (K,) int64|int32 sorted ascending unique,
//           const (C, H, W) — the body's output for an all-zero input
//   output  out (N, C, H, W), same type as residual
//   fields  relu (0|1: φ = ReLU)
//   chain   optional trailing inputs chain_start (N,) int32, chain_consts (L, C, H, W) + fields chain_relu_mask,
//           chain_upto (afnPluginCommon.h): out[f] = φ(logical(residual)[f] + y[k]) for selected f, every other
//           row as stored (still pending); the const input is then not read (the exporter passes zeros)
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct FocalScatterSpec {
  static constexpr char const* kName = "FocalScatter";
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t chain_relu_mask;
    int32_t chain_upto;
    int32_t relu;
  };
  static constexpr std::array<IntField<Params>, 3> kFields{{
      {"chain_relu_mask", &Params::chain_relu_mask, 0, kChainMaxMask},
      {"chain_upto", &Params::chain_upto, 0, kChainMaxBlocks},
      {"relu", &Params::relu, 0, 1},
  }};
};

class FocalScatterPlugin final : public PluginBase<FocalScatterPlugin, FocalScatterSpec> {
 public:
  explicit FocalScatterPlugin(Params const& params) noexcept : PluginBase(params) {}

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
  size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          DynamicPluginTensorDesc const* outputs,
                          int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

using FocalScatterPluginCreator = PluginCreator<FocalScatterPlugin>;

}  // namespace trt
}  // namespace afn
