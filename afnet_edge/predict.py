"""``afnet-edge predict``: classify a real video file and show which frames the focal branch processed.

The clip is sampled and preprocessed as the official validation does (spec §10: resize 240×320, centre crop 224,
middle frame of each of T segments); see :mod:`afnet_edge.video`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass

import torch

from .layers.navigation import Navigation


@dataclass
class Prediction:
    """``top``: [(class index, name, probability)], best first; ``selected``: {navigation module: [video frame
    indices it selected]}; ``frame_indices``: the T sampled 0-based video frames; ``masks``: (T,) per module."""

    top: list
    selected: dict
    frame_indices: list
    masks: list
    clip: torch.Tensor


def navigation_names(model: torch.nn.Module) -> list[str]:
    """Names of the navigation modules in model order (the order of ``model(clip).masks``)."""
    return [n.removeprefix("base_model.") for n, m in model.named_modules() if isinstance(m, Navigation)]


def check_finite(clip: torch.Tensor, what: str) -> None:
    """Reject NaN/Inf input (done here, not in the model forward, which must not sync the device)."""
    if not bool(torch.isfinite(clip).all()):
        raise ValueError(f"{what}: the decoded clip contains NaN or Inf values")


def read_labels(path: str | None, num_classes: int) -> list[str]:
    if path is None:
        return [f"class {i}" for i in range(num_classes)]
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != num_classes:
        raise ValueError(f"--labels: '{path}' has {len(names)} names, the model has {num_classes} classes")
    return names


def predict_clip(model, clip: torch.Tensor, frame_indices: list, labels: list, topk: int = 5) -> Prediction:
    """Run ``model`` on one preprocessed clip ``(T, 3, H, W)``."""
    check_finite(clip, "VIDEO")
    with torch.no_grad():
        out = model(clip.unsqueeze(0).to(next(model.parameters()).device))
    prob = out.logits.float().softmax(-1)[0].cpu()
    k = min(topk, prob.numel())
    p, idx = prob.topk(k)
    top = [(int(i), labels[int(i)], float(v)) for v, i in zip(p, idx)]
    masks = [m[0].detach().float().cpu() for m in out.masks]
    names = navigation_names(model)
    selected = {n: [frame_indices[t] for t in range(len(frame_indices)) if m[t] > 0.5] for n, m in zip(names, masks)}
    return Prediction(top=top, selected=selected, frame_indices=list(frame_indices), masks=masks, clip=clip)


def contact_sheet(pred: Prediction, path: str, thumb: int = 112) -> None:
    """PNG: the T sampled frames in a row; below, one row per navigation module with a filled cell where the focal
    branch processed that frame. Written atomically."""
    from PIL import Image, ImageDraw

    from .video import denormalize_frames
    frames = denormalize_frames(pred.clip)
    T = len(frames)
    names = list(pred.selected)
    label_w, cell_h, pad, head_h = 150, 14, 4, 18
    width = label_w + T * (thumb + pad) + pad
    height = head_h + thumb + pad + max(1, len(names)) * (cell_h + 2) + 24
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((pad, 2), "sampled frames; green = processed by the focal branch", fill=(0, 0, 0))
    for t, fr in enumerate(frames):
        x = label_w + pad + t * (thumb + pad)
        img.paste(Image.fromarray(fr).resize((thumb, thumb)), (x, head_h))
        draw.text((x + 2, head_h + 2), f"#{pred.frame_indices[t]}", fill=(255, 255, 0))
    y0 = head_h + thumb + pad
    for l, (name, m) in enumerate(zip(names, pred.masks)):
        y = y0 + l * (cell_h + 2)
        draw.text((pad, y), name, fill=(0, 0, 0))
        for t in range(T):
            x = label_w + pad + t * (thumb + pad)
            on = bool(m[t] > 0.5)
            draw.rectangle([x, y, x + thumb - 1, y + cell_h - 1], fill=(40, 170, 70) if on else (225, 225, 225))
    if names:
        share = sum(float(m.mean()) for m in pred.masks) / len(pred.masks)
        draw.text((pad, height - 18), f"focal frames processed: {share:.0%} of (frame, module) pairs", fill=(0, 0, 0))
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"--save-png: directory '{d}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp_sheet_", suffix=".png", dir=d)
    os.close(fd)
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cmd_predict(args) -> int:
    from tqdm import tqdm

    from .cli_args import build_model
    from .video import load_clip
    if not args.checkpoint:
        print("afnet-edge: warning: no --checkpoint given, the weights are RANDOM: the classes below mean nothing "
              "(the frame selection shows the mechanics only)", file=sys.stderr)
    with tqdm(total=3, desc="predict", unit="step", file=sys.stderr, disable=args.json or None) as bar:
        bar.set_postfix_str("building model")
        model = build_model(args, execution=args.execution, selection=args.selection, ratio=args.ratio)
        bar.update()
        bar.set_postfix_str("decoding video")
        clip, info, indices = load_clip(args.video, model.num_frames, size=args.size)
        bar.update()
        bar.set_postfix_str("running model")
        labels = read_labels(args.labels, model.num_classes)
        pred = predict_clip(model, clip, indices, labels, args.topk)
        bar.update()
    if args.save_png:
        contact_sheet(pred, args.save_png)
    if args.json:
        print(json.dumps({"video": args.video, "video_frames": info.num_frames, "sampled_frames": indices,
                          "top": [{"class": c, "name": n, "prob": p} for c, n, p in pred.top],
                          "selected": pred.selected, "random_weights": not args.checkpoint}, indent=2))
        return 0
    print(f"{args.video}: {info.num_frames} frames, sampled {indices}")
    print(f"top-{len(pred.top)}:")
    for c, n, p in pred.top:
        print(f"  {p:7.2%}  {n} ({c})")
    if pred.selected:
        print("frames processed by the focal branch, per navigation module:")
        for name, frames in pred.selected.items():
            print(f"  {name:22s} {frames}")
    if args.save_png:
        print(f"contact sheet written to {args.save_png}")
    return 0


def register(sub) -> None:
    from .cli_args import add_model_args, positive_int, ratio_arg
    p = sub.add_parser("predict", help="classify a video file and show the frames the focal branch processed")
    p.add_argument("video", metavar="VIDEO", help="video file (any format FFmpeg decodes)")
    add_model_args(p)
    p.add_argument("--selection", choices=("threshold", "topk", "gumbel"), default="threshold",
                   help="frame selection rule (default: threshold)")
    p.add_argument("--ratio", type=ratio_arg, default=0.5, help="kept fraction for --selection topk (default 0.5)")
    p.add_argument("--execution", choices=("compact", "masked"), default="compact", help="(default: compact)")
    p.add_argument("--size", type=positive_int, default=224, help="crop size (default: 224)")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to show (default: 5)")
    p.add_argument("--labels", default=None, help="text file with one class name per line")
    p.add_argument("--save-png", default=None, metavar="PNG", help="write a contact sheet of the sampled frames")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_predict)
