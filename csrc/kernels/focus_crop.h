// focus_crop: AdaFocus' batched patch crop at data-dependent positions (spec adafocus.md §2.3, §6.3), one pass, no
// sampling grid materialised, and its two backward kernels (w.r.t. the frames and w.r.t. the positions).
//
// Per frame n with action a = (a_y, a_x) (clamped to [0, 1]; NaN reads as 0), in the coordinate type A (float; double
// for float64 frames): y₁ = a_y·(H − P), x₁ = a_x·(W − P), y₀ = ⌊y₁⌋, f_y = y₁ − y₀ (likewise x). Then
//
//   bilinear:  out[n, c, i, j] = top·(1 − f_y) + bottom·f_y,   top = I₀₀·(1 − f_x) + I₀₁·f_x,
//                                                               bottom = I₁₀·(1 − f_x) + I₁₁·f_x,
//              I_uv = x[n, c, y₀ + i + u, x₀ + j + v], read as 0 past the far edge (row H or column W: weight 0 in
//              exact arithmetic, grid_sample's zero padding), arithmetic in acc_t, one rounding;
//   floor:     out[n, c, i, j] = x[n, c, y₀ + i, x₀ + j]   (AdaFocus V1: a copy, bit-exact).
//
// Backward (bilinear; floor is the same with f_y = f_x = 0):
//   grad_x[n, c, y, x] = Σ_{u,v ∈ {0,1}} w_uv · g[n, c, y − y₀ − u, x − x₀ − v]   (terms with the index outside [0, P)
//                        dropped; w₀₀ = (1−f_y)(1−f_x), w₀₁ = (1−f_y)f_x, w₁₀ = f_y(1−f_x), w₁₁ = f_y f_x): a gather,
//                        every element written once, no atomics;
//   grad_centres[n] = ( (H−P)·Σ g·[(1−f_x)(I₁₀ − I₀₀) + f_x(I₁₁ − I₀₁)],  (W−P)·Σ g·[(1−f_y)(I₀₁ − I₀₀) + f_y(I₁₁ − I₁₀)] )
//                     over (c, i, j), zero where a was clamped (a < 0 or a > 1, NaN), and zero in floor mode. One
//                     block per frame: kReduceThreads partial sums (thread t takes elements t, t + kReduceThreads, …)
//                     folded by a fixed tree, so the CPU twin reproduces the CUDA summation order.
#pragma once

#include "common.h"

namespace afn {

enum class CropMode : int { kBilinear = 0, kFloor = 1 };

// Threads per block of the centres-gradient reduction (also the CPU twin's lane count).
constexpr int kFocusReduceThreads = 256;

struct FocusCropParams {
  const void* x;        // (N, C, H, W) contiguous, element type T
  const void* centres;  // (N, 2) contiguous (row, col) actions, coordinate type A (float; double for T = double)
  void* out;            // (N, C, P, P) contiguous
  int64_t N, C, H, W, P;  // 1 <= P <= min(H, W)
  CropMode mode;
};

struct FocusCropGradXParams {
  const void* grad;     // (N, C, P, P) contiguous, T
  const void* centres;  // (N, 2), A
  void* grad_x;         // (N, C, H, W) contiguous, T
  int64_t N, C, H, W, P;
  CropMode mode;
};

struct FocusCropGradCentresParams {
  const void* grad;     // (N, C, P, P) contiguous, T
  const void* x;        // (N, C, H, W) contiguous, T
  const void* centres;  // (N, 2), A
  void* grad_centres;   // (N, 2), A
  int64_t N, C, H, W, P;
  CropMode mode;
};

template <typename T>
Status focus_crop_cpu(const FocusCropParams& p);
template <typename T>
Status focus_crop_grad_x_cpu(const FocusCropGradXParams& p);
template <typename T>
Status focus_crop_grad_centres_cpu(const FocusCropGradCentresParams& p);

#if defined(AFN_HAS_CUDA_TYPES)
template <typename T>
cudaError_t focus_crop_cuda(const FocusCropParams& p, cudaStream_t stream);
template <typename T>
cudaError_t focus_crop_grad_x_cuda(const FocusCropGradXParams& p, cudaStream_t stream);
template <typename T>
cudaError_t focus_crop_grad_centres_cuda(const FocusCropGradCentresParams& p, cudaStream_t stream);
#endif

}  // namespace afn
