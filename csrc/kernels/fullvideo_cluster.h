// fullvideo_cluster: the on-device clustering of "No frame left behind" (spec full-video-clustering.md §3, §4, §4.6,
// §11.2). Four kernels, semantics = afnet_edge/kernels/fullvideo_reference.py (the tests hold them to it bit for bit):
//
//   binarize_pack       y (N, D) float -> bits (N, W) int32, W = ⌈D/32⌉: bit i of word w = (y[n, 32·w + i] > 0),
//                       LSB first, padding bits 0 (NaN and −0 give 0, as torch's `>`).
//   adjacent_hamming    bits (N, W) -> h (max(N−1, 0),) int32: h[t] = popcount(bits[t] XOR bits[t+1]), exact.
//   segment_boundaries  h (N_total−1,) int32, frame_offsets (B+1,) int64 or null (one video) -> offsets (B, K+1)
//                       int64, num_segments (B,) int64. Rules: slope (cut after the K−1 largest (h_t, t), ties to the
//                       later t), even, and cumulative (the repaired rule in exact integers: frame k ≥ 1 starts a
//                       segment iff K·H_k > c·H, then c += 1; H = 0 → even); all with the reference's N < K policy
//                       (one segment per frame). cumulative_official (float64, the release's bug) is not a kernel.
//   segment_mean        a (N_total, D), offsets, num_segments, frame_offsets -> out (B·K, D): row b·K + j = mean of
//                       segment min(j, M_b − 1) of video b, summed in frame order in Num<T>::acc_t (fp32 for
//                       fp32/fp16/bf16), one division, one rounding to T.
//   segment_mean_backward  grad (B·K, D), offsets, num_segments, frame_offsets -> grad_a (N_total, D): the adjoint of
//                       segment_mean. Row f (local frame t of video b, in segment s < M_b) = (Σ grad rows b·K + j with
//                       min(j, M_b − 1) = s, summed in j order in acc_t) / |S_s|, one rounding to T; a frame in no
//                       segment (t ≥ offsets[M_b], cumulative_official's dropped band) gets 0. Equals the reference's
//                       autograd gradient bit for bit (same sum order, same division).
//
// Ragged batches (CSR, §4.6): video b = rows frame_offsets[b] .. frame_offsets[b+1]. The kernels never read or write
// out of bounds whatever the offsets hold (they are clamped into [0, N_total] and made non-decreasing per video);
// the torch ops validate the values where that costs no device sync (CPU tensors).
#pragma once

#include "common.h"

namespace afn {

struct BinarizePackParams {
  const void* y;   // (N, D) contiguous
  int32_t* bits;   // (N, W) contiguous
  int64_t N, D;
};

struct AdjacentHammingParams {
  const int32_t* bits;  // (N, W) contiguous
  int32_t* h;           // (max(N − 1, 0),)
  int64_t N, W;
};

enum class BoundaryRule : int { kSlope = 0, kEven = 1, kCumulative = 2 };

struct SegmentBoundariesParams {
  const int32_t* h;              // (N_total − 1,)
  const int64_t* frame_offsets;  // (B + 1,) or null: one video of N_total frames (then B must be 1)
  int64_t* offsets;              // (B, K + 1)
  int64_t* num_segments;         // (B,)
  int64_t n_total, B, K;
  BoundaryRule rule;
};

struct SegmentMeanParams {
  const void* a;                 // (N_total, D) contiguous
  const int64_t* offsets;        // (B, K + 1) local frame indices
  const int64_t* num_segments;   // (B,)
  const int64_t* frame_offsets;  // (B + 1,) or null (one video)
  void* out;                     // (B·K, D) contiguous
  int64_t n_total, B, K, D;
};

// Backward of segment_mean: same fields, read the other way round (grad = d out, grad_a = d a).
struct SegmentMeanBackwardParams {
  const void* grad;              // (B·K, D) contiguous
  const int64_t* offsets;        // (B, K + 1) local frame indices
  const int64_t* num_segments;   // (B,)
  const int64_t* frame_offsets;  // (B + 1,) or null (one video)
  void* grad_a;                  // (N_total, D) contiguous
  int64_t n_total, B, K, D;
};

template <typename T>
Status binarize_pack_cpu(const BinarizePackParams& p);
Status adjacent_hamming_cpu(const AdjacentHammingParams& p);
Status segment_boundaries_cpu(const SegmentBoundariesParams& p);
template <typename T>
Status segment_mean_cpu(const SegmentMeanParams& p);
template <typename T>
Status segment_mean_backward_cpu(const SegmentMeanBackwardParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t binarize_pack_cuda(const BinarizePackParams& p, cudaStream_t stream);
cudaError_t adjacent_hamming_cuda(const AdjacentHammingParams& p, cudaStream_t stream);
cudaError_t segment_boundaries_cuda(const SegmentBoundariesParams& p, cudaStream_t stream);
template <typename T>
cudaError_t segment_mean_cuda(const SegmentMeanParams& p, cudaStream_t stream);
template <typename T>
cudaError_t segment_mean_backward_cuda(const SegmentMeanBackwardParams& p, cudaStream_t stream);
#endif

}  // namespace afn
