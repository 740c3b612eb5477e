// CPU implementation of afnet_edge::ample_fuse_blend (and its .out overload): the CPU twin in
// csrc/kernels/ample_fuse_blend_cpu.cpp.
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Runs the CPU twin for the tensor's dtype.
const auto launch = [](const afn::AmpleFuseBlendParams& p, at::ScalarType t) {
  dispatch_cpu(t, [&](auto tag) {
    check_status(afn::ample_fuse_blend_cpu<typename decltype(tag)::type>(p), "ample_fuse_blend");
  });
};

at::Tensor ample_fuse_blend_cpu(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a, bool relu,
                                const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                                int64_t chain_upto) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return ample_fuse_blend_impl(xl, xb, a, relu, chain, nullptr, launch);
}

void ample_fuse_blend_out_cpu(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a, bool relu,
                              const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                              int64_t chain_upto, at::Tensor& out) {
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  ample_fuse_blend_impl(xl, xb, a, relu, chain, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("ample_fuse_blend", &afn_ops::ample_fuse_blend_cpu);
  m.impl("ample_fuse_blend.out", &afn_ops::ample_fuse_blend_out_cpu);
}
