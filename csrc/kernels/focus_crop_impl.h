// Shared (host + device) pieces of focus_crop and its backward kernels.
#pragma once

#include "focus_crop.h"

namespace afn {

inline bool focus_crop_sizes_ok(int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, CropMode mode) {
  if (N < 0 || C < 0 || P < 1 || H < P || W < P) return false;
  return mode == CropMode::kBilinear || mode == CropMode::kFloor;
}

inline bool focus_crop_args_ok(const FocusCropParams& p) {
  if (!focus_crop_sizes_ok(p.N, p.C, p.H, p.W, p.P, p.mode)) return false;
  return p.N * p.C == 0 || (p.x != nullptr && p.centres != nullptr && p.out != nullptr);
}

inline bool focus_crop_grad_x_args_ok(const FocusCropGradXParams& p) {
  if (!focus_crop_sizes_ok(p.N, p.C, p.H, p.W, p.P, p.mode)) return false;
  return p.N * p.C == 0 || (p.grad != nullptr && p.centres != nullptr && p.grad_x != nullptr);
}

inline bool focus_crop_grad_centres_args_ok(const FocusCropGradCentresParams& p) {
  if (!focus_crop_sizes_ok(p.N, p.C, p.H, p.W, p.P, p.mode)) return false;
  if (p.N > 0 && (p.centres == nullptr || p.grad_centres == nullptr)) return false;
  return p.N * p.C == 0 || (p.grad != nullptr && p.x != nullptr);
}

AFN_HD float crop_floor(float v) { return floorf(v); }
AFN_HD double crop_floor(double v) { return floor(v); }

// One axis of a frame's window: action a, span = extent − P. s0 = ⌊a·span⌋ (a clamped to [0, 1], NaN → 0), f the
// fraction, pass = whether a gradient reaches a (0 <= a <= 1, as torch.clamp's backward).
template <typename A>
struct CropAxis {
  int64_t s0;
  A f;
  bool pass;
};

template <typename A>
AFN_HD CropAxis<A> crop_axis(A a, int64_t span) {
  CropAxis<A> r;
  r.pass = a >= A(0) && a <= A(1);
  a = a > A(0) ? (a < A(1) ? a : A(1)) : A(0);
  const A pos = a * static_cast<A>(span);  // one rounding, as the reference's fp32 product
  const A b = crop_floor(pos);
  r.s0 = static_cast<int64_t>(b);
  r.s0 = r.s0 < 0 ? 0 : (r.s0 > span ? span : r.s0);  // never outside the frame, whatever the rounding
  r.f = pos - b;
  return r;
}

// Frame n's window: top-left (y0, x0) and the fractions (0 in floor mode).
template <typename A>
struct CropWindow {
  CropAxis<A> y, x;
};

template <typename A>
AFN_HD CropWindow<A> crop_window(const void* centres, int64_t n, int64_t H, int64_t W, int64_t P, CropMode mode) {
  const A* c = static_cast<const A*>(centres) + 2 * n;
  CropWindow<A> w{crop_axis<A>(load1(c), H - P), crop_axis<A>(load1(c + 1), W - P)};
  if (mode == CropMode::kFloor) w.y.f = w.x.f = A(0);
  return w;
}

// Vector widths: the output rows (forward: P; grad_x: W) are never split and the written tensor is aligned.
template <typename T>
inline int focus_crop_vec_width(const FocusCropParams& p) {
  const void* ptrs[1] = {p.out};
  return pick_vec_width<T>(p.P, ptrs, 1);
}

template <typename T>
inline int focus_crop_grad_x_vec_width(const FocusCropGradXParams& p) {
  const void* ptrs[1] = {p.grad_x};
  return pick_vec_width<T>(p.W, ptrs, 1);
}

// The four taps of output pixel (i, j) of channel plane `src` (y0 + i, x0 + j already applied); reads past row H − 1
// or column W − 1 give 0. `room` = W − (x0 + j): columns left in the row from the first tap.
template <typename T>
struct CropTaps {
  typename Num<T>::acc_t v00, v01, v10, v11;
};

template <typename T>
AFN_HD CropTaps<T> crop_taps(const T* src, int64_t W, bool row1, int64_t room) {
  using acc_t = typename Num<T>::acc_t;
  CropTaps<T> t;
  t.v00 = Num<T>::to_acc(load1(src));
  t.v01 = room > 1 ? Num<T>::to_acc(load1(src + 1)) : acc_t(0);
  t.v10 = row1 ? Num<T>::to_acc(load1(src + W)) : acc_t(0);
  t.v11 = row1 && room > 1 ? Num<T>::to_acc(load1(src + W + 1)) : acc_t(0);
  return t;
}

// Forward: elements [e, e+V) of output plane `plane` = n·C + c (row i = e / P, columns j0 .. j0+V−1).
template <typename T, int V>
AFN_HD void focus_crop_vec(const FocusCropParams& p, int64_t plane, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t n = plane / p.C;
  const CropWindow<acc_t> w = crop_window<acc_t>(p.centres, n, p.H, p.W, p.P, p.mode);
  const int64_t i = e / p.P, j0 = e - i * p.P;
  const int64_t y = w.y.s0 + i, x = w.x.s0 + j0;
  const T* src = static_cast<const T*>(p.x) + plane * (p.H * p.W) + y * p.W + x;
  Vec<T, V> o;
  if (p.mode == CropMode::kFloor) {
    AFN_UNROLL
    for (int q = 0; q < V; ++q) o.v[q] = load1(src + q);
  } else {
    const acc_t fy = w.y.f, fx = w.x.f;
    const bool row1 = y + 1 < p.H;
    AFN_UNROLL
    for (int q = 0; q < V; ++q) {
      const CropTaps<T> t = crop_taps(src + q, p.W, row1, p.W - x - q);
      const acc_t top = t.v00 * (acc_t(1) - fx) + t.v01 * fx;
      const acc_t bottom = t.v10 * (acc_t(1) - fx) + t.v11 * fx;
      o.v[q] = Num<T>::from_acc(top * (acc_t(1) - fy) + bottom * fy);
    }
  }
  store_vec<T, V>(static_cast<T*>(p.out) + plane * (p.P * p.P) + e, o);
}

// grad_x: elements [e, e+V) of input plane `plane` (row y = e / W). Each element gathers the (up to four) output
// gradients whose taps read it, in the fixed order (u, v) = (0,0), (0,1), (1,0), (1,1); floor mode: only (0, 0).
template <typename T, int V>
AFN_HD void focus_crop_grad_x_vec(const FocusCropGradXParams& p, int64_t plane, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t n = plane / p.C;
  const CropWindow<acc_t> w = crop_window<acc_t>(p.centres, n, p.H, p.W, p.P, p.mode);
  const acc_t fy = w.y.f, fx = w.x.f;
  const acc_t wts[2][2] = {{(acc_t(1) - fy) * (acc_t(1) - fx), (acc_t(1) - fy) * fx},
                           {fy * (acc_t(1) - fx), fy * fx}};
  const int taps = p.mode == CropMode::kFloor ? 1 : 2;
  const int64_t y = e / p.W, x0 = e - y * p.W;
  const T* g = static_cast<const T*>(p.grad) + plane * (p.P * p.P);
  Vec<T, V> o;
  AFN_UNROLL
  for (int q = 0; q < V; ++q) {
    acc_t acc = acc_t(0);
    for (int u = 0; u < taps; ++u) {
      const int64_t i = y - w.y.s0 - u;
      if (i < 0 || i >= p.P) continue;
      for (int v = 0; v < taps; ++v) {
        const int64_t j = x0 + q - w.x.s0 - v;
        if (j < 0 || j >= p.P) continue;
        acc += wts[u][v] * Num<T>::to_acc(load1(g + i * p.P + j));
      }
    }
    o.v[q] = Num<T>::from_acc(acc);
  }
  store_vec<T, V>(static_cast<T*>(p.grad_x) + plane * (p.H * p.W) + e, o);
}

// grad_centres, lane t of frame n's reduction: the partial sums over elements t, t + kFocusReduceThreads, … of the
// frame's (C, P, P) output gradient, d/dy₁ in s[0] and d/dx₁ in s[1].
template <typename T>
AFN_HD void focus_crop_centre_partial(const FocusCropGradCentresParams& p, int64_t n, int64_t t,
                                      typename Num<T>::acc_t* s) {
  using acc_t = typename Num<T>::acc_t;
  const CropWindow<acc_t> w = crop_window<acc_t>(p.centres, n, p.H, p.W, p.P, p.mode);
  const acc_t fy = w.y.f, fx = w.x.f;
  const int64_t PP = p.P * p.P, total = p.mode == CropMode::kFloor ? 0 : p.C * PP;  // floor: no gradient
  const T* g = static_cast<const T*>(p.grad) + n * (p.C * PP);
  const T* xn = static_cast<const T*>(p.x) + n * p.C * (p.H * p.W);
  acc_t sy = acc_t(0), sx = acc_t(0);
  for (int64_t e = t; e < total; e += kFocusReduceThreads) {
    const int64_t c = e / PP, r = e - c * PP, i = r / p.P, j = r - i * p.P;
    const int64_t y = w.y.s0 + i, x = w.x.s0 + j;
    const CropTaps<T> v = crop_taps(xn + c * (p.H * p.W) + y * p.W + x, p.W, y + 1 < p.H, p.W - x);
    const acc_t gv = Num<T>::to_acc(load1(g + e));
    sy += gv * ((acc_t(1) - fx) * (v.v10 - v.v00) + fx * (v.v11 - v.v01));
    sx += gv * ((acc_t(1) - fy) * (v.v01 - v.v00) + fy * (v.v11 - v.v10));
  }
  s[0] = sy;
  s[1] = sx;
}

// The reduced sums of frame n -> its gradient (zero where the action was clamped, and in floor mode).
template <typename T>
AFN_HD void focus_crop_centre_store(const FocusCropGradCentresParams& p, int64_t n, typename Num<T>::acc_t sy,
                                    typename Num<T>::acc_t sx) {
  using acc_t = typename Num<T>::acc_t;
  const CropWindow<acc_t> w = crop_window<acc_t>(p.centres, n, p.H, p.W, p.P, p.mode);
  const bool floor_mode = p.mode == CropMode::kFloor;
  acc_t* out = static_cast<acc_t*>(p.grad_centres) + 2 * n;
  store1(out, w.y.pass && !floor_mode ? sy * static_cast<acc_t>(p.H - p.P) : acc_t(0));
  store1(out + 1, w.x.pass && !floor_mode ? sx * static_cast<acc_t>(p.W - p.P) : acc_t(0));
}

}  // namespace afn
