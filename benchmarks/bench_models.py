#!/usr/bin/env python3
"""Model benchmark grid — the same code as ``afnet-edge bench`` (:mod:`afnet_edge.bench`), runnable from a checkout.

    python benchmarks/bench_models.py --quick                      # CI-sized CPU grid (~10 s)
    python benchmarks/bench_models.py --device cpu --threads 1     # CPU grid (see docs/performance.md)
    python benchmarks/bench_models.py --device cuda                # GPU grid: fp16+fp32, batch 1/8/32, eager/cudagraph/compile
    python benchmarks/bench_models.py --engine model.engine        # time a TensorRT engine as well
    python benchmarks/bench_models.py --profile --models af_resnet50 --threads 1   # where the CPU compact path spends time

Every option: ``python benchmarks/bench_models.py --help``. Results go to benchmarks/results/<device slug>/ (JSON with
device, driver, CUDA, torch, TensorRT versions and the exact command; markdown; PNG plots).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from afnet_edge.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
