// Shared (host + device) pieces of temporal_aggregate (and its pair mode).
#pragma once

#include "temporal_aggregate.h"

namespace afn {

inline bool temporal_aggregate_args_ok(const TemporalAggregateParams& p) {
  if (p.N < 0 || p.C < 0 || p.HW < 0 || p.T < 1 || p.N % p.T != 0) return false;
  if (p.K < 1 || p.K > 63 || p.K % 2 == 0) return false;
  if ((p.weight2 == nullptr) != (p.out2 == nullptr)) return false;
  if (p.N * p.C * p.HW > 0 && (p.x == nullptr || p.weight == nullptr || p.out == nullptr)) return false;
  return true;
}

// V | HW keeps a vector inside one channel plane; x, out (and out2) are read / written with aligned vectors.
template <typename T>
inline int temporal_aggregate_vec_width(const TemporalAggregateParams& p) {
  const void* ptrs[3] = {p.x, p.out, p.out2};
  return pick_vec_width<T>(p.HW, ptrs, 3);
}

// Elements [e, e+V) of channel plane `plane` = n·C + c of the output(s). Only the taps whose source frame lies in the
// clip are loaded (tap range [i0, i1)), so the zero padding costs nothing and nothing outside x is read. NOUT = 2:
// pair mode, both weight sets applied to the same loaded vectors.
template <typename T, int V, int NOUT>
AFN_HD void temporal_aggregate_vec(const TemporalAggregateParams& p, int64_t plane, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t n = plane / p.C, c = plane - n * p.C;
  const int64_t t = n % p.T, r = p.K / 2;
  const int64_t i0 = t >= r ? 0 : r - t;                          // first tap with t + i − r >= 0
  const int64_t i1 = p.T - t + r < p.K ? p.T - t + r : p.K;       // one past the last tap with t + i − r < T
  const int64_t frame = p.C * p.HW;
  const T* x = static_cast<const T*>(p.x) + plane * p.HW + e;
  const float* wts[2] = {p.weight, p.weight2};
  acc_t acc[NOUT][V];
  AFN_UNROLL
  for (int o = 0; o < NOUT; ++o)
    AFN_UNROLL
    for (int q = 0; q < V; ++q) acc[o][q] = acc_t(0);
  for (int64_t i = i0; i < i1; ++i) {
    const Vec<T, V> v = load_vec<T, V>(x + (i - r) * frame);
    AFN_UNROLL
    for (int o = 0; o < NOUT; ++o) {
      const acc_t w = static_cast<acc_t>(wts[o][i * p.C + c]);
      AFN_UNROLL
      for (int q = 0; q < V; ++q) acc[o][q] += w * Num<T>::to_acc(v.v[q]);
    }
  }
  void* outs[2] = {p.out, p.out2};
  AFN_UNROLL
  for (int o = 0; o < NOUT; ++o) {
    Vec<T, V> r_;
    AFN_UNROLL
    for (int q = 0; q < V; ++q) {
      acc_t s = acc[o][q];
      if (p.relu) s = s < acc_t(0) ? acc_t(0) : s;  // NaN kept, as torch.relu
      r_.v[q] = Num<T>::from_acc(s);
    }
    store_vec<T, V>(static_cast<T*>(outs[o]) + plane * p.HW + e, r_);
  }
}

}  // namespace afn
