// Shared (host + device) pieces of focal_scatter.
#pragma once

#include "chain.h"  // relu_keep_nan (one definition for every kernel: two would clash in a linked program)
#include "focal_scatter.h"
#include "index_math.h"

namespace afn {

inline bool focal_scatter_args_ok(const FocalScatterParams& p) {
  if (p.N < 0 || p.C < 0 || p.HW < 0 || p.K < 0 || p.K > p.N) return false;
  const bool empty = p.N == 0 || p.C == 0 || p.HW == 0;
  if (!empty && (p.residual == nullptr || p.out == nullptr)) return false;
  if (!empty && p.K > 0 && (p.y == nullptr || p.index == nullptr)) return false;
  if (chain_present(p.chain) && p.const_map != nullptr) return false;  // unselected rows stay pending, K is in chain
  return chain_args_ok(p.chain, p.N, p.C * p.HW);
}

// Frame planes are multiples of HW, so V | HW keeps vectors inside a frame; K's plane offsets are the same e.
template <typename T>
inline int focal_scatter_vec_width(const FocalScatterParams& p) {
  const void* ptrs[5] = {p.residual, p.y, p.const_map, p.out, chain_consts_ptr(p.chain)};
  return pick_vec_width<T>(p.HW, ptrs, 5);
}

// With a chain, in place: unselected frames are skipped entirely (block-uniform: depends on f only).
AFN_HD bool focal_scatter_skips(const FocalScatterParams& p, int64_t k) {
  return k < 0 && chain_present(p.chain) && p.out == p.residual;
}

// Elements [e, e+V) of output frame f; k = k(f) or −1 (unselected).
template <typename T, int V>
AFN_HD void focal_scatter_vec(const FocalScatterParams& p, int64_t f, int64_t k, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t plane = p.C * p.HW;
  Vec<T, V> r = load_vec<T, V>(static_cast<const T*>(p.residual) + f * plane + e);
  if (chain_present(p.chain)) {
    if (k < 0) {  // out of place: the stored row, unchanged (still pending)
      store_vec<T, V>(static_cast<T*>(p.out) + f * plane + e, r);
      return;
    }
    chain_apply_vec<T, V>(p.chain, f, plane, e, r);  // logical residual of the selected frame
  }
  Vec<T, V> add;
  if (k >= 0) {
    add = load_vec<T, V>(static_cast<const T*>(p.y) + k * plane + e);
  } else if (p.const_map != nullptr) {
    add = load_vec<T, V>(static_cast<const T*>(p.const_map) + e);
  } else {
    AFN_UNROLL
    for (int q = 0; q < V; ++q) add.v[q] = zero_value<T>();
  }
  Vec<T, V> o;
  AFN_UNROLL
  for (int q = 0; q < V; ++q) {
    // One add in acc_t, one rounding: bit-identical to torch's `residual + y` in the storage type.
    acc_t s = Num<T>::to_acc(r.v[q]) + Num<T>::to_acc(add.v[q]);
    if (p.relu) s = relu_keep_nan(s);
    o.v[q] = Num<T>::from_acc(s);
  }
  store_vec<T, V>(static_cast<T*>(p.out) + f * plane + e, o);
}

}  // namespace afn
