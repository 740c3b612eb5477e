// int32 -> int64 widening of frame index lists, for TensorRT builds that hand the plugins int32 index tensors (the
// csrc/kernels launchers take int64, as torch does). One thread per index; the copy goes to the plugin's workspace.
#include <cstdint>

#include <cuda_runtime.h>

#include "afnPluginCommon.h"

namespace afn {
namespace trt {

namespace {
__global__ void widenKernel(int32_t const* __restrict__ in, int64_t* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<int64_t>(in[i]);
}
}  // namespace

cudaError_t widenIndex(int32_t const* in, int64_t* out, int64_t n, cudaStream_t stream) noexcept {
  if (n <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  widenKernel<<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

}  // namespace trt
}  // namespace afn
