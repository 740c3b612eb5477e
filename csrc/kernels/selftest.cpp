// Self-test of csrc/kernels without torch: every CPU twin against a naive loop written independently from the
// definitions in the headers, on random data (never zeros), outputs poisoned with NaN first, for float32 / float16 /
// bfloat16 / float64, odd sizes, misaligned pointers (forcing the narrow and scalar vector paths), empty and full
// selections, and out-of-range indices. Built with CUDA (AFN_WITH_CUDA_RUNTIME) it also runs every CUDA launcher
// against its CPU twin when a GPU is present, and says that it skipped them otherwise.
//
// Exit code 0 when everything passed; prints one line per group and a closing "N passed, N failed" line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ample_fuse_blend.h"
#include "ample_fuse_pool.h"
#include "focal_gather.h"
#include "focal_scatter.h"
#include "select_frames.h"

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

// A buffer whose data starts `offset` elements into the allocation (offset 1 misaligns it for vector loads).
template <typename T>
struct Buf {
  std::vector<T> store;
  size_t off;
  Buf(const std::vector<T>& v, size_t offset) : store(v.size() + offset + 1, nan_value<T>()), off(offset) {
    std::copy(v.begin(), v.end(), store.begin() + offset);
  }
  Buf(size_t n, size_t offset) : store(n + offset + 1, nan_value<T>()), off(offset) {}
  T* ptr() { return store.data() + off; }
  T at(size_t i) const { return store[off + i]; }
};

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isnan(got)) return false;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// ---- reference maps (independent of index_math.h) -----------------------------------------------------------------
int64_t naive_nearest(int64_t d, int64_t in, int64_t out) {
  if (out == in) return d;
  if (out == 2 * in) return d / 2;
  const float s = static_cast<float>(in) / static_cast<float>(out);
  return std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(d) * s)), in - 1);
}

// ---- focal_gather ---------------------------------------------------------------------------------------------------
template <typename T>
void test_gather(int64_t B, int64_t Tn, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool shift,
                 size_t off) {
  const int64_t N = B * Tn, HW = H * W, K = static_cast<int64_t>(index.size());
  Buf<T> x(random_vec<T>(static_cast<size_t>(N * C * HW)), off);
  Buf<T> y(static_cast<size_t>(K * C * HW), off);
  FocalGatherParams p{x.ptr(), index.data(), y.ptr(), N, C, HW, K, Tn, shift};
  const Status st = focal_gather_cpu<T>(p);
  bool ok = st == Status::kOk;
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
          if (src >= 0) want = to_d(x.at(static_cast<size_t>((src * C + c) * HW + e)));
        }
        const double got = to_d(y.at(static_cast<size_t>((k * C + c) * HW + e)));
        ok = got == want;
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "focal_gather %s B=%lld T=%lld C=%lld H=%lld W=%lld K=%lld shift=%d off=%zu",
                TypeName<T>::get(), (long long)B, (long long)Tn, (long long)C, (long long)H, (long long)W, (long long)K,
                shift ? 1 : 0, off);
  report(ok, buf);
}

// ---- focal_scatter --------------------------------------------------------------------------------------------------
template <typename T>
void test_scatter(int64_t N, int64_t C, int64_t H, int64_t W, std::vector<int64_t> index, bool with_const, bool relu,
                  bool inplace, size_t off) {
  const int64_t HW = H * W, K = static_cast<int64_t>(index.size());
  const auto res_v = random_vec<T>(static_cast<size_t>(N * C * HW));
  Buf<T> res(res_v, off);
  Buf<T> y(random_vec<T>(static_cast<size_t>(K * C * HW)), off);
  Buf<T> cm(random_vec<T>(static_cast<size_t>(C * HW)), off);
  Buf<T> out(static_cast<size_t>(N * C * HW), off);
  T* out_ptr = inplace ? res.ptr() : out.ptr();
  FocalScatterParams p{res.ptr(), y.ptr(), index.data(), with_const ? cm.ptr() : nullptr, out_ptr, N, C, HW, K, relu};
  bool ok = focal_scatter_cpu<T>(p) == Status::kOk;
  for (int64_t f = 0; f < N && ok; ++f) {
    int64_t k = -1;
    for (int64_t j = 0; j < K; ++j)
      if (index[static_cast<size_t>(j)] == f) k = j;
    for (int64_t e = 0; e < C * HW && ok; ++e) {
      const double r = to_d(res_v[static_cast<size_t>(f * C * HW + e)]);
      const double add = k >= 0 ? to_d(y.at(static_cast<size_t>(k * C * HW + e)))
                                : (with_const ? to_d(cm.at(static_cast<size_t>(e))) : 0.0);
      double want = to_d(from_d<T>(r + add));  // one rounding of the exact sum (exact in double for these types)
      if (relu && want < 0) want = 0;
      const double got = to_d(out_ptr[f * C * HW + e]);
      ok = got == want;
    }
  }
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "focal_scatter %s N=%lld C=%lld H=%lld W=%lld K=%lld const=%d relu=%d inplace=%d off=%zu",
                TypeName<T>::get(), (long long)N, (long long)C, (long long)H, (long long)W, (long long)K,
                with_const ? 1 : 0, relu ? 1 : 0, inplace ? 1 : 0, off);
  report(ok, buf);
}

// ---- ample_fuse_pool / ample_fuse_blend ----------------------------------------------------------------------------
template <typename T>
void test_pool(int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, size_t off) {
  Buf<T> xl(random_vec<T>(static_cast<size_t>(NC * h * w)), off);
  Buf<T> xb(random_vec<T>(static_cast<size_t>(NC * H * W)), off);
  Buf<T> out(static_cast<size_t>(NC), off);
  AmpleFusePoolParams p{xl.ptr(), xb.ptr(), out.ptr(), NC, h, w, H, W};
  bool ok = ample_fuse_pool_cpu<T>(p) == Status::kOk;
  for (int64_t pl = 0; pl < NC && ok; ++pl) {
    double s = 0, sabs = 0;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        const double u =
            to_d(xl.at(static_cast<size_t>(pl * h * w + naive_nearest(i, h, H) * w + naive_nearest(j, w, W))));
        const double b = to_d(xb.at(static_cast<size_t>(pl * H * W + i * W + j)));
        s += u + b;
        sabs += std::fabs(u) + std::fabs(b);
      }
    const double want = s / static_cast<double>(H * W);
    // accumulation error scales with Σ|terms|; the final rounding with the type's epsilon
    const double atol = tol<T>() * (1.0 + sabs / static_cast<double>(H * W));
    ok = close(to_d(out.at(static_cast<size_t>(pl))), want, tol<T>(), atol);
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "ample_fuse_pool %s NC=%lld %lldx%lld->%lldx%lld off=%zu", TypeName<T>::get(),
                (long long)NC, (long long)h, (long long)w, (long long)H, (long long)W, off);
  report(ok, buf);
}

template <typename T>
void test_blend(int64_t NC, int64_t h, int64_t w, int64_t H, int64_t W, bool relu, size_t off) {
  Buf<T> xl(random_vec<T>(static_cast<size_t>(NC * h * w)), off);
  Buf<T> xb(random_vec<T>(static_cast<size_t>(NC * H * W)), off);
  std::vector<T> av(static_cast<size_t>(NC));
  std::uniform_real_distribution<double> u01(0.05, 0.95);
  for (auto& v : av) v = from_d<T>(u01(g_rng));
  Buf<T> a(av, off);
  Buf<T> out(static_cast<size_t>(NC * H * W), off);
  AmpleFuseBlendParams p{xl.ptr(), xb.ptr(), a.ptr(), out.ptr(), NC, h, w, H, W, relu};
  bool ok = ample_fuse_blend_cpu<T>(p) == Status::kOk;
  for (int64_t pl = 0; pl < NC && ok; ++pl)
    for (int64_t i = 0; i < H && ok; ++i)
      for (int64_t j = 0; j < W && ok; ++j) {
        const double aa = to_d(a.at(static_cast<size_t>(pl)));
        const double u =
            to_d(xl.at(static_cast<size_t>(pl * h * w + naive_nearest(i, h, H) * w + naive_nearest(j, w, W))));
        const double b = to_d(xb.at(static_cast<size_t>(pl * H * W + i * W + j)));
        double want = aa * u + (1 - aa) * b;
        if (relu && want < 0) want = 0;
        ok = close(to_d(out.at(static_cast<size_t>(pl * H * W + i * W + j))), want, tol<T>(), tol<T>() * 4);
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "ample_fuse_blend %s NC=%lld %lldx%lld->%lldx%lld relu=%d off=%zu", TypeName<T>::get(),
                (long long)NC, (long long)h, (long long)w, (long long)H, (long long)W, relu ? 1 : 0, off);
  report(ok, buf);
}

// ---- select_frames --------------------------------------------------------------------------------------------------
template <typename T>
void test_select(int64_t L, int64_t B, int64_t Tn, SelectMode mode, int64_t k, bool with_ties) {
  const int64_t N = B * Tn;
  std::vector<T> logits = random_vec<T>(static_cast<size_t>(L * N * 2));
  if (with_ties) {  // few distinct values: many equal margins, and a NaN
    std::uniform_int_distribution<int> pick(-2, 2);
    for (auto& v : logits) v = from_d<T>(0.5 * pick(g_rng));
    if (!logits.empty()) logits[3 % logits.size()] = nan_value<T>();
  }
  const int64_t M = mode == SelectMode::kTopK ? B * k : N;
  std::vector<int64_t> index(static_cast<size_t>(L * M) + 1, -7), counts(static_cast<size_t>(L) + 1, -7);
  std::vector<T> mask(static_cast<size_t>(L * N) + 1, nan_value<T>());
  SelectFramesParams p{logits.data(), index.data(), counts.data(), mask.data(), L, B, Tn, mode, k};
  bool ok = select_frames_cpu<T>(p) == Status::kOk;
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
  ok = ok && index[static_cast<size_t>(L * M)] == -7 && counts[static_cast<size_t>(L)] == -7;  // no write past the end
  char buf[200];
  std::snprintf(buf, sizeof buf, "select_frames %s L=%lld B=%lld T=%lld %s k=%lld ties=%d", TypeName<T>::get(),
                (long long)L, (long long)B, (long long)Tn, mode == SelectMode::kTopK ? "topk" : "threshold",
                (long long)k, with_ties ? 1 : 0);
  report(ok, buf);
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

template <typename T>
void run_cpu_suite() {
  for (size_t off : {size_t(0), size_t(1)}) {
    // gather: shift on/off, C % 8 != 0, C < 8, odd and vector-friendly planes, empty / full / out-of-range selections
    test_gather<T>(2, 4, 16, 4, 4, {0, 2, 3, 5, 6}, true, off);
    test_gather<T>(2, 4, 16, 4, 4, {0, 2, 3, 5, 6}, false, off);
    test_gather<T>(3, 3, 12, 3, 5, {0, 1, 2, 3, 4, 5, 6, 7, 8}, true, off);  // full, C % 8 = 4, odd plane
    test_gather<T>(2, 3, 5, 2, 2, {1, 4}, true, off);                        // C < 8: fold = 0
    test_gather<T>(2, 4, 24, 7, 7, {}, true, off);                           // empty
    test_gather<T>(1, 5, 8, 2, 4, {4, 0, 2}, true, off);                     // unsorted is fine for the gather
    test_gather<T>(1, 5, 8, 2, 4, {-1, 2, 5, 99}, true, off);                // out of range -> zero frames
    test_gather<T>(1, 1, 16, 2, 2, {0}, true, off);                          // T = 1: both shifted groups zero
    // scatter
    for (bool cst : {false, true})
      for (bool relu : {false, true}) test_scatter<T>(6, 16, 3, 4, {1, 2, 5}, cst, relu, false, off);
    test_scatter<T>(5, 8, 2, 2, {}, true, true, false, off);               // empty
    test_scatter<T>(5, 8, 3, 3, {0, 1, 2, 3, 4}, true, true, false, off);  // full
    test_scatter<T>(4, 3, 5, 1, {0, 3}, true, false, true, off);           // in place, odd sizes
    test_scatter<T>(4, 8, 2, 2, {-3, 2, 9}, true, true, false, off);       // out of range entries ignored
    // pool / blend: ×2, identity, general legacy-nearest (odd sizes, non-integer ratios, downsampling), big plane
    for (auto s : std::vector<std::vector<int64_t>>{{7, 4, 4, 8, 8},
                                                    {5, 3, 3, 3, 3},
                                                    {4, 14, 14, 28, 28},
                                                    {3, 3, 5, 7, 11},
                                                    {3, 7, 7, 14, 15},
                                                    {2, 5, 6, 3, 4},
                                                    {2, 48, 48, 96, 96},
                                                    {3, 40, 30, 97, 101}})
      test_pool<T>(s[0], s[1], s[2], s[3], s[4], off);
    for (bool relu : {false, true}) {
      test_blend<T>(6, 4, 4, 8, 8, relu, off);
      test_blend<T>(4, 7, 7, 14, 14, relu, off);
      test_blend<T>(3, 3, 5, 7, 11, relu, off);
      test_blend<T>(2, 5, 6, 3, 4, relu, off);
    }
  }
  // select
  for (bool ties : {false, true}) {
    test_select<T>(3, 2, 12, SelectMode::kThreshold, 0, ties);
    for (int64_t k : {0, 1, 3, 12}) test_select<T>(3, 2, 12, SelectMode::kTopK, k, ties);
    test_select<T>(2, 5, 7, SelectMode::kTopK, 4, ties);
  }
  test_select<T>(1, 100, 7, SelectMode::kThreshold, 0, false);  // several 256-frame tiles
  test_select<T>(2, 0, 4, SelectMode::kThreshold, 0, false);    // no frames
  test_select<T>(2, 3, 0, SelectMode::kTopK, 0, false);
}

// ---- CUDA launchers against the CPU twins ------------------------------------------------------------------------
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

struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  template <typename V>
  explicit DevBuf(const std::vector<V>& host) : bytes(host.size() * sizeof(V)) {
    cudaMalloc(&p, bytes + 16);
    cudaMemcpy(p, host.data(), bytes, cudaMemcpyHostToDevice);
  }
  ~DevBuf() { cudaFree(p); }
  template <typename V>
  std::vector<V> get(size_t n) const {
    std::vector<V> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(V), cudaMemcpyDeviceToHost);
    return h;
  }
};

template <typename V>
bool same_bits(const std::vector<V>& a, const std::vector<V>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(V)) == 0;
}

template <typename T>
bool cmp_close(const std::vector<T>& got, const std::vector<T>& want, double t) {
  for (size_t i = 0; i < got.size(); ++i)
    if (!close(to_d(got[i]), to_d(want[i]), t, t)) return false;
  return true;
}

template <typename T>
void run_cuda_suite() {
  using D = typename CudaType<T>::type;
  const int64_t B = 3, Tn = 12, C = 40, H = 14, W = 14, N = B * Tn, HW = H * W;
  const std::vector<int64_t> index = {0, 3, 4, 11, 12, 20, 35};
  const int64_t K = static_cast<int64_t>(index.size());
  const auto x = random_vec<T>(static_cast<size_t>(N * C * HW));
  DevBuf dx(x), didx(index);
  // gather
  {
    std::vector<T> want(static_cast<size_t>(K * C * HW), nan_value<T>());
    DevBuf dy(std::vector<T>(want.size(), nan_value<T>()));
    FocalGatherParams hp{x.data(), index.data(), want.data(), N, C, HW, K, Tn, true};
    FocalGatherParams dp{dx.p, static_cast<const int64_t*>(didx.p), dy.p, N, C, HW, K, Tn, true};
    focal_gather_cpu<T>(hp);
    const bool ok = focal_gather_cuda<D>(dp, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess &&
                    same_bits(dy.get<T>(want.size()), want);
    report(ok, std::string("cuda focal_gather ") + TypeName<T>::get());
  }
  // scatter (const + relu), in place
  {
    const auto y = random_vec<T>(static_cast<size_t>(K * C * HW));
    const auto cm = random_vec<T>(static_cast<size_t>(C * HW));
    std::vector<T> want(x.size(), nan_value<T>());
    DevBuf dyy(y), dcm(cm), dres(x);
    FocalScatterParams hp{x.data(), y.data(), index.data(), cm.data(), want.data(), N, C, HW, K, true};
    FocalScatterParams dp{dres.p, dyy.p, static_cast<const int64_t*>(didx.p), dcm.p, dres.p, N, C, HW, K, true};
    focal_scatter_cpu<T>(hp);
    const bool ok = focal_scatter_cuda<D>(dp, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess &&
                    same_bits(dres.get<T>(want.size()), want);
    report(ok, std::string("cuda focal_scatter ") + TypeName<T>::get());
  }
  // pool / blend on ×2 and a general ratio
  for (auto s : std::vector<std::vector<int64_t>>{{7, 7, 14, 14}, {5, 6, 11, 13}, {48, 48, 96, 96}}) {
    const int64_t NC = 37, h = s[0], w = s[1], Hh = s[2], Ww = s[3];
    const auto xl = random_vec<T>(static_cast<size_t>(NC * h * w));
    const auto xb = random_vec<T>(static_cast<size_t>(NC * Hh * Ww));
    std::vector<T> av(static_cast<size_t>(NC));
    for (auto& v : av) v = from_d<T>(0.3);
    DevBuf dxl(xl), dxb(xb), da(av);
    std::vector<T> pw(static_cast<size_t>(NC)), bw(xb.size());
    DevBuf dpo(pw), dbo(bw);
    AmpleFusePoolParams php{xl.data(), xb.data(), pw.data(), NC, h, w, Hh, Ww};
    AmpleFusePoolParams pdp{dxl.p, dxb.p, dpo.p, NC, h, w, Hh, Ww};
    ample_fuse_pool_cpu<T>(php);
    bool ok = ample_fuse_pool_cuda<D>(pdp, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess &&
              cmp_close(dpo.get<T>(pw.size()), pw, tol<T>() * 4);
    report(ok, std::string("cuda ample_fuse_pool ") + TypeName<T>::get());
    AmpleFuseBlendParams bhp{xl.data(), xb.data(), av.data(), bw.data(), NC, h, w, Hh, Ww, true};
    AmpleFuseBlendParams bdp{dxl.p, dxb.p, da.p, dbo.p, NC, h, w, Hh, Ww, true};
    ample_fuse_blend_cpu<T>(bhp);
    ok = ample_fuse_blend_cuda<D>(bdp, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess &&
         cmp_close(dbo.get<T>(bw.size()), bw, tol<T>());
    report(ok, std::string("cuda ample_fuse_blend ") + TypeName<T>::get());
  }
  // select (both modes), with ties
  for (SelectMode mode : {SelectMode::kThreshold, SelectMode::kTopK}) {
    const int64_t L = 5, Bs = 70, Ts = 12, k = 4, Ns = Bs * Ts;
    std::vector<T> logits(static_cast<size_t>(L * Ns * 2));
    std::uniform_int_distribution<int> pick(-3, 3);
    for (auto& v : logits) v = from_d<T>(0.25 * pick(g_rng));
    const int64_t M = mode == SelectMode::kTopK ? Bs * k : Ns;
    std::vector<int64_t> hi(static_cast<size_t>(L * M)), hc(static_cast<size_t>(L));
    std::vector<T> hm(static_cast<size_t>(L * Ns));
    DevBuf dl(logits), di(hi), dc(hc), dm(hm);
    SelectFramesParams hp{logits.data(), hi.data(), hc.data(), hm.data(), L, Bs, Ts, mode, k};
    SelectFramesParams dp{dl.p, static_cast<int64_t*>(di.p), static_cast<int64_t*>(dc.p), dm.p, L, Bs, Ts, mode, k};
    select_frames_cpu<T>(hp);
    const bool ok = select_frames_cuda<D>(dp, nullptr) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess &&
                    di.get<int64_t>(hi.size()) == hi && dc.get<int64_t>(hc.size()) == hc &&
                    same_bits(dm.get<T>(hm.size()), hm);
    report(ok, std::string("cuda select_frames ") + (mode == SelectMode::kTopK ? "topk " : "threshold ") +
                   TypeName<T>::get());
  }
}
#endif

}  // namespace

int main() {
  test_conversions();
  run_cpu_suite<float>();
  run_cpu_suite<half_t>();
  run_cpu_suite<bf16_t>();
  run_cpu_suite<double>();
  std::printf("CPU twins: %d passed, %d failed\n", g_passed, g_failed);
#if defined(AFN_WITH_CUDA_RUNTIME)
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    std::printf("CUDA kernels: skipped (no CUDA device)\n");
  } else {
    run_cuda_suite<float>();
    run_cuda_suite<half_t>();
    run_cuda_suite<bf16_t>();
    run_cuda_suite<double>();
  }
#else
  std::printf("CUDA kernels: skipped (built without CUDA)\n");
#endif
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
