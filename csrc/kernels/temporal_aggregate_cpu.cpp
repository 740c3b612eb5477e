// CPU twin of temporal_aggregate.cu.
#include "temporal_aggregate_impl.h"

namespace afn {

template <typename T>
Status temporal_aggregate_cpu(const TemporalAggregateParams& p) {
  if (!temporal_aggregate_args_ok(p)) return Status::kInvalidValue;
  if (p.N * p.C * p.HW == 0) return Status::kOk;
  const int64_t NC = p.N * p.C;
  with_vec_width<T>(temporal_aggregate_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < NC; ++plane)  // blockIdx.y / threadIdx.y
      for (int64_t e = 0; e < p.HW; e += V) {
        if (p.out2 != nullptr)
          temporal_aggregate_vec<T, V, 2>(p, plane, e);
        else
          temporal_aggregate_vec<T, V, 1>(p, plane, e);
      }
  });
  return Status::kOk;
}

template Status temporal_aggregate_cpu<float>(const TemporalAggregateParams&);
template Status temporal_aggregate_cpu<double>(const TemporalAggregateParams&);
template Status temporal_aggregate_cpu<half_t>(const TemporalAggregateParams&);
template Status temporal_aggregate_cpu<bf16_t>(const TemporalAggregateParams&);

}  // namespace afn
