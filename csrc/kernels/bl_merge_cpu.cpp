// CPU twin of bl_merge.cu.
#include "bl_merge_impl.h"

namespace afn {

template <typename T>
Status bl_merge_cpu(const BLMergeParams& p) {
  if (!bl_merge_args_ok(p)) return Status::kInvalidValue;
  if (p.NC == 0) return Status::kOk;
  const int64_t HW = p.H * p.W;
  with_vec_width<T>(bl_merge_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < p.NC; ++plane)  // blockIdx.y / threadIdx.y
      for (int64_t e = 0; e < HW; e += V) bl_merge_vec<T, V>(p, plane, e);
  });
  return Status::kOk;
}

template Status bl_merge_cpu<float>(const BLMergeParams&);
template Status bl_merge_cpu<double>(const BLMergeParams&);
template Status bl_merge_cpu<half_t>(const BLMergeParams&);
template Status bl_merge_cpu<bf16_t>(const BLMergeParams&);

}  // namespace afn
