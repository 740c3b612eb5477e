"""Triton serving against a real ``tritonserver`` (the one bundled in nvidia-pytriton), started once for this module.

The server runs `afnet-edge serve --run` on a repository written by `afnet-edge serve --triton-repo` for a small
AF-MobileNetV3 (T=4, 10 classes, 64×64 crops, random weights saved as a checkpoint), on 127.0.0.1 with free ports.
Every wait is bounded; the server is killed by PID in a ``finally``. The last test stops it with SIGTERM and checks
that no process, shared-memory file or workspace folder is left.

The ONNX Runtime and TensorRT backends do not exist in this server: their configs are checked as text
(parsed into Triton's ModelConfig protobuf), not loaded.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from conftest import needs_av, randomize_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T, CLASSES, SIZE, MAX_BATCH = 4, 10, 64, 8
TORCH_MODEL = "afnet_mobilenetv3_torch"

tritonclient_http = pytest.importorskip("tritonclient.http", reason="tritonclient (extra afnet_edge[serve]) is "
                                                                      "needed for the serving tests")


def _wait_for(path: str, pattern: str, proc: subprocess.Popen, timeout_s: float) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.25)
    with open(path, encoding="utf-8", errors="replace") as f:
        raise AssertionError(f"no {pattern!r} from `afnet-edge serve --run` within {timeout_s} s:\n{f.read()[-3000:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(info dict, the in-process model) for a running server; killed by PID at the end whatever happened."""
    from afnet_edge.checkpoint import save_checkpoint
    from afnet_edge.cli import main
    from afnet_edge.models import create_model
    from afnet_edge.serve.server import STUB_ENV_VAR, free_port, numpy_major
    from afnet_edge.video import write_test_video

    # the wheel's tritonserver is what the tests need (find_triton, as `serve --run` does); importing the pytriton
    # package would also need its Python API's dependencies (pyzmq, …), which CI leaves out (--no-deps)
    if importlib.util.find_spec("pytriton") is None:
        pytest.skip("nvidia-pytriton (extra afnet_edge[serve]) is needed for the serving tests")
    if numpy_major() >= 2 and not os.environ.get(STUB_ENV_VAR):
        pytest.fail(f"numpy>=2 here: set ${STUB_ENV_VAR} to a stub environment (afnet-edge serve --make-stub-env "
                    f"DIR; .ci/run makes one)")
    d = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    model = randomize_model(create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T), seed=7).eval()
    ckpt = str(d / "ckpt.pth")
    save_checkpoint(model, ckpt)
    rng = np.random.default_rng(11)
    video = write_test_video(d / "clip.mp4", rng.integers(0, 256, size=(18, 72, 96, 3), dtype=np.uint8))
    (d / "not_a_video.mp4").write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    repo = str(d / "repo")
    assert main(["serve", "--checkpoint", ckpt, "--size", str(SIZE), "--triton-repo", repo,
                 "--max-batch", str(MAX_BATCH), "--queue-delay-us", "20000", "--torch-threads", "1"]) == 0
    ports = [free_port() for _ in range(3)]
    out = str(d / "serve.out")
    cmd = [sys.executable, "-m", "afnet_edge.cli", "serve", "--triton-repo", repo, "--run", "--http-port",
           str(ports[0]), "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2]), "--ready-timeout", "150"]
    server_pid = None
    with open(out, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        m = _wait_for(out, r"starting tritonserver pid (\d+) on \S+ \(workspace (\S+), log", proc, 60)
        server_pid, workspace = int(m.group(1)), m.group(2)
        _wait_for(out, r"ready: HTTP", proc, 160)
        info = {"http": f"127.0.0.1:{ports[0]}", "grpc": f"127.0.0.1:{ports[1]}", "proc": proc, "out": out,
                "server_pid": server_pid, "workspace": workspace, "repo": repo, "ckpt": ckpt, "video": video,
                "bad_video": str(d / "not_a_video.mp4")}
        yield info, model
    finally:
        for pid in (proc.pid, server_pid):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if server_pid:
            try:  # the server's process group: its Python backend stubs
                os.killpg(server_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _client(info):
    return tritonclient_http.InferenceServerClient(info["http"], network_timeout=60, connection_timeout=60)


def _infer_clip(client, clip: np.ndarray, dtype: str = "FP32", name: str = "clip"):
    inp = tritonclient_http.InferInput(name, list(clip.shape), dtype)
    inp.set_data_from_numpy(clip)
    return client.infer(TORCH_MODEL, [inp])


def _model_stats(client, name: str) -> tuple[int, int]:
    st = client.get_inference_statistics(name)["model_stats"][0]
    return int(st["inference_count"]), int(st["execution_count"])


@needs_av
def test_repository_loads_and_configs_parse(served):
    from afnet_edge.serve.repository import validate_config_text

    info, _ = served
    client = _client(info)
    names = sorted(os.listdir(info["repo"]))
    assert names == sorted([TORCH_MODEL, "postprocess", "preprocess", "video_classify"])
    for name in names:
        assert client.is_model_ready(name), name
        with open(os.path.join(info["repo"], name, "config.pbtxt")) as f:
            cfg = validate_config_text(f.read())
        served_cfg = client.get_model_config(name)
        assert served_cfg["name"] == cfg.name == name
        assert served_cfg["max_batch_size"] == cfg.max_batch_size == MAX_BATCH
    clip_cfg = client.get_model_config(TORCH_MODEL)
    assert clip_cfg["input"][0]["dims"] == [str(v) for v in (T, 3, SIZE, SIZE)] or \
        clip_cfg["input"][0]["dims"] == [T, 3, SIZE, SIZE]
    assert clip_cfg["dynamic_batching"]["preferred_batch_size"] == [4, 8]
    client.close()


@needs_av
def test_ensemble_equals_predict(served, capsys):
    from afnet_edge.cli import main
    from afnet_edge.predict import print_prediction
    from afnet_edge.serve.client import classify
    from afnet_edge.video import load_clip

    info, model = served
    assert main(["predict", info["video"], "--checkpoint", info["ckpt"], "--size", str(SIZE), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    clip, _, _ = load_clip(info["video"], T, size=SIZE)
    with torch.no_grad():
        logits = model.configure(execution="compact", selection="threshold")(clip.unsqueeze(0)).logits[0]
    for protocol, url in (("grpc", info["grpc"]),):   # HTTP: the classify command below
        remote = classify(url, info["video"], protocol=protocol)
        assert remote.frame_indices == local["sampled_frames"]
        assert remote.video_frames == local["video_frames"]
        assert [c for c, _, _ in remote.top] == [t["class"] for t in local["top"]]
        np.testing.assert_allclose([p for _, _, p in remote.top], [t["prob"] for t in local["top"]], atol=1e-5)
        assert remote.selected == local["selected"]
        assert max(abs(a - b) for a, b in zip(remote.logits, logits.tolist())) <= 1e-4
    # the classify command prints what predict prints (predict's own printer, fed predict's JSON)
    print_prediction(info["video"], local["video_frames"], local["sampled_frames"],
                     [(t["class"], t["name"], t["prob"]) for t in local["top"]], local["selected"], local["real_ratio"])
    predicted = capsys.readouterr().out
    assert main(["classify", "--server", info["http"], info["video"]]) == 0
    assert capsys.readouterr().out == predicted


@needs_av
def test_clip_model_equals_in_process_model(served):
    info, model = served
    clip = torch.randn(2, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    client = _client(info)
    out = _infer_clip(client, clip.numpy()).as_numpy("logits")
    client.close()
    with torch.no_grad():
        ref = model.configure(execution="compact", selection="threshold")(clip).logits.numpy()
    assert out.shape == (2, CLASSES)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


@needs_av
def test_concurrent_clients_are_batched(served):
    info, model = served
    clients, per_client = 8, 1
    g = torch.Generator().manual_seed(9)
    clips = [torch.randn(1, T, 3, SIZE, SIZE, generator=g) for _ in range(clients * per_client)]
    with torch.no_grad():
        model.configure(execution="compact", selection="threshold")
        refs = list(model(torch.cat(clips)).logits.numpy()[:, None])   # per clip: the batch does not mix clips
    probe = _client(info)
    inf0, exe0 = _model_stats(probe, TORCH_MODEL)
    results: dict = {}
    errors: list = []
    start = threading.Barrier(clients, timeout=60)

    def worker(w: int) -> None:
        try:
            c = _client(info)
            start.wait()
            for i in range(w, len(clips), clients):
                results[i] = _infer_clip(c, clips[i].numpy()).as_numpy("logits")
            c.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    assert sorted(results) == list(range(len(clips)))
    for i, ref in enumerate(refs):
        np.testing.assert_allclose(results[i], ref, atol=1e-4, rtol=0)
    inf1, exe1 = _model_stats(probe, TORCH_MODEL)
    probe.close()
    assert inf1 - inf0 == len(clips)
    assert exe1 - exe0 < inf1 - inf0, (inf1 - inf0, exe1 - exe0)   # dynamic batching happened


def _post(info, model: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(f"http://{info['http']}/v2/models/{model}/infer", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _json_infer(name: str, shape, datatype: str, data) -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}).encode()


@needs_av
def test_bad_requests_get_4xx_and_the_server_keeps_serving(served):
    from tritonclient.utils import InferenceServerException

    from afnet_edge.serve.client import classify_bytes

    info, _ = served
    rng = np.random.default_rng(3)
    good = rng.standard_normal((1, T, 3, SIZE, SIZE)).astype(np.float32)
    bad_cases = {
        "wrong shape": _json_infer("clip", (1, T, 3, SIZE, SIZE + 1), "FP32",
                                   rng.standard_normal(T * 3 * SIZE * (SIZE + 1)).tolist()),
        "wrong dtype": _json_infer("clip", good.shape, "FP64", good.reshape(-1).tolist()),
        "batch too large": _json_infer("clip", (MAX_BATCH + 1, T, 3, SIZE, SIZE), "FP32",
                                       rng.standard_normal((MAX_BATCH + 1) * good.size).tolist()),
        "wrong input name": _json_infer("video", good.shape, "FP32", good.reshape(-1).tolist()),
        "empty body": b"",
    }
    for what, body in bad_cases.items():
        code, text = _post(info, TORCH_MODEL, body)
        assert 400 <= code < 500, (what, code, text)
    with open(info["bad_video"], "rb") as f:
        not_video = f.read()
    for what, data in (("non-video file", not_video), ("empty video", b"")):
        with pytest.raises(InferenceServerException) as exc:
            classify_bytes(info["http"], data)
        assert exc.value.status() == "400", (what, exc.value)
        assert "video" in exc.value.message().lower(), (what, exc.value.message())
    # still serving, with correct answers
    client = _client(info)
    assert client.is_server_live() and client.is_server_ready()
    assert _infer_clip(client, good).as_numpy("logits").shape == (1, CLASSES)
    client.close()
    assert classify_bytes(info["http"], open(info["video"], "rb").read()).frame_indices


def test_configs_of_backends_absent_here_parse():
    """ONNX Runtime and TensorRT models cannot be loaded by this server (Python backend only): their config text is
    generated from export metadata / an engine sidecar and parsed into Triton's ModelConfig."""
    from afnet_edge.serve.repository import onnx_config, render_config, tensorrt_config, validate_config_text

    meta = {"model": "af_mobilenetv3", "num_frames": 8, "num_classes": 174, "height": 224, "width": 224,
            "batch": "dynamic", "example_batch": 1}
    msg = validate_config_text(render_config(onnx_config(meta, "afnet_mobilenetv3_onnx", max_batch=16)))
    assert msg.backend == "onnxruntime" and msg.max_batch_size == 16 and list(msg.input[0].dims) == [8, 3, 224, 224]
    assert list(msg.dynamic_batching.preferred_batch_size) == [8, 16] and msg.output[0].name == "logits"
    with pytest.raises(ValueError, match="dynamic-batch"):
        onnx_config({**meta, "batch": 1}, "x")
    side = {"batch": "dynamic", "max_batch": 4, "example_batch": 2,
            "inputs": [{"name": "clip", "shape": [-1, 8, 3, 224, 224], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": [-1, 174], "dtype": "float32"}]}
    msg = validate_config_text(render_config(tensorrt_config(side, "afnet_mobilenetv3")))
    assert msg.platform == "tensorrt_plan" and msg.max_batch_size == 4 and list(msg.input[0].dims) == [8, 3, 224, 224]
    assert list(msg.dynamic_batching.preferred_batch_size) == [2, 4] and list(msg.instance_group[0].profile) == ["0"]
    static = {**side, "batch": 1, "max_batch": 1,
              "inputs": [{"name": "clip", "shape": [1, 8, 3, 224, 224], "dtype": "float32"}]}
    msg = validate_config_text(render_config(tensorrt_config(static, "afnet_mobilenetv3")))
    assert msg.max_batch_size == 0 and list(msg.input[0].dims) == [1, 8, 3, 224, 224]
    with pytest.raises(ValueError, match="config.pbtxt"):
        validate_config_text('name: "x"\nbackend: "python"\nmax_batch_size: 2\ninput [ { name: "a" } ]\n')


def test_serve_without_nvidia_pytriton_says_which_extra(monkeypatch, tmp_path, capsys):
    import importlib.util

    from afnet_edge.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytriton" else real(name, *a))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\n')
    assert main(["serve", "--triton-repo", str(tmp_path), "--run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nvidia-pytriton" in err and "[serve]" in err


@needs_av
def test_sigterm_stops_cleanly_and_leaves_nothing(served):
    """Last test of the module: stops the shared server."""
    info, _ = served
    proc, server_pid = info["proc"], info["server_pid"]
    stubs_before = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, info["workspace"])]
    assert stubs_before, "no Python backend stub runs from the workspace: the test would prove nothing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0
    with open(info["out"]) as f:
        text = f.read()
    assert "tritonserver stopped (exit code 0)" in text, text[-2000:]
    assert not _alive(server_pid)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, info["workspace"])]
    assert not os.path.exists(info["workspace"])
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"afnet_edge_{proc.pid}_")]
    assert not [f for f in os.listdir("/tmp") if f.startswith("afnet_edge_preprocess_")
                and _owned_by_run(os.path.join("/tmp", f), info)]


def _cmdline_has(pid: str, text: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


def _owned_by_run(path: str, info) -> bool:
    """A preprocess scratch folder created while this module's server ran."""
    try:
        return os.path.getmtime(path) >= os.path.getmtime(info["repo"])
    except OSError:
        return False


def test_repository_with_an_engine_writes_plan_configs_and_deepstream(tmp_path):
    """The writer's TensorRT branch (file layout and configs; the engine bytes are a stand-in: no TensorRT backend
    exists here to load a real plan)."""
    from afnet_edge.export.engine import SIDECAR_FORMAT
    from afnet_edge.models import create_model
    from afnet_edge.serve.repository import validate_config_text, write_repository

    model = create_model("af_mobilenetv3", num_classes=CLASSES, num_frames=T).eval()
    engine = tmp_path / "m.engine"
    payload = os.urandom(256)
    engine.write_bytes(payload)
    side = {"format": SIDECAR_FORMAT, "model": "af_mobilenetv3", "num_frames": T, "num_classes": CLASSES,
            "batch": "dynamic", "example_batch": 2, "max_batch": 4, "height": SIZE, "width": SIZE,
            "precision": "fp16", "engine": "m.engine", "plugin": None,
            "inputs": [{"name": "clip", "shape": [-1, T, 3, SIZE, SIZE], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": [-1, CLASSES], "dtype": "float32"}]}
    (tmp_path / "m.engine.json").write_text(json.dumps(side))
    repo = tmp_path / "repo"
    summary = write_repository(str(repo), model, size=SIZE, torch_model=False, engine=str(engine), max_batch=4)
    assert summary.ensemble_classifier == "afnet_mobilenetv3"
    assert (repo / "afnet_mobilenetv3" / "1" / "model.plan").read_bytes() == payload
    configs = {d: validate_config_text((repo / d / "config.pbtxt").read_text()) for d in summary.models}
    assert configs["afnet_mobilenetv3"].platform == "tensorrt_plan"
    assert [s.model_name for s in configs["video_classify"].ensemble_scheduling.step] == \
        ["preprocess", "afnet_mobilenetv3", "postprocess"]
    assert "masks" not in [i.name for i in configs["postprocess"].input]     # an engine has no masks output
    ds = repo / "afnet_mobilenetv3" / "deepstream"
    assert 'model_name: "afnet_mobilenetv3"' in (ds / "config_infer_triton.txt").read_text()
    nvinfer = (ds / "config_infer.txt").read_text()
    assert "network-mode=2" in nvinfer and "batch-size=4" in nvinfer
    from afnet_edge.serve.server import servable_models
    load, skipped = servable_models(str(repo))     # what `serve --run` loads in the Python-backend-only server
    assert load == ["postprocess", "preprocess"] and sorted(skipped) == ["afnet_mobilenetv3", "video_classify"]
    with pytest.raises(ValueError, match="built for"):
        write_repository(str(tmp_path / "r2"), create_model("af_mobilenetv3", num_classes=CLASSES + 1,
                                                            num_frames=T), engine=str(engine))
