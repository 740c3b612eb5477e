// ample_fuse_pool: per-frame, per-channel mean of up(xl) + xb (the input of dynamic_fusion, spec §2.3–2.4), reading
// each input once and never materialising up(xl).
//
//   out[n, c] = ( Σ_{i<H, j<W} xb[n, c, i, j]  +  Σ_{r<h, s<w} cnt_H(r)·cnt_W(s)·xl[n, c, r, s] ) / (H·W)
//
// where up is PyTorch's legacy nearest resize (h, w) -> (H, W) (index_math.h nearest_src) and cnt(r) is how many
// destination rows/columns read source r (2 for the exact ×2 case). Accumulation in float (double for float64).
//
// With a lazy constant chain (chain.h; chain.start != nullptr, normally upto = L) xb holds stored rows with pending
// blocks and the pool reads the logical xb: every xb element of frame n = plane / C gets n's chain applied as it is
// loaded (C = channels per frame; consts (L, C, H, W)).
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct AmpleFusePoolParams {
  const void* xl;  // (N, C, h, w) contiguous: ample map after base_transform
  const void* xb;  // (N, C, H, W) contiguous: focal map
  void* out;       // (N, C) contiguous
  int64_t NC;      // N·C channel planes
  int64_t h, w, H, W;
  int64_t C = 0;      // channels per frame; read only with a chain (C | NC)
  ChainParams chain;  // optional: consts (L, C, H, W), start (NC / C,)
};

// Largest h + w the kernels accept (the per-axis source weights live in shared memory).
constexpr int64_t kAmplePoolMaxWeights = 8192;

template <typename T>
Status ample_fuse_pool_cpu(const AmpleFusePoolParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t ample_fuse_pool_cuda(const AmpleFusePoolParams& p, cudaStream_t stream);
#endif

}  // namespace afn
