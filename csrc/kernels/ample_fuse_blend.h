// ample_fuse_blend: the attention-weighted merge of the AF stage (spec §2.3), one pass, up(xl) never materialised.
//
//   out[n, c, i, j] = act( a[n, c] · xl[n, c, src_H(i), src_W(j)] + (1 − a[n, c]) · xb[n, c, i, j] )
//
// src_* is PyTorch's legacy nearest map (index_math.h nearest_src), act = ReLU if relu else identity.
//
// With a lazy constant chain (chain.h; chain.start != nullptr, normally upto = L) xb holds stored rows with pending
// blocks and the blend reads the logical xb: every xb element of frame n = plane / C gets n's chain applied as it is
// loaded (C = channels per frame; consts (L, C, H, W)). out == xb stays safe (same thread reads, then writes).
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct AmpleFuseBlendParams {
  const void* xl;  // (N, C, h, w) contiguous
  const void* xb;  // (N, C, H, W) contiguous
  const void* a;   // (N, C) contiguous
  void* out;       // (N, C, H, W) contiguous; may equal xb (each element is read before it is written, same thread)
  int64_t NC, h, w, H, W;
  bool relu;
  int64_t C = 0;      // channels per frame; read only with a chain (C | NC)
  ChainParams chain;  // optional: consts (L, C, H, W), start (NC / C,)
};

template <typename T>
Status ample_fuse_blend_cpu(const AmpleFuseBlendParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t ample_fuse_blend_cuda(const AmpleFuseBlendParams& p, cudaStream_t stream);
#endif

}  // namespace afn
