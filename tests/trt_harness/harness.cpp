// End-to-end run of afnet_edge's TensorRT plugins on the CPU: csrc/trt as compiled for TensorRT, the CUDA kernels of
// csrc/kernels executed by the CUDA emulator (tests/cuda_emu), TensorRT itself replaced by the stand-ins of
// trt_fakes.h. Built and run by scripts/trt_plugin_check.sh; the cases come from make_cases.py.
//
//   trt_harness CASES_DIR        (CASES_DIR/cases.txt + one raw file per tensor)
//
// What it checks, in the order TensorRT would exercise a plugin:
//   library   the static registrar put the creators in the global registry (name, version, namespace);
//             getCreators() returns them and withdraws the static registration (so loadLibrary can register them);
//             setLoggerFinder exists; registering them again (as loadLibrary does) succeeds;
//   per case  the creator is found by (op type, plugin_version, plugin_namespace) of the exported ONNX node, declares
//             exactly the node's attributes as scalar kINT32 fields, and creates the plugin from them (the ONNX
//             parser's int attribute -> kINT32 field); bad field sets are refused with an error reported;
//             output type; getOutputShapes with constant dims and with the symbolic batch axes of a dynamic-batch
//             engine; supportsFormatCombination (the case's `floats` accepted — fp32/fp16, and bf16 for FocusCrop —
//             the others refused; linear; mixed types, other formats, other types refused; FocusCrop's centres fp32
//             only); configurePlugin (static and dynamic); getWorkspaceSize; serialisation round trip
//             (getFieldsToSerialize -> createPlugin(kRUNTIME) -> same fields); clone and attachToContext;
//             onShapeChange + enqueue on the emulated kernels (outputs and workspace poisoned first) against the
//             float64 PyTorch reference within the case's tolerance; the clone's output is bitwise the same.
//   crop      FocusCrop refuses (with an error reported) frames smaller than patch_size and centres that are not
//             (N, 2) for x's N frames;
//   bLVNet    TemporalAggregate(Pair) refuses rows that are not whole clips and weights with an even K, K > 63, another
//             C or (pair) another K than the first weight; BLMerge big / little with another N or C. A case may have
//             several outputs (TemporalAggregatePair: big_in, little_in), all compared with their references;
//   chains    cases with a lazy constant chain (two trailing inputs chain_start int32, chain_consts; fields
//             chain_relu_mask / chain_upto) compare with the reference computed in the plugin's own type (gather and
//             scatter bit-exact) and check that a chain without its inputs, or with upto > L, is refused.
// Exit status 0 only when every check passed.
#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "afnPluginCommon.h"
#include "trt_fakes.h"

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);

using namespace nvinfer1;

namespace {

int gFailures = 0;
int gChecks = 0;
std::string gCase;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    ++gChecks;                                                                \
    if (!(cond)) {                                                            \
      ++gFailures;                                                            \
      std::fprintf(stderr, "FAIL [%s] %s:%d: %s: ", gCase.c_str(), __FILE__, \
                   __LINE__, #cond);                                          \
      std::fprintf(stderr, __VA_ARGS__);                                      \
      std::fprintf(stderr, "\n");                                             \
    }                                                                         \
  } while (0)

// ------------------------------------------------------------------------------------------------- case file
struct DimTok {
  int64_t value;
  std::string symbol;  // empty: a constant axis
};

struct Tensor {
  std::string name, dtype, file;
  std::vector<DimTok> dims;
  std::vector<unsigned char> bytes;
};

struct Field {
  std::string name, kind;
  std::vector<int64_t> values;
};

struct Case {
  std::string id, op, dtype, version, ns;
  std::vector<std::string> floats;  // frame types the plugin must accept (the others of f32/f16/bf16 refused)
  std::vector<Field> fields;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;  // references, stored as f64 (TemporalAggregatePair has two)
  double atol = 0, rtol = 0;
};

size_t elemSize(std::string const& t) {
  if (t == "f32" || t == "i32") return 4;
  if (t == "f16" || t == "bf16") return 2;
  if (t == "f64" || t == "i64") return 8;
  return 0;
}

DataType trtType(std::string const& t) {
  if (t == "f32") return DataType::kFLOAT;
  if (t == "f16") return DataType::kHALF;
  if (t == "bf16") return DataType::kBF16;
  if (t == "i64") return DataType::kINT64;
  return DataType::kINT32;
}

int64_t volume(std::vector<DimTok> const& d) {
  int64_t v = 1;
  for (auto const& x : d) v *= x.value;
  return v;
}

bool readBytes(std::string const& path, size_t n, std::vector<unsigned char>& out) {
  std::ifstream f(path, std::ios::binary);
  out.assign(n, 0);
  if (!f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n))) return false;
  return f.peek() == std::char_traits<char>::eof();
}

std::vector<Case> readCases(std::string const& dir) {
  std::ifstream in(dir + "/cases.txt");
  if (!in) {
    std::fprintf(stderr, "trt_harness: cannot read %s/cases.txt\n", dir.c_str());
    std::exit(2);
  }
  std::vector<Case> cases;
  std::string line;
  Case c;
  auto readTensor = [&](std::istringstream& ls, bool isRef) {
    Tensor t;
    int rank = 0;
    ls >> t.name >> t.dtype >> rank;
    for (int i = 0; i < rank; ++i) {
      std::string tok;
      ls >> tok;
      auto eq = tok.find('=');
      if (eq == std::string::npos) {
        t.dims.push_back({std::stoll(tok), ""});
      } else {
        t.dims.push_back({std::stoll(tok.substr(eq + 1)), tok.substr(0, eq)});
      }
    }
    ls >> t.file;
    size_t const n = static_cast<size_t>(volume(t.dims)) * elemSize(isRef ? "f64" : t.dtype);
    if (!readBytes(dir + "/" + t.file, n, t.bytes)) {
      std::fprintf(stderr, "trt_harness: %s/%s is not %zu bytes\n", dir.c_str(), t.file.c_str(), n);
      std::exit(2);
    }
    return t;
  };
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "case") {
      c = Case{};
      ls >> c.id >> c.op >> c.dtype;
    } else if (key == "version") {
      ls >> c.version;
    } else if (key == "namespace") {
      ls >> c.ns;
    } else if (key == "floats") {  // comma-separated
      std::string list, t;
      ls >> list;
      std::istringstream items(list);
      while (std::getline(items, t, ',')) c.floats.push_back(t);
    } else if (key == "field") {
      Field f;
      int n = 0;
      ls >> f.name >> f.kind >> n;
      for (int i = 0; i < n; ++i) {
        int64_t v;
        ls >> v;
        f.values.push_back(v);
      }
      c.fields.push_back(f);
    } else if (key == "in") {
      c.inputs.push_back(readTensor(ls, false));
    } else if (key == "out") {
      c.outputs.push_back(readTensor(ls, true));
    } else if (key == "tol") {
      ls >> c.atol >> c.rtol;
    } else if (key == "end") {
      cases.push_back(c);
    }
  }
  return cases;
}

double toDouble(std::string const& dtype, unsigned char const* p, size_t i) {
  if (dtype == "f32") {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
  if (dtype == "f16") {
    __half h;
    std::memcpy(&h, p + 2 * i, 2);
    return __half2float(h);
  }
  if (dtype == "i64") {  // an integer output (SegmentCluster's offsets)
    int64_t v;
    std::memcpy(&v, p + 8 * i, 8);
    return static_cast<double>(v);
  }
  if (dtype == "bf16") {  // the upper half of an fp32
    uint16_t b;
    std::memcpy(&b, p + 2 * i, 2);
    uint32_t const w = static_cast<uint32_t>(b) << 16;
    float v;
    std::memcpy(&v, &w, 4);
    return v;
  }
  double v;
  std::memcpy(&v, p + 8 * i, 8);
  return v;
}

// ------------------------------------------------------------------------------------------------- plugin access
struct Parts {
  IPluginV3* plugin = nullptr;
  IPluginV3OneCore* core = nullptr;
  IPluginV3OneBuild* build = nullptr;
  IPluginV3OneRuntime* runtime = nullptr;
};

Parts parts(IPluginV3* p) {
  Parts r;
  r.plugin = p;
  if (p == nullptr) return r;
  r.core = static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
  r.build = static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
  r.runtime = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  return r;
}

// Field collection as TensorRT's ONNX parser builds it from the node's attributes (INT -> one kINT32).
struct Fields {
  std::vector<std::vector<int32_t>> storage;
  std::vector<PluginField> fields;
  PluginFieldCollection fc{};
};

Fields onnxFields(std::vector<Field> const& in) {
  Fields f;
  f.storage.reserve(in.size());
  for (auto const& x : in) {
    f.storage.emplace_back(x.values.begin(), x.values.end());
    PluginFieldType t = x.kind == "INT" || x.kind == "INTS" ? PluginFieldType::kINT32 : PluginFieldType::kUNKNOWN;
    f.fields.emplace_back(x.name.c_str(), f.storage.back().data(), t, static_cast<int32_t>(x.values.size()));
  }
  f.fc.nbFields = static_cast<int32_t>(f.fields.size());
  f.fc.fields = f.fields.data();
  return f;
}

// (name, values) of a serialised/declared collection; `withData` false for getFieldNames (no values).
std::vector<std::pair<std::string, std::vector<int32_t>>> describe(PluginFieldCollection const* fc, bool withData) {
  std::vector<std::pair<std::string, std::vector<int32_t>>> out;
  if (fc == nullptr) return out;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    PluginField const& f = fc->fields[i];
    std::vector<int32_t> v;
    bool const scalarInt = f.type == PluginFieldType::kINT32 && f.length == 1;
    if (withData && scalarInt && f.data) v.push_back(*static_cast<int32_t const*>(f.data));
    out.emplace_back(std::string(f.name ? f.name : "(null)") + (scalarInt ? "" : ":not-a-kINT32-scalar"), v);
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<int32_t>>> expected(Case const& c, bool withData) {
  std::vector<std::pair<std::string, std::vector<int32_t>>> out;
  for (auto const& f : c.fields) {
    std::vector<int32_t> v;
    if (withData) v.assign(f.values.begin(), f.values.end());
    out.emplace_back(f.name, v);
  }
  return out;
}

Dims dimsOf(std::vector<DimTok> const& d, bool dynamic) {
  Dims r{};
  r.nbDims = static_cast<int32_t>(d.size());
  for (size_t i = 0; i < d.size(); ++i) r.d[i] = dynamic && !d[i].symbol.empty() ? -1 : d[i].value;
  return r;
}

Dims dimsOf(std::vector<DimTok> const& d, int64_t scale) {
  Dims r{};
  r.nbDims = static_cast<int32_t>(d.size());
  for (size_t i = 0; i < d.size(); ++i) r.d[i] = d[i].symbol.empty() ? d[i].value : d[i].value * scale;
  return r;
}

DynamicPluginTensorDesc dyn(std::vector<DimTok> const& d, DataType t, bool dynamic) {
  DynamicPluginTensorDesc x{};
  x.desc.dims = dimsOf(d, dynamic);
  x.desc.type = t;
  x.desc.format = TensorFormat::kLINEAR;
  x.desc.scale = 1.f;
  x.min = dimsOf(d, int64_t{1});
  x.opt = dimsOf(d, int64_t{1});
  x.max = dimsOf(d, int64_t{2});  // the batch axes may grow to twice the example
  if (dynamic) {
    for (size_t i = 0; i < d.size(); ++i) {
      if (!d[i].symbol.empty()) x.min.d[i] = 0;
    }
  }
  return x;
}

// int64 as exported, or int32 (widened): the AFNet frame index lists and SegmentCluster's frame_offsets
bool isIndex(Tensor const& t) { return t.name == "index" || t.name == "frame_offsets"; }
// A lazy chain's chain_start: always int32 (never widened); chain_consts is a float tensor like the others.
bool isChainStart(Tensor const& t) { return t.name == "chain_start"; }
bool isIntInput(Tensor const& t) { return isIndex(t) || isChainStart(t); }
// FocusCrop's centres and the TAM weights: fp32 whatever the frames' type.
bool isFp32Input(Tensor const& t) {
  return t.name == "centres" || t.name == "weight" || t.name == "w_big" || t.name == "w_little";
}
int32_t nbOut(Case const& c) { return static_cast<int32_t>(c.outputs.size()); }
// An output is of the plugin's float type (its `out` line names the case's type) or an integer output ("i64":
// SegmentCluster's offsets), whatever the float type.
bool isIntOutput(Tensor const& o) { return o.dtype == "i64" || o.dtype == "i32"; }
DataType outType(Tensor const& o, DataType floatType) { return isIntOutput(o) ? trtType(o.dtype) : floatType; }
std::string outDtype(Case const& c, Tensor const& o) { return isIntOutput(o) ? o.dtype : c.dtype; }

// ------------------------------------------------------------------------------------------------- checks
void checkOutputShape(std::vector<DimTok> const& want, DimsExprs const& out, bool dynamic);

void checkShapes(Case const& c, IPluginV3OneBuild* build, bool dynamic) {
  harness::ExprBuilder eb;
  std::vector<DimsExprs> ins(c.inputs.size());
  std::map<std::string, harness::Expr const*> symbols;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    auto const& d = c.inputs[i].dims;
    ins[i].nbDims = static_cast<int32_t>(d.size());
    for (size_t j = 0; j < d.size(); ++j) {
      harness::Expr const* e;
      if (dynamic && !d[j].symbol.empty()) {
        auto it = symbols.find(d[j].symbol);
        e = it != symbols.end() ? it->second : (symbols[d[j].symbol] = eb.symbol(d[j].symbol));
      } else {
        e = eb.constantExpr(d[j].value);
      }
      ins[i].d[j] = e;
    }
  }
  std::vector<DimsExprs> outs(c.outputs.size());
  int32_t const rc = build->getOutputShapes(ins.data(), static_cast<int32_t>(ins.size()), nullptr, 0, outs.data(),
                                            nbOut(c), eb);
  CHECK(rc == 0, "getOutputShapes (%s) returned %d", dynamic ? "dynamic" : "static", rc);
  if (rc != 0) return;
  for (size_t o = 0; o < outs.size(); ++o) checkOutputShape(c.outputs[o].dims, outs[o], dynamic);
}

void checkOutputShape(std::vector<DimTok> const& want, DimsExprs const& out, bool dynamic) {
  CHECK(out.nbDims == static_cast<int32_t>(want.size()), "output rank %d, expected %zu", out.nbDims, want.size());
  for (int32_t j = 0; j < out.nbDims && j < static_cast<int32_t>(want.size()); ++j) {
    IDimensionExpr const* e = out.d[j];
    CHECK(e != nullptr, "output dim %d is null", j);
    if (e == nullptr) continue;
    if (dynamic && !want[j].symbol.empty()) {
      auto const* sym = dynamic_cast<harness::Expr const*>(e);
      CHECK(!e->isConstant() && sym && sym->name() == want[j].symbol, "dynamic output dim %d: expected symbol %s, "
            "got %s", j, want[j].symbol.c_str(), sym ? sym->name().c_str() : "a foreign expression");
    } else {
      CHECK(e->isConstant() && e->getConstantValue() == want[j].value, "output dim %d: expected %lld, got %s%lld",
            j, static_cast<long long>(want[j].value), e->isConstant() ? "" : "symbolic ",
            static_cast<long long>(e->getConstantValue()));
    }
  }
}

std::vector<DynamicPluginTensorDesc> ioDescs(Case const& c, DataType floatType, bool dynamic,
                                             DataType indexType = DataType::kINT64, bool keepIndexType = true) {
  std::vector<DynamicPluginTensorDesc> io;
  for (auto const& t : c.inputs) {
    DataType ty = isIndex(t) ? (keepIndexType ? trtType(t.dtype) : indexType)
                             : (isChainStart(t) ? DataType::kINT32 : (isFp32Input(t) ? DataType::kFLOAT : floatType));
    io.push_back(dyn(t.dims, ty, dynamic));
  }
  for (auto const& o : c.outputs) io.push_back(dyn(o.dims, outType(o, floatType), dynamic));
  return io;
}

void checkFormats(Case const& c, IPluginV3OneBuild* build) {
  int32_t const nIn = static_cast<int32_t>(c.inputs.size()), nOut = nbOut(c);
  for (char const* name : {"f32", "f16", "bf16"}) {
    DataType const ft = trtType(name);
    bool const accepted = std::find(c.floats.begin(), c.floats.end(), name) != c.floats.end();
    for (DataType it : {DataType::kINT64, DataType::kINT32}) {
      auto io = ioDescs(c, ft, false, it, false);
      if (!accepted) {  // the frame type itself is refused at position 0
        CHECK(!build->supportsFormatCombination(0, io.data(), nIn, nOut), "pos 0 accepts %s", name);
        continue;
      }
      for (int32_t pos = 0; pos < nIn + nOut; ++pos) {
        CHECK(build->supportsFormatCombination(pos, io.data(), nIn, nOut), "pos %d refused (float %s, index %d)", pos,
              name, static_cast<int>(it));
      }
    }
  }
  auto const base = ioDescs(c, trtType(c.dtype), false);
  for (int32_t pos = 0; pos < nIn + nOut; ++pos) {
    bool const index = pos < nIn && isIntInput(c.inputs[pos]);
    auto io = base;
    io[pos].desc.format = TensorFormat::kCHW32;
    CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "pos %d accepts kCHW32", pos);
    io = base;
    io[pos].desc.type = DataType::kINT8;
    CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "pos %d accepts kINT8", pos);
    io = base;
    if (pos < nIn && isChainStart(c.inputs[pos])) {  // int32 only: an int64 start is not widened
      io[pos].desc.type = DataType::kINT64;
      CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "chain_start pos %d accepts kINT64", pos);
      io = base;
    }
    if (index) {
      io[pos].desc.type = DataType::kFLOAT;
      CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "index pos %d accepts kFLOAT", pos);
    } else if (pos < nIn && isFp32Input(c.inputs[pos])) {  // fp32 only, whatever the frames' type
      for (DataType other : {DataType::kHALF, DataType::kBF16}) {
        io[pos].desc.type = other;
        CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "fp32-only pos %d accepts type %d", pos,
              static_cast<int>(other));
      }
    } else if (pos > 0) {  // a float tensor of another type than input 0
      io[pos].desc.type = base[0].desc.type == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT;
      CHECK(!build->supportsFormatCombination(pos, io.data(), nIn, nOut), "pos %d accepts a type other than input 0's",
            pos);
    }
  }
  CHECK(!build->supportsFormatCombination(nIn + nOut, base.data(), nIn, nOut), "position past the outputs accepted");
}

// Run onShapeChange + enqueue; returns the outputs' bytes one after the other (empty on failure).
std::vector<unsigned char> run(Case const& c, IPluginV3OneBuild* build, IPluginV3OneRuntime* rt) {
  int32_t const nIn = static_cast<int32_t>(c.inputs.size()), nOut = nbOut(c);
  auto io = ioDescs(c, trtType(c.dtype), false);
  std::vector<PluginTensorDesc> in, out;
  for (int32_t i = 0; i < nIn; ++i) in.push_back(io[i].desc);
  for (int32_t o = 0; o < nOut; ++o) out.push_back(io[nIn + o].desc);
  size_t const ws = build->getWorkspaceSize(io.data(), nIn, &io[nIn], nOut);
  CHECK(rt->onShapeChange(in.data(), nIn, out.data(), nOut) == 0, "onShapeChange failed");
  std::vector<void const*> ptrs;
  std::vector<std::vector<unsigned char>> copies;  // the plugin must not write its inputs: check after the run
  for (auto const& t : c.inputs) copies.push_back(t.bytes);
  for (auto const& b : copies) ptrs.push_back(b.data());
  size_t outBytes = 0;
  for (auto const& o : c.outputs) outBytes += static_cast<size_t>(volume(o.dims)) * elemSize(outDtype(c, o));
  std::vector<unsigned char> y(outBytes, 0xFF);        // NaN in fp32, fp16 and bf16
  std::vector<unsigned char> workspace(ws + 1, 0xA5);  // poisoned; one canary byte past the end
  std::vector<void*> outs;
  for (size_t o = 0, off = 0; o < c.outputs.size(); ++o) {
    outs.push_back(y.data() + off);
    off += static_cast<size_t>(volume(c.outputs[o].dims)) * elemSize(outDtype(c, c.outputs[o]));
  }
  int32_t const rc =
      rt->enqueue(in.data(), out.data(), ptrs.data(), outs.data(), ws ? workspace.data() : nullptr, nullptr);
  CHECK(rc == 0, "enqueue returned %d", rc);
  CHECK(workspace[ws] == 0xA5, "enqueue wrote past its %zu-byte workspace", ws);
  for (size_t i = 0; i < copies.size(); ++i) {
    CHECK(copies[i] == c.inputs[i].bytes, "enqueue modified input %s", c.inputs[i].name.c_str());
  }
  return rc == 0 ? y : std::vector<unsigned char>{};
}

struct Result {
  double maxErr = 0;
  bool ok = false;
};

Result compare(Case const& c, std::vector<unsigned char> const& y) {
  Result r;
  if (y.empty()) return r;
  size_t bad = 0, n = 0, at = 0;  // the outputs lie one after the other in y (run); `at`: byte offset
  for (auto const& o : c.outputs) {
    size_t const m = static_cast<size_t>(volume(o.dims));
    std::string const dt = outDtype(c, o);
    for (size_t i = 0; i < m; ++i) {
      double const got = toDouble(dt, y.data() + at, i);
      double const want = toDouble("f64", o.bytes.data(), i);
      double const err = std::fabs(got - want);
      if (!(err <= c.atol + c.rtol * std::fabs(want))) {  // NaN (an unwritten element) fails too
        if (bad++ < 3) {
          std::fprintf(stderr, "  [%s] %s element %zu: got %.9g, reference %.9g\n", c.id.c_str(), o.name.c_str(), i,
                       got, want);
        }
      }
      if (!(err <= r.maxErr)) r.maxErr = std::isnan(err) ? INFINITY : err;
    }
    n += m;
    at += m * elemSize(dt);
  }
  CHECK(bad == 0, "%zu of %zu outputs outside atol %g + rtol %g", bad, n, c.atol, c.rtol);
  r.ok = bad == 0;
  return r;
}

int64_t fieldValue(Case const& c, char const* name) {
  for (auto const& f : c.fields)
    if (f.name == name && !f.values.empty()) return f.values[0];
  return -1;
}

// A chain case: the plugin refuses (with an error reported) chain fields without the chain inputs, and consts with
// fewer blocks than chain_upto.
void checkChainRefusals(Case const& c, IPluginV3OneRuntime* rt, harness::ErrorCounter& errors) {
  int32_t const nIn = static_cast<int32_t>(c.inputs.size());
  if (nIn < 2 || !isChainStart(c.inputs[nIn - 2])) return;
  auto io = ioDescs(c, trtType(c.dtype), false);
  std::vector<PluginTensorDesc> in;
  for (int32_t i = 0; i < nIn; ++i) in.push_back(io[i].desc);
  PluginTensorDesc out = io[nIn].desc;
  int64_t const upto = fieldValue(c, "chain_upto"), mask = fieldValue(c, "chain_relu_mask");
  if (upto > 0 || mask > 0) {
    int32_t const before = errors.getNbErrors();
    CHECK(rt->onShapeChange(in.data(), nIn - 2, &out, 1) != 0, "chain fields without the chain inputs accepted");
    CHECK(errors.getNbErrors() > before, "chain fields without the chain inputs refused without an error report");
  }
  if (upto > 0) {
    auto fewer = in;
    fewer[nIn - 1].dims.d[0] = upto - 1;  // chain_consts (L, C, H, W) with L < upto
    int32_t const before = errors.getNbErrors();
    CHECK(rt->onShapeChange(fewer.data(), nIn, &out, 1) != 0, "chain_upto > L accepted");
    CHECK(errors.getNbErrors() > before, "chain_upto > L refused without an error report");
  }
}

// FocusCrop: frames smaller than the patch, and centres whose rows are not x's frames, are refused with an error.
void checkCropRefusals(Case const& c, IPluginV3OneRuntime* rt, harness::ErrorCounter& errors) {
  int32_t const nIn = static_cast<int32_t>(c.inputs.size());
  int64_t const P = fieldValue(c, "patch_size");
  if (c.op != "FocusCrop" || nIn != 2 || P < 1) return;
  auto io = ioDescs(c, trtType(c.dtype), false);
  std::vector<PluginTensorDesc> in{io[0].desc, io[1].desc};
  PluginTensorDesc out = io[nIn].desc;
  auto refused = [&](std::vector<PluginTensorDesc> const& bad, char const* what) {
    int32_t const before = errors.getNbErrors();
    CHECK(rt->onShapeChange(bad.data(), nIn, &out, 1) != 0, "%s accepted", what);
    CHECK(errors.getNbErrors() > before, "%s refused without an error report", what);
  };
  auto bad = in;
  bad[0].dims.d[2] = P - 1;
  refused(bad, "frames lower than patch_size");
  bad = in;
  bad[0].dims.d[3] = P - 1;
  refused(bad, "frames narrower than patch_size");
  bad = in;
  bad[1].dims.d[0] = in[0].dims.d[0] + 1;
  refused(bad, "centres with another frame count");
  bad = in;
  bad[1].dims.d[1] = 3;
  refused(bad, "centres (N, 3)");
  CHECK(rt->onShapeChange(in.data(), nIn, &out, 1) == 0, "the case's own shapes refused after the bad ones");
}

// bLVNet's plugins: rows that are not whole clips, an even / too long / mismatched TAM weight, and big / little maps
// of other N or C are refused with an error reported.
void checkBlvnetRefusals(Case const& c, IPluginV3OneRuntime* rt, harness::ErrorCounter& errors) {
  bool const tam = c.op == "TemporalAggregate" || c.op == "TemporalAggregatePair";
  if (!tam && c.op != "BLMerge") return;
  int32_t const nIn = static_cast<int32_t>(c.inputs.size()), nOut = nbOut(c);
  auto io = ioDescs(c, trtType(c.dtype), false);
  std::vector<PluginTensorDesc> in, out;
  for (int32_t i = 0; i < nIn; ++i) in.push_back(io[i].desc);
  for (int32_t o = 0; o < nOut; ++o) out.push_back(io[nIn + o].desc);
  auto refused = [&](std::vector<PluginTensorDesc> const& bad, char const* what) {
    int32_t const before = errors.getNbErrors();
    CHECK(rt->onShapeChange(bad.data(), nIn, out.data(), nOut) != 0, "%s accepted", what);
    CHECK(errors.getNbErrors() > before, "%s refused without an error report", what);
  };
  auto bad = in;
  if (tam) {
    int64_t const T = fieldValue(c, c.op == "TemporalAggregate" ? "num_frames" : "num_pairs");
    bad[0].dims.d[0] = in[0].dims.d[0] + 1;
    if (T > 1) refused(bad, "rows that are not whole clips");
    for (int32_t w = 1; w < nIn; ++w) {
      bad = in;
      bad[w].dims.d[0] = in[w].dims.d[0] + 1;
      refused(bad, "a weight with an even K");
      bad = in;
      bad[w].dims.d[0] = 65;
      refused(bad, "a weight with K = 65 > 63");
      bad = in;
      bad[w].dims.d[1] = in[w].dims.d[1] + 1;
      refused(bad, "a weight of another channel count");
    }
    if (nIn == 3) {
      bad = in;
      bad[2].dims.d[0] = in[1].dims.d[0] + 2;
      refused(bad, "w_little with another K than w_big");
    }
  } else {
    bad[0].dims.d[0] = in[1].dims.d[0] + 1;
    refused(bad, "big with another N than little");
    bad = in;
    bad[0].dims.d[1] = in[1].dims.d[1] + 1;
    refused(bad, "big with another C than little");
  }
  CHECK(rt->onShapeChange(in.data(), nIn, out.data(), nOut) == 0, "the case's own shapes refused after the bad ones");
}

// SegmentCluster: no frames, fewer frames than videos, frame_offsets of rank 2 or for no video are refused with an
// error reported.
void checkClusterRefusals(Case const& c, IPluginV3OneRuntime* rt, harness::ErrorCounter& errors) {
  if (c.op != "SegmentCluster") return;
  int32_t const nIn = static_cast<int32_t>(c.inputs.size()), nOut = nbOut(c);
  auto io = ioDescs(c, trtType(c.dtype), false);
  std::vector<PluginTensorDesc> in, out;
  for (int32_t i = 0; i < nIn; ++i) in.push_back(io[i].desc);
  for (int32_t o = 0; o < nOut; ++o) out.push_back(io[nIn + o].desc);
  auto refused = [&](std::vector<PluginTensorDesc> const& bad, char const* what) {
    int32_t const before = errors.getNbErrors();
    CHECK(rt->onShapeChange(bad.data(), nIn, out.data(), nOut) != 0, "%s accepted", what);
    CHECK(errors.getNbErrors() > before, "%s refused without an error report", what);
  };
  auto bad = in;
  bad[0].dims.d[0] = 0;
  refused(bad, "no frames");
  bad = in;
  bad[0].dims.nbDims = 1;
  refused(bad, "activations of rank 1");
  if (nIn == 2) {
    bad = in;
    bad[0].dims.d[0] = in[1].dims.d[0] - 2;
    refused(bad, "fewer frames than videos");
    bad = in;
    bad[1].dims.d[0] = 1;
    refused(bad, "frame_offsets for no video");
    bad = in;
    bad[1].dims.nbDims = 2;
    bad[1].dims.d[1] = 1;
    refused(bad, "frame_offsets of rank 2");
  }
  CHECK(rt->onShapeChange(in.data(), nIn, out.data(), nOut) == 0, "the case's own shapes refused after the bad ones");
}

IPluginCreatorV3One* findCreator(char const* name, char const* version, char const* ns) {
  IPluginCreatorInterface* c = harness::registry().getCreator(name, version, ns);
  if (c == nullptr || std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) return nullptr;
  return static_cast<IPluginCreatorV3One*>(c);
}

void checkBadFields(Case const& c, IPluginCreatorV3One* creator, harness::ErrorCounter& errors) {
  auto refused = [&](std::vector<Field> const& fs, char const* what) {
    Fields f = onnxFields(fs);
    int32_t const before = errors.getNbErrors();
    IPluginV3* p = creator->createPlugin("bad", &f.fc, TensorRTPhase::kBUILD);
    CHECK(p == nullptr, "%s accepted", what);
    CHECK(errors.getNbErrors() > before, "%s refused without an error report", what);
    delete p;
  };
  std::vector<Field> fs = c.fields;
  fs.push_back({"unknown_field", "INT", {1}});
  refused(fs, "an unknown field");
  if (!c.fields.empty()) {
    fs = c.fields;
    fs.pop_back();
    refused(fs, "a missing field");
    fs = c.fields;
    fs.push_back(c.fields.front());
    refused(fs, "a repeated field");
    fs = c.fields;
    fs.back().values = {1 << 30};
    refused(fs, "an out-of-range value");
    fs = c.fields;
    fs.back().values = {1, 1};
    refused(fs, "a two-value field");
    fs = c.fields;
    fs.back().kind = "FLOAT";
    refused(fs, "a non-int field");
  }
  CHECK(creator->createPlugin("null", nullptr, TensorRTPhase::kBUILD) == nullptr, "a null field collection accepted");
}

void runCase(Case const& c, harness::ErrorCounter& errors, std::map<std::string, double>& maxErr) {
  gCase = c.id;
  int const failuresBefore = gFailures;
  IPluginCreatorV3One* creator = findCreator(c.op.c_str(), c.version.c_str(), c.ns.c_str());
  CHECK(creator != nullptr, "no creator registered for (%s, version %s, namespace %s) of the exported node",
        c.op.c_str(), c.version.c_str(), c.ns.c_str());
  if (creator == nullptr) return;
  CHECK(describe(creator->getFieldNames(), false) == expected(c, false),
        "creator fields differ from the exported node's attributes");
  Fields f = onnxFields(c.fields);
  Parts p = parts(creator->createPlugin(c.id.c_str(), &f.fc, TensorRTPhase::kBUILD));
  CHECK(p.plugin && p.core && p.build && p.runtime, "createPlugin from the exported fields failed");
  if (!(p.plugin && p.core && p.build && p.runtime)) return;
  CHECK(std::string(p.core->getPluginName()) == c.op && std::string(p.core->getPluginVersion()) == c.version &&
            std::string(p.core->getPluginNamespace()) == c.ns,
        "plugin identity %s/%s/%s", p.core->getPluginName(), p.core->getPluginVersion(), p.core->getPluginNamespace());
  CHECK(p.plugin->getCapabilityInterface(static_cast<PluginCapabilityType>(77)) == nullptr, "unknown capability");
  checkBadFields(c, creator, errors);

  // build phase
  int32_t const nIn = static_cast<int32_t>(c.inputs.size());
  int32_t const nOut = nbOut(c);
  CHECK(p.build->getNbOutputs() == nOut, "getNbOutputs %d, expected %d", p.build->getNbOutputs(), nOut);
  std::vector<DataType> inTypes;
  for (auto const& t : c.inputs) {
    inTypes.push_back(isIntInput(t) || isFp32Input(t) ? trtType(t.dtype) : trtType(c.dtype));
  }
  std::vector<DataType> outTypes(static_cast<size_t>(nOut), DataType::kINT8);
  CHECK(p.build->getOutputDataTypes(outTypes.data(), nOut, inTypes.data(), nIn) == 0, "getOutputDataTypes failed");
  for (int32_t o = 0; o < nOut; ++o) {
    CHECK(outTypes[o] == outType(c.outputs[o], trtType(c.dtype)), "output %d type %d", o,
          static_cast<int>(outTypes[o]));
  }
  checkShapes(c, p.build, false);
  checkShapes(c, p.build, true);
  checkFormats(c, p.build);
  for (bool dynamic : {false, true}) {
    auto io = ioDescs(c, trtType(c.dtype), dynamic);
    CHECK(p.build->configurePlugin(io.data(), nIn, &io[nIn], nOut) == 0, "configurePlugin (%s) failed",
          dynamic ? "dynamic" : "static");
    size_t expectWs = 0;
    for (int32_t i = 0; i < nIn; ++i) {
      if (isIndex(c.inputs[i]) && c.inputs[i].dtype == "i32") expectWs += static_cast<size_t>(io[i].max.d[0]) * sizeof(int64_t);
    }
    size_t const ws = p.build->getWorkspaceSize(io.data(), nIn, &io[nIn], nOut);
    if (c.op == "SegmentCluster") {  // + packed bits, distances and counts (run() checks the plugin stays inside)
      CHECK(ws > expectWs, "getWorkspaceSize %zu, expected more than %zu", ws, expectWs);
    } else {
      CHECK(ws == expectWs, "getWorkspaceSize %zu, expected %zu (int64 copy of an int32 index at its max length)", ws,
            expectWs);
    }
  }

  // serialisation round trip: what an engine stores, read back through the runtime path of the same creator
  auto const serial = describe(p.runtime->getFieldsToSerialize(), true);
  CHECK(serial == expected(c, true), "serialised fields differ from the exported fields");
  Fields round;
  {
    PluginFieldCollection const* fc = p.runtime->getFieldsToSerialize();
    std::vector<Field> fs;
    for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
      fs.push_back({fc->fields[i].name, "INT", {*static_cast<int32_t const*>(fc->fields[i].data)}});
    }
    round = onnxFields(fs);
  }
  Parts q = parts(creator->createPlugin(c.id.c_str(), &round.fc, TensorRTPhase::kRUNTIME));
  CHECK(q.plugin && q.runtime && describe(q.runtime->getFieldsToSerialize(), true) == serial,
        "the deserialised plugin differs");
  Parts k = parts(p.plugin->clone());
  CHECK(k.plugin && k.plugin != p.plugin && describe(k.runtime->getFieldsToSerialize(), true) == serial,
        "clone differs");
  Parts a = parts(q.runtime ? q.runtime->attachToContext(nullptr) : nullptr);
  CHECK(a.plugin && a.plugin != q.plugin && describe(a.runtime->getFieldsToSerialize(), true) == serial,
        "attachToContext copy differs");
  delete p.plugin;  // the clone and the copies must not depend on the original
  p = Parts{};

  // runtime: the deserialised plugin's context copy runs, then the clone on the same data
  if (a.runtime) checkChainRefusals(c, a.runtime, errors);
  if (a.runtime) checkCropRefusals(c, a.runtime, errors);
  if (a.runtime) checkBlvnetRefusals(c, a.runtime, errors);
  if (a.runtime) checkClusterRefusals(c, a.runtime, errors);
  if (a.plugin && k.plugin) {
    std::vector<unsigned char> y = run(c, k.build, a.runtime);
    Result r = compare(c, y);
    std::vector<unsigned char> y2 = run(c, k.build, k.runtime);
    CHECK(!y.empty() && y == y2, "the clone's output differs from the deserialised plugin's");
    std::string key = c.op + " " + c.dtype;
    maxErr[key] = std::max(maxErr.count(key) ? maxErr[key] : 0.0, r.maxErr);
    std::printf("%s %-38s max|err| %.3g (atol %g, rtol %g)\n", gFailures == failuresBefore ? "ok  " : "FAIL",
                c.id.c_str(), r.maxErr, c.atol, c.rtol);
  }
  delete q.plugin;
  delete k.plugin;
  delete a.plugin;
}

void checkLibrary(std::vector<Case> const& cases) {
  gCase = "library";
  auto& reg = harness::registry();
  std::set<std::string> want;
  for (auto const& c : cases) want.insert(c.op);
  CHECK(reg.entries().size() == want.size(), "static registration: %zu creators in the registry, expected %zu",
        reg.entries().size(), want.size());
  for (auto const& e : reg.entries()) CHECK(e.ns == afn::trt::kPluginNamespace, "registered under '%s'", e.ns.c_str());
  int32_t n = -1;
  IPluginCreatorInterface* const* list = getCreators(n);
  CHECK(list != nullptr && n == static_cast<int32_t>(want.size()), "getCreators returned %d creators", n);
  CHECK(reg.entries().empty(), "getCreators left %zu statically registered creators (loadLibrary would refuse them)",
        reg.entries().size());
  std::set<std::string> names;
  for (int32_t i = 0; list && i < n; ++i) {
    CHECK(std::strcmp(list[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0, "creator %d kind %s", i,
          list[i]->getInterfaceInfo().kind);
    auto* v3 = static_cast<IPluginCreatorV3One*>(list[i]);
    names.insert(v3->getPluginName());
    CHECK(std::string(v3->getPluginVersion()) == afn::trt::kPluginVersion, "creator version %s",
          v3->getPluginVersion());
    // what loadLibrary does with the list: register each under the creator's own namespace
    CHECK(reg.registerCreator(*list[i], v3->getPluginNamespace()), "re-registering %s failed", v3->getPluginName());
  }
  CHECK(names == want, "getCreators names differ from the exported plugin ops");
  int32_t n2 = -1;
  getCreators(n2);  // a second call (another loader) must not disturb the registration
  CHECK(n2 == n && reg.entries().size() == want.size(), "a second getCreators call changed the registry");
  setLoggerFinder(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: trt_harness CASES_DIR\n");
    return 2;
  }
  std::vector<Case> cases = readCases(argv[1]);
  if (cases.empty()) {
    std::fprintf(stderr, "trt_harness: no cases in %s/cases.txt\n", argv[1]);
    return 2;
  }
  checkLibrary(cases);
  harness::ErrorCounter errors;
  harness::registry().setErrorRecorder(&errors);
  std::map<std::string, double> maxErr;
  for (auto const& c : cases) runCase(c, errors, maxErr);
  for (auto const& [key, err] : maxErr) std::printf("max|err| %-22s %.3g\n", key.c_str(), err);
  std::printf("trt_harness: TensorRT %d.%d.%d headers: %zu cases, %d checks, %d failed\n", NV_TENSORRT_MAJOR,
              NV_TENSORRT_MINOR, NV_TENSORRT_PATCH, cases.size(), gChecks, gFailures);
  return gFailures == 0 ? 0 : 1;
}
