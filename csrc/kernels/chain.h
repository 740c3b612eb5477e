// Lazy constant chains (issue 16; semantics: afnet_edge/kernels/reference.py `LazyChain`, `chain_apply`).
//
// Under the lazy plan the stored row of frame f of a stage tensor still owes the element-wise maps
// v ↦ φ_i(v + K_i) of focal blocks i = start[f] .. upto−1. A kernel that reads the row applies them on the fly, with
// the operations of the eager path in the same order: ONE add in the storage type per block (compute in acc_t, round
// once, exactly torch's `v + K_i`), then ReLU where bit i of relu_mask is set (ReLU keeps NaN, as torch.relu).
// consts is (L, C, H, W) contiguous in the storage type; element e = c·HW + p of a frame plane pairs with
// consts[i·C·HW + e]. start values below 0 are treated as 0 and upto must be <= L (checked by the callers), so no
// read leaves consts whatever the start values.
#pragma once

#include "common.h"

namespace afn {

struct ChainParams {
  const int32_t* start;  // (N,) first pending block per frame; nullptr = no chain (rows are read as stored)
  const void* consts;    // (L, C, H, W) contiguous, storage type T
  int64_t relu_mask;     // bit i: φ_i = ReLU
  int64_t upto;          // blocks [start[f], upto) are applied; 0 <= upto <= L
  int64_t L;             // number of constant maps in consts
};

inline bool chain_args_ok(const ChainParams& c) {
  if (c.start == nullptr) return true;
  return c.L >= 0 && c.upto >= 0 && c.upto <= c.L && c.relu_mask >= 0 && (c.upto == 0 || c.consts != nullptr);
}

// Logical value of element e of frame f's stored row: v with blocks max(start[f], 0) .. upto−1 applied.
// plane = C·HW (the stride of consts between blocks).
template <typename T>
AFN_HD T apply_chain(T v, const ChainParams& c, int64_t f, int64_t plane, int64_t e) {
  if (c.start == nullptr) return v;
  using acc_t = typename Num<T>::acc_t;
  const T* k = static_cast<const T*>(c.consts);
  int64_t i = c.start[f];
  if (i < 0) i = 0;
  for (; i < c.upto; ++i) {
    acc_t s = Num<T>::to_acc(v) + Num<T>::to_acc(load1(k + i * plane + e));
    v = Num<T>::from_acc(s);  // one rounding per block: torch's `v + K_i` in the storage type
    if ((c.relu_mask >> i) & 1) {
      if (Num<T>::to_acc(v) < acc_t(0)) v = zero_value<T>();  // ReLU (NaN compares false: kept)
    }
  }
  return v;
}

}  // namespace afn
