// CPU implementation of afnet_edge::bl_merge: the CPU twin in csrc/kernels/bl_merge_cpu.cpp.
#include <torch/library.h>

#include "../blvnet_impl.h"
#include "../dispatch.h"

namespace afn_ops {
namespace {

const auto launch = [](const afn::BLMergeParams& p, at::ScalarType t) {
  dispatch_cpu(t, [&](auto tag) { check_status(afn::bl_merge_cpu<typename decltype(tag)::type>(p), "bl_merge"); });
};

at::Tensor bl_merge_cpu(const at::Tensor& big, const at::Tensor& little, bool relu) {
  return bl_merge_impl(big, little, relu, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) { m.impl("bl_merge", &afn_ops::bl_merge_cpu); }
