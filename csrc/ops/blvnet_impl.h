// Device-independent bodies of the bLVNet-TAM ops (temporal_aggregate, temporal_aggregate_pair, bl_merge): checks,
// contiguity, output allocation, params; as ops_impl.h, the device files pass a `launch(params, dtype)` callable.
// Non-contiguous inputs are made contiguous; outputs are new contiguous tensors (no `.out` overloads yet).
#pragma once

#include <tuple>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "bl_merge.h"
#include "checks.h"
#include "temporal_aggregate.h"

namespace afn_ops {

template <class Launch>
at::Tensor temporal_aggregate_impl(const at::Tensor& x, const at::Tensor& weight, int64_t num_frames, bool relu,
                                   Launch&& launch) {
  check_tam_frames(x, "x", num_frames, "num_frames");
  check_tam_weight(weight, "weight", x, "x");
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor out = at::empty(x.sizes(), xc.options().memory_format(at::MemoryFormat::Contiguous));
  const afn::TemporalAggregateParams p{xc.const_data_ptr(), wc.const_data_ptr<float>(), out.data_ptr(), nullptr,
                                       nullptr,             x.size(0),                  x.size(1),      x.size(2) * x.size(3),
                                       num_frames,          weight.size(0),             relu};
  launch(p, x.scalar_type());
  return out;
}

template <class Launch>
std::tuple<at::Tensor, at::Tensor> temporal_aggregate_pair_impl(const at::Tensor& y, const at::Tensor& w_big,
                                                                const at::Tensor& w_little, int64_t num_pairs,
                                                                bool relu, Launch&& launch) {
  check_tam_frames(y, "y", num_pairs, "num_pairs");
  check_tam_weight(w_big, "w_big", y, "y");
  check_tam_weight(w_little, "w_little", y, "y");
  TORCH_CHECK_VALUE(w_little.sizes() == w_big.sizes(), "w_little must have w_big's shape ", w_big.sizes(), ", got ",
                    w_little.sizes());
  const at::Tensor yc = y.contiguous(), bc = w_big.contiguous(), lc = w_little.contiguous();
  const auto opts = yc.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor big = at::empty(y.sizes(), opts), little = at::empty(y.sizes(), opts);
  const afn::TemporalAggregateParams p{yc.const_data_ptr(), bc.const_data_ptr<float>(), big.data_ptr(),
                                       lc.const_data_ptr<float>(), little.data_ptr(), y.size(0), y.size(1),
                                       y.size(2) * y.size(3), num_pairs, w_big.size(0), relu};
  launch(p, y.scalar_type());
  return {big, little};
}

template <class Launch>
at::Tensor bl_merge_impl(const at::Tensor& big, const at::Tensor& little, bool relu, Launch&& launch) {
  check_bl_merge(big, little);
  const at::Tensor bc = big.contiguous(), lc = little.contiguous();
  at::Tensor out = at::empty(little.sizes(), lc.options().memory_format(at::MemoryFormat::Contiguous));
  const afn::BLMergeParams p{bc.const_data_ptr(), lc.const_data_ptr(), out.data_ptr(), little.size(0) * little.size(1),
                             big.size(2),         big.size(3),         little.size(2), little.size(3), relu};
  launch(p, little.scalar_type());
  return out;
}

}  // namespace afn_ops
