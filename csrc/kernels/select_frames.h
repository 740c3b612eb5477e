// select_frames: per-block frame index lists of one stage from its navigation logits, on the device.
//
// logits (L, B, T, 2): [..., 0] skip, [..., 1] select; margin m = select − skip (rounded to the logits' type).
//   threshold: frame (b, t) selected iff m > 0. index (L, B·T): row l starts with the counts[l] selected rows b·T + t
//              in ascending order (prefix-sum compaction), the rest is N = B·T.
//   topk:      per clip the k frames first under (m descending, NaN first, ties to the lower t). index (L, B·k):
//              clip b's frames at [b·k, b·k + k), ascending; counts[l] = B·k.
// mask (L, B, T): 1/0 in the logits' type. The result never needs the host: a stage costs at most one device→host
// copy of `counts` (threshold, to size the compact batches) and none for topk.
#pragma once

#include "common.h"

namespace afn {

enum class SelectMode : int { kThreshold = 0, kTopK = 1 };

struct SelectFramesParams {
  const void* logits;  // (L, B, T, 2) contiguous
  int64_t* index;      // (L, M) contiguous, M = B·T (threshold) or B·k (topk)
  int64_t* counts;     // (L,)
  void* mask;          // (L, B, T) contiguous, logits' type
  int64_t L, B, T;
  SelectMode mode;
  int64_t k;  // topk only, 0 <= k <= T
};

// Largest T the CUDA topk kernel handles (one clip's frames in one block).
constexpr int64_t kSelectMaxFrames = 1024;

template <typename T>
Status select_frames_cpu(const SelectFramesParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t select_frames_cuda(const SelectFramesParams& p, cudaStream_t stream);
#endif

}  // namespace afn
