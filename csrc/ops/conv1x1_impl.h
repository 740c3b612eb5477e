// Device-independent body of the two gather/scatter-fused 1×1 GEMM ops (gather_conv1x1, conv1x1_scatter): argument
// checks (ValueError for shapes/values, TypeError for dtypes, naming the argument; mirrored by the fake kernels in
// afnet_edge/kernels/ext.py), the lazy-chain arguments, contiguity, outputs, params. The device files pass a
// `launch(params, dtype)` callable (CPU twin or CUDA launcher), as for the ops in ops_impl.h.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "chain.h"
#include "checks.h"
#include "conv1x1_scatter.h"
#include "gather_conv1x1.h"
#include "ops_impl.h"

namespace afn_ops {

// The lazy chain of the tensor `x` (N, C, H, W) a fused op reads, checked by check_chain (checks.h: the frame ops'
// rules and messages) (schema: Tensor? chain_start, Tensor? chain_consts,
// int chain_relu_mask, int chain_upto). Both tensors None: no chain. Contiguous copies are kept in *start_c/*consts_c.
inline afn::ChainParams chain_params(const std::optional<at::Tensor>& start, const std::optional<at::Tensor>& consts,
                                     int64_t relu_mask, int64_t upto, const at::Tensor& x, const char* xname,
                                     at::Tensor* start_c, at::Tensor* consts_c) {
  check_chain(start, consts, relu_mask, upto, x, xname);  // the frame ops' rules and messages (checks.h)
  if (!start.has_value()) return afn::ChainParams{nullptr, nullptr, 0, 0, 0};
  *start_c = start->contiguous();
  *consts_c = consts->contiguous();
  return afn::ChainParams{start_c->const_data_ptr<int32_t>(), consts_c->const_data_ptr(), consts->size(0), relu_mask,
                          upto};
}

// weight (O, Cg) or (O, Cg, 1, 1) with O % groups == 0; scale / bias float32 (O,). Returns O.
inline int64_t check_conv1x1_params(const at::Tensor& x, const char* xname, int64_t cin, const at::Tensor& weight,
                                    int64_t groups, const at::Tensor& scale, const at::Tensor& bias,
                                    const char* cin_name) {
  TORCH_CHECK_VALUE(groups >= 1, "groups must be >= 1, got ", groups);
  TORCH_CHECK_VALUE(cin % groups == 0, "groups (", groups, ") must divide the input channels ", cin_name, " = ", cin);
  const int64_t cg = cin / groups;
  const bool shape_ok = (weight.dim() == 2 || (weight.dim() == 4 && weight.size(2) == 1 && weight.size(3) == 1)) &&
                        weight.size(1) == cg;
  TORCH_CHECK_VALUE(shape_ok, "weight must be (O, ", cin_name, "/groups = ", cg, ") or (O, ", cg,
                    ", 1, 1) (a 1×1 convolution), got shape ", weight.sizes());
  check_same(x, xname, weight, "weight");
  const int64_t O = weight.size(0);
  TORCH_CHECK_VALUE(O % groups == 0, "groups (", groups, ") must divide the output channels O = ", O);
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{scale, "scale"}, {bias, "bias"}}) {
    TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat, name, " must be float32 (folded BN), got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == O, name, " must be (O,) = (", O, ",), got shape ", t.sizes());
    TORCH_CHECK_VALUE(t.device() == x.device(), name, " must be on the device of ", xname, " (", x.device(),
                      "), got ", t.device());
  }
  return O;
}

using OptT = std::optional<at::Tensor>;

template <class Launch>
at::Tensor gather_conv1x1_impl(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                               const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                               const at::Tensor& bias, bool relu, const OptT& chain_start, const OptT& chain_consts,
                               int64_t chain_relu_mask, int64_t chain_upto, const at::Tensor* out, Launch&& launch) {
  check_focal_gather(x, index, num_frames);
  const int64_t O = check_conv1x1_params(x, "x", x.size(1), weight, groups, scale, bias, "C");
  at::Tensor sc, kc;
  const afn::ChainParams chain = chain_params(chain_start, chain_consts, chain_relu_mask, chain_upto, x, "x", &sc, &kc);
  no_overlap(out, {&x, &index, &weight, &scale, &bias});
  const at::Tensor xc = x.contiguous(), ic = index.contiguous(), wc = weight.contiguous();
  const at::Tensor scl = scale.contiguous(), bs = bias.contiguous();
  at::Tensor y = output(out, {ic.size(0), O, x.size(2), x.size(3)}, xc.options(), "out");
  const afn::GatherConv1x1Params p{xc.const_data_ptr(),        ic.const_data_ptr<int64_t>(), wc.const_data_ptr(),
                                   scl.const_data_ptr<float>(), bs.const_data_ptr<float>(),    y.data_ptr(),
                                   x.size(0),                   x.size(1),                     x.size(2) * x.size(3),
                                   ic.size(0),                  O,                             groups,
                                   num_frames,                  shift,                         relu,
                                   chain};
  launch(p, x.scalar_type());
  return y;
}

inline void check_conv1x1_scatter(const at::Tensor& h, const at::Tensor& weight, int64_t groups,
                                  const at::Tensor& scale, const at::Tensor& bias, const at::Tensor& residual,
                                  const at::Tensor& index) {
  TORCH_CHECK_VALUE(residual.dim() == 4, "residual must be (N, C, H, W), got shape ", residual.sizes());
  check_float(residual, "residual");
  TORCH_CHECK_VALUE(h.dim() == 4 && h.size(2) == residual.size(2) && h.size(3) == residual.size(3),
                    "h must be (K, C_h, H, W) with (H, W) of residual ", residual.sizes().slice(2), ", got shape ",
                    h.sizes());
  check_same(residual, "residual", h, "h");
  check_index(index, residual);
  TORCH_CHECK_VALUE(index.size(0) == h.size(0), "index must have one entry per frame of h (", h.size(0), "), got ",
                    index.size(0));
  TORCH_CHECK_VALUE(index.size(0) <= residual.size(0), "index has more entries (", index.size(0),
                    ") than there are frames (", residual.size(0), ")");
  const int64_t O = check_conv1x1_params(residual, "residual", h.size(1), weight, groups, scale, bias, "C_h");
  TORCH_CHECK_VALUE(O == residual.size(1), "weight must have C = ", residual.size(1),
                    " output channels (those of residual), got ", O);
}

// Writes the selected rows of `dst` (contiguous, residual's shape), reading residual values from `src` (dst itself
// when in place or after a copy).
template <class Launch>
void conv1x1_scatter_into(const at::Tensor& dst, const at::Tensor& h, const at::Tensor& weight, int64_t groups,
                          const at::Tensor& scale, const at::Tensor& bias, const at::Tensor& index, bool relu,
                          const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                          int64_t chain_upto, Launch&& launch) {
  at::Tensor sc, kc;
  const afn::ChainParams chain =
      chain_params(chain_start, chain_consts, chain_relu_mask, chain_upto, dst, "residual", &sc, &kc);
  const at::Tensor hc = h.contiguous(), wc = weight.contiguous(), ic = index.contiguous();
  const at::Tensor scl = scale.contiguous(), bs = bias.contiguous();
  const afn::Conv1x1ScatterParams p{hc.const_data_ptr(),   wc.const_data_ptr(),          scl.const_data_ptr<float>(),
                                    bs.const_data_ptr<float>(), dst.const_data_ptr(),    ic.const_data_ptr<int64_t>(),
                                    dst.data_ptr(),        dst.size(0),                  dst.size(1),
                                    h.size(1),             dst.size(2) * dst.size(3),    ic.size(0),
                                    groups,                relu,                         chain};
  launch(p, dst.scalar_type());
}

template <class Launch>
at::Tensor conv1x1_scatter_impl(const at::Tensor& h, const at::Tensor& weight, int64_t groups, const at::Tensor& scale,
                                const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& index, bool relu,
                                const OptT& chain_start, const OptT& chain_consts, int64_t chain_relu_mask,
                                int64_t chain_upto, const at::Tensor* out, Launch&& launch) {
  check_conv1x1_scatter(h, weight, groups, scale, bias, residual, index);
  no_overlap(out, {&h, &weight, &scale, &bias, &residual, &index, chain_start.has_value() ? &*chain_start : nullptr,
                   chain_consts.has_value() ? &*chain_consts : nullptr});
  at::Tensor dst = output(out, residual.sizes(), residual.options(), "out");
  dst.copy_(residual);  // unselected rows: as stored (pending under a chain)
  conv1x1_scatter_into(dst, h, weight, groups, scale, bias, index, relu, chain_start, chain_consts, chain_relu_mask,
                       chain_upto, launch);
  return dst;
}

template <class Launch>
void conv1x1_scatter_inplace_impl(const at::Tensor& h, const at::Tensor& weight, int64_t groups,
                                  const at::Tensor& scale, const at::Tensor& bias, const at::Tensor& residual,
                                  const at::Tensor& index, bool relu, const OptT& chain_start,
                                  const OptT& chain_consts, int64_t chain_relu_mask, int64_t chain_upto,
                                  Launch&& launch) {
  check_conv1x1_scatter(h, weight, groups, scale, bias, residual, index);
  no_overlap(&residual, {&h, &weight, &scale, &bias, &index, chain_start.has_value() ? &*chain_start : nullptr,
                         chain_consts.has_value() ? &*chain_consts : nullptr});
  if (residual.is_contiguous()) {
    conv1x1_scatter_into(residual, h, weight, groups, scale, bias, index, relu, chain_start, chain_consts,
                         chain_relu_mask, chain_upto, launch);
  } else {
    const at::Tensor dst = residual.contiguous();
    conv1x1_scatter_into(dst, h, weight, groups, scale, bias, index, relu, chain_start, chain_consts, chain_relu_mask,
                         chain_upto, launch);
    const_cast<at::Tensor&>(residual).copy_(dst);
  }
}

}  // namespace afn_ops
