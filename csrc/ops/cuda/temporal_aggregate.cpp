// CUDA implementation of afnet_edge::temporal_aggregate and afnet_edge::temporal_aggregate_pair:
// csrc/kernels/temporal_aggregate.cu on the current stream (host code only, as the other ops' CUDA files).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../blvnet_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::TemporalAggregateParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::temporal_aggregate_cuda<typename decltype(tag)::type>(p, stream),
               p.out2 != nullptr ? "temporal_aggregate_pair" : "temporal_aggregate");
  });
};

at::Tensor temporal_aggregate_cuda(const at::Tensor& x, const at::Tensor& weight, int64_t num_frames, bool relu) {
  const c10::cuda::CUDAGuard guard(x.device());
  return temporal_aggregate_impl(x, weight, num_frames, relu, launch);
}

std::tuple<at::Tensor, at::Tensor> temporal_aggregate_pair_cuda(const at::Tensor& y, const at::Tensor& w_big,
                                                                const at::Tensor& w_little, int64_t num_pairs,
                                                                bool relu) {
  const c10::cuda::CUDAGuard guard(y.device());
  return temporal_aggregate_pair_impl(y, w_big, w_little, num_pairs, relu, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("temporal_aggregate", &afn_ops::temporal_aggregate_cuda);
  m.impl("temporal_aggregate_pair", &afn_ops::temporal_aggregate_pair_cuda);
}
