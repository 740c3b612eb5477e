// CUDA implementations of afnet_edge::binarize_pack, adjacent_hamming, segment_boundaries and segment_mean:
// csrc/kernels/fullvideo_cluster.cu on the current stream, every launch checked. No host sync: frame_offsets on the
// device is read only by the kernels.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../dispatch.h"
#include "../fullvideo_cluster_impl.h"

namespace afn_ops {
namespace {

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

at::Tensor binarize_pack_cuda(const at::Tensor& y) {
  const c10::cuda::CUDAGuard guard(y.device());
  return binarize_pack_impl(y, [](const afn::BinarizePackParams& p, at::ScalarType t) {
    dispatch_cuda(t, [&](auto tag) {
      check_cuda(afn::binarize_pack_cuda<typename decltype(tag)::type>(p, current_stream()), "binarize_pack");
    });
  });
}

at::Tensor adjacent_hamming_cuda(const at::Tensor& bits) {
  const c10::cuda::CUDAGuard guard(bits.device());
  return adjacent_hamming_impl(bits, [](const afn::AdjacentHammingParams& p) {
    check_cuda(afn::adjacent_hamming_cuda(p, current_stream()), "adjacent_hamming");
  });
}

std::tuple<at::Tensor, at::Tensor> segment_boundaries_cuda(const at::Tensor& h, int64_t k, c10::string_view rule,
                                                           const std::optional<at::Tensor>& frame_offsets) {
  const c10::cuda::CUDAGuard guard(h.device());
  return segment_boundaries_impl(h, k, std::string(rule), frame_offsets, [](const afn::SegmentBoundariesParams& p) {
    check_cuda(afn::segment_boundaries_cuda(p, current_stream()), "segment_boundaries");
  });
}

at::Tensor segment_mean_cuda(const at::Tensor& a, const at::Tensor& offsets, const at::Tensor& num_segments,
                             const std::optional<at::Tensor>& frame_offsets) {
  const c10::cuda::CUDAGuard guard(a.device());
  return segment_mean_impl(a, offsets, num_segments, frame_offsets, [](const afn::SegmentMeanParams& p,
                                                                       at::ScalarType t) {
    dispatch_cuda(t, [&](auto tag) {
      check_cuda(afn::segment_mean_cuda<typename decltype(tag)::type>(p, current_stream()), "segment_mean");
    });
  });
}

at::Tensor segment_mean_backward_cuda(const at::Tensor& grad, const at::Tensor& offsets,
                                      const at::Tensor& num_segments, const std::optional<at::Tensor>& frame_offsets,
                                      int64_t n_total) {
  const c10::cuda::CUDAGuard guard(grad.device());
  return segment_mean_backward_impl(grad, offsets, num_segments, frame_offsets, n_total,
                                    [](const afn::SegmentMeanBackwardParams& p, at::ScalarType t) {
    dispatch_cuda(t, [&](auto tag) {
      check_cuda(afn::segment_mean_backward_cuda<typename decltype(tag)::type>(p, current_stream()),
                 "segment_mean_backward");
    });
  });
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CUDA, m) {
  m.impl("binarize_pack", &afn_ops::binarize_pack_cuda);
  m.impl("adjacent_hamming", &afn_ops::adjacent_hamming_cuda);
  m.impl("segment_boundaries", &afn_ops::segment_boundaries_cuda);
  m.impl("segment_mean", &afn_ops::segment_mean_cuda);
  m.impl("segment_mean_backward", &afn_ops::segment_mean_backward_cuda);
}
