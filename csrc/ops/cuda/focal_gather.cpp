// CUDA implementation of afnet_edge::focal_gather (and its .out overload): csrc/kernels/focal_gather.cu on the current
// stream. Host code only (C++ compiler, AFN_WITH_CUDA_RUNTIME); c10's stream and guard headers are enough and avoid
// pulling cuBLAS & co. into the build (c10::cuda::getCurrentCUDAStream is what at::cuda::getCurrentCUDAStream returns).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Launches the CUDA kernel for the tensor's dtype on the current stream of the current device (set by the
// caller's CUDAGuard) and checks the launch.
const auto launch = [](const afn::FocalGatherParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::focal_gather_cuda<typename decltype(tag)::type>(p, stream), "focal_gather");
  });
};

at::Tensor focal_gather_cuda(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                             const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                             int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(x.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return focal_gather_impl(x, index, num_frames, shift, chain, nullptr, launch);
}

void focal_gather_out_cuda(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                           const OptTensor& chain_start, const OptTensor& chain_consts, int64_t chain_relu_mask,
                           int64_t chain_upto, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_gather_impl(x, index, num_frames, shift, chain, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("focal_gather", &afn_ops::focal_gather_cuda);
  m.impl("focal_gather.out", &afn_ops::focal_gather_out_cuda);
}
