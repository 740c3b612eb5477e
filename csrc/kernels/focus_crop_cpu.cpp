// CPU twin of focus_crop.cu (the centres-gradient reduction folds its kFocusReduceThreads lanes with the same tree).
#include "focus_crop_impl.h"

namespace afn {

template <typename T>
Status focus_crop_cpu(const FocusCropParams& p) {
  if (!focus_crop_args_ok(p)) return Status::kInvalidValue;
  if (p.N * p.C == 0) return Status::kOk;
  const int64_t NC = p.N * p.C, PP = p.P * p.P;
  with_vec_width<T>(focus_crop_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < NC; ++plane)  // blockIdx.y / threadIdx.y
      for (int64_t e = 0; e < PP; e += V) focus_crop_vec<T, V>(p, plane, e);
  });
  return Status::kOk;
}

template <typename T>
Status focus_crop_grad_x_cpu(const FocusCropGradXParams& p) {
  if (!focus_crop_grad_x_args_ok(p)) return Status::kInvalidValue;
  if (p.N * p.C == 0) return Status::kOk;
  const int64_t NC = p.N * p.C, HW = p.H * p.W;
  with_vec_width<T>(focus_crop_grad_x_vec_width<T>(p), [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    for (int64_t plane = 0; plane < NC; ++plane)
      for (int64_t e = 0; e < HW; e += V) focus_crop_grad_x_vec<T, V>(p, plane, e);
  });
  return Status::kOk;
}

template <typename T>
Status focus_crop_grad_centres_cpu(const FocusCropGradCentresParams& p) {
  using acc_t = typename Num<T>::acc_t;
  if (!focus_crop_grad_centres_args_ok(p)) return Status::kInvalidValue;
  acc_t part[2][kFocusReduceThreads];
  for (int64_t n = 0; n < p.N; ++n) {  // blockIdx.x
    for (int t = 0; t < kFocusReduceThreads; ++t) {
      acc_t s[2];
      focus_crop_centre_partial<T>(p, n, t, s);
      part[0][t] = s[0];
      part[1][t] = s[1];
    }
    for (int h = kFocusReduceThreads / 2; h > 0; h /= 2)
      for (int t = 0; t < h; ++t) {
        part[0][t] += part[0][t + h];
        part[1][t] += part[1][t + h];
      }
    focus_crop_centre_store<T>(p, n, part[0][0], part[1][0]);
  }
  return Status::kOk;
}

#define AFN_FOCUS_CROP_CPU(T)                                                 \
  template Status focus_crop_cpu<T>(const FocusCropParams&);                  \
  template Status focus_crop_grad_x_cpu<T>(const FocusCropGradXParams&);      \
  template Status focus_crop_grad_centres_cpu<T>(const FocusCropGradCentresParams&);
AFN_FOCUS_CROP_CPU(float)
AFN_FOCUS_CROP_CPU(double)
AFN_FOCUS_CROP_CPU(half_t)
AFN_FOCUS_CROP_CPU(bf16_t)
#undef AFN_FOCUS_CROP_CPU

}  // namespace afn
