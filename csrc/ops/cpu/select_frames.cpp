// CPU implementation of afnet_edge::select_frames (and its .out overload): the CPU twin in
// csrc/kernels/select_frames_cpu.cpp.
#include <torch/library.h>

#include "../dispatch.h"
#include "../ops_impl.h"

namespace afn_ops {
namespace {

// Runs the CPU twin for the tensor's dtype.
const auto launch = [](const afn::SelectFramesParams& p, at::ScalarType t) {
  dispatch_cpu(
      t, [&](auto tag) { check_status(afn::select_frames_cpu<typename decltype(tag)::type>(p), "select_frames"); });
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_frames_cpu(const at::Tensor& logits, c10::string_view mode,
                                                                 int64_t k) {
  return select_frames_impl(logits, std::string(mode), k, SelectOut{nullptr, nullptr, nullptr}, launch);
}

void select_frames_out_cpu(const at::Tensor& logits, c10::string_view mode, int64_t k, at::Tensor& index,
                           at::Tensor& counts, at::Tensor& mask) {
  select_frames_impl(logits, std::string(mode), k, SelectOut{&index, &counts, &mask}, launch);
}

}  // namespace
}  // namespace afn_ops

TORCH_LIBRARY_IMPL(afnet_edge, CPU, m) {
  m.impl("select_frames", &afn_ops::select_frames_cpu);
  m.impl("select_frames.out", &afn_ops::select_frames_out_cpu);
}
