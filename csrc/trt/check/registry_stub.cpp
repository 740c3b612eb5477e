// Link-check only (afnet_edge_trt_plugins_linkcheck, built when TensorRT headers are present without libnvinfer):
// stands in for libnvinfer's getPluginRegistry() so the plugin objects can be linked with --no-undefined, proving
// every kernel launcher they call is instantiated in afnet_edge_kernels. Never part of a loadable plugin library.
#include <NvInferRuntime.h>

extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return nullptr; }
