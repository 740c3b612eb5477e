// Registration of afnet_edge's plugin creators and the library's entry points.
//
// Two ways in, one set of creator objects:
//   * TensorRT's plugin-library entry points (the documented `extern "C"` pair of TensorRT >= 10): getCreators() and
//     setLoggerFinder(). IPluginRegistry::loadLibrary, `trtexec --dynamicPlugins=lib.so`, engines built with
//     setPluginsToSerialize and Triton's TensorRT backend load the library through them and register the creators
//     themselves (tied to the library handle, so deregisterLibrary undoes it). TensorRT 10.3's own plugin library
//     (libnvinfer_vc_plugin, plugin/exports-vfc_plugin.map of the 10.3 OSS tree) exports exactly these two and
//     loadLibrary takes it; the legacy getPluginCreators() (IPluginCreator, V2 plugins only) is not needed for
//     IPluginV3 creators and is not exported.
//   * Plain dlopen (ctypes.CDLL in export/trt_backend.py, `trtexec --staticPlugins`, LD_PRELOAD): the static
//     registrar below adds the eight creators to the global registry under kPluginNamespace at load time. (The
//     REGISTER_TENSORRT_PLUGIN macro would register them with an empty namespace.)
// loadLibrary refuses a library whose plugins are already registered, and it dlopens the library first (running the
// static registrar), so getCreators() hands the statically registered creators over: it deregisters them from the
// global registry before returning them, and TensorRT registers the same objects again.
// The afnetEdgeTrt* functions let afnet_edge.export check, before building or deserialising, that the library matches
// the plugin version the ONNX file or engine was made for and the TensorRT it was compiled against.
#include <NvInferVersion.h>

#include <mutex>

#include "AmpleFuseBlendPlugin.h"
#include "AmpleFusePoolPlugin.h"
#include "FocalGatherPlugin.h"
#include "FocalScatterPlugin.h"
#include "FocusCropPlugin.h"
#include "SegmentClusterPlugin.h"
#include "BLMergePlugin.h"
#include "TemporalAggregatePairPlugin.h"
#include "TemporalAggregatePlugin.h"

#define AFN_STR2(x) #x
#define AFN_STR(x) AFN_STR2(x)
#define AFN_EXPORT __attribute__((visibility("default")))

namespace afn {
namespace trt {
namespace {

FocalGatherPluginCreator gFocalGather;
FocalScatterPluginCreator gFocalScatter;
AmpleFusePoolPluginCreator gAmpleFusePool;
AmpleFuseBlendPluginCreator gAmpleFuseBlend;
FocusCropPluginCreator gFocusCrop;
TemporalAggregatePluginCreator gTemporalAggregate;
TemporalAggregatePairPluginCreator gTemporalAggregatePair;
BLMergePluginCreator gBLMerge;
SegmentClusterPluginCreator gSegmentCluster;

constexpr int32_t kNbCreators = 9;
nvinfer1::IPluginCreatorInterface* const gCreators[kNbCreators] = {&gFocalGather, &gFocalScatter, &gAmpleFusePool,
                                                                   &gAmpleFuseBlend, &gFocusCrop, &gTemporalAggregate,
                                                                   &gTemporalAggregatePair, &gBLMerge, &gSegmentCluster};

std::mutex gMutex;
// gStatic[i]: creator i is in the global registry because the static registrar put it there.
bool gStatic[kNbCreators] = {};

struct StaticRegistrar {
  StaticRegistrar() noexcept {
    std::lock_guard<std::mutex> lock(gMutex);
    nvinfer1::IPluginRegistry* registry = getPluginRegistry();
    for (int32_t i = 0; i < kNbCreators; ++i) {
      auto* creator = static_cast<IPluginCreatorV3One*>(gCreators[i]);
      gStatic[i] = registry != nullptr && registry->registerCreator(*gCreators[i], kPluginNamespace);
      if (!gStatic[i]) {
        reportErrorf(creator->getPluginName(), "could not register the creator (version %s, namespace %s); is "
                     "another copy of the plugin library loaded?", kPluginVersion, kPluginNamespace);
      }
    }
  }
};
StaticRegistrar gStaticRegistrar;

}  // namespace

// Creators of this library for TensorRT's loader (see the file comment): statically registered ones are withdrawn
// from the global registry first, so that the loader's own registration of the same objects succeeds.
nvinfer1::IPluginCreatorInterface* const* creatorsForLoader(int32_t& nbCreators) noexcept {
  std::lock_guard<std::mutex> lock(gMutex);
  nvinfer1::IPluginRegistry* registry = getPluginRegistry();
  for (int32_t i = 0; i < kNbCreators; ++i) {
    if (gStatic[i] && registry != nullptr && registry->deregisterCreator(*gCreators[i])) gStatic[i] = false;
  }
  nbCreators = kNbCreators;
  return gCreators;
}

}  // namespace trt
}  // namespace afn

extern "C" {

// TensorRT plugin-library entry point: the creators this library provides (IPluginV3 / IPluginCreatorV3One).
AFN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  return afn::trt::creatorsForLoader(nbCreators);
}

// TensorRT plugin-library entry point: where plugin errors are logged when no error recorder is set.
AFN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { afn::trt::setLoggerFinder(finder); }

// Plugin version of this library (== export/plugins.py PLUGIN_VERSION for ONNX files it can build).
AFN_EXPORT char const* afnetEdgeTrtPluginVersion() { return afn::trt::kPluginVersion; }

// Namespace the creators are registered under.
AFN_EXPORT char const* afnetEdgeTrtPluginNamespace() { return afn::trt::kPluginNamespace; }

// TensorRT version of the headers this library was compiled against, "major.minor.patch".
AFN_EXPORT char const* afnetEdgeTrtBuiltWithTensorRT() {
  return AFN_STR(NV_TENSORRT_MAJOR) "." AFN_STR(NV_TENSORRT_MINOR) "." AFN_STR(NV_TENSORRT_PATCH);
}

}  // extern "C"
