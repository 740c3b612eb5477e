// CPU twin of select_frames.cu: same decisions (threshold_selected / topk_rank) and output writers; the GPU's block
// scan and per-clip shared-memory positions become sequential counters.
#include "select_frames_impl.h"

namespace afn {

template <typename T>
Status select_frames_cpu(const SelectFramesParams& p) {
  if (!select_frames_args_ok(p)) return Status::kInvalidValue;
  const int64_t N = p.B * p.T;
  if (p.mode == SelectMode::kThreshold) {
    for (int64_t l = 0; l < p.L; ++l) {
      int64_t count = 0;
      for (int64_t n = 0; n < N; ++n) {
        const bool sel = threshold_selected<T>(p, l * N + n);
        select_write_mask<T>(p, l * N + n, sel);
        if (sel) p.index[l * N + count++] = n;
      }
      for (int64_t i = count; i < N; ++i) p.index[l * N + i] = N;
      p.counts[l] = count;
    }
    return Status::kOk;
  }
  for (int64_t l = 0; l < p.L; ++l) p.counts[l] = p.B * p.k;
  for (int64_t clip = 0; clip < p.L * p.B; ++clip) {
    int64_t pos = 0;
    for (int64_t t = 0; t < p.T; ++t) {
      const bool sel = topk_selected<T>(p, clip, t);
      select_write_mask<T>(p, clip * p.T + t, sel);
      if (sel) topk_write_index(p, clip, t, pos++);
    }
  }
  return Status::kOk;
}

template Status select_frames_cpu<float>(const SelectFramesParams&);
template Status select_frames_cpu<double>(const SelectFramesParams&);
template Status select_frames_cpu<half_t>(const SelectFramesParams&);
template Status select_frames_cpu<bf16_t>(const SelectFramesParams&);

}  // namespace afn
