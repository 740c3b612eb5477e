// The tiled GEMM shared by gather_conv1x1 and conv1x1_scatter (CUDA kernel in conv1x1_gemm.cuh, CPU twin below).
//
// Per selected frame k and group g the 1×1 convolution is the GEMM  Out (M × P) = A (M × Kd) · B (Kd × P)  with
// M = output channels of the group, Kd = its input channels, P = H·W pixels: A = the group's weight rows (row-major,
// leading dimension Kd), B = the group's input channel planes (row c = one channel plane, contiguous pixels). The
// output is tiled in kGemmTileM × kGemmTileN blocks, the reduction in kGemmTileK chunks; out-of-range rows / columns
// of a tile are zero-padded when loaded and never stored, so every size is handled.
//
// An operation supplies the operand and epilogue functions as an `Op` (AFN_HD members, used by the CUDA block and the
// CPU twin alike):
//   Frame frame(k)                     per-frame state (resolved once per frame: TSM sources, selected row, …)
//   bool  frame_valid(fr)              false: nothing is computed or written for this frame
//   T     a(g, m, c)                   A element (the weight), m < M, c < Kd
//   T     b(fr, g, c, px)              B element (the gathered input, chains applied), c < Kd, px < P
//   void  store(fr, k, g, m, px, acc)  epilogue of one output element from its float accumulator
//   int64 frames(), groups(), m(), kdim(), n()
// Accumulation: float, each output summing its products in ascending c from +0 (the emulated tensor-core kernel and
// the CPU twin therefore agree bit for bit; real tensor cores may sum a 16-chunk in another order).
#pragma once

#include <vector>

#include "common.h"

namespace afn {

constexpr int kGemmTileM = 64;  // output channels per block tile
constexpr int kGemmTileN = 64;  // pixels per block tile
constexpr int kGemmTileK = 32;  // input channels per shared-memory stage

// Operand value as the GEMM sees it: the storage value in float32 (exact for float16 / bfloat16 / float32; float64
// rounds to float32 as the reference's `.float()`).
template <typename T>
AFN_HD float gemm_operand(T v) {
  return static_cast<float>(Num<T>::to_acc(v));
}

// acc·scale + bias with two float32 roundings (the reference's `conv · scale + bias`), never contracted to an FMA.
AFN_HD float gemm_affine(float acc, float scale, float bias) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(acc, scale), bias);
#else
  const volatile float prod = acc * scale;
  return prod + bias;
#endif
}

AFN_HD float gemm_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// float result -> storage type, ReLU first when asked (NaN kept, as torch.relu).
template <typename T>
AFN_HD T gemm_round(float v, bool relu) {
  if (relu && v < 0.0f) v = 0.0f;
  return Num<T>::from_acc(static_cast<typename Num<T>::acc_t>(v));
}

// Grid of block tiles: x = pixel tiles, y = group × output-channel tiles, z = frames (grid-stride).
inline int64_t gemm_tiles_m(int64_t M) { return ceil_div(M, kGemmTileM); }
inline int64_t gemm_tiles_n(int64_t P) { return ceil_div(P, kGemmTileN); }
// The grid must fit: at most 65535 (group, channel-tile) pairs in y and 2^31 − 1 pixel tiles in x (checked by both
// ops' argument checks, so the CPU twins refuse exactly what the launchers refuse).
inline bool gemm_grid_fits(int64_t groups, int64_t M, int64_t P) {
  return groups * gemm_tiles_m(M) <= kMaxGridY && gemm_tiles_n(P) <= 0x7fffffff;
}

// CPU twin of the CUDA block loop: the same tiles, zero padding and operand / epilogue functions, float
// accumulation in the same order (ascending c within and across the K chunks).
template <typename T, class Op>
void conv1x1_gemm_cpu(const Op& op) {
  const int64_t M = op.m(), Kd = op.kdim(), P = op.n();
  std::vector<float> a(kGemmTileM * kGemmTileK), b(kGemmTileK * kGemmTileN), acc(kGemmTileM * kGemmTileN);
  for (int64_t k = 0; k < op.frames(); ++k) {  // blockIdx.z
    const auto fr = op.frame(k);
    if (!op.frame_valid(fr)) continue;
    for (int64_t g = 0; g < op.groups(); ++g)                          // blockIdx.y / tiles_m
      for (int64_t m0 = 0; m0 < M; m0 += kGemmTileM)                   // blockIdx.y % tiles_m
        for (int64_t n0 = 0; n0 < P; n0 += kGemmTileN) {               // blockIdx.x
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t k0 = 0; k0 < Kd; k0 += kGemmTileK) {
            for (int r = 0; r < kGemmTileM; ++r)
              for (int c = 0; c < kGemmTileK; ++c)
                a[r * kGemmTileK + c] =
                    (m0 + r < M && k0 + c < Kd) ? gemm_operand(op.a(g, m0 + r, k0 + c)) : 0.0f;
            for (int r = 0; r < kGemmTileK; ++r)
              for (int c = 0; c < kGemmTileN; ++c)
                b[r * kGemmTileN + c] =
                    (k0 + r < Kd && n0 + c < P) ? gemm_operand(op.b(fr, g, k0 + r, n0 + c)) : 0.0f;
            for (int i = 0; i < kGemmTileM; ++i)
              for (int kk = 0; kk < kGemmTileK; ++kk) {
                const float av = a[i * kGemmTileK + kk];
                float* row = acc.data() + i * kGemmTileN;
                const float* brow = b.data() + kk * kGemmTileN;
                for (int j = 0; j < kGemmTileN; ++j) row[j] += av * brow[j];
              }
          }
          for (int r = 0; r < kGemmTileM && m0 + r < M; ++r)
            for (int c = 0; c < kGemmTileN && n0 + c < P; ++c) op.store(fr, k, g, m0 + r, n0 + c, acc[r * kGemmTileN + c]);
        }
  }
}

}  // namespace afn
