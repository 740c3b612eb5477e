"""AdaFocusV2 under multi-process training (DistributedDataParallel over gloo on CPU; issue 12 item 6).

The V2 objective leaves parameters without gradient (the backbones' ImageNet heads), which DDP refuses at the second
iteration unless it looks for unused parameters; the family's TrainRecipe asks for that (``find_unused_parameters``).
Two worker processes (this file run as a script, as in test_ddp.py) run ``afnet-edge train`` in-process on a narrow
registered AdaFocusV2-MN2 (T = 2, P = 32, 224² synthetic clips, global batch 2 = 1 per process, 2 iterations): both
finish, log bitwise-equal parameters after every step (gradients averaged, the policy's included), and the weights
move. Every wait is bounded and every process is killed in a ``finally``.
"""
from __future__ import annotations

import os
import subprocess
import sys

from test_ddp import TIMEOUT_S, child_env, free_port, kill_group, read_steps

SMALL = "adafocus_v2_mn2_ddp_test"


def test_adafocus_trains_under_ddp(tmp_path):
    port = free_port()
    procs = []
    try:
        for rank in range(2):
            env = dict(child_env(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker", str(tmp_path)],
                                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, start_new_session=True))
        outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    assert "2 processes (gloo) x 1 clips = global batch 2" in outs[0], outs[0][-3000:]
    steps = [read_steps(str(tmp_path / "run" / f"steps.jsonl.rank{r}")) for r in range(2)]
    assert [s["global_step"] for s in steps[0]] == [s["global_step"] for s in steps[1]] == [1, 2]
    for a, b in zip(*steps):
        assert a["params_sha256"] == b["params_sha256"] and a["loss"] == b["loss"]
    assert steps[0][0]["params_sha256"] != steps[0][1]["params_sha256"]
    assert "last.pth" in os.listdir(tmp_path / "run")


def _small(num_classes: int = 4, num_frames: int = 2, patch_size: int = 32, frame_order: bool = True,
           dropout: float = 0.2, focus_frames: int | None = None):
    from afnet_edge.models import adafocus as A

    model = A.AdaFocusV2(SMALL, "mn2", num_classes, num_frames, patch_size, hidden_dim=64, dropout=dropout,
                         frame_order=frame_order, classifier_dim=64)
    for i in range(1, 5):
        setattr(model.local_CNN, f"layer{i}", getattr(model.local_CNN, f"layer{i}")[:1])
    return model


def _worker(folder: str) -> int:
    from afnet_edge.cli import main
    from afnet_edge.models import adafocus as A
    from afnet_edge.models.registry import BenchDefaults, registered

    with registered(SMALL, _small, A.HOOKS, default_frames=2, bench=BenchDefaults(False, (2,), "small")):
        return main(["train", "--model", SMALL, "--data", "synthetic", "--size", "224", "--frames", "2", "--classes",
                     "4", "--patch-size", "32", "--train-samples", "4", "--val-samples", "0", "--batch-size", "2",
                     "--epochs", "1", "--no-progress", "--threads", "1", "--out", os.path.join(folder, "run"),
                     "--step-log", os.path.join(folder, "run", "steps.jsonl")])


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    sys.exit(_worker(sys.argv[2]))
