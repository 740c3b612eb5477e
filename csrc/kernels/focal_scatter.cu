// focal_scatter CUDA kernel. Grid: y = output frame f (grid-stride over N), x = vectors of the frame plane. Each
// block looks up k(f) once (binary search over the sorted index list, ⌈log2 K⌉ broadcast loads, no shared memory or
// barrier needed), so the per-element work is two vector loads (residual + y[k] or K), an add, ReLU, one vector store.
// In place (out == residual) is safe: every element is read and written by the same thread.
#include "focal_scatter_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) focal_scatter_kernel(const FocalScatterParams p) {
  const int64_t nvec = p.C * p.HW / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t f = blockIdx.y; f < p.N; f += gridDim.y) {
    const int64_t k = find_selected(p.index, p.K, f);
    if (focal_scatter_skips(p, k)) continue;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      focal_scatter_vec<T, V>(p, f, k, i * V);
  }
}

}  // namespace

template <typename T>
cudaError_t focal_scatter_cuda(const FocalScatterParams& p, cudaStream_t stream) {
  if (!focal_scatter_args_ok(p)) return cudaErrorInvalidValue;
  const int64_t plane = p.C * p.HW;
  if (p.N == 0 || plane == 0) return cudaSuccess;
  with_vec_width<T>(focal_scatter_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(plane / V, kThreads), kMaxGridX)),
                    static_cast<unsigned>(std::min<int64_t>(p.N, kMaxGridY)));
    focal_scatter_kernel<T, V><<<grid, kThreads, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template cudaError_t focal_scatter_cuda<float>(const FocalScatterParams&, cudaStream_t);
template cudaError_t focal_scatter_cuda<double>(const FocalScatterParams&, cudaStream_t);
template cudaError_t focal_scatter_cuda<__half>(const FocalScatterParams&, cudaStream_t);
template cudaError_t focal_scatter_cuda<__nv_bfloat16>(const FocalScatterParams&, cudaStream_t);

}  // namespace afn
