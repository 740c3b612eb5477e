// CPU twins of fullvideo_cluster.cu: the same per-word / per-pair / per-element bodies (fullvideo_cluster_impl.h);
// the GPU's block reductions and per-video blocks become sequential loops.
#include "fullvideo_cluster_impl.h"

namespace afn {

template <typename T>
Status binarize_pack_cpu(const BinarizePackParams& p) {
  if (!binarize_pack_args_ok(p)) return Status::kInvalidValue;
  const int64_t W = binarize_words(p.D);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t w = 0; w < W; ++w) p.bits[n * W + w] = binarize_word<T>(p, n, w);
  return Status::kOk;
}

Status adjacent_hamming_cpu(const AdjacentHammingParams& p) {
  if (!adjacent_hamming_args_ok(p)) return Status::kInvalidValue;
  for (int64_t t = 0; t + 1 < p.N; ++t) {
    int64_t d = 0;
    for (int64_t w = 0; w < p.W; ++w) d += hamming_word(p, t, w);
    p.h[t] = static_cast<int32_t>(d);
  }
  return Status::kOk;
}

Status segment_boundaries_cpu(const SegmentBoundariesParams& p) {
  if (!segment_boundaries_args_ok(p)) return Status::kInvalidValue;
  const int64_t K = p.K;
  for (int64_t b = 0; b < p.B; ++b) {
    const VideoRange v = video_range(p.frame_offsets, p.n_total, b);
    const int64_t m = boundary_segments(v.len, K);
    int64_t* off = p.offsets + b * (K + 1);
    p.num_segments[b] = m;
    if (p.rule == BoundaryRule::kCumulative) {
      p.num_segments[b] = cumulative_video(p, v, off);
      continue;
    }
    if (p.rule == BoundaryRule::kEven) {
      for (int64_t j = 0; j <= K; ++j) off[j] = even_offset(v.len, K, j);
      continue;
    }
    const int64_t pairs = v.len > 1 ? v.len - 1 : 0;
    int64_t thr = K == 1 ? -2 : -1;
    if (K > 1 && pairs > K - 1)
      for (int64_t t = 0; t < pairs; ++t)
        if (slope_rank(p, v.first, pairs, t) == K - 2) thr = t;
    off[0] = 0;
    int64_t slot = 1;
    for (int64_t t = 0; t < pairs; ++t)
      if (slope_cut(p, v.first, thr, t)) off[slot++] = t + 1;
    for (int64_t j = m > 1 ? m : 1; j <= K; ++j) off[j] = v.len;
  }
  return Status::kOk;
}

template <typename T>
Status segment_mean_cpu(const SegmentMeanParams& p) {
  if (!segment_mean_args_ok(p)) return Status::kInvalidValue;
  for (int64_t r = 0; r < p.B * p.K; ++r)
    for (int64_t e = 0; e < p.D; ++e) segment_mean_element<T>(p, r, e);
  return Status::kOk;
}

template <typename T>
Status segment_mean_backward_cpu(const SegmentMeanBackwardParams& p) {
  if (!segment_mean_backward_args_ok(p)) return Status::kInvalidValue;
  for (int64_t f = 0; f < p.n_total; ++f)
    for (int64_t e = 0; e < p.D; ++e) segment_mean_backward_element<T>(p, f, e);
  return Status::kOk;
}

template Status binarize_pack_cpu<float>(const BinarizePackParams&);
template Status binarize_pack_cpu<double>(const BinarizePackParams&);
template Status binarize_pack_cpu<half_t>(const BinarizePackParams&);
template Status binarize_pack_cpu<bf16_t>(const BinarizePackParams&);
template Status segment_mean_cpu<float>(const SegmentMeanParams&);
template Status segment_mean_cpu<double>(const SegmentMeanParams&);
template Status segment_mean_cpu<half_t>(const SegmentMeanParams&);
template Status segment_mean_cpu<bf16_t>(const SegmentMeanParams&);
template Status segment_mean_backward_cpu<float>(const SegmentMeanBackwardParams&);
template Status segment_mean_backward_cpu<double>(const SegmentMeanBackwardParams&);
template Status segment_mean_backward_cpu<half_t>(const SegmentMeanBackwardParams&);
template Status segment_mean_backward_cpu<bf16_t>(const SegmentMeanBackwardParams&);

}  // namespace afn
