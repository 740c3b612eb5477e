// temporal_aggregate: bLVNet-TAM's Temporal Aggregation Module (spec blvnet-tam.md §4.1, §8.2), one read and one
// write per element, ReLU fused; and its pair-aware stage form temporal_aggregate_pair (§4.3), which writes both
// branch inputs from one read of the pair features.
//
//   out[n, c, e] = act( Σ_{i=0}^{K−1} w[i, c] · x[n + i − r, c, e] ),   r = K / 2, K odd,
//
// where the term is dropped (zero padding in time) when frame t + i − r of row n's clip falls outside [0, T)
// (t = n mod T, clip = ⌊n / T⌋). act = ReLU if relu else identity. Weights are float32 (K, C); arithmetic in float
// (double for float64), one rounding to the output type.
//
// Pair mode (weight2 != nullptr): the same taps with a second weight set write a second output from the same loads:
// out = act(Σ w·x), out2 = act(Σ w2·x). temporal_aggregate_pair passes (w_big, w_little) -> (big_in, little_in).
//
// x must not overlap out / out2 (every output element reads K neighbouring frames, written by other threads).
#pragma once

#include "common.h"

namespace afn {

struct TemporalAggregateParams {
  const void* x;            // (N, C, H, W) contiguous, N = B·T clip-major
  const float* weight;      // (K, C) float32, tap i at temporal offset i − K/2
  void* out;                // (N, C, H, W) contiguous
  const float* weight2;     // pair mode: second (K, C) weight set, else nullptr
  void* out2;               // pair mode: second output (N, C, H, W), else nullptr
  int64_t N, C, HW, T, K;   // HW = H·W; T = frames (pairs) per clip, N % T == 0; K odd, 1 <= K <= 63
  bool relu;
};

template <typename T>
Status temporal_aggregate_cpu(const TemporalAggregateParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t temporal_aggregate_cuda(const TemporalAggregateParams& p, cudaStream_t stream);
#endif

}  // namespace afn
