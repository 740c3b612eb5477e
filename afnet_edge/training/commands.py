"""``afnet-edge train`` and ``afnet-edge eval``: parse, build model and data, call :mod:`afnet_edge.training`, print."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..checkpoint import inspect_checkpoint
from ..layers.navigation import set_navigation_gap
from ..cli_args import add_model_args, build_model, nonneg_float as _nonneg_float, nonneg_int as _nonneg_int, \
    positive_float as _pos_float, positive_int, ratio_arg, unit_float as _unit_float
from . import distributed
from ..data.move4mnist import move4mnist_splits
from .datasets import LIST_SIZE, MOVE4MNIST_SIZE, SYNTHETIC_SIZE, VAL_SEED_OFFSET, list_dataset, \
    synthetic_splits
from ..models.registry import train_recipe
from .engine import TrainConfig, Trainer, evaluate, seed_everything
from .finetune import load_for_finetuning

_OFFICIAL_ARCH = {"AF_resnet50": "af_resnet50", "AF_resnet101": "af_resnet101", "AF_mobilenetv3": "af_mobilenetv3"}


def _model_help(p: argparse.ArgumentParser, text: str) -> None:
    for a in p._actions:  # add_model_args' --model help says "default: None" when the default is resolved later
        if a.dest == "model":
            a.help = text


def _add_data_args(p: argparse.ArgumentParser, train: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=("synthetic", "move4mnist", "list"), default="synthetic",
                   help="synthetic temporal benchmark (no files), Move4MNIST-style videos (4 directions, 32 frames, "
                        "digits from scikit-learn: extra [data]) or a TSN list file (default: %(default)s)")
    g.add_argument("--num-classes", dest="classes", type=positive_int, default=None, help="alias of --classes")
    g.add_argument("--size", type=positive_int, default=None,
                   help=f"frame side in pixels (default: {SYNTHETIC_SIZE} synthetic, {MOVE4MNIST_SIZE} move4mnist, "
                        f"{LIST_SIZE} list; official FLOPs need a multiple of 32)")
    if train:
        g.add_argument("--train-samples", type=positive_int, default=2000,
                       help="synthetic / move4mnist training clips (2000)")
        g.add_argument("--val-samples", type=_nonneg_int, default=500,
                       help="synthetic / move4mnist validation clips, checked every --eval-every epochs (500; 0 = no validation)")
    else:
        g.add_argument("--val-samples", type=_nonneg_int, default=500,
                       help="synthetic clips to evaluate: the validation split train used with the same --data-seed "
                            "(500)")
    g.add_argument("--distractor-prob", type=_unit_float, default=None,
                   help="synthetic: probability that a frame is a distractor (dataset default 0.25)")
    g.add_argument("--video-frames", type=positive_int, default=None, metavar="L",
                   help="synthetic: render videos of L >= T frames and draw the T frames of a clip from them with the "
                        "model family's training sampling (TSN segments for AFNet/TSN, one random phase per clip for "
                        "bLVNet-TAM) and segment centres for validation (default: T, every rendered frame)")
    if train:
        g.add_argument("--informative-only", action="store_true",
                       help="move4mnist: training clips drawn from each video's informative frames only (a clean "
                            "pre-training stage; validation keeps every kind of frame)")
    g.add_argument("--data-seed", type=_nonneg_int, default=0,
                   help="synthetic / move4mnist: seed of the training split; validation uses seed+1 (default 0)" if train else
                   "synthetic: the --data-seed the model was trained with; the evaluated clips are its validation "
                   "split, seed+1 (default 0)")
    g.add_argument("--list", dest="list_file", default=None,
                   help="list file 'path num_frames label' per line (training list for train, evaluated list for eval)")
    if train:
        g.add_argument("--val-list", default=None, help="validation list file (optional)")
    g.add_argument("--root", default=None, help="directory the list's paths are relative to (default: the list's)")
    g.add_argument("--image-tmpl", default="img_{:05d}.jpg", help="frame-folder file names (default: %(default)s)")
    g.add_argument("--short", choices=("official", "spread"), default="official",
                   help="videos with fewer frames than T: 'official' repeats frame 0 (TSN code), 'spread' repeats "
                        "each frame ~T/n times in order (default: %(default)s)")


#: ``--batch-size`` of ``train``: what it means with several processes.
TRAIN_BATCH_HELP = ("clips per optimisation step (the family's recipe: 32 AFNet/TSN, 64 bLVNet-TAM). Under torchrun this is the GLOBAL batch over all N processes, "
                    "split evenly (batch/N per process, must divide), as the official --batch-size 32 was split by "
                    "DataParallel over 2 GPUs; the same value gives the same schedule and data order for any N")


def _add_runtime_args(p: argparse.ArgumentParser, batch_help: str = "clips per batch") -> None:
    p.add_argument("--batch-size", "-b", type=positive_int, default=None, help=batch_help)
    p.add_argument("--workers", "-j", type=_nonneg_int, default=0, help="DataLoader workers (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _device(args):
    import torch
    if args.device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(args.device)
    except RuntimeError:
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {args.device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available in this PyTorch build / machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    return dev


def _resolve_model(args, source: str | None, option: str) -> None:
    """Fill --model/--frames/--classes/--no-tsm from checkpoint ``source`` where not given."""
    if source is None:
        return
    info = inspect_checkpoint(source)
    arch = info.get("arch") or _OFFICIAL_ARCH.get(info.get("official_arch"))
    if args.model is None:
        args.model = arch
    elif arch and arch != args.model:
        raise ValueError(f"{option} '{source}' holds model {arch}, but --model is {args.model}")
    if info.get("tsm") is False and args.model and args.model.startswith("af_resnet"):
        args.no_tsm = True
    args.frames = args.frames or info.get("num_frames")
    if args.classes is None:
        args.classes = info.get("num_classes")
    elif info.get("num_classes") and info["num_classes"] != args.classes:
        raise ValueError(f"{option} '{source}' has {info['num_classes']} classes, but --classes is {args.classes}")


def _datasets(args, model, train: bool, sampling: str = "tsn", flip: bool = False):
    """``(train, val)`` datasets of ``args.data``; ``sampling`` / ``flip``: the training split's frame sampling and
    horizontal flip (the model family's :class:`~afnet_edge.models.registry.TrainRecipe`, whose ``short_side`` sets
    the list-data resize of both splits)."""
    recipe = train_recipe(model)
    T, C = (recipe.clip_frames(model) if recipe.clip_frames is not None else model.num_frames), model.num_classes
    video_frames = getattr(args, "video_frames", None)
    if video_frames is not None and args.data != "synthetic":
        raise ValueError("--video-frames is an option of --data synthetic (list data has its own frame counts)")
    if video_frames is not None and video_frames < T:
        raise ValueError(f"--video-frames must be >= the clip's frames T={T}, got {video_frames}")
    if getattr(args, "informative_only", False) and args.data != "move4mnist":
        raise ValueError("--informative-only is an option of --data move4mnist (only its generator knows which "
                         "frames are informative)")
    if args.data == "move4mnist":
        if args.distractor_prob is not None:
            raise ValueError("--distractor-prob is an option of --data synthetic; Move4MNIST fixes its frame mix")
        return move4mnist_splits(T, C, args.train_samples if train else 0, args.val_samples,
                                 args.size or MOVE4MNIST_SIZE, args.data_seed, VAL_SEED_OFFSET,
                                 informative_only=bool(getattr(args, "informative_only", False)))
    if args.data == "synthetic":
        return synthetic_splits(T, C, args.train_samples if train else 0, args.val_samples,
                                args.size or SYNTHETIC_SIZE, args.data_seed, args.distractor_prob,
                                video_frames=video_frames, sampling=sampling)
    size = args.size or LIST_SIZE
    kw = dict(size=size, image_tmpl=args.image_tmpl, short=args.short, short_side=train_recipe(model).short_side)
    if train:
        tr = list_dataset(args.list_file, args.root, T, C, True, sampling=sampling, flip=flip, **kw)
        va = list_dataset(args.val_list, args.root, T, C, False, **kw) if args.val_list else None
        return tr, va
    return None, list_dataset(args.list_file, args.root, T, C, False, **kw)


#: ``--classes`` when neither the option nor a checkpoint gives it.
_DEFAULT_CLASSES = {"synthetic": 14, "move4mnist": 4}


def _need_classes(args) -> None:
    if args.classes is None and args.data == "list":
        raise ValueError("--data list needs --classes N (labels must be in [0, N)), or a checkpoint that has them")


# ------------------------------------------------------------------------------------------------------- train
def _cmd_train(args) -> int:
    import torch

    starts = [o for o, v in (("--resume", args.resume), ("--checkpoint", args.checkpoint),
                              ("--finetune", args.finetune)) if v]
    if len(starts) > 1:
        raise ValueError(f"give one of --resume (continue a run), --checkpoint (start from weights of the same "
                         f"model) or --finetune (start from weights, new classifier), not {' and '.join(starts)}")
    if args.finetune:
        info = inspect_checkpoint(args.finetune)
        arch = info.get("arch") or _OFFICIAL_ARCH.get(info.get("official_arch"))
        args.model = args.model or arch
        args.frames = args.frames or info.get("num_frames")
        if info.get("tsm") is False and args.model and args.model.startswith("af_resnet"):
            args.no_tsm = True
    _resolve_model(args, args.resume, "--resume")
    _resolve_model(args, args.checkpoint, "--checkpoint")
    args.model = args.model or "af_mobilenetv3"
    _need_classes(args)
    if args.classes is None:
        args.classes = _DEFAULT_CLASSES.get(args.data)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args)
    group = distributed.init_from_env(device)  # torchrun with WORLD_SIZE >= 2: join the process group
    try:
        return _train(args, distributed.process_device(device, group), group)
    finally:
        distributed.cleanup()


def _train(args, device, info: distributed.DistInfo | None) -> int:
    main = info is None or info.is_main
    say = print if main else (lambda *a, **k: None)
    seed_everything(args.seed)
    model = build_model(args, **({} if args.dropout is None else {"dropout": args.dropout}))
    # the family's recipe (TrainRecipe.defaults) fills what the command line leaves unset (None)
    cfg = TrainConfig.for_model(
        model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        lr_steps=None if args.lr_steps is None else tuple(args.lr_steps), lr_policy=args.lr_policy,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay,
        clip_grad=None if args.gd is None else (args.gd or 0.0), rt=args.rt,
        rt_begin=args.rt_begin, rt_end=args.rt_end, lambda_rt=args.lambda_rt, t0=args.t0, t1=args.t1,
        t_end=args.t_end, fc_lr5=False if args.no_fc_lr5 else None, amp=args.amp, seed=args.seed,
        workers=args.workers, eval_every=args.eval_every, save_every=args.save_every,
        eval_selection=args.eval_selection, nav_estimator=args.nav_estimator.replace("-", "_"),
        nav_positions=args.nav_positions, nav_value_scale=args.nav_value_scale, tie_positions=args.tie_positions,
        hold_ratio=args.hold_ratio, nav_natural_gradient=args.nav_natural_gradient)
    if args.lr_steps and cfg.lr_policy != "step":
        raise ValueError(f"--lr-steps applies to --lr-policy step, but {model.arch} trains with the {cfg.lr_policy} "
                         f"policy; add --lr-policy step to use steps")
    if args.nav_gap is not None and not args.resume:
        if set_navigation_gap(model, args.nav_gap) == 0:
            raise ValueError(f"--nav-gap: {model.arch} has no navigation modules")
    if args.finetune:
        rep = load_for_finetuning(model, args.finetune)
        say(f"fine-tuning from '{args.finetune}': {rep['loaded']} tensors loaded" +
            (f", new classifier ({', '.join(rep['reset'])})" if rep["reset"] else ""))
    recipe = train_recipe(model)
    train_set, val_set = _datasets(args, model, train=True, sampling=recipe.sampling, flip=recipe.flip_for(model))
    out = args.out or os.path.join("runs", f"{model.arch}-{args.data}")
    trainer = Trainer(model, train_set, cfg, val_set, device=device, out_dir=out, progress=not args.no_progress,
                      official_layout=args.official_layout, distributed=info is not None,
                      step_log_file=args.step_log)
    procs = (f", {info.world_size} processes ({info.backend}) x {trainer.local_batch_size} clips = global batch "
             f"{cfg.batch_size}" if info is not None else "")
    say(f"train: {model.arch} T={model.num_frames} classes={model.num_classes} on {len(train_set)} clips "
        f"({trainer.iters_per_epoch} iterations/epoch), {device}{procs}, amp={'on' if trainer.amp else 'off'} "
        f"-> {out}")
    say(f"recipe: {recipe.note}: SGD momentum {cfg.momentum}{' nesterov' if cfg.nesterov else ''}, "
        f"lr {cfg.lr:g} " + (f"cosine to 0 over {cfg.epochs} epochs" if cfg.lr_policy == "cosine" else
                             f"x0.1 at epochs {list(cfg.lr_steps)} of {cfg.epochs}") +
        f", weight decay {cfg.weight_decay:g}, optimiser groups {'/'.join(trainer.group_names)}, "
        f"gradient clipping {cfg.clip_grad if cfg.clip_grad else 'off'}, batch {cfg.batch_size}, "
        f"training sampling {recipe.sampling}")
    if args.resume:
        tr = trainer.resume(args.resume)
        say(f"resumed from '{args.resume}' at epoch {tr['epoch']} iteration {tr['step']} "
            f"(temperature {trainer.temperature(tr['epoch'], tr['step']) if tr['epoch'] < cfg.epochs else 'n/a'})")
    try:
        history = trainer.fit(max_steps=args.max_steps)
    except FloatingPointError as e:  # diverged: one line for the user, like other fixable errors
        raise ValueError(str(e)) from None
    if args.json and history:
        say(json.dumps(history[-1]))
    say(f"checkpoints: {os.path.join(out, 'last.pth')}" +
        (f", {os.path.join(out, 'best.pth')}" if os.path.exists(os.path.join(out, "best.pth")) else ""))
    return 0


# ------------------------------------------------------------------------------------------------------- eval
def _evaluation_model(args):
    """The model (and device) of the commands that evaluate a checkpoint (``eval``, ``calibrate-exit``): the model,
    T and classes from ``--checkpoint`` where not given, threads and device set."""
    import torch

    _resolve_model(args, args.checkpoint, "--checkpoint")
    if args.model is None:
        raise ValueError("--model is required when --checkpoint does not name the architecture")
    _need_classes(args)
    if args.classes is None:
        args.classes = _DEFAULT_CLASSES.get(args.data)
    if args.threads:
        torch.set_num_threads(args.threads)
    return build_model(args), _device(args)


def _cmd_eval(args) -> int:
    model, device = _evaluation_model(args)
    cfg = {"execution": args.execution, "temperature": args.t1}
    if args.ratio is not None:
        cfg["ratio"] = args.ratio
    model.configure(**cfg)
    if args.selection == "topk" and args.ratio is None:
        raise ValueError("--selection topk needs --ratio R (fraction of frames kept per clip)")
    _, data = _datasets(args, model, train=False)
    if data is None:
        raise ValueError("nothing to evaluate: --val-samples is 0")
    res = evaluate(model.to(device), data, batch_size=args.batch_size or 16, device=device, workers=args.workers,
                   selection=args.selection, generator_seed=args.seed, progress=not args.no_progress)
    res.update(model=model.arch, num_frames=model.num_frames, num_classes=model.num_classes,
               checkpoint=args.checkpoint, data=args.data, execution=args.execution)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        fl = (f"{res['official_gflops']:.4f} GFLOPs/clip (official count; executed compact "
              f"{res['executed_gmacs_compact']:.4f} GMACs)" if res.get("official_gflops") is not None
              else res.get("flops_note", "n/a"))
        print(f"{model.arch} on {res['num_clips']} clips ({args.data}), selection={res['selection']}: "
              f"top1 {res['top1']:.2f}%  top{res['top5_k']} {res['top5']:.2f}%  loss {res['loss']:.4f}")
        print(f"real ratio {res['real_ratio']:.4f} (per module: "
              f"{', '.join(f'{r:.3f}' for r in res['module_ratios']) or 'dense'})  {fl}")
    return 0


# ---------------------------------------------------------------------------------------------- calibrate-exit
def _step_logits_on(model, data, batch_size: int, device, workers: int, progress: bool):
    """Per-step logits ``(N, T, classes)`` and labels ``(N,)`` of ``model`` (early exit off) on ``data``."""
    import torch
    from torch.utils.data import DataLoader

    saved = getattr(model, "exit_thresholds", None)
    if saved is not None:
        model.set_exit_thresholds(None)
    model.to(device).eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers)
    logits, labels = [], []
    try:
        with torch.no_grad():
            for i, (clip, label) in enumerate(loader):
                out = model(clip.to(device))
                if getattr(out, "step_logits", None) is None:
                    raise ValueError(f"model {model.arch} has no per-step logits: early exit needs a model with "
                                     f"per-step heads (adafocus_v2_mn2, adafocus_v2_rn)")
                logits.append(out.step_logits.float().cpu())
                labels.append(torch.as_tensor(label).cpu())
                if progress:
                    print(f"\rcalibrate-exit: batch {i + 1}/{len(loader)}", end="", file=sys.stderr, flush=True)
    finally:
        if progress:
            print(file=sys.stderr)
        if saved is not None:
            model.set_exit_thresholds(saved)
    return torch.cat(logits), torch.cat(labels)


def _stream_frames(model, data, thresholds, batch_size: int, device, workers: int) -> tuple[float, float]:
    """Average frames used and top-1 (percent) of the streaming early-exit execution (``model.stream``)."""
    import torch
    from torch.utils.data import DataLoader

    if not callable(getattr(model, "stream", None)):
        raise ValueError(f"--stream: model {model.arch} has no streaming execution (adafocus_v2_mn2/rn have)")
    used, correct, n = 0.0, 0, 0
    for clip, label in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers):
        out = model.stream(clip.to(device), thresholds)
        used += float(out.frames_used.sum())
        correct += int((out.logits.argmax(1).cpu() == torch.as_tensor(label)).sum())
        n += clip.shape[0]
    return used / n, 100.0 * correct / n


def _cmd_calibrate_exit(args) -> int:
    from ..flops import count_flops
    from ..layers.early_exit import OFFICIAL_Q, calibrate_thresholds, check_thresholds, summarize, thresholds_to_json

    model, device = _evaluation_model(args)
    _, data = _datasets(args, model, train=False)
    if data is None or len(data) == 0:
        raise ValueError("nothing to calibrate on: --val-samples is 0")
    T = model.num_frames
    if args.thresholds:
        try:
            with open(args.thresholds) as f:
                given = json.load(f)
            entries = [(b.get("q"), check_thresholds(b["thresholds"], T)) for b in given["budgets"]]
        except OSError as e:
            raise ValueError(f"--thresholds '{args.thresholds}': {e.strerror}") from None
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"--thresholds '{args.thresholds}' is not a calibrate-exit file ({e})") from None
        except ValueError as e:
            raise ValueError(f"--thresholds '{args.thresholds}': {e} (model {model.arch} has T={T})") from None
    step_logits, labels = _step_logits_on(model, data, args.batch_size or 8, device, args.workers,
                                          not args.no_progress)
    if not args.thresholds:
        entries = [(q, calibrate_thresholds(step_logits, q)) for q in (args.q or OFFICIAL_Q)]
    try:
        full = float(count_flops(model)["official_gflops"])
    except ValueError:
        full = None
    budgets = []
    for q, thr in entries:
        st = summarize(step_logits, labels, thr)
        rec = {"q": q, "thresholds": thresholds_to_json(thr), **st,
               "gflops": None if full is None else full * st["frame_fraction"]}
        if args.stream:
            rec["stream_avg_frames"], rec["stream_top1"] = _stream_frames(model, data, thr, args.batch_size or 8,
                                                                          device, args.workers)
        budgets.append(rec)
    res = {"model": model.arch, "num_frames": T, "num_classes": model.num_classes, "checkpoint": args.checkpoint,
           "data": args.data, "num_clips": int(labels.numel()), "criterion": "max raw logit >= threshold",
           "full_top1": summarize(step_logits, labels, [None] * T)["top1"], "full_gflops": full,
           "calibrated_on": None if args.thresholds else "this set", "budgets": budgets}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{model.arch} on {res['num_clips']} clips ({args.data}): all {T} frames top1 {res['full_top1']:.2f}%" +
          (f", {full:.2f} GFLOPs" if full is not None else ""))
    print(f"{'q':>5s} {'avg frames':>10s} {'GFLOPs':>8s} {'top1 %':>7s}" + ("  stream frames/top1" if args.stream
                                                                          else ""))
    for r in budgets:
        gf = f"{r['gflops']:8.2f}" if r["gflops"] is not None else f"{'n/a':>8s}"
        q = f"{r['q']:5.1f}" if isinstance(r["q"], (int, float)) else f"{'-':>5s}"
        line = f"{q} {r['avg_frames']:10.2f} {gf} {r['top1']:7.2f}"
        if args.stream:
            line += f"  {r['stream_avg_frames']:.2f} / {r['stream_top1']:.2f}"
        print(line)
    if args.out:
        print(f"thresholds: {args.out}")
    return 0


# ------------------------------------------------------------------------------------------------------- register
def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train with the official objective and schedules (synthetic benchmark or TSN lists)",
        description="Official AFNet training (cross-entropy + lambda_rt·mean_l(rt_e − ratio_l)², target-ratio and "
                    "temperature schedules, official optimiser groups, step LR, --gd clipping, AMP on CUDA); other "
                    "families with their release's recipe (bLVNet-TAM: one SGD group with Nesterov, cosine LR, no "
                    "clipping, one random phase per clip). Defaults are the release scripts' values. Writes OUT/last.pth (resumable), OUT/best.pth and "
                    "OUT/log.jsonl. A resumed run continues exactly (data order, random streams, temperature). "
                    "Several processes/GPUs: torchrun --nproc-per-node N -m afnet_edge.cli train ... "
                    "(DistributedDataParallel, gloo on CPU / NCCL on GPU; --batch-size is the global batch; "
                    "rank 0 writes the files).")
    add_model_args(p, model_default=None)
    _model_help(p, "model name (default: the --resume/--checkpoint file's, else af_mobilenetv3)")
    _add_data_args(p, train=True)
    o = p.add_argument_group("optimisation (defaults = the model family's official recipe: AFNet/TSN spec §7, "
                             "bLVNet-TAM blvnet-tam.md §5.3; values for AFNet / bLVNet-TAM in brackets)")
    o.add_argument("--epochs", type=positive_int, default=None, help="training epochs (55 / 50)")
    o.add_argument("--lr", type=_nonneg_float, default=None, help="base learning rate (0.01 / 0.01)")
    o.add_argument("--lr-policy", choices=("step", "cosine"), default=None,
                   help="learning-rate policy: step (x0.1 at --lr-steps) or cosine (to 0 over --epochs, per epoch) "
                        "(step / cosine)")
    o.add_argument("--lr-steps", type=_nonneg_int, nargs="*", default=None,
                   help="epochs of ×0.1 for --lr-policy step (25 45 / -)")
    o.add_argument("--momentum", type=_nonneg_float, default=None, help="SGD momentum (0.9 / 0.9)")
    o.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum (off / on)")
    o.add_argument("--weight-decay", "--wd", type=_nonneg_float, default=None,
                   help="SGD weight decay (5e-4 / 5e-4, bLVNet on every parameter)")
    o.add_argument("--gd", type=_nonneg_float, default=None, help="clip gradient norm (20 / off; 0 = off)")
    o.add_argument("--dropout", type=_unit_float, default=None,
                   help="dropout before the classifier, in [0, 1) (default: the model's, e.g. 0.5 AFNet, 0.8 "
                        "fullvideo_tsm_r18 as released)")
    o.add_argument("--rt", type=_unit_float, default=0.5, help="target selection ratio RT (0.5)")
    o.add_argument("--rt-begin", type=_nonneg_int, default=10,
                   help="epoch where the target ratio starts stepping down from 1 towards --rt (10)")
    o.add_argument("--rt-end", type=_nonneg_int, default=20, help="epoch where the target ratio reaches --rt (20)")
    o.add_argument("--lambda-rt", type=_nonneg_float, default=0.5, help="weight of the ratio loss (0.5)")
    o.add_argument("--nav-gap", type=float, default=None, metavar="GAP",
                   help="start the navigation with its select bias GAP above its skip bias (official 9, i.e. "
                        "every frame selected; short runs learn to skip sooner from 3)")
    o.add_argument("--nav-estimator", choices=("straight-through", "local"), default="straight-through",
                   help="how the navigation learns: straight-through (official Gumbel gradient) or local (a "
                        "deviation: per-frame loss differences from extra forward passes, see "
                        "afnet_edge.training.nav_values; with --tie-positions its selections follow content, which the "
                        "official one's did not on the demo benchmark; the real ratio can end above --rt: see "
                        "--hold-ratio)")
    o.add_argument("--nav-positions", type=positive_int, default=4, metavar="K",
                   help="with --nav-estimator local: frame positions valued per iteration, each two extra forward "
                        "passes without gradient (4)")
    o.add_argument("--nav-value-scale", type=_nonneg_float, default=30.0,
                   help="with --nav-estimator local: weight of the navigation's value loss (30)")
    o.add_argument("--tie-positions", action="store_true",
                   help="tie every navigation module's per-position parameters across frame positions (a "
                        "deviation: selections follow content, not position)")
    o.add_argument("--hold-ratio", type=_unit_float, default=0.0, metavar="RATE",
                   help="with --nav-estimator local: after every step move each navigation module's select bias by "
                        "RATE times the shift that gives the batch the target expected ratio (a deviation: the real "
                        "ratio then stays at --rt; 0 = off, default)")
    o.add_argument("--nav-natural-gradient", action="store_true",
                   help="with --nav-estimator local: the value loss's natural-gradient form (a deviation: frames whose "
                        "selection has saturated keep learning; see afnet_edge.training.nav_values)")
    o.add_argument("--t0", type=_pos_float, default=1.0, help="initial Gumbel temperature (1)")
    o.add_argument("--t1", type=_pos_float, default=0.01, help="final Gumbel temperature (0.01)")
    o.add_argument("--t-end", type=_nonneg_int, default=50, help="epoch where annealing ends (50)")
    o.add_argument("--no-fc-lr5", action="store_true", help="no lr×5/×10 for Linear layers (fine-tuning on the "
                                                           "same dataset)")
    amp = o.add_mutually_exclusive_group()
    amp.add_argument("--amp", dest="amp", action="store_true", default=None, help="float16 AMP (CUDA only)")
    amp.add_argument("--no-amp", dest="amp", action="store_false", help="no AMP (default on CPU)")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="output directory (default: runs/<model>-<data>)")
    r.add_argument("--resume", default=None, help="continue from a training checkpoint (OUT/last.pth)")
    r.add_argument("--finetune", default=None,
                   help="start from the weights of an afnet_edge or official checkpoint, with a new classifier when "
                        "--classes differs (as the official --tune_from on a new dataset; consider --no-fc-lr5 "
                        "when fine-tuning on the same dataset)")
    r.add_argument("--seed", type=_nonneg_int, default=0, help="seed of initialisation, data order, noise (0)")
    r.add_argument("--eval-every", type=_nonneg_int, default=1, help="validate every N epochs (1; 0 = last only)")
    r.add_argument("--eval-selection", choices=("threshold", "gumbel", "topk"), default="threshold",
                   help="frame selection during validation (threshold: deterministic; gumbel: official)")
    r.add_argument("--save-every", type=_nonneg_int, default=0, help="also save last.pth every N iterations")
    r.add_argument("--max-steps", type=positive_int, default=None, help="stop after N iterations (saves last.pth)")
    r.add_argument("--official-layout", action="store_true",
                   help="also write OUT/ckpt.pth.tar (+ ckpt.best.pth.tar) in the official release layout")
    r.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    r.add_argument("--json", action="store_true", help="print the last epoch's record as JSON")
    r.add_argument("--step-log", default=None, metavar="FILE",
                   help="append one JSON line per iteration (loss terms, temperature, lr, SHA-256 of the parameters) "
                        "to FILE; under torchrun every rank writes FILE.rank<r> (checks that ranks stay in sync)")
    _add_runtime_args(r, TRAIN_BATCH_HELP)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "eval", help="top-1/top-5, real selection ratio and official FLOPs on the synthetic benchmark or a list",
        description="Evaluate a model: top-1/top-5 accuracy, real selection ratio (mean of the masks over all "
                    "navigation modules and frames) and the official FLOPs for the observed masks (spec §9). "
                    "List data uses the official validation sampling and centre crop.")
    add_model_args(p, model_default=None)
    _model_help(p, "model name (default: the --checkpoint file's)")
    _add_data_args(p, train=False)
    p.add_argument("--selection", choices=("threshold", "gumbel", "topk"), default="threshold",
                   help="frame selection: threshold (deterministic, default), gumbel (official, stochastic; seeded "
                        "by --seed), topk (exactly ceil(ratio·T) frames per clip; needs --ratio)")
    p.add_argument("--ratio", type=ratio_arg, default=None, help="frame ratio for --selection topk")
    p.add_argument("--execution", choices=("compact", "masked"), default="compact",
                   help="compact (skips unselected frames) or masked (official dense execution)")
    p.add_argument("--t1", type=_pos_float, default=0.01, help="Gumbel temperature at evaluation (0.01)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the Gumbel noise generator (0)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "calibrate-exit", help="early-exit thresholds (AdaFocusV2+) on a labelled set; frames used and top-1",
        description="Training-free conditional early exit (AdaFocusV2+, spec adafocus.md §2.8): collect the "
                    "per-step logits on a labelled set (the synthetic benchmark or a list; the official protocol "
                    "uses training-set clips), calibrate thresholds for each budget q (target exit proportions "
                    "p_k ∝ q^k), and report the average frames used, the GFLOPs (k/T of the full clip) and top-1. "
                    "With --thresholds FILE, evaluate the thresholds of a previous run on this set instead.")
    add_model_args(p, model_default=None)
    _model_help(p, "model name (default: the --checkpoint file's)")
    _add_data_args(p, train=False)
    p.add_argument("--q", type=_pos_float, nargs="+", default=None,
                   help="budget parameters q (default: the official sweep 0.5, 0.6, ..., 3.9)")
    p.add_argument("--thresholds", default=None,
                   help="a JSON file written by calibrate-exit --out: evaluate its thresholds on this set")
    p.add_argument("--stream", action="store_true",
                   help="also run the streaming execution (model.stream: frames in processing order, stops when "
                        "confident) and report the frames it really computed")
    p.add_argument("--out", default=None, help="write the thresholds and statistics to this JSON file")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_calibrate_exit)
