"""Device table of the latency projection: published peak rates (matrix, vector, DRAM bandwidth) of the devices we
project onto, each number with its public source (derived numbers say how), and device specs built from measured
ceilings (``afnet-edge bench``'s micro-benchmarks)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["DeviceSpec", "DEVICES", "spec_from_ceilings"]


@dataclass
class DeviceSpec:
    """Peak rates of a device. ``matrix_tflops``: dense tensor-core (or, for a CPU, measured matmul) throughput per
    precision (``fp16``, ``bf16``, ``tf32``, ``fp32``); ``vector_tflops``: fp32 FMA-unit throughput for non-matrix
    work; ``bandwidth_gbs``: DRAM bandwidth (GB/s = 1e9 B/s); ``launch_us``: per-kernel overhead per scenario;
    ``sources``: where each number comes from; ``derived``: how derived numbers were computed."""

    key: str
    name: str
    kind: str
    bandwidth_gbs: float
    matrix_tflops: dict
    vector_tflops: float
    launch_us: dict
    sources: list = field(default_factory=list)
    derived: list = field(default_factory=list)
    conv_fp32_uses_tf32: bool = True
    calibrated: bool = False

    def matrix_peak(self, precision: str, op: str) -> float:
        """FLOP/s for a matrix op (``conv`` or ``mm``) in ``precision``."""
        m = self.matrix_tflops
        if precision in ("fp16", "bf16"):
            return m.get(precision, m.get("fp16", m["fp32"])) * 1e12
        if op == "conv" and self.conv_fp32_uses_tf32 and "tf32" in m:
            return m["tf32"] * 1e12  # PyTorch lets cuDNN use TF32 for fp32 convolutions by default
        return m["fp32"] * 1e12


_ASSUMED_LAUNCH_DGPU = {"eager": 6.0, "cudagraph": 1.5, "fused": 1.5}
_ASSUMED_LAUNCH_JETSON = {"eager": 15.0, "cudagraph": 2.0, "fused": 2.0}
_LAUNCH_NOTE = ("per-kernel overheads are assumptions (eager: PyTorch host dispatch per op; cudagraph/fused: gap "
                "between kernels of a replayed graph), not published numbers; a results file with measured ceilings "
                "replaces them")

H100_SRC = ["NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/ (SXM5: FP16/BF16 "
            "tensor 1,979 TFLOPS with sparsity = 989.4 dense, TF32 989 with sparsity = 494.7 dense, FP32 67 TFLOPS, "
            "HBM3 3.35 TB/s); PCIe: FP16 1,513 sparse = 756 dense, TF32 378 dense, FP32 51, 2.0 TB/s",
            "cross-checked: https://glennklockwood.com/garden/processors/h100 (dense table: FP16 989.4, TF32 494.7, "
            "FP32 66.9)"]
ORIN_SRC = ["NVIDIA Jetson AGX Orin Series Technical Brief v1.2 (2048 CUDA cores = 16 SMs at 1.3 GHz, 5.3 FP32 "
            "TFLOPS, 64 tensor cores, GPU 170 sparse INT8 TOPS), https://www.nvidia.com/content/dam/en-zz/Solutions/"
            "gtcf21/jetson-orin/nvidia-jetson-agx-orin-technical-brief.pdf",
            "Jetson Orin module table (memory bandwidth AGX Orin 64GB 204.8 GB/s, Orin NX 16GB 102.4 GB/s, Orin Nano "
            "8GB 68 GB/s; GPU max frequency NX 918 MHz, Nano 625 MHz), https://www.nvidia.com/en-us/autonomous-"
            "machines/embedded-systems/jetson-orin/",
            "Orin Nano Super (JetPack 6.1+: GPU 1020 MHz, 102 GB/s), https://developer.nvidia.com/blog/nvidia-jetson-"
            "orin-nano-developer-kit-gets-a-super-boost/"]
ORIN_DERIVED = ("Orin fp16 dense tensor peak = GPU sparse INT8 TOPS / 4 (dense = sparse / 2; FP16 = INT8 / 2 on "
                "Ampere tensor cores) = 2048 FLOP/clk/SM: AGX 16 SM × 1.3 GHz → 42.6; the same per-SM rate at the "
                "published clocks for NX (8 SM × 0.918 GHz → 15.0), Nano (8 × 0.625 → 10.2), Nano Super "
                "(8 × 1.02 → 16.7); TF32 = FP16 / 2; FP32 = 2 × CUDA cores × clock")
THOR_SRC = ["NVIDIA Jetson Thor (Jetson AGX Thor developer kit / T5000: 2560-core Blackwell GPU with 96 fifth-"
            "generation tensor cores, up to 2070 FP4 TFLOPS (sparse), 128 GB LPDDR5X 273 GB/s, GPU max 1.57 GHz), "
            "https://www.nvidia.com/en-us/autonomous-machines/embedded-systems/jetson-thor/",
            "20 SMs reported by the CUDA driver on a Thor devkit: https://forums.developer.nvidia.com/t/clarification-"
            "on-cuda-core-and-tensor-core-counts-for-jetson-agx-thor/356355"]
THOR_DERIVED = ("Thor fp16 dense = 2070 FP4 sparse TFLOPS / 8 (÷2 dense, ÷4 FP4→FP16 as on datacenter Blackwell) "
                "≈ 259 — an upper bound, NVIDIA publishes no FP16 figure; FP32 = 2560 cores × 2 × 1.57 GHz = 8.0; "
                "the 1.57 GHz clock and the FP4→FP16 ratio were not re-checked against a primary source here")

DEVICES: dict[str, DeviceSpec] = {
    "h100-sxm": DeviceSpec("h100-sxm", "NVIDIA H100 SXM5 80GB", "gpu", 3350.0,
                           {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}, 66.9,
                           dict(_ASSUMED_LAUNCH_DGPU), list(H100_SRC), [_LAUNCH_NOTE]),
    "h100-pcie": DeviceSpec("h100-pcie", "NVIDIA H100 PCIe 80GB", "gpu", 2000.0,
                            {"fp16": 756.0, "bf16": 756.0, "tf32": 378.0, "fp32": 51.2}, 51.2,
                            dict(_ASSUMED_LAUNCH_DGPU), list(H100_SRC), [_LAUNCH_NOTE]),
    "h200": DeviceSpec("h200", "NVIDIA H200 SXM 141GB", "gpu", 4800.0,
                       {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}, 66.9, dict(_ASSUMED_LAUNCH_DGPU),
                       ["NVIDIA H200 datasheet, https://www.nvidia.com/en-us/data-center/h200/ (same compute as H100 "
                        "SXM, HBM3e 4.8 TB/s)"], [_LAUNCH_NOTE]),
    "a100-sxm": DeviceSpec("a100-sxm", "NVIDIA A100 SXM4 80GB", "gpu", 2039.0,
                           {"fp16": 312.0, "bf16": 312.0, "tf32": 156.0, "fp32": 19.5}, 19.5,
                           dict(_ASSUMED_LAUNCH_DGPU),
                           ["NVIDIA A100 datasheet, https://www.nvidia.com/en-us/data-center/a100/ (FP16 tensor 312 "
                            "dense, TF32 156 dense, FP32 19.5 TFLOPS, 2,039 GB/s)"], [_LAUNCH_NOTE]),
    "orin-agx": DeviceSpec("orin-agx", "Jetson AGX Orin 64GB (MAXN)", "gpu", 204.8,
                           {"fp16": 42.6, "bf16": 42.6, "tf32": 21.3, "fp32": 5.3}, 5.3, dict(_ASSUMED_LAUNCH_JETSON),
                           list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nx": DeviceSpec("orin-nx", "Jetson Orin NX 16GB", "gpu", 102.4,
                          {"fp16": 15.0, "bf16": 15.0, "tf32": 7.5, "fp32": 1.88}, 1.88, dict(_ASSUMED_LAUNCH_JETSON),
                          list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nano": DeviceSpec("orin-nano", "Jetson Orin Nano 8GB", "gpu", 68.0,
                            {"fp16": 10.2, "bf16": 10.2, "tf32": 5.1, "fp32": 1.28}, 1.28,
                            dict(_ASSUMED_LAUNCH_JETSON), list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "orin-nano-super": DeviceSpec("orin-nano-super", "Jetson Orin Nano 8GB Super (JetPack 6.1+)", "gpu", 102.0,
                                  {"fp16": 16.7, "bf16": 16.7, "tf32": 8.4, "fp32": 2.09}, 2.09,
                                  dict(_ASSUMED_LAUNCH_JETSON), list(ORIN_SRC), [ORIN_DERIVED, _LAUNCH_NOTE]),
    "thor": DeviceSpec("thor", "Jetson AGX Thor (T5000)", "gpu", 273.0,
                       {"fp16": 258.75, "bf16": 258.75, "tf32": 129.4, "fp32": 8.04}, 8.04,
                       dict(_ASSUMED_LAUNCH_JETSON), list(THOR_SRC), [THOR_DERIVED, _LAUNCH_NOTE]),
}


def spec_from_ceilings(ceilings: dict, key: str = "cpu", name: str | None = None,
                       base: DeviceSpec | None = None) -> DeviceSpec:
    """Device spec from measured ceilings (``afnet-edge bench``'s ``ceilings``): matmul GFLOPS as the matrix peak,
    copy GB/s as bandwidth, per-op overhead as the eager launch cost. ``base``: a published spec to calibrate (its
    vector peak and non-eager overheads are kept)."""
    for k in ("matmul_gflops_fp32", "copy_gbs", "op_overhead_us"):
        if not isinstance(ceilings.get(k), (int, float)) or not ceilings[k] > 0:
            raise ValueError(f"ceilings lack a positive {k!r}; run `afnet-edge bench` (without --no-ceilings)")
    m = {"fp32": ceilings["matmul_gflops_fp32"] / 1e3}
    if ceilings.get("matmul_gflops_fp16"):
        m["fp16"] = m["bf16"] = ceilings["matmul_gflops_fp16"] / 1e3
    else:
        m["fp16"] = m["bf16"] = m["fp32"]
    ov = float(ceilings["op_overhead_us"])
    if base is None:
        launch = {"eager": ov, "cudagraph": ov, "fused": ov}
        vector = m["fp32"]
    else:
        launch = {**base.launch_us, "eager": ov}
        vector = base.vector_tflops
    return DeviceSpec(key=key, name=name or (base.name if base else "CPU (measured ceilings)"),
                      kind=base.kind if base else "cpu", bandwidth_gbs=float(ceilings["copy_gbs"]),
                      matrix_tflops=m, vector_tflops=vector, launch_us=launch,
                      sources=[f"measured by afnet-edge bench (ceilings: {json.dumps(ceilings, default=str)[:300]})"],
                      derived=["matrix peak = measured fp32 (and fp16) matmul rate; bandwidth = measured copy "
                               "(read + write) rate; eager per-op overhead = measured tiny-op time"],
                      conv_fp32_uses_tf32=False, calibrated=True)

