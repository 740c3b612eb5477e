// nvcuda::wmma for cuda_emu: the subset csrc/kernels uses (16×16×16 fragments; matrix_a / matrix_b of __half or
// __nv_bfloat16, row- or column-major; float accumulators), with warp-collective semantics that hold whatever order
// the emulator runs the lanes in:
//  * load_matrix_sync, mma_sync, store_matrix_sync are warp operations: all 32 lanes of the warp must call the same
//    one with the same pointer and leading dimension (checked at a rendezvous, like the shuffles of cuda_emu.h: a lane
//    that exited, waits at __syncthreads or calls something else aborts the run);
//  * a fragment holds the whole 16×16 tile in every lane (the hardware spreads it over the lanes; kernels must not
//    touch fragment elements, and only fill / load / mma / store are provided, so the difference cannot show);
//  * load: after the rendezvous every lane reads the tile (reads only, no race); mma: every lane computes
//    d = a·b + c on its copies, in float, summing k = 0..15 in order onto c (the products of 16-bit operands are exact
//    in float); store: after the rendezvous lane 0 alone writes the tile, then a second rendezvous (warp barrier)
//    keeps every lane in the call until the tile is written — so no two lanes write one element (no TSan report) and
//    no lane leaves before the data is there;
//  * the CUDA requirements are checked: fragment pointers 256-bit (32-byte) aligned, ldm a multiple of 8 elements
//    for 16-bit types and of 4 for float (mem_row_major / mem_col_major given for accumulators).
#pragma once

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_emu.h"
#include "cuda_fp16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "cuda_emu wmma: only 16x16x16 fragments are emulated");
  static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value || std::is_same<T, float>::value,
                "cuda_emu wmma: element type must be __half, __nv_bfloat16 or float");
  static_assert(std::is_same<Use, accumulator>::value == std::is_same<T, float>::value,
                "cuda_emu wmma: float accumulators with 16-bit matrix_a / matrix_b only");
  static constexpr int kRows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int kCols = std::is_same<Use, matrix_a>::value ? K : N;
  T tile[kRows * kCols];  // row-major, the whole tile (see above)
};

namespace detail {
inline float to_float(__half v) { return __half2float(v); }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float to_float(float v) { return v; }

enum Code : int { kLoad = 1, kMma = 2, kStore = 3, kStoreDone = 4 };
struct Call {  // what every lane of the warp must agree on
  const void* ptr;
  unsigned ldm;
  int layout;
};

// All 32 lanes of the calling warp meet here (aborts on divergence, see cuda_emu.h try_complete_warp).
inline void rendezvous(Code code, const void* ptr, unsigned ldm, int layout) {
  const Call c{ptr, ldm, layout};
  (void)emu::warp_op<Call>(emu::Op::Wmma, 0xffffffffu, c, code, 32);
}

inline void check_ptr(const void* p, unsigned ldm, size_t elem) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) emu::fail("wmma: matrix pointer not 256-bit (32-byte) aligned");
  if ((ldm * elem) % 16 != 0) emu::fail("wmma: ldm must be a multiple of 16 bytes (8 x 16-bit or 4 x float elements)");
  if (ldm < 16) emu::fail("wmma: ldm smaller than the fragment's 16 columns");
}

template <typename Layout>
constexpr bool is_row() {
  return std::is_same<Layout, row_major>::value;
}
}  // namespace detail

template <typename Use, typename T, typename Layout>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, float v) {
  for (auto& e : f.tile) e = static_cast<T>(v);
}

// matrix_a / matrix_b, layout from the fragment type
template <typename Use, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads need a layout_t argument");
  detail::check_ptr(p, ldm, sizeof(T));
  detail::rendezvous(detail::kLoad, p, ldm, detail::is_row<Layout>() ? 0 : 1);
  using F = fragment<Use, 16, 16, 16, T, Layout>;
  for (int r = 0; r < F::kRows; ++r)
    for (int c = 0; c < F::kCols; ++c)
      f.tile[r * F::kCols + c] = detail::is_row<Layout>() ? p[static_cast<size_t>(r) * ldm + c]
                                                          : p[static_cast<size_t>(c) * ldm + r];
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm,
                             layout_t layout) {
  detail::check_ptr(p, ldm, sizeof(float));
  detail::rendezvous(detail::kLoad, p, ldm, layout);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c)
      f.tile[r * 16 + c] = layout == mem_row_major ? p[static_cast<size_t>(r) * ldm + c] : p[static_cast<size_t>(c) * ldm + r];
}

template <typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  detail::rendezvous(detail::kMma, nullptr, 0, 0);
  float out[256];  // d may be c
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.tile[i * 16 + j];
      for (int k = 0; k < 16; ++k) s += detail::to_float(a.tile[i * 16 + k]) * detail::to_float(b.tile[k * 16 + j]);
      out[i * 16 + j] = s;
    }
  for (int e = 0; e < 256; ++e) d.tile[e] = out[e];
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm,
                              layout_t layout) {
  detail::check_ptr(p, ldm, sizeof(float));
  detail::rendezvous(detail::kStore, p, ldm, layout);
  if (emu::linear_tid(threadIdx) % 32 == 0)  // lane 0 of the warp
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 16; ++c)
        (layout == mem_row_major ? p[static_cast<size_t>(r) * ldm + c] : p[static_cast<size_t>(c) * ldm + r]) =
            f.tile[r * 16 + c];
  detail::rendezvous(detail::kStoreDone, p, ldm, layout);
}

}  // namespace wmma
}  // namespace nvcuda
