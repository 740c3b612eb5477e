// ample_fuse_blend CUDA kernel. 2-D blocks of 256 threads: threadIdx.y picks one of 256/TX channel planes (n, c),
// threadIdx.x walks that plane's vectors (TX = the plane's vector count rounded up to a power of two, 32..256, so
// small 14×14 planes do not leave most of a block idle). a[n, c] is read once per thread row; xb is read and out
// written with aligned vectors (coalesced); xl is gathered per element from the mapped source row (consecutive lanes
// read the same or neighbouring xl elements, served from L1/L2, so DRAM sees xl about once).
#include "ample_fuse_blend_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) ample_fuse_blend_kernel(const AmpleFuseBlendParams p) {
  const int64_t nvec = p.H * p.W / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t plane_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t plane = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; plane < p.NC;
       plane += plane_stride) {
    const auto a = Num<T>::to_acc(load1(static_cast<const T*>(p.a) + plane));
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride)
      ample_blend_vec<T, V>(p, plane, a, i * V);
  }
}

}  // namespace

template <typename T>
cudaError_t ample_fuse_blend_cuda(const AmpleFuseBlendParams& p, cudaStream_t stream) {
  if (!ample_fuse_blend_args_ok(p)) return cudaErrorInvalidValue;
  if (p.NC == 0) return cudaSuccess;
  const int64_t HW = p.H * p.W;
  with_vec_width<T>(ample_fuse_blend_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    const int64_t nvec = HW / V;
    int64_t tx = 32;
    while (tx < nvec && tx < kThreads) tx *= 2;
    const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(kThreads / tx));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(ceil_div(nvec, tx), kMaxGridX)),
                    static_cast<unsigned>(std::min<int64_t>(ceil_div(p.NC, block.y), kMaxGridY)));
    ample_fuse_blend_kernel<T, V><<<grid, block, 0, stream>>>(p);
  });
  return cudaGetLastError();
}

template cudaError_t ample_fuse_blend_cuda<float>(const AmpleFuseBlendParams&, cudaStream_t);
template cudaError_t ample_fuse_blend_cuda<double>(const AmpleFuseBlendParams&, cudaStream_t);
template cudaError_t ample_fuse_blend_cuda<__half>(const AmpleFuseBlendParams&, cudaStream_t);
template cudaError_t ample_fuse_blend_cuda<__nv_bfloat16>(const AmpleFuseBlendParams&, cudaStream_t);

}  // namespace afn
