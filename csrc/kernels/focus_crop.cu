// focus_crop CUDA kernels. Forward and grad_x: 2-D blocks of 256 threads as bl_merge: threadIdx.y picks one of 256/TX
// channel planes (n, c), threadIdx.x walks that plane's output vectors (TX = the plane's vector count rounded up to a
// power of two, 32..256); the written tensor is stored with aligned vectors, the sampled one read per element (the
// window's rows are contiguous, neighbouring lanes read neighbouring elements: coalesced, the +1 taps hit L1).
// grad_centres: one block of kFocusReduceThreads threads per frame (grid-stride over frames), per-thread partial sums
// folded by a shared-memory tree in a fixed order (the CPU twin folds the same way).
#include "focus_crop_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;
static_assert(kFocusReduceThreads == kThreads, "the reduction block is one 256-thread block");

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) focus_crop_kernel(const FocusCropParams p) {
  const int64_t nvec = p.P * p.P / V;
  const int64_t NC = p.N * p.C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t plane_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t plane = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; plane < NC; plane += plane_stride)
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      focus_crop_vec<T, V>(p, plane, i * V);
}

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) focus_crop_grad_x_kernel(const FocusCropGradXParams p) {
  const int64_t nvec = p.H * p.W / V;
  const int64_t NC = p.N * p.C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t plane_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t plane = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; plane < NC; plane += plane_stride)
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      focus_crop_grad_x_vec<T, V>(p, plane, i * V);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) focus_crop_grad_centres_kernel(const FocusCropGradCentresParams p) {
  using acc_t = typename Num<T>::acc_t;
  __shared__ acc_t part[2][kThreads];
  const int t = static_cast<int>(threadIdx.x);
  for (int64_t n = blockIdx.x; n < p.N; n += gridDim.x) {
    acc_t s[2];
    focus_crop_centre_partial<T>(p, n, t, s);
    part[0][t] = s[0];
    part[1][t] = s[1];
    __syncthreads();
    for (int h = kThreads / 2; h > 0; h /= 2) {
      if (t < h) {
        part[0][t] += part[0][t + h];
        part[1][t] += part[1][t + h];
      }
      __syncthreads();
    }
    if (t == 0) focus_crop_centre_store<T>(p, n, part[0][0], part[1][0]);
    __syncthreads();  // part is rewritten by the next frame
  }
}

// 2-D launch over NC planes of `elems` elements in vectors of V.
inline void plane_grid(int64_t elems, int V, int64_t NC, dim3& grid, dim3& block) {
  const int64_t nvec = elems / V;
  int64_t tx = 32;
  while (tx < nvec && tx < kThreads) tx *= 2;
  block = dim3(static_cast<unsigned>(tx), static_cast<unsigned>(kThreads / tx));
  grid = dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div(nvec, tx), kMaxGridX)),
              static_cast<unsigned>(std::min<int64_t>(ceil_div(NC, block.y), kMaxGridY)));
}

}  // namespace

template <typename T>
cudaError_t focus_crop_cuda(const FocusCropParams& p, cudaStream_t stream) {
  if (!focus_crop_args_ok(p)) return cudaErrorInvalidValue;
  if (p.N * p.C == 0) return cudaSuccess;
  with_vec_width<T>(focus_crop_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    dim3 grid, block;
    plane_grid(p.P * p.P, V, p.N * p.C, grid, block);
    focus_crop_kernel<T, V><<<grid, block, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t focus_crop_grad_x_cuda(const FocusCropGradXParams& p, cudaStream_t stream) {
  if (!focus_crop_grad_x_args_ok(p)) return cudaErrorInvalidValue;
  if (p.N * p.C == 0) return cudaSuccess;
  with_vec_width<T>(focus_crop_grad_x_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    dim3 grid, block;
    plane_grid(p.H * p.W, V, p.N * p.C, grid, block);
    focus_crop_grad_x_kernel<T, V><<<grid, block, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t focus_crop_grad_centres_cuda(const FocusCropGradCentresParams& p, cudaStream_t stream) {
  if (!focus_crop_grad_centres_args_ok(p)) return cudaErrorInvalidValue;
  if (p.N == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(p.N, kMaxGridX)));
  focus_crop_grad_centres_kernel<T><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t focus_crop_cuda<float>(const FocusCropParams&, cudaStream_t);
template cudaError_t focus_crop_cuda<double>(const FocusCropParams&, cudaStream_t);
template cudaError_t focus_crop_cuda<__half>(const FocusCropParams&, cudaStream_t);
template cudaError_t focus_crop_cuda<__nv_bfloat16>(const FocusCropParams&, cudaStream_t);
template cudaError_t focus_crop_grad_x_cuda<float>(const FocusCropGradXParams&, cudaStream_t);
template cudaError_t focus_crop_grad_x_cuda<double>(const FocusCropGradXParams&, cudaStream_t);
template cudaError_t focus_crop_grad_x_cuda<__half>(const FocusCropGradXParams&, cudaStream_t);
template cudaError_t focus_crop_grad_x_cuda<__nv_bfloat16>(const FocusCropGradXParams&, cudaStream_t);
template cudaError_t focus_crop_grad_centres_cuda<float>(const FocusCropGradCentresParams&, cudaStream_t);
template cudaError_t focus_crop_grad_centres_cuda<double>(const FocusCropGradCentresParams&, cudaStream_t);
template cudaError_t focus_crop_grad_centres_cuda<__half>(const FocusCropGradCentresParams&, cudaStream_t);
template cudaError_t focus_crop_grad_centres_cuda<__nv_bfloat16>(const FocusCropGradCentresParams&, cudaStream_t);

}  // namespace afn
