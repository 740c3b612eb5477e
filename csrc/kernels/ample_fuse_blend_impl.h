// Shared (host + device) pieces of ample_fuse_blend.
#pragma once

#include "ample_fuse_blend.h"
#include "index_math.h"

namespace afn {

inline bool ample_fuse_blend_args_ok(const AmpleFuseBlendParams& p) {
  if (p.NC < 0 || p.h < 1 || p.w < 1 || p.H < 1 || p.W < 1) return false;
  if (p.H * p.W >= (int64_t(1) << 31) || p.h * p.w >= (int64_t(1) << 31)) return false;
  if (p.NC > 0 && (p.xl == nullptr || p.xb == nullptr || p.a == nullptr || p.out == nullptr)) return false;
  if (!chain_present(p.chain)) return true;
  if (p.C < 1 || p.NC % p.C != 0) return false;
  return chain_args_ok(p.chain, p.NC / p.C, p.C * p.H * p.W);
}

// V | W keeps a vector inside one output row (one source row of xl); xb/out vectors are aligned, xl is read per
// element (source columns repeat or skip, and those reads hit L1).
template <typename T>
inline int ample_fuse_blend_vec_width(const AmpleFuseBlendParams& p) {
  const void* ptrs[3] = {p.xb, p.out, chain_consts_ptr(p.chain)};
  return pick_vec_width<T>(p.W, ptrs, 3);
}

// Elements [e, e+V) of channel plane `plane` (row i = e / W, columns j0 .. j0+V−1), with that plane's weight a.
template <typename T, int V>
AFN_HD void ample_blend_vec(const AmpleFuseBlendParams& p, int64_t plane, typename Num<T>::acc_t a, int64_t e) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t HW = p.H * p.W;
  // In-plane coordinates in 32 bits (H·W < 2^31 is checked): one 32-bit division per vector, not a 64-bit one.
  const uint32_t e32 = static_cast<uint32_t>(e), W32 = static_cast<uint32_t>(p.W);
  const uint32_t i = e32 / W32, j0 = e32 - i * W32;
  const T* xl_row = static_cast<const T*>(p.xl) + plane * (p.h * p.w) + nearest_src(i, p.h, p.H) * p.w;
  Vec<T, V> b = load_vec<T, V>(static_cast<const T*>(p.xb) + plane * HW + e);
  if (chain_present(p.chain)) {  // logical xb of frame plane / C
    const int64_t frame = plane / p.C;
    chain_apply_vec<T, V>(p.chain, frame, p.C * HW, (plane - frame * p.C) * HW + e, b);
  }
  const acc_t one_minus_a = acc_t(1) - a;
  Vec<T, V> o;
  AFN_UNROLL
  for (int q = 0; q < V; ++q) {
    const acc_t up = Num<T>::to_acc(load1(xl_row + nearest_src(j0 + q, p.w, p.W)));
    acc_t v = a * up + one_minus_a * Num<T>::to_acc(b.v[q]);
    if (p.relu) v = v < acc_t(0) ? acc_t(0) : v;  // NaN kept, as torch.relu
    o.v[q] = Num<T>::from_acc(v);
  }
  store_vec<T, V>(static_cast<T*>(p.out) + plane * HW + e, o);
}

}  // namespace afn
