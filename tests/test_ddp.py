"""Multi-process training (``torchrun``, DistributedDataParallel over gloo on CPU): README "Training on several GPUs".

Two processes train the tiny AF-MobileNetV3 (T=4, 32×32 px, 16 synthetic clips, global batch 4 = 2 per process):

* ``test_torchrun_readme_command``: the README's first command through the real launcher (``torchrun`` is run as
  ``python -m torch.distributed.run``, the same entry point); both ranks log the same parameter digest after every
  step (bitwise-equal parameters), the same global loss, one ``train:`` line (rank 0 prints), and exactly one
  checkpoint (``last.pth``, rank 0) whose weights are those of the last step.
* ``test_resume_is_bit_exact_and_ratio_is_global``: two worker processes (this file run as a script) run the README's
  commands in-process — 2 steps, then ``--resume`` to the end of the epoch — and the same run uninterrupted; the
  resumed steps, the final weights and the optimizer state are bitwise equal to the uninterrupted run's. They also
  check the reduction of the ratio loss: the gradient averaged over the 2 ranks equals the single-process gradient of
  the official loss on the whole global batch (≤ 1e-6; not bitwise: the mean of two means rounds differently), and
  differs from what a per-rank ratio loss would give.

Not asserted, because it is not true: a 2-process run equal to a 1-process run with the same global batch (no SyncBN,
as officially, so BatchNorm statistics are per process).

Every wait is bounded and every process is killed in a ``finally``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
LAUNCHER = ["torchrun", "--standalone", "--nproc-per-node", "2", "-m", "afnet_edge.cli"]
TIMEOUT_S = 300


def readme_commands() -> list[list[str]]:
    """The 2-process ``torchrun`` commands of the README's "Training on several GPUs" section, as argument lists."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Training on several GPUs\n", 1)[1].split("\n## ", 1)[0]
    cmds = []
    for block in re.findall(r"^```bash\n(.*?)^```", section, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:len(LAUNCHER)] == LAUNCHER:
                cmds.append(words)
    return cmds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only, whatever the host name resolves to
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def read_steps(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def _set(argv: list[str], flag: str, value: str | None) -> list[str]:
    """``argv`` with ``flag``'s value replaced (or the flag removed when ``value`` is None)."""
    i = argv.index(flag)
    return argv[:i] + argv[i + 2:] if value is None else argv[:i + 1] + [value] + argv[i + 2:]


# ------------------------------------------------------------------------------------------------ tests
def test_readme_has_the_commands():
    cmds = readme_commands()
    assert len(cmds) == 2 and "--max-steps" in cmds[0] and "--resume" in cmds[1], cmds


def test_shard_order_splits_every_global_batch():
    from afnet_edge.training.distributed import shard_order

    order = [7, 3, 11, 0, 5, 9, 2, 8, 4, 1, 6, 10]  # 3 global batches of 4
    parts = [shard_order(order, 4, r, 2) for r in range(2)]
    assert parts == [[7, 3, 5, 9, 4, 1], [11, 0, 2, 8, 6, 10]]
    # rank r's i-th local batch is the r-th half of global batch i: together they are the single-process batches
    for i in range(3):
        assert parts[0][2 * i:2 * i + 2] + parts[1][2 * i:2 * i + 2] == order[4 * i:4 * i + 4]
    assert shard_order(order, 4, 0, 1) == order
    with pytest.raises(ValueError, match="not divisible"):
        shard_order(order, 4, 0, 3)


def test_distributed_true_needs_a_process_group():
    from afnet_edge import create_model
    from afnet_edge.data import SyntheticVideoDataset
    from afnet_edge.training import TrainConfig, Trainer

    model = create_model("af_mobilenetv3", num_classes=4, num_frames=4, kernels="torch")
    with pytest.raises(ValueError, match="torchrun"):
        Trainer(model, SyntheticVideoDataset(4, 4, 32, 4), TrainConfig(epochs=1, batch_size=4), device="cpu",
                distributed=True, log=None)


def test_torchrun_readme_command(tmp_path):
    import torch

    from afnet_edge import create_model
    from afnet_edge.checkpoint import load_checkpoint
    from afnet_edge.training.engine import params_digest

    cmd = readme_commands()[0]
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *cmd[1:]], cwd=tmp_path, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out[-3000:]
    assert out.count("train: af_mobilenetv3") == 1 and "2 processes (gloo) x 2 clips = global batch 4" in out, out
    assert out.count("checkpoints:") == 1, out
    run = tmp_path / "runs" / "ddp"
    assert sorted(os.listdir(run)) == ["last.pth", "steps.jsonl.rank0", "steps.jsonl.rank1"]
    r0, r1 = read_steps(run / "steps.jsonl.rank0"), read_steps(run / "steps.jsonl.rank1")
    assert [s["global_step"] for s in r0] == [s["global_step"] for s in r1] == [1, 2]
    for a, b in zip(r0, r1):
        assert a["params_sha256"] == b["params_sha256"]            # identical weights on both ranks after each step
        assert a["loss"] == b["loss"] and a["n"] == b["n"] == 4    # metrics reduced over the global batch
    assert r0[0]["params_sha256"] != r0[1]["params_sha256"]        # and the weights do move
    # the one checkpoint holds the weights of the last step and every rank's generator states
    ck = torch.load(run / "last.pth", map_location="cpu", weights_only=True)
    assert ck["trainer"]["world_size"] == 2 and ck["trainer"]["global_step"] == 2 and len(ck["rng_ranks"]) == 2
    assert not torch.equal(ck["rng_ranks"][0]["torch"], ck["rng_ranks"][1]["torch"])  # per-rank Gumbel streams
    model = create_model("af_mobilenetv3", num_classes=4, num_frames=4, kernels="torch")
    load_checkpoint(model, run / "last.pth")
    assert params_digest(model) == r0[-1]["params_sha256"]


def test_resume_is_bit_exact_and_ratio_is_global(tmp_path):
    import torch

    first, resume = (c[len(LAUNCHER):] for c in readme_commands())
    # the same run uninterrupted: the first command without --max-steps, into another folder
    whole = _set(_set(_set(first, "--max-steps", None), "--out", "runs/whole"), "--step-log", "runs/whole/steps.jsonl")
    bad = _set(_set(first, "--batch-size", "3"), "--out", "runs/bad")  # 3 clips cannot be split over 2 processes
    plan = {"runs": [first, resume, whole, bad], "ports": [free_port() for _ in range(5)]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    procs = []
    try:
        for rank in range(2):
            env = dict(child_env(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker", str(tmp_path)],
                                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, start_new_session=True))
        outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    res = [json.loads((tmp_path / f"result.rank{r}.json").read_text()) for r in range(2)]
    print("seconds per run (rank 0, rank 1):", [r["seconds"] for r in res])
    assert [r["rcs"] for r in res] == [[0, 0, 0, 2]] * 2, outs
    assert all("--batch-size 3 is the global batch and must be divisible by the 2 processes" in o for o in outs)
    assert not (tmp_path / "runs/bad").exists()

    # resumed run == uninterrupted run, bit for bit (weights after every step, losses, final state)
    for rank in range(2):
        part = read_steps(tmp_path / f"runs/ddp/steps.jsonl.rank{rank}")
        ref = read_steps(tmp_path / f"runs/whole/steps.jsonl.rank{rank}")
        assert [s["global_step"] for s in part] == [s["global_step"] for s in ref] == [1, 2, 3, 4]
        for a, b in zip(part, ref):
            assert (a["params_sha256"], a["loss"], a["ratio"], a["temperature"]) == \
                (b["params_sha256"], b["loss"], b["ratio"], b["temperature"]), a["global_step"]
    ref0 = read_steps(tmp_path / "runs/whole/steps.jsonl.rank0")
    ref1 = read_steps(tmp_path / "runs/whole/steps.jsonl.rank1")
    assert [s["params_sha256"] for s in ref0] == [s["params_sha256"] for s in ref1]
    assert len({s["params_sha256"] for s in ref0}) == 4
    assert any(0 < s["loss_rt"] for s in ref0)  # the ratio term is active in these steps
    a = torch.load(tmp_path / "runs/ddp/last.pth", map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / "runs/whole/last.pth", map_location="cpu", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        assert torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]), k
    timeless = [[{k: v for k, v in h.items() if not k.endswith("seconds")} for h in c["trainer"]["history"]]
                for c in (a, b)]
    assert timeless[0] == timeless[1] and a["trainer"]["global_step"] == 4
    assert "val_top1" in a["trainer"]["history"][-1]  # rank 0 validated at the end of the epoch

    # ratio loss reduced over the ranks: averaged gradient == single-process gradient on the global batch
    w, data = _ratio_problem()
    rt, lam = 0.3, 0.5
    from afnet_edge.training.metrics import ratio_loss

    def grad(masks):
        w.grad = None
        ratio_loss(masks, rt, lam)[0].backward()
        return w.grad.clone()

    g_global = grad(_masks(w, data.flatten(0, 1)))
    g_ranks = torch.tensor([r["ratio_grad"] for r in res], dtype=torch.float64)
    assert torch.equal(g_ranks[0], g_ranks[1])
    assert torch.allclose(g_ranks[0].float(), g_global, rtol=0, atol=1e-6), (g_ranks[0], g_global)
    g_per_rank = (grad(_masks(w, data[0])) + grad(_masks(w, data[1]))) / 2  # a per-rank ratio loss would give this
    assert (g_per_rank - g_global).abs().max() > 1e-4

    # ... and the Trainer uses it: with navigation that skips frames, the ranks' own ratios differ, and both log the
    # same global ratio (the mean of the two ranks'), ratio term and loss
    steps = [r["step"] for r in res]
    local = torch.tensor([s["local_ratios"] for s in steps], dtype=torch.float64)  # (2 ranks, L modules)
    assert (local[0] - local[1]).abs().max() > 0.05, local
    logged = [s["logged"] for s in steps]
    assert logged[0] == logged[1] and logged[0]["n"] == 4
    assert abs(logged[0]["ratio"] - float(local.mean())) <= 1e-6
    expect_rt = 2.0 * float(((0.25 - local.mean(0)) ** 2).mean())
    assert abs(logged[0]["loss_rt"] - expect_rt) <= 1e-6, (logged[0]["loss_rt"], expect_rt)


def _ratio_problem():
    """Weights and (2 ranks, 6 clips, T=2, 5 features) data whose masks have clearly different ratios per rank."""
    import torch

    g = torch.Generator().manual_seed(1234)
    w = torch.randn(5, generator=g).requires_grad_(True)
    data = torch.randn(2, 6, 2, 5, generator=g)
    data[1] += 0.8 * w.detach() / w.detach().norm()
    return w, data


def _masks(w, data):
    """Two soft "navigation masks" ``(B, T)`` from ``data (B, T, 5)``."""
    import torch

    return [torch.sigmoid(data @ w), torch.sigmoid(0.5 * (data @ w) - 0.3)]


# ------------------------------------------------------------------------------------------------ worker (script)
def _worker(folder: str) -> None:
    """One rank: run the planned CLI commands in this process (a fresh process group for each), then the ratio-loss
    gradient check; write result.rank<r>.json."""
    import torch
    import torch.distributed as dist

    from afnet_edge.cli import main
    from afnet_edge.training import distributed
    from afnet_edge.training.metrics import ratio_loss

    rank = int(os.environ["RANK"])
    with open(os.path.join(folder, "plan.json")) as f:
        plan = json.load(f)
    rcs, seconds = [], []
    for argv, port in zip(plan["runs"], plan["ports"]):
        os.environ["MASTER_PORT"] = str(port)
        t = time.perf_counter()
        rcs.append(main(argv))
        seconds.append(round(time.perf_counter() - t, 2))
    os.environ["MASTER_PORT"] = str(plan["ports"][-1])
    dist.init_process_group("gloo")
    try:
        w, data = _ratio_problem()
        loss, _ = ratio_loss(_masks(w, data[rank]), 0.3, 0.5, reduce=distributed.all_mean)
        loss.backward()
        g = w.grad.clone()
        dist.all_reduce(g)  # what DDP does with the gradients: average over the ranks
        g /= dist.get_world_size()
        step = _trainer_step()
    finally:
        dist.destroy_process_group()
    with open(os.path.join(folder, f"result.rank{rank}.json"), "w") as f:
        json.dump({"rcs": rcs, "seconds": seconds, "ratio_grad": g.double().tolist(), "step": step}, f)


def _trainer_step() -> dict:
    """One DDP step of the Trainer with navigation modules that do skip frames (P(select) ≈ 0.73, as in
    test_train.py): this rank's own per-module ratios and what the Trainer logged (the global ones)."""
    import torch

    from afnet_edge import create_model
    from afnet_edge.data import SyntheticVideoDataset
    from afnet_edge.training import TrainConfig, Trainer, seed_everything

    torch.set_num_threads(1)
    seed_everything(0)
    model = create_model("af_mobilenetv3", num_classes=4, num_frames=4, kernels="torch")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("conv_gs.bias"):
                p[1::2] = p[0::2] + 1.0
    local: list = []
    model.register_forward_hook(lambda m, i, out: local.append([float(x.float().mean()) for x in out.masks]))
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.02, lr_steps=(), rt=0.25, rt_begin=0, rt_end=0, lambda_rt=2.0,
                      t0=1.0, t_end=0, seed=0, eval_every=0)
    trainer = Trainer(model, SyntheticVideoDataset(8, 4, 32, 4, seed=3), cfg, device="cpu", log=None)
    assert trainer.dist is not None and trainer.local_batch_size == 2
    trainer.fit(max_steps=1)
    return {"local_ratios": local[0], "logged": trainer.last_step}


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    _worker(sys.argv[2])
