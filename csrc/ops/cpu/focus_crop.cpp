// CPU implementation of afnet_edge::focus_crop, focus_crop_grad_x and focus_crop_grad_centres: the CPU twins in
// csrc/kernels/focus_crop_cpu.cpp.
#include <torch/library.h>

#include "../adafocus_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

at::Tensor focus_crop_cpu(const at::Tensor& x, const at::Tensor& centres, int64_t patch, c10::string_view mode) {
  return focus_crop_impl(x, centres, patch, std::string(mode), [](const afn::FocusCropParams& p, at::ScalarType t) {
    dispatch_cpu(t, [&](auto tag) { check_status(afn::focus_crop_cpu<typename decltype(tag)::type>(p), "focus_crop"); });
  });
}

at::Tensor focus_crop_grad_x_cpu(const at::Tensor& grad, const at::Tensor& centres, int64_t height, int64_t width,
                                 c10::string_view mode) {
  return focus_crop_grad_x_impl(
      grad, centres, height, width, std::string(mode), [](const afn::FocusCropGradXParams& p, at::ScalarType t) {
        dispatch_cpu(t, [&](auto tag) {
          check_status(afn::focus_crop_grad_x_cpu<typename decltype(tag)::type>(p), "focus_crop_grad_x");
        });
      });
}

at::Tensor focus_crop_grad_centres_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& centres,
                                       c10::string_view mode) {
  return focus_crop_grad_centres_impl(
      grad, x, centres, std::string(mode), [](const afn::FocusCropGradCentresParams& p, at::ScalarType t) {
        dispatch_cpu(t, [&](auto tag) {
          check_status(afn::focus_crop_grad_centres_cpu<typename decltype(tag)::type>(p), "focus_crop_grad_centres");
        });
      });
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("focus_crop", &afn_ops::focus_crop_cpu);
  m.impl("focus_crop_grad_x", &afn_ops::focus_crop_grad_x_cpu);
  m.impl("focus_crop_grad_centres", &afn_ops::focus_crop_grad_centres_cpu);
}
