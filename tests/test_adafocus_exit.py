"""AdaFocusV2+ early exit (spec adafocus.md §2.8): the threshold calibration rule on small hand-made labelled sets,
the exit criterion (first step whose max raw logit reaches τ_t; the last step accepts), the inference mode and the
streaming execution against the full forward's per-step logits, and ``afnet-edge calibrate-exit``."""
from __future__ import annotations

import json
import math

import pytest
import torch

import afnet_edge
from afnet_edge.cli import main
from afnet_edge.models import adafocus
from afnet_edge.models.adafocus import AdaFocusV2
from afnet_edge.models.registry import BenchDefaults, registered
from afnet_edge.layers.early_exit import (OFFICIAL_Q, calibrate_thresholds, exit_proportions, exit_steps, summarize,
                                          thresholds_to_json)
from test_adafocus import H, calibrate, randomize, rel


def logits_with_confidence(conf: list[list[float]], classes: int = 3, seed: int = 0) -> torch.Tensor:
    """Per-step logits (N, T, classes) whose max over classes is exactly ``conf[n][t]`` (the other classes lower)."""
    c = torch.tensor(conf)
    g = torch.Generator().manual_seed(seed)
    lo = c[..., None] - 1 - torch.rand(*c.shape, classes, generator=g)
    idx = torch.randint(classes, c.shape, generator=g)
    return lo.scatter(-1, idx[..., None], c[..., None])


# ------------------------------------------------------------------------------------------------ the rule itself
def test_exit_proportions_and_official_sweep():
    p = exit_proportions(4, 2.0)
    assert torch.allclose(p, torch.tensor([2, 4, 8, 16], dtype=torch.float64) / 30)
    assert OFFICIAL_Q[0] == 0.5 and OFFICIAL_Q[-1] == 3.9 and len(OFFICIAL_Q) == 35
    with pytest.raises(ValueError, match="q must be"):
        exit_proportions(4, 0.0)


def test_calibration_follows_the_spec_rule_on_a_small_labelled_set():
    # n = 6 clips, T = 3, q = 1: p = (1/3, 1/3, 1/3), ⌊6/3⌋ = 2 exits wanted per step
    conf = [[9.0, 1.0, 0.0],     # clip 0: most confident at step 0
            [8.0, 2.0, 0.0],     # clip 1: 2nd at step 0 -> τ_0 = 8, clips 0, 1 exit
            [5.0, 7.0, 0.0],     # clip 2: step 1 candidates (not exited): 2, 3, 4, 5 -> sorted 7, 6, 4, 3
            [4.0, 6.0, 0.0],     # clip 3: 2nd of the remaining at step 1 -> τ_1 = 6 (clip 0's 1.0 is ignored)
            [3.0, 4.0, 0.0],
            [2.0, 3.0, 0.0]]
    step_logits = logits_with_confidence(conf)
    thr = calibrate_thresholds(step_logits, 1.0)
    assert thr.tolist() == [8.0, 6.0, -math.inf]
    steps = exit_steps(step_logits, thr)
    assert steps.tolist() == [0, 0, 1, 1, 2, 2]
    labels = step_logits[torch.arange(6), steps].argmax(1)
    labels[5] = (labels[5] + 1) % 3                             # one wrong prediction
    st = summarize(step_logits, labels, thr)
    assert st["avg_frames"] == pytest.approx(2.0) and st["exit_histogram"] == [2, 2, 2]
    assert st["top1"] == pytest.approx(500 / 6)
    # an already exited clip with a high later confidence does not take a slot: clip 0 at step 1 has 99
    conf[0][1] = 99.0
    assert calibrate_thresholds(logits_with_confidence(conf), 1.0).tolist() == [8.0, 6.0, -math.inf]
    # a budget asking for fewer than one exit at a step (⌊n·p_k⌋ = 0) never exits there: q = 4 -> p ∝ 4, 16, 64
    thr = calibrate_thresholds(step_logits, 4.0)
    assert thr[0] == math.inf and thr[1] == 7.0 and exit_steps(step_logits, thr).tolist() == [2, 2, 1, 2, 2, 2]
    # ties at the threshold exit together (criterion ≥)
    tie = logits_with_confidence([[5.0, 0.0], [5.0, 0.0], [5.0, 0.0], [1.0, 0.0]])
    thr = calibrate_thresholds(tie, 0.5)                       # p ∝ .5, .25 -> ⌊4·2/3⌋ = 2 wanted at step 0
    assert thr[0] == 5.0 and exit_steps(tie, thr).tolist() == [0, 0, 0, 1]
    assert thresholds_to_json(torch.tensor([1.5, math.inf, -math.inf])) == [1.5, None, None]
    with pytest.raises(ValueError, match="step_logits must be"):
        calibrate_thresholds(torch.randn(3, 4), 1.0)
    with pytest.raises(ValueError, match="thresholds must be 3 numbers"):
        exit_steps(step_logits, [1.0, 2.0])


# --------------------------------------------------------------------------------------------- model execution
@pytest.fixture(scope="module")
def v2():
    T, P, C = 3, 32, 5
    # a narrow V2-MN2 (policy GRU 128, MLP 256 instead of 2048 / 4096): the same execution paths, 3x fewer weights
    model = randomize(AdaFocusV2("adafocus_v2_mn2", "mn2", C, T, P, hidden_dim=128, classifier_dim=256).eval(), 71)
    g = torch.Generator().manual_seed(72)
    calibrate(model, torch.randn(2, T, 3, H, H, generator=g))
    clip = torch.randn(3, T, 3, H, H, generator=g)
    with torch.no_grad():
        full = model(clip)
    return model, clip, full


def test_exit_mode_and_streaming_follow_the_full_forward_criterion(v2):
    model, clip, full = v2
    n = torch.arange(3)
    thr = calibrate_thresholds(full.step_logits, 1.0)          # n = 3: one clip exits at each step
    thr[:-1] -= 0.05                                           # off the calibration samples' own values
    conf = full.step_logits.max(-1).values
    assert float((conf[:, :-1] - thr[:-1]).abs().min()) > 0.02  # no decision sits on a float rounding edge
    want = exit_steps(full.step_logits, thr)
    assert sorted(want.tolist()) == [0, 1, 2]
    try:
        model.set_exit_thresholds(thr.tolist())
        with torch.no_grad():
            out = model(clip)
    finally:
        model.set_exit_thresholds(None)
    assert torch.equal(out.exit_steps, want) and torch.equal(out.frames_used, want + 1)
    assert torch.equal(out.logits, full.step_logits[n, want])
    # Streaming with the full forward's actions: the same decisions, logits, and nothing computed after the exit.
    st = model.stream(clip, thr, locations=full.locations)
    assert torch.equal(st.exit_steps, want) and float(st.frames_used.float().mean()) == pytest.approx(2.0)
    assert rel(st.logits, full.step_logits[n, want]) <= 1e-4
    for b, k in enumerate(want.tolist()):
        assert rel(st.step_logits[b, :k + 1], full.step_logits[b, :k + 1]) <= 1e-4
        assert bool(torch.isnan(st.step_logits[b, k + 1:]).all())
        assert bool(torch.isnan(st.locations[b, model.order[k + 1:]]).all())
    # Streaming with the policy run one GRU step at a time: the same actions (≤ 1e-5), and its decisions follow the
    # criterion on its own step logits. (A 1e-7 difference of an action moves the patch by ~2e-5 px, which the random
    # 50-layer focus network on noise frames amplifies to ~1e-3 of the logits, so a decision near τ may differ.)
    st = model.stream(clip, thr)
    for b, k in enumerate(st.exit_steps.tolist()):
        c = st.step_logits[b, :k + 1].max(-1).values
        assert all(float(c[t]) < float(thr[t]) for t in range(k)) and (k == 2 or float(c[k]) >= float(thr[k]))
        processed = model.order[:k + 1]
        assert float((st.locations[b, processed] - full.locations[b, processed]).abs().max()) <= 1e-5
    assert rel(st.logits, full.step_logits[n, st.exit_steps]) <= 2e-2


def test_streaming_equals_the_full_forward_when_never_exiting(v2):
    model, clip, full = v2
    st = model.stream(clip)                                    # no thresholds: every clip uses every frame
    assert st.exit_steps.tolist() == [2, 2, 2]
    assert float((st.locations - full.locations).abs().max()) <= 1e-5
    assert float(full.locations.std()) > 0.02                  # the policy is not constant
    assert rel(st.step_logits, full.step_logits) <= 2e-2       # see above: action rounding through the crop
    st = model.stream(clip, [math.inf] * 3, locations=full.locations)
    assert st.exit_steps.tolist() == [2, 2, 2] and torch.equal(st.locations, full.locations)
    assert rel(st.logits, full.logits) <= 1e-4 and rel(st.step_logits, full.step_logits) <= 1e-4   # batch 3 vs 1
    with pytest.raises(ValueError, match="thresholds must be 3 numbers"):
        model.stream(clip, [1.0])


# ---------------------------------------------------------------------------------------------------------- CLI
NARROW = "adafocus_v2_mn2_narrow_exit_test"


def _narrow(num_classes: int = 3, num_frames: int = 3, patch_size: int = 32, frame_order: bool = True):
    return AdaFocusV2(NARROW, "mn2", num_classes, num_frames, patch_size, hidden_dim=128, frame_order=frame_order,
                      classifier_dim=256)


def test_calibrate_exit_command(tmp_path, capsys):
    with registered(NARROW, _narrow, adafocus.HOOKS, default_frames=3, bench=BenchDefaults(False, (3,), "narrow")):
        _calibrate_exit_command(tmp_path, capsys)


def _calibrate_exit_command(tmp_path, capsys):
    out = tmp_path / "exit.json"
    common = ["--model", NARROW, "--frames", "3", "--patch-size", "32", "--classes", "3", "--size", "224",
              "--val-samples", "3", "--device", "cpu", "--no-progress"]
    torch.manual_seed(0)                                      # the same (untrained) weights in both runs
    assert main(["calibrate-exit", *common, "--q", "0.5", "1.0", "--stream", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "avg frames" in text and "thresholds:" in text
    res = json.loads(out.read_text())
    assert res["num_clips"] == 3 and [b["q"] for b in res["budgets"]] == [0.5, 1.0]
    for b in res["budgets"]:
        assert len(b["thresholds"]) == 3 and b["thresholds"][-1] is None
        assert b["stream_avg_frames"] == pytest.approx(b["avg_frames"])   # the stream computed what it decided
        assert b["stream_top1"] == pytest.approx(b["top1"])
        assert b["gflops"] == pytest.approx(res["full_gflops"] * b["avg_frames"] / 3)
    assert res["budgets"][0]["avg_frames"] < 3                # q = 0.5 asks for ⌊3·0.57⌋ = 1 exit at step 0
    torch.manual_seed(0)
    assert main(["calibrate-exit", *common, "--thresholds", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [b["avg_frames"] for b in again["budgets"]] == [b["avg_frames"] for b in res["budgets"]]
    assert again["calibrated_on"] is None
    # models without per-step heads, bad files: one line, exit 2
    assert main(["calibrate-exit", "--model", "af_mobilenetv3", "--frames", "2", "--val-samples", "1",
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no per-step logits" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bad.json").write_text('{"budgets": [{"q": 1, "thresholds": [1, 2, 3, 4]}]}')
    assert main(["calibrate-exit", *common, "--thresholds", str(tmp_path / "bad.json")]) == 2
    assert "T=3" in capsys.readouterr().err
