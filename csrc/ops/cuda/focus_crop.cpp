// CUDA implementations of afnet_edge::focus_crop, focus_crop_grad_x and focus_crop_grad_centres:
// csrc/kernels/focus_crop.cu on the current stream, every launch checked. No host-to-device copy and no host sync:
// the positions are read on the device by the kernels, so a forward using the op captures in a CUDA graph.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../adafocus_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

at::Tensor focus_crop_cuda(const at::Tensor& x, const at::Tensor& centres, int64_t patch, c10::string_view mode) {
  const c10::cuda::CUDAGuard guard(x.device());
  return focus_crop_impl(x, centres, patch, std::string(mode), [](const afn::FocusCropParams& p, at::ScalarType t) {
    dispatch_cuda(t, [&](auto tag) {
      check_cuda(afn::focus_crop_cuda<typename decltype(tag)::type>(p, current_stream()), "focus_crop");
    });
  });
}

at::Tensor focus_crop_grad_x_cuda(const at::Tensor& grad, const at::Tensor& centres, int64_t height, int64_t width,
                                  c10::string_view mode) {
  const c10::cuda::CUDAGuard guard(grad.device());
  return focus_crop_grad_x_impl(
      grad, centres, height, width, std::string(mode), [](const afn::FocusCropGradXParams& p, at::ScalarType t) {
        dispatch_cuda(t, [&](auto tag) {
          check_cuda(afn::focus_crop_grad_x_cuda<typename decltype(tag)::type>(p, current_stream()),
                     "focus_crop_grad_x");
        });
      });
}

at::Tensor focus_crop_grad_centres_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& centres,
                                        c10::string_view mode) {
  const c10::cuda::CUDAGuard guard(x.device());
  return focus_crop_grad_centres_impl(
      grad, x, centres, std::string(mode), [](const afn::FocusCropGradCentresParams& p, at::ScalarType t) {
        dispatch_cuda(t, [&](auto tag) {
          check_cuda(afn::focus_crop_grad_centres_cuda<typename decltype(tag)::type>(p, current_stream()),
                     "focus_crop_grad_centres");
        });
      });
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("focus_crop", &afn_ops::focus_crop_cuda);
  m.impl("focus_crop_grad_x", &afn_ops::focus_crop_grad_x_cuda);
  m.impl("focus_crop_grad_centres", &afn_ops::focus_crop_grad_centres_cuda);
}
