// Shared (host + device) pieces of gather_conv1x1: argument check and the GEMM operation (operands, epilogue) used by
// the CUDA block loop (conv1x1_gemm.cuh) and the CPU twin (conv1x1_gemm.h).
#pragma once

#include "chain.h"
#include "conv1x1_gemm.h"
#include "gather_conv1x1.h"
#include "index_math.h"

namespace afn {

inline bool gather_conv1x1_args_ok(const GatherConv1x1Params& p) {
  if (p.N < 0 || p.C < 0 || p.HW < 0 || p.K < 0 || p.O < 0 || p.groups < 1 || p.num_frames < 1) return false;
  if (p.N % p.num_frames != 0 || p.C % p.groups != 0 || p.O % p.groups != 0) return false;
  if (!chain_args_ok(p.chain, p.N, p.C * p.HW) || !gemm_grid_fits(p.groups, p.O / p.groups, p.HW)) return false;
  const bool empty = p.K == 0 || p.O == 0 || p.HW == 0;
  if (empty) return true;
  if (p.out == nullptr || p.index == nullptr || p.scale == nullptr || p.bias == nullptr) return false;
  if (p.C > 0 && (p.x == nullptr || p.weight == nullptr)) return false;
  if (p.N == 0) return false;  // frames requested from an empty tensor
  return true;
}

// The GEMM of gather_conv1x1 (see conv1x1_gemm.h for the Op interface). Channel c of group g is input channel
// g·Cg + c of x; its source frame is chosen per channel (fold = ⌊C/8⌋ may be smaller than a tile's 32 channels, so
// one tile mixes sources), then the source frame's pending chain is applied on that channel.
template <typename T>
struct GatherConv1x1Op {
  GatherConv1x1Params p;
  using Frame = FrameSources;
  AFN_HD int64_t frames() const { return p.K; }
  AFN_HD int64_t groups() const { return p.groups; }
  AFN_HD int64_t m() const { return p.O / p.groups; }
  AFN_HD int64_t kdim() const { return p.C / p.groups; }
  AFN_HD int64_t n() const { return p.HW; }
  AFN_HD Frame frame(int64_t k) const { return shift_sources(p.index[k], p.N, p.num_frames, p.shift); }
  AFN_HD bool frame_valid(const Frame&) const { return true; }  // (an invalid index reads zeros: out = act(bias))
  AFN_HD T a(int64_t g, int64_t o, int64_t c) const {
    return load1(static_cast<const T*>(p.weight) + (g * m() + o) * kdim() + c);
  }
  AFN_HD T b(const Frame& s, int64_t g, int64_t c, int64_t px) const {
    const int64_t ch = g * kdim() + c, fold = p.C / 8;
    const int64_t src = ch < fold ? s.next : (ch < 2 * fold ? s.prev : s.self);
    if (src < 0) return zero_value<T>();
    const int64_t plane = p.C * p.HW, e = ch * p.HW + px;
    Vec<T, 1> v = load_vec<T, 1>(static_cast<const T*>(p.x) + src * plane + e);
    if (chain_present(p.chain)) chain_apply_vec<T, 1>(p.chain, src, plane, e, v);
    return v.v[0];
  }
  AFN_HD void store(const Frame&, int64_t k, int64_t g, int64_t o, int64_t px, float acc) const {
    const int64_t oc = g * m() + o;
    const float v = gemm_affine(acc, load1(p.scale + oc), load1(p.bias + oc));
    store1(static_cast<T*>(p.out) + (k * p.O + oc) * p.HW + px, gemm_round<T>(v, p.relu));
  }
};

}  // namespace afn
