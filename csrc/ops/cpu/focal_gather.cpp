// CPU implementation of afnet_edge::focal_gather (and its .out overload): the CPU twin in
// csrc/kernels/focal_gather_cpu.cpp.
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Runs the CPU twin for the tensor's dtype.
const auto launch = [](const afn::FocalGatherParams& p, at::ScalarType t) {
  dispatch_cpu(t,
               [&](auto tag) { check_status(afn::focal_gather_cpu<typename decltype(tag)::type>(p), "focal_gather"); });
};

at::Tensor focal_gather_cpu(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                            const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                            int64_t chain_upto) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return focal_gather_impl(x, index, num_frames, shift, chain, nullptr, launch);
}

void focal_gather_out_cpu(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                          const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                          int64_t chain_upto, at::Tensor& out) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_gather_impl(x, index, num_frames, shift, chain, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("focal_gather", &afn_ops::focal_gather_cpu);
  m.impl("focal_gather.out", &afn_ops::focal_gather_out_cpu);
}
