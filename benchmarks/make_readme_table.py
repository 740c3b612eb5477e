#!/usr/bin/env python3
"""Regenerate the "Performance" tables from the committed results files (never typed by hand).

    python benchmarks/make_readme_table.py            # rewrite the blocks in README.md and docs/performance.md
    python benchmarks/make_readme_table.py --check    # exit 1 if a block differs from what the results give
    python benchmarks/make_readme_table.py --print    # print the README block only

README.md: only the text between ``<!-- perf:begin -->`` and ``<!-- perf:end -->`` is rewritten (the README belongs to
the lead); when the markers are missing the block is printed and nothing is written. docs/performance.md: the same
block between the same markers, the Jetson/H100 PROJECTION table between ``<!-- projection:begin -->`` and
``<!-- projection:end -->``, and the bytes-per-plan PROJECTION (from ``benchmarks/results/projection/bytes_plans.json``,
written by ``benchmarks/project_plans.py``) between ``<!-- plans:begin -->`` and ``<!-- plans:end -->``. README.md also gets the
demo model's numbers (from ``benchmarks/results/cpu/demo_model.json``, written by ``benchmarks/train_demo_model.py``)
between ``<!-- demo:begin -->`` and ``<!-- demo:end -->``. docs/performance.md also gets the cross-family comparison
(from ``benchmarks/results/cpu/cross_family.json``, written by ``afnet-edge bench --cross-family``) between
``<!-- crossfamily:begin -->`` and ``<!-- crossfamily:end -->``. README.md also gets the Move4MNIST-style experiment
of the full-video family (from ``benchmarks/results/cpu/move4mnist.json``, written by
``benchmarks/train_move4mnist.py``) between ``<!-- move4mnist:begin -->`` and ``<!-- move4mnist:end -->``. README.md also gets the AdaFocusV2 policy-location
experiment (from ``benchmarks/results/cpu/adafocus_region.json``, written by ``benchmarks/train_adafocus_region.py``)
between ``<!-- adafocusregion:begin -->`` and ``<!-- adafocusregion:end -->``, and the demo model's selection
diagnostic (``benchmarks/demo_model_masks.py``) between ``<!-- demomasks:begin -->`` and ``<!-- demomasks:end -->``.

Sources: every ``benchmarks/results/<device>/*.json`` whose ``kind`` is ``measurement`` and ``schema``
``afnet_edge.bench/1``, except ``quick.json`` (the CI smoke grid).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BEGIN, END = "<!-- perf:begin -->", "<!-- perf:end -->"
PBEGIN, PEND = "<!-- projection:begin -->", "<!-- projection:end -->"
PLBEGIN, PLEND = "<!-- plans:begin -->", "<!-- plans:end -->"
PLANS_JSON = os.path.join(ROOT, "benchmarks", "results", "projection", "bytes_plans.json")
DBEGIN, DEND = "<!-- demo:begin -->", "<!-- demo:end -->"
DEMO_JSON = os.path.join(ROOT, "benchmarks", "results", "cpu", "demo_model.json")
CBEGIN, CEND = "<!-- crossfamily:begin -->", "<!-- crossfamily:end -->"
MBEGIN, MEND = "<!-- demomasks:begin -->", "<!-- demomasks:end -->"
MASKS_JSON = os.path.join(ROOT, "benchmarks", "results", "cpu", "demo_model_masks.json")
M4BEGIN, M4END = "<!-- move4mnist:begin -->", "<!-- move4mnist:end -->"
M4M_JSON = os.path.join(ROOT, "benchmarks", "results", "cpu", "move4mnist.json")
CROSS_JSON = os.path.join(ROOT, "benchmarks", "results", "cpu", "cross_family.json")
RBEGIN, REND = "<!-- adafocusregion:begin -->", "<!-- adafocusregion:end -->"
REGION_JSON = os.path.join(ROOT, "benchmarks", "results", "cpu", "adafocus_region.json")
PRETTY = {"af_resnet50": "AF-ResNet50", "af_mobilenetv3": "AF-MobileNetV3", "tsm_resnet50": "TSM-ResNet50",
          "tsn_resnet50": "TSN-ResNet50", "af_resnet101": "AF-ResNet101"}
# headline rows: (model, T, ratio or None for the dense/masked rows, backends allowed)
HEADLINE = [("af_resnet50", 12, None, ("masked",)), ("af_resnet50", 12, 0.25, None), ("af_resnet50", 12, 0.4, None),
            ("af_resnet50", 12, 0.5, None), ("tsm_resnet50", 8, None, None), ("tsm_resnet50", 16, None, None),
            ("tsn_resnet50", 8, None, None), ("af_mobilenetv3", 12, None, ("masked",)),
            ("af_mobilenetv3", 12, 0.4, None), ("af_mobilenetv3", 12, 0.5, None)]
PROJECTION_DEVICES = ("h100-sxm", "orin-agx", "orin-nx", "orin-nano", "orin-nano-super", "thor")


def load_results(root: str = os.path.join(ROOT, "benchmarks", "results")) -> list[dict]:
    """Measurement documents under ``root``, sorted by path; each gets ``_path`` (relative to the repository)."""
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "*", "*.json"))):
        if os.path.basename(path) == "quick.json":
            continue
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("kind") == "measurement" and doc.get("schema") == "afnet_edge.bench/1" \
                and doc.get("rows"):
            doc["_path"] = os.path.relpath(path, ROOT)
            docs.append(doc)
    return docs


def _best(rows, model, frames, precision, batch, ratio, backends):
    cand = [r for r in rows if r.get("status") == "ok" and r["model"] == model and r["frames"] == frames
            and r["precision"] == precision and r["batch"] == batch and r.get("ratio") == ratio
            and (backends is None or r["backend"] in backends)]
    return min(cand, key=lambda r: r["latency_ms"]["p50"]) if cand else None


def _ms(v: float) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def headline(docs: list[dict]) -> str:
    """The markdown block: per results file and (precision, batch), the best p50 of each headline configuration."""
    if not docs:
        return "_No benchmark results committed yet._\n"
    out = ["Generated by `python benchmarks/make_readme_table.py` from the results files below; do not edit by hand. "
           "p50 latency of one batch (ms), best backend/mode of each row; realised ratio = measured speed-up over the "
           "masked (official) execution ÷ the FLOPs-implied speed-up (1.0 = skipping frames buys all the FLOPs "
           "promise). Projections for devices not measured are in [docs/performance.md](/docs/performance.md) and are "
           "labelled as such.", ""]
    for doc in docs:
        env = doc["environment"]
        rows = doc["rows"]
        where = f"{env.get('device')} (`{env.get('device_slug')}`)"
        extra = []
        if env.get("device_type") == "cpu":
            la = (doc.get("load_average") or {}).get("before") or [None]
            extra.append(f"{env.get('torch_threads')} thread(s), shared machine, load average "
                         f"{la[0]:.1f} at start" if la[0] is not None else f"{env.get('torch_threads')} thread(s)")
        else:
            extra.append(f"CUDA {env.get('cuda')}, driver {env.get('driver')}")
        ev = env.get("env_vars") or {}
        if ev.get("LD_PRELOAD") or ev.get("MALLOC_CONF") or ev.get("GLIBC_TUNABLES"):
            extra.append("allocator: " + ", ".join(f"{k}={os.path.basename(v) if k == 'LD_PRELOAD' else v}"
                                                   for k, v in ev.items()
                                                   if k in ("LD_PRELOAD", "MALLOC_CONF", "GLIBC_TUNABLES")))
        elif env.get("device_type") == "cpu":
            extra.append("allocator: glibc malloc (default)")
        plans = sorted({r.get("plan", "eager") for r in rows
                        if r.get("status") == "ok" and str(r.get("backend", "")).startswith("compact")})
        if plans:
            extra.append("compact plan " + ", ".join(f"`{p}`" for p in plans)
                         + (" (recorded before the plan axis existed: the eager compact plan)"
                            if not any("plan" in r for r in rows) else ""))
        md = doc["_path"][:-5] + ".md"
        # links from the repository root: the same block sits in README.md and in docs/performance.md
        out.append(f"**{where}** — torch {env.get('torch')}, {', '.join(extra)}; [{os.path.basename(doc['_path'])}]"
                   f"(/{doc['_path']}) · [page](/{md})")
        out.append("")
        combos = sorted({(r["precision"], r["batch"]) for r in rows if r.get("status") == "ok"},
                        key=lambda pb: (pb[0] != "fp16", pb[1]))
        # realised ratio: every compact backend with a masked anchor, at the issue's target combination when measured
        rc = ("fp16", 8) if ("fp16", 8) in combos else (combos[0] if combos else None)
        header = "| model | T | r | " + " | ".join(f"{p} b={b} p50 ms (backend)" for p, b in combos) + \
                 (f" | realised ratio, {rc[0]} b={rc[1]} (per backend) |" if rc else " |")
        out += [header, "|---|---|---|" + "---|" * len(combos) + "---|"]
        for model, T, ratio, backends in HEADLINE:
            cells = []
            for p, b in combos:
                best = _best(rows, model, T, p, b, ratio, backends)
                cells.append("–" if best is None else f"{_ms(best['latency_ms']['p50'])} ({best['label']})")
            if all(c == "–" for c in cells):
                continue
            realised = "–"
            if rc and ratio is not None:
                rr = sorted((r["label"], r["realised_ratio"]) for r in rows
                            if r.get("status") == "ok" and r["model"] == model and r["frames"] == T
                            and r.get("ratio") == ratio and (r["precision"], r["batch"]) == rc
                            and "realised_ratio" in r)
                realised = ", ".join(f"{lab} {v:.2f}" for lab, v in rr) or "–"
            r = "–" if ratio is None else f"{ratio:g}"
            label = PRETTY.get(model, model) + (" masked" if backends == ("masked",) else "")
            out.append(f"| {label} | {T} | {r} | " + " | ".join(cells) + f" | {realised} |")
        out.append("")
    return "\n".join(out)


def projection_block() -> str:
    """PROJECTED latencies (roofline, published specs) of the headline models on devices, fp16, batch 1."""
    from afnet_edge.bench.projection import DEVICES, LABEL, project, trace_ops
    from afnet_edge.kernels import extension_available
    configs = [("af_resnet50", 12, 0.4, "compact", "torch"), ("af_resnet50", 12, 0.4, "compact", "ext"),
               ("af_resnet50", 12, None, "masked", "torch"), ("tsm_resnet50", 8, None, "compact", "torch"),
               ("af_mobilenetv3", 12, 0.4, "compact", "torch")]
    names = ["AF-ResNet50 T=12 r=0.4 (compact, PyTorch ops)", "AF-ResNet50 T=12 r=0.4 (compact, fused ext ops)",
             "AF-ResNet50 T=12 (masked)", "TSM-ResNet50 T=8", "AF-MobileNetV3 T=12 r=0.4 (compact, PyTorch ops)"]
    try:
        ext_ok = bool(extension_available())
    except Exception:
        ext_ok = False
    ops = {c: trace_ops(c[0], c[1], 1.0 if c[2] is None else c[2], 1, 224, "fp16", c[3], c[4])
           for c in configs if c[4] == "torch" or ext_ok}
    out = [f"**{LABEL}** — fp16, batch 1, 224², generated by `python benchmarks/make_readme_table.py` with "
           "`afnet_edge.bench.projection`; ms per clip. eager: every op a kernel with an eager per-op overhead; "
           "fused: an ideal graph compiler (TensorRT-like) with element-wise ops fused into their producers. \"fused ext ops\": the "
           "compiled focal gather/scatter and ample fusion kernels, each one kernel" +
           ("" if ext_ok else " (not available when this block was generated: n/a)") + ".", "",
           "| device | scenario | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key in PROJECTION_DEVICES:
        spec = DEVICES[key]
        for scen in ("eager", "fused"):
            cells = [f"{project(c[0], spec, c[1], c[2], 1, 224, 'fp16', c[3], scen, c[4], per_layer=False, _ops=ops[c])['total_ms']:.2f}"
                     if c in ops else "n/a" for c in configs]
            out.append(f"| {spec.name} | {scen} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def plans_block(path: str = PLANS_JSON) -> str:
    """Bytes and PROJECTED latency per execution plan, from the committed ``bytes_plans.json``
    (``benchmarks/project_plans.py`` writes it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("project_plans", os.path.join(ROOT, "benchmarks",
                                                                                "project_plans.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(path) as f:
        return mod.markdown(json.load(f))


def demo_block(path: str = DEMO_JSON) -> str:
    """The shipped demo model's numbers (mean ± std over seeds, the targets met or not), from the committed
    ``demo_model.json`` (``benchmarks/train_demo_model.py`` writes it)."""
    with open(path) as f:
        doc = json.load(f)
    summ, sched = doc["summary"], doc["schedule"]
    pm = lambda s, f=".1f": f"{s['mean']:{f}} ± {s['std']:{f}}"  # noqa: E731
    reused = [r for r in doc["runs"] if r.get("reused")]
    took = (f"{doc['total_seconds'] / 60:.0f} min on the 2-core CPU machine" if not reused else
            f"which reused {len(reused)} of its {len(doc['runs'])} runs trained by earlier invocations with the same "
            f"settings; {sum(r['train_seconds'] for r in doc['runs']) / 60:.0f} min of training time over all runs, "
            f"warm-ups not counted, on the shared 2-core CPU machine")
    out = [f"Measured on held-out synthetic clips with threshold selection, mean ± standard deviation over "
           f"{len(doc['seeds'])} seeds (`{doc['command']}`, {took}; "
           f"[details](benchmarks/results/cpu/demo_model.md)):", "",
           "| model | target ratio | top-1 % | real ratio | informative frames to focal | distractor frames to "
           "focal | official GFLOPs/clip |", "|---|---|---|---|---|---|---|"]
    for rt, a in summ["af"].items():
        out.append(f"| AF-ResNet50 ×{sched['width_mult']:g} | {rt} | {pm(a['top1'])} | {pm(a['real_ratio'], '.2f')} | "
                   f"{pm(a['kept_informative'], '.2f')} | {pm(a['kept_distractor'], '.2f')} | "
                   f"{a['official_gflops']['mean']:.3f} |")
    b = summ.get("baseline")
    if b:
        out.append(f"| {PRETTY.get(b['model'], b['model'])} ×{sched['width_mult']:g}, {b['frames']} frames (dense) | – | "
                   f"{pm(b['top1'])} | 1 | – | – | {b['official_gflops']['mean']:.3f} |")
    out += ["", "Targets: " + "; ".join(f"{t['target']}: {t['value']} ({'met' if t['met'] else 'NOT met'})"
                                         for t in summ["targets"]) + "."]
    return "\n".join(out) + "\n"


def demo_masks_block(path: str = MASKS_JSON) -> str:
    """The demo model's accuracy with its own selections vs the informative-frames oracle, from the committed
    ``demo_model_masks.json`` (``benchmarks/demo_model_masks.py`` writes it)."""
    with open(path) as f:
        doc = json.load(f)
    top1 = {r["selection"]: r["top1"] for r in doc["rows"]}
    return (f"with its own selections it is right on {top1['own']:.0f} % of the held-out clips, with the oracle that "
            f"sends exactly the informative frames to the focal branch on {top1['informative frames only']:.0f} % "
            f"(`{doc['command']}`, [details](benchmarks/results/cpu/demo_model_masks.md)).\n")


def move4mnist_block(path: str = M4M_JSON) -> str:
    """The full-video family's Move4MNIST-style experiment (clustered K of 32 vs uniform K vs all 32 frames; mean ±
    std over seeds), from the committed ``move4mnist.json`` (``benchmarks/train_move4mnist.py`` writes it)."""
    with open(path) as f:
        doc = json.load(f)
    k = doc["clusters"]
    frames = {"uniform": (k, k), "clustered": (32, k), "all frames": (32, 32)}
    out = [f"Measured (`{doc['command']}`, {doc['total_wall_s'] / 60:.0f} min on the shared 2-core CPU machine; "
           f"fullvideo_tsm_r18 ×{doc['width']:g} width from scratch at {doc['size']}×{doc['size']} px, "
           f"{doc['pretrain_epochs']} epochs of pre-training on informative frames, {doc['warmup_epochs']} of TSM "
           f"warm-up on {k} uniform frames, then {doc['epochs']} per setting; {doc['val_samples']} validation "
           f"videos of unseen digit images, chance 25 %; mean ± std over {len(doc['seeds'])} seeds; "
           f"[details](benchmarks/results/cpu/move4mnist.md)):", "",
           "| setting | frames in | clusters | top-1 % | official GFLOPs / video |", "|---|---|---|---|---|"]
    for st, s in doc["summary"].items():
        n, kk = frames[st]
        out.append(f"| {st} | {n} | {kk} | {s['top1_mean']:.1f} ± {s['top1_std']:.1f} | {s['gflops']} |")
    return "\n".join(out) + "\n"


def crossfamily_block(path: str = CROSS_JSON) -> str:
    """The cross-family comparison table, from the committed ``cross_family.json`` (``afnet-edge bench
    --cross-family`` writes it)."""
    from afnet_edge.bench.crossfamily import table_block
    with open(path) as f:
        return table_block(json.load(f), os.path.relpath(path, ROOT))


def region_block(path: str = REGION_JSON) -> str:
    """Where AdaFocusV2's policy looks before and after training on the random-place object task (mean ± std over
    seeds), from the committed ``adafocus_region.json`` (``benchmarks/train_adafocus_region.py`` writes it)."""
    with open(path) as f:
        doc = json.load(f)
    s = doc["settings"]
    seeds = sorted({r["seed"] for r in doc["runs"]})
    summ = doc["summary"]
    pm = lambda m, k, f=".1f", x=1.0: f"{x * m[k]['mean']:{f}} ± {x * m[k]['std']:{f}}"  # noqa: E731
    out = [f"Held-out clips ({s['val_clips']} per run), eval mode, mean ± std over {len(seeds)} seeds "
           f"(`{doc['command'].strip()}`; {s['steps']} iterations of batch {s['batch_size']}, the first "
           f"{s['warmup']} with the policy frozen; P = {s['P']}; one oriented grating under a Gaussian envelope of "
           f"σ = {s['sigma']:g} px at a random place per clip in blurred noise; local top-1 = the local network "
           f"alone on the patch; [per seed, trajectories, pilots](benchmarks/results/cpu/adafocus_region.md)):", "",
           "| patches | distance to the object, px | patches holding its centre | local top-1 % | model top-1 % |",
           "|---|---|---|---|---|"]
    rows = [("policy, before training", summ["before"]["policy"]),
            ("**policy, after training**", summ["after"]["policy"]),
            ("centre patch", summ["after"]["centre"]), ("uniformly random patches", summ["after"]["random"]),
            ("oracle: centred on the object", summ["after"]["oracle"])]
    for name, m in rows:
        out.append(f"| {name} | {pm(m, 'distance_px', '.0f')} | {pm(m, 'contains', '.0f', 100.0)} % | "
                   f"{pm(m, 'top1_local')} | {pm(m, 'top1')} |")
    return "\n".join(out) + "\n"


def replace_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str | None:
    """``text`` with everything between the markers replaced by ``block``; None when the markers are missing."""
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0 or j < i:
        return None
    return text[:i + len(begin)] + "\n" + block.rstrip("\n") + "\n" + text[j:]


def current_block(text: str, begin: str = BEGIN, end: str = END) -> str | None:
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0 or j < i:
        return None
    return text[i + len(begin):j].strip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated block differs")
    ap.add_argument("--print", dest="print_only", action="store_true", help="print the README block and exit")
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "performance.md"))
    ap.add_argument("--no-projection", action="store_true", help="leave the projection block alone")
    args = ap.parse_args(argv)
    block = headline(load_results())
    if args.print_only:
        print(block)
        return 0
    rc = 0
    targets = [(args.readme, BEGIN, END, block)]
    if os.path.exists(DEMO_JSON):
        targets.append((args.readme, DBEGIN, DEND, demo_block()))
    if os.path.exists(MASKS_JSON):
        targets.append((args.readme, MBEGIN, MEND, demo_masks_block()))
    if os.path.exists(M4M_JSON):
        targets.append((args.readme, M4BEGIN, M4END, move4mnist_block()))
    if os.path.exists(REGION_JSON):
        targets.append((args.readme, RBEGIN, REND, region_block()))
    if os.path.exists(args.docs):
        targets.append((args.docs, BEGIN, END, block))
        if not args.no_projection and PBEGIN in open(args.docs).read():
            targets.append((args.docs, PBEGIN, PEND, projection_block()))
        if PLBEGIN in open(args.docs).read() and os.path.exists(PLANS_JSON):
            targets.append((args.docs, PLBEGIN, PLEND, plans_block()))
        if CBEGIN in open(args.docs).read() and os.path.exists(CROSS_JSON):
            targets.append((args.docs, CBEGIN, CEND, crossfamily_block()))
    for path, b, e, content in targets:
        text = open(path).read() if os.path.exists(path) else ""
        new = replace_block(text, content, b, e)
        if new is None:
            print(f"{os.path.relpath(path, ROOT)} has no {b} … {e} markers: nothing written there. The block:\n")
            print(content)
            continue
        if args.check:
            if current_block(text, b, e) != content.rstrip("\n") + "\n":
                print(f"{os.path.relpath(path, ROOT)}: the block between {b} and {e} differs from the results; run "
                      f"python benchmarks/make_readme_table.py", file=sys.stderr)
                rc = 1
            continue
        if new != text:
            with open(path, "w") as f:
                f.write(new)
            print(f"rewrote the {b} block of {os.path.relpath(path, ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
