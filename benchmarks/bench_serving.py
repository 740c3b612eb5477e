"""Bounded load run against a Triton server: requests/s, p50/p99 latency and mean batch size at 1, 4, 8 clients.

By default it writes a repository for a small model (``afnet-edge serve --triton-repo``), starts the CPU server
(tritonserver of nvidia-pytriton, Python backend: the PyTorch compact path) on 127.0.0.1, sends a fixed number of
requests per concurrency level (each client its own connection, one request in flight per client), reads the
server's statistics before and after each level (mean batch size = inferences / executions), stops the server and
writes ``benchmarks/results/<device>/serving.{json,md}`` with the machine's load average before and after.

    python benchmarks/bench_serving.py                                   # CPU server, clip model, 1/4/8 clients
    python benchmarks/bench_serving.py --target video                    # the whole video_classify ensemble
    python benchmarks/bench_serving.py --server 127.0.0.1:8000 --model-name afnet_mobilenetv3 --device h100-trt

``--server`` measures a server that is already running, e.g. the TensorRT model in NVIDIA's Triton container (not
available on this machine; docs/serving.md has the command):

    docker run --gpus all --rm -p8000:8000 -p8001:8001 -p8002:8002 -v $PWD/repo:/models \\
        nvcr.io/nvidia/tritonserver:24.10-py3 tritonserver --model-repository=/models \\
        --backend-config=tensorrt,plugins=/models/afnet_mobilenetv3/libafnet_edge_trt_plugins.so

Every request is checked for the right output shape; nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or "",
            "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu"] = names[0] if names else info["cpu"]
    except OSError:
        pass
    try:
        import importlib.metadata as md
        info["nvidia_pytriton"] = md.version("nvidia-pytriton")
        info["tritonclient"] = md.version("tritonclient")
    except Exception:  # noqa: BLE001 - versions are informative only
        pass
    return info


def _stats(client, name: str) -> tuple[int, int]:
    st = client.get_inference_statistics(name)["model_stats"][0]
    return int(st["inference_count"]), int(st["execution_count"])


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_level(url: str, model_name: str, make_inputs, check, clients: int, requests: int,
              timeout_s: float) -> dict:
    """``requests`` requests shared by ``clients`` threads (one in flight each); latencies in ms."""
    import tritonclient.http as http

    probe = http.InferenceServerClient(url, network_timeout=timeout_s)
    inf0, exe0 = _stats(probe, model_name)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients, timeout=timeout_s)

    def worker(w: int) -> None:
        try:
            c = http.InferenceServerClient(url, network_timeout=timeout_s)
            inputs = make_inputs(http)
            barrier.wait()
            for _ in range(w, requests, clients):
                t0 = time.perf_counter()
                res = c.infer(model_name, inputs)
                dt = (time.perf_counter() - t0) * 1e3
                check(res)
                with lock:
                    latencies.append(dt)
            c.close()
        except Exception as exc:  # noqa: BLE001 - reported in the results
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s)
    wall = time.perf_counter() - t0
    inf1, exe1 = _stats(probe, model_name)
    probe.close()
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"{clients} clients: {errors[:3] or 'threads did not finish in time'}")
    inferences, executions = inf1 - inf0, exe1 - exe0
    return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 3),
            "requests_per_s": round(len(latencies) / wall, 3), "p50_ms": round(_percentile(latencies, 50), 2),
            "p99_ms": round(_percentile(latencies, 99), 2), "mean_ms": round(statistics.fmean(latencies), 2),
            "server_inferences": inferences, "server_executions": executions,
            "mean_batch_size": round(inferences / executions, 3) if executions else None}


def write_markdown(result: dict, path: str) -> None:
    m = result["machine"]
    lines = [f"# Serving load run: {result['target']} ({result['model_name']})", "",
             f"Command: `{result['command']}`  ",
             f"Server: {result['server']}; model {result['model']} T={result['frames']} {result['size']}×"
             f"{result['size']}; {result['requests_per_level']} requests per level; {result['created']}  ",
             f"Machine: {m['cpu']}, {m['cores']} cores; load average before {result['loadavg_before']}, after "
             f"{result['loadavg_after']} (1/5/15 min)", "",
             "| clients | requests/s | p50 ms | p99 ms | mean batch size (server) | inferences / executions |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in result["levels"]:
        lines.append(f"| {r['clients']} | {r['requests_per_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['mean_batch_size']} | {r['server_inferences']} / {r['server_executions']} |")
    loaded = (result["loadavg_before"] or [0])[0] > m["cores"]
    lines += ["", "Latencies include the client (HTTP, JSON/binary encoding) on the same machine."
              + (" The machine was loaded (load average above the core count): the numbers are not representative."
                 if loaded else "")]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default=None, help="HOST:PORT of a running server (default: start the CPU server)")
    p.add_argument("--model-name", default=None, help="model to call (default: the clip model or video_classify)")
    p.add_argument("--target", choices=("clip", "video"), default="clip",
                   help="clip: the classifier alone, random normalised clips; video: the ensemble with a video file")
    p.add_argument("--model", default="af_mobilenetv3")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--classes", type=int, default=174)
    p.add_argument("--clients", default="1,4,8")
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency level (bounded run)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per level at most")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="results folder name under benchmarks/results/")
    p.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<device>/serving_<target>"
                                               ".json)")
    args = p.parse_args(argv)
    levels = [int(v) for v in args.clients.split(",")]
    if args.requests < max(levels):
        p.error("--requests must be at least the largest --clients")

    from afnet_edge.models import create_model
    from afnet_edge.serve.repository import classifier_names, write_repository
    from afnet_edge.video import write_test_video

    tmp = tempfile.TemporaryDirectory(prefix="afnet_edge_bench_serving_")
    server = None
    try:
        rng = np.random.default_rng(0)
        video = write_test_video(os.path.join(tmp.name, "clip.mp4"),
                                 rng.integers(0, 256, size=(48, 120, 160, 3), dtype=np.uint8))
        if args.server:
            url = args.server
            where = f"external {url}"
        else:
            from afnet_edge.serve.server import TritonServer

            model = create_model(args.model, num_classes=args.classes, num_frames=args.frames).eval()
            repo = os.path.join(tmp.name, "repo")
            write_repository(repo, model, size=args.size, torch_threads=args.torch_threads)
            server = TritonServer(repo).start()
            server.wait_ready(timeout_s=300)
            url = server.http_url
            where = "tritonserver (nvidia-pytriton) on 127.0.0.1, Python backend, PyTorch compact path"
        name = args.model_name or (classifier_names(args.model)["torch"] if args.target == "clip"
                                   else "video_classify")
        data = open(video, "rb").read()

        def make_inputs(http):
            if args.target == "video":
                inp = http.InferInput("VIDEO", [1, 1], "BYTES")
                inp.set_data_from_numpy(np.array([[data]], dtype=np.object_))
                return [inp]
            clip = np.random.default_rng().standard_normal((1, args.frames, 3, args.size, args.size),
                                                           dtype=np.float32)
            inp = http.InferInput("clip", list(clip.shape), "FP32")
            inp.set_data_from_numpy(clip, binary_data=True)
            return [inp]

        def check(res):
            out = res.as_numpy("LOGITS" if args.target == "video" else "logits")
            if out is None or out.shape != (1, args.classes):
                raise RuntimeError(f"unexpected output {None if out is None else out.shape}")

        load_before = _load()
        run_level(url, name, make_inputs, check, 1, 2, args.timeout)   # warm-up (not recorded)
        results = [run_level(url, name, make_inputs, check, c, args.requests, args.timeout) for c in levels]
        load_after = _load()
    finally:
        if server is not None:
            server.stop()
        tmp.cleanup()

    result = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": "python " + " ".join([os.path.relpath(__file__, REPO)] + (argv or sys.argv[1:])),
              "server": where, "target": args.target, "model_name": name, "model": args.model,
              "frames": args.frames, "size": args.size, "classes": args.classes,
              "requests_per_level": args.requests, "loadavg_before": load_before, "loadavg_after": load_after,
              "machine": {**machine_info(), "platform": platform.platform()}, "levels": results}
    out = args.out or os.path.join(REPO, "benchmarks", "results", args.device, f"serving_{args.target}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    write_markdown(result, os.path.splitext(out)[0] + ".md")
    for r in results:
        print(f"{r['clients']} clients: {r['requests_per_s']:.2f} req/s, p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms, mean batch {r['mean_batch_size']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
