// CPU implementations of afnet_edge::binarize_pack, adjacent_hamming, segment_boundaries and segment_mean: the CPU
// twins in csrc/kernels/fullvideo_cluster_cpu.cpp.
#include <torch/library.h>

#include "../dispatch.h"
#include "../fullvideo_cluster_impl.h"

namespace afn_ops {
namespace {

at::Tensor binarize_pack_cpu(const at::Tensor& y) {
  return binarize_pack_impl(y, [](const afn::BinarizePackParams& p, at::ScalarType t) {
    dispatch_cpu(t, [&](auto tag) {
      check_status(afn::binarize_pack_cpu<typename decltype(tag)::type>(p), "binarize_pack");
    });
  });
}

at::Tensor adjacent_hamming_cpu(const at::Tensor& bits) {
  return adjacent_hamming_impl(bits, [](const afn::AdjacentHammingParams& p) {
    check_status(afn::adjacent_hamming_cpu(p), "adjacent_hamming");
  });
}

std::tuple<at::Tensor, at::Tensor> segment_boundaries_cpu(const at::Tensor& h, int64_t k, c10::string_view rule,
                                                          const std::optional<at::Tensor>& frame_offsets) {
  return segment_boundaries_impl(h, k, std::string(rule), frame_offsets, [](const afn::SegmentBoundariesParams& p) {
    check_status(afn::segment_boundaries_cpu(p), "segment_boundaries");
  });
}

at::Tensor segment_mean_cpu(const at::Tensor& a, const at::Tensor& offsets, const at::Tensor& num_segments,
                            const std::optional<at::Tensor>& frame_offsets) {
  return segment_mean_impl(a, offsets, num_segments, frame_offsets, [](const afn::SegmentMeanParams& p,
                                                                       at::ScalarType t) {
    dispatch_cpu(t, [&](auto tag) {
      check_status(afn::segment_mean_cpu<typename decltype(tag)::type>(p), "segment_mean");
    });
  });
}

at::Tensor segment_mean_backward_cpu(const at::Tensor& grad, const at::Tensor& offsets, const at::Tensor& num_segments,
                                     const std::optional<at::Tensor>& frame_offsets, int64_t n_total) {
  return segment_mean_backward_impl(grad, offsets, num_segments, frame_offsets, n_total,
                                    [](const afn::SegmentMeanBackwardParams& p, at::ScalarType t) {
    dispatch_cpu(t, [&](auto tag) {
      check_status(afn::segment_mean_backward_cpu<typename decltype(tag)::type>(p), "segment_mean_backward");
    });
  });
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("binarize_pack", &afn_ops::binarize_pack_cpu);
  m.impl("adjacent_hamming", &afn_ops::adjacent_hamming_cpu);
  m.impl("segment_boundaries", &afn_ops::segment_boundaries_cpu);
  m.impl("segment_mean", &afn_ops::segment_mean_cpu);
  m.impl("segment_mean_backward", &afn_ops::segment_mean_backward_cpu);
}
