// CPU twin of ample_fuse_pool.cu: same plan, same per-lane partial sums (with the GPU's lane count), then their sum.
#include <vector>

#include "ample_fuse_pool_impl.h"

namespace afn {

template <typename T>
Status ample_fuse_pool_cpu(const AmpleFusePoolParams& p) {
  using acc_t = typename Num<T>::acc_t;
  if (!ample_fuse_pool_args_ok(p)) return Status::kInvalidValue;
  if (p.NC == 0) return Status::kOk;
  const AmplePoolPlan pl = ample_fuse_pool_plan<T>(p);
  std::vector<int32_t> wts(static_cast<size_t>(p.h + p.w));
  ample_pool_weights(p, wts.data(), 0, 1);
  const int64_t lanes = ample_fuse_pool_lanes(p);
  with_vec_width<T>(pl.vec, [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < p.NC; ++plane) {
      acc_t total = acc_t(0);
      for (int64_t lane = 0; lane < lanes; ++lane)
        total += pool_lane_partial<T, V>(p, pl, wts.data(), plane, lane, lanes);
      T out = pool_finish<T>(total, p);
      store1(static_cast<T*>(p.out) + plane, out);
    }
  });
  return Status::kOk;
}

template Status ample_fuse_pool_cpu<float>(const AmpleFusePoolParams&);
template Status ample_fuse_pool_cpu<double>(const AmpleFusePoolParams&);
template Status ample_fuse_pool_cpu<half_t>(const AmpleFusePoolParams&);
template Status ample_fuse_pool_cpu<bf16_t>(const AmpleFusePoolParams&);

}  // namespace afn
