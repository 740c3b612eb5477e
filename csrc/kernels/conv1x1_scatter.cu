// conv1x1_scatter CUDA kernel: the tensor-core GEMM of conv1x1_gemm.cuh over the compact body output, with the
// scatter (affine + chained residual + φ, written to the selected rows only) as its epilogue
// (conv1x1_scatter_impl.h).
#include "conv1x1_gemm.cuh"
#include "conv1x1_scatter_impl.h"

namespace afn {
namespace {

template <typename T>
__global__ void __launch_bounds__(kGemmThreads) conv1x1_scatter_kernel(const Conv1x1ScatterParams p) {
  __shared__ __align__(32) T As[kGemmSmemA];
  __shared__ __align__(32) T Bs[kGemmSmemB];
  __shared__ __align__(32) float Cs[kGemmSmemC];
  conv1x1_gemm_block<T>(Conv1x1ScatterOp<T>{p}, As, Bs, Cs);
}

}  // namespace

template <typename T>
cudaError_t conv1x1_scatter_cuda(const Conv1x1ScatterParams& p, cudaStream_t stream) {
  if (!conv1x1_scatter_args_ok(p)) return cudaErrorInvalidValue;
  if (p.K == 0 || p.C == 0 || p.HW == 0) return cudaSuccess;
  const dim3 grid = conv1x1_gemm_grid(p.K, p.groups, p.C / p.groups, p.HW);
  conv1x1_scatter_kernel<T><<<grid, kGemmThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t conv1x1_scatter_cuda<__half>(const Conv1x1ScatterParams&, cudaStream_t);
template cudaError_t conv1x1_scatter_cuda<__nv_bfloat16>(const Conv1x1ScatterParams&, cudaStream_t);

}  // namespace afn
