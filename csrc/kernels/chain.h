// Lazy constant chains (spec §8, issue 16; semantics: afnet_edge/kernels/reference.py LazyChain / chain_apply).
//
// Inside an AF stage, an unselected frame's focal block i is the element-wise map v ↦ φ_i(v + K_i). Such maps are not
// applied when the block runs: the stored row of frame f keeps its value from before block start[f], and every reader
// applies the pending blocks start[f] .. upto−1 on the fly (`chain_apply_vec`), with the eager path's operations in the
// eager path's order — per block one add in acc_t, ONE rounding to the storage type (bit-identical to torch's `v + K_i`
// in that dtype), then ReLU (keeping NaN) where bit i of relu_mask is set. The K_i maps are (L, C, H, W): a few MB at
// most, read by every frame, so they stay cache-resident; the unselected frames' rows are never rewritten.
//
// A chain is "absent" when start == nullptr (every reader then behaves exactly as without chain support).
#pragma once

#include "common.h"

namespace afn {

struct ChainParams {
  const int32_t* start = nullptr;  // (N,) per frame: first pending block (any value; < 0 acts as 0, >= upto: none)
  const void* consts = nullptr;    // (L, C, H, W) contiguous, the kernel's element type T: K_i of block i
  int64_t L = 0;                   // blocks of the stage
  int64_t relu_mask = 0;           // bit i set <=> φ_i = ReLU
  int64_t upto = 0;                // the reader consumes block upto's input: blocks < upto are due; 0 <= upto <= L
};

AFN_HD bool chain_present(const ChainParams& c) { return c.start != nullptr; }

// Host-side argument check shared by the launchers and CPU twins (N frames, `plane` = C·H·W elements of one K_i).
inline bool chain_args_ok(const ChainParams& c, int64_t N, int64_t plane) {
  if (!chain_present(c)) return true;
  if (c.L < 0 || c.upto < 0 || c.upto > c.L || c.L > 62) return false;  // relu_mask bits live in an int64
  if (N > 0 && plane > 0 && c.upto > 0 && c.consts == nullptr) return false;
  return true;
}

// The element offsets of a (C, H, W) map are the same as those of a frame plane, so a vector that is aligned in the
// frame tensor is aligned in K_i when consts is aligned to the vector size (each K_i starts at a multiple of the
// frame plane, a multiple of HW, and V | HW). The launchers include `consts` in their vector-width choice.
inline const void* chain_consts_ptr(const ChainParams& c) { return chain_present(c) ? c.consts : nullptr; }

// ReLU that keeps NaN (as torch.relu).
template <typename A>
AFN_HD A relu_keep_nan(A v) {
  return v < A(0) ? A(0) : v;
}

// The logical value of V stored elements [off, off+V) of frame `frame` (offset `off` within a frame / K_i plane of
// `plane` elements): blocks max(start[frame], 0) .. upto−1 applied in order, each one add + one rounding (+ ReLU).
template <typename T, int V>
AFN_HD void chain_apply_vec(const ChainParams& c, int64_t frame, int64_t plane, int64_t off, Vec<T, V>& v) {
  int64_t i = static_cast<int64_t>(load1(c.start + frame));
  if (i < 0) i = 0;
  for (; i < c.upto; ++i) {
    const Vec<T, V> k = load_vec<T, V>(static_cast<const T*>(c.consts) + i * plane + off);
    const bool relu = ((c.relu_mask >> i) & 1) != 0;
    AFN_UNROLL
    for (int q = 0; q < V; ++q) {
      const T s = Num<T>::from_acc(Num<T>::to_acc(v.v[q]) + Num<T>::to_acc(k.v[q]));  // torch's `v + K_i`
      v.v[q] = relu ? Num<T>::from_acc(relu_keep_nan(Num<T>::to_acc(s))) : s;       // exact: 0 or s itself
    }
  }
}

}  // namespace afn
