// CPU twin of focal_gather.cu: same argument check, vector width and per-vector body; the CUDA grid becomes loops.
#include "focal_gather_impl.h"

namespace afn {

template <typename T>
Status focal_gather_cpu(const FocalGatherParams& p) {
  if (!focal_gather_args_ok(p)) return Status::kInvalidValue;
  const int64_t plane = p.C * p.HW;
  if (p.K == 0 || plane == 0) return Status::kOk;
  with_vec_width<T>(focal_gather_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t k = 0; k < p.K; ++k) {  // blockIdx.y
      const FrameSources s = shift_sources(p.index[k], p.N, p.num_frames, p.shift);
      for (int64_t e = 0; e < plane; e += V) focal_gather_vec<T, V>(p, s, k, e);  // threads of the grid-stride loop
    }
  });
  return Status::kOk;
}

template Status focal_gather_cpu<float>(const FocalGatherParams&);
template Status focal_gather_cpu<double>(const FocalGatherParams&);
template Status focal_gather_cpu<half_t>(const FocalGatherParams&);
template Status focal_gather_cpu<bf16_t>(const FocalGatherParams&);

}  // namespace afn
