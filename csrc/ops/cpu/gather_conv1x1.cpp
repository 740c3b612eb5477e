// CPU implementation of afnet_edge::gather_conv1x1 (and .out): the tiled CPU twin in
// csrc/kernels/gather_conv1x1_cpu.cpp (all four float dtypes).
#include <torch/library.h>

#include "../conv1x1_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::GatherConv1x1Params& p, at::ScalarType t) {
  dispatch_cpu(t, [&](auto tag) {
    check_status(afn::gather_conv1x1_cpu<typename decltype(tag)::type>(p), "gather_conv1x1");
  });
};

at::Tensor gather_conv1x1_cpu(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                              const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                              const at::Tensor& bias, bool relu, const OptT& chain_start, const OptT& chain_consts,
                              int64_t chain_relu_mask, int64_t chain_upto) {
  return gather_conv1x1_impl(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start,
                             chain_consts, chain_relu_mask, chain_upto, nullptr, launch);
}

void gather_conv1x1_out_cpu(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                            const at::Tensor& weight, int64_t groups, const at::Tensor& scale, const at::Tensor& bias,
                            bool relu, const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                            int64_t chain_upto, at::Tensor& out) {
  gather_conv1x1_impl(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start, chain_consts,
                      chain_relu_mask, chain_upto, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("gather_conv1x1", &afn_ops::gather_conv1x1_cpu);
  m.impl("gather_conv1x1.out", &afn_ops::gather_conv1x1_out_cpu);
}
