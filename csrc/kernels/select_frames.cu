// select_frames CUDA kernels.
//
// threshold: one 256-thread block per block-of-the-stage l (grid-stride over L). The N = B·T frames are scanned in
//   tiles of 256: each warp ballots its selection flags, a lane's slot is popc(ballot & lanes below it), the 8 warp
//   counts are combined through shared memory, and a running total carries the offset between tiles. Output order is
//   ascending frame order; unused slots are filled with N afterwards.
// topk: clips are independent; a block holds ⌊256/T⌋ clips (one thread per frame; T > 256: one clip per block of
//   ⌈T/32⌉ warps). Each thread ranks its frame against its clip (O(T) margins, cached), the selection flags go to
//   shared memory, and a selected frame's slot is the number of selected frames before it in its clip.
#include "select_frames_impl.h"

namespace afn {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) select_threshold_kernel(const SelectFramesParams p) {
  __shared__ int warp_counts[kThreads / 32];
  const int64_t N = p.B * p.T;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t l = blockIdx.x; l < p.L; l += gridDim.x) {  // block-uniform trip count
    int64_t running = 0;
    for (int64_t tile = 0; tile < N; tile += kThreads) {
      const int64_t n = tile + threadIdx.x;
      const bool sel = n < N && threshold_selected<T>(p, l * N + n);
      if (n < N) select_write_mask<T>(p, l * N + n, sel);
      const unsigned ballot = __ballot_sync(0xffffffffu, sel);
      if (lane == 0) warp_counts[warp] = __popc(ballot);
      __syncthreads();
      int before = 0, total = 0;
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) {
        before += w < warp ? warp_counts[w] : 0;
        total += warp_counts[w];
      }
      if (sel) p.index[l * N + running + before + __popc(ballot & ((1u << lane) - 1u))] = n;
      running += total;
      __syncthreads();  // warp_counts is rewritten by the next tile
    }
    for (int64_t i = running + threadIdx.x; i < N; i += kThreads) p.index[l * N + i] = N;
    if (threadIdx.x == 0) p.counts[l] = running;
  }
}

template <typename T>
__global__ void select_topk_kernel(const SelectFramesParams p, int clips_per_block) {
  extern __shared__ unsigned char sel_flags[];  // clips_per_block × T
  const int64_t clips = p.L * p.B;
  for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < p.L;
       l += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p.counts[l] = p.B * p.k;
  const int Ti = p.T > 0 ? static_cast<int>(p.T) : 1;  // T == 0: no frame is ever active below
  const int g = threadIdx.x / Ti, t = threadIdx.x - g * Ti;
  const bool in_block = g < clips_per_block && t < p.T;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * clips_per_block; base < clips;
       base += static_cast<int64_t>(gridDim.x) * clips_per_block) {  // block-uniform trip count
    const int64_t clip = base + g;
    const bool active = in_block && clip < clips;
    bool sel = false;
    if (active) {
      sel = topk_selected<T>(p, clip, t);
      select_write_mask<T>(p, clip * p.T + t, sel);
      sel_flags[g * p.T + t] = sel ? 1 : 0;
    }
    __syncthreads();
    if (active && sel) {
      int64_t pos = 0;
      for (int64_t u = 0; u < t; ++u) pos += sel_flags[g * p.T + u];
      topk_write_index(p, clip, t, pos);
    }
    __syncthreads();  // sel_flags is rewritten by the next round
  }
}

}  // namespace

template <typename T>
cudaError_t select_frames_cuda(const SelectFramesParams& p, cudaStream_t stream) {
  if (!select_frames_args_ok(p)) return cudaErrorInvalidValue;
  if (p.L == 0) return cudaSuccess;
  if (p.mode == SelectMode::kThreshold) {
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(p.L, kMaxGridX));
    select_threshold_kernel<T><<<blocks, kThreads, 0, stream>>>(p);
    return cudaGetLastError();
  }
  if (p.T == 0) {  // no frames: only counts (= 0) to write; still one tiny launch, no host work
    select_topk_kernel<T><<<1, 32, 0, stream>>>(p, 1);
    return cudaGetLastError();
  }
  const int threads = p.T <= kThreads ? kThreads : static_cast<int>(ceil_div(p.T, 32) * 32);
  const int clips_per_block = p.T <= kThreads ? static_cast<int>(kThreads / p.T) : 1;
  const int64_t clips = p.L * p.B;
  const unsigned blocks =
      static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(ceil_div(clips, clips_per_block), kMaxGridX)));
  const size_t smem = static_cast<size_t>(clips_per_block) * static_cast<size_t>(p.T);
  select_topk_kernel<T><<<blocks, threads, smem, stream>>>(p, clips_per_block);
  return cudaGetLastError();
}

template cudaError_t select_frames_cuda<float>(const SelectFramesParams&, cudaStream_t);
template cudaError_t select_frames_cuda<double>(const SelectFramesParams&, cudaStream_t);
template cudaError_t select_frames_cuda<__half>(const SelectFramesParams&, cudaStream_t);
template cudaError_t select_frames_cuda<__nv_bfloat16>(const SelectFramesParams&, cudaStream_t);

}  // namespace afn
