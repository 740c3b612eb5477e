// CPU twin of ample_fuse_blend.cu.
#include "ample_fuse_blend_impl.h"

namespace afn {

template <typename T>
Status ample_fuse_blend_cpu(const AmpleFuseBlendParams& p) {
  if (!ample_fuse_blend_args_ok(p)) return Status::kInvalidValue;
  if (p.NC == 0) return Status::kOk;
  const int64_t HW = p.H * p.W;
  with_vec_width<T>(ample_fuse_blend_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < p.NC; ++plane) {  // blockIdx.y
      const auto a = Num<T>::to_acc(load1(static_cast<const T*>(p.a) + plane));
      for (int64_t e = 0; e < HW; e += V) ample_blend_vec<T, V>(p, plane, a, e);
    }
  });
  return Status::kOk;
}

template Status ample_fuse_blend_cpu<float>(const AmpleFuseBlendParams&);
template Status ample_fuse_blend_cpu<double>(const AmpleFuseBlendParams&);
template Status ample_fuse_blend_cpu<half_t>(const AmpleFuseBlendParams&);
template Status ample_fuse_blend_cpu<bf16_t>(const AmpleFuseBlendParams&);

}  // namespace afn
