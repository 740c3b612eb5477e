// cuda_runtime_api.h for the plugin harness: TensorRT's headers and csrc/trt include it; on the CPU it is the CUDA
// emulator's runtime (tests/cuda_emu/shim) plus the few runtime names the plugin code uses that the emulator lacks.
#pragma once
#include <cuda_runtime.h>

// TensorRT's headers name event handles (IExecutionContext::setInputConsumedEvent); nothing here uses them. A repeated
// alias of the same type is legal, should the emulator define it too.
struct CUevent_st;
using cudaEvent_t = CUevent_st*;

// cudaGetErrorName as a template: a plain function of the emulator (should it gain one) wins overload resolution.
template <typename E>
inline const char* cudaGetErrorName(E e) {
  return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated";
}
