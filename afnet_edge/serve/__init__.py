"""Serving afnet_edge models with NVIDIA Triton Inference Server (docs/serving.md).

* :mod:`afnet_edge.serve.repository` writes a Triton model repository (TensorRT plan, ONNX Runtime, Python-backend
  PyTorch classifier, video pre-processing, post-processing and the ``video_classify`` ensemble) plus DeepStream
  configs for the engine;
* :mod:`afnet_edge.serve.server` starts the ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel (extra
  ``afnet_edge[serve]``) on such a repository and shuts it down cleanly;
* :mod:`afnet_edge.serve.client` classifies a video through a running server (``tritonclient``, HTTP or gRPC);
* :mod:`afnet_edge.serve.triton_models` is the code the Python-backend models run inside the server.
"""
