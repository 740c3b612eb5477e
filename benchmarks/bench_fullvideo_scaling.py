"""Full-video clustering on the CPU: per-frame throughput of the stem + layer1 part and end-to-end latency vs the
number of frames N (issue 14 item 6; spec full-video-clustering.md §7).

For each N (one video, batch 1, random weights and BN statistics, eval mode, fp32) it times, interleaved round by
round so that load drift hits them alike:

* ``per-frame part``: ``base_model.per_frame`` (stem + layer1) on the N frames — frames/s;
* ``clustered``: the whole forward, N frames clustered to K (the model's rule, on-device ops / their CPU twins);
* ``TSM on K frames``: the same network on K frames (K clusters of one frame: what uniform sampling costs);
* ``all frames, unclustered``: the network on all N frames (K = N), up to ``--dense-max`` frames.

Writes ``benchmarks/results/cpu/fullvideo_scaling.{json,md}`` with the machine, threads and the load average before
and after. Speed is reported, never asserted. Run from the repository root::

    python benchmarks/bench_fullvideo_scaling.py                 # fullvideo_tsm_r50, 128 px, N = 8 … 256, K = 8
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from afnet_edge.bench.runners import randomize_weights  # noqa: E402
from afnet_edge.bench.timing import timing_stats  # noqa: E402
from afnet_edge.flops import count_flops  # noqa: E402
from afnet_edge.models import create_model  # noqa: E402


def _model(name: str, n: int, k: int, size: int, seed: int):
    m = create_model(name, num_classes=174, num_frames=n, clusters=k, max_frames=None)
    randomize_weights(m, seed)
    m.eval()
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="fullvideo_tsm_r50", choices=("fullvideo_tsm_r50", "fullvideo_tsm_r18"))
    p.add_argument("--size", type=int, default=128, help="frame side, a multiple of 32 (128; the paper: 224)")
    p.add_argument("--clusters", type=int, default=8, help="K (8)")
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    p.add_argument("--dense-max", type=int, default=64, help="largest N timed without clustering (64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "cpu", "fullvideo_scaling"))
    a = p.parse_args(argv)
    if a.clusters < 1 or any(n < a.clusters for n in a.frames):
        raise SystemExit(f"--frames: every N must be >= --clusters {a.clusters}, got {a.frames}")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    started, load0 = time.time(), os.getloadavg()
    k = a.clusters
    tsm_k = _model(a.model, k, k, a.size, a.seed)
    rows = []
    for n in a.frames:
        clustered = _model(a.model, n, k, a.size, a.seed)
        dense = _model(a.model, n, n, a.size, a.seed) if n <= a.dense_max else None
        clip = torch.randn(1, n, 3, a.size, a.size)
        frames = clip.reshape(n, 3, a.size, a.size)
        ways = {"per-frame part": lambda: clustered.base_model.per_frame(frames),
                "clustered": lambda: clustered(clip).logits,
                "TSM on K frames": lambda: tsm_k(clip[:, :: n // k][:, :k]).logits}
        if dense is not None:
            ways["all frames, unclustered"] = lambda: dense(clip).logits
        times: dict = {w: [] for w in ways}
        with torch.inference_mode():
            for fn in ways.values():                                     # warm-up
                fn()
            for _ in range(a.repeats):                                   # interleaved rounds
                for w, fn in ways.items():
                    t0 = time.perf_counter()
                    fn()
                    times[w].append(1e3 * (time.perf_counter() - t0))
        row = {"frames": n, "clusters": k}
        for w, ts in times.items():
            row[w] = {"p50_ms": round(timing_stats(ts)["p50"], 2), "min_ms": round(min(ts), 2), "n": len(ts)}
        row["per-frame part"]["frames_per_s"] = round(1e3 * n / row["per-frame part"]["p50_ms"], 1)
        row["official_gflops"] = {"clustered": round(count_flops(clustered, image_size=a.size)["official_gflops"], 3)}
        if dense is not None:
            row["official_gflops"]["all frames, unclustered"] = round(
                count_flops(dense, image_size=a.size)["official_gflops"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"benchmark": "fullvideo_scaling", "model": a.model, "size": a.size, "clusters": k, "threads": a.threads,
           "repeats": a.repeats, "seed": a.seed, "rows": rows,
           "tsm_k_gflops": round(count_flops(tsm_k, image_size=a.size)["official_gflops"], 3),
           "command": "python benchmarks/bench_fullvideo_scaling.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
           "torch": torch.__version__, "load_start": [round(x, 2) for x in load0],
           "load_end": [round(x, 2) for x in os.getloadavg()], "nice": os.nice(0),
           "total_wall_s": round(time.time() - started, 1)}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump(res, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(render_md(res))
    print(render_md(res))
    return 0


def render_md(res: dict) -> str:
    k = res["clusters"]
    out = [f"# Full-video clustering on the CPU: per-frame part and end-to-end latency vs N ({res['model']}, "
           f"{res['size']}² px, K = {k})", "",
           f"`{res['command']}` — batch 1, random weights, eval, fp32, {res['threads']} thread(s) at nice "
           f"{res['nice']}, p50 of {res['repeats']} interleaved rounds after a warm-up; {res['machine']}, torch "
           f"{res['torch']}; 1-min load {res['load_start'][0]} at the start, {res['load_end'][0]} at the end (a "
           f"shared machine: the numbers are provisional and only their ratios carry over); "
           f"{res['total_wall_s']:.0f} s in all. TSM on K = {k} frames: {res['tsm_k_gflops']} official GFLOPs.", "",
           "| N | per-frame part ms | frames/s | clustered ms | TSM on K frames ms | all frames, unclustered ms "
           "| clustered GFLOPs | unclustered GFLOPs |", "|---|---|---|---|---|---|---|---|"]
    ref = min(r["TSM on K frames"]["p50_ms"] for r in res["rows"])
    hit = []
    for r in res["rows"]:
        if r["TSM on K frames"]["p50_ms"] > 1.5 * ref:      # the same K-frame network: only the load changed
            hit.append(r["frames"])
        d = r.get("all frames, unclustered")
        g = r["official_gflops"]
        out.append(f"| {r['frames']} | {r['per-frame part']['p50_ms']:.1f} | {r['per-frame part']['frames_per_s']:.1f}"
                   f" | {r['clustered']['p50_ms']:.1f} | {r['TSM on K frames']['p50_ms']:.1f} | "
                   f"{d['p50_ms']:.1f} | " if d else
                   f"| {r['frames']} | {r['per-frame part']['p50_ms']:.1f} | {r['per-frame part']['frames_per_s']:.1f}"
                   f" | {r['clustered']['p50_ms']:.1f} | {r['TSM on K frames']['p50_ms']:.1f} | – | ")
        out[-1] += f"{g['clustered']} | {g.get('all frames, unclustered', '–')} |"
    out += ["", ("Load-affected rows (TSM on K frames, the same network in every row, above 1.5× its fastest row): "
                 f"N = {', '.join(map(str, hit))}; their times are not comparable." if hit else
                 "No row load-affected (TSM on K frames, the same network in every row, within 1.5× of its fastest "
                 "row).")]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
