// CPU implementation of afnet_edge::temporal_aggregate and afnet_edge::temporal_aggregate_pair: the CPU twin in
// csrc/kernels/temporal_aggregate_cpu.cpp (the pair op is its two-output mode).
#include <torch/library.h>

#include "../blvnet_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::TemporalAggregateParams& p, at::ScalarType t) {
  dispatch_cpu(t, [&](auto tag) {
    check_status(afn::temporal_aggregate_cpu<typename decltype(tag)::type>(p),
                 p.out2 != nullptr ? "temporal_aggregate_pair" : "temporal_aggregate");
  });
};

at::Tensor temporal_aggregate_cpu(const at::Tensor& x, const at::Tensor& weight, int64_t num_frames, bool relu) {
  return temporal_aggregate_impl(x, weight, num_frames, relu, launch);
}

std::tuple<at::Tensor, at::Tensor> temporal_aggregate_pair_cpu(const at::Tensor& y, const at::Tensor& w_big,
                                                               const at::Tensor& w_little, int64_t num_pairs,
                                                               bool relu) {
  return temporal_aggregate_pair_impl(y, w_big, w_little, num_pairs, relu, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("temporal_aggregate", &afn_ops::temporal_aggregate_cpu);
  m.impl("temporal_aggregate_pair", &afn_ops::temporal_aggregate_pair_cpu);
}
