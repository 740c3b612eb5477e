// focal_scatter: the full frame set after a compact focal body (spec §8.2–8.4), in one pass.
//
//   out[f, c, p] = φ(residual[f, c, p] + (f == index[k] ? y[k, c, p] : K[c, p]))
//
// with K the (C, H, W) constant map of an all-zero body input (nullptr: zeros) and φ = ReLU if relu. k(f) is found by
// binary search in the sorted, unique index list; index values that match no frame are ignored, so unvalidated input
// never causes an out-of-bounds read (an unsorted list may leave selected frames unmatched: they get K).
// out may be the residual buffer itself (in place); y and K must not overlap out.
//
// With a lazy constant chain (chain.h; chain.start != nullptr; const_map must be nullptr) the residual holds stored
// rows with pending blocks (reference.lazy_focal_scatter):
//   out[f] = φ(logical(residual)[f] + y[k])   for selected f = index[k]   (chain of f applied to the residual row)
//   out[f] = residual[f]                      otherwise, as stored (its blocks stay pending; the caller sets
//                                             start[index] = upto + 1 afterwards — the kernel never writes start)
// In place (out == residual) the unselected rows are not touched at all: the pass costs the selected rows only.
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct FocalScatterParams {
  const void* residual;   // (N, C, H, W) contiguous
  const void* y;          // (K, C, H, W) contiguous: body outputs of the selected frames, y[k] for frame index[k]
  const int64_t* index;   // (K,) sorted ascending, unique
  const void* const_map;  // (C, H, W) contiguous, or nullptr for zeros
  void* out;              // (N, C, H, W) contiguous; may equal residual
  int64_t N, C, HW, K;
  bool relu;
  ChainParams chain;      // optional: consts (L, C, H, W), start (N,)
};

template <typename T>
Status focal_scatter_cpu(const FocalScatterParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t focal_scatter_cuda(const FocalScatterParams& p, cudaStream_t stream);
#endif

}  // namespace afn
