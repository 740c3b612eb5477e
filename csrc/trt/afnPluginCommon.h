// Shared pieces of afnet_edge's TensorRT plugins (IPluginV3 with Core/Build/Runtime capabilities, IPluginCreatorV3One).
//
// Contract (mirrored in export/plugins.py and checked by tests/test_export_plugin_fields.py):
//   * plugin names FocalGather, FocalScatter, AmpleFusePool, AmpleFuseBlend; version kPluginVersion; namespace
//     kPluginNamespace — the ONNX nodes carry them as op type, `plugin_version`, `plugin_namespace`;
//   * every field is a scalar kINT32; a creator declares its fields in order and the plugin serialises exactly those
//     (getFieldsToSerialize), so an engine deserialises through the same createPlugin path it was built with;
//   * float tensors fp32 or fp16 (one type per node), linear format; frame index tensors int64 (K,).
// Every TensorRT override is noexcept: failures are reported through the plugin registry's error recorder (stderr
// when none is set) and signalled by the documented return value, never by an exception crossing the boundary.
// Bump kPluginVersion (and PLUGIN_VERSION in export/plugins.py) whenever a field or a semantic changes.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace afn {
namespace trt {

using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::IExprBuilder;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginCreatorV3One;
using nvinfer1::IPluginResourceContext;
using nvinfer1::IPluginV3;
using nvinfer1::IPluginV3OneBuild;
using nvinfer1::IPluginV3OneCore;
using nvinfer1::IPluginV3OneRuntime;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;
using nvinfer1::TensorRTPhase;

constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "afnet_edge";

// Report an error of plugin `who` (never throws).
void reportError(char const* who, char const* msg) noexcept;
void reportError(char const* who, std::string const& msg) noexcept;
// printf-style variant (formats into a fixed buffer: no allocation, safe inside noexcept overrides).
void reportErrorf(char const* who, char const* fmt, ...) noexcept
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// Report a CUDA launch error; returns 0 on cudaSuccess, -1 otherwise (the enqueue() convention).
int32_t checkLaunch(char const* who, cudaError_t err) noexcept;

// One scalar kINT32 field a creator accepts: value range [lo, hi].
struct IntField {
  char const* name;
  int32_t* value;
  int32_t lo;
  int32_t hi;
};

// Fill `fields` from `fc`: each must appear exactly once, as kINT32 of length 1, inside its range; any other field
// name is an error. Returns false (after reporting) on any violation.
bool parseIntFields(char const* who, PluginFieldCollection const* fc, IntField* fields, int32_t nbFields) noexcept;

inline bool isFloatType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF; }

// Product of dims [from, to) of a runtime descriptor.
inline int64_t volume(nvinfer1::Dims const& d, int32_t from, int32_t to) {
  int64_t v = 1;
  for (int32_t i = from; i < to; ++i) v *= d.d[i];
  return v;
}

// Checks shared by the build-time hooks: `nbInputs`/`nbOutputs` as declared, and supportsFormatCombination's rule
// "linear; float tensors fp32/fp16 and all of the type of input 0; index tensors int64".
bool checkIoCount(char const* who, int32_t nbInputs, int32_t expectIn, int32_t nbOutputs, int32_t expectOut) noexcept;
// Index tensors may be int64 (as exported) or int32 (if TensorRT narrows them); int32 lists are widened into the
// workspace before the kernel runs (see indexWorkspaceSize / int64Index).
bool supportsLinear(int32_t pos, DynamicPluginTensorDesc const* inOut, bool isIndex) noexcept;
inline bool isIndexType(DataType t) { return t == DataType::kINT64 || t == DataType::kINT32; }

// Workspace bytes to widen an index input described by `desc` (0 when it is already int64).
inline size_t indexWorkspaceSize(DynamicPluginTensorDesc const& desc) {
  if (desc.desc.type != DataType::kINT32) return 0;
  int64_t const k = desc.max.d[0] > 0 ? desc.max.d[0] : 0;
  return static_cast<size_t>(k) * sizeof(int64_t);
}

// Launch the int32 -> int64 widening (afnIndexWiden.cu).
cudaError_t widenIndex(int32_t const* in, int64_t* out, int64_t n, cudaStream_t stream) noexcept;

// The int64 index list of input `desc`/`data`: the data itself, or its widened copy in `workspace`. Returns nullptr
// after reporting when the widening launch fails.
inline int64_t const* int64Index(char const* who, PluginTensorDesc const& desc, void const* data, void* workspace,
                                 cudaStream_t stream) noexcept {
  if (desc.type == DataType::kINT64) return static_cast<int64_t const*>(data);
  int64_t* wide = static_cast<int64_t*>(workspace);
  if (checkLaunch(who, widenIndex(static_cast<int32_t const*>(data), wide, desc.dims.d[0], stream)) != 0) {
    return nullptr;
  }
  return wide;
}

// CRTP base holding what all four plugins share: capability dispatch, identity, clone, one output, attachToContext.
// Derived provides: static constexpr char const* kName; a copy constructor; the Build and Runtime hooks.
template <typename Derived>
class PluginBase : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
 public:
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    switch (type) {
      case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
      case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
      case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  IPluginV3* clone() noexcept override {
    try {
      return new Derived(static_cast<Derived const&>(*this));
    } catch (std::exception const& e) {
      reportError(Derived::kName, std::string("clone failed: ") + e.what());
    } catch (...) {
      reportError(Derived::kName, "clone failed");
    }
    return nullptr;
  }

  AsciiChar const* getPluginName() const noexcept override { return Derived::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  int32_t getNbOutputs() const noexcept override { return 1; }

  // No per-context state: a fresh copy per execution context.
  IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }
};

// Base of the creators: identity and the field list. Derived fills mFields in its constructor (in the declared
// order) and implements createPlugin.
class CreatorBase : public IPluginCreatorV3One {
 public:
  PluginFieldCollection const* getFieldNames() noexcept override {
    mFC.nbFields = static_cast<int32_t>(mFields.size());
    mFC.fields = mFields.data();
    return &mFC;
  }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

 protected:
  std::vector<PluginField> mFields;
  PluginFieldCollection mFC{};
};

}  // namespace trt
}  // namespace afn
