// Device-independent bodies of the AdaFocus op focus_crop and its two backward ops (focus_crop_grad_x,
// focus_crop_grad_centres): checks, contiguity, output allocation, params; as ops_impl.h, the device files pass a
// `launch(params, dtype)` callable. Non-contiguous inputs are made contiguous; outputs are new contiguous tensors.
// Nothing is copied from the host: the outputs are allocated on the frames' device and the positions are read there.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "checks.h"
#include "focus_crop.h"

namespace afn_ops {

inline afn::CropMode crop_mode(int code) { return code == 1 ? afn::CropMode::kFloor : afn::CropMode::kBilinear; }

template <class Launch>
at::Tensor focus_crop_impl(const at::Tensor& x, const at::Tensor& centres, int64_t patch, const std::string& mode,
                           Launch&& launch) {
  const afn::CropMode m = crop_mode(check_focus_crop(x, centres, patch, mode));
  const at::Tensor xc = x.contiguous(), cc = centres.contiguous();
  at::Tensor out = at::empty({x.size(0), x.size(1), patch, patch},
                             xc.options().memory_format(at::MemoryFormat::Contiguous));
  const afn::FocusCropParams p{xc.const_data_ptr(), cc.const_data_ptr(), out.data_ptr(), x.size(0), x.size(1),
                               x.size(2),           x.size(3),          patch,          m};
  launch(p, x.scalar_type());
  return out;
}

template <class Launch>
at::Tensor focus_crop_grad_x_impl(const at::Tensor& grad, const at::Tensor& centres, int64_t height, int64_t width,
                                  const std::string& mode, Launch&& launch) {
  const afn::CropMode m = crop_mode(check_focus_crop_grad(grad, centres, height, width, mode));
  const at::Tensor gc = grad.contiguous(), cc = centres.contiguous();
  at::Tensor gx = at::empty({grad.size(0), grad.size(1), height, width},
                            gc.options().memory_format(at::MemoryFormat::Contiguous));
  const afn::FocusCropGradXParams p{gc.const_data_ptr(), cc.const_data_ptr(), gx.data_ptr(), grad.size(0), grad.size(1),
                                    height,              width,               grad.size(2),  m};
  launch(p, grad.scalar_type());
  return gx;
}

template <class Launch>
at::Tensor focus_crop_grad_centres_impl(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& centres,
                                        const std::string& mode, Launch&& launch) {
  const int code = check_focus_crop(x, centres, grad.dim() == 4 ? grad.size(-1) : 1, mode);
  check_focus_crop_grad(grad, centres, x.size(2), x.size(3), mode);
  check_same(x, "x", grad, "grad");
  TORCH_CHECK_VALUE(grad.size(1) == x.size(1), "grad must have x's channel count ", x.size(1), ", got ", grad.sizes());
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), cc = centres.contiguous();
  at::Tensor out = at::empty({x.size(0), 2}, cc.options().memory_format(at::MemoryFormat::Contiguous));
  const afn::FocusCropGradCentresParams p{gc.const_data_ptr(), xc.const_data_ptr(), cc.const_data_ptr(),
                                          out.data_ptr(),      x.size(0),           x.size(1),
                                          x.size(2),           x.size(3),           grad.size(2),
                                          crop_mode(code)};
  launch(p, x.scalar_type());
  return out;
}

}  // namespace afn_ops
