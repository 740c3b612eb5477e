// bLVNet-TAM's Temporal Aggregation Module as TensorRT plugins (csrc/kernels/temporal_aggregate.h; spec blvnet-tam.md
// §4.1, §4.3, §8.2): one read of the frames and one write per output, ReLU fused, zero padding in time at each clip's
// ends, fp32 tap weights whatever the frames' type.
//
// TemporalAggregatePair (the stage TAMs on pair features, §4.3: both branch inputs from one read):
//   inputs  y (N, C, H, W) fp32|fp16|bf16 (N = B·P pair rows, clip-major), w_big (K, C) fp32, w_little (K, C) fp32 —
//           the folded weights over pair offsets −K/2..K/2 (fold_pair_weights)
//   outputs big_in (N, C, H, W), little_in (N, C, H, W), same type as y: act(Σ_d w[d, c] · y[n + d, c]) within row
//           n's clip, with w_big and w_little respectively
//   fields  num_pairs (P, N % P == 0), relu (0/1)
// Checks and launch shared with TemporalAggregate (namespace tam, TemporalAggregatePlugin.h).
#pragma once

#include "TemporalAggregatePlugin.h"

namespace afn {
namespace trt {

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct TemporalAggregatePairSpec {
  static constexpr char const* kName = "TemporalAggregatePair";
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t num_pairs;
    int32_t relu;
  };
  static constexpr std::array<IntField<Params>, 2> kFields{{
      {"num_pairs", &Params::num_pairs, 1, 1 << 20},
      {"relu", &Params::relu, 0, 1},
  }};
};

class TemporalAggregatePairPlugin final : public PluginBase<TemporalAggregatePairPlugin, TemporalAggregatePairSpec> {
 public:
  explicit TemporalAggregatePairPlugin(Params const& params) noexcept : PluginBase(params) {}

  int32_t getNbOutputs() const noexcept override { return 2; }  // big_in, little_in

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
};

using TemporalAggregatePairPluginCreator = PluginCreator<TemporalAggregatePairPlugin>;

}  // namespace trt
}  // namespace afn
