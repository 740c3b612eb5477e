// The one place where afnet_edge's operator schemas are written (namespace afnet_edge). Device implementations
// register themselves from csrc/ops/cpu and csrc/ops/cuda; fake (meta) kernels and autograd formulas live in Python
// (afnet_edge/kernels/ext.py), which torch imports when it needs them (set_python_module).
//
// Semantics: afnet_edge/kernels/reference.py. Index lists are int64; focal_scatter needs them sorted and unique.
#include <Python.h>
#include <torch/library.h>

// Trailing optional arguments of the four frame ops: a lazy constant chain.
#define CHAIN "Tensor? chain_start=None, Tensor? chain_consts=None, int chain_relu_mask=0, int chain_upto=0"

TORCH_LIBRARY(afnet_edge, m) {
  m.set_python_module("afnet_edge.kernels.ext");
  // Lazy constant chains (reference.LazyChain, csrc/kernels/chain.h): the four frame ops take an optional chain as
  // trailing arguments CHAIN: chain_start int32 (N,), chain_consts (L, C, H, W) in the frame tensor's dtype (given
  // together or not at all), chain_relu_mask (bit i: block i has ReLU), chain_upto in [0, L]. The defaults mean "no
  // chain", so calls written before chains existed are unchanged. The ops never write chain_start.
  // Each op also has an `.out` overload writing into preallocated, contiguous outputs of the exact shape. They return
  // nothing (a returned alias of a mutated input cannot be functionalized for torch.compile / export).
  // (N, C, H, W), (K,) -> (K, C, H, W)
  m.def("focal_gather(Tensor x, Tensor index, int num_frames, bool shift, " CHAIN ") -> Tensor");
  m.def("focal_gather.out(Tensor x, Tensor index, int num_frames, bool shift, " CHAIN ", *, Tensor(a!) out) -> ()");
  // (N, C, H, W), (K, C, H, W), (K,), (C, H, W)? -> (N, C, H, W)
  m.def("focal_scatter(Tensor residual, Tensor y, Tensor index, Tensor? const_map, bool relu, " CHAIN ") -> Tensor");
  m.def(
      "focal_scatter.out(Tensor residual, Tensor y, Tensor index, Tensor? const_map, bool relu, " CHAIN ", *, "
      "Tensor(a!) out) -> ()");
  // the same, written into `residual`
  m.def("focal_scatter_(Tensor(a!) residual, Tensor y, Tensor index, Tensor? const_map, bool relu, " CHAIN
        ") -> ()");
  // (N, C, h, w), (N, C, H, W) -> (N, C)
  m.def("ample_fuse_pool(Tensor xl, Tensor xb, " CHAIN ") -> Tensor");
  m.def("ample_fuse_pool.out(Tensor xl, Tensor xb, " CHAIN ", *, Tensor(a!) out) -> ()");
  // (N, C, h, w), (N, C, H, W), (N, C) -> (N, C, H, W)
  m.def("ample_fuse_blend(Tensor xl, Tensor xb, Tensor a, bool relu, " CHAIN ") -> Tensor");
  m.def("ample_fuse_blend.out(Tensor xl, Tensor xb, Tensor a, bool relu, " CHAIN ", *, Tensor(a!) out) -> ()");
  // Gather/scatter-fused 1×1 convolutions (issue 16; reference.gather_conv1x1 / conv1x1_scatter). The lazy chain of
  // the tensor the op reads (x / residual) comes as (chain_start int32 (N,), chain_consts (L, C, H, W),
  // chain_relu_mask, chain_upto), both tensors None for no chain. scale / bias: folded BN, float32 (O,).
  // (N, C, H, W), (K,), (O, C/groups[, 1, 1]) -> (K, O, H, W)
  m.def(
      "gather_conv1x1(Tensor x, Tensor index, int num_frames, bool shift, Tensor weight, int groups, Tensor scale, "
      "Tensor bias, bool relu, Tensor? chain_start, Tensor? chain_consts, int chain_relu_mask, int chain_upto) -> "
      "Tensor");
  m.def(
      "gather_conv1x1.out(Tensor x, Tensor index, int num_frames, bool shift, Tensor weight, int groups, "
      "Tensor scale, Tensor bias, bool relu, Tensor? chain_start, Tensor? chain_consts, int chain_relu_mask, "
      "int chain_upto, *, Tensor(a!) out) -> ()");
  // (K, C_h, H, W), (C, C_h/groups[, 1, 1]), ..., (N, C, H, W), (K,) -> (N, C, H, W): rows index[k] rewritten, the
  // others copied as stored; conv1x1_scatter_ writes into `residual`
  m.def(
      "conv1x1_scatter(Tensor h, Tensor weight, int groups, Tensor scale, Tensor bias, Tensor residual, Tensor index, "
      "bool relu, Tensor? chain_start, Tensor? chain_consts, int chain_relu_mask, int chain_upto) -> Tensor");
  m.def(
      "conv1x1_scatter.out(Tensor h, Tensor weight, int groups, Tensor scale, Tensor bias, Tensor residual, "
      "Tensor index, bool relu, Tensor? chain_start, Tensor? chain_consts, int chain_relu_mask, int chain_upto, *, "
      "Tensor(a!) out) -> ()");
  m.def(
      "conv1x1_scatter_(Tensor h, Tensor weight, int groups, Tensor scale, Tensor bias, Tensor(a!) residual, "
      "Tensor index, bool relu, Tensor? chain_start, Tensor? chain_consts, int chain_relu_mask, int chain_upto) -> ()");
  // (L, B, T, 2) -> index (L, M), counts (L,), mask (L, B, T); selection: "threshold" | "topk" (the reference's
  // `mode`; not named so here because auto_functionalized reserves the keyword `mode`)
  m.def("select_frames(Tensor logits, str selection, int k) -> (Tensor, Tensor, Tensor)");
  m.def(
      "select_frames.out(Tensor logits, str selection, int k, *, Tensor(a!) index, Tensor(b!) counts, "
      "Tensor(c!) mask) -> ()");
  // Full-video clustering (issue 14; fullvideo_reference.py, spec full-video-clustering.md §3-§4.6). Ragged batches:
  // frame_offsets (B+1,) int64 CSR rows per video, None = one video. No .out overloads yet.
  // (N, ...) float -> (N, ceil(D/32)) int32 sign bits, LSB first
  m.def("binarize_pack(Tensor y) -> Tensor");
  // (N, W) int32 -> (max(N-1, 0),) int32 popcount(bits[t] ^ bits[t+1])
  m.def("adjacent_hamming(Tensor bits) -> Tensor");
  // (N_total-1,) int32 -> offsets (B, K+1) int64, num_segments (B,) int64; rule: "slope" | "cumulative" | "even"
  m.def("segment_boundaries(Tensor h, int k, str rule, Tensor? frame_offsets=None) -> (Tensor, Tensor)");
  // (N_total, ...), (B, K+1), (B,) -> (B*K, ...)
  m.def("segment_mean(Tensor a, Tensor offsets, Tensor num_segments, Tensor? frame_offsets=None) -> Tensor");
  // its adjoint (the autograd formula): (B*K, ...) output gradient -> (n_total, ...) gradient of a
  m.def(
      "segment_mean_backward(Tensor grad, Tensor offsets, Tensor num_segments, Tensor? frame_offsets, int n_total) "
      "-> Tensor");
  // bLVNet-TAM (issue 13; blvnet_reference.py). Weights float32 (K, C), K odd; frames clip-major.
  // (B·T, C, H, W), (K, C) -> (B·T, C, H, W): TAM, zero padding in time at clip ends, ReLU if relu
  m.def("temporal_aggregate(Tensor x, Tensor weight, int num_frames, bool relu=True) -> Tensor");
  // (B·P, C, H, W), (K_p, C), (K_p, C) -> (big_in, little_in): the stage TAM on pair features (folded weights)
  m.def(
      "temporal_aggregate_pair(Tensor y, Tensor w_big, Tensor w_little, int num_pairs, bool relu=True) -> "
      "(Tensor, Tensor)");
  // (N, C, h, w), (N, C, H, W) -> (N, C, H, W): ReLU(nearest_up(big) + little) (ReLU if relu)
  m.def("bl_merge(Tensor big, Tensor little, bool relu=True) -> Tensor");
  // AdaFocus (issue 12; adafocus_reference.focus_crop, spec adafocus.md §2.3, §6.3). centres: (N, 2) (row, col)
  // actions in [0, 1], float32 (float64 for float64 frames); mode: "bilinear" (V2) | "floor" (V1).
  // (N, C, H, W), (N, 2) -> (N, C, P, P)
  m.def("focus_crop(Tensor x, Tensor centres, int patch, str mode=\"bilinear\") -> Tensor");
  // backward: (N, C, P, P) output gradient -> (N, C, height, width) frames gradient
  m.def("focus_crop_grad_x(Tensor grad, Tensor centres, int height, int width, str mode) -> Tensor");
  // backward: (N, C, P, P) output gradient, frames, centres -> (N, 2) centres gradient (zero in floor mode)
  m.def("focus_crop_grad_centres(Tensor grad, Tensor x, Tensor centres, str mode) -> Tensor");
}

// `import afnet_edge._C` loads this library, which runs the registrations above; the module itself is empty.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT,
                                          "_C",
                                          "afnet_edge compiled operators (torch.ops.afnet_edge)",
                                          -1,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr};
  return PyModule_Create(&module_def);
}
