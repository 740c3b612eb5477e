// Index maps shared by the CUDA kernels and their CPU twins (all `AFN_HD`, so host tests exercise them).
//
// Layout: a frame tensor is (N, C, H, W), contiguous, frame row n = b·T + t (video-major, spec §1). A frame's C·H·W
// elements are contiguous ("frame plane"); a (frame, channel) pair owns H·W contiguous elements ("channel plane").
#pragma once

#include "common.h"

namespace afn {

// ---------------------------------------------------------------------------------------------------------------
// TSM shift (spec §5) seen from the destination: the source frame of each channel segment of frame f.
//   channels [0, fold)        <- frame f+1   (none: zeros, when t = f mod T is the clip's last frame)
//   channels [fold, 2·fold)   <- frame f−1   (none: zeros, when t = 0)
//   channels [2·fold, C)      <- frame f
// with fold = ⌊C/8⌋. A source of −1 means "write zeros". An index value outside [0, N) — only possible for
// unvalidated input — makes every source −1, so the output frame is zero-filled instead of reading out of bounds.
struct FrameSources {
  int64_t next;  // source of channels [0, fold)
  int64_t prev;  // source of channels [fold, 2·fold)
  int64_t self;  // source of channels [2·fold, C)
};

AFN_HD FrameSources shift_sources(int64_t f, int64_t N, int64_t T, bool shift) {
  FrameSources s{-1, -1, -1};
  if (f < 0 || f >= N) return s;
  s.self = f;
  if (!shift) {
    s.next = f;
    s.prev = f;
    return s;
  }
  const int64_t t = f % T;
  s.next = (t < T - 1) ? f + 1 : -1;
  s.prev = (t > 0) ? f - 1 : -1;
  return s;
}

// Source frame of element e (0 <= e < C·HW) of a frame plane: segment boundaries are fold·HW and 2·fold·HW, so a
// vector of V elements never straddles a boundary when HW % V == 0.
AFN_HD int64_t shift_source_of(const FrameSources& s, int64_t e, int64_t seg1, int64_t seg2) {
  return e < seg1 ? s.next : (e < seg2 ? s.prev : s.self);
}

// ---------------------------------------------------------------------------------------------------------------
// Selected-frame lookup k(f) for the scatter: position of f in the sorted, unique index list, or −1. Binary search,
// so unsorted or duplicated (unvalidated) lists give *some* defined answer and never an out-of-range read: only
// positions [0, K) are ever read and k is returned only when index[k] == f.
AFN_HD int64_t find_selected(const int64_t* index, int64_t K, int64_t f) {
  int64_t lo = 0, hi = K;  // search [lo, hi)
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    const int64_t v = index[mid];
    if (v == f) return mid;
    if (v < f)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------------------
// PyTorch's legacy `nearest` resize along one axis (aten/src/ATen/native/UpSample.h `nearest_idx`): destination d of
// `out` reads source min(⌊d·s⌋, in−1) with s = (float)in / (float)out computed in float, except the exact cases
// out == in (identity) and out == 2·in (d >> 1), which PyTorch special-cases to avoid float error. Reproduced
// operation by operation so that the fused kernels pick exactly the pixels F.interpolate picks.
AFN_HD int64_t nearest_src(int64_t d, int64_t in, int64_t out) {
  if (out == in) return d;
  if (out == 2 * in) return d >> 1;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const int64_t s = static_cast<int64_t>(floorf(static_cast<float>(d) * scale));
  return s < in - 1 ? s : in - 1;
}

// First destination index d in [0, out] with nearest_src(d) >= r (out if none). nearest_src is non-decreasing in d.
AFN_HD int64_t nearest_first_dst(int64_t r, int64_t in, int64_t out) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (nearest_src(mid, in, out) >= r)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

// How many destinations read source r: the weight of source pixel r in the mean of the upsampled map.
AFN_HD int64_t nearest_count(int64_t r, int64_t in, int64_t out) {
  return nearest_first_dst(r + 1, in, out) - nearest_first_dst(r, in, out);
}

// True when every source pixel is read equally often along this axis (the special-cased exact ratios); the weight is
// then out / in. Other ratios use per-pixel weights from nearest_count.
AFN_HD bool nearest_uniform(int64_t in, int64_t out) { return out == in || out == 2 * in; }

// ---------------------------------------------------------------------------------------------------------------
// Navigation decisions (select_frames). logits are (L, B, T, 2) contiguous; [..., 0] = skip, [..., 1] = select.
// The margin is select − skip rounded to the logits' type, as the reference's `logits[..., 1] - logits[..., 0]`.
template <typename T>
AFN_HD typename Num<T>::acc_t select_margin(const T* logits, int64_t row) {
  using acc_t = typename Num<T>::acc_t;
  const acc_t skip = Num<T>::to_acc(load1(logits + 2 * row));
  const acc_t sel = Num<T>::to_acc(load1(logits + 2 * row + 1));
  return Num<T>::to_acc(Num<T>::from_acc(sel - skip));
}

// Strict order of the top-k selection, matching torch.argsort(descending=True, stable=True): larger margin first,
// NaN before any number (torch sorts NaN as the largest), ties (and NaN vs NaN) to the lower frame index.
template <typename A>
AFN_HD bool topk_before(A mu, int64_t u, A mt, int64_t t) {
  const bool nu = mu != mu, nt = mt != mt;
  if (nu || nt) return nu && (!nt || u < t);
  if (mu != mt) return mu > mt;
  return u < t;
}

// Rank of frame t in its clip (0 = first chosen) under topk_before; the clip's margins start at `clip_row`.
template <typename T>
AFN_HD int64_t topk_rank(const T* logits, int64_t clip_row, int64_t T_, int64_t t) {
  const auto mt = select_margin(logits, clip_row + t);
  int64_t rank = 0;
  for (int64_t u = 0; u < T_; ++u)
    if (u != t && topk_before(select_margin(logits, clip_row + u), u, mt, t)) ++rank;
  return rank;
}

}  // namespace afn
