"""Write a Triton Inference Server model repository for an afnet_edge model (``afnet-edge serve --triton-repo``).

Layout (docs/serving.md)::

    REPO/
      afnet_<model>/          TensorRT plan (platform tensorrt_plan) — when an engine is given; GPU servers
        1/model.plan
        <plugin library>      the engine's plugin library, loaded by the TensorRT backend's `plugins=` option
        deepstream/           nvinferserver + nvinfer configs for the engine (documented, not runnable here)
      afnet_<model>_onnx/     ONNX Runtime backend, dynamic-batch export (CPU or GPU servers)
      afnet_<model>_torch/    Python backend running the PyTorch compact path (CPU servers)
      preprocess/             Python backend: video file bytes -> T sampled, normalised frames (predict's sampling)
      postprocess/            Python backend: logits (+ masks) -> top-k labels, probabilities, kept frames
      video_classify/         ensemble: VIDEO -> preprocess -> classifier -> postprocess

Input and output names and shapes come from the export metadata (``clip`` ``(T, 3, H, W)`` → ``logits`` ``(C,)``,
batch first) and, for the engine, from its sidecar (static batch or the optimisation profile's range).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

from afnet_edge.video import CROP_SIZE, SCALE_SIZE

#: Default dynamic-batching settings of the classifiers (a CPU server: small batches, short queue delay).
DEFAULT_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 5000
ENSEMBLE = "video_classify"
PREPROCESS = "preprocess"
POSTPROCESS = "postprocess"

_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
           "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "bytes": "TYPE_STRING"}


def classifier_names(model: str) -> dict[str, str]:
    """Model names in the repository: ``{"trt": "afnet_<m>", "onnx": "afnet_<m>_onnx", "torch": "afnet_<m>_torch"}``
    (``<m>`` is the registered name without a leading ``af_``)."""
    base = "afnet_" + (model[3:] if model.startswith("af_") else model)
    return {"trt": base, "onnx": base + "_onnx", "torch": base + "_torch"}


@dataclass
class Tensor:
    """One model input or output: name, Triton data type (``TYPE_FP32`` ...), dims without the batch axis."""

    name: str
    dtype: str
    dims: list[int]
    optional: bool = False


@dataclass
class ModelConfig:
    """What goes into one ``config.pbtxt`` (rendered by :func:`render_config`)."""

    name: str
    max_batch_size: int
    inputs: list[Tensor]
    outputs: list[Tensor]
    backend: str | None = None
    platform: str | None = None
    preferred_batch_sizes: list[int] = field(default_factory=list)
    queue_delay_us: int | None = None
    instance_kind: str | None = "KIND_CPU"
    instance_count: int = 1
    parameters: dict[str, str] = field(default_factory=dict)
    ensemble_steps: list[dict] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    default_model_filename: str | None = None


def _q(text: str) -> str:
    return json.dumps(str(text))  # a protobuf text-format string literal (JSON escaping is a subset)


def _tensor_text(t: Tensor) -> str:
    dims = ", ".join(str(int(d)) for d in t.dims)
    opt = " optional: true" if t.optional else ""
    return f"  {{ name: {_q(t.name)} data_type: {t.dtype} dims: [ {dims} ]{opt} }}"


def render_config(cfg: ModelConfig) -> str:
    """The protobuf text (``config.pbtxt``) of ``cfg``; :func:`validate_config_text` parses it back."""
    lines = [f"name: {_q(cfg.name)}"]
    if cfg.platform:
        lines.append(f"platform: {_q(cfg.platform)}")
    if cfg.backend:
        lines.append(f"backend: {_q(cfg.backend)}")
    if cfg.default_model_filename:
        lines.append(f"default_model_filename: {_q(cfg.default_model_filename)}")
    lines.append(f"max_batch_size: {int(cfg.max_batch_size)}")
    lines.append("input [\n" + ",\n".join(_tensor_text(t) for t in cfg.inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor_text(t) for t in cfg.outputs) + "\n]")
    if cfg.queue_delay_us is not None:
        pref = ", ".join(str(b) for b in cfg.preferred_batch_sizes)
        lines.append("dynamic_batching {\n" + (f"  preferred_batch_size: [ {pref} ]\n" if pref else "")
                     + f"  max_queue_delay_microseconds: {int(cfg.queue_delay_us)}\n}}")
    if cfg.instance_kind:
        prof = (" profile: [ " + ", ".join(_q(p) for p in cfg.profiles) + " ]") if cfg.profiles else ""
        lines.append(f"instance_group [ {{ kind: {cfg.instance_kind} count: {int(cfg.instance_count)}{prof} }} ]")
    if cfg.ensemble_steps:
        steps = []
        for s in cfg.ensemble_steps:
            ins = " ".join(f"input_map {{ key: {_q(k)} value: {_q(v)} }}" for k, v in s["input_map"].items())
            outs = " ".join(f"output_map {{ key: {_q(k)} value: {_q(v)} }}" for k, v in s["output_map"].items())
            steps.append(f"  {{ model_name: {_q(s['model_name'])} model_version: -1\n    {ins}\n    {outs} }}")
        lines.append("ensemble_scheduling {\n step [\n" + ",\n".join(steps) + "\n ]\n}")
    for k, v in cfg.parameters.items():
        lines.append(f"parameters {{ key: {_q(k)} value: {{ string_value: {_q(v)} }} }}")
    return "\n".join(lines) + "\n"


def validate_config_text(text: str):
    """Parse ``config.pbtxt`` text into Triton's ``ModelConfig`` protobuf (from ``tritonclient[grpc]``) and check
    what Triton checks first: a name, inputs/outputs with names, types and dims, dynamic-batching sizes within
    ``max_batch_size``. Returns the message; raises ValueError naming the problem."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ImportError("validating a Triton model config needs tritonclient[grpc]: "
                          "pip install -e .[serve]") from None
    msg = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt: {exc}") from None
    if not msg.name:
        raise ValueError("config.pbtxt: no model name")
    if not (msg.backend or msg.platform):
        raise ValueError(f"config.pbtxt of {msg.name}: neither backend nor platform")
    for t in list(msg.input) + list(msg.output):
        if not t.name or t.data_type == model_config_pb2.TYPE_INVALID or not t.dims:
            raise ValueError(f"config.pbtxt of {msg.name}: tensor {t.name!r} lacks a name, data type or dims")
    for b in msg.dynamic_batching.preferred_batch_size:
        if msg.max_batch_size <= 0 or b > msg.max_batch_size:
            raise ValueError(f"config.pbtxt of {msg.name}: preferred batch size {b} > max_batch_size "
                             f"{msg.max_batch_size}")
    return msg


def _write_model(repo: str, cfg: ModelConfig, files: dict[str, str | bytes] | None = None) -> str:
    text = render_config(cfg)
    d = os.path.join(repo, cfg.name)
    os.makedirs(os.path.join(d, "1"), exist_ok=True)
    with open(os.path.join(d, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(text)
    for rel, content in (files or {}).items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
    return d


def _checkout_root() -> str:
    """Folder whose ``afnet_edge`` package the server's Python models import (the one writing the repository)."""
    import afnet_edge
    return os.path.dirname(os.path.dirname(os.path.abspath(afnet_edge.__file__)))


def _batching(max_batch: int, preferred: list[int] | None) -> list[int]:
    sizes = sorted({b for b in (preferred or [max(1, max_batch // 2), max_batch]) if 1 <= b <= max_batch})
    return sizes


def onnx_config(meta: dict, name: str, max_batch: int = DEFAULT_MAX_BATCH,
                queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, instances: int = 1,
                preferred: list[int] | None = None) -> ModelConfig:
    """ONNX Runtime model from export metadata (:func:`afnet_edge.export.onnx_export.read_metadata`); the export
    must have a dynamic batch axis (``batch == "dynamic"``)."""
    from afnet_edge.export.onnx_export import INPUT_NAME, OUTPUT_NAME

    if meta.get("batch") != "dynamic":
        raise ValueError(f"the ONNX export has a static batch ({meta.get('batch')}): Triton's dynamic batching needs "
                         f"`afnet-edge export --dynamic-batch`")
    t, h, w = int(meta["num_frames"]), int(meta["height"]), int(meta["width"])
    return ModelConfig(name=name, backend="onnxruntime", max_batch_size=max_batch,
                       inputs=[Tensor(INPUT_NAME, "TYPE_FP32", [t, 3, h, w])],
                       outputs=[Tensor(OUTPUT_NAME, "TYPE_FP32", [int(meta["num_classes"])])],
                       preferred_batch_sizes=_batching(max_batch, preferred), queue_delay_us=queue_delay_us,
                       instance_count=instances, default_model_filename="model.onnx")


def tensorrt_config(sidecar: dict, name: str, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
                    instances: int = 1) -> ModelConfig:
    """TensorRT plan model from an engine sidecar (:func:`afnet_edge.export.engine.read_sidecar`): a static batch B
    gives ``max_batch_size: 0`` and full dims ``(B, T, 3, H, W)``; a dynamic engine gives ``max_batch_size`` = the
    profile's maximum, preferred batch sizes = the profile's optimum and maximum, and profile ``"0"``."""
    dynamic = sidecar.get("batch") == "dynamic"

    def tensors(items):
        out = []
        for item in items:
            dims = [int(d) for d in item["shape"]]
            dtype = _DTYPES.get(str(item.get("dtype", "float32")).lower(), "TYPE_FP32")
            out.append(Tensor(item["name"], dtype, dims[1:] if dynamic else dims))
        return out

    cfg = ModelConfig(name=name, platform="tensorrt_plan", max_batch_size=int(sidecar["max_batch"]) if dynamic else 0,
                      inputs=tensors(sidecar["inputs"]), outputs=tensors(sidecar["outputs"]), instance_kind="KIND_GPU",
                      instance_count=instances, default_model_filename="model.plan")
    if dynamic:
        hi = int(sidecar["max_batch"])
        cfg.preferred_batch_sizes = _batching(hi, [int(sidecar.get("example_batch") or 1), hi])
        cfg.queue_delay_us = queue_delay_us
        cfg.profiles = ["0"]
    return cfg


def deepstream_configs(sidecar: dict, triton_name: str, repo: str, labels_file: str) -> dict[str, str]:
    """``config_infer_triton.txt`` (Gst-nvinferserver, the engine in this Triton repository) and
    ``config_infer.txt`` (Gst-nvinfer, the engine directly). A clip model takes T frames per inference: in DeepStream
    the clip is assembled by Gst-nvdspreprocess's sequence custom library (``input-tensor-from-meta``), which
    must use predict's normalisation (mean/std below) and T = ``num_frames``. Not runnable here (no DeepStream)."""
    from afnet_edge.video import MEAN, STD

    t, h, w = sidecar["num_frames"], sidecar["height"], sidecar["width"]
    batch = sidecar["max_batch"] if sidecar.get("batch") == "dynamic" else sidecar["batch"]
    scale = 1.0 / (255.0 * sum(STD) / 3.0)
    offsets = ", ".join(f"{m * 255.0:.3f}" for m in MEAN)
    nvinferserver = f"""# Gst-nvinferserver: afnet_edge engine served from the Triton repository (written by afnet-edge serve)
# clip (B, {t}, 3, {h}, {w}) comes from Gst-nvdspreprocess (sequence library, {t} frames, tensor name "clip").
infer_config {{
  unique_id: 1
  gpu_ids: [0]
  max_batch_size: {batch}
  backend {{
    inputs: [ {{ name: "clip" }} ]
    outputs: [ {{ name: "logits" }} ]
    triton {{
      model_name: "{triton_name}"
      version: -1
      model_repo {{ root: "{os.path.abspath(repo)}" strict_model_config: true }}
    }}
  }}
  input_tensor_from_meta {{ is_first_dim_batch: true }}
  postprocess {{ labelfile_path: "{labels_file}" classification {{ threshold: 0.0 }} }}
}}
input_control {{ process_mode: PROCESS_MODE_FULL_FRAME interval: 0 }}
"""
    nvinfer = f"""# Gst-nvinfer: the afnet_edge engine directly (written by afnet-edge serve); documented, not run here.
[property]
gpu-id=0
model-engine-file={sidecar.get('engine', 'model.plan')}
labelfile-path={labels_file}
batch-size={batch}
# 0=FP32 2=FP16: the engine was built {sidecar.get('precision', 'fp32')}
network-mode={2 if sidecar.get('precision') == 'fp16' else 0}
# classifier; the clip tensor ({t} frames) comes from Gst-nvdspreprocess
network-type=1
input-tensor-from-meta=1
process-mode=1
output-blob-names=logits
classifier-threshold=0.0
# preprocessing the nvdspreprocess library must apply (predict's): RGB, resize 320x240, centre crop {h}x{w},
# (x - mean*255) * scale with per-channel mean {offsets} and std {", ".join(f"{s:.3f}" for s in STD)}
net-scale-factor={scale:.8f}
offsets={offsets.replace(", ", ";")}
model-color-format=0
"""
    return {"config_infer_triton.txt": nvinferserver, "config_infer.txt": nvinfer}


@dataclass
class RepositorySummary:
    """What :func:`write_repository` wrote: the folder, the model names, the classifier the ensemble uses."""

    path: str
    models: list[str]
    ensemble_classifier: str | None
    notes: list[str] = field(default_factory=list)


def write_repository(repo: str, model, *, checkpoint: str | None = None, size: int = CROP_SIZE,
                     scale_size: tuple[int, int] | None = SCALE_SIZE, topk: int = 5,
                     labels: list[str] | None = None, torch_model: bool = True, onnx: bool = False,
                     engine: str | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                     queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, instances: int = 1, short: str = "official",
                     onnx_ratio: float = 0.5, options: dict | None = None, overwrite: bool = False,
                     torch_threads: int = 0) -> RepositorySummary:
    """Write the Triton model repository ``repo`` for ``model`` (a built afnet_edge model, weights loaded).

    Args:
        repo: output folder; must not exist or be empty unless ``overwrite``.
        model: the model (its ``arch``, T, classes, current configuration: execution, selection, ratio).
        checkpoint: the file its weights came from (recorded; the weights are saved into the repository anyway).
        size: crop side S of the clips (``predict --size``).
        scale_size: (height, width) the frames are resized to before the crop (predict's; None: no resize).
        topk: classes the ensemble returns.
        labels: class names (default ``class i``).
        torch_model: write ``afnet_<m>_torch`` (Python backend, PyTorch compact path).
        onnx: export a dynamic-batch ONNX file (``topk`` selection, ``onnx_ratio``) into ``afnet_<m>_onnx``.
        engine: a TensorRT engine built by ``afnet-edge export --trt`` (its sidecar next to it) → ``afnet_<m>``.
        max_batch: ``max_batch_size`` of the batching models; queue_delay_us: dynamic batching's queue delay;
        instances: instances per classifier.
        short: predict's policy for short videos.
        options: the family's ``create_model`` options (e.g. ``{"tsm": False}``) the server must rebuild with.
        torch_threads: torch threads of the PyTorch classifier's instances (0: torch's default).

    Returns:
        :class:`RepositorySummary`.
    """
    from afnet_edge.checkpoint import save_checkpoint
    from afnet_edge.predict import navigation_names

    if not (torch_model or onnx or engine):
        raise ValueError("write_repository: nothing to write: enable the torch or onnx classifier or give an engine")
    from afnet_edge.export.onnx_export import export_adapter

    frames_in = export_adapter(model).input_frames
    if frames_in is not None and int(frames_in(model)) != int(model.num_frames):
        raise ValueError(f"--triton-repo: {model.arch} takes two independently sampled clips (glance and focus "
                         f"frames); the repository's preprocess samples one clip — serve a one-clip model")
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"--max-batch must be a positive integer, got {max_batch!r}")
    if os.path.isdir(repo) and os.listdir(repo) and not overwrite:
        raise ValueError(f"--triton-repo: '{repo}' exists and is not empty (pass --overwrite to replace it)")
    if overwrite and os.path.isdir(repo):
        shutil.rmtree(repo)
    os.makedirs(repo, exist_ok=True)
    arch = model.arch
    T, C = int(model.num_frames), int(model.num_classes)
    labels = labels or [f"class {i}" for i in range(C)]
    if len(labels) != C:
        raise ValueError(f"--labels: {len(labels)} names, the model has {C} classes")
    names = classifier_names(arch)
    nav = navigation_names(model)
    written, notes = [], []
    root = _checkout_root()
    common = {"afnet_edge_path": root}
    clip_in = Tensor("clip", "TYPE_FP32", [T, 3, size, size])
    logits_out = Tensor("logits", "TYPE_FP32", [C])
    masks_out = Tensor("masks", "TYPE_FP32", [len(nav), T])
    from afnet_edge.serve.triton_models import MODEL_PY

    ensemble_classifier, with_masks = None, False
    if engine:
        from afnet_edge.export.engine import read_sidecar

        side = read_sidecar(engine)
        if side.get("model") != arch or side.get("num_classes") != C or side.get("num_frames") != T:
            raise ValueError(f"--engine: {engine} was built for {side.get('model')} T={side.get('num_frames')} "
                             f"{side.get('num_classes')} classes, not {arch} T={T} {C} classes")
        cfg = tensorrt_config(side, names["trt"], queue_delay_us, instances)
        files: dict[str, str | bytes] = {}
        d = _write_model(repo, cfg, files)
        shutil.copyfile(engine, os.path.join(d, "1", "model.plan"))
        plugin = side.get("plugin")
        if plugin:
            from afnet_edge.export.trt_backend import find_plugin_library

            lib = find_plugin_library(None)
            if lib:
                shutil.copyfile(lib, os.path.join(d, os.path.basename(lib)))
                notes.append(f"{names['trt']} needs its plugins: tritonserver --backend-config=tensorrt,plugins="
                             f"<repo>/{names['trt']}/{os.path.basename(lib)}")
            else:
                notes.append(f"{names['trt']}: the engine uses plugins but libafnet_edge_trt_plugins.so was not found;"
                             f" copy it into {d} and pass --backend-config=tensorrt,plugins=<that file>")
        ds = os.path.join(d, "deepstream")
        os.makedirs(ds, exist_ok=True)
        for fname, text in deepstream_configs(side, names["trt"], repo, os.path.join(repo, POSTPROCESS, "1",
                                                                                   "labels.txt")).items():
            with open(os.path.join(ds, fname), "w", encoding="utf-8") as f:
                f.write(text)
        written.append(names["trt"])
        if side.get("batch") == "dynamic":
            ensemble_classifier = names["trt"]
        else:
            notes.append(f"{names['trt']} has a static batch: it is served alone (max_batch_size 0), not in the "
                         f"ensemble; rebuild with --dynamic-batch --max-batch N to batch it")
    if onnx:
        from afnet_edge.export.onnx_export import export_onnx, read_metadata

        d = os.path.join(repo, names["onnx"], "1")
        os.makedirs(d, exist_ok=True)
        export_onnx(model, os.path.join(d, "model.onnx"), ratio=onnx_ratio, batch=1, dynamic_batch=True, size=size,
                    checkpoint=checkpoint)
        meta = read_metadata(os.path.join(d, "model.onnx"))
        cfg = onnx_config(meta, names["onnx"], max_batch, queue_delay_us, instances)
        _write_model(repo, cfg)
        written.append(names["onnx"])
        ensemble_classifier = names["onnx"]
    if torch_model:
        config = model.config() if hasattr(model, "config") else {}
        params = {**common, "afnet_edge_role": "classifier", "model": arch, "num_frames": str(T),
                  "num_classes": str(C), "execution": str(config.get("execution", "compact")),
                  "selection": str(config.get("selection", "threshold")), "ratio": str(config.get("ratio", 0.5)),
                  "options": json.dumps(options or {}), "checkpoint": "model.pth", "masks": "1" if nav else "0",
                  "torch_threads": str(int(torch_threads)),
                  "source_checkpoint": os.path.basename(checkpoint) if checkpoint else "random weights"}
        cfg = ModelConfig(name=names["torch"], backend="python", max_batch_size=max_batch, inputs=[clip_in],
                          outputs=[logits_out] + ([masks_out] if nav else []),
                          preferred_batch_sizes=_batching(max_batch, None), queue_delay_us=queue_delay_us,
                          instance_count=instances, parameters=params)
        d = _write_model(repo, cfg, {"1/model.py": MODEL_PY})
        save_checkpoint(model, os.path.join(d, "1", "model.pth"))
        written.append(names["torch"])
        ensemble_classifier, with_masks = names["torch"], bool(nav)

    pre = ModelConfig(name=PREPROCESS, backend="python", max_batch_size=max_batch,
                      inputs=[Tensor("VIDEO", "TYPE_STRING", [1])],
                      outputs=[Tensor("CLIP", "TYPE_FP32", [T, 3, size, size]),
                               Tensor("FRAME_INDICES", "TYPE_INT32", [T]), Tensor("VIDEO_FRAMES", "TYPE_INT32", [1])],
                      instance_count=instances,
                      parameters={**common, "afnet_edge_role": "preprocess", "num_frames": str(T), "size": str(size),
                                  "scale_size": json.dumps(list(scale_size) if scale_size else None),
                                  "short": short})
    _write_model(repo, pre, {"1/model.py": MODEL_PY})
    written.append(PREPROCESS)
    k = min(int(topk), C)
    post_in = [logits_out, Tensor("FRAME_INDICES", "TYPE_INT32", [T])] + ([masks_out] if with_masks else [])
    post_out = [Tensor("CLASS_IDS", "TYPE_INT32", [k]), Tensor("SCORES", "TYPE_FP32", [k]),
                Tensor("LABELS", "TYPE_STRING", [k])]
    if with_masks:
        post_out += [Tensor("SELECTED", "TYPE_INT32", [len(nav), T]), Tensor("NAV_MODULES", "TYPE_STRING", [len(nav)])]
    post = ModelConfig(name=POSTPROCESS, backend="python", max_batch_size=max_batch, inputs=post_in, outputs=post_out,
                       instance_count=1,
                       parameters={**common, "afnet_edge_role": "postprocess", "topk": str(k), "labels": "labels.txt",
                                   "nav_modules": json.dumps(nav if with_masks else [])})
    _write_model(repo, post, {"1/model.py": MODEL_PY, "1/labels.txt": "\n".join(labels) + "\n"})
    written.append(POSTPROCESS)

    if ensemble_classifier:
        steps = [
            {"model_name": PREPROCESS, "input_map": {"VIDEO": "VIDEO"},
             "output_map": {"CLIP": "_clip", "FRAME_INDICES": "FRAME_INDICES", "VIDEO_FRAMES": "VIDEO_FRAMES"}},
            {"model_name": ensemble_classifier, "input_map": {"clip": "_clip"},
             "output_map": {"logits": "LOGITS", **({"masks": "_masks"} if with_masks else {})}},
            {"model_name": POSTPROCESS,
             "input_map": {"logits": "LOGITS", "FRAME_INDICES": "FRAME_INDICES",
                           **({"masks": "_masks"} if with_masks else {})},
             "output_map": {o.name: o.name for o in post_out}},
        ]
        ens_out = [Tensor("LOGITS", "TYPE_FP32", [C]), Tensor("FRAME_INDICES", "TYPE_INT32", [T]),
                   Tensor("VIDEO_FRAMES", "TYPE_INT32", [1])] + post_out
        ens = ModelConfig(name=ENSEMBLE, platform="ensemble", max_batch_size=max_batch,
                          inputs=[Tensor("VIDEO", "TYPE_STRING", [1])], outputs=ens_out, instance_kind=None,
                          ensemble_steps=steps)
        _write_model(repo, ens)
        written.append(ENSEMBLE)
    return RepositorySummary(path=repo, models=written, ensemble_classifier=ensemble_classifier, notes=notes)
