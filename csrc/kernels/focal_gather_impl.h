// Shared (host + device) pieces of focal_gather: argument check, vector-width choice, the per-vector body.
#pragma once

#include "focal_gather.h"
#include "index_math.h"

namespace afn {

inline bool focal_gather_args_ok(const FocalGatherParams& p) {
  if (p.N < 0 || p.C < 0 || p.HW < 0 || p.K < 0 || p.num_frames < 1) return false;
  if (p.N % p.num_frames != 0) return false;
  const bool empty = p.K == 0 || p.C == 0 || p.HW == 0;
  if (!empty && (p.x == nullptr || p.y == nullptr || p.index == nullptr)) return false;
  if (!empty && p.N == 0) return false;  // frames requested from an empty tensor
  return chain_args_ok(p.chain, p.N, p.C * p.HW);
}

// Segment boundaries (fold·HW, 2·fold·HW) and the frame plane C·HW are multiples of HW, so V | HW keeps every vector
// inside one segment of one frame.
template <typename T>
inline int focal_gather_vec_width(const FocalGatherParams& p) {
  const void* ptrs[3] = {p.x, p.y, chain_consts_ptr(p.chain)};
  return pick_vec_width<T>(p.HW, ptrs, 3);
}

// Elements [e, e+V) of output frame k, whose sources are s. e is a multiple of V.
template <typename T, int V>
AFN_HD void focal_gather_vec(const FocalGatherParams& p, const FrameSources& s, int64_t k, int64_t e) {
  const int64_t plane = p.C * p.HW;
  const int64_t fold = p.C / 8;
  const int64_t src = shift_source_of(s, e, fold * p.HW, 2 * fold * p.HW);
  Vec<T, V> v;
  if (src >= 0) {
    v = load_vec<T, V>(static_cast<const T*>(p.x) + src * plane + e);
    if (chain_present(p.chain)) chain_apply_vec<T, V>(p.chain, src, plane, e, v);  // the source frame's own chain
  } else {
    AFN_UNROLL
    for (int q = 0; q < V; ++q) v.v[q] = zero_value<T>();
  }
  store_vec<T, V>(static_cast<T*>(p.y) + k * plane + e, v);
}

}  // namespace afn
