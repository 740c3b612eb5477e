// gather_conv1x1 CUDA kernel: the tensor-core GEMM of conv1x1_gemm.cuh with the gather (TSM shift + lazy chains) as
// its B-operand load and affine + ReLU as its epilogue (gather_conv1x1_impl.h).
#include "conv1x1_gemm.cuh"
#include "gather_conv1x1_impl.h"

namespace afn {
namespace {

template <typename T>
__global__ void __launch_bounds__(kGemmThreads) gather_conv1x1_kernel(const GatherConv1x1Params p) {
  __shared__ __align__(32) T As[kGemmSmemA];
  __shared__ __align__(32) T Bs[kGemmSmemB];
  __shared__ __align__(32) float Cs[kGemmSmemC];
  conv1x1_gemm_block<T>(GatherConv1x1Op<T>{p}, As, Bs, Cs);
}

}  // namespace

template <typename T>
cudaError_t gather_conv1x1_cuda(const GatherConv1x1Params& p, cudaStream_t stream) {
  if (!gather_conv1x1_args_ok(p)) return cudaErrorInvalidValue;
  if (p.K == 0 || p.O == 0 || p.HW == 0) return cudaSuccess;
  const dim3 grid = conv1x1_gemm_grid(p.K, p.groups, p.O / p.groups, p.HW);
  gather_conv1x1_kernel<T><<<grid, kGemmThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t gather_conv1x1_cuda<__half>(const GatherConv1x1Params&, cudaStream_t);
template cudaError_t gather_conv1x1_cuda<__nv_bfloat16>(const GatherConv1x1Params&, cudaStream_t);

}  // namespace afn
