"""``afnet-edge serve`` and ``afnet-edge classify`` (registered through ``afnet_edge.cli.COMMAND_MODULES``).

    afnet-edge serve --model af_mobilenetv3 --checkpoint ckpt.pth --triton-repo repo/      # write the repository
    afnet-edge serve --triton-repo repo/ --run --http-port 8000 --grpc-port 8001           # serve it (Ctrl-C stops)
    afnet-edge classify --server 127.0.0.1:8000 clip.mp4                                   # what predict prints
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from afnet_edge.cli_args import add_model_args, build_model, nonneg_int, positive_int, ratio_arg
from afnet_edge.models.registry import flag_options
from afnet_edge.video import CROP_SIZE, SHORT_POLICIES

from .repository import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_DELAY_US, ENSEMBLE

FORMATS = ("torch", "onnx")


def _formats(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in FORMATS]
    if not items or bad:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(FORMATS)}, got {text!r}")
    return items


def _is_repository(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, d, "config.pbtxt")) for d in os.listdir(path))


def _write(args) -> None:
    from afnet_edge.demo_model import demo_card
    from afnet_edge.predict import clip_geometry, read_labels

    from .repository import write_repository

    if args.labels is not None and not os.path.isfile(args.labels):
        raise FileNotFoundError(f"--labels: no such file '{args.labels}'")
    if args.engine is not None and not os.path.isfile(args.engine):
        raise FileNotFoundError(f"--engine: no such file '{args.engine}'")
    model = build_model(args, execution=args.execution, selection=args.selection, ratio=args.ratio)
    card = demo_card() if args.demo_model else None
    size, scale = clip_geometry(args.size, card)    # predict's: the demo model sees whole frames at its size
    if args.weights_note:
        print(f"afnet-edge: {args.weights_note}", file=sys.stderr)
    if args.random_weights:
        print("afnet-edge: warning: --random-weights: the served weights are RANDOM, the classes mean nothing",
              file=sys.stderr)
    labels = read_labels(args.labels, model.num_classes) if args.labels else None
    if card and labels is None:
        labels = list(card["class_names"])
    summary = write_repository(args.triton_repo, model, checkpoint=args.checkpoint, size=size, scale_size=scale,
                               topk=args.topk,
                               labels=labels, torch_model="torch" in args.formats, onnx="onnx" in args.formats,
                               engine=args.engine, max_batch=args.max_batch, queue_delay_us=args.queue_delay_us,
                               instances=args.instances, short=args.short, onnx_ratio=args.onnx_ratio,
                               options=flag_options(args.model, vars(args)), overwrite=args.overwrite,
                               torch_threads=args.torch_threads)
    print(f"wrote Triton model repository {summary.path}: {', '.join(summary.models)}"
          + (f" (ensemble {ENSEMBLE} -> {summary.ensemble_classifier})" if summary.ensemble_classifier else ""))
    for note in summary.notes:
        print(f"note: {note}")


def _cmd_serve(args) -> int:
    from .server import TritonServer, make_stub_env, run_until_signal

    if args.make_stub_env:
        path = make_stub_env(args.make_stub_env)
        print(f"stub environment ready: {path} (pass --stub-env {path} or set AFNET_EDGE_TRITON_STUB_ENV)")
        return 0
    if not args.triton_repo:
        raise ValueError("give --triton-repo DIR (the repository to write and/or --run)")
    wants_write = args.model is not None or args.checkpoint is not None or args.engine is not None \
        or args.random_weights or not _is_repository(args.triton_repo) or args.overwrite
    if wants_write:
        _write(args)
    if not args.run:
        return 0
    server = TritonServer(args.triton_repo, http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port, stub_env=args.stub_env, log_verbose=args.log_verbose,
                          log_path=args.log)
    return run_until_signal(server, ready_timeout_s=args.ready_timeout)


def _cmd_classify(args) -> int:
    from afnet_edge.predict import print_prediction

    from .client import classify

    pred = classify(args.server, args.video, protocol=args.protocol, model=args.model_name, timeout_s=args.timeout)
    if args.json:
        print(json.dumps({"video": args.video, "video_frames": pred.video_frames,
                          "sampled_frames": pred.frame_indices,
                          "top": [{"class": c, "name": n, "prob": p} for c, n, p in pred.top],
                          "selected": pred.selected, "real_ratio": pred.real_ratio, "logits": pred.logits},
                         indent=2))
        return 0
    print_prediction(args.video, pred.video_frames, pred.frame_indices, pred.top, pred.selected, pred.real_ratio)
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="write a Triton Inference Server model repository and/or run tritonserver on it")
    add_model_args(p, model_default=None, weights=True)
    p.add_argument("--triton-repo", default=None, metavar="DIR", help="model repository to write and/or serve")
    p.add_argument("--formats", type=_formats, default=["torch"],
                   help="classifiers to write: torch (Python backend, PyTorch compact path) and/or onnx (ONNX Runtime "
                        "backend, dynamic-batch export with topk selection) (default: torch)")
    p.add_argument("--engine", default=None, metavar="ENGINE",
                   help="TensorRT engine from `afnet-edge export --trt` (sidecar next to it): adds afnet_<model> "
                        "(tensorrt_plan) and DeepStream configs")
    p.add_argument("--selection", choices=("threshold", "topk"), default="threshold",
                   help="frame selection of the PyTorch classifier (default: threshold, as predict)")
    p.add_argument("--ratio", type=ratio_arg, default=0.5, help="kept fraction for --selection topk (default 0.5)")
    p.add_argument("--onnx-ratio", type=ratio_arg, default=0.5, help="topk ratio of the ONNX export (default 0.5)")
    p.add_argument("--execution", choices=("compact", "masked"), default="compact",
                   help="PyTorch execution (default: compact)")
    p.add_argument("--size", type=positive_int, default=None,
                   help=f"crop size (default: the demo model's own size, else {CROP_SIZE}; as predict)")
    p.add_argument("--topk", type=positive_int, default=5, help="classes the ensemble returns (default: 5)")
    p.add_argument("--labels", default=None, help="text file with one class name per line")
    p.add_argument("--short", choices=SHORT_POLICIES, default="official", help="predict's short-video policy")
    p.add_argument("--max-batch", type=positive_int, default=DEFAULT_MAX_BATCH,
                   help=f"max_batch_size of the batching models (default: {DEFAULT_MAX_BATCH})")
    p.add_argument("--queue-delay-us", type=nonneg_int, default=DEFAULT_QUEUE_DELAY_US,
                   help=f"dynamic batching queue delay in microseconds (default: {DEFAULT_QUEUE_DELAY_US})")
    p.add_argument("--instances", type=positive_int, default=1, help="instances per model (default: 1)")
    p.add_argument("--torch-threads", type=nonneg_int, default=0,
                   help="torch threads per PyTorch classifier instance (default 0: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --triton-repo")
    p.add_argument("--run", action="store_true", help="start the tritonserver of nvidia-pytriton on --triton-repo "
                                                      "(127.0.0.1; SIGINT/SIGTERM stop it)")
    p.add_argument("--http-port", type=nonneg_int, default=0, help="HTTP port (default 0: a free one)")
    p.add_argument("--grpc-port", type=nonneg_int, default=0, help="gRPC port (default 0: a free one)")
    p.add_argument("--metrics-port", type=nonneg_int, default=0, help="metrics port (default 0: a free one)")
    p.add_argument("--stub-env", default=None, metavar="DIR",
                   help="virtual environment with numpy<2 for the Python backend stub (needed when this interpreter "
                        "has numpy>=2; default: $AFNET_EDGE_TRITON_STUB_ENV)")
    p.add_argument("--make-stub-env", default=None, metavar="DIR",
                   help="create that environment (venv of this interpreter + numpy<2 from the package index) and exit")
    p.add_argument("--log", default=None, metavar="FILE", help="tritonserver log file (default: in its workspace)")
    p.add_argument("--log-verbose", type=nonneg_int, default=0, help="tritonserver --log-verbose level")
    p.add_argument("--ready-timeout", type=positive_int, default=300, help="seconds to wait for the models to load")
    p.set_defaults(func=_cmd_serve)

    c = sub.add_parser("classify", help="classify a video through a running Triton server (prints what predict prints)")
    c.add_argument("video", metavar="VIDEO", help="video file (sent as is; the server decodes and samples it)")
    c.add_argument("--server", required=True, metavar="HOST:PORT", help="Triton HTTP or gRPC endpoint")
    c.add_argument("--protocol", choices=("http", "grpc"), default="http", help="default: http")
    c.add_argument("--model-name", default=ENSEMBLE, help=f"ensemble to call (default: {ENSEMBLE})")
    c.add_argument("--timeout", type=positive_int, default=60, help="seconds (default 60)")
    c.add_argument("--json", action="store_true", help="print JSON (with the logits)")
    c.set_defaults(func=_cmd_classify)
