// Shared (host + device) pieces of the fullvideo_cluster kernels: argument checks, the per-word / per-pair /
// per-element bodies the CUDA threads and the CPU twins both call.
#pragma once

#include "fullvideo_cluster.h"

namespace afn {

inline int64_t binarize_words(int64_t D) { return ceil_div(D, 32); }

inline bool binarize_pack_args_ok(const BinarizePackParams& p) {
  if (p.N < 0 || p.D < 0) return false;
  if (p.N * p.D > 0 && (p.y == nullptr || p.bits == nullptr)) return false;
  return true;
}

inline bool adjacent_hamming_args_ok(const AdjacentHammingParams& p) {
  if (p.N < 0 || p.W < 0) return false;
  if (p.N > 1 && (p.h == nullptr || (p.W > 0 && p.bits == nullptr))) return false;
  return true;
}

inline bool segment_boundaries_args_ok(const SegmentBoundariesParams& p) {
  if (p.n_total < 1 || p.B < 1 || p.K < 1) return false;
  if (p.rule != BoundaryRule::kSlope && p.rule != BoundaryRule::kEven && p.rule != BoundaryRule::kCumulative)
    return false;
  if (p.frame_offsets == nullptr && p.B != 1) return false;
  if (p.offsets == nullptr || p.num_segments == nullptr) return false;
  if (p.n_total > 1 && p.h == nullptr) return false;
  return true;
}

inline bool segment_mean_args_ok(const SegmentMeanParams& p) {
  if (p.n_total < 0 || p.B < 1 || p.K < 1 || p.D < 0) return false;
  if (p.frame_offsets == nullptr && p.B != 1) return false;
  if (p.offsets == nullptr || p.num_segments == nullptr) return false;
  if (p.D > 0 && (p.out == nullptr || (p.n_total > 0 && p.a == nullptr))) return false;
  return true;
}

inline bool segment_mean_backward_args_ok(const SegmentMeanBackwardParams& p) {
  if (p.n_total < 0 || p.B < 1 || p.K < 1 || p.D < 0) return false;
  if (p.frame_offsets == nullptr && p.B != 1) return false;
  if (p.offsets == nullptr || p.num_segments == nullptr) return false;
  if (p.D > 0 && p.n_total > 0 && (p.grad_a == nullptr || p.grad == nullptr)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// binarize_pack: word w of frame n packs elements 32·w .. 32·w + 31 of the frame (LSB = lowest element).
template <typename T>
AFN_HD int32_t binarize_word(const BinarizePackParams& p, int64_t n, int64_t w) {
  const T* row = static_cast<const T*>(p.y) + n * p.D;
  const int64_t e0 = w * 32;
  const int64_t cnt = p.D - e0 < 32 ? p.D - e0 : 32;
  uint32_t word = 0;
  for (int64_t i = 0; i < cnt; ++i)
    if (Num<T>::to_acc(load1(row + e0 + i)) > typename Num<T>::acc_t(0)) word |= 1u << i;
  return static_cast<int32_t>(word);  // the uint32 pattern (two's complement)
}

// ---------------------------------------------------------------------------------------------------------------
// adjacent_hamming: set bits of one 32-bit word (SWAR; the same code on both sides, so the twins agree).
AFN_HD int64_t popcount_u32(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0F0F0F0Fu;
  return static_cast<int64_t>((v * 0x01010101u) >> 24);
}

// Distance contribution of word w of pair t (frames t, t+1).
AFN_HD int64_t hamming_word(const AdjacentHammingParams& p, int64_t t, int64_t w) {
  const uint32_t x = static_cast<uint32_t>(p.bits[t * p.W + w]) ^ static_cast<uint32_t>(p.bits[(t + 1) * p.W + w]);
  return popcount_u32(x);
}

// ---------------------------------------------------------------------------------------------------------------
// Video b's rows [first, first + len) of the ragged batch; offsets out of range are clamped, so a corrupt
// frame_offsets yields some result but never an out-of-bounds access.
struct VideoRange {
  int64_t first, len;
};

AFN_HD VideoRange video_range(const int64_t* frame_offsets, int64_t n_total, int64_t b) {
  if (frame_offsets == nullptr) return VideoRange{0, n_total};
  int64_t lo = frame_offsets[b], hi = frame_offsets[b + 1];
  lo = lo < 0 ? 0 : (lo > n_total ? n_total : lo);
  hi = hi < lo ? lo : (hi > n_total ? n_total : hi);
  return VideoRange{lo, hi - lo};
}

// segment_boundaries, slope rule (§4.1): pair u of a video is ordered before pair t iff (h_u, u) > (h_t, t) — larger
// distance first, ties to the later position. A pair is cut iff fewer than K − 1 pairs come before it.
AFN_HD bool slope_before(int64_t hu, int64_t u, int64_t ht, int64_t t) { return hu > ht || (hu == ht && u > t); }

// Rank of pair t among the `pairs` pairs of the video whose first pair is h[first].
AFN_HD int64_t slope_rank(const SegmentBoundariesParams& p, int64_t first, int64_t pairs, int64_t t) {
  const int64_t ht = p.h[first + t];
  int64_t r = 0;
  for (int64_t u = 0; u < pairs; ++u) r += slope_before(p.h[first + u], u, ht, t) ? 1 : 0;
  return r;
}

// Is pair t cut? `thr` is the pair of rank K − 2 (the last one cut) when there are more than K − 1 pairs, −1 when
// every pair is cut (pairs ≤ K − 1), −2 when none is (K = 1).
AFN_HD bool slope_cut(const SegmentBoundariesParams& p, int64_t first, int64_t thr, int64_t t) {
  if (thr == -1) return true;
  if (thr < 0) return false;
  return t == thr || slope_before(p.h[first + t], t, p.h[first + thr], thr);
}

// Number of segments M of a video of len frames (both rules, §4.1(4) for len < K); 0 only for an empty (invalid)
// video.
AFN_HD int64_t boundary_segments(int64_t len, int64_t K) { return len < K ? len : K; }

// Even rule (§4.4): offset j = j·⌊len/K⌋ + min(j, len mod K); for len < K the first len segments are single frames.
AFN_HD int64_t even_offset(int64_t len, int64_t K, int64_t j) {
  const int64_t q = len / K, r = len - q * K;
  return j * q + (j < r ? j : r);
}

// Cumulative rule (§4.2, repaired, exact integers), one video, sequential (one thread): H_k = h_0 + … + h_{k−1},
// H = H_{len−1}; frame k ≥ 1 starts a segment iff K·H_k > c·H, then c += 1 (c = 1 after frame 0). Since H_k ≤ H at
// most K − 1 frames start one, so M ≤ K. H = 0 gives even segments, len < K one segment per frame (§4.1(4)).
// Writes the video's K + 1 offsets and returns M.
AFN_HD int64_t cumulative_video(const SegmentBoundariesParams& p, const VideoRange& v, int64_t* off) {
  const int64_t K = p.K;
  int64_t H = 0;
  for (int64_t t = 0; t + 1 < v.len; ++t) H += p.h[v.first + t];
  if (v.len < K || H == 0) {
    for (int64_t j = 0; j <= K; ++j) off[j] = v.len < K ? (j < v.len ? j : v.len) : even_offset(v.len, K, j);
    return boundary_segments(v.len, K);
  }
  int64_t c = 1, hk = 0;
  off[0] = 0;
  for (int64_t k = 1; k < v.len; ++k) {
    hk += p.h[v.first + k - 1];
    if (K * hk > c * H) off[c++] = k;
  }
  for (int64_t j = c; j <= K; ++j) off[j] = v.len;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// segment_mean: element e of output row r = b·K + j.
template <typename T>
AFN_HD void segment_mean_element(const SegmentMeanParams& p, int64_t r, int64_t e) {
  using A = typename Num<T>::acc_t;
  const int64_t b = r / p.K, j = r - b * p.K;
  const VideoRange v = video_range(p.frame_offsets, p.n_total, b);
  int64_t m = p.num_segments[b];
  m = m < 1 ? 1 : (m > p.K ? p.K : m);
  const int64_t s = j < m - 1 ? j : m - 1;
  int64_t lo = p.offsets[b * (p.K + 1) + s], hi = p.offsets[b * (p.K + 1) + s + 1];
  lo = lo < 0 ? 0 : (lo > v.len ? v.len : lo);
  hi = hi < lo ? lo : (hi > v.len ? v.len : hi);
  const T* a = static_cast<const T*>(p.a) + (v.first + lo) * p.D + e;
  A sum = A(0);
  for (int64_t f = 0; f < hi - lo; ++f) sum += Num<T>::to_acc(load1(a + f * p.D));
  const A size = A(hi - lo > 1 ? hi - lo : 1);
  store1(static_cast<T*>(p.out) + r * p.D + e, Num<T>::from_acc(sum / size));
}

// ---------------------------------------------------------------------------------------------------------------
// segment_mean_backward: element e of grad_a row f (a row of the ragged batch).
//
// Video of row f: the last b with frame_offsets[b] ≤ f (binary search over the raw values; well-formed offsets are
// sorted), then its clamped range (video_range) must contain f — otherwise (only for corrupt offsets) the row is
// written as 0. Segment of local frame t: the s < M with lo_s ≤ t < hi_s, using the same clamped lo/hi as the
// forward; none (t past the emitted segments) → 0. Gradient = Σ_{j : min(j, M−1) = s} grad[b·K + j] / |S_s|: j = s
// alone for s < M − 1, j = M − 1 … K − 1 (the padded duplicates) for s = M − 1, summed in j order in acc_t — the
// order of the reference's index_select backward — then one division and one rounding, as the forward.
AFN_HD int64_t video_of_row(const int64_t* frame_offsets, int64_t B, int64_t f) {
  if (frame_offsets == nullptr) return 0;
  int64_t lo = 0, hi = B - 1;  // answer in [lo, hi]
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (frame_offsets[mid] <= f) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <typename T>
AFN_HD void segment_mean_backward_element(const SegmentMeanBackwardParams& p, int64_t f, int64_t e) {
  using A = typename Num<T>::acc_t;
  T* dst = static_cast<T*>(p.grad_a) + f * p.D + e;
  const int64_t b = video_of_row(p.frame_offsets, p.B, f);
  const VideoRange v = video_range(p.frame_offsets, p.n_total, b);
  const int64_t t = f - v.first;
  A sum = A(0);
  int64_t size = 1;
  if (t >= 0 && t < v.len) {
    int64_t m = p.num_segments[b];
    m = m < 1 ? 1 : (m > p.K ? p.K : m);
    const int64_t* off = p.offsets + b * (p.K + 1);
    for (int64_t s = 0; s < m; ++s) {
      int64_t lo = off[s], hi = off[s + 1];
      lo = lo < 0 ? 0 : (lo > v.len ? v.len : lo);
      hi = hi < lo ? lo : (hi > v.len ? v.len : hi);
      if (t < lo || t >= hi) continue;
      const int64_t j_end = s == m - 1 ? p.K : s + 1;
      const T* g = static_cast<const T*>(p.grad) + (b * p.K + s) * p.D + e;
      for (int64_t j = s; j < j_end; ++j) sum += Num<T>::to_acc(load1(g + (j - s) * p.D));
      size = hi - lo;
      break;  // segments of one video do not overlap: the first match is the only one
    }
  }
  store1(dst, Num<T>::from_acc(sum / A(size)));
}

}  // namespace afn
