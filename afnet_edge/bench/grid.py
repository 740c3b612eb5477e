"""The grid of ``afnet-edge bench``: what one measurement is (:class:`Case`), what a run measures (:class:`GridSpec`)
and the expansion of the one into the other (:func:`expand_grid`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..export.engine import read_sidecar
from ..models import model_entry

__all__ = ["BACKENDS", "TORCH_BACKENDS", "COMPACT_BACKENDS", "PLAN_BACKENDS", "COMPACT_PLANS", "DEFAULT_PLAN",
           "DENSE", "MODES", "PRECISIONS", "QUICK", "Case", "GridSpec", "expand_grid"]

BACKENDS = ("masked", "compact-torch", "compact-ext", "onnxruntime", "trt")
TORCH_BACKENDS = ("masked", "compact-torch", "compact-ext")
COMPACT_BACKENDS = ("compact-torch", "compact-ext", "onnxruntime", "trt")
DENSE = "dense"
MODES = ("eager", "cudagraph", "compile")
# Execution plans of the compact path (issue 16: model.configure(plan=...)); only the PyTorch compact backends take
# one (masked ignores it; dense models have none; ONNX Runtime / TensorRT run what was exported).
COMPACT_PLANS = ("eager", "lazy", "fused")
DEFAULT_PLAN = "eager"
PLAN_BACKENDS = ("compact-torch", "compact-ext")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

QUICK = dict(models=["af_mobilenetv3"], frames=[12], baseline_frames=[8], ratios=[0.25, 0.5], batches=[1],
             backends=["masked", "compact-torch"], modes=["eager"], precisions=["fp32"], size=64, warmup=2,
             repeats=5, threads=1)


@dataclass(frozen=True)
class Case:
    """One measurement: ``ratio`` is None for ratio-independent rows (masked anchor, dense baselines)."""

    model: str
    frames: int
    backend: str
    mode: str
    precision: str
    batch: int
    ratio: float | None
    size: int
    engine: str | None = None
    plan: str = DEFAULT_PLAN

    @property
    def label(self) -> str:
        """``backend[/plan][+mode]``: the plan is named when it is not the eager compact plan."""
        name = self.backend if self.plan == "eager" else f"{self.backend}/{self.plan}"
        return name if self.mode == "eager" else f"{name}+{self.mode}"


@dataclass
class GridSpec:
    """What to measure. Lists are the grid's axes; see ``afnet-edge bench --help`` for each."""

    models: list = field(default_factory=lambda: ["af_resnet50", "af_mobilenetv3", "tsn_resnet50", "tsm_resnet50"])
    frames: list = field(default_factory=lambda: [12])
    baseline_frames: list = field(default_factory=lambda: [8, 16])
    ratios: list = field(default_factory=lambda: [0.25, 0.4, 0.5, 1.0])
    batches: list = field(default_factory=lambda: [1])
    backends: list = field(default_factory=lambda: ["masked", "compact-torch", "compact-ext", "onnxruntime"])
    modes: list = field(default_factory=lambda: ["eager"])
    plans: list = field(default_factory=lambda: [DEFAULT_PLAN])
    precisions: list = field(default_factory=lambda: ["fp32"])
    size: int = 224
    device: str = "cpu"
    warmup: int = 3
    repeats: int = 30
    quick: bool = False
    engines: list = field(default_factory=list)
    checkpoint: str | None = None
    seed: int = 0
    masked_per_ratio: bool = False
    channels_last: bool = False
    compile_mode: str = "default"
    threads: int | None = None
    progress: bool = True
    ceilings: bool = True
    interleave: bool = False


def _skips_frames(name: str) -> bool:
    """Whether the grid sweeps ratios and masked/compact backends for ``name`` (its registry bench defaults)."""
    return model_entry(name).bench.skips_frames


def expand_grid(spec: GridSpec) -> list[Case]:
    """The cases of ``spec`` in execution order: per (model, T, precision, batch) the masked anchor first."""
    order = {b: i for i, b in enumerate(BACKENDS)}
    backends = sorted(dict.fromkeys(spec.backends), key=lambda b: order[b])
    cases: list[Case] = []
    for model in spec.models:
        dense = not _skips_frames(model)
        for T in (spec.baseline_frames if dense else spec.frames):
            for precision in spec.precisions:
                for batch in spec.batches:
                    for backend in backends:
                        if backend == "trt":
                            continue  # engine rows come from --engine
                        if dense:
                            be = DENSE if backend in TORCH_BACKENDS else backend
                            ratios = [None]
                        else:
                            be = backend
                            ratios = [None] if backend == "masked" and not spec.masked_per_ratio else spec.ratios
                        modes = spec.modes if backend in TORCH_BACKENDS else ["eager"]
                        plans = spec.plans if be in PLAN_BACKENDS else [DEFAULT_PLAN]
                        for plan in plans:
                            for mode in modes:
                                for r in ratios:
                                    c = Case(model, int(T), be, mode, precision, int(batch),
                                             None if r is None else float(r), spec.size, plan=plan)
                                    if c not in cases:
                                        cases.append(c)
    for engine in spec.engines:
        cases.append(_engine_case(engine, spec))
    return cases


def _engine_case(engine: str, spec: GridSpec) -> Case:
    if not os.path.isfile(engine):
        raise FileNotFoundError(f"--engine {engine}: file not found")
    sc = read_sidecar(engine)
    batch = sc.get("batch")
    batch = int(sc.get("example_batch", 1)) if batch == "dynamic" else int(batch)
    if int(sc.get("height", 0)) != int(sc.get("width", 0)):
        raise ValueError(f"--engine {engine}: non-square input {sc.get('height')}×{sc.get('width')} is not supported")
    mode = "cudagraph" if "cudagraph" in spec.modes else "eager"
    return Case(str(sc["model"]), int(sc["num_frames"]), "trt", mode, str(sc.get("precision", "fp32")), batch,
                float(sc["ratio"]), int(sc["height"]), engine=engine)

