// Shared (host + device) pieces of bl_merge.
#pragma once

#include "bl_merge.h"
#include "index_math.h"

namespace afn {

inline bool bl_merge_args_ok(const BLMergeParams& p) {
  if (p.NC < 0 || p.h < 1 || p.w < 1 || p.H < 1 || p.W < 1) return false;
  if (p.H * p.W >= (int64_t(1) << 31) || p.h * p.w >= (int64_t(1) << 31)) return false;
  return p.NC == 0 || (p.big != nullptr && p.little != nullptr && p.out != nullptr);
}

// V | W keeps a vector inside one output row (one source row of big); little/out vectors are aligned, big is read
// per element (source columns repeat, and those reads hit L1).
template <typename T>
inline int bl_merge_vec_width(const BLMergeParams& p) {
  const void* ptrs[2] = {p.little, p.out};
  return pick_vec_width<T>(p.W, ptrs, 2);
}

// Elements [e, e+V) of channel plane `plane` (row i = e / W, columns j0 .. j0+V−1).
template <typename T, int V>
AFN_HD void bl_merge_vec(const BLMergeParams& p, int64_t plane, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t HW = p.H * p.W;
  const uint32_t e32 = static_cast<uint32_t>(e), W32 = static_cast<uint32_t>(p.W);  // H·W < 2^31 is checked
  const uint32_t i = e32 / W32, j0 = e32 - i * W32;
  const T* big_row = static_cast<const T*>(p.big) + plane * (p.h * p.w) + nearest_src(i, p.h, p.H) * p.w;
  const Vec<T, V> l = load_vec<T, V>(static_cast<const T*>(p.little) + plane * HW + e);
  Vec<T, V> o;
  AFN_UNROLL
  for (int q = 0; q < V; ++q) {
    acc_t v = Num<T>::to_acc(load1(big_row + nearest_src(j0 + q, p.w, p.W))) + Num<T>::to_acc(l.v[q]);
    if (p.relu) v = v < acc_t(0) ? acc_t(0) : v;  // NaN kept, as torch.relu
    o.v[q] = Num<T>::from_acc(v);
  }
  store_vec<T, V>(static_cast<T*>(p.out) + plane * HW + e, o);
}

}  // namespace afn
