// conv1x1_scatter: the last 1×1 convolution of a focal body with the scatter as its epilogue (issue 16; semantics:
// reference.conv1x1_scatter). For each selected frame f = index[k]:
//
//   out[f, o, p] = φ(scale[o] · Σ_c W[o, c] · h[k, g(o)·Cg + c, p] + bias[o] + float(chain_f(residual[f, o, p])))
//
// per group g: Cg = C_h/groups, Og = C/groups, W is (C, Cg); chain_f applies frame f's pending blocks (chain.h) in the
// storage type; everything else in float32, one rounding; φ = ReLU if relu. Only the rows index[k] of `out` are
// written — every other row is left as it is (under lazy chains it stays pending), so `out` may be `residual` itself
// (in place). index must be sorted and unique for a defined result (two entries naming one frame race); entries
// outside [0, N) are skipped (never an out-of-bounds access). The caller advances chain.start afterwards.
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct Conv1x1ScatterParams {
  const void* h;          // (K, Ch, H, W) contiguous, element type T
  const void* weight;     // (C, Ch/groups) contiguous, element type T
  const float* scale;     // (C,)
  const float* bias;      // (C,)
  const void* residual;   // (N, C, H, W) contiguous, element type T
  const int64_t* index;   // (K,) sorted ascending, unique
  void* out;              // (N, C, H, W) contiguous; may equal residual; must not overlap h / weight
  int64_t N, C, Ch, HW, K, groups;
  bool relu;
  ChainParams chain;  // pending chains of residual's rows (start == nullptr: none); consts (L, C, H, W)
};

// CPU twin; T in {float, double, half_t, bf16_t}.
template <typename T>
Status conv1x1_scatter_cpu(const Conv1x1ScatterParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
// CUDA launcher (tensor cores, sm_80+); T in {__half, __nv_bfloat16}.
template <typename T>
cudaError_t conv1x1_scatter_cuda(const Conv1x1ScatterParams& p, cudaStream_t stream);
#endif

}  // namespace afn
