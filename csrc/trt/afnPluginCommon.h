// Shared pieces of afnet_edge's TensorRT plugins (IPluginV3 with Core/Build/Runtime capabilities, IPluginCreatorV3One).
//
// Contract (mirrored in export/plugins.py and checked by tests/test_export_onnx.py, which parses the field tables):
//   * plugin names FocalGather, FocalScatter, AmpleFusePool, AmpleFuseBlend (AFNet), FocusCrop (AdaFocus),
//     TemporalAggregate, TemporalAggregatePair, BLMerge (bLVNet-TAM) and SegmentCluster (full-video clustering);
//     version kPluginVersion; namespace kPluginNamespace — the ONNX nodes carry them as op type, `plugin_version`,
//     `plugin_namespace`;
//   * every field is a scalar kINT32. Each plugin writes its fields ONCE, in a field table (`kFields` of its Spec:
//     name, member of its Params, valid range); that table alone drives the creator's field list (getFieldNames),
//     createPlugin's parsing and validation, and getFieldsToSerialize — so an engine deserialises through the same
//     createPlugin path it was built with, and the three can never disagree;
//   * float tensors fp32 or fp16 (one type per node), linear format; frame index tensors int64 (K,); FocusCrop and the
//     bLVNet plugins also take bf16; FocusCrop's positions and the TAM weights are fp32 whatever the frames' type;
//     TemporalAggregatePair has two outputs, the others one; SegmentCluster takes fp32/fp16/bf16 activations and an
//     optional int64 (or int32) frame_offsets input and has two outputs, the segment means and int64 offsets;
//   * lazy constant chains (issue 16; csrc/kernels/chain.h): every AFNet plugin has the fields chain_relu_mask and
//     chain_upto and takes two OPTIONAL trailing inputs chain_start int32 (N,) and chain_consts (L, C, H, W) of the
//     float type (N, C, H, W of the plugin's frame tensor). Without them (and with both fields 0) a plugin computes
//     exactly what it did before chains existed.
// Every TensorRT override is noexcept: failures are reported through the plugin registry's error recorder (the logger
// TensorRT hands to setLoggerFinder, or stderr, when none is set) and signalled by the documented return value, never
// by an exception crossing the boundary.
// Bump kPluginVersion (and PLUGIN_VERSION in export/plugins.py) whenever a field or a semantic changes.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include "../kernels/chain.h"

#include <array>
#include <cstddef>
#include <exception>
#include <cstdint>
#include <string>

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

// Version 2: the fields are the same as version 1; the library now also exports getCreators/setLoggerFinder and
// the creators come from one template (bumped so that an engine is never paired with a library of the other build).
// Version 3: every plugin gains the fields chain_relu_mask and chain_upto (lazy constant chains) and two optional
// trailing inputs. The fields are required (creator fields == serialised fields), so a version-2 node or engine,
// which lacks them, cannot be read as version 3: bumped, re-export.
constexpr char const* kPluginVersion = "3";
constexpr char const* kPluginNamespace = "afnet_edge";

// Logger of the TensorRT that loaded the library through setLoggerFinder() (nullptr: none given).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

// Report an error of plugin `who` (never throws): to the registry's error recorder, else the logger from
// setLoggerFinder(), else stderr.
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

// One field of a plugin's field table: a scalar kINT32 named `name`, stored in `member` of the plugin's Params,
// valid range [lo, hi]. The table is the single place a plugin names its fields (see the file comment).
template <typename Params>
struct IntField {
  using Member = int32_t Params::*;  // (an alias: nvcc's host-code rewrite of the plain declarator trips -Wparentheses)
  char const* name;
  Member member;
  int32_t lo;
  int32_t hi;
};

// Runtime view of one field while parsing: where the value goes and its range.
struct IntFieldSlot {
  char const* name;
  int32_t* value;
  int32_t lo;
  int32_t hi;
};

// Fill `fields` from `fc`: each must appear exactly once, as kINT32 of length 1, inside its range; any other field
// name is an error. Returns false (after reporting) on any violation.
bool parseIntFields(char const* who, PluginFieldCollection const* fc, IntFieldSlot* fields, int32_t nbFields) noexcept;

// Parse `fc` into `out` through Spec::kFields (Spec: kName, Params, kFields).
template <typename Spec>
bool parseFields(PluginFieldCollection const* fc, typename Spec::Params& out) noexcept {
  constexpr size_t n = Spec::kFields.size();
  std::array<IntFieldSlot, n> slots{};
  for (size_t i = 0; i < n; ++i) {
    auto const& f = Spec::kFields[i];
    slots[i] = IntFieldSlot{f.name, &(out.*f.member), f.lo, f.hi};
  }
  return parseIntFields(Spec::kName, fc, slots.data(), static_cast<int32_t>(n));
}

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

// ---- lazy constant chains: two optional trailing inputs after a plugin's kIn own inputs ---------------------------
constexpr int32_t kChainInputs = 2;                // chain_start, chain_consts
constexpr int32_t kChainMaxBlocks = 30;            // chain_upto / L range: relu_mask bits live in a non-negative int32
constexpr int32_t kChainMaxMask = (1 << 30) - 1;   // chain_relu_mask range

inline bool hasChain(int32_t nbInputs, int32_t kIn) { return nbInputs == kIn + kChainInputs; }

// `nbInputs` is kIn (no chain) or kIn + 2 (chain), one output; reports otherwise.
bool checkIoCountChain(char const* who, int32_t nbInputs, int32_t kIn, int32_t nbOutputs) noexcept;

// getOutputDataTypes: chain_start kINT32, chain_consts of the float type `floatType`.
bool chainTypesOk(char const* who, DataType const* inputTypes, int32_t nbInputs, int32_t kIn,
                  DataType floatType) noexcept;

// getOutputShapes: chain_start rank 1, chain_consts rank 4.
bool chainRanksOk(char const* who, DimsExprs const* inputs, int32_t nbInputs, int32_t kIn) noexcept;

// supportsFormatCombination for a position of the chain inputs (pos >= kIn, < nbInputs): linear; chain_start int32;
// chain_consts of input 0's float type.
bool supportsChainInput(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t kIn) noexcept;

// Shapes (configurePlugin with known dims, onShapeChange): chain_start (N,), chain_consts (L, C, H, W) with N, C, H, W
// of the frame tensor `x` (its dims; -1 = not known yet: skipped), 0 <= upto <= L; without a chain both fields 0.
bool chainShapesOk(char const* who, nvinfer1::Dims const& x, nvinfer1::Dims const* start, nvinfer1::Dims const* consts,
                   int32_t reluMask, int32_t upto) noexcept;

// enqueue: the kernels' chain parameters (absent: start == nullptr) from the inputs after the plugin's own kIn.
inline ChainParams chainParams(bool present, PluginTensorDesc const* desc, void const* const* inputs, int32_t kIn,
                               int32_t reluMask, int32_t upto) noexcept {
  ChainParams c;
  if (!present) return c;
  c.start = static_cast<int32_t const*>(inputs[kIn]);
  c.consts = inputs[kIn + 1];
  c.L = desc[kIn + 1].dims.d[0];
  c.relu_mask = reluMask;
  c.upto = upto;
  return c;
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

// CRTP base holding what all plugins share: capability dispatch, identity, the field values (Params) and their
// serialisation through the field table, clone, one output, attachToContext.
// Spec provides: static constexpr char const* kName; struct Params (int32_t members); static constexpr
// std::array<IntField<Params>, n> kFields. Derived provides a constructor from Params and the Build/Runtime hooks.
template <typename Derived, typename SpecT>
class PluginBase : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
 public:
  using Spec = SpecT;
  using Params = typename Spec::Params;
  static constexpr char const* kName = Spec::kName;

  explicit PluginBase(Params const& params) noexcept : mParams(params) {}
  // A copy shares the field values only; its serialisation buffer is its own.
  PluginBase(PluginBase const& other) noexcept : mParams(other.mParams), mNbInputs(other.mNbInputs) {}
  PluginBase& operator=(PluginBase const&) = delete;

  Params const& params() const noexcept { return mParams; }

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
      reportError(kName, std::string("clone failed: ") + e.what());
    } catch (...) {
      reportError(kName, "clone failed");
    }
    return nullptr;
  }

  AsciiChar const* getPluginName() const noexcept override { return kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  int32_t getNbOutputs() const noexcept override { return 1; }

  // No per-context state: a fresh copy per execution context.
  IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }

  // Exactly the fields of the table, in its order, pointing at this plugin's values.
  PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    for (size_t i = 0; i < kNbFields; ++i) {
      auto const& f = Spec::kFields[i];
      mSerial[i] = PluginField(f.name, &(mParams.*f.member), PluginFieldType::kINT32, 1);
    }
    mSerialFC.nbFields = static_cast<int32_t>(kNbFields);
    mSerialFC.fields = kNbFields > 0 ? mSerial.data() : nullptr;
    return &mSerialFC;
  }

 protected:
  Params mParams;
  int32_t mNbInputs = 0;  // of the last onShapeChange (enqueue is not told): kIn, or kIn + 2 with a lazy chain

 private:
  static constexpr size_t kNbFields = Spec::kFields.size();
  std::array<PluginField, kNbFields> mSerial{};
  PluginFieldCollection mSerialFC{};
};

// The one creator of every plugin: identity from Plugin::Spec, the field list and createPlugin's parsing from its
// field table. createPlugin serves both phases (build from the ONNX node's fields, runtime from the serialised ones).
template <typename Plugin>
class PluginCreator final : public IPluginCreatorV3One {
 public:
  using Spec = typename Plugin::Spec;

  PluginCreator() noexcept {
    for (size_t i = 0; i < kNbFields; ++i) {
      mFields[i] = PluginField(Spec::kFields[i].name, nullptr, PluginFieldType::kINT32, 1);
    }
    mFC.nbFields = static_cast<int32_t>(kNbFields);
    mFC.fields = kNbFields > 0 ? mFields.data() : nullptr;
  }

  AsciiChar const* getPluginName() const noexcept override { return Spec::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
  PluginFieldCollection const* getFieldNames() noexcept override { return &mFC; }

  IPluginV3* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc,
                          TensorRTPhase /*phase*/) noexcept override {
    typename Spec::Params params{};
    if (!parseFields<Spec>(fc, params)) return nullptr;
    try {
      return new Plugin(params);
    } catch (...) {
      reportError(Spec::kName, "out of memory creating the plugin");
      return nullptr;
    }
  }

 private:
  static constexpr size_t kNbFields = Spec::kFields.size();
  std::array<PluginField, kNbFields> mFields{};
  PluginFieldCollection mFC{};
};

}  // namespace trt
}  // namespace afn
