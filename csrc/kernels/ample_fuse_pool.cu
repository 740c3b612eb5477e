// ample_fuse_pool CUDA kernel. 256-thread blocks; LANES threads per channel plane (32: 8 planes per block, reduced with
// warp shuffles; 256: one plane per block, warp shuffles then a shared-memory pass over the 8 warp sums). Reads are
// vectorised and coalesced (lane i takes vectors i, i+LANES, …); accumulation in float (double for float64). For the
// exact ×1/×2 resizes xl is summed unweighted and scaled once; otherwise per-axis weights cnt(r) are built per block
// in shared memory (h + w ints).
#include "ample_fuse_pool_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename T, int V, int LANES>
__global__ void __launch_bounds__(kThreads)
    ample_fuse_pool_kernel(const AmpleFusePoolParams p, const AmplePoolPlan pl) {
  using acc_t = typename Num<T>::acc_t;
  extern __shared__ int32_t wts[];  // h + w source weights, only when !pl.uniform
  __shared__ acc_t warp_sums[kThreads / 32];
  if (!pl.uniform) {  // block-uniform condition
    ample_pool_weights(p, wts, threadIdx.x, blockDim.x);
    __syncthreads();
  }
  constexpr int kPlanesPerBlock = kThreads / LANES;
  const int group = threadIdx.x / LANES, lane = threadIdx.x % LANES;
  // Trip count is block-uniform (depends on blockIdx only), so the barriers below are reached by all threads.
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kPlanesPerBlock; base < p.NC;
       base += static_cast<int64_t>(gridDim.x) * kPlanesPerBlock) {
    const int64_t plane = base + group;
    acc_t s = plane < p.NC ? pool_lane_partial<T, V>(p, pl, wts, plane, lane, LANES) : acc_t(0);
    s = warp_sum(s);
    if constexpr (LANES > 32) {
      if ((lane & 31) == 0) warp_sums[lane >> 5] = s;
      __syncthreads();
      if (lane < 32) s = warp_sum(lane < LANES / 32 ? warp_sums[lane] : acc_t(0));
      __syncthreads();  // warp_sums is rewritten in the next iteration
    }
    if (lane == 0 && plane < p.NC) store1(static_cast<T*>(p.out) + plane, pool_finish<T>(s, p));
  }
}

template <typename T, int V, int LANES>
cudaError_t launch_pool(const AmpleFusePoolParams& p, const AmplePoolPlan& pl, cudaStream_t stream) {
  constexpr int kPlanesPerBlock = kThreads / LANES;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(p.NC, kPlanesPerBlock), kMaxGridX));
  const size_t smem = pl.uniform ? 0 : sizeof(int32_t) * static_cast<size_t>(p.h + p.w);
  ample_fuse_pool_kernel<T, V, LANES><<<blocks, kThreads, smem, stream>>>(p, pl);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t ample_fuse_pool_cuda(const AmpleFusePoolParams& p, cudaStream_t stream) {
  if (!ample_fuse_pool_args_ok(p)) return cudaErrorInvalidValue;
  if (p.NC == 0) return cudaSuccess;
  const AmplePoolPlan pl = ample_fuse_pool_plan<T>(p);
  cudaError_t err = cudaSuccess;
  with_vec_width<T>(pl.vec, [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    err = ample_fuse_pool_lanes(p) == 32 ? launch_pool<T, V, 32>(p, pl, stream)
                                         : launch_pool<T, V, kThreads>(p, pl, stream);
  });
  return err;
}

template cudaError_t ample_fuse_pool_cuda<float>(const AmpleFusePoolParams&, cudaStream_t);
template cudaError_t ample_fuse_pool_cuda<double>(const AmpleFusePoolParams&, cudaStream_t);
template cudaError_t ample_fuse_pool_cuda<__half>(const AmpleFusePoolParams&, cudaStream_t);
template cudaError_t ample_fuse_pool_cuda<__nv_bfloat16>(const AmpleFusePoolParams&, cudaStream_t);

}  // namespace afn
