// CPU implementation of afnet_edge::conv1x1_scatter (.out, and the in-place conv1x1_scatter_): the tiled CPU twin in
// csrc/kernels/conv1x1_scatter_cpu.cpp (all four float dtypes).
#include <torch/library.h>

#include "../conv1x1_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::Conv1x1ScatterParams& p, at::ScalarType t) {
  dispatch_cpu(t, [&](auto tag) {
    check_status(afn::conv1x1_scatter_cpu<typename decltype(tag)::type>(p), "conv1x1_scatter");
  });
};

at::Tensor conv1x1_scatter_cpu(const at::Tensor& h, const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                               const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& index, bool relu,
                               const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                               int64_t chain_upto) {
  return conv1x1_scatter_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                              chain_relu_mask, chain_upto, nullptr, launch);
}

void conv1x1_scatter_out_cpu(const at::Tensor& h, const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                             const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& index, bool relu,
                             const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                             int64_t chain_upto, at::Tensor& out) {
  conv1x1_scatter_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                       chain_relu_mask, chain_upto, &out, launch);
}

void conv1x1_scatter_inplace_cpu(const at::Tensor& h, const at::Tensor& weight, int64_t groups,
                                 const at::Tensor& scale, const at::Tensor& bias, const at::Tensor& residual,
                                 const at::Tensor& index, bool relu, const OptT& chain_start, const OptT& chain_consts,
                                 int64_t chain_relu_mask, int64_t chain_upto) {
  conv1x1_scatter_inplace_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                               chain_relu_mask, chain_upto, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("conv1x1_scatter", &afn_ops::conv1x1_scatter_cpu);
  m.impl("conv1x1_scatter.out", &afn_ops::conv1x1_scatter_out_cpu);
  m.impl("conv1x1_scatter_", &afn_ops::conv1x1_scatter_inplace_cpu);
}
