// Small stand-ins for the TensorRT objects a plugin receives, so csrc/trt runs without libnvinfer:
//   * Expr / ExprBuilder  — IDimensionExpr / IExprBuilder (shape inference): constants and named symbols ("N", "K")
//                           for dynamic axes; operations on constants fold, others give a new symbol.
//   * FakeRegistry        — the global IPluginRegistry that getPluginRegistry() returns (creators by name, version,
//                           namespace; duplicates refused, as TensorRT documents), with an error recorder.
//   * ErrorCounter        — IErrorRecorder that keeps the messages, so a test can require an error to be reported.
// Written against the public headers only (NvInferRuntime.h, NvInferImpl.h), for TensorRT 10.x and 11.x.
#pragma once

#include <NvInferRuntime.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace harness {

// One dimension expression: a constant or a named symbol.
class Expr final : public nvinfer1::IDimensionExpr {
 public:
  Expr(bool constant, int64_t value, std::string name) : mState{constant, value}, mName(std::move(name)) {
    mImpl = &mState;
  }
  ~Expr() noexcept override = default;
  std::string const& name() const { return mName; }

 private:
  struct State final : nvinfer1::apiv::VDimensionExpr {
    State(bool c, int64_t v) : constant(c), value(v) {}
    bool isConstant() const override { return constant; }
    int64_t getConstantValue() const override { return constant ? value : -1; }
    bool isSizeTensor() const override { return false; }
    bool constant;
    int64_t value;
  };
  State mState;
  std::string mName;
};

// Owns every expression it hands out.
class ExprBuilder final : public nvinfer1::IExprBuilder {
 public:
  ExprBuilder() : mState(this) { mImpl = &mState; }
  ~ExprBuilder() noexcept override = default;
  Expr const* constantExpr(int64_t v) { return make(true, v, std::to_string(v)); }
  Expr const* symbol(std::string const& name) { return make(false, -1, name); }

 private:
  Expr const* make(bool c, int64_t v, std::string name) {
    mExprs.emplace_back(new Expr(c, v, std::move(name)));
    return mExprs.back().get();
  }
  struct State final : nvinfer1::apiv::VExprBuilder {
    explicit State(ExprBuilder* o) : owner(o) {}
    nvinfer1::IDimensionExpr const* constant(int64_t value) override { return owner->constantExpr(value); }
    nvinfer1::IDimensionExpr const* operation(nvinfer1::DimensionOperation op, nvinfer1::IDimensionExpr const& a,
                                              nvinfer1::IDimensionExpr const& b) override;
    nvinfer1::IDimensionExpr const* declareSizeTensor(int32_t, nvinfer1::IDimensionExpr const&,
                                                      nvinfer1::IDimensionExpr const&) override {
      return owner->symbol("size_tensor");
    }
    ExprBuilder* owner;
  };
  State mState;
  std::deque<std::unique_ptr<Expr>> mExprs;
};

class ErrorCounter final : public nvinfer1::IErrorRecorder {
 public:
  int32_t getNbErrors() const noexcept override { return static_cast<int32_t>(mErrors.size()); }
  nvinfer1::ErrorCode getErrorCode(int32_t i) const noexcept override { return mErrors.at(i).first; }
  ErrorDesc getErrorDesc(int32_t i) const noexcept override { return mErrors.at(i).second.c_str(); }
  bool hasOverflowed() const noexcept override { return false; }
  void clear() noexcept override { mErrors.clear(); }
  bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override {
    mErrors.emplace_back(code, desc ? desc : "");
    return true;
  }
  RefCount incRefCount() noexcept override { return ++mRefs; }
  RefCount decRefCount() noexcept override { return --mRefs; }
  std::string last() const { return mErrors.empty() ? std::string() : mErrors.back().second; }

 private:
  std::vector<std::pair<nvinfer1::ErrorCode, std::string>> mErrors;
  RefCount mRefs = 0;
};

class FakeRegistry final : public nvinfer1::IPluginRegistry {
 public:
  struct Entry {
    nvinfer1::IPluginCreatorInterface* creator;
    std::string ns;
  };
  std::vector<Entry> const& entries() const { return mEntries; }

  bool registerCreator(nvinfer1::IPluginCreatorInterface& creator, nvinfer1::AsciiChar const* const ns) noexcept
      override;
  nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override;
  nvinfer1::IPluginCreatorInterface* getCreator(nvinfer1::AsciiChar const* const name,
                                                nvinfer1::AsciiChar const* const version,
                                                nvinfer1::AsciiChar const* const ns = "") noexcept override;
  bool deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept override;
  void setErrorRecorder(nvinfer1::IErrorRecorder* const r) noexcept override { mRecorder = r; }
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return mRecorder; }
  bool isParentSearchEnabled() const override { return false; }
  void setParentSearchEnabled(bool const) override {}
  PluginLibraryHandle loadLibrary(nvinfer1::AsciiChar const*) noexcept override { return nullptr; }
  void deregisterLibrary(PluginLibraryHandle) noexcept override {}
  nvinfer1::IPluginResource* acquirePluginResource(nvinfer1::AsciiChar const*, nvinfer1::IPluginResource*) noexcept
      override {
    return nullptr;
  }
  int32_t releasePluginResource(nvinfer1::AsciiChar const*) noexcept override { return -1; }
  // Present from TensorRT 10.x on (not in 10.3): no `override`, so the class compiles against both.
  nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept {
    return getAllCreators(n);
  }
#if NV_TENSORRT_MAJOR < 11
  // IPluginV2-era entries (gone in TensorRT 11): afnet_edge registers only IPluginCreatorV3One.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  bool registerCreator(nvinfer1::IPluginCreator&, nvinfer1::AsciiChar const* const) noexcept override { return false; }
  nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const n) const noexcept override {
    *n = 0;
    return nullptr;
  }
  nvinfer1::IPluginCreator* getPluginCreator(nvinfer1::AsciiChar const* const, nvinfer1::AsciiChar const* const,
                                             nvinfer1::AsciiChar const* const = "") noexcept override {
    return nullptr;
  }
  bool deregisterCreator(nvinfer1::IPluginCreator const&) noexcept override { return false; }
#pragma GCC diagnostic pop
#endif

 private:
  std::vector<Entry> mEntries;
  mutable std::vector<nvinfer1::IPluginCreatorInterface*> mList;
  nvinfer1::IErrorRecorder* mRecorder = nullptr;
};

// The registry getPluginRegistry() returns (created on first use, so static registrars may call it).
FakeRegistry& registry();

}  // namespace harness
