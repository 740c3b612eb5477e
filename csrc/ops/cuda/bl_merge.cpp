// CUDA implementation of afnet_edge::bl_merge: csrc/kernels/bl_merge.cu on the current stream (host code only).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../blvnet_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::BLMergeParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::bl_merge_cuda<typename decltype(tag)::type>(p, stream), "bl_merge");
  });
};

at::Tensor bl_merge_cuda(const at::Tensor& big, const at::Tensor& little, bool relu) {
  const c10::cuda::CUDAGuard guard(little.device());
  return bl_merge_impl(big, little, relu, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) { m.impl("bl_merge", &afn_ops::bl_merge_cuda); }
