// CUDA implementation of afnet_edge::select_frames (and its .out overload): csrc/kernels/select_frames.cu on the
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
const auto launch = [](const afn::SelectFramesParams& p, at::ScalarType t) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_cuda(t, [&](auto tag) {
    check_cuda(afn::select_frames_cuda<typename decltype(tag)::type>(p, stream), "select_frames");
  });
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_frames_cuda(const at::Tensor& logits, c10::string_view mode,
                                                                  int64_t k) {
  const c10::cuda::CUDAGuard guard(logits.device());
  return select_frames_impl(logits, std::string(mode), k, SelectOut{nullptr, nullptr, nullptr}, launch);
}

void select_frames_out_cuda(const at::Tensor& logits, c10::string_view mode, int64_t k, at::Tensor& index,
                            at::Tensor& counts, at::Tensor& mask) {
  const c10::cuda::CUDAGuard guard(logits.device());
  select_frames_impl(logits, std::string(mode), k, SelectOut{&index, &counts, &mask}, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("select_frames", &afn_ops::select_frames_cuda);
  m.impl("select_frames.out", &afn_ops::select_frames_out_cuda);
}
