"""Peak memory of streaming vs offline full-video clustering (issue 14 item 3), measured on the CPU.

For ``fullvideo_tsm_r18`` (slope rule, K clusters, random weights) and each N:

* **stream**: ``model.stream()``, then ``push`` of chunks of ``--chunk`` frames, each chunk generated just before its
  push (the whole video never exists), then ``finish()``;
* **offline**: the whole video ``(1, N, 3, H, W)`` generated, then ``model(video)`` (``max_frames`` raised to N so
  that every frame is used, as the stream does).

Two numbers per run:

* ``live_peak``: the peak of live torch tensor bytes created by the run (input frames included; weights excluded),
  tracked per aten op by :func:`afnet_edge.bench.memory.live_tensor_peak` — exact and independent of the allocator;
* ``rss_delta``: the process's resident-set high-water mark minus its resident set just before the run (a separate,
  untracked run in a fresh child process per (mode, N), so that heap kept by earlier runs cannot hide growth; the
  allocator's caching makes it coarser than ``live_peak``).

Streaming and offline logits and segment boundaries are compared where both ran (same seed, same frames).

    nice python benchmarks/fullvideo_stream_memory.py                  # N = 64, 512, 4096 at 32 px, K=16, chunk 16
    nice python benchmarks/fullvideo_stream_memory.py --n 64 512 --size 64
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from afnet_edge.bench.environment import collect_environment  # noqa: E402
from afnet_edge.bench.memory import MIB, live_tensor_peak, reset_hwm, rss_kib  # noqa: E402

MODES = ("stream", "offline")


def build_model(clusters: int, n_max: int, seed: int = 0) -> torch.nn.Module:
    """``fullvideo_tsm_r18`` with the slope rule, K=``clusters``, ``max_frames`` ≥ ``n_max`` (every frame used), random
    weights and BN statistics (seeded), in eval mode."""
    from afnet_edge.models.fullvideo import fullvideo_tsm_r18
    torch.manual_seed(seed)
    model = fullvideo_tsm_r18(num_classes=10, clusters=clusters, rule="slope", max_frames=max(n_max, 1))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


def _chunk(seed: int, start: int, n: int, size: int) -> torch.Tensor:
    """Frames ``start … start+n−1`` of the synthetic video ``(n, 3, size, size)``, one generator
    seeded per frame, so a chunk and the whole video hold the same frames whatever the chunking."""
    out = []
    for f in range(start, start + n):
        g = torch.Generator().manual_seed(seed * 1_000_003 + f)
        out.append(torch.randn(1, 3, size, size, generator=g))
    return torch.cat(out)


def run_once(model: torch.nn.Module, mode: str, n: int, size: int, chunk: int, seed: int = 1):
    """One run of ``mode`` over an N-frame video; returns the output (``.logits (1, classes)``, ``.segments``).
    Frames are generated inside the run (stream: per chunk; offline: the whole ``(1, N, 3, size, size)`` video)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if n < 1 or chunk < 1:
        raise ValueError(f"n and chunk must be positive, got n={n}, chunk={chunk}")
    if mode == "offline":
        video = _chunk(seed, 0, n, size)[None]
        with torch.no_grad():
            return model(video)
    s = model.stream()
    for start in range(0, n, chunk):
        s.push(_chunk(seed, start, min(chunk, n - start), size))
    return s.finish()


def measure(model: torch.nn.Module, mode: str, n: int, size: int, chunk: int, seed: int = 1) -> dict:
    """Peak live tensor bytes of one run (:func:`run_once`, input frames included) → ``{"live_peak_bytes", "logits",
    "segments", "seconds"}``."""
    box: dict = {}

    def fn():
        box["out"] = run_once(model, mode, n, size, chunk, seed)

    t0 = time.perf_counter()
    peak = live_tensor_peak(fn)
    out = box["out"]
    return {"live_peak_bytes": int(peak), "seconds": time.perf_counter() - t0,
            "logits": out.logits.reshape(-1).tolist(), "segments": out.segments.reshape(-1).tolist()}


def child(mode: str, n: int, size: int, clusters: int, chunk: int, seed: int) -> dict:
    """In a fresh process: the RSS high-water delta of an untracked run, then the tracked run."""
    torch.set_num_threads(1)
    model = build_model(clusters, n)
    run_once(model, mode, min(n, 2 * chunk), size, chunk, seed)      # warm-up: first-call allocations, small N
    before = rss_kib().get("VmRSS")
    hwm_ok = reset_hwm()
    run_once(model, mode, n, size, chunk, seed)
    after = rss_kib()
    res = measure(model, mode, n, size, chunk, seed)
    res["rss_delta_kib"] = (after["VmHWM"] - before) if (hwm_ok and before is not None and "VmHWM" in after) else None
    return res


def _fmt_mib(b) -> str:
    return "—" if b is None else f"{b / MIB:.2f}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[64, 512, 4096], help="video lengths N")
    p.add_argument("--size", type=int, default=32, help="frame height = width (px)")
    p.add_argument("--clusters", type=int, default=16, help="K")
    p.add_argument("--chunk", type=int, default=16, help="frames per push")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--offline-cap-gib", type=float, default=3.0,
                   help="skip offline where its estimated live peak exceeds this")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "cpu", "fullvideo_stream_memory"))
    p.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        res = child(args.child[0], int(args.child[1]), args.size, args.clusters, args.chunk, args.seed)
        print("RESULT " + json.dumps(res))
        return res

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *(argv or sys.argv[1:])])
    env = collect_environment("cpu")
    env["torch_threads"] = 1
    load_start = list(os.getloadavg())
    t_start = time.time()
    # offline's live peak is dominated by conv1's output (64 ch at size/2) plus the input: estimate it to cap N
    per_frame = 4 * (3 * args.size ** 2 + 2 * 64 * (args.size // 2) ** 2 + 3 * 64 * (args.size // 4) ** 2)
    rows = []
    for n in args.n:
        row: dict = {"n": n}
        for mode in MODES:
            if mode == "offline" and n * per_frame > args.offline_cap_gib * (1 << 30):
                row[mode] = {"skipped": f"estimated live peak {n * per_frame / (1 << 30):.1f} GiB > cap "
                                        f"{args.offline_cap_gib} GiB"}
                continue
            cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, str(n), "--size", str(args.size),
                   "--clusters", str(args.clusters), "--chunk", str(args.chunk), "--seed", str(args.seed)]
            t0 = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"child {mode} N={n} failed:\n{proc.stderr[-2000:]}")
            row[mode] = json.loads(lines[-1][len("RESULT "):])
            row[mode]["wall_s"] = round(time.time() - t0, 1)
            print(f"N={n:5d} {mode:7s} live peak {_fmt_mib(row[mode]['live_peak_bytes'])} MiB, RSS delta "
                  f"{row[mode]['rss_delta_kib']} KiB ({row[mode]['wall_s']} s)", flush=True)
        if "logits" in row["offline"]:
            a, b = torch.tensor(row["stream"]["logits"]), torch.tensor(row["offline"]["logits"])
            row["max_abs_logit_diff"] = float((a - b).abs().max())
            row["max_rel_logit_diff"] = float(((a - b).abs() / b.abs().clamp_min(1e-12)).max())
            row["segments_equal"] = row["stream"]["segments"] == row["offline"]["segments"]
        rows.append(row)
    result = {
        "what": "peak memory of fullvideo_tsm_r18 streaming (push in chunks) vs the offline forward, CPU",
        "command": command, "model": "fullvideo_tsm_r18", "rule": "slope", "clusters": args.clusters,
        "size": args.size, "chunk": args.chunk, "seed": args.seed, "dtype": "float32", "weights": "random (seeded)",
        "loadavg_start": load_start, "loadavg_end": list(os.getloadavg()),
        "seconds": round(time.time() - t_start, 1), "environment": env, "rows": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(render_md(result))
    print(render_md(result))
    return result


def render_md(r: dict) -> str:
    e = r["environment"]
    lines = [
        "# Full-video clustering: streaming vs offline peak memory (CPU)", "",
        f"Generated by `{r['command']}` in {r['seconds']} s on {e['cpu_model']} ({e['cpu_count']} cores shared with "
        f"other jobs; 1-minute load average {r['loadavg_start'][0]:.2f} at the start, {r['loadavg_end'][0]:.2f} at "
        f"the end), torch {e['torch']}, 1 thread, float32, commit {str(e.get('git_commit'))[:7]}"
        f"{' (dirty)' if e.get('git_dirty') else ''}.", "",
        f"Model: `{r['model']}`, rule `{r['rule']}`, K = {r['clusters']}, frames {r['size']}×{r['size']} px, random "
        f"weights (seeded). Stream: `model.stream()`, `push` of {r['chunk']}-frame chunks generated just before each "
        "push, `finish()`. Offline: the whole `(1, N, 3, H, W)` video generated, then `model(video)` with "
        "`max_frames` ≥ N (every frame used, as the stream does).", "",
        "`live peak`: peak bytes of live torch tensors created by the run, input frames included, weights excluded "
        "(`afnet_edge.bench.memory.live_tensor_peak`, per aten op). `RSS Δ`: VmHWM minus VmRSS just before an "
        "untracked run, each (mode, N) in a fresh process after a small warm-up run (coarser: allocator caching).", "",
        "| N | stream live peak MiB | offline live peak MiB | stream RSS Δ MiB | offline RSS Δ MiB | "
        "max abs logit diff, stream vs offline (÷ max abs offline logit) | segments equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        s, o = row["stream"], row["offline"]

        def rss(x):
            return "—" if x.get("rss_delta_kib") is None else f"{x['rss_delta_kib'] / 1024:.1f}"
        if "skipped" in o:
            lines.append(f"| {row['n']} | {_fmt_mib(s['live_peak_bytes'])} | skipped ({o['skipped']}) | {rss(s)} | — "
                         f"| — | — |")
        else:
            lines.append(f"| {row['n']} | {_fmt_mib(s['live_peak_bytes'])} | {_fmt_mib(o['live_peak_bytes'])} | "
                         f"{rss(s)} | {rss(o)} | {row['max_abs_logit_diff']:.2e} "
                         f"({row['max_abs_logit_diff'] / max(abs(x) for x in o['logits']):.1e}) | "
                         f"{row['segments_equal']} |")
    lines += ["", "Streaming state is the K running fp32 segment sums plus the previous frame's packed bits "
              "(O(K·D)); its live peak also holds one chunk's frames and per-frame activations, so it is flat in N; "
              "the offline forward holds every frame's input and stem/layer1 activations, so it grows linearly "
              "in N.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
