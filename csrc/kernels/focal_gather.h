// focal_gather: compact batch of the selected frames of a frame tensor, TSM shift fused (spec §5, §8.3).
//
//   y[k, c, p] = x[src(index[k], c), c, p]        k in [0, K), c in [0, C), p in [0, H·W)
//   src(f, c)  = f+1 for c < fold (zeros when f is its clip's last frame), f−1 for fold <= c < 2·fold (zeros when f is
//                its clip's first frame), f otherwise; fold = ⌊C/8⌋, clip position t = f mod T. Without shift src = f.
// An index value outside [0, N) yields a zero frame (never an out-of-bounds read). Indices need not be sorted.
//
// With a lazy constant chain (chain.h; chain.start != nullptr) x holds stored rows with pending blocks, and every
// element read from source frame s gets s's own chain applied on the fly (the shifted-in neighbour channels get the
// NEIGHBOUR's chain): y = focal_gather(logical(x)) with logical = reference.chain_materialize. Zero-filled segments
// stay zero.
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct FocalGatherParams {
  const void* x;         // (N, C, H, W) contiguous, element type T
  const int64_t* index;  // (K,) frame rows of x
  void* y;               // (K, C, H, W) contiguous, element type T; must not overlap x
  int64_t N, C, HW, K;   // HW = H·W
  int64_t num_frames;    // T, clip length used by the shift; N % T == 0
  bool shift;
  ChainParams chain;     // optional: consts (L, C, H, W), start (N,)
};

// CPU twin; T in {float, double, half_t, bf16_t}.
template <typename T>
Status focal_gather_cpu(const FocalGatherParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
// CUDA launcher on `stream`; T in {float, double, __half, __nv_bfloat16}. Returns the launch error.
template <typename T>
cudaError_t focal_gather_cuda(const FocalGatherParams& p, cudaStream_t stream);
#endif

}  // namespace afn
