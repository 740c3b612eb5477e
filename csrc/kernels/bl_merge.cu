// bl_merge CUDA kernel. 2-D blocks of 256 threads as ample_fuse_blend: threadIdx.y picks one of 256/TX channel
// planes (n, c), threadIdx.x walks that plane's vectors (TX = the plane's vector count rounded up to a power of two,
// 32..256). little is read and out written with aligned vectors (coalesced); big is gathered per element from the
// mapped source row (neighbouring lanes read the same or adjacent big elements, served from L1/L2, so DRAM sees big
// about once: a quarter of little's size in layers 1–3).
#include "bl_merge_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) bl_merge_kernel(const BLMergeParams p) {
  const int64_t nvec = p.H * p.W / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t plane_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t plane = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; plane < p.NC;
       plane += plane_stride)
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      bl_merge_vec<T, V>(p, plane, i * V);
}

}  // namespace

template <typename T>
cudaError_t bl_merge_cuda(const BLMergeParams& p, cudaStream_t stream) {
  if (!bl_merge_args_ok(p)) return cudaErrorInvalidValue;
  if (p.NC == 0) return cudaSuccess;
  with_vec_width<T>(bl_merge_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    const int64_t nvec = p.H * p.W / V;
    int64_t tx = 32;
    while (tx < nvec && tx < kThreads) tx *= 2;
    const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(kThreads / tx));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(nvec, tx), kMaxGridX)),
                    static_cast<unsigned>(std::min<int64_t>(ceil_div(p.NC, block.y), kMaxGridY)));
    bl_merge_kernel<T, V><<<grid, block, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template cudaError_t bl_merge_cuda<float>(const BLMergeParams&, cudaStream_t);
template cudaError_t bl_merge_cuda<double>(const BLMergeParams&, cudaStream_t);
template cudaError_t bl_merge_cuda<__half>(const BLMergeParams&, cudaStream_t);
template cudaError_t bl_merge_cuda<__nv_bfloat16>(const BLMergeParams&, cudaStream_t);

}  // namespace afn
