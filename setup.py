"""afnet_edge: AFNet video recognition that really skips the unselected frames."""
from setuptools import find_packages, setup

setup(
    name="afnet_edge",
    version="0.1.0",
    description="AFNet (NeurIPS 2022) reference models with a compact frame-skipping path, kernels and export",
    python_requires=">=3.10",
    packages=find_packages(include=["afnet_edge", "afnet_edge.*"]) + ["afnet_edge.export"],
    package_dir={"afnet_edge.export": "export"},  # repo-root export/ ships as afnet_edge.export
    install_requires=["torch>=2.4", "numpy", "tqdm", "pillow"],
    extras_require={
        "video": ["av"],
        "onnx": ["onnx", "onnxruntime", "onnx-graphsurgeon"],
        "tensorrt": ["tensorrt>=10", "cuda-python"],
        "plot": ["matplotlib"],
        "test": ["pytest", "av", "onnx", "onnxruntime", "onnx-graphsurgeon", "matplotlib"],
    },
    entry_points={"console_scripts": ["afnet-edge=afnet_edge.cli:main"]},
)
