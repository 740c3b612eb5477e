// Shared basics of afnet_edge's kernels: host/device qualifiers, element types and conversions, vector loads,
// launch helpers. Plain C++ / CUDA C++: no torch and no TensorRT types.
//
// Every kernel in this folder comes in two builds that share their index arithmetic:
//   * the CUDA launcher  `<op>_cuda<T>(params, stream) -> cudaError_t`   (T: float, __half, __nv_bfloat16, double)
//   * the CPU twin       `<op>_cpu<T>(params)          -> afn::Status`   (T: float, afn::half_t, afn::bf16_t, double)
// The per-element / per-vector bodies are `AFN_HD` templates called by both, so tests of the CPU twin exercise the
// same index maps the CUDA threads use. This header compiles without the CUDA toolkit (CPU-only builds).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define AFN_HD __host__ __device__ __forceinline__
#define AFN_DEVICE __device__ __forceinline__
#else
#define AFN_HD inline
#endif

#if defined(__CUDA_ARCH__)
#define AFN_UNROLL _Pragma("unroll")
#else
#define AFN_UNROLL
#endif

#if defined(__CUDACC__) || defined(AFN_WITH_CUDA_RUNTIME)
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define AFN_HAS_CUDA_TYPES 1
#endif

namespace afn {

// Result of a CPU twin (the CUDA launchers return cudaError_t).
enum class Status : int { kOk = 0, kInvalidValue = 1 };

inline const char* status_string(Status s) {
  return s == Status::kOk ? "ok" : "invalid value (sizes, pointers or arguments out of the supported range)";
}

// ---------------------------------------------------------------------------------------------------------------
// Host storage types for 16-bit floats. Same size and bit layout as __half / __nv_bfloat16 / at::Half / at::BFloat16,
// so a pointer to any of those can be handed to a CPU twin as `const void*`. The CPU twins read and write memory only
// through memcpy (load_vec / store_vec below), so no aliasing rule is broken.
struct half_t {
  uint16_t bits;
};
struct bf16_t {
  uint16_t bits;
};

namespace detail {
inline float f32_from_bits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}
}  // namespace detail

// IEEE fp16 <-> fp32 with round-to-nearest-even, bit-identical to c10::Half's conversions (which torch's CPU half
// arithmetic uses: compute in float, round once).
inline float half_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = 0x1.0p-112f;
  const float normalized = detail::f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float magic_bias = 0.5f;
  const float denormalized = detail::f32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
  const uint32_t denormalized_cutoff = 1u << 27;
  const uint32_t result =
      sign | (two_w < denormalized_cutoff ? detail::f32_to_bits(denormalized) : detail::f32_to_bits(normalized));
  return detail::f32_from_bits(result);
}

inline uint16_t float_to_half(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (std::fabs(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = detail::f32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = detail::f32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = detail::f32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// bfloat16 <-> fp32, round-to-nearest-even, NaN -> quiet NaN 0x7FC0 (as c10::BFloat16).
inline float bf16_to_float(uint16_t b) { return detail::f32_from_bits(static_cast<uint32_t>(b) << 16); }

inline uint16_t float_to_bf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  uint32_t u = detail::f32_to_bits(f);
  const uint32_t lsb = (u >> 16) & 1u;
  u += 0x7FFFu + lsb;
  return static_cast<uint16_t>(u >> 16);
}

// ---------------------------------------------------------------------------------------------------------------
// Num<T>: arithmetic type (acc_t) and conversions of a storage type. Arithmetic runs in float for the 16-bit types
// and float32, in double for float64.
template <typename T>
struct Num;

template <>
struct Num<float> {
  using acc_t = float;
  static AFN_HD float to_acc(float v) { return v; }
  static AFN_HD float from_acc(float v) { return v; }
};

template <>
struct Num<double> {
  using acc_t = double;
  static AFN_HD double to_acc(double v) { return v; }
  static AFN_HD double from_acc(double v) { return v; }
};

// Host-only 16-bit types (instantiated only by the CPU twins).
template <>
struct Num<half_t> {
  using acc_t = float;
  static inline float to_acc(half_t v) { return half_to_float(v.bits); }
  static inline half_t from_acc(float v) { return half_t{float_to_half(v)}; }
};

template <>
struct Num<bf16_t> {
  using acc_t = float;
  static inline float to_acc(bf16_t v) { return bf16_to_float(v.bits); }
  static inline bf16_t from_acc(float v) { return bf16_t{float_to_bf16(v)}; }
};

#if defined(AFN_HAS_CUDA_TYPES)
template <>
struct Num<__half> {
  using acc_t = float;
  static AFN_HD float to_acc(__half v) { return __half2float(v); }
  static AFN_HD __half from_acc(float v) { return __float2half_rn(v); }
};

template <>
struct Num<__nv_bfloat16> {
  using acc_t = float;
  static AFN_HD float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
  static AFN_HD __nv_bfloat16 from_acc(float v) { return __float2bfloat16_rn(v); }
};
#endif

// ---------------------------------------------------------------------------------------------------------------
// Vectors of V consecutive elements, aligned to their size: one 16-, 8-, 4- or 2-byte memory access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// On the device a Vec is read with one aligned vector instruction; on the host through memcpy (no aliasing UB).
// `p` must be aligned to sizeof(Vec<T, V>) — the launchers choose V so that it is (see pick_vec_width).
template <typename T, int V>
AFN_HD Vec<T, V> load_vec(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Vec<T, V>*>(p);
#else
  Vec<T, V> r;
  std::memcpy(&r, static_cast<const void*>(p), sizeof r);
  return r;
#endif
}

template <typename T, int V>
AFN_HD void store_vec(T* p, const Vec<T, V>& r) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Vec<T, V>*>(p) = r;
#else
  std::memcpy(static_cast<void*>(p), &r, sizeof r);
#endif
}

template <typename T>
AFN_HD T load1(const T* p) {
  return load_vec<T, 1>(p).v[0];
}

template <typename T>
AFN_HD void store1(T* p, T v) {
  Vec<T, 1> r;
  r.v[0] = v;
  store_vec<T, 1>(p, r);
}

template <typename T>
AFN_HD T zero_value() {
  return Num<T>::from_acc(typename Num<T>::acc_t(0));
}

// ---------------------------------------------------------------------------------------------------------------
// Vector width choice (host side, shared by the launchers and the CPU twins so both take the same path).
// The widest of {16, 8} bytes (or 1 element) such that `granule` (the element count that must never be split, e.g.
// H·W for the frame ops) is a multiple of V and every pointer is aligned to V·sizeof(T).
inline bool is_aligned(const void* p, size_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

template <typename T>
inline int pick_vec_width(int64_t granule, const void* const* ptrs, int nptrs) {
  const int cands[2] = {static_cast<int>(16 / sizeof(T)), static_cast<int>(8 / sizeof(T))};
  for (int c = 0; c < 2; ++c) {
    const int v = cands[c];
    if (v <= 1) continue;
    if (granule % v != 0) continue;
    bool ok = true;
    for (int i = 0; i < nptrs; ++i)
      if (ptrs[i] != nullptr && !is_aligned(ptrs[i], sizeof(T) * static_cast<size_t>(v))) ok = false;
    if (ok) return v;
  }
  return 1;
}

// Vector widths instantiated per element type: wide (16 bytes), narrow (8 bytes), scalar.
template <typename T>
struct VecWidths {
  static constexpr int kWide = static_cast<int>(16 / sizeof(T));
  static constexpr int kNarrow = static_cast<int>(8 / sizeof(T)) > 1 ? static_cast<int>(8 / sizeof(T)) : 1;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Largest grid extent used for the y dimension (frames / planes); the kernels loop over the rest.
constexpr int64_t kMaxGridY = 65535;
// Upper bound for grid x in the element loops (grid-stride loops cover any size).
constexpr int64_t kMaxGridX = 1 << 20;

// Calls f(std::integral_constant<int, V>{}) for the runtime width v (one of VecWidths<T>'s, else scalar). The CUDA
// launchers and the CPU twins both dispatch through this, with v from pick_vec_width.
template <typename T, typename F>
inline void with_vec_width(int v, F&& f) {
  if (v == VecWidths<T>::kWide)
    f(std::integral_constant<int, VecWidths<T>::kWide>{});
  else if (v == VecWidths<T>::kNarrow)
    f(std::integral_constant<int, VecWidths<T>::kNarrow>{});
  else
    f(std::integral_constant<int, 1>{});
}

}  // namespace afn
