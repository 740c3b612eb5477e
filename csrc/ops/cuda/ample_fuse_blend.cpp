// CUDA implementation of afnet_edge::ample_fuse_blend (and its .out overload): csrc/kernels/ample_fuse_blend.cu on the
// current stream. Host code only (C++ compiler, AFN_WITH_CUDA_RUNTIME); c10's stream and guard headers are enough and
// avoid pulling cuBLAS & co. into the build (c10::cuda::getCurrentCUDAStream is what at::cuda::getCurrentCUDAStream
// returns).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Launches the CUDA kernel for the tensor's dtype on the current stream of the current device (set by the
// caller's CUDAGuard) and checks the launch.
const auto launch = [](const afn::AmpleFuseBlendParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::ample_fuse_blend_cuda<typename decltype(tag)::type>(p, stream), "ample_fuse_blend");
  });
};

at::Tensor ample_fuse_blend_cuda(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a, bool relu,
                                 const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                                 int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(xb.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return ample_fuse_blend_impl(xl, xb, a, relu, chain, nullptr, launch);
}

void ample_fuse_blend_out_cuda(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a, bool relu,
                               const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                               int64_t chain_upto, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(xb.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  ample_fuse_blend_impl(xl, xb, a, relu, chain, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("ample_fuse_blend", &afn_ops::ample_fuse_blend_cuda);
  m.impl("ample_fuse_blend.out", &afn_ops::ample_fuse_blend_out_cuda);
}
