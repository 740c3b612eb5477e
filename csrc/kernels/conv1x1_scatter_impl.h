// Shared (host + device) pieces of conv1x1_scatter: argument check and the GEMM operation (operands, epilogue).
#pragma once

#include "chain.h"
#include "conv1x1_gemm.h"
#include "conv1x1_scatter.h"

namespace afn {

inline bool conv1x1_scatter_args_ok(const Conv1x1ScatterParams& p) {
  if (p.N < 0 || p.C < 0 || p.Ch < 0 || p.HW < 0 || p.K < 0 || p.K > p.N || p.groups < 1) return false;
  if (p.C % p.groups != 0 || p.Ch % p.groups != 0) return false;
  if (!chain_args_ok(p.chain, p.N, p.C * p.HW) || !gemm_grid_fits(p.groups, p.C / p.groups, p.HW)) return false;
  const bool empty = p.K == 0 || p.C == 0 || p.HW == 0;
  if (empty) return true;
  if (p.out == nullptr || p.residual == nullptr || p.index == nullptr || p.scale == nullptr || p.bias == nullptr)
    return false;
  if (p.Ch > 0 && (p.h == nullptr || p.weight == nullptr)) return false;
  return true;
}

// The GEMM of conv1x1_scatter: B is the compact body output h[k] (no shift, no chain); the epilogue reads the
// residual row of frame f = index[k] with f's pending chain, adds it, applies φ and writes row f of out.
template <typename T>
struct Conv1x1ScatterOp {
  Conv1x1ScatterParams p;
  struct Frame {
    int64_t k, f;
  };
  AFN_HD int64_t frames() const { return p.K; }
  AFN_HD int64_t groups() const { return p.groups; }
  AFN_HD int64_t m() const { return p.C / p.groups; }
  AFN_HD int64_t kdim() const { return p.Ch / p.groups; }
  AFN_HD int64_t n() const { return p.HW; }
  AFN_HD Frame frame(int64_t k) const { return Frame{k, p.index[k]}; }
  AFN_HD bool frame_valid(const Frame& fr) const { return fr.f >= 0 && fr.f < p.N; }
  AFN_HD T a(int64_t g, int64_t o, int64_t c) const {
    return load1(static_cast<const T*>(p.weight) + (g * m() + o) * kdim() + c);
  }
  AFN_HD T b(const Frame& fr, int64_t g, int64_t c, int64_t px) const {
    return load1(static_cast<const T*>(p.h) + (fr.k * p.Ch + g * kdim() + c) * p.HW + px);
  }
  AFN_HD void store(const Frame& fr, int64_t, int64_t g, int64_t o, int64_t px, float acc) const {
    const int64_t oc = g * m() + o, plane = p.C * p.HW, e = oc * p.HW + px;
    // in place: this thread reads residual[f, e] and then writes out[f, e]; no other thread touches element e of f
    Vec<T, 1> r = load_vec<T, 1>(static_cast<const T*>(p.residual) + fr.f * plane + e);
    if (chain_present(p.chain)) chain_apply_vec<T, 1>(p.chain, fr.f, plane, e, r);
    const float v = gemm_add(gemm_affine(acc, load1(p.scale + oc), load1(p.bias + oc)), gemm_operand(r.v[0]));
    store1(static_cast<T*>(p.out) + fr.f * plane + e, gemm_round<T>(v, p.relu));
  }
};

}  // namespace afn
