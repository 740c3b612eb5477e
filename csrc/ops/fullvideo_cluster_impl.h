// Device-independent bodies of the full-video clustering ops (binarize_pack, adjacent_hamming, segment_boundaries,
// segment_mean): argument checks naming the argument, contiguity, output allocation, params. The device files pass
// launchers (CPU twin or CUDA kernel). Kept in its own header (not checks.h / ops_impl.h) so that this family's ops
// stay in their own files. Semantics: afnet_edge/kernels/fullvideo_reference.py.
#pragma once

#include <optional>
#include <string>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include "checks.h"
#include "fullvideo_cluster.h"

namespace afn_ops {

// frame_offsets (B+1,) int64 on `dev`; its values (0 first, n_total last, strictly increasing) are checked only
// for CPU tensors (reading a device tensor's values would cost a host sync; the kernels clamp instead).
inline void check_frame_offsets(const std::optional<at::Tensor>& fo, int64_t n_total, const at::Tensor& ref,
                                const char* refname) {
  if (!fo.has_value()) return;
  TORCH_CHECK_TYPE(fo->scalar_type() == at::kLong, "frame_offsets must be int64, got ", fo->scalar_type());
  TORCH_CHECK_VALUE(fo->dim() == 1 && fo->size(0) >= 2, "frame_offsets must be (B+1,) with B >= 1, got shape ",
                    fo->sizes());
  TORCH_CHECK_VALUE(fo->device() == ref.device(), "frame_offsets must be on the device of ", refname, " (",
                    ref.device(), "), got ", fo->device());
  if (fo->device().is_cpu()) {
    const at::Tensor c = fo->contiguous();
    const int64_t* o = c.data_ptr<int64_t>();
    const int64_t n = c.size(0);
    bool ok = o[0] == 0 && o[n - 1] == n_total;
    for (int64_t i = 0; i + 1 < n; ++i) ok = ok && o[i + 1] > o[i];
    TORCH_CHECK_VALUE(ok, "frame_offsets must start at 0, end at N_total=", n_total,
                      " and increase strictly (at least one frame per video), got ", *fo);
  }
}

template <typename Launch>
at::Tensor binarize_pack_impl(const at::Tensor& y, Launch&& launch) {
  TORCH_CHECK_VALUE(y.dim() >= 1, "y must be (N, ...) with one frame per row, got a 0-d tensor");
  check_float(y, "y");
  const at::Tensor yc = y.contiguous();
  const int64_t N = y.size(0);
  int64_t D = 1;
  for (int64_t i = 1; i < y.dim(); ++i) D *= y.size(i);
  at::Tensor bits = at::empty({N, afn::ceil_div(D, 32)}, y.options().dtype(at::kInt));
  afn::BinarizePackParams p{yc.data_ptr(), bits.data_ptr<int32_t>(), N, D};
  launch(p, y.scalar_type());
  return bits;
}

template <typename Launch>
at::Tensor adjacent_hamming_impl(const at::Tensor& bits, Launch&& launch) {
  TORCH_CHECK_TYPE(bits.scalar_type() == at::kInt, "bits must be int32 (from binarize_pack), got ",
                   bits.scalar_type());
  TORCH_CHECK_VALUE(bits.dim() == 2, "bits must be (N, W) (from binarize_pack), got shape ", bits.sizes());
  const at::Tensor bc = bits.contiguous();
  const int64_t N = bits.size(0);
  at::Tensor h = at::empty({N > 1 ? N - 1 : 0}, bits.options());
  afn::AdjacentHammingParams p{bc.data_ptr<int32_t>(), h.data_ptr<int32_t>(), N, bits.size(1)};
  launch(p);
  return h;
}

template <typename Launch>
std::tuple<at::Tensor, at::Tensor> segment_boundaries_impl(const at::Tensor& h, int64_t k, const std::string& rule,
                                                           const std::optional<at::Tensor>& frame_offsets,
                                                           Launch&& launch) {
  TORCH_CHECK_TYPE(h.scalar_type() == at::kInt, "h must be int32 (from adjacent_hamming), got ", h.scalar_type());
  TORCH_CHECK_VALUE(h.dim() == 1, "h must be (N_total-1,) (from adjacent_hamming), got shape ", h.sizes());
  TORCH_CHECK_VALUE(k >= 1, "k (clusters) must be a positive integer, got ", k);
  TORCH_CHECK_VALUE(rule == "slope" || rule == "even" || rule == "cumulative",
                    "rule must be 'slope', 'cumulative' or 'even' for the segment_boundaries kernel, got '", rule,
                    "'");
  const int64_t n_total = h.size(0) + 1;
  check_frame_offsets(frame_offsets, n_total, h, "h");
  const int64_t B = frame_offsets.has_value() ? frame_offsets->size(0) - 1 : 1;
  const at::Tensor hc = h.contiguous();
  const at::Tensor fo = frame_offsets.has_value() ? frame_offsets->contiguous() : at::Tensor();
  at::Tensor offsets = at::empty({B, k + 1}, h.options().dtype(at::kLong));
  at::Tensor m = at::empty({B}, h.options().dtype(at::kLong));
  afn::SegmentBoundariesParams p{hc.data_ptr<int32_t>(), fo.defined() ? fo.data_ptr<int64_t>() : nullptr,
                                 offsets.data_ptr<int64_t>(), m.data_ptr<int64_t>(), n_total, B, k,
                                 rule == "slope"        ? afn::BoundaryRule::kSlope
                                 : rule == "cumulative" ? afn::BoundaryRule::kCumulative
                                                        : afn::BoundaryRule::kEven};
  launch(p);
  return {offsets, m};
}

template <typename Launch>
at::Tensor segment_mean_impl(const at::Tensor& a, const at::Tensor& offsets, const at::Tensor& num_segments,
                             const std::optional<at::Tensor>& frame_offsets, Launch&& launch) {
  TORCH_CHECK_VALUE(a.dim() >= 1, "a must be (N_total, ...) with one frame per row, got a 0-d tensor");
  check_float(a, "a");
  TORCH_CHECK_TYPE(offsets.scalar_type() == at::kLong, "offsets must be int64, got ", offsets.scalar_type());
  TORCH_CHECK_VALUE(offsets.dim() == 2 && offsets.size(1) >= 2, "offsets must be (B, K+1) with K >= 1, got shape ",
                    offsets.sizes());
  const int64_t B = offsets.size(0), K = offsets.size(1) - 1;
  TORCH_CHECK_TYPE(num_segments.scalar_type() == at::kLong, "num_segments must be int64, got ",
                   num_segments.scalar_type());
  TORCH_CHECK_VALUE(num_segments.dim() == 1 && num_segments.size(0) == B, "num_segments must be (B,) = (", B,
                    ",), got shape ", num_segments.sizes());
  TORCH_CHECK_VALUE(offsets.device() == a.device(), "offsets must be on the device of a (", a.device(), "), got ",
                    offsets.device());
  TORCH_CHECK_VALUE(num_segments.device() == a.device(), "num_segments must be on the device of a (", a.device(),
                    "), got ", num_segments.device());
  const int64_t n_total = a.size(0);
  check_frame_offsets(frame_offsets, n_total, a, "a");
  const int64_t fb = frame_offsets.has_value() ? frame_offsets->size(0) - 1 : 1;
  TORCH_CHECK_VALUE(fb == B, "offsets (B=", B, ", K+1) and frame_offsets (B+1,) disagree: frame_offsets has ", fb,
                    " videos", frame_offsets.has_value() ? "" : " (None: one video)");
  TORCH_CHECK_VALUE(B >= 1, "offsets must hold at least one video, got shape ", offsets.sizes());
  int64_t D = 1;
  for (int64_t i = 1; i < a.dim(); ++i) D *= a.size(i);
  const at::Tensor ac = a.contiguous(), oc = offsets.contiguous(), mc = num_segments.contiguous();
  const at::Tensor fo = frame_offsets.has_value() ? frame_offsets->contiguous() : at::Tensor();
  std::vector<int64_t> shape{B * K};
  for (int64_t i = 1; i < a.dim(); ++i) shape.push_back(a.size(i));
  at::Tensor out = at::empty(shape, a.options().memory_format(at::MemoryFormat::Contiguous));
  afn::SegmentMeanParams p{ac.data_ptr(),  oc.data_ptr<int64_t>(), mc.data_ptr<int64_t>(),
                           fo.defined() ? fo.data_ptr<int64_t>() : nullptr,
                           out.data_ptr(), n_total, B, K, D};
  launch(p, a.scalar_type());
  return out;
}

// grad (B·K, ...) -> grad_a (n_total, ...): the adjoint of segment_mean (its autograd formula, ext.py).
template <typename Launch>
at::Tensor segment_mean_backward_impl(const at::Tensor& grad, const at::Tensor& offsets,
                                      const at::Tensor& num_segments, const std::optional<at::Tensor>& frame_offsets,
                                      int64_t n_total, Launch&& launch) {
  TORCH_CHECK_VALUE(grad.dim() >= 1, "grad must be (B*K, ...) (segment_mean's output gradient), got a 0-d tensor");
  check_float(grad, "grad");
  TORCH_CHECK_TYPE(offsets.scalar_type() == at::kLong, "offsets must be int64, got ", offsets.scalar_type());
  TORCH_CHECK_VALUE(offsets.dim() == 2 && offsets.size(1) >= 2, "offsets must be (B, K+1) with K >= 1, got shape ",
                    offsets.sizes());
  const int64_t B = offsets.size(0), K = offsets.size(1) - 1;
  TORCH_CHECK_VALUE(B >= 1, "offsets must hold at least one video, got shape ", offsets.sizes());
  TORCH_CHECK_VALUE(grad.size(0) == B * K, "grad must have B*K = ", B * K, " rows (offsets ", offsets.sizes(),
                    "), got shape ", grad.sizes());
  TORCH_CHECK_TYPE(num_segments.scalar_type() == at::kLong, "num_segments must be int64, got ",
                   num_segments.scalar_type());
  TORCH_CHECK_VALUE(num_segments.dim() == 1 && num_segments.size(0) == B, "num_segments must be (B,) = (", B,
                    ",), got shape ", num_segments.sizes());
  TORCH_CHECK_VALUE(offsets.device() == grad.device(), "offsets must be on the device of grad (", grad.device(),
                    "), got ", offsets.device());
  TORCH_CHECK_VALUE(num_segments.device() == grad.device(), "num_segments must be on the device of grad (",
                    grad.device(), "), got ", num_segments.device());
  TORCH_CHECK_VALUE(n_total >= 0, "n_total (frames of a) must be >= 0, got ", n_total);
  check_frame_offsets(frame_offsets, n_total, grad, "grad");
  const int64_t fb = frame_offsets.has_value() ? frame_offsets->size(0) - 1 : 1;
  TORCH_CHECK_VALUE(fb == B, "offsets (B=", B, ", K+1) and frame_offsets (B+1,) disagree: frame_offsets has ", fb,
                    " videos", frame_offsets.has_value() ? "" : " (None: one video)");
  int64_t D = 1;
  for (int64_t i = 1; i < grad.dim(); ++i) D *= grad.size(i);
  const at::Tensor gc = grad.contiguous(), oc = offsets.contiguous(), mc = num_segments.contiguous();
  const at::Tensor fo = frame_offsets.has_value() ? frame_offsets->contiguous() : at::Tensor();
  std::vector<int64_t> shape{n_total};
  for (int64_t i = 1; i < grad.dim(); ++i) shape.push_back(grad.size(i));
  at::Tensor ga = at::empty(shape, grad.options().memory_format(at::MemoryFormat::Contiguous));
  afn::SegmentMeanBackwardParams p{gc.data_ptr(),  oc.data_ptr<int64_t>(), mc.data_ptr<int64_t>(),
                                   fo.defined() ? fo.data_ptr<int64_t>() : nullptr,
                                   ga.data_ptr(), n_total, B, K, D};
  launch(p, grad.scalar_type());
  return ga;
}

}  // namespace afn_ops
