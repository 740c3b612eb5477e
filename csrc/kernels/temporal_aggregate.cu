// temporal_aggregate CUDA kernel. 2-D blocks of 256 threads as ample_fuse_blend: threadIdx.y picks one of 256/TX
// channel planes (n, c), threadIdx.x walks that plane's vectors (TX = the plane's vector count rounded up to a power
// of two, 32..256). Each thread loads the K neighbouring-frame vectors at its (c, h, w) (aligned, coalesced); the same
// input vector is read by the K output frames that use it, which run in nearby blocks and hit L2, so DRAM sees each
// input about once; each output is written once (twice as many in pair mode, from the same loads).
#include "temporal_aggregate_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T, int V, int NOUT>
__global__ void __launch_bounds__(kThreads) temporal_aggregate_kernel(const TemporalAggregateParams p) {
  const int64_t nvec = p.HW / V;
  const int64_t NC = p.N * p.C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t plane_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t plane = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; plane < NC; plane += plane_stride)
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      temporal_aggregate_vec<T, V, NOUT>(p, plane, i * V);
}

}  // namespace

template <typename T>
cudaError_t temporal_aggregate_cuda(const TemporalAggregateParams& p, cudaStream_t stream) {
  if (!temporal_aggregate_args_ok(p)) return cudaErrorInvalidValue;
  if (p.N * p.C * p.HW == 0) return cudaSuccess;
  with_vec_width<T>(temporal_aggregate_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    const int64_t nvec = p.HW / V;
    int64_t tx = 32;
    while (tx < nvec && tx < kThreads) tx *= 2;
    const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(kThreads / tx));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(nvec, tx), kMaxGridX)),
                    static_cast<unsigned>(std::min<int64_t>(ceil_div(p.N * p.C, block.y), kMaxGridY)));
    if (p.out2 != nullptr)
      temporal_aggregate_kernel<T, V, 2><<<grid, block, 0, stream>>>(p);
    else
      temporal_aggregate_kernel<T, V, 1><<<grid, block, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template cudaError_t temporal_aggregate_cuda<float>(const TemporalAggregateParams&, cudaStream_t);
template cudaError_t temporal_aggregate_cuda<double>(const TemporalAggregateParams&, cudaStream_t);
template cudaError_t temporal_aggregate_cuda<__half>(const TemporalAggregateParams&, cudaStream_t);
template cudaError_t temporal_aggregate_cuda<__nv_bfloat16>(const TemporalAggregateParams&, cudaStream_t);

}  // namespace afn
