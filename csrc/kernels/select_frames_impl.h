// Shared (host + device) pieces of select_frames.
#pragma once

#include "index_math.h"
#include "select_frames.h"

namespace afn {

// Row width M of index.
inline int64_t select_frames_width(const SelectFramesParams& p) {
  return p.mode == SelectMode::kTopK ? p.B * p.k : p.B * p.T;
}

inline bool select_frames_args_ok(const SelectFramesParams& p) {
  if (p.L < 0 || p.B < 0 || p.T < 0) return false;
  if (p.mode != SelectMode::kThreshold && p.mode != SelectMode::kTopK) return false;
  if (p.mode == SelectMode::kTopK && (p.k < 0 || p.k > p.T)) return false;
  if (p.T > kSelectMaxFrames) return false;
  if (p.L > 0 && (p.counts == nullptr)) return false;
  if (p.L * p.B * p.T > 0 && (p.logits == nullptr || p.mask == nullptr)) return false;
  if (p.L * select_frames_width(p) > 0 && p.index == nullptr) return false;
  return true;
}

template <typename T>
AFN_HD void select_write_mask(const SelectFramesParams& p, int64_t row, bool selected) {
  store1(static_cast<T*>(p.mask) + row, Num<T>::from_acc(typename Num<T>::acc_t(selected ? 1 : 0)));
}

// threshold: frame n of block l (row l·N + n) is selected iff its margin is > 0 (NaN: not selected).
template <typename T>
AFN_HD bool threshold_selected(const SelectFramesParams& p, int64_t row) {
  return select_margin(static_cast<const T*>(p.logits), row) > typename Num<T>::acc_t(0);
}

// topk: frame t of clip (l, b) is selected iff fewer than k frames of its clip come before it.
template <typename T>
AFN_HD bool topk_selected(const SelectFramesParams& p, int64_t clip, int64_t t) {
  return topk_rank(static_cast<const T*>(p.logits), clip * p.T, p.T, t) < p.k;
}

// topk output of a selected frame t of clip (l, b) that has `pos` selected frames before it in its clip.
AFN_HD void topk_write_index(const SelectFramesParams& p, int64_t clip, int64_t t, int64_t pos) {
  const int64_t l = clip / p.B, b = clip - l * p.B;
  p.index[l * (p.B * p.k) + b * p.k + pos] = b * p.T + t;
}

}  // namespace afn
