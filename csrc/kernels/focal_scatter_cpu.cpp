// CPU twin of focal_scatter.cu.
#include "focal_scatter_impl.h"

namespace afn {

template <typename T>
Status focal_scatter_cpu(const FocalScatterParams& p) {
  if (!focal_scatter_args_ok(p)) return Status::kInvalidValue;
  const int64_t plane = p.C * p.HW;
  if (p.N == 0 || plane == 0) return Status::kOk;
  with_vec_width<T>(focal_scatter_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t f = 0; f < p.N; ++f) {  // blockIdx.y
      const int64_t k = find_selected(p.index, p.K, f);
      if (focal_scatter_skips(p, k)) continue;
      for (int64_t e = 0; e < plane; e += V) focal_scatter_vec<T, V>(p, f, k, e);
    }
  });
  return Status::kOk;
}

template Status focal_scatter_cpu<float>(const FocalScatterParams&);
template Status focal_scatter_cpu<double>(const FocalScatterParams&);
template Status focal_scatter_cpu<half_t>(const FocalScatterParams&);
template Status focal_scatter_cpu<bf16_t>(const FocalScatterParams&);

}  // namespace afn
