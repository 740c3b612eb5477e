// Device-independent body of each op: checks, contiguity, output allocation (or the caller's `out=` tensors),
// params. The device files pass a `launch(params, dtype)` callable that runs the CPU twin or the CUDA launcher.
// Non-contiguous inputs are made contiguous (kernels assume dense NCHW); outputs are contiguous. An `out=` tensor
// must already have the output's shape, dtype and device, be contiguous and not overlap the inputs.
#pragma once

#include <optional>
#include <string>
#include <tuple>

#include <ATen/MemoryOverlap.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "ample_fuse_blend.h"
#include "ample_fuse_pool.h"
#include "checks.h"
#include "focal_gather.h"
#include "focal_scatter.h"
#include "select_frames.h"

namespace afn_ops {

using OptTensor = std::optional<at::Tensor>;

// The optional lazy constant chain of an op, as passed by the schema (checked with check_chain).
struct ChainArgs {
  const std::optional<at::Tensor>& start;
  const std::optional<at::Tensor>& consts;
  int64_t relu_mask;
  int64_t upto;
  bool present() const { return start.has_value(); }
  const at::Tensor* start_ptr() const { return start.has_value() ? &*start : nullptr; }
  const at::Tensor* consts_ptr() const { return consts.has_value() ? &*consts : nullptr; }
};

// Contiguous copies of the chain's tensors (kept alive for the launch) and the kernels' view of them.
struct ChainHold {
  at::Tensor start, consts;
  afn::ChainParams params;
};

inline ChainHold chain_hold(const ChainArgs& c) {
  ChainHold h;
  if (!c.present()) return h;
  h.start = c.start->contiguous();
  h.consts = c.consts->contiguous();
  h.params = afn::ChainParams{h.start.const_data_ptr<int32_t>(), h.consts.const_data_ptr(), h.consts.size(0),
                              c.relu_mask, c.upto};
  return h;
}

// The output tensor: `out` checked against the expected shape/dtype/device, or a new contiguous tensor.
inline at::Tensor output(const at::Tensor* out, at::IntArrayRef sizes, const at::TensorOptions& opts,
                         const char* name) {
  if (out == nullptr) return at::empty(sizes, opts.memory_format(at::MemoryFormat::Contiguous));
  TORCH_CHECK_VALUE(out->sizes() == sizes, name, " must have shape ", sizes, ", got ", out->sizes());
  TORCH_CHECK_TYPE(out->scalar_type() == opts.dtype().toScalarType(), name, " must be ", opts.dtype().toScalarType(),
                   ", got ", out->scalar_type());
  TORCH_CHECK_VALUE(out->device() == opts.device(), name, " must be on ", opts.device(), ", got ", out->device());
  TORCH_CHECK_VALUE(out->is_contiguous(), name, " must be contiguous");
  return *out;
}

inline void no_overlap(const at::Tensor* out, std::initializer_list<const at::Tensor*> inputs) {
  if (out == nullptr) return;
  at::assert_no_internal_overlap(*out);
  for (const at::Tensor* t : inputs)
    if (t != nullptr && t->defined()) at::assert_no_overlap(*out, *t);
}

template <class Launch>
at::Tensor focal_gather_impl(const at::Tensor& x, const at::Tensor& index, int64_t num_frames, bool shift,
                             const ChainArgs& chain, const at::Tensor* out, Launch&& launch) {
  check_focal_gather(x, index, num_frames);
  check_chain(chain.start, chain.consts, chain.relu_mask, chain.upto, x, "x");
  no_overlap(out, {&x, &index, chain.start_ptr(), chain.consts_ptr()});
  const at::Tensor xc = x.contiguous(), ic = index.contiguous();
  const ChainHold ch = chain_hold(chain);
  at::Tensor y = output(out, {ic.size(0), x.size(1), x.size(2), x.size(3)}, xc.options(), "out");
  const afn::FocalGatherParams p{xc.const_data_ptr(),
                                 ic.const_data_ptr<int64_t>(),
                                 y.data_ptr(),
                                 x.size(0),
                                 x.size(1),
                                 x.size(2) * x.size(3),
                                 ic.size(0),
                                 num_frames,
                                 shift,
                                 ch.params};
  launch(p, x.scalar_type());
  return y;
}

// Writes into `dst` (contiguous, shape of residual; may be residual itself).
template <class Launch>
void focal_scatter_into(const at::Tensor& dst, const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                        const std::optional<at::Tensor>& const_map, bool relu, const ChainArgs& chain,
                        Launch&& launch) {
  const at::Tensor rc = residual.contiguous(), yc = y.contiguous(), ic = index.contiguous();
  const ChainHold ch = chain_hold(chain);
  const at::Tensor cc = const_map.has_value() ? const_map->contiguous() : at::Tensor();
  const afn::FocalScatterParams p{rc.const_data_ptr(),
                                  yc.const_data_ptr(),
                                  ic.const_data_ptr<int64_t>(),
                                  cc.defined() ? cc.const_data_ptr() : nullptr,
                                  dst.data_ptr(),
                                  residual.size(0),
                                  residual.size(1),
                                  residual.size(2) * residual.size(3),
                                  ic.size(0),
                                  relu,
                                  ch.params};
  launch(p, residual.scalar_type());
}

template <class Launch>
at::Tensor focal_scatter_impl(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                              const std::optional<at::Tensor>& const_map, bool relu, const ChainArgs& chain,
                              const at::Tensor* out, Launch&& launch) {
  check_focal_scatter(residual, y, index, const_map, chain.start, chain.consts, chain.relu_mask, chain.upto);
  no_overlap(out, {&residual, &y, &index, const_map.has_value() ? &*const_map : nullptr, chain.start_ptr(),
                   chain.consts_ptr()});
  at::Tensor dst = output(out, residual.sizes(), residual.options(), "out");
  focal_scatter_into(dst, residual, y, index, const_map, relu, chain, launch);
  return dst;
}

template <class Launch>
void focal_scatter_inplace_impl(const at::Tensor& residual, const at::Tensor& y, const at::Tensor& index,
                                const std::optional<at::Tensor>& const_map, bool relu, const ChainArgs& chain,
                                Launch&& launch) {
  check_focal_scatter(residual, y, index, const_map, chain.start, chain.consts, chain.relu_mask, chain.upto);
  no_overlap(&residual, {&y, &index, const_map.has_value() ? &*const_map : nullptr, chain.start_ptr(),
                         chain.consts_ptr()});
  if (residual.is_contiguous()) {
    focal_scatter_into(residual, residual, y, index, const_map, relu, chain, launch);
  } else {
    const at::Tensor dst = output(nullptr, residual.sizes(), residual.options(), "out");
    focal_scatter_into(dst, residual, y, index, const_map, relu, chain, launch);
    const_cast<at::Tensor&>(residual).copy_(dst);
  }
}

template <class Launch>
at::Tensor ample_fuse_pool_impl(const at::Tensor& xl, const at::Tensor& xb, const ChainArgs& chain,
                                const at::Tensor* out, Launch&& launch) {
  check_ample(xl, xb);
  check_chain(chain.start, chain.consts, chain.relu_mask, chain.upto, xb, "xb");
  no_overlap(out, {&xl, &xb, chain.start_ptr(), chain.consts_ptr()});
  const at::Tensor lc = xl.contiguous(), bc = xb.contiguous();
  const ChainHold ch = chain_hold(chain);
  at::Tensor dst = output(out, {xb.size(0), xb.size(1)}, bc.options(), "out");
  const afn::AmpleFusePoolParams p{lc.const_data_ptr(), bc.const_data_ptr(), dst.data_ptr(), xb.size(0) * xb.size(1),
                                   xl.size(2),          xl.size(3),          xb.size(2),     xb.size(3),
                                   xb.size(1),          ch.params};
  launch(p, xb.scalar_type());
  return dst;
}

template <class Launch>
at::Tensor ample_fuse_blend_impl(const at::Tensor& xl, const at::Tensor& xb, const at::Tensor& a, bool relu,
                                 const ChainArgs& chain, const at::Tensor* out, Launch&& launch) {
  check_ample_blend(xl, xb, a);
  check_chain(chain.start, chain.consts, chain.relu_mask, chain.upto, xb, "xb");
  no_overlap(out, {&xl, &xb, &a, chain.start_ptr(), chain.consts_ptr()});
  const at::Tensor lc = xl.contiguous(), bc = xb.contiguous(), ac = a.contiguous();
  const ChainHold ch = chain_hold(chain);
  at::Tensor dst = output(out, xb.sizes(), bc.options(), "out");
  const afn::AmpleFuseBlendParams p{
      lc.const_data_ptr(), bc.const_data_ptr(), ac.const_data_ptr(), dst.data_ptr(), xb.size(0) * xb.size(1),
      xl.size(2),          xl.size(3),          xb.size(2),          xb.size(3),     relu,
      xb.size(1),          ch.params};
  launch(p, xb.scalar_type());
  return dst;
}

struct SelectOut {
  const at::Tensor* index;
  const at::Tensor* counts;
  const at::Tensor* mask;
};

template <class Launch>
std::tuple<at::Tensor, at::Tensor, at::Tensor> select_frames_impl(const at::Tensor& logits, const std::string& mode,
                                                                  int64_t k, const SelectOut& out, Launch&& launch) {
  const bool topk = check_select_frames(logits, mode, k);
  no_overlap(out.index, {&logits});
  no_overlap(out.counts, {&logits, out.index});
  no_overlap(out.mask, {&logits, out.index, out.counts});
  const at::Tensor lc = logits.contiguous();
  const int64_t L = logits.size(0), B = logits.size(1), T = logits.size(2);
  const int64_t M = topk ? B * k : B * T;
  at::Tensor index = output(out.index, {L, M}, lc.options().dtype(at::kLong), "index");
  at::Tensor counts = output(out.counts, {L}, lc.options().dtype(at::kLong), "counts");
  at::Tensor mask = output(out.mask, {L, B, T}, lc.options(), "mask");
  const afn::SelectFramesParams p{lc.const_data_ptr(),
                                  index.data_ptr<int64_t>(),
                                  counts.data_ptr<int64_t>(),
                                  mask.data_ptr(),
                                  L,
                                  B,
                                  T,
                                  topk ? afn::SelectMode::kTopK : afn::SelectMode::kThreshold,
                                  topk ? k : 0};
  launch(p, logits.scalar_type());
  return {index, counts, mask};
}

}  // namespace afn_ops
