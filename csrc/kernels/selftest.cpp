// Self-test of csrc/kernels without torch.
//
// Every case builds random inputs (never zeros; padding and outputs poisoned with NaN), runs one op and checks it
// against a naive loop written independently from the definitions in the headers, and checks that nothing outside the
// output was written (the NaN guard elements before and after every buffer stay NaN). The case list covers float32 /
// float16 / bfloat16 / float64, odd sizes, pointer offsets of 0, 8 and sizeof(T) bytes (the 16-byte, 8-byte and scalar
// vector paths), empty and full selections, out-of-range indices, both pool lane counts and both resize kinds, both
// selection modes across several tiles and blocks, T not a power of two and T > 256, and invalid arguments.
// Lazy constant chains (chain.h): gather / scatter / pool / blend cases with random chains (L blocks, start values in
// [0, L], upto in [0, L], random ReLU bits) against an independent scalar definition of reference.chain_apply.
//
// Two suites run the same case list:
//   * CPU twins: each case on the CPU twin against the naive loop (runs anywhere);
//   * CUDA launchers (built with AFN_WITH_CUDA_RUNTIME, and a device present — a GPU, or the CPU emulator of
//     tests/cuda_emu): each case on the CUDA launcher, against the naive loop and against the CPU twin on the same
//     inputs (bit-identical for gather / scatter / select; within the type's tolerance for pool / blend, whose
//     float accumulation order may differ on a GPU).
//
//   selftest [--cpu-only | --cuda-only] [--op NAME]    NAME: focal_gather, focal_scatter, ample_fuse_pool,
//                                                      ample_fuse_blend, select_frames, gather_conv1x1,
//                                                      conv1x1_scatter, temporal_aggregate, bl_merge,
//                                                      binarize_pack, adjacent_hamming, segment_boundaries,
//                                                      segment_mean, focus_crop, conversions
// AdaFocus (issue 12): focus_crop (bilinear / floor) and its two backward kernels against scalar double loops written
// from the spec's formulas (§2.3, §6.3), positions including 0, 1, the clamped outside and the far-edge taps.
// bLVNet-TAM (issue 13): temporal_aggregate (plain and pair mode: both outputs from one read) against a scalar
// double-precision TAM with per-clip zero padding, bl_merge against a scalar upsample + add + ReLU.
// The two fused 1×1 GEMMs (gather_conv1x1, conv1x1_scatter) are checked against a scalar double-precision loop within
// a float-accumulation tolerance; their CUDA launchers exist for float16 / bfloat16 only (tensor cores) and must equal
// the CPU twin bit for bit under the emulator (same tiles, same float summation order).
// Prints one line per failure and "<suite>: N passed, N failed" per suite, then "N passed, N failed"; exit code 0
// when everything ran passed (--cuda-only without a device is an error: exit code 2).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ample_fuse_blend.h"
#include "ample_fuse_pool.h"
#include "bl_merge.h"
#include "conv1x1_scatter.h"
#include "focal_gather.h"
#include "focal_scatter.h"
#include "focus_crop.h"
#include "fullvideo_cluster.h"
#include "gather_conv1x1.h"
#include "select_frames.h"
#include "temporal_aggregate.h"

namespace {

using namespace afn;

int g_passed = 0, g_failed = 0;
std::mt19937_64 g_rng(1234);

void report(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s\n", what.c_str());
  }
}

// ---- element types ------------------------------------------------------------------------------------------------
template <typename T>
struct TypeName;
template <>
struct TypeName<float> {
  static const char* get() { return "float32"; }
};
template <>
struct TypeName<double> {
  static const char* get() { return "float64"; }
};
template <>
struct TypeName<half_t> {
  static const char* get() { return "float16"; }
};
template <>
struct TypeName<bf16_t> {
  static const char* get() { return "bfloat16"; }
};

template <typename T>
double to_d(T v) {
  return static_cast<double>(Num<T>::to_acc(v));
}
template <typename T>
T from_d(double v) {
  return Num<T>::from_acc(static_cast<typename Num<T>::acc_t>(v));
}
template <typename T>
double tol() {
  return sizeof(T) == 2 ? (std::is_same<T, bf16_t>::value ? 2e-2 : 2e-3) : (sizeof(T) == 4 ? 1e-5 : 1e-12);
}

// Random values in ±[0.1, 2) (never zero, so unwritten or zero-filled outputs are visible).
template <typename T>
std::vector<T> random_vec(size_t n) {
  std::uniform_real_distribution<double> mag(0.1, 2.0);
  std::bernoulli_distribution sign(0.5);
  std::vector<T> v(n);
  for (auto& x : v) x = from_d<T>(sign(g_rng) ? mag(g_rng) : -mag(g_rng));
  return v;
}

template <typename T>
T nan_value() {
  return from_d<T>(std::numeric_limits<double>::quiet_NaN());
}

// A buffer whose n data elements start `offset` elements into the allocation, with NaN guards before (the offset)
// and one NaN guard element after. An offset of 8 bytes or of one element takes the narrow / scalar vector paths.
template <typename T>
struct Buf {
  std::vector<T> store;
  size_t off, n;
  Buf(const std::vector<T>& v, size_t offset) : store(v.size() + offset + 1, nan_value<T>()), off(offset), n(v.size()) {
    std::copy(v.begin(), v.end(), store.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  Buf(size_t n_, size_t offset) : store(n_ + offset + 1, nan_value<T>()), off(offset), n(n_) {}
  T* ptr() { return store.data() + off; }
  T at(size_t i) const { return store[off + i]; }
  bool guards_intact() const {  // nothing was written before or after the data
    for (size_t i = 0; i < store.size(); ++i)
      if ((i < off || i >= off + n) && !std::isnan(to_d(store[i]))) return false;
    return true;
  }
};

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isnan(got)) return false;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---- backends -----------------------------------------------------------------------------------------------------
enum class Backend { kCpu, kCuda };

// What a case produced: whether it matched the naive loop, and every output buffer (guards included) so that the
// CUDA run can be compared with the CPU twin's run on the same inputs.
struct Outcome {
  std::string name;
  bool ok = true;
  bool exact = true;                // compare the two backends bit for bit (else within `rtol`)
  double rtol = 0;
  std::vector<unsigned char> bits;  // outputs, raw
  std::vector<double> vals;         // outputs, as doubles (for the tolerance comparison)
  template <typename V>
  void add_output(const std::vector<V>& v) {
    const auto* b = reinterpret_cast<const unsigned char*>(v.data());
    bits.insert(bits.end(), b, b + v.size() * sizeof(V));
    if constexpr (std::is_integral<V>::value) {
      for (const V& x : v) vals.push_back(static_cast<double>(x));
    } else {
      for (const V& x : v) vals.push_back(to_d(x));
    }
  }
};

#if defined(AFN_WITH_CUDA_RUNTIME)
template <typename H>
struct CudaType {
  using type = H;
};
template <>
struct CudaType<half_t> {
  using type = __half;
};
template <>
struct CudaType<bf16_t> {
  using type = __nv_bfloat16;
};

// Device copies of host buffers with the same byte offsets (device allocations are at least 256-byte aligned, host
// vectors 16-byte aligned, so a host pointer's alignment class mod 16 is kept). Exact-size allocations: under the
// emulator's AddressSanitizer build any access past a buffer is reported.
struct Mirror {
  struct Region {
    unsigned char* host;
    size_t bytes;
    unsigned char* dev;
  };
  std::vector<Region> regions;
  bool ok = true;
  template <typename V>
  Mirror& add(std::vector<V>& v) {
    Region r{reinterpret_cast<unsigned char*>(v.data()), v.size() * sizeof(V), nullptr};
    if (r.bytes == 0) {  // an empty buffer maps to nullptr
      regions.push_back(r);
      return *this;
    }
    ok = ok && cudaMalloc(reinterpret_cast<void**>(&r.dev), r.bytes) == cudaSuccess &&
         cudaMemcpy(r.dev, r.host, r.bytes, cudaMemcpyHostToDevice) == cudaSuccess;
    regions.push_back(r);
    return *this;
  }
  template <typename P>
  P* map(P* hp) const {  // device pointer at the same place in the same buffer
    if (hp == nullptr) return nullptr;
    const auto* h = reinterpret_cast<const unsigned char*>(hp);
    for (const Region& r : regions) {  // (strictly inside: buffers may be adjacent on the host)
      if (r.bytes == 0 && h == r.host) return nullptr;
      if (h >= r.host && h < r.host + r.bytes) return reinterpret_cast<P*>(r.dev + (h - r.host));
    }
    std::fprintf(stderr, "selftest: pointer not mirrored on the device\n");
    std::abort();
  }
  bool back() {  // device -> host, every buffer (inputs too: an input written by mistake shows up as a mismatch)
    ok = ok && cudaDeviceSynchronize() == cudaSuccess;
    for (const Region& r : regions)
      if (r.bytes > 0) ok = ok && cudaMemcpy(r.host, r.dev, r.bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
    return ok;
  }
  ~Mirror() {
    for (const Region& r : regions)
      if (r.dev != nullptr) cudaFree(r.dev);
  }
};
#endif

// ---- reference maps (independent of index_math.h) -----------------------------------------------------------------
int64_t naive_nearest(int64_t d, int64_t in, int64_t out) {
  if (out == in) return d;
  if (out == 2 * in) return d / 2;
  const float s = static_cast<float>(in) / static_cast<float>(out);
  return std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(d) * s)), in - 1);
}

// Pointer offsets (in elements) that select the 16-byte, 8-byte and scalar paths of type T.
template <typename T>
std::vector<size_t> offsets() {
  std::vector<size_t> o{0, 8 / sizeof(T)};
  if (sizeof(T) < 8) o.push_back(1);
  return o;
}

// ---- lazy constant chains ----------------------------------------------------------------------------------------------
// A random chain over N frames whose (C, H, W) maps have `plane` elements: L blocks (L < 0: no chain), start[f] drawn
// from [0, L], upto from [0, L] (or fixed), random ReLU bits. apply() is the scalar definition written from
// reference.chain_apply, independent of chain.h: per pending block one rounding of the exact sum, then ReLU.
template <typename T>
struct ChainCase {
  int64_t L, plane, upto = 0, relu_mask = 0;
  Buf<T> consts;
  std::vector<int32_t> start;
  ChainCase(int64_t L_, int64_t N, int64_t plane_, size_t off, int64_t upto_fixed = -1)
      : L(L_), plane(plane_), consts(L_ > 0 ? random_vec<T>(static_cast<size_t>(L_ * plane_)) : std::vector<T>{}, off) {
    if (L < 0) return;
    std::uniform_int_distribution<int64_t> blocks(0, L);
    start.resize(static_cast<size_t>(N));
    for (auto& s : start) s = static_cast<int32_t>(blocks(g_rng));
    upto = upto_fixed >= 0 ? upto_fixed : blocks(g_rng);
    relu_mask = std::uniform_int_distribution<int64_t>(0, (int64_t(1) << L) - 1)(g_rng);
  }
  bool on() const { return L >= 0; }
  ChainParams params() {
    ChainParams c;
    if (on()) c = ChainParams{start.data(), consts.ptr(), L, relu_mask, upto};
    return c;
  }
  double apply(double v, int64_t frame, int64_t e) const {  // logical value of stored element e of frame `frame`
    if (!on()) return v;
    for (int64_t i = std::max<int64_t>(start[static_cast<size_t>(frame)], 0); i < upto; ++i) {
      v = to_d(from_d<T>(v + to_d(consts.at(static_cast<size_t>(i * plane + e)))));
      if (((relu_mask >> i) & 1) && v < 0) v = 0;
    }
    return v;
  }
  std::string desc() const {
    return on() ? fmt(" chain L=%lld upto=%lld relu=%llx", (long long)L, (long long)upto, (long long)relu_mask) : "";
  }
};

#if defined(AFN_WITH_CUDA_RUNTIME)
template <typename T>
ChainParams mirror_chain(Mirror& m, ChainCase<T>& ch, ChainParams c) {  // after m.add(ch.consts.store).add(ch.start)
  if (!ch.on()) return c;
  c.start = m.map(c.start);
  c.consts = m.map(c.consts);
  return c;
}
#endif

// ---- focal_gather ---------------------------------------------------------------------------------------------------
template <typename T>
Outcome gather_case(Backend be, int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index,
                    bool shift, size_t off, int64_t chainL = -1, int64_t chain_upto = -1) {
  const int64_t N = B * Tn, HW = H * W, K = static_cast<int64_t>(index.size());
  Buf<T> x(random_vec<T>(static_cast<size_t>(N * C * HW)), off);
  Buf<T> y(static_cast<size_t>(K * C * HW), off);
  ChainCase<T> ch(chainL, N, C * HW, off, chain_upto);
  FocalGatherParams p{x.ptr(), index.data(), y.ptr(), N, C, HW, K, Tn, shift, ch.params()};
  Outcome o;
  o.name = fmt("focal_gather %s B=%lld T=%lld C=%lld H=%lld W=%lld K=%lld shift=%d off=%zu", TypeName<T>::get(),
               (long long)B, (long long)Tn, (long long)C, (long long)H, (long long)W, (long long)K, shift ? 1 : 0, off) +
           ch.desc();
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = focal_gather_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(x.store).add(y.store).add(index).add(ch.consts.store).add(ch.start);
    FocalGatherParams d = p;
    d.x = m.map(p.x);
    d.index = m.map(p.index);
    d.y = m.map(p.y);
    d.chain = mirror_chain(m, ch, p.chain);
    ok = focal_gather_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && y.guards_intact() && x.guards_intact() && ch.consts.guards_intact();
  const int64_t fold = C / 8;
  for (int64_t k = 0; k < K && ok; ++k)
    for (int64_t c = 0; c < C && ok; ++c)
      for (int64_t e = 0; e < HW && ok; ++e) {
        const int64_t f = index[static_cast<size_t>(k)];
        double want = 0.0;
        if (f >= 0 && f < N) {
          int64_t src = f;
          const int64_t t = f % Tn;
          if (shift && c < fold) src = t + 1 < Tn ? f + 1 : -1;
          if (shift && c >= fold && c < 2 * fold) src = t > 0 ? f - 1 : -1;
          if (src >= 0) want = ch.apply(to_d(x.at(static_cast<size_t>((src * C + c) * HW + e))), src, c * HW + e);
        }
        const double got = to_d(y.at(static_cast<size_t>((k * C + c) * HW + e)));
        ok = got == want;
      }
  o.ok = ok;
  o.add_output(y.store);
  o.add_output(x.store);
  return o;
}

// ---- focal_scatter --------------------------------------------------------------------------------------------------
template <typename T>
Outcome scatter_case(Backend be, int64_t N, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index,
                     bool with_const, bool relu, bool inplace, size_t off, int64_t chainL = -1,
                     int64_t chain_upto = -1) {
  const int64_t HW = H * W, K = static_cast<int64_t>(index.size());
  const auto res_v = random_vec<T>(static_cast<size_t>(N * C * HW));
  Buf<T> res(res_v, off);
  Buf<T> y(random_vec<T>(static_cast<size_t>(K * C * HW)), off);
  Buf<T> cm(random_vec<T>(static_cast<size_t>(C * HW)), off);
  Buf<T> out(static_cast<size_t>(N * C * HW), off);
  Buf<T>& ob = inplace ? res : out;
  ChainCase<T> ch(chainL, N, C * HW, off, chain_upto);
  FocalScatterParams p{res.ptr(), y.ptr(), index.data(), with_const ? cm.ptr() : nullptr, ob.ptr(), N, C, HW, K, relu, ch.params()};
  Outcome o;
  o.name = fmt("focal_scatter %s N=%lld C=%lld H=%lld W=%lld K=%lld const=%d relu=%d inplace=%d off=%zu",
               TypeName<T>::get(), (long long)N, (long long)C, (long long)H, (long long)W, (long long)K,
               with_const ? 1 : 0, relu ? 1 : 0, inplace ? 1 : 0, off) +
           ch.desc();
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = focal_scatter_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(res.store).add(y.store).add(cm.store).add(out.store).add(index).add(ch.consts.store).add(ch.start);
    FocalScatterParams d = p;
    d.chain = mirror_chain(m, ch, p.chain);
    d.residual = m.map(p.residual);
    d.y = m.map(p.y);
    d.index = m.map(p.index);
    d.const_map = m.map(p.const_map);
    d.out = m.map(p.out);
    ok = focal_scatter_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && res.guards_intact() && out.guards_intact() && y.guards_intact() && cm.guards_intact() &&
       ch.consts.guards_intact();
  for (int64_t f = 0; f < N && ok; ++f) {
    int64_t k = -1;
    for (int64_t j = 0; j < K; ++j)
      if (index[static_cast<size_t>(j)] == f) k = j;
    for (int64_t e = 0; e < C * HW && ok; ++e) {
      const double stored = to_d(res_v[static_cast<size_t>(f * C * HW + e)]);
      if (ch.on() && k < 0) {  // unselected under a chain: the stored row, unchanged (in place: never written)
        ok = to_d(ob.at(static_cast<size_t>(f * C * HW + e))) == stored;
        continue;
      }
      const double r = ch.apply(stored, f, e);
      const double add = k >= 0 ? to_d(y.at(static_cast<size_t>(k * C * HW + e)))
                                : (with_const ? to_d(cm.at(static_cast<size_t>(e))) : 0.0);
      double want = to_d(from_d<T>(r + add));  // one rounding of the exact sum (exact in double for these types)
      if (relu && want < 0) want = 0;
      ok = to_d(ob.at(static_cast<size_t>(f * C * HW + e))) == want;
    }
  }
  o.ok = ok;
  o.add_output(res.store);
  o.add_output(out.store);
  return o;
}

// ---- ample_fuse_pool / ample_fuse_blend ----------------------------------------------------------------------------
template <typename T>
Outcome pool_case(Backend be, int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, size_t off,
                  size_t off_xl = SIZE_MAX, int64_t chainL = -1, int64_t C = 1) {
  if (off_xl == SIZE_MAX) off_xl = off;
  Buf<T> xl(random_vec<T>(static_cast<size_t>(NC * h * w)), off_xl);
  Buf<T> xb(random_vec<T>(static_cast<size_t>(NC * H * W)), off);
  Buf<T> out(static_cast<size_t>(NC), off);
  ChainCase<T> ch(chainL, NC / C, C * H * W, off, chainL);  // the fusion reads with upto = L
  AmpleFusePoolParams p{xl.ptr(), xb.ptr(), out.ptr(), NC, h, w, H, W, C, ch.params()};
  Outcome o;
  o.name = fmt("ample_fuse_pool %s NC=%lld %lldx%lld->%lldx%lld off=%zu off_xl=%zu", TypeName<T>::get(),
               (long long)NC, (long long)h, (long long)w, (long long)H, (long long)W, off, off_xl) +
           ch.desc();
  o.exact = false;
  o.rtol = tol<T>() * 4;
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = ample_fuse_pool_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(xl.store).add(xb.store).add(out.store).add(ch.consts.store).add(ch.start);
    AmpleFusePoolParams d = p;
    d.chain = mirror_chain(m, ch, p.chain);
    d.xl = m.map(p.xl);
    d.xb = m.map(p.xb);
    d.out = m.map(p.out);
    ok = ample_fuse_pool_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && xl.guards_intact() && xb.guards_intact() && out.guards_intact() && ch.consts.guards_intact();
  for (int64_t pl = 0; pl < NC && ok; ++pl) {
    double s = 0, sabs = 0;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        const double u =
            to_d(xl.at(static_cast<size_t>(pl * h * w + naive_nearest(i, h, H) * w + naive_nearest(j, w, W))));
        const double b =
            ch.apply(to_d(xb.at(static_cast<size_t>(pl * H * W + i * W + j))), pl / C, (pl % C) * H * W + i * W + j);
        s += u + b;
        sabs += std::fabs(u) + std::fabs(b);
      }
    const double want = s / static_cast<double>(H * W);
    // accumulation error scales with Σ|terms|; the final rounding with the type's epsilon
    const double atol = tol<T>() * (1.0 + sabs / static_cast<double>(H * W));
    ok = close(to_d(out.at(static_cast<size_t>(pl))), want, tol<T>(), atol);
  }
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(xl.store);
  o.add_output(xb.store);
  return o;
}

template <typename T>
Outcome blend_case(Backend be, int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, bool relu, bool inplace,
                   size_t off, int64_t chainL = -1, int64_t C = 1) {
  Buf<T> xl(random_vec<T>(static_cast<size_t>(NC * h * w)), off);
  const auto xb_v = random_vec<T>(static_cast<size_t>(NC * H * W));
  Buf<T> xb(xb_v, off);
  std::vector<T> av(static_cast<size_t>(NC));
  std::uniform_real_distribution<double> u01(0.05, 0.95);
  for (auto& v : av) v = from_d<T>(u01(g_rng));
  Buf<T> a(av, off);
  Buf<T> out(static_cast<size_t>(NC * H * W), off);
  Buf<T>& ob = inplace ? xb : out;
  ChainCase<T> ch(chainL, NC / C, C * H * W, off, chainL);  // the fusion reads with upto = L
  AmpleFuseBlendParams p{xl.ptr(), xb.ptr(), a.ptr(), ob.ptr(), NC, h, w, H, W, relu, C, ch.params()};
  Outcome o;
  o.name = fmt("ample_fuse_blend %s NC=%lld %lldx%lld->%lldx%lld relu=%d inplace=%d off=%zu", TypeName<T>::get(),
               (long long)NC, (long long)h, (long long)w, (long long)H, (long long)W, relu ? 1 : 0, inplace ? 1 : 0,
               off) +
           ch.desc();
  o.exact = false;
  o.rtol = tol<T>();
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = ample_fuse_blend_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(xl.store).add(xb.store).add(a.store).add(out.store).add(ch.consts.store).add(ch.start);
    AmpleFuseBlendParams d = p;
    d.chain = mirror_chain(m, ch, p.chain);
    d.xl = m.map(p.xl);
    d.xb = m.map(p.xb);
    d.a = m.map(p.a);
    d.out = m.map(p.out);
    ok = ample_fuse_blend_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && xl.guards_intact() && xb.guards_intact() && a.guards_intact() && out.guards_intact() &&
       ch.consts.guards_intact();
  for (int64_t pl = 0; pl < NC && ok; ++pl)
    for (int64_t i = 0; i < H && ok; ++i)
      for (int64_t j = 0; j < W && ok; ++j) {
        const double aa = to_d(a.at(static_cast<size_t>(pl)));
        const double u =
            to_d(xl.at(static_cast<size_t>(pl * h * w + naive_nearest(i, h, H) * w + naive_nearest(j, w, W))));
        const double b =
            ch.apply(to_d(xb_v[static_cast<size_t>(pl * H * W + i * W + j)]), pl / C, (pl % C) * H * W + i * W + j);
        double want = aa * u + (1 - aa) * b;
        if (relu && want < 0) want = 0;
        ok = close(to_d(ob.at(static_cast<size_t>(pl * H * W + i * W + j))), want, tol<T>(), tol<T>() * 4);
      }
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(xb.store);
  return o;
}

// ---- gather_conv1x1 / conv1x1_scatter (fused 1×1 GEMMs with lazy chains) ------------------------------------------
struct ChainSpec {
  int64_t L = 0, upto = 0, relu_mask = 0;  // L = 0: no chain
};

// Random pending chain for N frames: start in [-1, L] (−1 exercises the clamp to 0), constant maps (L, C, HW).
template <typename T>
struct ChainData {
  std::vector<int32_t> start;
  std::vector<T> consts;
  ChainSpec spec;
  ChainData(const ChainSpec& cs, int64_t N, int64_t plane) : spec(cs) {
    if (cs.L == 0) return;
    std::uniform_int_distribution<int> st(-1, static_cast<int>(cs.L));
    start.resize(static_cast<size_t>(N));
    for (auto& v : start) v = st(g_rng);
    consts = random_vec<T>(static_cast<size_t>(cs.L * plane));
  }
  ChainParams params(const int32_t* st, const T* k) const {
    if (spec.L == 0) return ChainParams{nullptr, nullptr, 0, 0, 0};
    return ChainParams{st, k, spec.L, spec.relu_mask, spec.upto};
  }
  // Naive chain: blocks max(start, 0) .. upto−1, one rounding of the exact sum per block, ReLU per mask bit.
  double apply(double v, int64_t f, int64_t plane, int64_t e) const {
    if (spec.L == 0) return v;
    for (int64_t i = std::max<int64_t>(start[static_cast<size_t>(f)], 0); i < spec.upto; ++i) {
      v = to_d(from_d<T>(v + to_d(consts[static_cast<size_t>(i * plane + e)])));
      if ((spec.relu_mask >> i & 1) && v < 0) v = 0;
    }
    return v;
  }
};

std::vector<float> random_floats(size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(u(g_rng));
  return v;
}

// |got − want| within the float accumulation error (Kd terms, relative to Σ|terms|) and the storage rounding.
template <typename T>
bool gemm_close(double got, double want, double mag, int64_t kd) {
  const double rt = sizeof(T) == 2 ? tol<T>() : 1e-6;
  return close(got, want, rt, 1.2e-7 * static_cast<double>(kd + 8) * mag + 1e-30);
}

template <typename T>
Outcome gather_conv1x1_case(Backend be, int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, int64_t O, int64_t G,
                            std::vector<int64_t> index, bool shift, bool relu, ChainSpec cs, size_t off) {
  const int64_t N = B * Tn, HW = H * W, K = static_cast<int64_t>(index.size()), Cg = C / G, Og = O / G;
  Buf<T> x(random_vec<T>(static_cast<size_t>(N * C * HW)), off);
  Buf<T> w(random_vec<T>(static_cast<size_t>(O * Cg)), off);
  std::vector<float> sc = random_floats(static_cast<size_t>(O), 0.5, 1.5), bi = random_floats(static_cast<size_t>(O), -1, 1);
  ChainData<T> ch(cs, N, C * HW);
  Buf<T> out(static_cast<size_t>(K * O * HW), off);
  GatherConv1x1Params p{x.ptr(), index.data(), w.ptr(), sc.data(), bi.data(), out.ptr(), N, C, HW, K, O, G, Tn,
                        shift, relu, ch.params(ch.start.data(), ch.consts.data())};
  Outcome o;
  o.name = fmt("gather_conv1x1 %s B=%lld T=%lld C=%lld H=%lld W=%lld O=%lld groups=%lld K=%lld shift=%d relu=%d "
               "chain L=%lld upto=%lld mask=%lld off=%zu",
               TypeName<T>::get(), (long long)B, (long long)Tn, (long long)C, (long long)H, (long long)W, (long long)O,
               (long long)G, (long long)K, shift ? 1 : 0, relu ? 1 : 0, (long long)cs.L, (long long)cs.upto,
               (long long)cs.relu_mask, off);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = gather_conv1x1_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    if constexpr (sizeof(T) == 2) {
      Mirror m;
      m.add(x.store).add(w.store).add(sc).add(bi).add(out.store).add(index).add(ch.start).add(ch.consts);
      GatherConv1x1Params d = p;
      d.x = m.map(p.x);
      d.index = m.map(p.index);
      d.weight = m.map(p.weight);
      d.scale = m.map(p.scale);
      d.bias = m.map(p.bias);
      d.out = m.map(p.out);
      d.chain.start = m.map(p.chain.start);
      d.chain.consts = m.map(p.chain.consts);
      ok = gather_conv1x1_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
    }
#endif
  }
  ok = ok && out.guards_intact() && x.guards_intact() && w.guards_intact();
  const int64_t fold = C / 8, plane = C * HW;
  std::vector<double> z(static_cast<size_t>(C * HW));
  for (int64_t k = 0; k < K && ok; ++k) {
    const int64_t f = index[static_cast<size_t>(k)];
    for (int64_t c = 0; c < C; ++c)  // the gathered, chain-applied input frame, as float operands
      for (int64_t e = 0; e < HW; ++e) {
        int64_t src = (f >= 0 && f < N) ? f : -1;
        if (src >= 0 && shift && c < fold) src = f % Tn + 1 < Tn ? f + 1 : -1;
        if (src >= 0 && shift && c >= fold && c < 2 * fold) src = f % Tn > 0 ? f - 1 : -1;
        double v = 0;
        if (src >= 0) v = ch.apply(to_d(x.at(static_cast<size_t>(src * plane + c * HW + e))), src, plane, c * HW + e);
        z[static_cast<size_t>(c * HW + e)] = static_cast<float>(v);
      }
    for (int64_t oc = 0; oc < O && ok; ++oc)
      for (int64_t e = 0; e < HW && ok; ++e) {
        const int64_t g = oc / Og;
        double s = 0, mag = 0;
        for (int64_t c = 0; c < Cg; ++c) {
          const double t = static_cast<double>(static_cast<float>(to_d(w.at(static_cast<size_t>(oc * Cg + c))))) *
                           z[static_cast<size_t>((g * Cg + c) * HW + e)];
          s += t;
          mag += std::fabs(t);
        }
        double want = s * sc[static_cast<size_t>(oc)] + bi[static_cast<size_t>(oc)];
        if (relu && want < 0) want = 0;
        mag = mag * sc[static_cast<size_t>(oc)] + std::fabs(bi[static_cast<size_t>(oc)]);
        ok = gemm_close<T>(to_d(out.at(static_cast<size_t>((k * O + oc) * HW + e))), want, mag, Cg);
        if (!ok) o.name += fmt(" [k=%lld o=%lld p=%lld: got %.9g want %.9g]", (long long)k, (long long)oc, (long long)e,
                               to_d(out.at(static_cast<size_t>((k * O + oc) * HW + e))), want);
      }
  }
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(x.store);
  return o;
}

template <typename T>
Outcome conv1x1_scatter_case(Backend be, int64_t N, int64_t C, int64_t Ch, int64_t H, int64_t W, int64_t G,
                             std::vector<int64_t> index, bool relu, bool inplace, ChainSpec cs, size_t off) {
  const int64_t HW = H * W, K = static_cast<int64_t>(index.size()), Cg = Ch / G, Og = C / G, plane = C * HW;
  Buf<T> h(random_vec<T>(static_cast<size_t>(K * Ch * HW)), off);
  Buf<T> w(random_vec<T>(static_cast<size_t>(C * Cg)), off);
  std::vector<float> sc = random_floats(static_cast<size_t>(C), 0.5, 1.5), bi = random_floats(static_cast<size_t>(C), -1, 1);
  const auto res_v = random_vec<T>(static_cast<size_t>(N * plane));
  Buf<T> res(res_v, off);
  ChainData<T> ch(cs, N, plane);
  // out-of-place: `out` starts as another random tensor; rows not selected must keep it
  const auto out_v = random_vec<T>(static_cast<size_t>(N * plane));
  Buf<T> out(out_v, off);
  Buf<T>& ob = inplace ? res : out;
  const std::vector<T>& before = inplace ? res_v : out_v;
  Conv1x1ScatterParams p{h.ptr(), w.ptr(), sc.data(), bi.data(), res.ptr(), index.data(), ob.ptr(), N, C, Ch, HW, K,
                         G, relu, ch.params(ch.start.data(), ch.consts.data())};
  Outcome o;
  o.name = fmt("conv1x1_scatter %s N=%lld C=%lld Ch=%lld H=%lld W=%lld groups=%lld K=%lld relu=%d inplace=%d "
               "chain L=%lld upto=%lld mask=%lld off=%zu",
               TypeName<T>::get(), (long long)N, (long long)C, (long long)Ch, (long long)H, (long long)W, (long long)G,
               (long long)K, relu ? 1 : 0, inplace ? 1 : 0, (long long)cs.L, (long long)cs.upto,
               (long long)cs.relu_mask, off);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = conv1x1_scatter_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    if constexpr (sizeof(T) == 2) {
      Mirror m;
      m.add(h.store).add(w.store).add(sc).add(bi).add(res.store).add(out.store).add(index).add(ch.start).add(ch.consts);
      Conv1x1ScatterParams d = p;
      d.h = m.map(p.h);
      d.weight = m.map(p.weight);
      d.scale = m.map(p.scale);
      d.bias = m.map(p.bias);
      d.residual = m.map(p.residual);
      d.index = m.map(p.index);
      d.out = m.map(p.out);
      d.chain.start = m.map(p.chain.start);
      d.chain.consts = m.map(p.chain.consts);
      ok = conv1x1_scatter_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
    }
#endif
  }
  ok = ok && h.guards_intact() && res.guards_intact() && out.guards_intact() && w.guards_intact();
  for (int64_t f = 0; f < N && ok; ++f) {
    int64_t k = -1;
    for (int64_t j = 0; j < K; ++j)
      if (index[static_cast<size_t>(j)] == f) k = j;
    for (int64_t oc = 0; oc < C && ok; ++oc)
      for (int64_t e = 0; e < HW && ok; ++e) {
        const size_t at = static_cast<size_t>(f * plane + oc * HW + e);
        const double got = to_d(ob.at(at));
        if (k < 0) {  // untouched, bit for bit
          ok = std::memcmp(&before[at], &ob.store[ob.off + at], sizeof(T)) == 0;
          continue;
        }
        const int64_t g = oc / Og;
        double s = 0, mag = 0;
        for (int64_t c = 0; c < Cg; ++c) {
          const double t = static_cast<double>(static_cast<float>(to_d(w.at(static_cast<size_t>(oc * Cg + c))))) *
                           static_cast<float>(to_d(h.at(static_cast<size_t>((k * Ch + g * Cg + c) * HW + e))));
          s += t;
          mag += std::fabs(t);
        }
        const double r = static_cast<float>(ch.apply(to_d(res_v[at]), f, plane, oc * HW + e));
        double want = s * sc[static_cast<size_t>(oc)] + bi[static_cast<size_t>(oc)] + r;
        if (relu && want < 0) want = 0;
        mag = mag * sc[static_cast<size_t>(oc)] + std::fabs(bi[static_cast<size_t>(oc)]) + std::fabs(r);
        ok = gemm_close<T>(got, want, mag, Cg);
        if (!ok) o.name += fmt(" [f=%lld o=%lld p=%lld: got %.9g want %.9g]", (long long)f, (long long)oc, (long long)e,
                               got, want);
      }
  }
  o.ok = ok;
  o.add_output(res.store);
  o.add_output(out.store);
  return o;
}

// ---- select_frames --------------------------------------------------------------------------------------------------
template <typename T>
Outcome select_case(Backend be, int64_t L, int64_t B, int64_t Tn, SelectMode mode, int64_t k, bool with_ties) {
  const int64_t N = B * Tn;
  std::vector<T> logits = random_vec<T>(static_cast<size_t>(L * N * 2));
  if (with_ties) {  // few distinct values: many equal margins, and a NaN
    std::uniform_int_distribution<int> pick(-2, 2);
    for (auto& v : logits) v = from_d<T>(0.5 * pick(g_rng));
    if (!logits.empty()) logits[3 % logits.size()] = nan_value<T>();
    if (logits.size() > 5) logits[5] = nan_value<T>();  // two NaN margins in one clip (rows 1 and 2): NaN vs NaN
  }
  const int64_t M = mode == SelectMode::kTopK ? B * k : N;
  std::vector<int64_t> index(static_cast<size_t>(L * M) + 1, -7), counts(static_cast<size_t>(L) + 1, -7);
  std::vector<T> mask(static_cast<size_t>(L * N) + 1, nan_value<T>());
  SelectFramesParams p{logits.data(), index.data(), counts.data(), mask.data(), L, B, Tn, mode, k};
  Outcome o;
  o.name = fmt("select_frames %s L=%lld B=%lld T=%lld %s k=%lld ties=%d", TypeName<T>::get(), (long long)L,
               (long long)B, (long long)Tn, mode == SelectMode::kTopK ? "topk" : "threshold", (long long)k,
               with_ties ? 1 : 0);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = select_frames_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(logits).add(index).add(counts).add(mask);
    SelectFramesParams d = p;
    d.logits = m.map(p.logits);
    d.index = m.map(p.index);
    d.counts = m.map(p.counts);
    d.mask = m.map(p.mask);
    ok = select_frames_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  auto margin = [&](int64_t row) {
    return to_d(from_d<T>(to_d(logits[static_cast<size_t>(2 * row + 1)]) - to_d(logits[static_cast<size_t>(2 * row)])));
  };
  for (int64_t l = 0; l < L && ok; ++l) {
    std::vector<int64_t> want;
    std::vector<char> selm(static_cast<size_t>(N), 0);
    if (mode == SelectMode::kThreshold) {
      for (int64_t n = 0; n < N; ++n)
        if (margin(l * N + n) > 0) want.push_back(n);
    } else {
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int64_t> order(static_cast<size_t>(Tn));
        std::iota(order.begin(), order.end(), 0);
        auto key = [&](int64_t t) {  // NaN sorts first (largest)
          const double m = margin(l * N + b * Tn + t);
          return std::isnan(m) ? std::numeric_limits<double>::infinity() : m;
        };
        auto isn = [&](int64_t t) { return std::isnan(margin(l * N + b * Tn + t)); };
        std::stable_sort(order.begin(), order.end(), [&](int64_t u, int64_t v) {
          if (isn(u) != isn(v)) return isn(u);
          return key(u) > key(v);
        });
        std::vector<int64_t> top(order.begin(), order.begin() + k);
        std::sort(top.begin(), top.end());
        for (auto t : top) want.push_back(b * Tn + t);
      }
    }
    for (auto n : want) selm[static_cast<size_t>(n)] = 1;
    ok = counts[static_cast<size_t>(l)] == static_cast<int64_t>(want.size());
    for (int64_t i = 0; i < M && ok; ++i) {
      const int64_t expect = i < static_cast<int64_t>(want.size()) ? want[static_cast<size_t>(i)] : N;
      ok = index[static_cast<size_t>(l * M + i)] == expect;
    }
    for (int64_t n = 0; n < N && ok; ++n)
      ok = to_d(mask[static_cast<size_t>(l * N + n)]) == (selm[static_cast<size_t>(n)] ? 1.0 : 0.0);
  }
  // no write past the end
  ok = ok && index[static_cast<size_t>(L * M)] == -7 && counts[static_cast<size_t>(L)] == -7 &&
       std::isnan(to_d(mask[static_cast<size_t>(L * N)]));
  o.ok = ok;
  o.add_output(index);
  o.add_output(counts);
  o.add_output(mask);
  return o;
}

// ---- temporal_aggregate / bl_merge (bLVNet-TAM) -------------------------------------------------------------------
// B clips of Tn frames, C channels, H×W planes, K taps; pair: the two-output mode with a second weight set.
template <typename T>
Outcome tam_case(Backend be, int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, int64_t K, bool pair, bool relu,
                 size_t off) {
  const int64_t N = B * Tn, HW = H * W;
  const size_t n = static_cast<size_t>(N * C * HW);
  Buf<T> x(random_vec<T>(n), off);
  const std::vector<float> w1 = random_vec<float>(static_cast<size_t>(K * C));
  const std::vector<float> w2 = random_vec<float>(static_cast<size_t>(K * C));
  Buf<float> wa(w1, 0), wb(w2, 0);
  Buf<T> out(n, off), out2(n, off);
  TemporalAggregateParams p{x.ptr(), wa.ptr(), out.ptr(), pair ? wb.ptr() : nullptr, pair ? out2.ptr() : nullptr,
                            N,       C,        HW,        Tn,                         K,                           relu};
  Outcome o;
  o.name = fmt("temporal_aggregate %s B=%lld T=%lld C=%lld %lldx%lld K=%lld pair=%d relu=%d off=%zu",
               TypeName<T>::get(), (long long)B, (long long)Tn, (long long)C, (long long)H, (long long)W, (long long)K,
               pair ? 1 : 0, relu ? 1 : 0, off);
  o.exact = false;
  o.rtol = tol<T>();
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = temporal_aggregate_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(x.store).add(wa.store).add(wb.store).add(out.store).add(out2.store);
    TemporalAggregateParams d = p;
    d.x = m.map(p.x);
    d.weight = m.map(p.weight);
    d.out = m.map(p.out);
    d.weight2 = m.map(p.weight2);
    d.out2 = m.map(p.out2);
    ok = temporal_aggregate_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && x.guards_intact() && out.guards_intact() && wa.guards_intact() && wb.guards_intact();
  ok = ok && std::all_of(out2.store.begin() + (pair ? static_cast<std::ptrdiff_t>(out2.store.size()) : 0),
                         out2.store.end(), [](T v) { return std::isnan(to_d(v)); });  // out2 untouched unless pair
  ok = ok && out2.guards_intact();
  const int64_t r = K / 2;
  for (int o2 = 0; o2 < (pair ? 2 : 1) && ok; ++o2) {
    const std::vector<float>& wv = o2 == 0 ? w1 : w2;
    const Buf<T>& ob = o2 == 0 ? out : out2;
    for (int64_t f = 0; f < N && ok; ++f)
      for (int64_t c = 0; c < C && ok; ++c)
        for (int64_t e = 0; e < HW && ok; ++e) {
          double want = 0, sabs = 0;
          for (int64_t i = 0; i < K; ++i) {
            const int64_t t = f % Tn + i - r;  // source frame in the clip; zero outside
            if (t < 0 || t >= Tn) continue;
            const double term = static_cast<double>(wv[static_cast<size_t>(i * C + c)]) *
                                to_d(x.at(static_cast<size_t>(((f / Tn * Tn + t) * C + c) * HW + e)));
            want += term;
            sabs += std::fabs(term);
          }
          if (relu && want < 0) want = 0;
          ok = close(to_d(ob.at(static_cast<size_t>((f * C + c) * HW + e))), want, tol<T>(), tol<T>() * (1 + sabs));
        }
  }
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(out2.store);
  o.add_output(x.store);
  return o;
}

template <typename T>
Outcome merge_case(Backend be, int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, bool relu, bool inplace,
                   size_t off) {
  Buf<T> big(random_vec<T>(static_cast<size_t>(NC * h * w)), off);
  const auto little_v = random_vec<T>(static_cast<size_t>(NC * H * W));
  Buf<T> little(little_v, off);
  Buf<T> out(static_cast<size_t>(NC * H * W), off);
  Buf<T>& ob = inplace ? little : out;
  BLMergeParams p{big.ptr(), little.ptr(), ob.ptr(), NC, h, w, H, W, relu};
  Outcome o;
  o.name = fmt("bl_merge %s NC=%lld %lldx%lld->%lldx%lld relu=%d inplace=%d off=%zu", TypeName<T>::get(),
               (long long)NC, (long long)h, (long long)w, (long long)H, (long long)W, relu ? 1 : 0, inplace ? 1 : 0,
               off);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = bl_merge_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(big.store).add(little.store).add(out.store);
    BLMergeParams d = p;
    d.big = m.map(p.big);
    d.little = m.map(p.little);
    d.out = m.map(p.out);
    ok = bl_merge_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && big.guards_intact() && little.guards_intact() && out.guards_intact();
  for (int64_t pl = 0; pl < NC && ok; ++pl)
    for (int64_t i = 0; i < H && ok; ++i)
      for (int64_t j = 0; j < W && ok; ++j) {
        const double u =
            to_d(big.at(static_cast<size_t>(pl * h * w + naive_nearest(i, h, H) * w + naive_nearest(j, w, W))));
        double want = u + to_d(little_v[static_cast<size_t>(pl * H * W + i * W + j)]);
        if (relu && want < 0) want = 0;
        // one add in acc_t, one rounding: the correctly rounded exact sum (inputs in ±[0.1, 2) make the float sum
        // of two 16-bit values exact, so no double rounding), bit for bit
        ok = to_d(ob.at(static_cast<size_t>(pl * H * W + i * W + j))) == to_d(from_d<T>(want));
      }
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(little.store);
  return o;
}

// ---- fullvideo_cluster (binarize_pack, adjacent_hamming, segment_boundaries, segment_mean) -------------------------
// Activations with exact zeros, −0 and NaN (all pack to 0), so the sign test's boundary is exercised.
template <typename T>
std::vector<T> signed_vec(size_t n) {
  std::vector<T> v = random_vec<T>(n);
  std::uniform_int_distribution<int> pick(0, 9);
  for (auto& x : v) {
    const int r = pick(g_rng);
    if (r == 0) x = from_d<T>(0.0);
    if (r == 1) x = from_d<T>(-0.0);
    if (r == 2) x = nan_value<T>();
  }
  return v;
}

template <typename T>
Outcome binarize_case(Backend be, int64_t N, int64_t D) {
  const int64_t W = (D + 31) / 32;
  std::vector<T> y = signed_vec<T>(static_cast<size_t>(N * D));
  std::vector<int32_t> bits(static_cast<size_t>(N * W) + 1, -7);
  BinarizePackParams p{y.data(), bits.data(), N, D};
  Outcome o;
  o.name = fmt("binarize_pack %s N=%lld D=%lld", TypeName<T>::get(), (long long)N, (long long)D);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = binarize_pack_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(y).add(bits);
    BinarizePackParams d = p;
    d.y = m.map(y.data());
    d.bits = m.map(p.bits);
    ok = binarize_pack_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  for (int64_t n = 0; n < N && ok; ++n)
    for (int64_t e = 0; e < W * 32 && ok; ++e) {
      const bool want = e < D && to_d(y[static_cast<size_t>(n * D + e)]) > 0.0;  // NaN > 0 is false
      const uint32_t word = static_cast<uint32_t>(bits[static_cast<size_t>(n * W + e / 32)]);
      ok = ((word >> (e % 32)) & 1u) == (want ? 1u : 0u);
    }
  o.ok = ok && bits.back() == -7;
  o.add_output(bits);
  return o;
}

Outcome hamming_case(Backend be, int64_t N, int64_t W) {
  std::uniform_int_distribution<uint32_t> word;
  std::vector<int32_t> bits(static_cast<size_t>(N * W));
  for (auto& b : bits) b = static_cast<int32_t>(word(g_rng));
  if (N > 2 && W > 0) bits[static_cast<size_t>(W)] = bits[0];  // a row equal to the previous one in its first word
  const int64_t P = N > 1 ? N - 1 : 0;
  std::vector<int32_t> h(static_cast<size_t>(P) + 1, -7);
  AdjacentHammingParams p{bits.data(), h.data(), N, W};
  Outcome o;
  o.name = fmt("adjacent_hamming N=%lld W=%lld", (long long)N, (long long)W);
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = adjacent_hamming_cpu(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(bits).add(h);
    AdjacentHammingParams d = p;
    d.bits = m.map(p.bits);
    d.h = m.map(p.h);
    ok = adjacent_hamming_cuda(d, nullptr) == cudaSuccess && m.back();
#endif
  }
  for (int64_t t = 0; t < P && ok; ++t) {
    int64_t want = 0;
    for (int64_t w = 0; w < W; ++w)
      for (int i = 0; i < 32; ++i)
        want += ((static_cast<uint32_t>(bits[static_cast<size_t>(t * W + w)]) >> i) & 1u) !=
                ((static_cast<uint32_t>(bits[static_cast<size_t>((t + 1) * W + w)]) >> i) & 1u);
    ok = h[static_cast<size_t>(t)] == want;
  }
  o.ok = ok && h.back() == -7;
  o.add_output(h);
  return o;
}

// Video lengths -> CSR offsets.
std::vector<int64_t> csr(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> o(1, 0);
  for (auto l : lengths) o.push_back(o.back() + l);
  return o;
}

// Naive boundaries of one video (spec §4.1 / §4.2 / §4.4 written directly): slope sorts the pairs by (h, t)
// descending and cuts after the first K − 1; even makes ⌈len/K⌉-frame segments first; cumulative compares the
// fraction of the total change so far with c/K (as integers) frame by frame. Returns K + 1 offsets, then M.
std::vector<int64_t> naive_boundaries(const int32_t* h, int64_t len, int64_t K, BoundaryRule rule) {
  std::vector<int64_t> off;
  int64_t total = 0;
  for (int64_t t = 0; t + 1 < len; ++t) total += h[t];
  if (rule == BoundaryRule::kCumulative && len < K) {
    for (int64_t j = 0; j <= K; ++j) off.push_back(std::min(j, len));
    off.push_back(len);
    return off;
  }
  if (rule == BoundaryRule::kCumulative && total > 0) {
    off.push_back(0);
    int64_t c = 1, so_far = 0;
    for (int64_t k = 1; k < len; ++k) {
      so_far += h[k - 1];
      if (so_far * K > c * total) off.push_back(k), ++c;
    }
    const int64_t M = static_cast<int64_t>(off.size());
    while (static_cast<int64_t>(off.size()) < K + 1) off.push_back(len);
    off.push_back(M);
    return off;
  }
  if (rule != BoundaryRule::kSlope) {  // even (and cumulative with no change at all)
    off.push_back(0);
    for (int64_t j = 0; j < K; ++j) off.push_back(off.back() + len / K + (j < len % K ? 1 : 0));
    off.push_back(std::min(len, K));
    return off;
  }
  std::vector<int64_t> pairs(static_cast<size_t>(len > 1 ? len - 1 : 0));
  std::iota(pairs.begin(), pairs.end(), 0);
  std::sort(pairs.begin(), pairs.end(), [&](int64_t a, int64_t b) { return h[a] != h[b] ? h[a] > h[b] : a > b; });
  std::vector<int64_t> cuts(pairs.begin(), pairs.begin() + std::min<int64_t>(K - 1, pairs.size()));
  std::sort(cuts.begin(), cuts.end());
  off.push_back(0);
  for (auto t : cuts) off.push_back(t + 1);
  while (static_cast<int64_t>(off.size()) < K + 1) off.push_back(len);
  off.push_back(std::min(len, K));
  return off;
}

// corrupt: frame_offsets out of range and decreasing (only unvalidated device input can be so): no result is
// defined, but nothing outside the outputs may be touched (ASan) and the CUDA run must equal the CPU twin.
Outcome boundaries_case(Backend be, std::vector<int64_t> lengths, int64_t K, BoundaryRule rule, int levels,
                        bool one_video, bool corrupt = false) {
  std::vector<int64_t> fo = csr(lengths);
  const std::vector<int64_t> fo_true = fo;
  const int64_t n_total = fo.back(), B = static_cast<int64_t>(lengths.size());
  std::uniform_int_distribution<int32_t> val(0, levels - 1);
  std::vector<int32_t> h(static_cast<size_t>(n_total - 1));
  for (auto& x : h) x = val(g_rng);
  std::vector<int64_t> off(static_cast<size_t>(B * (K + 1)) + 1, -7), m(static_cast<size_t>(B) + 1, -7);
  if (corrupt) fo = {-4, n_total + 9, 2, n_total};
  SegmentBoundariesParams p{h.data(), one_video ? nullptr : fo.data(), off.data(), m.data(), n_total, B, K, rule};
  Outcome o;
  o.name = fmt("segment_boundaries %s B=%lld N_total=%lld K=%lld levels=%d%s",
               rule == BoundaryRule::kSlope ? "slope" : (rule == BoundaryRule::kEven ? "even" : "cumulative"), (long long)B, (long long)n_total, (long long)K, levels,
               one_video ? " (no frame_offsets)" : (corrupt ? " (corrupt frame_offsets)" : ""));
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = segment_boundaries_cpu(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror mi;
    mi.add(h).add(fo).add(off).add(m);
    SegmentBoundariesParams d = p;
    d.h = mi.map(p.h);
    d.frame_offsets = mi.map(p.frame_offsets);
    d.offsets = mi.map(p.offsets);
    d.num_segments = mi.map(p.num_segments);
    ok = segment_boundaries_cuda(d, nullptr) == cudaSuccess && mi.back();
#endif
  }
  for (int64_t b = 0; b < B && ok && !corrupt; ++b) {
    const int64_t len = lengths[static_cast<size_t>(b)];
    const std::vector<int64_t> want = naive_boundaries(h.data() + fo_true[static_cast<size_t>(b)], len, K, rule);
    ok = m[static_cast<size_t>(b)] == want[static_cast<size_t>(K + 1)];
    for (int64_t j = 0; j <= K && ok; ++j) ok = off[static_cast<size_t>(b * (K + 1) + j)] == want[static_cast<size_t>(j)];
  }
  o.ok = ok && off.back() == -7 && m.back() == -7;
  o.add_output(off);
  o.add_output(m);
  return o;
}

template <typename T>
Outcome segment_mean_case(Backend be, std::vector<int64_t> lengths, int64_t K, int64_t D, bool one_video,
                          bool corrupt = false) {
  std::vector<int64_t> fo = csr(lengths);
  const int64_t n_total = fo.back(), B = static_cast<int64_t>(lengths.size());
  std::vector<T> a = random_vec<T>(static_cast<size_t>(n_total * D));
  // Random segments per video: M in [1, min(len, K)] non-empty segments with random cuts, the tail after the M-th
  // left out (as cumulative_official drops it), offsets[j] = offsets[M] beyond.
  std::vector<int64_t> off, m;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths[static_cast<size_t>(b)];
    const int64_t M = std::uniform_int_distribution<int64_t>(1, std::min(len, K))(g_rng);
    std::vector<int64_t> pts(static_cast<size_t>(len));
    std::iota(pts.begin(), pts.end(), 1);
    std::shuffle(pts.begin(), pts.end(), g_rng);
    std::vector<int64_t> cut(pts.begin(), pts.begin() + M);
    std::sort(cut.begin(), cut.end());
    off.push_back(0);
    for (int64_t j = 1; j <= K; ++j) off.push_back(cut[static_cast<size_t>(std::min(j, M) - 1)]);
    m.push_back(M);
  }
  if (corrupt) {  // offsets and counts out of range, frame_offsets past N_total (unvalidated device input)
    off[1] = -5, off[2] = 1000000, m[0] = 0, m.back() = K + 3;
    if (!one_video) fo[1] = n_total + 11, fo[2] = -2;
  }
  std::vector<T> out(static_cast<size_t>(B * K * D) + 1, nan_value<T>());
  SegmentMeanParams p{a.data(), off.data(), m.data(), one_video ? nullptr : fo.data(), out.data(), n_total, B, K, D};
  Outcome o;
  o.name = fmt("segment_mean %s B=%lld N_total=%lld K=%lld D=%lld%s", TypeName<T>::get(), (long long)B,
               (long long)n_total, (long long)K, (long long)D,
               one_video ? " (no frame_offsets)" : (corrupt ? " (corrupt offsets)" : ""));
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = segment_mean_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror mi;
    mi.add(a).add(off).add(m).add(fo).add(out);
    SegmentMeanParams d = p;
    d.a = mi.map(a.data());
    d.offsets = mi.map(p.offsets);
    d.num_segments = mi.map(p.num_segments);
    d.frame_offsets = mi.map(p.frame_offsets);
    d.out = mi.map(out.data());
    ok = segment_mean_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && mi.back();
#endif
  }
  for (int64_t b = 0; b < B && ok && !corrupt; ++b)
    for (int64_t j = 0; j < K && ok; ++j) {
      const int64_t M = m[static_cast<size_t>(b)], s = std::min(j, M - 1);
      const int64_t lo = off[static_cast<size_t>(b * (K + 1) + s)], hi = off[static_cast<size_t>(b * (K + 1) + s + 1)];
      for (int64_t e = 0; e < D && ok; ++e) {
        double sum = 0;
        for (int64_t f = lo; f < hi; ++f) sum += to_d(a[static_cast<size_t>((fo[static_cast<size_t>(b)] + f) * D + e)]);
        ok = close(to_d(out[static_cast<size_t>((b * K + j) * D + e)]), sum / static_cast<double>(hi - lo), tol<T>(),
                   tol<T>());
      }
    }
  o.ok = ok && std::isnan(to_d(out.back()));
  o.add_output(out);  // the twins sum in the same order: bit-identical
  return o;
}

// segment_mean_backward on the same kind of segments (M < K: the padded output rows' gradients reach the last emitted
// segment; the tail after the M-th segment gets 0). Naive loop: for every frame, its segment found by scanning the
// offsets, the sum of the output gradients of that segment's rows (j = s, or j = M − 1 … K − 1) over its size.
template <typename T>
Outcome segment_mean_backward_case(Backend be, std::vector<int64_t> lengths, int64_t K, int64_t D, bool one_video,
                                   bool corrupt = false) {
  std::vector<int64_t> fo = csr(lengths);
  const int64_t n_total = fo.back(), B = static_cast<int64_t>(lengths.size());
  std::vector<T> g = random_vec<T>(static_cast<size_t>(B * K * D));
  std::vector<int64_t> off, m;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths[static_cast<size_t>(b)];
    const int64_t M = std::uniform_int_distribution<int64_t>(1, std::min(len, K))(g_rng);
    std::vector<int64_t> pts(static_cast<size_t>(len));
    std::iota(pts.begin(), pts.end(), 1);
    std::shuffle(pts.begin(), pts.end(), g_rng);
    std::vector<int64_t> cut(pts.begin(), pts.begin() + M);
    std::sort(cut.begin(), cut.end());
    off.push_back(0);
    for (int64_t j = 1; j <= K; ++j) off.push_back(cut[static_cast<size_t>(std::min(j, M) - 1)]);
    m.push_back(M);
  }
  if (corrupt) {  // offsets and counts out of range, frame_offsets decreasing and past N_total
    off[1] = -5, off[2] = 1000000, m[0] = 0, m.back() = K + 3;
    if (!one_video) fo[1] = n_total + 11, fo[2] = -2;
  }
  std::vector<T> ga(static_cast<size_t>(n_total * D) + 1, nan_value<T>());
  SegmentMeanBackwardParams p{g.data(), off.data(), m.data(), one_video ? nullptr : fo.data(), ga.data(), n_total, B,
                              K, D};
  Outcome o;
  o.name = fmt("segment_mean_backward %s B=%lld N_total=%lld K=%lld D=%lld%s", TypeName<T>::get(), (long long)B,
               (long long)n_total, (long long)K, (long long)D,
               one_video ? " (no frame_offsets)" : (corrupt ? " (corrupt offsets)" : ""));
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = segment_mean_backward_cpu<T>(p) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror mi;
    mi.add(g).add(off).add(m).add(fo).add(ga);
    SegmentMeanBackwardParams d = p;
    d.grad = mi.map(g.data());
    d.offsets = mi.map(p.offsets);
    d.num_segments = mi.map(p.num_segments);
    d.frame_offsets = mi.map(p.frame_offsets);
    d.grad_a = mi.map(ga.data());
    ok = segment_mean_backward_cuda<typename CudaType<T>::type>(d, nullptr) == cudaSuccess && mi.back();
#endif
  }
  for (int64_t b = 0; b < B && ok && !corrupt; ++b) {
    const int64_t M = m[static_cast<size_t>(b)], len = lengths[static_cast<size_t>(b)];
    for (int64_t t = 0; t < len && ok; ++t) {
      int64_t s = -1;
      for (int64_t j = 0; j < M; ++j)
        if (off[static_cast<size_t>(b * (K + 1) + j)] <= t && t < off[static_cast<size_t>(b * (K + 1) + j + 1)]) s = j;
      for (int64_t e = 0; e < D && ok; ++e) {
        double want = 0;
        if (s >= 0) {
          for (int64_t j = 0; j < K; ++j)
            if (std::min(j, M - 1) == s) want += to_d(g[static_cast<size_t>((b * K + j) * D + e)]);
          want /= static_cast<double>(off[static_cast<size_t>(b * (K + 1) + s + 1)] -
                                      off[static_cast<size_t>(b * (K + 1) + s)]);
        }
        ok = close(to_d(ga[static_cast<size_t>((fo[static_cast<size_t>(b)] + t) * D + e)]), want, tol<T>(), tol<T>());
      }
    }
  }
  o.ok = ok && std::isnan(to_d(ga.back()));
  o.add_output(ga);  // the twins sum in the same order: bit-identical
  return o;
}

// ---- focus_crop (AdaFocus) ------------------------------------------------------------------------------------------
// N frames (C, H, W), P × P windows; forward, grad_x and grad_centres on the same random inputs. Positions: random in
// (0, 1), plus 0, 1 (far-edge taps of weight 0; the last frame at (1, 1), so an unguarded tap reads past the buffer)
// and two outside [0, 1] (clamped, no gradient) when N >= 6.
template <typename T>
Outcome crop_case(Backend be, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, CropMode mode, size_t off) {
  using A = typename Num<T>::acc_t;
  const size_t nx = static_cast<size_t>(N * C * H * W), ny = static_cast<size_t>(N * C * P * P);
  Buf<T> x(random_vec<T>(nx), off), g(random_vec<T>(ny), off);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<A> cv(static_cast<size_t>(2 * N));
  for (auto& v : cv) v = static_cast<A>(unit(g_rng));
  const double fixed[6] = {0.0, 1.0, -0.25, 1.5, 1.0, 1.0};  // last frame at the far corner
  if (N >= 6)
    for (int k = 0; k < 6; ++k) cv[static_cast<size_t>(2 * (N - 3) + k)] = static_cast<A>(fixed[k]);
  Buf<A> centres(cv, 0), gc(static_cast<size_t>(2 * N), 0);
  Buf<T> out(ny, off), gx(nx, off);
  const FocusCropParams fp{x.ptr(), centres.ptr(), out.ptr(), N, C, H, W, P, mode};
  const FocusCropGradXParams xp{g.ptr(), centres.ptr(), gx.ptr(), N, C, H, W, P, mode};
  const FocusCropGradCentresParams cp{g.ptr(), x.ptr(), centres.ptr(), gc.ptr(), N, C, H, W, P, mode};
  const bool floor_mode = mode == CropMode::kFloor;
  Outcome o;
  o.name = fmt("focus_crop %s N=%lld C=%lld %lldx%lld P=%lld %s off=%zu", TypeName<T>::get(), (long long)N,
               (long long)C, (long long)H, (long long)W, (long long)P, floor_mode ? "floor" : "bilinear", off);
  o.exact = floor_mode;
  o.rtol = tol<T>();
  bool ok = false;
  if (be == Backend::kCpu) {
    ok = focus_crop_cpu<T>(fp) == Status::kOk && focus_crop_grad_x_cpu<T>(xp) == Status::kOk &&
         focus_crop_grad_centres_cpu<T>(cp) == Status::kOk;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    Mirror m;
    m.add(x.store).add(g.store).add(centres.store).add(gc.store).add(out.store).add(gx.store);
    FocusCropParams d1 = fp;
    d1.x = m.map(fp.x), d1.centres = m.map(fp.centres), d1.out = m.map(fp.out);
    FocusCropGradXParams d2 = xp;
    d2.grad = m.map(xp.grad), d2.centres = m.map(xp.centres), d2.grad_x = m.map(xp.grad_x);
    FocusCropGradCentresParams d3 = cp;
    d3.grad = m.map(cp.grad), d3.x = m.map(cp.x), d3.centres = m.map(cp.centres), d3.grad_centres = m.map(cp.grad_centres);
    using D = typename CudaType<T>::type;
    ok = focus_crop_cuda<D>(d1, nullptr) == cudaSuccess && focus_crop_grad_x_cuda<D>(d2, nullptr) == cudaSuccess &&
         focus_crop_grad_centres_cuda<D>(d3, nullptr) == cudaSuccess && m.back();
#endif
  }
  ok = ok && x.guards_intact() && g.guards_intact() && centres.guards_intact() && gc.guards_intact() &&
       out.guards_intact() && gx.guards_intact();
  // the spec's definition, in double from the fp32 (fp64) corner
  std::vector<double> want_gx(nx, 0.0), sabs_gx(nx, 0.0);
  for (int64_t n = 0; n < N && ok; ++n) {
    int64_t s0[2];
    double f[2];
    bool pass[2];
    for (int ax = 0; ax < 2; ++ax) {
      const A a = cv[static_cast<size_t>(2 * n + ax)];
      pass[ax] = a >= A(0) && a <= A(1);
      const A ac = std::min(std::max(a, A(0)), A(1));
      const A pos = ac * static_cast<A>((ax == 0 ? H : W) - P);
      s0[ax] = static_cast<int64_t>(std::floor(static_cast<double>(pos)));
      f[ax] = floor_mode ? 0.0 : static_cast<double>(pos) - static_cast<double>(s0[ax]);
    }
    double dy = 0, dx = 0, sy = 0, sx = 0;
    for (int64_t c = 0; c < C && ok; ++c)
      for (int64_t i = 0; i < P && ok; ++i)
        for (int64_t j = 0; j < P && ok; ++j) {
          double I[2][2];
          for (int u = 0; u < 2; ++u)
            for (int v = 0; v < 2; ++v) {
              const int64_t y = s0[0] + i + u, xx = s0[1] + j + v;
              I[u][v] = y < H && xx < W ? to_d(x.at(static_cast<size_t>(((n * C + c) * H + y) * W + xx))) : 0.0;
            }
          const double wt[2][2] = {{(1 - f[0]) * (1 - f[1]), (1 - f[0]) * f[1]}, {f[0] * (1 - f[1]), f[0] * f[1]}};
          double want = 0, sabs = 0;
          for (int u = 0; u < 2; ++u)
            for (int v = 0; v < 2; ++v) want += wt[u][v] * I[u][v], sabs += std::fabs(wt[u][v] * I[u][v]);
          const size_t oi = static_cast<size_t>(((n * C + c) * P + i) * P + j);
          const double got = to_d(out.at(oi));
          ok = floor_mode ? got == I[0][0] : close(got, want, tol<T>(), tol<T>() * (1 + sabs));
          const double gv = to_d(g.at(oi));
          for (int u = 0; u < 2; ++u)
            for (int v = 0; v < 2; ++v) {
              const int64_t y = s0[0] + i + u, xx = s0[1] + j + v;
              if (y >= H || xx >= W || (floor_mode && (u || v))) continue;
              const size_t xi = static_cast<size_t>(((n * C + c) * H + y) * W + xx);
              want_gx[xi] += wt[u][v] * gv;
              sabs_gx[xi] += std::fabs(wt[u][v] * gv);
            }
          const double ty = gv * ((1 - f[1]) * (I[1][0] - I[0][0]) + f[1] * (I[1][1] - I[0][1]));
          const double tx = gv * ((1 - f[0]) * (I[0][1] - I[0][0]) + f[0] * (I[1][1] - I[1][0]));
          dy += ty, dx += tx, sy += std::fabs(ty), sx += std::fabs(tx);
        }
    const double spans[2] = {static_cast<double>(H - P), static_cast<double>(W - P)};
    const double sums[2] = {dy, dx}, abss[2] = {sy, sx};
    for (int ax = 0; ax < 2 && ok; ++ax) {
      const double want = pass[ax] && !floor_mode ? sums[ax] * spans[ax] : 0.0;
      const double got = static_cast<double>(gc.at(static_cast<size_t>(2 * n + ax)));
      ok = close(got, want, 0, tol<T>() * (1 + abss[ax] * spans[ax]));
    }
  }
  for (size_t k = 0; k < nx && ok; ++k)
    ok = floor_mode ? to_d(gx.at(k)) == want_gx[k] : close(to_d(gx.at(k)), want_gx[k], tol<T>(), tol<T>() * (1 + sabs_gx[k]));
  o.ok = ok;
  o.add_output(out.store);
  o.add_output(gx.store);
  o.add_output(gc.store);
  o.add_output(x.store);
  return o;
}

// ---- invalid arguments: every launcher and twin refuses them (and launches nothing) ------------------------------
template <typename T, typename P>
Outcome reject_case(Backend be, const char* what, const P& p) {
  Outcome o;
  o.name = fmt("%s %s rejected", what, TypeName<T>::get());
  if (be == Backend::kCpu) {
    Status s = Status::kOk;
    if constexpr (std::is_same<P, FocalGatherParams>::value) s = focal_gather_cpu<T>(p);
    if constexpr (std::is_same<P, FocalScatterParams>::value) s = focal_scatter_cpu<T>(p);
    if constexpr (std::is_same<P, AmpleFusePoolParams>::value) s = ample_fuse_pool_cpu<T>(p);
    if constexpr (std::is_same<P, AmpleFuseBlendParams>::value) s = ample_fuse_blend_cpu<T>(p);
    if constexpr (std::is_same<P, SelectFramesParams>::value) s = select_frames_cpu<T>(p);
    if constexpr (std::is_same<P, GatherConv1x1Params>::value) s = gather_conv1x1_cpu<T>(p);
    if constexpr (std::is_same<P, Conv1x1ScatterParams>::value) s = conv1x1_scatter_cpu<T>(p);
    if constexpr (std::is_same<P, TemporalAggregateParams>::value) s = temporal_aggregate_cpu<T>(p);
    if constexpr (std::is_same<P, BLMergeParams>::value) s = bl_merge_cpu<T>(p);
    if constexpr (std::is_same<P, FocusCropParams>::value) s = focus_crop_cpu<T>(p);
    if constexpr (std::is_same<P, FocusCropGradXParams>::value) s = focus_crop_grad_x_cpu<T>(p);
    if constexpr (std::is_same<P, FocusCropGradCentresParams>::value) s = focus_crop_grad_centres_cpu<T>(p);
    if constexpr (std::is_same<P, BinarizePackParams>::value) s = binarize_pack_cpu<T>(p);
    if constexpr (std::is_same<P, AdjacentHammingParams>::value) s = adjacent_hamming_cpu(p);
    if constexpr (std::is_same<P, SegmentBoundariesParams>::value) s = segment_boundaries_cpu(p);
    if constexpr (std::is_same<P, SegmentMeanParams>::value) s = segment_mean_cpu<T>(p);
    if constexpr (std::is_same<P, SegmentMeanBackwardParams>::value) s = segment_mean_backward_cpu<T>(p);
    o.ok = s == Status::kInvalidValue;
  } else {
#if defined(AFN_WITH_CUDA_RUNTIME)
    using D = typename CudaType<T>::type;
    cudaError_t e = cudaSuccess;
    if constexpr (std::is_same<P, FocalGatherParams>::value) e = focal_gather_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, FocalScatterParams>::value) e = focal_scatter_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, AmpleFusePoolParams>::value) e = ample_fuse_pool_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, AmpleFuseBlendParams>::value) e = ample_fuse_blend_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, SelectFramesParams>::value) e = select_frames_cuda<D>(p, nullptr);
    if constexpr (sizeof(T) == 2 && std::is_same<P, GatherConv1x1Params>::value) e = gather_conv1x1_cuda<D>(p, nullptr);
    if constexpr (sizeof(T) == 2 && std::is_same<P, Conv1x1ScatterParams>::value) e = conv1x1_scatter_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, TemporalAggregateParams>::value) e = temporal_aggregate_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, BLMergeParams>::value) e = bl_merge_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, FocusCropParams>::value) e = focus_crop_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, FocusCropGradXParams>::value) e = focus_crop_grad_x_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, FocusCropGradCentresParams>::value) e = focus_crop_grad_centres_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, BinarizePackParams>::value) e = binarize_pack_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, AdjacentHammingParams>::value) e = adjacent_hamming_cuda(p, nullptr);
    if constexpr (std::is_same<P, SegmentBoundariesParams>::value) e = segment_boundaries_cuda(p, nullptr);
    if constexpr (std::is_same<P, SegmentMeanParams>::value) e = segment_mean_cuda<D>(p, nullptr);
    if constexpr (std::is_same<P, SegmentMeanBackwardParams>::value) e = segment_mean_backward_cuda<D>(p, nullptr);
    o.ok = e == cudaErrorInvalidValue && cudaGetLastError() == cudaSuccess;
#endif
  }
  return o;
}

// ---- conversions ----------------------------------------------------------------------------------------------------
void test_conversions() {
  bool ok = true;
  for (uint32_t b = 0; b < 65536 && ok; ++b) {  // every half round-trips (NaN payloads may be canonicalised)
    const float f = half_to_float(static_cast<uint16_t>(b));
    const uint16_t back = float_to_half(f);
    ok = std::isnan(f) ? (back & 0x7C00u) == 0x7C00u && (back & 0x3FFu) != 0 : back == b;
  }
  ok =
      ok && float_to_half(1.0f + 1.0f / 2048) == 0x3C00 && float_to_half(1.0f + 3.0f / 2048) == 0x3C02;  // ties to even
  ok = ok && float_to_half(65520.0f) == 0x7C00 && float_to_half(65519.0f) == 0x7BFF;                     // overflow
  ok = ok && float_to_bf16(1.0f + 1.0f / 256) == 0x3F80 && float_to_bf16(1.0f + 3.0f / 256) == 0x3F82;
  ok = ok && bf16_to_float(0x3F80) == 1.0f;
  report(ok, "half/bfloat16 conversions");
}

// ---- the case list, run by both suites ----------------------------------------------------------------------------
bool g_cuda_suite = false;  // false: CPU twins vs naive loops; true: CUDA launchers vs naive loops and CPU twins
std::string g_only_op;      // --op
// --op selects the cases of one op, or of every op of a kernel file (e.g. fullvideo_cluster: what a negative control
// of that file must run).
bool op_selected(const std::string& op) {
  if (g_only_op.empty() || g_only_op == op) return true;
  static const char* const kFullvideo[] = {"binarize_pack", "adjacent_hamming", "segment_boundaries", "segment_mean",
                                           "segment_mean_backward"};
  if (g_only_op == "fullvideo_cluster")
    for (const char* o : kFullvideo)
      if (op == o) return true;
  return false;
}
uint64_t g_case = 0;

// Empty when the CUDA run produced what the CPU twin produced, else where and how they first differ.
std::string output_difference(const Outcome& c, const Outcome& d) {
  if (c.bits.size() != d.bits.size() || c.vals.size() != d.vals.size()) return "output sizes differ";
  if (c.exact && (c.bits.empty() || std::memcmp(c.bits.data(), d.bits.data(), c.bits.size()) == 0)) return "";
  for (size_t i = 0; i < c.vals.size(); ++i) {
    const double u = c.vals[i], v = d.vals[i];
    const bool same = c.exact ? (u == v || (std::isnan(u) && std::isnan(v))) : close(v, u, c.rtol, c.rtol);
    if (!same) return fmt("output element %zu: CUDA %.9g, CPU twin %.9g", i, v, u);
  }
  return c.exact ? "same values, different bits" : "";
}

// One case: f(backend) -> Outcome. Each case draws its inputs from its own seed, so both backends see the same data.
template <typename F>
void run_case(const char* op, F&& f) {
  const uint64_t seed = 0x9E3779B97F4A7C15ull * ++g_case;
  if (!op_selected(op)) return;
  g_rng.seed(seed);
  const Outcome c = f(Backend::kCpu);
  if (!g_cuda_suite) {
    report(c.ok, c.name);
    return;
  }
  g_rng.seed(seed);
  const Outcome d = f(Backend::kCuda);
  const std::string diff = output_difference(c, d);
  report(d.ok && diff.empty(),
         "cuda " + d.name + (d.ok ? "" : " [wrong vs naive loop]") + (diff.empty() ? "" : " [differs from CPU twin: " + diff + "]"));
}

template <typename T>
void run_cases() {
  const auto idx = [](int64_t n) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
  };
  const std::vector<int64_t> sel7 = {0, 3, 4, 11, 12, 20, 35};
  for (size_t off : offsets<T>()) {
    // gather: shift on/off, C % 8 != 0, C < 8, odd and vector-friendly planes, empty / full / out-of-range selections,
    // T not a power of two, T = 1; the 40-channel 14×14 case spans several blocks per frame
    auto G = [&](int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool shift) {
      run_case("focal_gather", [=](Backend be) { return gather_case<T>(be, B, Tn, C, H, W, index, shift, off); });
    };
    G(2, 4, 16, 4, 4, {0, 2, 3, 5, 6}, true);
    G(2, 4, 16, 4, 4, {0, 2, 3, 5, 6}, false);
    G(3, 3, 12, 3, 5, idx(9), true);    // full, C % 8 = 4, odd plane
    G(2, 3, 5, 2, 2, {1, 4}, true);     // C < 8: fold = 0
    G(2, 4, 24, 7, 7, {}, true);        // empty
    G(1, 5, 8, 2, 4, {4, 0, 2}, true);  // unsorted is fine for the gather
    G(1, 5, 8, 2, 4, {-1, 2, 5, 99}, true);  // out of range -> zero frames
    G(1, 1, 16, 2, 2, {0}, true);            // T = 1: both shifted groups zero
    G(3, 12, 40, 14, 14, sel7, true);        // AF-ResNet-like plane, T = 12
    G(2, 3, 24, 6, 6, idx(6), true);         // full, 6×6 plane (8-byte vectors for 16-bit types)
    G(2, 3, 0, 6, 6, idx(6), true);          // C = 0: nothing to move
    G(2, 3, 8, 0, 6, idx(6), true);          // H·W = 0
    // scatter
    auto S = [&](int64_t N, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool cst, bool relu,
                 bool inplace) {
      run_case("focal_scatter",
               [=](Backend be) { return scatter_case<T>(be, N, C, H, W, index, cst, relu, inplace, off); });
    };
    for (bool cst : {false, true})
      for (bool relu : {false, true}) S(6, 16, 3, 4, {1, 2, 5}, cst, relu, false);
    S(5, 8, 2, 2, {}, true, true, false);               // empty
    S(5, 8, 3, 3, idx(5), true, true, false);           // full
    S(4, 3, 5, 1, {0, 3}, true, false, true);           // in place, odd sizes
    S(4, 8, 2, 2, {-3, 2, 9}, true, true, false);       // out of range entries ignored
    S(36, 40, 14, 14, sel7, true, true, true);          // AF-ResNet-like, in place
    S(12, 16, 8, 8, {0, 5, 6, 11}, true, true, false);  // 8×8 plane: 16-byte vectors for the 16-bit types too
    S(12, 16, 7, 7, idx(12), false, false, false);      // full, no const, odd plane
    S(0, 8, 2, 2, {}, true, false, false);              // no frames
    S(3, 0, 2, 2, {1}, true, false, false);             // C = 0
    S(3, 4, 0, 2, {1}, true, false, false);             // H·W = 0
    // pool: ×2, identity, mixed axes, general legacy-nearest (odd sizes, non-integer ratios, downsampling), vectorised
    // xl with per-pixel weights, planes above 8192 outputs (a whole block per plane), several blocks
    for (auto s : std::vector<std::vector<int64_t>>{{7, 4, 4, 8, 8},
                                                    {5, 3, 3, 3, 3},
                                                    {4, 14, 14, 28, 28},
                                                    {3, 3, 5, 7, 11},
                                                    {3, 7, 7, 14, 15},
                                                    {2, 5, 6, 3, 4},
                                                    {2, 48, 48, 96, 96},
                                                    {3, 40, 30, 97, 101},
                                                    {37, 7, 7, 14, 14},
                                                    {37, 8, 8, 12, 12},
                                                    {9, 6, 6, 6, 12},
                                                    {9, 6, 8, 9, 16},
                                                    {5, 6, 7, 6, 10},
                                                    {3, 4, 6, 7, 12}})
      run_case("ample_fuse_pool", [=](Backend be) { return pool_case<T>(be, s[0], s[1], s[2], s[3], s[4], off); });
    run_case("ample_fuse_pool", [=](Backend be) { return pool_case<T>(be, 0, 3, 3, 6, 6, off); });  // no planes
    // xl misaligned while xb is aligned: xb vectorised, xl read per element
    run_case("ample_fuse_pool", [=](Backend be) { return pool_case<T>(be, 5, 7, 7, 14, 14, off, off + 1); });
    run_case("ample_fuse_pool", [=](Backend be) { return pool_case<T>(be, 5, 8, 8, 12, 12, off, off + 1); });
    // blend
    for (bool relu : {false, true})
      for (auto s : std::vector<std::vector<int64_t>>{{6, 4, 4, 8, 8},
                                                      {4, 7, 7, 14, 14},
                                                      {3, 3, 5, 7, 11},
                                                      {2, 5, 6, 3, 4},
                                                      {37, 5, 6, 11, 13},
                                                      {2, 48, 48, 96, 96},
                                                      {3, 3, 3, 3, 3},
                                                      {5, 6, 7, 6, 10},
                                                      {5, 6, 8, 9, 16}})
        run_case("ample_fuse_blend",
                 [=](Backend be) { return blend_case<T>(be, s[0], s[1], s[2], s[3], s[4], relu, false, off); });
    run_case("ample_fuse_blend", [=](Backend be) { return blend_case<T>(be, 37, 7, 7, 14, 14, true, true, off); });
    run_case("ample_fuse_blend", [=](Backend be) { return blend_case<T>(be, 0, 3, 3, 6, 6, true, false, off); });
    // lazy constant chains: every upto of 0-, 1- and 3-block chains (start drawn per frame from [0, L]); gather with
    // shift on / off (neighbour channels get the neighbour's chain), scatter in place / out of place (unselected rows
    // stay as stored), pool / blend reading the logical xb with upto = L; AF-ResNet-like planes
    auto GC = [&](int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool shift,
                  int64_t L, int64_t upto) {
      run_case("focal_gather",
               [=](Backend be) { return gather_case<T>(be, B, Tn, C, H, W, index, shift, off, L, upto); });
    };
    auto SC = [&](int64_t N, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool relu, bool inplace,
                  int64_t L, int64_t upto) {
      run_case("focal_scatter",
               [=](Backend be) { return scatter_case<T>(be, N, C, H, W, index, false, relu, inplace, off, L, upto); });
    };
    for (int64_t L : {0, 1, 3})
      for (int64_t upto = 0; upto <= L; ++upto) {
        GC(2, 4, 16, 4, 4, {0, 2, 3, 5, 6}, true, L, upto);
        GC(2, 4, 16, 2, 6, {1, 2, 7}, false, L, upto);
        SC(6, 16, 3, 4, {1, 2, 5}, upto % 2 == 1, false, L, upto);
        SC(6, 16, 2, 4, {0, 3, 4}, upto % 2 == 0, true, L, upto);
      }
    GC(3, 12, 40, 14, 14, sel7, true, 5, 4);       // AF-ResNet-like plane, T = 12
    GC(1, 5, 8, 2, 4, {-1, 2, 5, 99}, true, 3, 3);  // out of range -> zero frames, no chain read
    GC(2, 3, 12, 3, 5, idx(6), true, 4, -1);       // full, odd plane, random upto
    SC(36, 40, 14, 14, sel7, true, true, 5, 4);    // AF-ResNet-like, in place
    SC(12, 16, 7, 7, idx(12), true, true, 3, 2);   // full, in place, odd plane
    SC(5, 8, 2, 2, {}, true, true, 3, 3);          // empty selection: in place writes nothing
    SC(4, 8, 2, 2, {-3, 2, 9}, true, true, 3, 3);  // out of range entries ignored
    SC(4, 8, 2, 2, {-3, 2, 9}, false, false, 2, 1);
    for (auto s : std::vector<std::vector<int64_t>>{{12, 5, 4, 4, 8, 8}, {6, 3, 7, 7, 14, 14}, {4, 5, 3, 5, 7, 11},
                                                    {2, 3, 48, 48, 96, 96}, {6, 4, 6, 8, 9, 16}})
      for (int64_t L : {0, 3}) {
        run_case("ample_fuse_pool", [=](Backend be) {
          return pool_case<T>(be, s[0] * s[1], s[2], s[3], s[4], s[5], off, off, L, s[1]);
        });
        run_case("ample_fuse_blend", [=](Backend be) {
          return blend_case<T>(be, s[0] * s[1], s[2], s[3], s[4], s[5], L == 3, false, off, L, s[1]);
        });
      }
    run_case("ample_fuse_blend", [=](Backend be) { return blend_case<T>(be, 12, 7, 7, 14, 14, true, true, off, 4, 3); });
  }
  // select: threshold across 1 and several 256-frame tiles, top-k with k = 0, 1, T/4, T (K = 0 and K = N), T not a
  // power of two, T > 256 (one clip per block of ⌈T/32⌉ warps), ties and NaN margins, several blocks, empty inputs
  auto Sel = [&](int64_t L, int64_t B, int64_t Tn, SelectMode mode, int64_t k, bool ties) {
    run_case("select_frames", [=](Backend be) { return select_case<T>(be, L, B, Tn, mode, k, ties); });
  };
  for (bool ties : {false, true}) {
    Sel(3, 2, 12, SelectMode::kThreshold, 0, ties);
    for (int64_t k : {0, 1, 3, 12}) Sel(3, 2, 12, SelectMode::kTopK, k, ties);
    Sel(2, 5, 7, SelectMode::kTopK, 4, ties);
    Sel(5, 70, 12, SelectMode::kThreshold, 0, ties);  // 840 frames: 4 tiles
    Sel(5, 70, 12, SelectMode::kTopK, 4, ties);       // 350 clips: 17 blocks of 21 clips
  }
  Sel(1, 100, 7, SelectMode::kThreshold, 0, false);  // several 256-frame tiles
  Sel(2, 2, 300, SelectMode::kThreshold, 0, true);
  for (int64_t k : {0, 37, 300}) Sel(2, 2, 300, SelectMode::kTopK, k, k == 37);
  Sel(2, 0, 4, SelectMode::kThreshold, 0, false);  // no frames
  Sel(2, 3, 0, SelectMode::kTopK, 0, false);
  Sel(0, 3, 4, SelectMode::kTopK, 2, false);  // no navigation modules
  // fused 1×1 GEMMs: CUDA launchers exist for the 16-bit types only (the CPU twins run for all four). Shapes: AF-R50's
  // C_in = 64 (fold 8 < a 32-channel K chunk: one tile mixes TSM sources), groups 1 and 2, P = H·W not a multiple of
  // 16 and spanning two pixel tiles, several K chunks and output-channel tiles, K = 0, out-of-range indices, T = 1,
  // C % 8 != 0, chains with and without ReLU bits and upto < L, in place and out of place
  if (!g_cuda_suite || sizeof(T) == 2) {
    auto GC = [&](int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, int64_t O, int64_t G, std::vector<int64_t> ix,
                  bool shift, bool relu, ChainSpec cs, size_t off) {
      run_case("gather_conv1x1",
               [=](Backend be) { return gather_conv1x1_case<T>(be, B, Tn, C, H, W, O, G, ix, shift, relu, cs, off); });
    };
    GC(2, 4, 64, 7, 7, 64, 2, {0, 2, 3, 5, 6}, true, true, {3, 2, 0b101}, 0);
    GC(2, 4, 64, 7, 7, 64, 2, {0, 2, 3, 5, 6}, false, false, {3, 3, 0b111}, 1);
    GC(1, 3, 48, 5, 9, 40, 1, {0, 1, 2}, true, false, {}, 0);
    GC(1, 4, 128, 1, 67, 96, 2, {3, 1}, true, true, {2, 2, 0b11}, 0);   // 2 K chunks, P = 67: 2 pixel tiles
    GC(1, 2, 256, 3, 3, 160, 1, {1}, true, true, {1, 1, 0}, 1);          // 8 K chunks, 3 output-channel tiles
    GC(2, 3, 24, 4, 4, 16, 1, {}, true, true, {2, 1, 1}, 0);             // K = 0
    GC(1, 4, 16, 2, 3, 8, 2, {-1, 2, 99}, true, false, {}, 0);           // out of range -> zero input frames
    GC(2, 1, 16, 4, 4, 32, 1, {0, 1}, true, true, {2, 2, 0b10}, 0);      // T = 1: both shifted groups zero
    GC(1, 4, 12, 3, 3, 6, 3, {0, 1, 2, 3}, true, true, {1, 0, 1}, 0);    // C % 8 != 0, 3 groups, upto = 0
    GC(1, 2, 16, 3, 3, 0, 1, {0, 1}, true, true, {}, 0);                 // O = 0: nothing to write
    auto CS = [&](int64_t N, int64_t C, int64_t Ch, int64_t H, int64_t W, int64_t G, std::vector<int64_t> ix, bool relu,
                  bool inplace, ChainSpec cs, size_t off) {
      run_case("conv1x1_scatter",
               [=](Backend be) { return conv1x1_scatter_case<T>(be, N, C, Ch, H, W, G, ix, relu, inplace, cs, off); });
    };
    CS(8, 64, 32, 7, 7, 2, {1, 2, 5}, true, true, {3, 1, 0b011}, 0);
    CS(8, 64, 32, 7, 7, 2, {1, 2, 5}, false, false, {3, 3, 0b110}, 1);
    CS(5, 96, 64, 5, 9, 1, {0, 4}, true, false, {}, 0);
    CS(4, 80, 96, 1, 67, 2, {0, 1, 2, 3}, true, true, {2, 2, 0b11}, 0);  // full, 2 K chunks (48), 2 pixel tiles
    CS(6, 16, 16, 2, 2, 1, {}, true, true, {1, 1, 1}, 0);                // K = 0: nothing written
    CS(6, 16, 32, 3, 3, 1, {-2, 3, 99}, true, false, {2, 2, 1}, 0);      // out-of-range entries skipped
  }
  // bLVNet-TAM: TAM with K = 3 (the released models), 5 (taps past both clip ends when T = 3), 1, 7 > T; T = 1; pair
  // mode (K_p = 3 and 5); odd planes; a 14×14 plane spanning several blocks; empty tensors. Merge: 2× (layers 1–3),
  // identity (layer0), general legacy nearest, in place.
  for (size_t off : offsets<T>()) {
    auto TA = [&](int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, int64_t K, bool pair, bool relu) {
      run_case("temporal_aggregate",
               [=](Backend be) { return tam_case<T>(be, B, Tn, C, H, W, K, pair, relu, off); });
    };
    for (bool relu : {true, false}) {
      TA(2, 5, 3, 4, 4, 3, false, relu);
      TA(2, 4, 8, 4, 4, 3, true, relu);
    }
    TA(1, 8, 5, 7, 7, 3, false, true);   // odd plane
    TA(3, 3, 4, 2, 4, 5, false, true);   // K = 5 > T: taps past both ends
    TA(2, 3, 4, 3, 5, 5, true, true);    // pair, K_p = 5
    TA(2, 2, 3, 2, 2, 7, false, true);   // K = 7 > 2·T
    TA(4, 1, 6, 4, 2, 3, true, true);    // T = 1: the centre tap only
    TA(2, 6, 2, 8, 8, 1, false, false);  // K = 1: a per-channel scale
    TA(1, 8, 24, 14, 14, 3, true, true);  // several blocks per plane row of the grid
    TA(0, 4, 8, 4, 4, 3, false, true);   // no frames
    TA(2, 2, 0, 4, 4, 3, true, true);    // C = 0
    TA(2, 2, 3, 0, 4, 3, false, true);   // H·W = 0
    auto BM = [&](int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, bool relu, bool inplace) {
      run_case("bl_merge", [=](Backend be) { return merge_case<T>(be, NC, h, w, H, W, relu, inplace, off); });
    };
    for (bool relu : {true, false}) {
      BM(6, 4, 4, 8, 8, relu, false);    // 2×
      BM(5, 8, 8, 8, 8, relu, false);    // identity (layer0)
    }
    BM(4, 7, 7, 14, 14, true, false);    // odd source
    BM(3, 3, 5, 7, 11, true, false);     // general legacy nearest
    BM(2, 5, 6, 3, 4, true, false);      // downsampling axes
    BM(3, 4, 8, 8, 8, true, false);      // 2× rows, identity columns: the axes' maps differ
    BM(2, 7, 3, 14, 9, false, false);    // 2× rows, 3× columns
    BM(37, 7, 7, 14, 14, true, true);    // in place, several blocks
    BM(0, 3, 3, 6, 6, true, false);      // no planes
  }
  // AdaFocus focus_crop: both modes; P = H (span 0), odd sizes, W % V != 0 (scalar grad_x path), a plane spanning
  // several blocks, the fixed positions 0 / 1 / outside; N = 0 and C = 0 (grad_centres writes zeros)
  for (size_t off : offsets<T>()) {
    for (CropMode md : {CropMode::kBilinear, CropMode::kFloor}) {
      auto FC = [&](int64_t N, int64_t C, int64_t H, int64_t W, int64_t P) {
        run_case("focus_crop", [=](Backend be) { return crop_case<T>(be, N, C, H, W, P, md, off); });
      };
      FC(6, 3, 12, 16, 8);
      FC(7, 2, 9, 11, 5);
      FC(2, 3, 6, 6, 6);
      FC(1, 2, 40, 36, 24);
    }
    run_case("focus_crop", [=](Backend be) { return crop_case<T>(be, 0, 3, 8, 8, 4, CropMode::kBilinear, off); });
    run_case("focus_crop", [=](Backend be) { return crop_case<T>(be, 3, 0, 8, 8, 4, CropMode::kBilinear, off); });
  }
  // full-video clustering: D not a multiple of 32 and spanning several words, N = 0 / 1, pairs spanning several
  // 256-thread strides (W = 300), ragged batches with 1-frame videos, N < K, K = 1, K = len, many ties (levels 1-3),
  // videos longer than a block (300 pairs), no frame_offsets, segments with the tail left out, D = 0 / no frames
  for (auto nd : std::vector<std::pair<int64_t, int64_t>>{{5, 37}, {3, 64}, {1, 1}, {4, 31}, {2, 33}, {0, 9}, {3, 0},
                                                           {300, 3}})
    run_case("binarize_pack", [=](Backend be) { return binarize_case<T>(be, nd.first, nd.second); });
  auto SM = [&](std::vector<int64_t> lengths, int64_t K, int64_t D, bool one) {
    run_case("segment_mean", [=](Backend be) { return segment_mean_case<T>(be, lengths, K, D, one); });
  };
  SM({16}, 4, 13, true);
  SM({12, 1, 7, 3, 20}, 4, 9, false);
  SM({3, 40}, 8, 300, false);
  SM({5}, 2, 0, true);
  run_case("segment_mean", [=](Backend be) { return segment_mean_case<T>(be, {6, 5, 9}, 3, 4, false, true); });
  // backward: the same segment kinds, D spanning several 256-thread strides (300), a video of 1 frame, N < K
  auto SMB = [&](std::vector<int64_t> lengths, int64_t K, int64_t D, bool one, bool corrupt) {
    run_case("segment_mean_backward",
             [=](Backend be) { return segment_mean_backward_case<T>(be, lengths, K, D, one, corrupt); });
  };
  SMB({16}, 4, 13, true, false);
  SMB({12, 1, 7, 3, 20}, 4, 9, false, false);
  SMB({3, 40}, 8, 300, false, false);
  SMB({5}, 2, 0, true, false);
  SMB({6, 5, 9}, 3, 4, false, true);
  if (std::is_same<T, float>::value) {
    for (auto nw : std::vector<std::pair<int64_t, int64_t>>{{9, 2}, {2, 1}, {1, 3}, {0, 4}, {4, 300}, {5, 0}})
      run_case("adjacent_hamming", [=](Backend be) { return hamming_case(be, nw.first, nw.second); });
    auto SB = [&](std::vector<int64_t> lengths, int64_t K, BoundaryRule rule, int levels, bool one) {
      run_case("segment_boundaries", [=](Backend be) { return boundaries_case(be, lengths, K, rule, levels, one); });
    };
    for (BoundaryRule rule : {BoundaryRule::kSlope, BoundaryRule::kEven, BoundaryRule::kCumulative})
      for (int levels : {1, 3, 1000}) {
        SB({16}, 4, rule, levels, true);
        SB({12, 1, 7, 3, 20, 2}, 4, rule, levels, false);
        SB({3, 5, 6}, 5, rule, levels, false);
        SB({9, 1}, 1, rule, levels, false);
        SB({301, 40}, 8, rule, levels, false);
      }
    for (BoundaryRule rule : {BoundaryRule::kSlope, BoundaryRule::kEven, BoundaryRule::kCumulative})
      run_case("segment_boundaries",
               [=](Backend be) { return boundaries_case(be, {4, 6, 5}, 3, rule, 3, false, true); });
  }
  // invalid arguments, one at a time from a valid call (dummy pointers: a launch would be a failure in itself)
  static int64_t dummy[64];
  void* d = dummy;
  auto with = [](auto p, auto f) {
    f(p);
    return p;
  };
  auto R = [&](const char* op, const char* why, auto p) {
    const std::string what = std::string(op) + " (" + why + ")";
    run_case(op, [=](Backend be) { return reject_case<T>(be, what.c_str(), p); });
  };
  using GP = FocalGatherParams;
  const GP g{d, dummy, d, 4, 8, 4, 2, 2, true, {}};
  R("focal_gather", "N < 0", with(g, [](GP& q) { q.N = -1; }));
  R("focal_gather", "C < 0", with(g, [](GP& q) { q.C = -1; }));
  R("focal_gather", "HW < 0", with(g, [](GP& q) { q.HW = -1; }));
  R("focal_gather", "K < 0", with(g, [](GP& q) { q.K = -1; }));
  R("focal_gather", "T = 0", with(g, [](GP& q) { q.num_frames = 0; }));
  R("focal_gather", "N % T != 0", with(g, [](GP& q) { q.N = 5; }));
  R("focal_gather", "x null", with(g, [](GP& q) { q.x = nullptr; }));
  R("focal_gather", "y null", with(g, [](GP& q) { q.y = nullptr; }));
  R("focal_gather", "index null", with(g, [](GP& q) { q.index = nullptr; }));
  R("focal_gather", "frames of an empty tensor", with(g, [](GP& q) { q.N = 0; }));
  static const int32_t start4[4] = {0, 1, 2, 0};
  const ChainParams chn{start4, d, 2, 1, 2};
  R("focal_gather", "chain upto > L", with(g, [&](GP& q) { q.chain = chn, q.chain.upto = 3; }));
  R("focal_gather", "chain upto < 0", with(g, [&](GP& q) { q.chain = chn, q.chain.upto = -1; }));
  R("focal_gather", "chain L > 62", with(g, [&](GP& q) { q.chain = chn, q.chain.L = 63; }));
  R("focal_gather", "chain consts null", with(g, [&](GP& q) { q.chain = chn, q.chain.consts = nullptr; }));
  using SP = FocalScatterParams;
  const SP sc{d, d, dummy, d, d, 4, 8, 4, 2, true, {}};
  R("focal_scatter", "N < 0", with(sc, [](SP& q) { q.N = -1; }));
  R("focal_scatter", "C < 0", with(sc, [](SP& q) { q.C = -1; }));
  R("focal_scatter", "HW < 0", with(sc, [](SP& q) { q.HW = -1; }));
  R("focal_scatter", "K < 0", with(sc, [](SP& q) { q.K = -1; }));
  R("focal_scatter", "K > N", with(sc, [](SP& q) { q.K = 5; }));
  R("focal_scatter", "residual null", with(sc, [](SP& q) { q.residual = nullptr; }));
  R("focal_scatter", "out null", with(sc, [](SP& q) { q.out = nullptr; }));
  R("focal_scatter", "y null", with(sc, [](SP& q) { q.y = nullptr; }));
  R("focal_scatter", "index null", with(sc, [](SP& q) { q.index = nullptr; }));
  R("focal_scatter", "chain with const_map", with(sc, [&](SP& q) { q.chain = chn; }));
  R("focal_scatter", "chain upto > L", with(sc, [&](SP& q) { q.chain = chn, q.const_map = nullptr, q.chain.upto = 3; }));
  using PP = AmpleFusePoolParams;
  const PP po{d, d, d, 2, 4, 4, 8, 8, 0, {}};
  R("ample_fuse_pool", "NC < 0", with(po, [](PP& q) { q.NC = -1; }));
  R("ample_fuse_pool", "h = 0", with(po, [](PP& q) { q.h = 0; }));
  R("ample_fuse_pool", "w = 0", with(po, [](PP& q) { q.w = 0; }));
  R("ample_fuse_pool", "H = 0", with(po, [](PP& q) { q.H = 0; }));
  R("ample_fuse_pool", "W = 0", with(po, [](PP& q) { q.W = 0; }));
  R("ample_fuse_pool", "h + w > 8192", with(po, [](PP& q) { q.h = 8000, q.w = 193; }));
  R("ample_fuse_pool", "H*W >= 2^31", with(po, [](PP& q) { q.H = 65536, q.W = 32768; }));
  R("ample_fuse_pool", "xl null", with(po, [](PP& q) { q.xl = nullptr; }));
  R("ample_fuse_pool", "xb null", with(po, [](PP& q) { q.xb = nullptr; }));
  R("ample_fuse_pool", "out null", with(po, [](PP& q) { q.out = nullptr; }));
  R("ample_fuse_pool", "chain with C = 0", with(po, [&](PP& q) { q.chain = chn; }));
  R("ample_fuse_pool", "chain with NC % C != 0", with(po, [&](PP& q) { q.chain = chn, q.C = 4; }));
  R("ample_fuse_pool", "chain upto > L", with(po, [&](PP& q) { q.chain = chn, q.C = 1, q.chain.upto = 3; }));
  using BP = AmpleFuseBlendParams;
  const BP bl{d, d, d, d, 2, 4, 4, 8, 8, false, 0, {}};
  R("ample_fuse_blend", "NC < 0", with(bl, [](BP& q) { q.NC = -1; }));
  R("ample_fuse_blend", "h = 0", with(bl, [](BP& q) { q.h = 0; }));
  R("ample_fuse_blend", "w = 0", with(bl, [](BP& q) { q.w = 0; }));
  R("ample_fuse_blend", "H = 0", with(bl, [](BP& q) { q.H = 0; }));
  R("ample_fuse_blend", "W = 0", with(bl, [](BP& q) { q.W = 0; }));
  R("ample_fuse_blend", "H*W >= 2^31", with(bl, [](BP& q) { q.H = 65536, q.W = 32768; }));
  R("ample_fuse_blend", "h*w >= 2^31", with(bl, [](BP& q) { q.h = 65536, q.w = 32768; }));
  R("ample_fuse_blend", "xl null", with(bl, [](BP& q) { q.xl = nullptr; }));
  R("ample_fuse_blend", "xb null", with(bl, [](BP& q) { q.xb = nullptr; }));
  R("ample_fuse_blend", "a null", with(bl, [](BP& q) { q.a = nullptr; }));
  R("ample_fuse_blend", "out null", with(bl, [](BP& q) { q.out = nullptr; }));
  R("ample_fuse_blend", "chain with C = 0", with(bl, [&](BP& q) { q.chain = chn; }));
  R("ample_fuse_blend", "chain with NC % C != 0", with(bl, [&](BP& q) { q.chain = chn, q.C = 4; }));
  R("ample_fuse_blend", "chain consts null", with(bl, [&](BP& q) { q.chain = chn, q.C = 2, q.chain.consts = nullptr; }));
  using TP = TemporalAggregateParams;
  const float* fw = reinterpret_cast<const float*>(dummy);
  const TP ta{d, fw, d, nullptr, nullptr, 4, 2, 4, 2, 3, true};
  R("temporal_aggregate", "N < 0", with(ta, [](TP& q) { q.N = -1; }));
  R("temporal_aggregate", "C < 0", with(ta, [](TP& q) { q.C = -1; }));
  R("temporal_aggregate", "HW < 0", with(ta, [](TP& q) { q.HW = -1; }));
  R("temporal_aggregate", "T = 0", with(ta, [](TP& q) { q.T = 0; }));
  R("temporal_aggregate", "N % T != 0", with(ta, [](TP& q) { q.T = 3; }));
  R("temporal_aggregate", "K = 0", with(ta, [](TP& q) { q.K = 0; }));
  R("temporal_aggregate", "K even", with(ta, [](TP& q) { q.K = 4; }));
  R("temporal_aggregate", "K > 63", with(ta, [](TP& q) { q.K = 65; }));
  R("temporal_aggregate", "weight2 without out2", with(ta, [&](TP& q) { q.weight2 = fw; }));
  R("temporal_aggregate", "out2 without weight2", with(ta, [&](TP& q) { q.out2 = d; }));
  R("temporal_aggregate", "x null", with(ta, [](TP& q) { q.x = nullptr; }));
  R("temporal_aggregate", "weight null", with(ta, [](TP& q) { q.weight = nullptr; }));
  R("temporal_aggregate", "out null", with(ta, [](TP& q) { q.out = nullptr; }));
  using MP = BLMergeParams;
  const MP mg{d, d, d, 2, 4, 4, 8, 8, true};
  R("bl_merge", "NC < 0", with(mg, [](MP& q) { q.NC = -1; }));
  R("bl_merge", "h = 0", with(mg, [](MP& q) { q.h = 0; }));
  R("bl_merge", "w = 0", with(mg, [](MP& q) { q.w = 0; }));
  R("bl_merge", "H = 0", with(mg, [](MP& q) { q.H = 0; }));
  R("bl_merge", "W = 0", with(mg, [](MP& q) { q.W = 0; }));
  R("bl_merge", "H*W >= 2^31", with(mg, [](MP& q) { q.H = 65536, q.W = 32768; }));
  R("bl_merge", "h*w >= 2^31", with(mg, [](MP& q) { q.h = 65536, q.w = 32768; }));
  R("bl_merge", "big null", with(mg, [](MP& q) { q.big = nullptr; }));
  R("bl_merge", "little null", with(mg, [](MP& q) { q.little = nullptr; }));
  R("bl_merge", "out null", with(mg, [](MP& q) { q.out = nullptr; }));
  {
    using CP = FocusCropParams;
    const CP fc{d, dummy, d, 2, 3, 8, 8, 4, CropMode::kBilinear};
    R("focus_crop", "N < 0", with(fc, [](CP& q) { q.N = -1; }));
    R("focus_crop", "C < 0", with(fc, [](CP& q) { q.C = -1; }));
    R("focus_crop", "P = 0", with(fc, [](CP& q) { q.P = 0; }));
    R("focus_crop", "P > H", with(fc, [](CP& q) { q.H = 3; }));
    R("focus_crop", "P > W", with(fc, [](CP& q) { q.W = 3; }));
    R("focus_crop", "unknown mode", with(fc, [](CP& q) { q.mode = static_cast<CropMode>(5); }));
    R("focus_crop", "x null", with(fc, [](CP& q) { q.x = nullptr; }));
    R("focus_crop", "centres null", with(fc, [](CP& q) { q.centres = nullptr; }));
    R("focus_crop", "out null", with(fc, [](CP& q) { q.out = nullptr; }));
    using GXP = FocusCropGradXParams;
    const GXP gx{d, dummy, d, 2, 3, 8, 8, 4, CropMode::kBilinear};
    R("focus_crop", "grad_x P > H", with(gx, [](GXP& q) { q.H = 3; }));
    R("focus_crop", "grad_x grad null", with(gx, [](GXP& q) { q.grad = nullptr; }));
    R("focus_crop", "grad_x out null", with(gx, [](GXP& q) { q.grad_x = nullptr; }));
    using GCP2 = FocusCropGradCentresParams;
    const GCP2 gcp{d, d, dummy, dummy, 2, 3, 8, 8, 4, CropMode::kBilinear};
    R("focus_crop", "grad_centres P = 0", with(gcp, [](GCP2& q) { q.P = 0; }));
    R("focus_crop", "grad_centres x null", with(gcp, [](GCP2& q) { q.x = nullptr; }));
    R("focus_crop", "grad_centres out null (C = 0)", with(gcp, [](GCP2& q) { q.C = 0, q.grad_centres = nullptr; }));
  }
  using FP = SelectFramesParams;
  const FP se{d, dummy, dummy, d, 2, 2, 4, SelectMode::kTopK, 2};
  R("select_frames", "L < 0", with(se, [](FP& q) { q.L = -1; }));
  R("select_frames", "B < 0", with(se, [](FP& q) { q.B = -1; }));
  R("select_frames", "T < 0", with(se, [](FP& q) { q.T = -1; }));
  R("select_frames", "unknown mode", with(se, [](FP& q) { q.mode = static_cast<SelectMode>(7); }));
  R("select_frames", "k < 0", with(se, [](FP& q) { q.k = -1; }));
  R("select_frames", "k > T", with(se, [](FP& q) { q.k = 5; }));
  R("select_frames", "T > 1024", with(se, [](FP& q) { q.T = 1025, q.mode = SelectMode::kThreshold; }));
  R("select_frames", "counts null", with(se, [](FP& q) { q.counts = nullptr; }));
  R("select_frames", "logits null", with(se, [](FP& q) { q.logits = nullptr; }));
  R("select_frames", "mask null", with(se, [](FP& q) { q.mask = nullptr; }));
  R("select_frames", "index null", with(se, [](FP& q) { q.index = nullptr; }));
  {
    int32_t* i32 = reinterpret_cast<int32_t*>(dummy);
    using BPP = BinarizePackParams;
    const BPP bp{d, i32, 4, 40};
    R("binarize_pack", "N < 0", with(bp, [](BPP& q) { q.N = -1; }));
    R("binarize_pack", "D < 0", with(bp, [](BPP& q) { q.D = -1; }));
    R("binarize_pack", "y null", with(bp, [](BPP& q) { q.y = nullptr; }));
    R("binarize_pack", "bits null", with(bp, [](BPP& q) { q.bits = nullptr; }));
    using SMP = SegmentMeanParams;
    const SMP sm{d, dummy, dummy, dummy, d, 8, 2, 3, 4};
    R("segment_mean", "N_total < 0", with(sm, [](SMP& q) { q.n_total = -1; }));
    R("segment_mean", "B = 0", with(sm, [](SMP& q) { q.B = 0; }));
    R("segment_mean", "K = 0", with(sm, [](SMP& q) { q.K = 0; }));
    R("segment_mean", "D < 0", with(sm, [](SMP& q) { q.D = -1; }));
    R("segment_mean", "B > 1 without frame_offsets", with(sm, [](SMP& q) { q.frame_offsets = nullptr; }));
    R("segment_mean", "offsets null", with(sm, [](SMP& q) { q.offsets = nullptr; }));
    R("segment_mean", "num_segments null", with(sm, [](SMP& q) { q.num_segments = nullptr; }));
    R("segment_mean", "a null", with(sm, [](SMP& q) { q.a = nullptr; }));
    R("segment_mean", "out null", with(sm, [](SMP& q) { q.out = nullptr; }));
    using SMBP = SegmentMeanBackwardParams;
    const SMBP sb_{d, dummy, dummy, dummy, d, 8, 2, 3, 4};
    R("segment_mean_backward", "N_total < 0", with(sb_, [](SMBP& q) { q.n_total = -1; }));
    R("segment_mean_backward", "B = 0", with(sb_, [](SMBP& q) { q.B = 0; }));
    R("segment_mean_backward", "K = 0", with(sb_, [](SMBP& q) { q.K = 0; }));
    R("segment_mean_backward", "D < 0", with(sb_, [](SMBP& q) { q.D = -1; }));
    R("segment_mean_backward", "B > 1 without frame_offsets", with(sb_, [](SMBP& q) { q.frame_offsets = nullptr; }));
    R("segment_mean_backward", "offsets null", with(sb_, [](SMBP& q) { q.offsets = nullptr; }));
    R("segment_mean_backward", "num_segments null", with(sb_, [](SMBP& q) { q.num_segments = nullptr; }));
    R("segment_mean_backward", "grad null", with(sb_, [](SMBP& q) { q.grad = nullptr; }));
    R("segment_mean_backward", "grad_a null", with(sb_, [](SMBP& q) { q.grad_a = nullptr; }));
    if (std::is_same<T, float>::value) {
      using AHP = AdjacentHammingParams;
      const AHP ah{i32, i32, 4, 2};
      R("adjacent_hamming", "N < 0", with(ah, [](AHP& q) { q.N = -1; }));
      R("adjacent_hamming", "W < 0", with(ah, [](AHP& q) { q.W = -1; }));
      R("adjacent_hamming", "h null", with(ah, [](AHP& q) { q.h = nullptr; }));
      R("adjacent_hamming", "bits null", with(ah, [](AHP& q) { q.bits = nullptr; }));
      using SBP = SegmentBoundariesParams;
      const SBP sb{i32, dummy, dummy, dummy, 8, 2, 3, BoundaryRule::kSlope};
      R("segment_boundaries", "N_total = 0", with(sb, [](SBP& q) { q.n_total = 0; }));
      R("segment_boundaries", "B = 0", with(sb, [](SBP& q) { q.B = 0; }));
      R("segment_boundaries", "K = 0", with(sb, [](SBP& q) { q.K = 0; }));
      R("segment_boundaries", "unknown rule", with(sb, [](SBP& q) { q.rule = static_cast<BoundaryRule>(5); }));
      R("segment_boundaries", "B > 1 without frame_offsets", with(sb, [](SBP& q) { q.frame_offsets = nullptr; }));
      R("segment_boundaries", "offsets null", with(sb, [](SBP& q) { q.offsets = nullptr; }));
      R("segment_boundaries", "num_segments null", with(sb, [](SBP& q) { q.num_segments = nullptr; }));
      R("segment_boundaries", "h null", with(sb, [](SBP& q) { q.h = nullptr; }));
    }
  }
  if (!g_cuda_suite || sizeof(T) == 2) {
    const int32_t* st = reinterpret_cast<const int32_t*>(dummy);
    using GCP = GatherConv1x1Params;
    const GCP gc{d, dummy, d, reinterpret_cast<float*>(dummy), reinterpret_cast<float*>(dummy), d, 4, 16, 4, 2, 8, 2, 2,
                 true, true, ChainParams{st, d, 3, 1, 2}};
    R("gather_conv1x1", "groups = 0", with(gc, [](GCP& q) { q.groups = 0; }));
    R("gather_conv1x1", "C % groups", with(gc, [](GCP& q) { q.C = 15; }));
    R("gather_conv1x1", "O % groups", with(gc, [](GCP& q) { q.O = 7; }));
    R("gather_conv1x1", "N % T", with(gc, [](GCP& q) { q.N = 3; }));
    R("gather_conv1x1", "K < 0", with(gc, [](GCP& q) { q.K = -1; }));
    R("gather_conv1x1", "frames of an empty tensor", with(gc, [](GCP& q) { q.N = 0; }));
    R("gather_conv1x1", "x null", with(gc, [](GCP& q) { q.x = nullptr; }));
    R("gather_conv1x1", "weight null", with(gc, [](GCP& q) { q.weight = nullptr; }));
    R("gather_conv1x1", "scale null", with(gc, [](GCP& q) { q.scale = nullptr; }));
    R("gather_conv1x1", "out null", with(gc, [](GCP& q) { q.out = nullptr; }));
    R("gather_conv1x1", "chain upto > L", with(gc, [](GCP& q) { q.chain.upto = 4; }));
    R("gather_conv1x1", "chain upto < 0", with(gc, [](GCP& q) { q.chain.upto = -1; }));
    R("gather_conv1x1", "chain consts null", with(gc, [](GCP& q) { q.chain.consts = nullptr; }));
    R("gather_conv1x1", "grid y > 65535 tiles", with(gc, [](GCP& q) { q.O = 64 * 70000, q.groups = 1; }));
    R("gather_conv1x1", "grid x > 2^31 tiles", with(gc, [](GCP& q) { q.HW = int64_t(64) << 32; }));
    using CSP = Conv1x1ScatterParams;
    const CSP cp{d, d, reinterpret_cast<float*>(dummy), reinterpret_cast<float*>(dummy), d, dummy, d, 4, 16, 8, 4, 2, 2,
                 true, ChainParams{st, d, 3, 1, 2}};
    R("conv1x1_scatter", "groups = 0", with(cp, [](CSP& q) { q.groups = 0; }));
    R("conv1x1_scatter", "C % groups", with(cp, [](CSP& q) { q.C = 15; }));
    R("conv1x1_scatter", "Ch % groups", with(cp, [](CSP& q) { q.Ch = 7; }));
    R("conv1x1_scatter", "K > N", with(cp, [](CSP& q) { q.K = 5; }));
    R("conv1x1_scatter", "residual null", with(cp, [](CSP& q) { q.residual = nullptr; }));
    R("conv1x1_scatter", "h null", with(cp, [](CSP& q) { q.h = nullptr; }));
    R("conv1x1_scatter", "bias null", with(cp, [](CSP& q) { q.bias = nullptr; }));
    R("conv1x1_scatter", "index null", with(cp, [](CSP& q) { q.index = nullptr; }));
    R("conv1x1_scatter", "chain upto > L", with(cp, [](CSP& q) { q.chain.upto = 4; }));
    R("conv1x1_scatter", "grid y > 65535 tiles", with(cp, [](CSP& q) { q.C = 64 * 70000, q.groups = 1; }));
  }
}

template <typename F>
void for_each_type(F&& f) {
  f(float{});
  f(half_t{});
  f(bf16_t{});
  f(double{});
}

int usage() {
  std::fprintf(stderr, "usage: selftest [--cpu-only | --cuda-only] [--op NAME]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool cpu = true, cuda = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu-only") {
      cuda = false;
    } else if (a == "--cuda-only") {
      cpu = false;
    } else if (a == "--op" && i + 1 < argc) {
      g_only_op = argv[++i];
    } else {
      return usage();
    }
  }
  if (!cpu && !cuda) return usage();
  if (cpu) {
    if (g_only_op.empty() || g_only_op == "conversions") test_conversions();
    for_each_type([](auto t) { run_cases<decltype(t)>(); });
    std::printf("CPU twins: %d passed, %d failed\n", g_passed, g_failed);
  }
  [[maybe_unused]] const int cpu_passed = g_passed, cpu_failed = g_failed;
  if (cuda) {
#if defined(AFN_WITH_CUDA_RUNTIME)
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      std::printf("CUDA launchers: skipped (no CUDA device)\n");
      if (!cpu) return 2;
    } else {
      g_cuda_suite = true;
      g_case = 0;
      for_each_type([](auto t) { run_cases<decltype(t)>(); });
      std::printf("CUDA launchers: %d passed, %d failed\n", g_passed - cpu_passed, g_failed - cpu_failed);
    }
#else
    std::printf("CUDA launchers: skipped (built without CUDA)\n");
    if (!cpu) return 2;
#endif
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
