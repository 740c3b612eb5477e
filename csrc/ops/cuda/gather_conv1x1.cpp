// CUDA implementation of afnet_edge::gather_conv1x1 (and .out): the tensor-core kernel csrc/kernels/gather_conv1x1.cu
// on the current stream, float16 / bfloat16 on sm_80+ only (the Python entry point falls back to the reference
// composition for float32 / float64 and older GPUs; called directly, those cases raise here).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../conv1x1_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

// The tensor-core kernels need sm_80+ (bfloat16 wmma); checked per call on the tensor's device.
inline void check_tensor_core_device(const at::Tensor& x, const char* op) {
  int major = 0;
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, x.get_device()), op);
  TORCH_CHECK(major >= 8, "afnet_edge::", op, " (CUDA): the tensor-core kernel needs compute capability 8.0 or newer, "
              "this device has ", major, ".x (afnet_edge.kernels.ext.", op, " falls back to the reference there)");
}

template <typename F>
void dispatch_tensor_core(at::ScalarType t, const char* op, F&& f) {
  if (t == at::kHalf) {
    f(Tag<__half>{});
  } else if (t == at::kBFloat16) {
    f(Tag<__nv_bfloat16>{});
  } else {
    TORCH_CHECK_TYPE(false, "afnet_edge::", op, " (CUDA) supports float16 and bfloat16 (tensor cores), got ", t,
                     " (afnet_edge.kernels.ext.", op, " falls back to the reference for it)");
  }
}

const auto launch = [](const afn::GatherConv1x1Params& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_tensor_core(t, "gather_conv1x1", [&](auto tag) {
    check_cuda(afn::gather_conv1x1_cuda<typename decltype(tag)::type>(p, stream), "gather_conv1x1");
  });
};

at::Tensor gather_conv1x1_cuda(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                               const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                               const at::Tensor& bias, bool relu, const OptT& chain_start, const OptT& chain_consts,
                               int64_t chain_relu_mask, int64_t chain_upto) {
  const c10::cuda::CUDAGuard guard(x.device());
  check_tensor_core_device(x, "gather_conv1x1");
  return gather_conv1x1_impl(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start,
                             chain_consts, chain_relu_mask, chain_upto, nullptr, launch);
}

void gather_conv1x1_out_cuda(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                             const at::Tensor& weight, int64_t groups, const at::Tensor& scale, const at::Tensor& bias,
                             bool relu, const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                             int64_t chain_upto, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(x.device());
  check_tensor_core_device(x, "gather_conv1x1");
  gather_conv1x1_impl(x, index, num_frames, shift, weight, groups, scale, bias, relu, chain_start, chain_consts,
                      chain_relu_mask, chain_upto, &out, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("gather_conv1x1", &afn_ops::gather_conv1x1_cuda);
  m.impl("gather_conv1x1.out", &afn_ops::gather_conv1x1_out_cuda);
}
