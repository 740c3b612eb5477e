// Error reporting, field parsing and format rules shared by afnet_edge's TensorRT plugins.
#include "afnPluginCommon.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

namespace afn {
namespace trt {

namespace {
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};
}  // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept { gLoggerFinder.store(finder); }

void reportError(char const* who, char const* msg) noexcept {
  // The registry's error recorder is how an application sees plugin errors next to TensorRT's own; without one the
  // message goes to the logger TensorRT handed to setLoggerFinder(), else to stderr, so that a failing build or
  // enqueue is never silent.
  char line[1024];
  std::snprintf(line, sizeof line, "[afnet_edge %s plugin] %s", who ? who : "?", msg ? msg : "(no message)");
  nvinfer1::IPluginRegistry* registry = getPluginRegistry();
  nvinfer1::IErrorRecorder* recorder = registry ? registry->getErrorRecorder() : nullptr;
  if (recorder != nullptr) {
    recorder->reportError(nvinfer1::ErrorCode::kINVALID_ARGUMENT, line);
    return;
  }
  nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
  nvinfer1::ILogger* logger = nullptr;
  if (finder != nullptr) {
    try {
      logger = finder->findLogger();
    } catch (...) {
      logger = nullptr;
    }
  }
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, line);
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
}

void reportError(char const* who, std::string const& msg) noexcept {
  try {
    reportError(who, msg.c_str());
  } catch (...) {
    reportError(who, "error (message could not be formatted)");
  }
}

void reportErrorf(char const* who, char const* fmt, ...) noexcept {
  char msg[768];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  reportError(who, static_cast<char const*>(msg));
}

int32_t checkLaunch(char const* who, cudaError_t err) noexcept {
  if (err == cudaSuccess) return 0;
  char msg[256];
  std::snprintf(msg, sizeof msg, "kernel launch failed: %s (%s)", cudaGetErrorName(err), cudaGetErrorString(err));
  reportError(who, msg);
  return -1;
}

bool parseIntFields(char const* who, PluginFieldCollection const* fc, IntFieldSlot* fields, int32_t nbFields) noexcept {
  try {
    if (fc == nullptr) {
      reportError(who, "no plugin field collection given");
      return false;
    }
    std::vector<bool> seen(static_cast<size_t>(nbFields), false);
    for (int32_t i = 0; i < fc->nbFields; ++i) {
      PluginField const& f = fc->fields[i];
      int32_t j = 0;
      while (j < nbFields && (f.name == nullptr || std::strcmp(f.name, fields[j].name) != 0)) ++j;
      if (j == nbFields) {
        reportError(who, std::string("unknown field '") + (f.name ? f.name : "(null)") + "'");
        return false;
      }
      if (seen[j]) {
        reportError(who, std::string("field '") + fields[j].name + "' given twice");
        return false;
      }
      if (f.type != PluginFieldType::kINT32 || f.length != 1 || f.data == nullptr) {
        reportError(who, std::string("field '") + fields[j].name + "' must be one kINT32 value");
        return false;
      }
      int32_t v = *static_cast<int32_t const*>(f.data);
      if (v < fields[j].lo || v > fields[j].hi) {
        reportError(who, std::string("field '") + fields[j].name + "' = " + std::to_string(v) + " is outside [" +
                             std::to_string(fields[j].lo) + ", " + std::to_string(fields[j].hi) + "]");
        return false;
      }
      *fields[j].value = v;
      seen[j] = true;
    }
    for (int32_t j = 0; j < nbFields; ++j) {
      if (!seen[j]) {
        reportError(who, std::string("missing field '") + fields[j].name + "'");
        return false;
      }
    }
    return true;
  } catch (...) {
    reportError(who, "field parsing failed");
    return false;
  }
}

bool checkIoCount(char const* who, int32_t nbInputs, int32_t expectIn, int32_t nbOutputs, int32_t expectOut) noexcept {
  if (nbInputs == expectIn && nbOutputs == expectOut) return true;
  char msg[160];
  std::snprintf(msg, sizeof msg, "expects %d inputs and %d output, got %d and %d", expectIn, expectOut, nbInputs,
                nbOutputs);
  reportError(who, msg);
  return false;
}

bool checkIoCountChain(char const* who, int32_t nbInputs, int32_t kIn, int32_t nbOutputs) noexcept {
  if ((nbInputs == kIn || nbInputs == kIn + kChainInputs) && nbOutputs == 1) return true;
  reportErrorf(who, "expects %d inputs (%d with a lazy chain: + chain_start, chain_consts) and 1 output, got %d and %d",
               kIn, kIn + kChainInputs, nbInputs, nbOutputs);
  return false;
}

bool chainTypesOk(char const* who, DataType const* inputTypes, int32_t nbInputs, int32_t kIn,
                  DataType floatType) noexcept {
  if (!hasChain(nbInputs, kIn)) return true;
  if (inputTypes[kIn] == DataType::kINT32 && inputTypes[kIn + 1] == floatType) return true;
  reportError(who, "chain_start must be int32 and chain_consts of the plugin's float type");
  return false;
}

bool chainRanksOk(char const* who, DimsExprs const* inputs, int32_t nbInputs, int32_t kIn) noexcept {
  if (!hasChain(nbInputs, kIn)) return true;
  if (inputs[kIn].nbDims == 1 && inputs[kIn + 1].nbDims == 4) return true;
  reportError(who, "chain_start must have rank 1 (N,) and chain_consts rank 4 (L, C, H, W)");
  return false;
}

bool supportsChainInput(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t kIn) noexcept {
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos == kIn) return d.type == DataType::kINT32;
  return isFloatType(d.type) && d.type == inOut[0].desc.type;
}

bool chainShapesOk(char const* who, nvinfer1::Dims const& x, nvinfer1::Dims const* start, nvinfer1::Dims const* consts,
                   int32_t reluMask, int32_t upto) noexcept {
  if (start == nullptr || consts == nullptr) {
    if (reluMask == 0 && upto == 0) return true;
    reportErrorf(who, "chain_relu_mask=%d, chain_upto=%d need the chain inputs (chain_start, chain_consts)", reluMask,
                 upto);
    return false;
  }
  auto agree = [](int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; };  // -1: not known at build time
  bool ok = start->nbDims == 1 && consts->nbDims == 4 && x.nbDims == 4 && agree(start->d[0], x.d[0]);
  for (int32_t i = 1; ok && i < 4; ++i) ok = agree(consts->d[i], x.d[i]);
  if (!ok) {
    reportError(who, "chain_start must be (N,) and chain_consts (L, C, H, W) with N, C, H, W of the frame tensor");
    return false;
  }
  int64_t const L = consts->d[0];
  if (L >= 0 && (L > kChainMaxBlocks || upto > L)) {
    reportErrorf(who, "chain_consts holds L=%lld blocks: need L <= %d and chain_upto=%d <= L",
                 static_cast<long long>(L), kChainMaxBlocks, upto);
    return false;
  }
  return true;
}

bool supportsLinear(int32_t pos, DynamicPluginTensorDesc const* inOut, bool isIndex) noexcept {
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (isIndex) return isIndexType(d.type);
  if (!isFloatType(d.type)) return false;
  // Every float tensor has the type of input 0 (a float tensor in the four AFNet plugins). TensorRT asks positions in
  // order, so input 0's type is already fixed when a later position is queried.
  return pos == 0 || d.type == inOut[0].desc.type;
}

}  // namespace trt
}  // namespace afn
