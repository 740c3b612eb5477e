// bl_merge: bLVNet's big-little merge (spec blvnet-tam.md §8.2), one pass, the upsampled big map never materialised.
//
//   out[n, c, i, j] = act( big[n, c, src_H(i), src_W(j)] + little[n, c, i, j] )
//
// src_* is PyTorch's legacy nearest map (index_math.h nearest_src: an exact 2× replication in layers 1–3, the
// identity in layer0 where both maps have the same size), act = ReLU if relu else identity. One add in float (double
// for float64) and one rounding: bit-identical to the reference's upsample + add + ReLU in every dtype.
// out == little is safe (each element is read before it is written, by the same thread).
#pragma once

#include "common.h"

namespace afn {

struct BLMergeParams {
  const void* big;     // (N, C, h, w) contiguous
  const void* little;  // (N, C, H, W) contiguous
  void* out;           // (N, C, H, W) contiguous; may equal little
  int64_t NC, h, w, H, W;
  bool relu;
};

template <typename T>
Status bl_merge_cpu(const BLMergeParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t bl_merge_cuda(const BLMergeParams& p, cudaStream_t stream);
#endif

}  // namespace afn
