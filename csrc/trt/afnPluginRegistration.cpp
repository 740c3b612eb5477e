// Registration of afnet_edge's plugin creators and the library's identity functions.
//
// Loading the shared library (ctypes.CDLL / dlopen, trtexec --staticPlugins=..., LD_PRELOAD) runs the static
// registrar below, which adds the four creators to TensorRT's global plugin registry under kPluginNamespace. (The
// REGISTER_TENSORRT_PLUGIN macro would register them with an empty namespace.) The extern "C" functions let
// afnet_edge.export check, before building or deserialising, that the library matches the plugin version the ONNX
// file or engine was made for and the TensorRT it was compiled against.
#include <NvInferVersion.h>

#include "AmpleFuseBlendPlugin.h"
#include "AmpleFusePoolPlugin.h"
#include "FocalGatherPlugin.h"
#include "FocalScatterPlugin.h"

#define AFN_STR2(x) #x
#define AFN_STR(x) AFN_STR2(x)

namespace afn {
namespace trt {
namespace {

template <typename Creator>
class Registrar {
 public:
  Registrar() noexcept {
    nvinfer1::IPluginRegistry* registry = getPluginRegistry();
    if (registry == nullptr || !registry->registerCreator(mCreator, kPluginNamespace)) {
      reportErrorf(mCreator.getPluginName(), "could not register the creator (version %s, namespace %s); is another "
                   "copy of the plugin library loaded?", kPluginVersion, kPluginNamespace);
    }
  }

 private:
  Creator mCreator;
};

Registrar<FocalGatherPluginCreator> gFocalGather;
Registrar<FocalScatterPluginCreator> gFocalScatter;
Registrar<AmpleFusePoolPluginCreator> gAmpleFusePool;
Registrar<AmpleFuseBlendPluginCreator> gAmpleFuseBlend;

}  // namespace
}  // namespace trt
}  // namespace afn

extern "C" {

// Plugin version of this library (== export/plugins.py PLUGIN_VERSION for ONNX files it can build).
__attribute__((visibility("default"))) char const* afnetEdgeTrtPluginVersion() { return afn::trt::kPluginVersion; }

// Namespace the creators are registered under.
__attribute__((visibility("default"))) char const* afnetEdgeTrtPluginNamespace() {
  return afn::trt::kPluginNamespace;
}

// TensorRT version of the headers this library was compiled against, "major.minor.patch".
__attribute__((visibility("default"))) char const* afnetEdgeTrtBuiltWithTensorRT() {
  return AFN_STR(NV_TENSORRT_MAJOR) "." AFN_STR(NV_TENSORRT_MINOR) "." AFN_STR(NV_TENSORRT_PATCH);
}

}  // extern "C"
