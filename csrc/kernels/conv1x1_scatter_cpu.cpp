// CPU twin of conv1x1_scatter.cu: same argument check, tiles, operand loads and epilogue (chained residual, selected
// rows only); loops with float accumulation instead of the grid and the tensor-core fragments (conv1x1_gemm.h).
#include "conv1x1_scatter_impl.h"

namespace afn {

template <typename T>
Status conv1x1_scatter_cpu(const Conv1x1ScatterParams& p) {
  if (!conv1x1_scatter_args_ok(p)) return Status::kInvalidValue;
  if (p.K == 0 || p.C == 0 || p.HW == 0) return Status::kOk;
  conv1x1_gemm_cpu<T>(Conv1x1ScatterOp<T>{p});
  return Status::kOk;
}

template Status conv1x1_scatter_cpu<float>(const Conv1x1ScatterParams&);
template Status conv1x1_scatter_cpu<double>(const Conv1x1ScatterParams&);
template Status conv1x1_scatter_cpu<half_t>(const Conv1x1ScatterParams&);
template Status conv1x1_scatter_cpu<bf16_t>(const Conv1x1ScatterParams&);

}  // namespace afn
