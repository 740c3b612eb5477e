// Shared (host + device) pieces of ample_fuse_pool.
//
// Work split: a channel plane is reduced by `lanes` threads (a warp, or a whole block for large planes). Lane i reads
// vectors i, i+lanes, i+2·lanes, … of xb's plane and of xl's plane; the lane sums are then reduced (warp shuffles /
// shared memory on the GPU, a loop in the CPU twin). pool_lane_partial is that per-lane sum, shared by both.
#pragma once

#include "ample_fuse_pool.h"
#include "index_math.h"

namespace afn {

inline bool ample_fuse_pool_args_ok(const AmpleFusePoolParams& p) {
  if (p.NC < 0 || p.h < 1 || p.w < 1 || p.H < 1 || p.W < 1) return false;
  if (p.h + p.w > kAmplePoolMaxWeights) return false;
  if (p.H * p.W >= (int64_t(1) << 31) || p.h * p.w >= (int64_t(1) << 31)) return false;
  if (p.NC > 0 && (p.xl == nullptr || p.xb == nullptr || p.out == nullptr)) return false;
  if (!chain_present(p.chain)) return true;
  if (p.C < 1 || p.NC % p.C != 0) return false;
  return chain_args_ok(p.chain, p.NC / p.C, p.C * p.H * p.W);
}

struct AmplePoolPlan {
  int vec;       // V for xb (V | H·W, pointers aligned)
  bool xl_vec;   // xl read with the same V (V | h·w, aligned, and — for per-pixel weights — V | w)
  bool uniform;  // every source pixel has weight (H/h)·(W/w): the exact ×1 / ×2 resizes
  int64_t wuni;  // that weight
};

template <typename T>
inline AmplePoolPlan ample_fuse_pool_plan(const AmpleFusePoolParams& p) {
  AmplePoolPlan pl;
  const void* ptrs[2] = {p.xb, chain_consts_ptr(p.chain)};
  pl.vec = pick_vec_width<T>(p.H * p.W, ptrs, 2);
  pl.uniform = nearest_uniform(p.h, p.H) && nearest_uniform(p.w, p.W);
  pl.wuni = pl.uniform ? (p.H / p.h) * (p.W / p.w) : 0;
  pl.xl_vec = pl.vec > 1 && (p.h * p.w) % pl.vec == 0 && is_aligned(p.xl, sizeof(T) * pl.vec) &&
              (pl.uniform || p.w % pl.vec == 0);
  return pl;
}

// Threads per channel plane on the GPU: a warp for planes up to 8192 outputs (all AF-ResNet sizes: many planes, short
// loops, shuffle-only reduction), a whole 256-thread block above. The CPU twin partitions planes the same way.
inline int64_t ample_fuse_pool_lanes(const AmpleFusePoolParams& p) { return p.H * p.W > 8192 ? 256 : 32; }

// Per-axis source weights cnt_H(r) (r < h) then cnt_W(s) (s < w), written to wts[0 .. h+w) by workers
// first, first+step, … (threads of a block on the GPU; one worker on the host).
AFN_HD void ample_pool_weights(const AmpleFusePoolParams& p, int32_t* wts, int64_t first, int64_t step) {
  for (int64_t i = first; i < p.h + p.w; i += step)
    wts[i] = static_cast<int32_t>(i < p.h ? nearest_count(i, p.h, p.H) : nearest_count(i - p.h, p.w, p.W));
}

// Sum of lane `lane` of `lanes` over channel plane `plane`: its share of xb plus its weighted share of xl.
template <typename T, int V>
AFN_HD typename Num<T>::acc_t pool_lane_partial(const AmpleFusePoolParams& p, const AmplePoolPlan& pl,
                                                const int32_t* wts, int64_t plane, int64_t lane, int64_t lanes) {
  using acc_t = typename Num<T>::acc_t;
  const int64_t HW = p.H * p.W, hw = p.h * p.w;
  const T* xb = static_cast<const T*>(p.xb) + plane * HW;
  const T* xl = static_cast<const T*>(p.xl) + plane * hw;
  acc_t sb = acc_t(0), sl = acc_t(0);
  const bool chained = chain_present(p.chain);
  const int64_t frame = chained ? plane / p.C : 0, coff = chained ? (plane - frame * p.C) * HW : 0;
  for (int64_t i = lane; i < HW / V; i += lanes) {
    Vec<T, V> v = load_vec<T, V>(xb + i * V);
    if (chained) chain_apply_vec<T, V>(p.chain, frame, p.C * HW, coff + i * V, v);  // logical xb
    AFN_UNROLL
    for (int q = 0; q < V; ++q) sb += Num<T>::to_acc(v.v[q]);
  }
  if (pl.xl_vec) {
    for (int64_t i = lane; i < hw / V; i += lanes) {
      const Vec<T, V> v = load_vec<T, V>(xl + i * V);
      if (pl.uniform) {
        AFN_UNROLL
        for (int q = 0; q < V; ++q) sl += Num<T>::to_acc(v.v[q]);
      } else {  // V | w: the vector lies in row r, columns s0 .. s0+V−1
        const uint32_t r = static_cast<uint32_t>(i * V) / static_cast<uint32_t>(p.w);  // 32-bit: h·w < 2^31
        const int64_t s0 = i * V - static_cast<int64_t>(r) * p.w;
        acc_t row = acc_t(0);
        AFN_UNROLL
        for (int q = 0; q < V; ++q) row += acc_t(wts[p.h + s0 + q]) * Num<T>::to_acc(v.v[q]);
        sl += acc_t(wts[r]) * row;
      }
    }
  } else {
    for (int64_t i = lane; i < hw; i += lanes) {
      const acc_t v = Num<T>::to_acc(load1(xl + i));
      if (pl.uniform) {
        sl += v;
      } else {
        const uint32_t r = static_cast<uint32_t>(i) / static_cast<uint32_t>(p.w);
        const int64_t s = i - static_cast<int64_t>(r) * p.w;
        sl += acc_t(wts[r]) * acc_t(wts[p.h + s]) * v;
      }
    }
  }
  return pl.uniform ? sb + acc_t(pl.wuni) * sl : sb + sl;
}

template <typename T>
AFN_HD T pool_finish(typename Num<T>::acc_t total, const AmpleFusePoolParams& p) {
  using acc_t = typename Num<T>::acc_t;
  return Num<T>::from_acc(total / acc_t(p.H * p.W));
}

}  // namespace afn
