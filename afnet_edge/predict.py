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
from typing import Sequence

import torch

from .cli_args import add_model_args, build_model, positive_int, ratio_arg
from .demo_model import demo_card
from .layers.navigation import Navigation
from .video import CROP_SIZE, SCALE_SIZE, SHORT_POLICIES, denormalize_frames, load_clip, repeated_frames_note


@dataclass
class Prediction:
    """``top``: [(class index, name, probability)], best first; ``selected``: {navigation module: [video frame
    indices it selected]}; ``frame_indices``: the T sampled 0-based video frames; ``masks``: (T,) per module."""

    top: list
    selected: dict
    frame_indices: list
    masks: list
    clip: torch.Tensor

    @property
    def real_ratio(self) -> float:
        """Fraction of (frame, navigation module) pairs the focal branch processed (0.0 for dense models)."""
        return sum(float(m.mean()) for m in self.masks) / len(self.masks) if self.masks else 0.0


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


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)  # scalable (FreeType) with Pillow >= 10.1
    except TypeError:  # pragma: no cover - older Pillow: the small bitmap font
        return ImageFont.load_default()


def _outlined(draw, xy, text: str, font, fill=(255, 255, 255), outline=(0, 0, 0)) -> None:
    """Text readable on any frame: light letters with a dark outline."""
    try:
        draw.text(xy, text, font=font, fill=fill, stroke_width=2, stroke_fill=outline)
    except (TypeError, ValueError, OSError):  # pragma: no cover - fonts without stroke support
        x, y = xy
        for dx, dy in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, 1), (1, 0), (0, -1), (-1, 0)):
            draw.text((x + dx, y + dy), text, font=font, fill=outline)
        draw.text(xy, text, font=font, fill=fill)


def aspect_note(source_hw: tuple[int, int] | None, scale_size: tuple[int, int] | None = SCALE_SIZE,
                crop: int = CROP_SIZE) -> str | None:
    """A sentence saying the frames were resized without keeping their aspect ratio, or None when they were not
    (``source_hw``: decoded frame (height, width); ``scale_size``: the (height, width) they were resized to)."""
    if source_hw is None or scale_size is None:
        return None
    (h, w), (sh, sw) = source_hw, scale_size
    if (h, w) == (sh, sw) or abs((w / h) / (sw / sh) - 1.0) <= 0.01:
        return None
    return (f"frames resized {w}x{h} -> {sw}x{sh} WITHOUT keeping the aspect ratio (the official preprocessing), "
            f"then centre-cropped {crop}x{crop}")


def contact_sheet(pred: Prediction, path: str, thumb: int = 112, *, title: str | None = None,
                  notes: Sequence[str] = (), frame_marks: Sequence[str] | None = None) -> None:
    """Write a PNG (atomically): a header with ``title`` (say the video, the model and the checkpoint or "random
    weights"), the top classes with their names, the real ratio and ``notes``; the T sampled frames in a row with
    outlined frame numbers; below, one row per navigation module with a filled cell where the focal branch processed
    that frame.

    Args:
        pred: the :class:`Prediction` of :func:`predict_clip` (``pred.clip`` is ``(T, 3, H, W)``, normalised).
        path: output ``.png``; its directory must exist.
        thumb: side of each frame thumbnail in pixels.
        title: first header line.
        notes: further header lines (e.g. :func:`aspect_note`, a short-video note).
        frame_marks: optional text per sampled frame, drawn outlined in red at the bottom of its thumbnail (e.g.
            ``"distractor"`` where the demo knows a frame carries no information); ``""`` for none.
    """
    from PIL import Image, ImageDraw

    frames = denormalize_frames(pred.clip)
    T = len(frames)
    if frame_marks is not None and len(frame_marks) != T:
        raise ValueError(f"frame_marks: expected {T} entries (one per sampled frame), got {len(frame_marks)}")
    names = list(pred.selected)
    f_title, f_text, f_small = _font(16), _font(13), _font(12)
    label_w, cell_h, pad, line_h = 150, 14, 6, 17
    header = [(title or "afnet_edge prediction", f_title, (0, 0, 0))]
    header += [(f"{i + 1}. {p:6.1%}  {n}" + ("" if n == f"class {c}" else f" ({c})"), f_text, (0, 0, 0))
               for i, (c, n, p) in enumerate(pred.top)]
    if names:
        header.append((f"real ratio {pred.real_ratio:.2f}: share of (frame, navigation module) pairs processed by "
                       f"the focal branch (green below)", f_text, (0, 90, 30)))
    header += [(n, f_text, (170, 60, 0)) for n in notes if n]
    head_h = pad + len(header) * line_h + 4 + pad
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(int(measure.textlength(text, font=font)) for text, font, _ in header) + 2 * pad
    width = max(label_w + T * (thumb + pad) + pad, text_w)  # every header line fits
    height = head_h + thumb + pad + max(1, len(names)) * (cell_h + 2) + pad
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    y = pad
    for i, (text, font, colour) in enumerate(header):
        draw.text((pad, y), text, font=font, fill=colour)
        y += line_h + (4 if i == 0 else 0)
    for t, fr in enumerate(frames):
        x = label_w + pad + t * (thumb + pad)
        img.paste(Image.fromarray(fr).resize((thumb, thumb)), (x, head_h))
        _outlined(draw, (x + 3, head_h + 2), f"#{pred.frame_indices[t]}", f_text)
        if frame_marks is not None and frame_marks[t]:
            _outlined(draw, (x + 3, head_h + thumb - 18), frame_marks[t], f_small, fill=(255, 80, 80))
    draw.text((pad, head_h + 2), "sampled frames\n(video frame #)", font=f_small, fill=(0, 0, 0))
    y0 = head_h + thumb + pad
    for layer, (name, m) in enumerate(zip(names, pred.masks)):
        y = y0 + layer * (cell_h + 2)
        draw.text((pad, y), name, font=f_small, fill=(0, 0, 0))
        for t in range(T):
            x = label_w + pad + t * (thumb + pad)
            on = bool(m[t] > 0.5)
            draw.rectangle([x, y, x + thumb - 1, y + cell_h - 1], fill=(40, 170, 70) if on else (225, 225, 225))
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


def clip_geometry(size: int | None, card: dict | None) -> tuple[int, tuple[int, int]]:
    """``(crop size, (height, width) to resize to first)`` of predict's preprocessing: with no ``size`` given the demo
    model (``card``) sees whole frames resized to its own size, other models the official 240x320 resize + crop."""
    if size is not None:
        return size, SCALE_SIZE
    if card:
        return int(card["size"]), (int(card["size"]), int(card["size"]))
    return CROP_SIZE, SCALE_SIZE


def print_prediction(video: str, video_frames: int, indices: list, top: list, selected: dict, real_ratio: float,
                     file=None) -> None:
    """The text ``afnet-edge predict`` prints (also ``afnet-edge classify --server``): frames sampled, top classes
    (``top``: [(class, name, probability)]), frames each navigation module kept (``selected``)."""
    out = file or sys.stdout
    print(f"{video}: {video_frames} frames, sampled {indices}", file=out)
    print(f"top-{len(top)}:", file=out)
    for c, n, p in top:
        print(f"  {p:7.2%}  {n}" + ("" if n == f"class {c}" else f" ({c})"), file=out)
    if selected:
        print(f"frames processed by the focal branch, per navigation module (real ratio {real_ratio:.2f}):", file=out)
        for name, frames in selected.items():
            print(f"  {name:22s} {frames}", file=out)


def sheet_title(video: str, model: torch.nn.Module, checkpoint: str | None, demo: bool = False) -> str:
    """``"clip.mp4 - af_resnet50 T=12 - ckpt.pth"``, ``... - demo model trained on synthetic clips`` or
    ``... - RANDOM WEIGHTS (classes mean nothing)``."""
    if demo:
        weights = "demo model trained on synthetic clips"
    else:
        weights = os.path.basename(checkpoint) if checkpoint else "RANDOM WEIGHTS (classes mean nothing)"
    return f"{os.path.basename(video)} - {getattr(model, 'arch', type(model).__name__)} T={model.num_frames} - {weights}"


def _cmd_predict(args) -> int:
    from tqdm import tqdm

    if args.labels is not None and not os.path.isfile(args.labels):
        raise FileNotFoundError(f"--labels: no such file '{args.labels}'")
    with tqdm(total=3, desc="predict", unit="step", file=sys.stderr, disable=args.json or None) as bar:
        bar.set_postfix_str("building model")
        model = build_model(args, execution=args.execution, selection=args.selection, ratio=args.ratio)
        card = demo_card() if args.demo_model else None
        args.size, scale = clip_geometry(args.size, card)
        bar.update()
        bar.set_postfix_str("decoding video")
        clip, info, indices = load_clip(args.video, model.num_frames, size=args.size, scale_size=scale,
                                        short=args.short)
        if args.min_frames is not None and info.num_frames < args.min_frames:
            raise ValueError(f"--min-frames {args.min_frames}: '{args.video}' has only {info.num_frames} frames")
        bar.update()
        bar.set_postfix_str("running model")
        labels = read_labels(args.labels, model.num_classes)
        if card and args.labels is None:
            labels = list(card["class_names"])
        pred = predict_clip(model, clip, indices, labels, args.topk)
        bar.update()
    # warnings after every argument and file check passed, each once
    if args.weights_note:
        print(f"afnet-edge: {args.weights_note}", file=sys.stderr)
    if card:
        print(f"afnet-edge: note: the demo model knows only its {card['num_classes']} synthetic classes "
              f"({', '.join(card['class_names'])}): on any other video its prediction means nothing",
              file=sys.stderr)
    if args.random_weights:
        print("afnet-edge: warning: --random-weights: the weights are RANDOM, the classes below mean nothing "
              "(the frame selection shows the mechanics only)", file=sys.stderr)
    short = repeated_frames_note(args.video, info.num_frames, indices, args.short)
    if short:
        print(f"afnet-edge: warning: {short}", file=sys.stderr)
    resized = aspect_note((info.height, info.width), scale, args.size)
    if args.save_png:
        contact_sheet(pred, args.save_png, title=sheet_title(args.video, model, args.checkpoint, args.demo_model),
                      notes=[n for n in (short, resized) if n])
    if args.json:
        print(json.dumps({"video": args.video, "video_frames": info.num_frames, "sampled_frames": indices,
                          "model": model.arch, "top": [{"class": c, "name": n, "prob": p} for c, n, p in pred.top],
                          "selected": pred.selected, "real_ratio": pred.real_ratio,
                          "random_weights": args.random_weights, "demo_model": args.demo_model,
                          "repeated_frames": short,
                          "resized_without_aspect": resized}, indent=2))
        return 0
    print_prediction(args.video, info.num_frames, indices, pred.top, pred.selected, pred.real_ratio)
    if args.save_png:
        print(f"contact sheet written to {args.save_png}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify a video file and show the frames the focal branch processed")
    p.add_argument("video", metavar="VIDEO", help="video file (any format FFmpeg decodes)")
    add_model_args(p, model_default=None, weights=True)
    for a in p._actions:  # the default is resolved from the checkpoint
        if a.dest == "model":
            a.help = (f"one of {', '.join(a.choices)} (default: the --checkpoint file's model, else the demo "
                      f"model's)")
    p.add_argument("--selection", choices=("threshold", "topk", "gumbel"), default="threshold",
                   help="frame selection rule (default: threshold)")
    p.add_argument("--ratio", type=ratio_arg, default=0.5, help="kept fraction for --selection topk (default 0.5)")
    p.add_argument("--execution", choices=("compact", "masked"), default="compact",
                   help="compact (skips the unselected frames) or masked (official dense execution) (default: "
                        "compact)")
    p.add_argument("--size", type=positive_int, default=None,
                   help=f"crop size (default: {CROP_SIZE} after the official resize; the demo model: its own size, "
                        f"whole frames resized)")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to show (default: 5)")
    p.add_argument("--labels", default=None, help="text file with one class name per line")
    p.add_argument("--short", choices=SHORT_POLICIES, default="official",
                   help="videos with no more frames than T: 'official' uses frame 0 for every segment (TSN code), "
                        "'spread' repeats each frame ~T/n times in order (default: official; a warning says which "
                        "frames were repeated)")
    p.add_argument("--min-frames", type=positive_int, default=None, metavar="N",
                   help="refuse videos with fewer than N frames instead of repeating frames")
    p.add_argument("--save-png", default=None, metavar="PNG", help="write a contact sheet of the sampled frames")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_predict)
