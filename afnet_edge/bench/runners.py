"""Runners: how one case executes. Random-weight models, random input clips, why a case cannot run here, and the
runners that execute one forward per ``run()`` — PyTorch (eager, CUDA graph, ``torch.compile``; masked, compact with
the PyTorch or the extension ops, dense) and ONNX Runtime (the exported compact graph). TensorRT engines are timed by
:class:`afnet_edge.export.runtime.TRTRunner` (see :mod:`.run`)."""
from __future__ import annotations

import copy
import inspect
import os

import torch
import torch.nn as nn

from .. import kernels
from ..checkpoint import load_checkpoint
from ..export.onnx_export import export_onnx
from ..models import create_model
from .grid import DENSE, TORCH_BACKENDS, Case, GridSpec
from .memory import MIB, live_tensor_peak, reset_hwm, rss_kib, state_bytes

__all__ = ["N_INPUT_BUFFERS", "randomize_weights", "build_model", "make_inputs", "ext_skip_reason", "skip_reason",
           "Runner", "TorchRunner", "OrtRunner", "reference_logits", "torch_memory"]

N_INPUT_BUFFERS = 3


@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random conv/linear weights of variance-preserving scale and random BN affine parameters and statistics, so
    that activations stay O(1) (no denormals, no all-zero branches) and focal constant maps are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
            mod.bias.copy_(0.2 * torch.randn(c, generator=g))
            mod.running_mean.copy_(0.2 * torch.randn(c, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
            if mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
    return model


def build_model(name: str, frames: int, spec: GridSpec) -> nn.Module:
    """Model ``name`` with ``frames`` frames, ``topk`` selection, in eval mode: weights from ``spec.checkpoint`` or
    random (:func:`randomize_weights` with ``spec.seed``)."""
    model = create_model(name, num_frames=frames, selection="topk")
    if spec.checkpoint:
        load_checkpoint(model, spec.checkpoint)
    else:
        randomize_weights(model, spec.seed)
    return model.eval()


def make_inputs(case: Case, device: torch.device, dtype: torch.dtype, seed: int, channels_last: bool) -> list:
    """:data:`N_INPUT_BUFFERS` random normal clips ``(batch, frames, 3, size, size)`` for ``case`` (seeded)."""
    g = torch.Generator().manual_seed(seed + 7919 * case.batch + case.frames)
    xs = []
    for _ in range(N_INPUT_BUFFERS):
        x = torch.randn(case.batch, case.frames, 3, case.size, case.size, generator=g).to(device=device, dtype=dtype)
        xs.append(x)
    return xs


def ext_skip_reason(device: torch.device) -> str | None:
    """Why the compiled extension's ops cannot run on ``device`` (not built, no kernels for it; None when they can)."""
    try:
        if not kernels.extension_available():
            # the compiled extension is optional and loading it can fail with anything: imported where used
            from ..kernels import ext
            err = ext.import_error()
            return f"afnet_edge._C is not built ({type(err).__name__ if err else 'no operators'}); build it with " \
                   f"`pip install --no-build-isolation -e .`"
        from ..kernels import ext  # (see above)
        if not ext.has_kernels(device):
            return f"afnet_edge._C has no {device.type} kernels (built without them)"
    except Exception as e:
        return f"afnet_edge._C cannot be used: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def skip_reason(case: Case, device: torch.device) -> str | None:
    """Why ``case`` cannot run here (None when it can)."""
    if case.mode == "cudagraph" and device.type != "cuda" and case.backend != "trt":
        return "CUDA graphs need a CUDA device"
    if case.backend == "compact-ext":
        return ext_skip_reason(device)
    if case.backend == "onnxruntime":
        if case.precision != "fp32":
            return "the exported ONNX graph is fp32 (ONNX Runtime fp16 needs a converted graph; not benchmarked)"
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (`pip install afnet_edge[onnx]`)"
        if device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here (`pip install onnxruntime-gpu`); CPU timings on a " \
                   "GPU machine would not be comparable"
        if device.type not in ("cpu", "cuda"):
            return f"onnxruntime backend supports cpu and cuda devices, not {device.type}"
    if case.backend == "trt" and device.type != "cuda":
        return "TensorRT engines need a CUDA device"
    if case.precision == "fp16" and device.type == "cpu" and case.backend in TORCH_BACKENDS + (DENSE,):
        return None  # allowed (slow on most CPUs; measured as asked)
    return None


class Runner:
    """``run()`` executes one forward on the next input; ``logits(x)`` the output for a given input (checks)."""

    cuda = False
    notes: str = ""

    def run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _configure(model, case: Case) -> None:
    if case.backend == DENSE:
        return
    execution = "masked" if case.backend == "masked" else "compact"
    kernels = {"masked": "torch", "compact-torch": "torch", "compact-ext": "ext"}[case.backend]
    extra = {}
    if execution == "compact":
        if "plan" in inspect.signature(model.configure).parameters:
            extra["plan"] = case.plan  # named every time: the model's default plan may change, the row's may not
        elif case.plan != "eager":
            raise ValueError(f"plan {case.plan!r} needs model.configure(plan=...) (issue 16), which this build's "
                             f"models lack")
    model.configure(execution=execution, selection="topk", ratio=case.ratio if case.ratio is not None else 1.0,
                    kernels=kernels, **extra)


class TorchRunner(Runner):
    """One PyTorch forward per ``run()`` (eager, one captured CUDA graph, or ``torch.compile``), inputs rotated."""

    def __init__(self, model, case: Case, xs: list, spec: GridSpec, device: torch.device):
        self.model, self.case, self.xs, self.device = model, case, xs, device
        self.cuda = device.type == "cuda"
        self.i = 0
        _configure(model, case)
        fwd = lambda x: model(x).logits  # noqa: E731
        self.static_out = None
        if case.mode == "compile":
            torch._dynamo.reset()
            self.fn = torch.compile(fwd, mode=None if spec.compile_mode == "default" else spec.compile_mode)
            with torch.no_grad():
                self.fn(xs[0])  # compile now: a failure is reported as a skipped row
        elif case.mode == "cudagraph":
            with torch.no_grad():
                s = torch.cuda.Stream(device)
                s.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(s):
                    for _ in range(3):  # fills the constant-map caches and lets cuDNN pick its algorithms
                        fwd(xs[0])
                torch.cuda.current_stream(device).wait_stream(s)
                self.static_in = xs[0].clone()
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.static_out = fwd(self.static_in)
            self.fn = None
        else:
            self.fn = fwd

    reconfigure = False  # interleaved timing: other cases reconfigure the shared model between runs

    def run(self) -> None:
        with torch.no_grad():
            if self.case.mode == "cudagraph":
                self.graph.replay()
            else:
                if self.reconfigure:
                    _configure(self.model, self.case)
                self.fn(self.xs[self.i % len(self.xs)])
                self.i += 1

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        _configure(self.model, self.case)
        with torch.no_grad():
            if self.case.mode == "cudagraph":
                self.static_in.copy_(x)
                self.graph.replay()
                torch.cuda.synchronize(self.device)
                return self.static_out.clone()
            return self.fn(x)

    def close(self) -> None:
        self.graph = None
        self.static_out = None
        if self.case.mode == "compile":
            torch._dynamo.reset()


class OrtRunner(Runner):
    """The case's compact ``topk`` graph exported to ONNX and run by ONNX Runtime (CPU or CUDA provider); records the
    export check and the resident-set growth of session creation + first run."""

    def __init__(self, model, case: Case, xs: list, spec: GridSpec, device: torch.device, workdir: str):
        import numpy as np
        import onnxruntime as ort
        self.case = case
        p = next(model.parameters())
        # Module.float()/.cpu() work in place: export from a copy when the timed model is elsewhere or not fp32.
        model_cpu = model if (p.device.type == "cpu" and p.dtype == torch.float32) else \
            copy.deepcopy(model).float().cpu()
        path = os.path.join(workdir, f"{case.model}_T{case.frames}_r{case.ratio}_b{case.batch}.onnx")
        hwm_ok = reset_hwm()
        before = rss_kib().get("VmRSS")
        res = export_onnx(model_cpu, path, ratio=1.0 if case.ratio is None else case.ratio, batch=case.batch,
                          size=case.size, seed=spec.seed)
        self.export = res
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads() if device.type == "cpu" else 0
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
        reset_hwm()
        before = rss_kib().get("VmRSS", before)
        self.sess = ort.InferenceSession(path, sess_options=so, providers=providers)
        self.name = self.sess.get_inputs()[0].name
        self.xs = [x.detach().float().cpu().numpy() for x in xs]
        self.sess.run(None, {self.name: self.xs[0]})
        after = rss_kib().get("VmHWM")
        self.rss_delta_mib = (after - before) / 1024 if hwm_ok and after and before else None
        ref = self.sess.run(None, {self.name: res.example_clip.numpy()})[0]
        self.check = float(np.abs(ref - res.reference_logits.numpy()).max())
        self.providers = self.sess.get_providers()
        self.i = 0
        os.remove(path)

    def run(self) -> None:
        self.sess.run(None, {self.name: self.xs[self.i % len(self.xs)]})
        self.i += 1


def reference_logits(model, case: Case, x: torch.Tensor, cache: dict) -> torch.Tensor:
    """Eager masked (official) logits of ``x`` at the case's ratio: what every torch backend/mode must reproduce."""
    key = (case.model, case.frames, case.precision, case.batch, case.size, case.ratio)
    if key not in cache:
        if case.backend != DENSE:
            model.configure(execution="masked", selection="topk", ratio=1.0 if case.ratio is None else case.ratio,
                            kernels="torch")
        with torch.no_grad():
            cache[key] = model(x).logits.float().cpu()
    return cache[key]


def torch_memory(model, runner: TorchRunner, case: Case, device: torch.device, x: torch.Tensor) -> dict:
    """Weights, constant maps and input MiB; CUDA allocator peak over one forward; live-activation peak (eager)."""
    _configure(model, case)
    w, c = state_bytes(model)
    mem = {"weights_mib": w / MIB, "constant_maps_mib": c / MIB, "input_mib": x.numel() * x.element_size() / MIB}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        runner.run()
        torch.cuda.synchronize(device)
        mem["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
        mem["cuda_peak_over_resident_mib"] = (torch.cuda.max_memory_allocated(device) - base) / MIB
    if case.mode == "eager":
        with torch.no_grad():
            mem["peak_activation_mib"] = live_tensor_peak(lambda: runner.fn(x)) / MIB
        mem["method"] = "peak of live tensor bytes created in one forward (dispatch-mode tracking)" + \
            ("; CUDA allocator peak over one forward" if device.type == "cuda" else "")
    return mem
