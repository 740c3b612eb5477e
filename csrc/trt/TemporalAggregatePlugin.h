// bLVNet-TAM's Temporal Aggregation Module as TensorRT plugins (csrc/kernels/temporal_aggregate.h; spec blvnet-tam.md
// §4.1, §4.3, §8.2): one read of the frames and one write per output, ReLU fused, zero padding in time at each clip's
// ends, fp32 tap weights whatever the frames' type.
//
// TemporalAggregate (the stem and layer4 TAMs):
//   inputs  x (N, C, H, W) fp32|fp16|bf16 (N = B·T rows, clip-major), weight (K, C) fp32 — tap i at temporal offset
//           i − K/2, K odd, 1 <= K <= 63
//   output  out (N, C, H, W), same type as x: act(Σ_i weight[i, c] · x[n + i − K/2, c]) within row n's clip
//   fields  num_frames (T, N % T == 0), relu (0/1: act = ReLU / identity)
// TemporalAggregatePair (TemporalAggregatePairPlugin.h) shares the checks and the launch below (namespace tam).
// No lazy constant chain (issue 16's chains belong to AFNet's frame tensors): no chain fields or inputs.
#pragma once

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

// What TemporalAggregate (one weight input, one output) and TemporalAggregatePair (two of each) share; nOut = the
// number of outputs = the number of (K, C) weight inputs after the frames.
namespace tam {
constexpr int32_t kMaxTaps = 63;  // the kernel's K range (temporal_aggregate_args_ok)
// frames (N, C, H, W), weights (K, C): N % T == 0, K odd in [1, 63], the same K for every weight, C = the frames' C;
// dims < 0 (not known at build time) skipped. tName names T's field in the error.
bool shapesOk(char const* who, char const* tName, int64_t T, nvinfer1::Dims const* in, int32_t nOut) noexcept;
int32_t outputDataTypes(char const* who, int32_t nOut, DataType* outputTypes, int32_t nbOutputs,
                        DataType const* inputTypes, int32_t nbInputs) noexcept;
int32_t outputShapes(char const* who, int32_t nOut, DimsExprs const* inputs, int32_t nbInputs, DimsExprs* outputs,
                     int32_t nbOutputs) noexcept;
bool formatOk(int32_t nOut, int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
              int32_t nbOutputs) noexcept;
int32_t enqueue(char const* who, int32_t nOut, int64_t T, bool relu, PluginTensorDesc const* inputDesc,
                void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept;
}  // namespace tam

// The field table: the only place this plugin names its fields (creator, createPlugin and serialisation use it).
struct TemporalAggregateSpec {
  static constexpr char const* kName = "TemporalAggregate";
  struct Params {  // fields in the order the ONNX exporter writes attributes (by name)
    int32_t num_frames;
    int32_t relu;
  };
  static constexpr std::array<IntField<Params>, 2> kFields{{
      {"num_frames", &Params::num_frames, 1, 1 << 20},
      {"relu", &Params::relu, 0, 1},
  }};
};

class TemporalAggregatePlugin final : public PluginBase<TemporalAggregatePlugin, TemporalAggregateSpec> {
 public:
  explicit TemporalAggregatePlugin(Params const& params) noexcept : PluginBase(params) {}

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

using TemporalAggregatePluginCreator = PluginCreator<TemporalAggregatePlugin>;

}  // namespace trt
}  // namespace afn
