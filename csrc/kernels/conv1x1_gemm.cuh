// CUDA block loop of the tiled 1×1-convolution GEMM (conv1x1_gemm.h) on tensor cores, nvcuda::wmma 16×16×16
// fragments with float accumulators (float16 / bfloat16 operands, sm_80+). Included by the .cu files only; their
// kernels declare the shared tiles (the CUDA emulator rewrites __shared__ declarations in .cu files only).
//
// Block: 128 threads = 4 warps in a 2 × 2 arrangement over the 64 × 64 output tile; each warp owns 32 × 32 = 2 × 2
// accumulator fragments. Per 32-channel K chunk every thread loads 16 elements of the A tile (weights, consecutive
// threads on consecutive input channels of a weight row) and 16 of the B tile (consecutive threads on consecutive
// pixels of a channel plane: coalesced, with the TSM source and the lazy chain resolved per element) into shared
// memory, zero-padding rows and columns outside the matrices; after a barrier each warp runs 2 k-steps of 2 × 2
// mma_sync. The accumulators are stored to a shared float tile and the epilogue (affine, residual, φ, one rounding)
// runs per element with consecutive threads on consecutive pixels (coalesced writes of the output rows).
// Shared memory: A 64 × 40, B 32 × 72 (T), C 64 × 68 (float) = 27 KiB; leading dimensions padded by 16 bytes so
// that the fragment rows do not fall on the same banks, and multiples of 8 (T) / 4 (float) elements with every
// fragment pointer 32-byte aligned, as wmma requires.
#pragma once

#include <mma.h>

#include "conv1x1_gemm.h"

namespace afn {

constexpr int kGemmThreads = 128;
constexpr int kGemmLdA = kGemmTileK + 8;
constexpr int kGemmLdB = kGemmTileN + 8;
constexpr int kGemmLdC = kGemmTileN + 4;
constexpr int kGemmSmemA = kGemmTileM * kGemmLdA;
constexpr int kGemmSmemB = kGemmTileK * kGemmLdB;
constexpr int kGemmSmemC = kGemmTileM * kGemmLdC;

// One block: output tile (blockIdx.y → group and channel tile, blockIdx.x → pixel tile) of every frame
// k = blockIdx.z, blockIdx.z + gridDim.z, … . Every branch around a barrier is block-uniform.
template <typename T, class Op>
__device__ __forceinline__ void conv1x1_gemm_block(const Op& op, T* As, T* Bs, float* Cs) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  const int64_t M = op.m(), Kd = op.kdim(), P = op.n();
  const int64_t tiles_m = (M + kGemmTileM - 1) / kGemmTileM;
  const int64_t g = blockIdx.y / tiles_m, m0 = (blockIdx.y % tiles_m) * kGemmTileM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemmTileN;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, wm = warp / 2, wn = warp % 2;
  for (int64_t k = blockIdx.z; k < op.frames(); k += gridDim.z) {
    const auto fr = op.frame(k);
    if (!op.frame_valid(fr)) continue;  // depends on k only: block-uniform
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    for (int64_t k0 = 0; k0 < Kd; k0 += kGemmTileK) {
      for (int q = tid; q < kGemmTileM * kGemmTileK; q += kGemmThreads) {
        const int r = q / kGemmTileK, c = q % kGemmTileK;
        As[r * kGemmLdA + c] = (m0 + r < M && k0 + c < Kd) ? op.a(g, m0 + r, k0 + c) : zero_value<T>();
      }
      for (int q = tid; q < kGemmTileK * kGemmTileN; q += kGemmThreads) {
        const int r = q / kGemmTileN, c = q % kGemmTileN;
        Bs[r * kGemmLdB + c] = (k0 + r < Kd && n0 + c < P) ? op.b(fr, g, k0 + r, n0 + c) : zero_value<T>();
      }
      __syncthreads();
      for (int kk = 0; kk < kGemmTileK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[2];
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * kGemmLdA + kk, kGemmLdA);
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], Bs + kk * kGemmLdB + wn * 32 + j * 16, kGemmLdB);
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      __syncthreads();  // As / Bs are rewritten by the next chunk
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * kGemmLdC + wn * 32 + j * 16, acc[i][j], kGemmLdC,
                                wmma::mem_row_major);
    __syncthreads();
    for (int q = tid; q < kGemmTileM * kGemmTileN; q += kGemmThreads) {
      const int r = q / kGemmTileN, c = q % kGemmTileN;
      if (m0 + r < M && n0 + c < P) op.store(fr, k, g, m0 + r, n0 + c, Cs[r * kGemmLdC + c]);
    }
    __syncthreads();  // Cs is rewritten for the next frame
  }
#endif
}

// Grid for a GEMM with `groups` groups of M output channels over P pixels and `frames` frames (gemm_grid_fits holds:
// checked with the arguments).
inline dim3 conv1x1_gemm_grid(int64_t frames, int64_t groups, int64_t M, int64_t P) {
  return dim3(static_cast<unsigned>(gemm_tiles_n(P)), static_cast<unsigned>(groups * gemm_tiles_m(M)),
              static_cast<unsigned>(std::min<int64_t>(frames, kMaxGridY)));
}

}  // namespace afn
