// Definitions of the TensorRT stand-ins (trt_fakes.h) and the libnvinfer symbol the plugins call.
#include "trt_fakes.h"

#include <algorithm>
#include <cstring>

namespace harness {

nvinfer1::IDimensionExpr const* ExprBuilder::State::operation(nvinfer1::DimensionOperation op,
                                                              nvinfer1::IDimensionExpr const& a,
                                                              nvinfer1::IDimensionExpr const& b) {
  using nvinfer1::DimensionOperation;
  if (!a.isConstant() || !b.isConstant()) {
    auto const* ea = dynamic_cast<Expr const*>(&a);
    auto const* eb = dynamic_cast<Expr const*>(&b);
    return owner->symbol("(" + (ea ? ea->name() : "?") + " op" + std::to_string(static_cast<int>(op)) + " " +
                         (eb ? eb->name() : "?") + ")");
  }
  int64_t const x = a.getConstantValue(), y = b.getConstantValue();
  int64_t v = 0;
  switch (op) {
    case DimensionOperation::kSUM: v = x + y; break;
    case DimensionOperation::kPROD: v = x * y; break;
    case DimensionOperation::kMAX: v = std::max(x, y); break;
    case DimensionOperation::kMIN: v = std::min(x, y); break;
    case DimensionOperation::kSUB: v = x - y; break;
    case DimensionOperation::kEQUAL: v = x == y; break;
    case DimensionOperation::kLESS: v = x < y; break;
    case DimensionOperation::kFLOOR_DIV: v = y == 0 ? 0 : (x / y - ((x % y != 0) && ((x < 0) != (y < 0)))); break;
    case DimensionOperation::kCEIL_DIV: v = y == 0 ? 0 : (x + y - 1) / y; break;
    default: return owner->symbol("unsupported_op");
  }
  return owner->constantExpr(v);
}

namespace {
char const* creatorName(nvinfer1::IPluginCreatorInterface const* c, char const** version, char const** ns) {
  if (std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) return nullptr;
  auto const* v3 = static_cast<nvinfer1::IPluginCreatorV3One const*>(c);
  *version = v3->getPluginVersion();
  *ns = v3->getPluginNamespace();
  return v3->getPluginName();
}
}  // namespace

bool FakeRegistry::registerCreator(nvinfer1::IPluginCreatorInterface& creator,
                                   nvinfer1::AsciiChar const* const ns) noexcept {
  char const *version = nullptr, *cns = nullptr;
  char const* name = creatorName(&creator, &version, &cns);
  if (name == nullptr || ns == nullptr) return false;
  if (getCreator(name, version, ns) != nullptr) return false;  // "Returns false if ... already registered"
  mEntries.push_back({&creator, ns});
  return true;
}

nvinfer1::IPluginCreatorInterface* const* FakeRegistry::getAllCreators(int32_t* const n) const noexcept {
  mList.clear();
  for (auto const& e : mEntries) mList.push_back(e.creator);
  *n = static_cast<int32_t>(mList.size());
  return mList.empty() ? nullptr : mList.data();
}

nvinfer1::IPluginCreatorInterface* FakeRegistry::getCreator(nvinfer1::AsciiChar const* const name,
                                                            nvinfer1::AsciiChar const* const version,
                                                            nvinfer1::AsciiChar const* const ns) noexcept {
  for (auto const& e : mEntries) {
    char const *v = nullptr, *cns = nullptr;
    char const* n = creatorName(e.creator, &v, &cns);
    if (n && std::strcmp(n, name) == 0 && std::strcmp(v, version) == 0 && e.ns == (ns ? ns : "")) return e.creator;
  }
  return nullptr;
}

bool FakeRegistry::deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept {
  auto it = std::find_if(mEntries.begin(), mEntries.end(), [&](Entry const& e) { return e.creator == &creator; });
  if (it == mEntries.end()) return false;
  mEntries.erase(it);
  return true;
}

FakeRegistry& registry() {
  static FakeRegistry r;
  return r;
}

}  // namespace harness

// libnvinfer's global registry accessor, as the plugins call it.
extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return &harness::registry(); }
