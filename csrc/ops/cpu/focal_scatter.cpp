// CPU implementation of afnet_edge::focal_scatter (and its .out overload): the CPU twin in
// csrc/kernels/focal_scatter_cpu.cpp.
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Runs the CPU twin for the tensor's dtype.
const auto launch = [](const afn::FocalScatterParams& p, at::ScalarType t) {
  dispatch_cpu(
      t, [&](auto tag) { check_status(afn::focal_scatter_cpu<typename decltype(tag)::type>(p), "focal_scatter"); });
};

at::Tensor focal_scatter_cpu(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                             const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                             const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return focal_scatter_impl(residual, y, index, const_map, relu, chain, nullptr, launch);
}

void focal_scatter_out_cpu(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                           const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                           const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto,
                           at::Tensor& out) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_scatter_impl(residual, y, index, const_map, relu, chain, &out, launch);
}

void focal_scatter_inplace_cpu(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                               const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                               const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_scatter_inplace_impl(residual, y, index, const_map, relu, chain, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("focal_scatter", &afn_ops::focal_scatter_cpu);
  m.impl("focal_scatter.out", &afn_ops::focal_scatter_out_cpu);
  m.impl("focal_scatter_", &afn_ops::focal_scatter_inplace_cpu);
}
