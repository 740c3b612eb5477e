// focal_gather CUDA kernel. Grid: y = output frame k (grid-stride over K), x = vectors of that frame's plane
// (grid-stride). Each block resolves its frame's three source frames once (index[k] is a broadcast load); each thread
// then moves V-element vectors (16 bytes when H·W and the pointers allow): coalesced reads of contiguous segments of
// the source frames, coalesced writes of the contiguous output frame.
#include "focal_gather_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) focal_gather_kernel(const FocalGatherParams p) {
  const int64_t nvec = p.C * p.HW / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = blockIdx.y; k < p.K; k += gridDim.y) {
    const FrameSources s = shift_sources(p.index[k], p.N, p.num_frames, p.shift);
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      focal_gather_vec<T, V>(p, s, k, i * V);
  }
}

}  // namespace

template <typename T>
cudaError_t focal_gather_cuda(const FocalGatherParams& p, cudaStream_t stream) {
  if (!focal_gather_args_ok(p)) return cudaErrorInvalidValue;
  const int64_t plane = p.C * p.HW;
  if (p.K == 0 || plane == 0) return cudaSuccess;
  with_vec_width<T>(focal_gather_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(plane / V, kThreads), kMaxGridX)),
                    static_cast<unsigned>(std::min<int64_t>(p.K, kMaxGridY)));
    focal_gather_kernel<T, V><<<grid, kThreads, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template cudaError_t focal_gather_cuda<float>(const FocalGatherParams&, cudaStream_t);
template cudaError_t focal_gather_cuda<double>(const FocalGatherParams&, cudaStream_t);
template cudaError_t focal_gather_cuda<__half>(const FocalGatherParams&, cudaStream_t);
template cudaError_t focal_gather_cuda<__nv_bfloat16>(const FocalGatherParams&, cudaStream_t);

}  // namespace afn
