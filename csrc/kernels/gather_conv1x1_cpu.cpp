// CPU twin of gather_conv1x1.cu: same argument check, tiles, operand loads (shift + chains) and epilogue; the CUDA grid
// and the tensor-core fragments become loops with float accumulation (conv1x1_gemm.h).
#include "gather_conv1x1_impl.h"

namespace afn {

template <typename T>
Status gather_conv1x1_cpu(const GatherConv1x1Params& p) {
  if (!gather_conv1x1_args_ok(p)) return Status::kInvalidValue;
  if (p.K == 0 || p.O == 0 || p.HW == 0) return Status::kOk;
  conv1x1_gemm_cpu<T>(GatherConv1x1Op<T>{p});
  return Status::kOk;
}

template Status gather_conv1x1_cpu<float>(const GatherConv1x1Params&);
template Status gather_conv1x1_cpu<double>(const GatherConv1x1Params&);
template Status gather_conv1x1_cpu<half_t>(const GatherConv1x1Params&);
template Status gather_conv1x1_cpu<bf16_t>(const GatherConv1x1Params&);

}  // namespace afn
