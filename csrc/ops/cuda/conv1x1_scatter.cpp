// CUDA implementation of afnet_edge::conv1x1_scatter (.out, in-place conv1x1_scatter_): the tensor-core kernel
// csrc/kernels/conv1x1_scatter.cu on the current stream; float16 / bfloat16 on sm_80+ only (see gather_conv1x1.cpp).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../conv1x1_impl.h"
#include "../dispatch.h"

namespace afn_ops {

namespace {

inline void check_device(const at::Tensor& x) {
  int major = 0;
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, x.get_device()), "conv1x1_scatter");
  TORCH_CHECK(major >= 8, "afnet_edge::conv1x1_scatter (CUDA): the tensor-core kernel needs compute capability 8.0 or "
              "newer, this device has ", major, ".x (afnet_edge.kernels.ext.conv1x1_scatter falls back to the "
              "reference there)");
}

const auto launch = [](const afn::Conv1x1ScatterParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  if (t == at::kHalf) {
    check_cuda(afn::conv1x1_scatter_cuda<__half>(p, stream), "conv1x1_scatter");
  } else if (t == at::kBFloat16) {
    check_cuda(afn::conv1x1_scatter_cuda<__nv_bfloat16>(p, stream), "conv1x1_scatter");
  } else {
    TORCH_CHECK_TYPE(false, "afnet_edge::conv1x1_scatter (CUDA) supports float16 and bfloat16 (tensor cores), got ",
                     t, " (afnet_edge.kernels.ext.conv1x1_scatter falls back to the reference for it)");
  }
};

at::Tensor conv1x1_scatter_cuda(const at::Tensor& h, const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                                const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& index, bool relu,
                                const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                                int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(residual.device());
  check_device(residual);
  return conv1x1_scatter_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                              chain_relu_mask, chain_upto, nullptr, launch);
}

void conv1x1_scatter_out_cuda(const at::Tensor& h, const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                              const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& index, bool relu,
                              const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                              int64_t chain_upto, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(residual.device());
  check_device(residual);
  conv1x1_scatter_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                       chain_relu_mask, chain_upto, &out, launch);
}

void conv1x1_scatter_inplace_cuda(const at::Tensor& h, const at::Tensor& weight, int64_t groups,
                                  const at::Tensor& scale, const at::Tensor& bias, const at::Tensor& residual,
                                  const at::Tensor& index, bool relu, const OptT& chain_start,
                                  const OptT& chain_consts, int64_t chain_relu_mask, int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(residual.device());
  check_device(residual);
  conv1x1_scatter_inplace_impl(h, weight, groups, scale, bias, residual, index, relu, chain_start, chain_consts,
                               chain_relu_mask, chain_upto, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("conv1x1_scatter", &afn_ops::conv1x1_scatter_cuda);
  m.impl("conv1x1_scatter.out", &afn_ops::conv1x1_scatter_out_cuda);
  m.impl("conv1x1_scatter_", &afn_ops::conv1x1_scatter_inplace_cuda);
}
