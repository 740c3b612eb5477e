// gather_conv1x1: the first 1×1 convolution of a focal body on the selected frames, with the gather (TSM shift and
// pending lazy chains included) fused into the GEMM's operand load (issue 16; semantics: reference.gather_conv1x1).
//
//   out[k, o, p] = act(scale[o] · Σ_c W[o, c] · z_k[g(o)·Cg + c, p] + bias[o])     k in [0, K), o in [0, O), p < H·W
//   z_k[c', p]   = chain_{src}(x[src, c', p])   with src = src(index[k], c') the TSM source of focal_gather
//                  (focal_gather.h; zeros where the shift has no source) and chain_src the pending blocks of frame src
//                  (chain.h, on channel c' of the constant maps)
// per group g of `groups`: Cg = C/groups input channels, Og = O/groups output channels, W is (O, Cg). Products and
// sums in float32 from the storage-type operands, folded BN (scale, bias, float32) and ReLU (act, if relu) in float32,
// one rounding to the storage type. An index value outside [0, N) reads an all-zero input frame (out = act(bias)).
#pragma once

#include "chain.h"
#include "common.h"

namespace afn {

struct GatherConv1x1Params {
  const void* x;         // (N, C, H, W) contiguous, element type T
  const int64_t* index;  // (K,) frame rows of x (any order)
  const void* weight;    // (O, C/groups) contiguous, element type T
  const float* scale;    // (O,) folded BN scale
  const float* bias;     // (O,) folded BN bias
  void* out;             // (K, O, H, W) contiguous, element type T; must not overlap the inputs
  int64_t N, C, HW, K, O, groups;
  int64_t num_frames;  // clip length for the shift; N % num_frames == 0
  bool shift, relu;
  ChainParams chain;  // pending chains of x's rows (start == nullptr: none); consts (L, C, H, W)
};

// CPU twin (tiled like the CUDA kernel, float accumulation); T in {float, double, half_t, bf16_t}.
template <typename T>
Status gather_conv1x1_cpu(const GatherConv1x1Params& p);

#if defined(AFN_HAS_CUDA_TYPES)
// CUDA launcher (tensor cores, nvcuda::wmma, sm_80+); T in {__half, __nv_bfloat16}. float32 / float64 are not
// supported by the tensor-core kernel (the Python entry point falls back to the reference composition).
template <typename T>
cudaError_t gather_conv1x1_cuda(const GatherConv1x1Params& p, cudaStream_t stream);
#endif

}  // namespace afn
