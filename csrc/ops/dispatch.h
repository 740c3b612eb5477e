// dtype -> kernel element type, and kernel status -> torch error, for the CPU and CUDA op implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "common.h"  // csrc/kernels

namespace afn_ops {

template <typename T>
struct Tag {
  using type = T;
};

// CPU twins take the host storage types (same bits as at::Half / at::BFloat16).
template <typename F>
void dispatch_cpu(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat:
      f(Tag<float>{});
      break;
    case at::kDouble:
      f(Tag<double>{});
      break;
    case at::kHalf:
      f(Tag<afn::half_t>{});
      break;
    case at::kBFloat16:
      f(Tag<afn::bf16_t>{});
      break;
    default:
      TORCH_CHECK_TYPE(false, "unsupported dtype ", t);
  }
}

inline void check_status(afn::Status st, const char* op) {
  TORCH_CHECK(st == afn::Status::kOk, "afnet_edge::", op, " (CPU): ", afn::status_string(st));
}

#if defined(AFN_HAS_CUDA_TYPES)
template <typename F>
void dispatch_cuda(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat:
      f(Tag<float>{});
      break;
    case at::kDouble:
      f(Tag<double>{});
      break;
    case at::kHalf:
      f(Tag<__half>{});
      break;
    case at::kBFloat16:
      f(Tag<__nv_bfloat16>{});
      break;
    default:
      TORCH_CHECK_TYPE(false, "unsupported dtype ", t);
  }
}

// Every launch is checked: argument errors come back as cudaErrorInvalidValue, launch errors from cudaGetLastError.
inline void check_cuda(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, "afnet_edge::", op, " (CUDA): ", cudaGetErrorString(err));
}
#endif

}  // namespace afn_ops
