// CUDA implementation of afnet_edge::focal_scatter (and its .out overload): csrc/kernels/focal_scatter.cu on the
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
const auto launch = [](const afn::FocalScatterParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::focal_scatter_cuda<typename decltype(tag)::type>(p, stream), "focal_scatter");
  });
};

at::Tensor focal_scatter_cuda(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                              const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                              const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(residual.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  return focal_scatter_impl(residual, y, index, const_map, relu, chain, nullptr, launch);
}

void focal_scatter_out_cuda(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                            const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                            const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto,
                            at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(residual.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_scatter_impl(residual, y, index, const_map, relu, chain, &out, launch);
}

void focal_scatter_inplace_cuda(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                                const OptTensor& const_map, bool relu, const OptTensor& chain_start,
                                const OptTensor& chain_consts, int64_t chain_relu_mask, int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(residual.device());
  const ChainArgs chain{chain_start, chain_consts, chain_relu_mask, chain_upto};
  focal_scatter_inplace_impl(residual, y, index, const_map, relu, chain, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("focal_scatter", &afn_ops::focal_scatter_cuda);
  m.impl("focal_scatter.out", &afn_ops::focal_scatter_out_cuda);
  m.impl("focal_scatter_", &afn_ops::focal_scatter_inplace_cuda);
}
