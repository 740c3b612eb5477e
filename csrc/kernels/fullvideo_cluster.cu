// fullvideo_cluster CUDA kernels (semantics in fullvideo_cluster.h).
//
// binarize_pack: one thread per output word (grid-stride over N·W); a thread reads its 32 consecutive elements.
// adjacent_hamming: one 256-thread block per pair (grid-stride over pairs); threads stride over the W words and a
//   shared-memory tree sums the 256 partial popcounts (exact integers, any order).
// segment_boundaries: one 256-thread block per video (grid-stride over B), all on the device (no host sync):
//   slope: (1) every thread ranks its pairs against the video (O(pairs) each); the pair of rank K − 2 — unique, the
//   order is total — is the threshold, kept in shared memory; (2) a pair is cut iff it is not ordered after the
//   threshold, and a cut pair's slot is 1 + the number of cut pairs before it (counted again, O(pairs) per cut
//   pair); (3) slots ≥ M get the video length. even: one thread per offset. cumulative: thread 0 scans the video
//   sequentially in exact integers (the rule is a sequential recurrence; N·K work at most per video).
// segment_mean: one thread per output element (row b·K + j, element e; e fastest, so the frame loop reads
//   coalesced rows).
// segment_mean_backward: one thread per grad_a element (frame row f, element e; e fastest): a binary search for the
//   video (O(log B)), a scan of the video's ≤ K segments, then ≤ K coalesced grad reads. Every row is written (0 for
//   frames in no segment), so grad_a needs no zero fill.
#include "fullvideo_cluster_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void binarize_pack_kernel(const BinarizePackParams p, int64_t W) {
  const int64_t total = p.N * W;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / W;
    p.bits[i] = binarize_word<T>(p, n, i - n * W);
  }
}

__global__ void __launch_bounds__(kThreads) adjacent_hamming_kernel(const AdjacentHammingParams p) {
  __shared__ int64_t part[kThreads];
  for (int64_t t = blockIdx.x; t + 1 < p.N; t += gridDim.x) {  // block-uniform trip count
    int64_t d = 0;
    for (int64_t w = threadIdx.x; w < p.W; w += kThreads) d += hamming_word(p, t, w);
    part[threadIdx.x] = d;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) p.h[t] = static_cast<int32_t>(part[0]);
    __syncthreads();  // part is rewritten by the next pair
  }
}

__global__ void __launch_bounds__(kThreads) segment_boundaries_kernel(const SegmentBoundariesParams p) {
  __shared__ int64_t thr_shared[1];  // (an array: the emulator maps array declarations)
  const int64_t K = p.K;
  for (int64_t b = blockIdx.x; b < p.B; b += gridDim.x) {  // block-uniform trip count
    const VideoRange v = video_range(p.frame_offsets, p.n_total, b);
    const int64_t m = boundary_segments(v.len, K);
    int64_t* off = p.offsets + b * (K + 1);
    if (p.rule == BoundaryRule::kCumulative) {  // a sequential scan: one thread per video
      if (threadIdx.x == 0) p.num_segments[b] = cumulative_video(p, v, off);
      continue;
    }
    if (p.rule == BoundaryRule::kEven) {
      for (int64_t j = threadIdx.x; j <= K; j += kThreads) off[j] = even_offset(v.len, K, j);
      if (threadIdx.x == 0) p.num_segments[b] = m;
      continue;
    }
    const int64_t pairs = v.len > 1 ? v.len - 1 : 0;
    if (threadIdx.x == 0) thr_shared[0] = K == 1 ? -2 : -1;
    __syncthreads();
    if (K > 1 && pairs > K - 1)
      for (int64_t t = threadIdx.x; t < pairs; t += kThreads)
        if (slope_rank(p, v.first, pairs, t) == K - 2) thr_shared[0] = t;  // exactly one writer
    __syncthreads();
    const int64_t thr = thr_shared[0];
    for (int64_t t = threadIdx.x; t < pairs; t += kThreads) {
      if (!slope_cut(p, v.first, thr, t)) continue;
      int64_t slot = 1;
      for (int64_t u = 0; u < t; ++u) slot += slope_cut(p, v.first, thr, u) ? 1 : 0;
      off[slot] = t + 1;
    }
    for (int64_t j = (m > 1 ? m : 1) + threadIdx.x; j <= K; j += kThreads) off[j] = v.len;
    if (threadIdx.x == 0) {
      off[0] = 0;
      p.num_segments[b] = m;
    }
    __syncthreads();  // thr_shared is rewritten for the next video
  }
}

template <typename T>
__global__ void segment_mean_kernel(const SegmentMeanParams p) {
  const int64_t total = p.B * p.K * p.D;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / p.D;
    segment_mean_element<T>(p, r, i - r * p.D);
  }
}

template <typename T>
__global__ void segment_mean_backward_kernel(const SegmentMeanBackwardParams p) {
  const int64_t total = p.n_total * p.D;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t f = i / p.D;
    segment_mean_backward_element<T>(p, f, i - f * p.D);
  }
}

unsigned grid_for(int64_t work) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(ceil_div(work, kThreads), kMaxGridX)));
}

}  // namespace

template <typename T>
cudaError_t binarize_pack_cuda(const BinarizePackParams& p, cudaStream_t stream) {
  if (!binarize_pack_args_ok(p)) return cudaErrorInvalidValue;
  const int64_t W = binarize_words(p.D);
  if (p.N * W == 0) return cudaSuccess;
  binarize_pack_kernel<T><<<grid_for(p.N * W), kThreads, 0, stream>>>(p, W);
  return cudaGetLastError();
}

cudaError_t adjacent_hamming_cuda(const AdjacentHammingParams& p, cudaStream_t stream) {
  if (!adjacent_hamming_args_ok(p)) return cudaErrorInvalidValue;
  if (p.N < 2) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(p.N - 1, kMaxGridX));
  adjacent_hamming_kernel<<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t segment_boundaries_cuda(const SegmentBoundariesParams& p, cudaStream_t stream) {
  if (!segment_boundaries_args_ok(p)) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(p.B, kMaxGridX));
  segment_boundaries_kernel<<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t segment_mean_cuda(const SegmentMeanParams& p, cudaStream_t stream) {
  if (!segment_mean_args_ok(p)) return cudaErrorInvalidValue;
  if (p.B * p.K * p.D == 0) return cudaSuccess;
  segment_mean_kernel<T><<<grid_for(p.B * p.K * p.D), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t segment_mean_backward_cuda(const SegmentMeanBackwardParams& p, cudaStream_t stream) {
  if (!segment_mean_backward_args_ok(p)) return cudaErrorInvalidValue;
  if (p.n_total * p.D == 0) return cudaSuccess;
  segment_mean_backward_kernel<T><<<grid_for(p.n_total * p.D), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t binarize_pack_cuda<float>(const BinarizePackParams&, cudaStream_t);
template cudaError_t binarize_pack_cuda<double>(const BinarizePackParams&, cudaStream_t);
template cudaError_t binarize_pack_cuda<__half>(const BinarizePackParams&, cudaStream_t);
template cudaError_t binarize_pack_cuda<__nv_bfloat16>(const BinarizePackParams&, cudaStream_t);
template cudaError_t segment_mean_cuda<float>(const SegmentMeanParams&, cudaStream_t);
template cudaError_t segment_mean_cuda<double>(const SegmentMeanParams&, cudaStream_t);
template cudaError_t segment_mean_cuda<__half>(const SegmentMeanParams&, cudaStream_t);
template cudaError_t segment_mean_cuda<__nv_bfloat16>(const SegmentMeanParams&, cudaStream_t);
template cudaError_t segment_mean_backward_cuda<float>(const SegmentMeanBackwardParams&, cudaStream_t);
template cudaError_t segment_mean_backward_cuda<double>(const SegmentMeanBackwardParams&, cudaStream_t);
template cudaError_t segment_mean_backward_cuda<__half>(const SegmentMeanBackwardParams&, cudaStream_t);
template cudaError_t segment_mean_backward_cuda<__nv_bfloat16>(const SegmentMeanBackwardParams&, cudaStream_t);

}  // namespace afn
