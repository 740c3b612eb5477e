// Argument checks shared by the CPU and CUDA implementations of the afnet_edge ops (the Python fake kernels mirror
// them). Shapes and values raise ValueError, dtypes TypeError. Index *values* (range, order) are checked in Python
// (validate=True); the kernels additionally never read out of bounds whatever the index values are.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace afn_ops {

inline bool supported_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}

inline void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(supported_float(t.scalar_type()), name, " must be float32, float16, bfloat16 or float64, got ",
                   t.scalar_type());
}

inline void check_same(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn) {
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), bn, " must have the dtype of ", an, " (", a.scalar_type(),
                   "), got ", b.scalar_type());
  TORCH_CHECK_VALUE(a.device() == b.device(), bn, " must be on the device of ", an, " (", a.device(), "), got ",
                    b.device());
}

inline void check_index(const at::Tensor& index, const at::Tensor& x) {
  TORCH_CHECK_TYPE(index.scalar_type() == at::kLong, "index must be int64, got ", index.scalar_type());
  TORCH_CHECK_VALUE(index.dim() == 1, "index must be 1-D (K,), got shape ", index.sizes());
  TORCH_CHECK_VALUE(index.device() == x.device(), "index must be on the device of x (", x.device(), "), got ",
                    index.device());
}

inline void check_focal_gather(const at::Tensor& x, const at::Tensor& index, int64_t num_frames) {
  TORCH_CHECK_VALUE(x.dim() == 4, "x must be (N, C, H, W), got shape ", x.sizes());
  check_float(x, "x");
  check_index(index, x);
  TORCH_CHECK_VALUE(num_frames >= 1, "num_frames must be >= 1, got ", num_frames);
  TORCH_CHECK_VALUE(x.size(0) % num_frames == 0, "the frame count N = ", x.size(0),
                    " must be a multiple of num_frames = ", num_frames);
  TORCH_CHECK_VALUE(index.size(0) == 0 || x.size(0) > 0, "index selects frames from an empty x");
}

// The optional lazy constant chain of a frame op (reference.LazyChain) over frame tensor `x` (N, C, H, W) named `xn`:
// chain_start int32 (N,) and chain_consts (L, C, H, W) with x's dtype, on x's device, given together; chain_upto in
// [0, L] (L <= 62); chain_relu_mask >= 0 (bits >= L are never read). Without a chain, relu_mask and upto must keep
// their defaults (0).
inline void check_chain(const std::optional<at::Tensor>& start, const std::optional<at::Tensor>& consts,
                        int64_t relu_mask, int64_t upto, const at::Tensor& x, const char* xn) {
  TORCH_CHECK_VALUE(start.has_value() == consts.has_value(),
                    "chain_start and chain_consts must be given together (a lazy chain) or both be None, got ",
                    start.has_value() ? "chain_start only" : "chain_consts only");
  if (!start.has_value()) {
    TORCH_CHECK_VALUE(relu_mask == 0 && upto == 0, "chain_relu_mask and chain_upto need a chain (chain_start, ",
                      "chain_consts); got chain_relu_mask=", relu_mask, ", chain_upto=", upto, " without one");
    return;
  }
  TORCH_CHECK_TYPE(start->scalar_type() == at::kInt, "chain_start must be int32, got ", start->scalar_type());
  TORCH_CHECK_VALUE(start->dim() == 1 && start->size(0) == x.size(0), "chain_start must be (N,) = (", x.size(0),
                    ",) (one entry per frame of ", xn, "), got shape ", start->sizes());
  TORCH_CHECK_VALUE(start->device() == x.device(), "chain_start must be on the device of ", xn, " (", x.device(),
                    "), got ", start->device());
  TORCH_CHECK_VALUE(consts->dim() == 4 && consts->sizes().slice(1) == x.sizes().slice(1),
                    "chain_consts must be (L, C, H, W) with (C, H, W) of ", xn, " ", x.sizes().slice(1), ", got shape ",
                    consts->sizes());
  check_same(x, xn, *consts, "chain_consts");
  const int64_t L = consts->size(0);
  TORCH_CHECK_VALUE(L <= 62, "chain_consts may hold at most 62 blocks, got L = ", L);
  TORCH_CHECK_VALUE(upto >= 0 && upto <= L, "chain_upto must be in [0, L=", L, "], got ", upto);
  TORCH_CHECK_VALUE(relu_mask >= 0, "chain_relu_mask must be >= 0 (bit i: block i applies ReLU), got ", relu_mask);
}

inline void check_focal_scatter(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                                const std::optional<at::Tensor>& const_map,
                                const std::optional<at::Tensor>& chain_start,
                                const std::optional<at::Tensor>& chain_consts, int64_t chain_relu_mask,
                                int64_t chain_upto) {
  TORCH_CHECK_VALUE(residual.dim() == 4, "residual must be (N, C, H, W), got shape ", residual.sizes());
  check_float(residual, "residual");
  TORCH_CHECK_VALUE(y.dim() == 4 && y.sizes().slice(1) == residual.sizes().slice(1),
                    "y must be (K, C, H, W) with (C, H, W) of residual ", residual.sizes().slice(1), ", got ",
                    y.sizes());
  check_same(residual, "residual", y, "y");
  check_index(index, residual);
  TORCH_CHECK_VALUE(index.size(0) == y.size(0), "index must have one entry per frame of y (", y.size(0), "), got ",
                    index.size(0));
  TORCH_CHECK_VALUE(index.size(0) <= residual.size(0), "index has more entries (", index.size(0),
                    ") than there are frames (", residual.size(0), ")");
  if (const_map.has_value()) {
    TORCH_CHECK_VALUE(const_map->sizes() == residual.sizes().slice(1),
                      "const must be (C, H, W) = ", residual.sizes().slice(1), ", got ", const_map->sizes());
    check_same(residual, "residual", *const_map, "const");
  }
  check_chain(chain_start, chain_consts, chain_relu_mask, chain_upto, residual, "residual");
  TORCH_CHECK_VALUE(!(chain_start.has_value() && const_map.has_value()),
                    "const must be None with a lazy chain (the unselected frames' maps stay pending in the chain)");
}

inline void check_ample(const at::Tensor& xl, const at::Tensor& xb) {
  TORCH_CHECK_VALUE(xl.dim() == 4 && xb.dim() == 4, "xl and xb must be (N, C, h, w) and (N, C, H, W), got ", xl.sizes(),
                    " and ", xb.sizes());
  check_float(xb, "xb");
  check_same(xb, "xb", xl, "xl");
  TORCH_CHECK_VALUE(xl.size(0) == xb.size(0) && xl.size(1) == xb.size(1), "xl and xb must agree in (N, C), got ",
                    xl.sizes(), " and ", xb.sizes());
  TORCH_CHECK_VALUE(xl.size(2) > 0 && xl.size(3) > 0 && xb.size(2) > 0 && xb.size(3) > 0,
                    "spatial sizes must be positive, got xl ", xl.sizes(), " and xb ", xb.sizes());
  TORCH_CHECK_VALUE(xl.size(2) + xl.size(3) <= 8192, "xl's h + w must be <= 8192, got ", xl.sizes());
  TORCH_CHECK_VALUE(xb.size(2) * xb.size(3) < (int64_t(1) << 31) && xl.size(2) * xl.size(3) < (int64_t(1) << 31),
                    "spatial planes must have fewer than 2^31 elements, got xl ", xl.sizes(), " and xb ", xb.sizes());
}

inline void check_ample_blend(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a) {
  check_ample(xl, xb);
  check_same(xb, "xb", a, "a");
  TORCH_CHECK_VALUE(a.dim() == 2 && a.size(0) == xb.size(0) && a.size(1) == xb.size(1), "a must be (N, C) = (",
                    xb.size(0), ", ", xb.size(1), "), got ", a.sizes());
}

// Returns true for topk.
inline bool check_select_frames(const at::Tensor& logits, const std::string& mode, int64_t k) {
  TORCH_CHECK_VALUE(logits.dim() == 4 && logits.size(3) == 2, "logits must be (L, B, T, 2), got shape ",
                    logits.sizes());
  check_float(logits, "logits");
  TORCH_CHECK_VALUE(mode == "threshold" || mode == "topk", "mode must be 'threshold' or 'topk', got '", mode, "'");
  TORCH_CHECK_VALUE(logits.size(2) <= 1024, "select_frames supports T <= 1024 frames per clip, got ", logits.size(2));
  const bool topk = mode == "topk";
  if (topk) TORCH_CHECK_VALUE(k >= 0 && k <= logits.size(2), "k must be in [0, T=", logits.size(2), "], got ", k);
  return topk;
}

// ---- bLVNet-TAM (issue 13; blvnet_reference.temporal_aggregate / temporal_aggregate_pair / bl_merge) ---------------
// Frames x (N, C, H, W) clip-major in clips of `num_frames` rows; tap weights float32 (K, C), K odd, K <= 63, on x's
// device.
inline void check_tam_frames(const at::Tensor& x, const char* xn, int64_t num_frames, const char* tn) {
  TORCH_CHECK_VALUE(x.dim() == 4, xn, " must be a 4-D tensor (B·T, C, H, W), got shape ", x.sizes());
  check_float(x, xn);
  TORCH_CHECK_VALUE(num_frames >= 1, tn, " must be >= 1, got ", num_frames);
  TORCH_CHECK_VALUE(x.size(0) % num_frames == 0, xn, " has ", x.size(0), " rows, not a multiple of ", tn, " = ",
                    num_frames);
}

inline void check_tam_weight(const at::Tensor& w, const char* wn, const at::Tensor& x, const char* xn) {
  TORCH_CHECK_TYPE(w.scalar_type() == at::kFloat, wn, " must be float32 (K, C), got ", w.scalar_type());
  TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == x.size(1) && w.size(0) % 2 == 1 && w.size(0) <= 63, wn,
                    " must have shape (K, C) = (odd K <= 63, ", x.size(1), "), got ", w.sizes());
  TORCH_CHECK_VALUE(w.device() == x.device(), wn, " must be on the device of ", xn, " (", x.device(), "), got ",
                    w.device());
}

inline void check_bl_merge(const at::Tensor& big, const at::Tensor& little) {
  TORCH_CHECK_VALUE(big.dim() == 4 && little.dim() == 4, "big and little must be (N, C, h, w) and (N, C, H, W), got ",
                    big.sizes(), " and ", little.sizes());
  check_float(little, "little");
  check_same(little, "little", big, "big");
  TORCH_CHECK_VALUE(big.size(0) == little.size(0) && big.size(1) == little.size(1),
                    "big and little must agree in (N, C), got ", big.sizes(), " and ", little.sizes());
  TORCH_CHECK_VALUE(big.size(2) > 0 && big.size(3) > 0 && little.size(2) > 0 && little.size(3) > 0,
                    "spatial sizes must be positive, got big ", big.sizes(), " and little ", little.sizes());
  TORCH_CHECK_VALUE(
      little.size(2) * little.size(3) < (int64_t(1) << 31) && big.size(2) * big.size(3) < (int64_t(1) << 31),
      "spatial planes must have fewer than 2^31 elements, got big ", big.sizes(), " and little ", little.sizes());
}

// ---- AdaFocus focus_crop (issue 12; adafocus_reference.focus_crop) --------------------------------------------------
// Frames x (N, C, H, W) float; centres (N, 2) (row, col) actions, float32 (float64 when x is float64), on x's device;
// 1 <= patch <= min(H, W); mode "bilinear" | "floor". Returns the kernel's mode code (0 bilinear, 1 floor).
inline int check_focus_crop(const at::Tensor& x, const at::Tensor& centres, int64_t patch, const std::string& mode) {
  TORCH_CHECK_VALUE(x.dim() == 4, "x must be a floating-point tensor of shape (N, C, H, W), got shape ", x.sizes());
  check_float(x, "x");
  const at::ScalarType ct = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK_TYPE(centres.scalar_type() == ct, "centres must be ", ct == at::kDouble ? "float64" : "float32",
                   " (the coordinate type for ", x.scalar_type(), " frames), got ", centres.scalar_type());
  TORCH_CHECK_VALUE(centres.dim() == 2 && centres.size(0) == x.size(0) && centres.size(1) == 2,
                    "centres must have shape (N, 2) = (", x.size(0), ", 2) holding (row, col) actions in [0, 1], got ",
                    centres.sizes());
  TORCH_CHECK_VALUE(centres.device() == x.device(), "centres are on ", centres.device(), " but x is on ", x.device());
  TORCH_CHECK_VALUE(patch >= 1 && patch <= std::min(x.size(2), x.size(3)), "patch must be an int in [1, min(H, W)] = [1, ",
                    std::min(x.size(2), x.size(3)), "], got ", patch);
  TORCH_CHECK_VALUE(mode == "bilinear" || mode == "floor", "mode must be one of ('bilinear', 'floor'), got '", mode,
                    "'");
  return mode == "floor" ? 1 : 0;
}

// The backward ops: grad (N, C, P, P) with the frames' dtype, centres as above, mode as above; returns the mode code.
inline int check_focus_crop_grad(const at::Tensor& grad, const at::Tensor& centres, int64_t height, int64_t width,
                                 const std::string& mode) {
  TORCH_CHECK_VALUE(grad.dim() == 4 && grad.size(2) == grad.size(3),
                    "grad must be the (N, C, P, P) gradient of focus_crop's output, got shape ", grad.sizes());
  check_float(grad, "grad");
  const at::ScalarType ct = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK_TYPE(centres.scalar_type() == ct, "centres must be ", ct == at::kDouble ? "float64" : "float32",
                   " (the coordinate type for ", grad.scalar_type(), " frames), got ", centres.scalar_type());
  TORCH_CHECK_VALUE(centres.dim() == 2 && centres.size(0) == grad.size(0) && centres.size(1) == 2,
                    "centres must have shape (N, 2) = (", grad.size(0), ", 2), got ", centres.sizes());
  TORCH_CHECK_VALUE(centres.device() == grad.device(), "centres are on ", centres.device(), " but grad is on ",
                    grad.device());
  TORCH_CHECK_VALUE(height >= grad.size(2) && width >= grad.size(2) && grad.size(2) >= 1,
                    "the frames (", height, "×", width, ") must be at least the patch (", grad.size(2), ") in size");
  TORCH_CHECK_VALUE(mode == "bilinear" || mode == "floor", "mode must be one of ('bilinear', 'floor'), got '", mode,
                    "'");
  return mode == "floor" ? 1 : 0;
}

}  // namespace afn_ops
