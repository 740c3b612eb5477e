"""``afnet-edge bench``: the quick CPU grid writes a valid results file; timing statistics, memory tracking, the grid,
derived metrics (realised ratio), validation, reports and plots, Jetson parsers and bad input.

Speed is never asserted here: every number checked is either computed from other recorded numbers or a property
(positive, consistent, present)."""
from __future__ import annotations

import copy
import json
import math
import os

import numpy as np
import pytest
import torch

from afnet_edge import bench, cli
from afnet_edge.bench import (Case, GridSpec, derive, expand_grid, format_markdown, live_tensor_peak, make_plots,
                              parse_nvpmodel, parse_tegra_release, time_callable, timing_stats, validate_results)
from afnet_edge.bench import runners


# ------------------------------------------------------------------------------------------------ the quick run
@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``afnet-edge bench --quick`` run on the CPU (the CI configuration), shared by the tests below."""
    out = tmp_path_factory.mktemp("bench_quick")
    rc = cli.main(["bench", "--quick", "--out", str(out), "--no-progress"])
    with open(out / "quick.json") as f:
        doc = json.load(f)
    return rc, out, doc


def test_quick_writes_valid_results(quick):
    rc, out, doc = quick
    assert rc == 0
    assert validate_results(doc) == []
    assert doc["schema"] == bench.SCHEMA and doc["kind"] == "measurement"
    assert doc["command"].startswith("afnet-edge bench --quick")
    env = doc["environment"]
    assert env["device_type"] == "cpu" and env["torch"] == torch.__version__ and env["torch_threads"] == 1
    assert env["device_slug"].startswith("cpu-") and env["device_slug"].endswith("-1t")
    assert doc["timing"]["quick"] is True and doc["timing"]["repeats"] == 5
    assert doc["load_average"]["before"] is not None and doc["load_average"]["after"] is not None
    rows = doc["rows"]
    assert {(r["backend"], r["ratio"]) for r in rows} == {("masked", None), ("compact-torch", 0.25),
                                                          ("compact-torch", 0.5)}
    for r in rows:
        assert r["status"] == "ok", r.get("reason")
        assert r["latency_ms"]["n"] == 5 and 0 < r["latency_ms"]["min"] <= r["latency_ms"]["p50"] \
            <= r["latency_ms"]["p90"] <= r["latency_ms"]["max"]
        assert r["memory"]["peak_activation_mib"] > 0 and r["memory"]["weights_mib"] > 0
        assert r["flops"]["official_gflops"] > 0 and r["flops"]["executed_gmacs"] > 0
    # the timed compact model computes what the masked (official) model computes
    for r in rows:
        if r["backend"] == "compact-torch":
            assert r["check_max_abs_diff_vs_masked"] < 1e-4
            assert r["memory"]["constant_maps_mib"] > 0


def test_quick_realised_ratio_is_consistent(quick):
    _, _, doc = quick
    masked = next(r for r in doc["rows"] if r["backend"] == "masked")
    for r in doc["rows"]:
        if r["backend"] != "compact-torch":
            continue
        fl = r["flops"]
        assert r["flops_implied_speedup"] == pytest.approx(fl["official_gflops_r1"] / fl["official_gflops"])
        assert r["flops_implied_speedup"] > 1.0  # r < 1 must promise a saving
        assert r["speedup_vs_masked"] == pytest.approx(masked["latency_ms"]["p50"] / r["latency_ms"]["p50"])
        assert r["realised_ratio"] == pytest.approx(r["speedup_vs_masked"] / r["flops_implied_speedup"])
        assert r["realised_ratio_min"] == pytest.approx(masked["latency_ms"]["min"] / r["latency_ms"]["min"]
                                                        / r["flops_implied_speedup"])
        assert r["throughput_clips_s"] == pytest.approx(1 / (r["latency_ms"]["p50"] * 1e-3))
    # masked rows carry F(1): every focal frame computed
    assert masked["flops"]["official_gflops"] == pytest.approx(masked["flops"]["official_gflops_r1"])


def test_quick_writes_markdown_and_plot(quick):
    _, out, doc = quick
    md = (out / "quick.md").read_text()
    assert doc["command"] in md and "realised ratio" in md
    png = out / "quick_latency_vs_ratio.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "quick_latency_vs_ratio.png" in md


def test_render_rewrites_markdown_from_json(quick, tmp_path):
    _, out, doc = quick
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["bench", "--render", str(path), "--no-plots"]) == 0
    md = (tmp_path / "copy.md").read_text()
    assert doc["command"] in md and "realised ratio" in md
    assert validate_results(json.loads(path.read_text())) == []
    assert cli.main(["bench", "--render", str(tmp_path / "missing.json")]) == 2


def test_validation_catches_broken_results(quick):
    _, _, doc = quick
    assert validate_results(doc) == []
    bad = copy.deepcopy(doc)
    bad["rows"][0]["latency_ms"]["p50"] = -1.0
    assert any("latency_ms.p50" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    r = next(x for x in bad["rows"] if "realised_ratio" in x)
    r["realised_ratio"] *= 1.5
    assert any("realised_ratio" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    r = next(x for x in bad["rows"] if "speedup_vs_masked" in x)
    r["speedup_vs_masked"] += 0.1
    assert any("speedup_vs_masked" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    del bad["environment"]["git_commit"]
    assert any("git_commit" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    bad["rows"][0] = {**bad["rows"][0], "status": "skipped", "reason": ""}
    assert any("without a reason" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    bad["rows"][1]["throughput_clips_s"] *= 2
    assert any("throughput" in p for p in validate_results(bad))
    bad = copy.deepcopy(doc)
    bad["rows"] = [r for r in bad["rows"] if r["backend"] != "masked"]
    assert any("without a masked anchor" in p for p in validate_results(bad))
    assert validate_results([]) == ["results must be a JSON object"]


# ------------------------------------------------------------------------------------------------ timing
def test_timing_stats_match_numpy():
    rng = np.random.default_rng(0)
    xs = list(rng.exponential(3.0, size=37) + 1.0)
    st = timing_stats(xs)
    assert st["p50"] == pytest.approx(np.median(xs))
    assert st["p90"] == pytest.approx(np.percentile(xs, 90))
    assert st["mean"] == pytest.approx(np.mean(xs)) and st["std"] == pytest.approx(np.std(xs))
    assert (st["min"], st["max"], st["n"]) == (min(xs), max(xs), 37)
    with pytest.raises(ValueError):
        timing_stats([])


def test_time_callable_runs_warmup_then_repeats():
    calls = []
    dev, host = time_callable(lambda: calls.append(1), warmup=4, repeats=9)
    assert len(calls) == 13 and len(dev) == 9 and dev == host and all(t >= 0 for t in dev)


# ------------------------------------------------------------------------------------------------ memory
def test_live_tensor_peak_counts_live_storage_only():
    n = 1000

    def f():
        x = torch.ones(n)          # 4000 B
        y = x + 1                  # 8000 B live
        del x
        z = y * 2                  # y, z: 8000 B live
        return z.sum()

    assert live_tensor_peak(f) == 8 * n + 4  # y, z and the 4-byte sum
    w = torch.ones(10, 100)        # exists before: views and in-place ops on it are free

    def g():
        v = w.view(1000)
        v.mul_(1.0)
        return v.sum()

    assert live_tensor_peak(g) == 4
    assert live_tensor_peak(lambda: [torch.empty(0) for _ in range(3)]) == 0


# ------------------------------------------------------------------------------------------------ the grid
def test_expand_grid_rules():
    spec = GridSpec(models=["tsm_resnet50", "af_resnet50"], frames=[12], baseline_frames=[8, 16],
                    ratios=[0.25, 1.0], batches=[1, 8], backends=["compact-torch", "onnxruntime", "masked"],
                    modes=["eager", "cudagraph"], precisions=["fp32"])
    cases = expand_grid(spec)
    assert len(cases) == len(set(cases))
    dense = [c for c in cases if c.model == "tsm_resnet50"]
    assert {c.backend for c in dense} == {"dense", "onnxruntime"} and all(c.ratio is None for c in dense)
    assert {c.frames for c in dense} == {8, 16}
    af = [c for c in cases if c.model == "af_resnet50"]
    assert all(c.frames == 12 for c in af)
    masked = [c for c in af if c.backend == "masked"]
    assert {(c.mode, c.batch, c.ratio) for c in masked} == {(m, b, None) for m in ("eager", "cudagraph")
                                                            for b in (1, 8)}
    assert all(c.mode == "eager" for c in cases if c.backend == "onnxruntime")
    # per configuration the masked anchor comes before the compact runs that refer to it
    for b in (1, 8):
        idx = [i for i, c in enumerate(af) if c.batch == b]
        assert af[idx[0]].backend == "masked"
    spec.masked_per_ratio = True
    assert {c.ratio for c in expand_grid(spec) if c.backend == "masked"} == {0.25, 1.0}


def test_skip_reasons(monkeypatch):
    cpu = torch.device("cpu")
    assert "CUDA" in runners.skip_reason(Case("af_resnet50", 12, "masked", "cudagraph", "fp32", 1, None, 224), cpu)
    assert "fp32" in runners.skip_reason(Case("af_resnet50", 12, "onnxruntime", "eager", "fp16", 1, 0.5, 224), cpu)
    assert runners.skip_reason(Case("af_resnet50", 12, "compact-torch", "eager", "fp32", 1, 0.5, 224), cpu) is None
    import afnet_edge.kernels as kernels
    monkeypatch.setattr(kernels, "extension_available", lambda: False)
    reason = runners.skip_reason(Case("af_resnet50", 12, "compact-ext", "eager", "fp32", 1, 0.5, 224), cpu)
    assert reason and "not built" in reason

    def boom():
        raise RuntimeError("operator afnet_edge::focal_gather.out does not exist")

    monkeypatch.setattr(kernels, "extension_available", boom)
    reason = runners.skip_reason(Case("af_resnet50", 12, "compact-ext", "eager", "fp32", 1, 0.5, 224), cpu)
    assert reason and "RuntimeError" in reason


def test_skipped_rows_are_recorded_not_failed(tmp_path, monkeypatch):
    import afnet_edge.kernels as kernels
    monkeypatch.setattr(kernels, "extension_available", lambda: False)
    rc = cli.main(["bench", "--quick", "--backends", "masked,compact-ext", "--ratios", "0.5", "--modes",
                   "eager,cudagraph", "--repeats", "2", "--out", str(tmp_path), "--name", "skips", "--no-progress",
                   "--no-plots"])
    assert rc == 0
    doc = json.loads((tmp_path / "skips.json").read_text())
    assert validate_results(doc) == []
    status = {(r["backend"], r["mode"]): r["status"] for r in doc["rows"]}
    assert status[("masked", "eager")] == "ok"
    assert status[("masked", "cudagraph")] == "skipped" and status[("compact-ext", "eager")] == "skipped"
    assert "## Skipped" in (tmp_path / "skips.md").read_text()


# ------------------------------------------------------------------------------------------------ derived metrics
def _row(model, frames, backend, ratio, p50, batch=1, precision="fp16", mode="eager", r0=22.128, r1=34.69):
    official = r1 if backend in ("masked",) else (r0 + (r1 - r0) * ratio if ratio is not None else r1)
    fl = {"official_gflops": official, "executed_gmacs": official}
    if not model.startswith(("tsm", "tsn")):
        fl.update(official_gflops_r0=r0, official_gflops_r1=r1)
    return {"model": model, "frames": frames, "backend": backend, "mode": mode, "precision": precision,
            "batch": batch, "ratio": ratio, "size": 224, "status": "ok",
            "label": backend if mode == "eager" else f"{backend}+{mode}",
            "latency_ms": {"p50": p50, "p90": p50 * 1.1, "mean": p50, "min": p50 * 0.9, "max": p50 * 1.2, "std": 0.1,
                           "n": 30},
            "throughput_clips_s": batch / (p50 * 1e-3), "flops": fl, "memory": {}}


def _synthetic_doc(device_type="cuda"):
    """A SYNTHETIC results document (test fixture, not a measurement) for the derived-metric and report logic."""
    rows = [_row("af_resnet50", 12, "masked", None, 10.0, batch=8),
            _row("af_resnet50", 12, "compact-torch", 0.25, 8.0, batch=8),
            _row("af_resnet50", 12, "compact-torch", 0.4, 9.0, batch=8),
            _row("af_resnet50", 12, "compact-ext", 0.25, 7.5, batch=8),
            _row("af_resnet50", 12, "compact-ext", 0.4, 8.0, batch=8),
            _row("af_resnet50", 12, "compact-ext", 1.0, 10.5, batch=8),
            _row("af_resnet50", 12, "masked", None, 4.0, batch=1),
            _row("af_resnet50", 12, "compact-torch", 0.4, 3.5, batch=1),
            _row("tsm_resnet50", 8, "dense", None, 3.0, batch=1),
            _row("tsm_resnet50", 8, "dense", None, 9.0, batch=8),
            _row("af_mobilenetv3", 12, "masked", None, 2.0, batch=1, r0=1.5, r1=2.3),
            _row("af_mobilenetv3", 12, "compact-torch", 0.5, 1.8, batch=1, r0=1.5, r1=2.3)]
    doc = {"schema": bench.SCHEMA, "kind": "synthetic-test-fixture", "created": "-", "command": "(synthetic)",
           "environment": {"device": "synthetic", "device_type": device_type, "device_slug": "synthetic",
                           "torch": "x", "python": "x", "cpu_model": "x", "torch_threads": 1, "git_commit": "x",
                           "tensorrt": None, "onnxruntime": None, "cuda": "x", "driver": "x", "cudnn": 1},
           "grid": {}, "timing": {"method": "-", "warmup": 1, "repeats": 30}, "load_average": {}, "rows": rows}
    return derive(doc)


def test_derive_realised_ratio():
    doc = _synthetic_doc()
    assert validate_results(doc) == []
    r = next(x for x in doc["rows"] if x["backend"] == "compact-ext" and x["ratio"] == 0.25)
    implied = 34.69 / (22.128 + 12.562 * 0.25)
    assert r["flops_implied_speedup"] == pytest.approx(implied)
    assert r["speedup_vs_masked"] == pytest.approx(10.0 / 7.5)
    assert r["realised_ratio"] == pytest.approx(10.0 / 7.5 / implied)
    assert r["realised_ratio_vs_r1"] == pytest.approx((10.5 / 7.5) / implied)
    batch1 = next(x for x in doc["rows"] if x["backend"] == "compact-torch" and x["batch"] == 1)
    assert batch1["speedup_vs_masked"] == pytest.approx(4.0 / 3.5)  # its own batch's anchor, not batch 8's
    assert "realised_ratio" not in next(x for x in doc["rows"] if x["backend"] == "dense")


def test_targets_evaluated_from_rows():
    targets = _script("check_targets").targets
    doc = _synthetic_doc()
    t = {x["target"].split(" (")[0]: x for x in targets(doc)}
    tr = next(v for k, v in t.items() if k.startswith("realised ratio"))
    # best realised ratios: r=0.25 -> ext 10/7.5/1.0983 = 1.214; r=0.4 -> ext 10/8/1.1555 = 1.082
    assert tr["status"] == "met" and "r=0.25" in tr["detail"]
    lat = [x for x in targets(doc) if x["target"].startswith("AF-ResNet50 T=12 r=0.4 faster")]
    by_batch = {x["target"]: x["status"] for x in lat}
    assert by_batch["AF-ResNet50 T=12 r=0.4 faster than TSM-ResNet50 T=8 (fp16, batch 1)"] == "missed"  # 3.5 vs 3.0
    assert by_batch["AF-ResNet50 T=12 r=0.4 faster than TSM-ResNet50 T=8 (fp16, batch 8)"] == "met"  # 8.0 vs 9.0
    cpu = _synthetic_doc("cpu")
    assert next(x for x in targets(cpu) if x["target"].startswith("realised"))["status"] == "not measured"


def test_check_targets_script(tmp_path, capsys):
    tool = _script("check_targets")
    doc = _synthetic_doc()
    path = tmp_path / "models_fp16.json"
    path.write_text(json.dumps(doc))
    assert tool.main([str(path), "--write"]) == 0
    table = (tmp_path / "models_fp16_targets.md").read_text()
    assert "| realised ratio ≥ 0.9" in table and "| met |" in table and "| missed |" in table
    assert tool.main([str(path), "--strict"]) == 1  # batch 1: AF-ResNet50 r=0.4 3.5 ms vs TSM-ResNet50 T=8 3.0 ms
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/else"}))
    assert tool.main([str(tmp_path / "other.json")]) == 2
    assert tool.main([str(tmp_path / "missing.json")]) == 2
    assert "not an afnet_edge.bench results file" in capsys.readouterr().err
    assert "## Targets" not in format_markdown(doc)  # acceptance criteria are not part of the shipped package


def test_report_and_plots_from_synthetic_doc(tmp_path):
    doc = _synthetic_doc()
    paths = make_plots(doc, str(tmp_path), "synthetic")
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["synthetic_afnet_vs_tsm.png", "synthetic_latency_vs_ratio.png"]
    assert all(open(p, "rb").read(4) == b"\x89PNG" for p in paths)
    md = format_markdown(doc, paths)
    assert md.count("| AF-ResNet50 |") == 8 and "TSM-ResNet50" in md and "synthetic_afnet_vs_tsm.png" in md


# ------------------------------------------------------------------------------------------------ environment
def test_parse_tegra_release_and_nvpmodel():
    text = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 "
            "01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n")
    info = parse_tegra_release(text)
    assert info["l4t"] == "36.4.3" and info["board"] == "generic" and info["raw"].startswith("# R36")
    assert parse_tegra_release("") == {"raw": ""}
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"mode": "MAXN", "id": 0}
    assert parse_nvpmodel("NVPM WARN: something\nNV Power Mode: 15W\n2\n") == {"mode": "15W", "id": 2}
    assert parse_nvpmodel("garbage") == {}
    assert bench.jetson_slug("NVIDIA Jetson AGX Orin Developer Kit") == "orin-agx"
    assert bench.jetson_slug("NVIDIA Jetson Orin NX Engineering Reference Developer Kit") == "orin-nx"
    assert bench.jetson_slug("NVIDIA Jetson Orin Nano Developer Kit", {"mode": "15W"}) == "orin-nano"
    assert bench.jetson_slug("NVIDIA Jetson Orin Nano Developer Kit", {"mode": "MAXN_SUPER"}) == "orin-nano-super"
    assert bench.jetson_slug("NVIDIA Jetson AGX Thor Developer Kit") == "thor"
    assert bench.jetson_slug("Raspberry Pi 5") is None


def test_environment_records_versions():
    env = bench.collect_environment("cpu")
    for k in ("device", "device_slug", "torch", "cpu_model", "torch_threads", "git_commit", "tensorrt",
              "onnxruntime", "loadavg", "extension"):
        assert k in env
    assert bench.device_slug("cpu", 3).endswith("-3t")


# ------------------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("argv, word", [
    (["--ratios", "1.5"], "--ratios"),
    (["--backends", "masked,warp"], "--backends"),
    (["--size", "50"], "--size"),
    (["--device", "tpu"], "--device"),
    (["--models", "resnet9000"], "--models"),
    (["--backends", "trt"], "--engine"),
    (["--engine", "/nonexistent.engine"], "nonexistent"),
    (["--checkpoint", "/nonexistent.pt"], "nonexistent"),
])
def test_bad_input_is_one_line_exit_2(argv, word, capsys, tmp_path):
    rc = cli.main(["bench", "--quick", "--out", str(tmp_path), "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and word in err


def test_canonical_command_reproduces_options():
    parser = cli.make_parser()
    args = parser.parse_args(["bench", "--quick", "--ratios", "0.25,0.5", "--engine", "a.engine", "--engine",
                              "b.engine", "--no-plots"])
    argv = bench.canonical_argv(args)
    again = parser.parse_args(["bench", *argv])
    for k in ("quick", "ratios", "engine", "no_plots", "models", "size"):
        assert getattr(again, k) == getattr(args, k)


# ------------------------------------------------------------------------------------------------ profile
def test_profile_small(tmp_path):
    rc = cli.main(["bench", "--profile", "--models", "af_mobilenetv3", "--size", "64", "--ratios", "0.5",
                   "--repeats", "1", "--threads", "1", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    doc = json.loads((tmp_path / "profile_af_mobilenetv3.json").read_text())
    s = doc["summary"]
    ext = runners.skip_reason(Case("af_mobilenetv3", 12, "compact-ext", "eager", "fp32", 1, 0.5, 64),
                               torch.device("cpu")) is None
    assert set(s) == {"masked", "compact-torch r=0.5"} | ({"compact-ext r=0.5"} if ext else set())
    assert ("compact-ext" in doc["skipped"]) != ext
    for k, v in s.items():
        assert v["latency_min_ms"] > 0 and v["minor_page_faults_median"] >= 0
        comp = v["components_of_fastest_ms"]
        assert sum(comp.values()) == pytest.approx(v["latency_min_ms"])  # the breakdown adds up to the forward
    for k in s:
        if k != "masked":
            assert s[k]["max_abs_logit_diff_vs_masked"] < 1e-4
            # the fused ops were timed through the ops seam, whichever backend the forward used
            assert s[k]["components_of_fastest_ms"]["focal_scatter"] > 0
    assert doc["top_ops"]["masked"] and doc["state_key_ms_per_forward"] > 0
    md = (tmp_path / "profile_af_mobilenetv3.md").read_text()
    assert "afnet-edge bench" in md and "Top aten ops" in md


# ------------------------------------------------------------------------------------------------ README table
def _script(name: str):
    """A script of benchmarks/ imported as a module."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _readme_tool():
    return _script("make_readme_table")


def test_readme_block_rewrites_only_between_markers(tmp_path):
    tool = _readme_tool()
    doc = _synthetic_doc()
    doc["kind"] = "measurement"
    d = tmp_path / "results" / "synthetic"
    d.mkdir(parents=True)
    (d / "models.json").write_text(json.dumps(doc))
    (d / "quick.json").write_text(json.dumps(doc))  # the CI smoke grid never reaches the README
    docs = tool.load_results(str(tmp_path / "results"))
    assert len(docs) == 1
    block = tool.headline(docs)
    assert "| AF-ResNet50 | 12 | 0.4 |" in block and "TSM-ResNet50" in block
    assert "8.00 (compact-ext)" in block  # best AF-ResNet50 r=0.4 at batch 8 comes from the fastest backend
    text = "intro\n<!-- perf:begin -->\nold table\n<!-- perf:end -->\noutro\n"
    new = tool.replace_block(text, block)
    assert new.startswith("intro\n<!-- perf:begin -->\n") and new.endswith("<!-- perf:end -->\noutro\n")
    assert "old table" not in new and tool.current_block(new) == block.rstrip("\n") + "\n"
    assert tool.replace_block("no markers here", block) is None


def test_readme_block_equals_committed_results():
    tool = _readme_tool()
    readme = os.path.join(tool.ROOT, "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    current = tool.current_block(text)
    assert current is not None, ("README.md lost its <!-- perf:begin --> / <!-- perf:end --> markers (or the file): "
                                 "`python benchmarks/make_readme_table.py --print` gives the block to put between them")
    assert current == tool.headline(tool.load_results()).rstrip("\n") + "\n", \
        "README performance block is stale: run python benchmarks/make_readme_table.py"


def test_docs_block_equals_committed_results():
    tool = _readme_tool()
    path = os.path.join(tool.ROOT, "docs", "performance.md")
    assert os.path.exists(path), "docs/performance.md is missing: it carries the generated performance block"
    current = tool.current_block(open(path).read())
    assert current is not None, "docs/performance.md lost its perf markers"
    assert current == tool.headline(tool.load_results()).rstrip("\n") + "\n", \
        "docs/performance.md block is stale: run python benchmarks/make_readme_table.py"


def test_docs_projection_block_equals_the_projection_code():
    """The PROJECTION table of docs/performance.md is generated from afnet_edge.bench.projection: a change of the
    models, the fused-op plans or the device table must regenerate it (it went stale once unnoticed)."""
    tool = _readme_tool()
    path = os.path.join(tool.ROOT, "docs", "performance.md")
    current = tool.current_block(open(path).read(), tool.PBEGIN, tool.PEND)
    assert current is not None, "docs/performance.md lost its projection markers"
    assert current == tool.projection_block().rstrip("\n") + "\n", \
        "docs/performance.md projection block is stale: run python benchmarks/make_readme_table.py"


def test_plots_start_latency_axes_at_zero(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    figs, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    make_plots(_synthetic_doc(), str(tmp_path), "synthetic")
    checked = 0
    for fig in figs:
        for ax in fig.axes:
            if ax.get_ylabel().startswith("p50 latency"):
                assert ax.get_ylim()[0] == 0, ax.get_title()
                checked += 1
            if ax.get_xlabel().startswith("p50 latency"):
                assert ax.get_xlim()[0] == 0, ax.get_title()
                checked += 1
        close(fig)
    assert checked >= 3


def test_readme_demo_block_equals_committed_results():
    """The README quotes the shipped demo model's numbers from benchmarks/results/cpu/demo_model.json."""
    tool = _readme_tool()
    text = open(os.path.join(tool.ROOT, "README.md")).read()
    current = tool.current_block(text, tool.DBEGIN, tool.DEND)
    assert current is not None, "README.md lost its <!-- demo:begin --> / <!-- demo:end --> markers"
    assert current == tool.demo_block().rstrip("\n") + "\n", \
        "README demo-model block is stale: run python benchmarks/make_readme_table.py"


def test_readme_adafocus_region_block_equals_committed_results():
    """The README quotes the AdaFocusV2 policy-location experiment from benchmarks/results/cpu/adafocus_region.json."""
    tool = _readme_tool()
    text = open(os.path.join(tool.ROOT, "README.md")).read()
    current = tool.current_block(text, tool.RBEGIN, tool.REND)
    assert current is not None, "README.md lost its <!-- adafocusregion:begin --> / <!-- adafocusregion:end --> markers"
    assert current == tool.region_block().rstrip("\n") + "\n", \
        "README AdaFocus region block is stale: run python benchmarks/make_readme_table.py"


# ------------------------------------------------------------------------------------------------ cross-family
from afnet_edge.bench import crossfamily  # noqa: E402

TINY_FRAMES = {"af_resnet50": 4, "adafocus_v2_mn2": 1, "tsm_resnet50": 2, "blvnet_tam_r50": 2,
               "fullvideo_tsm_r50": 6}
TINY_OPTIONS = {"adafocus_v2_mn2": {"patch_size": 32}, "fullvideo_tsm_r50": {"clusters": 2},
                "af_resnet50": {"width": 0.25}, "tsm_resnet50": {"width": 0.25}}


@pytest.fixture(scope="module")
def cross():
    """The cross-family preset at tiny sizes (every family, both executions, batch 1 and 2, one timed run)."""
    return crossfamily.run_cross_family(batches=(1, 2), size=64, warmup=0, repeats=1, threads=1, seed=3,
                                        frames=TINY_FRAMES, options=TINY_OPTIONS, progress=False)


def test_cross_family_rows_and_fields(cross):
    doc = cross
    assert crossfamily.validate_cross_family(doc) == []
    assert doc["schema"] == crossfamily.SCHEMA and doc["kind"] == "measurement"
    assert doc["load_average"]["before"] is not None and doc["environment"]["torch_threads"] == 1
    got = {(r["model"], r["execution"]) for r in doc["rows"]}
    assert got == {("af_resnet50", "official"), ("af_resnet50", "fused"), ("adafocus_v2_mn2", "official"),
                   ("adafocus_v2_mn2", "fused"), ("tsm_resnet50", "dense"), ("blvnet_tam_r50", "official"),
                   ("blvnet_tam_r50", "fused"), ("fullvideo_tsm_r50", "official"), ("fullvideo_tsm_r50", "fused")}
    for r in doc["rows"]:
        assert r["status"] == "ok", r.get("reason")
        assert r["frames"] == TINY_FRAMES[r["model"]] and r["size"] == (224 if r["family"] == "adafocus" else 64)
        assert r["batch"] == 1 and r["throughput_batch"] == 2
        assert 0 < r["latency_ms"]["min"] <= r["latency_ms"]["p50"] and r["latency_per_clip_ms"] > 0
        assert r["throughput_clips_s"] == pytest.approx(2 / (r["throughput_batch_ms"]["p50"] * 1e-3))
        assert r["flops"]["official_gflops"] > 0 and r["flops"]["executed_gmacs"] > 0
        t = r["traffic"]
        assert t["kernels"] > 10 and t["activation_bytes"] > 0 and t["weight_bytes_read"] > 0
        assert t["fp16_equivalent_bytes"] == pytest.approx(2 * t["float_elements_moved"])
        assert r["peak_activation_mib"] > 0
        # the fused execution computes what the official one computes (same clip)
        assert r["check_max_rel_diff_vs_official"] <= 1e-4, r
    rows = {(r["model"], r["execution"]): r for r in doc["rows"]}
    assert rows[("af_resnet50", "official")]["ratio"] == 0.4
    assert rows[("af_resnet50", "official")]["flops"]["executed_gmacs"] > \
        rows[("af_resnet50", "fused")]["flops"]["executed_gmacs"]
    # counted (not timed): the pair-aware bLVNet layout moves fewer activation bytes than the release's op sequence
    assert rows[("blvnet_tam_r50", "fused")]["traffic"]["activation_bytes"] < \
        rows[("blvnet_tam_r50", "official")]["traffic"]["activation_bytes"]
    assert [c["patch_size"] for c in doc["adafocus_cost_per_patch"]] == [96, 128, 160]
    # the clustering step alone, three ways on the same layer1 outputs: same means
    cs = doc["clustering_stage"]["fullvideo_tsm_r50"]
    assert cs["frames"] == 6 and cs["clusters"] == 2
    for way in ("fused (on device)", "release host round trip", "naive bool ops"):
        assert cs[way]["p50_ms"] > 0 and cs[way]["max_abs_diff_vs_fused"] <= 1e-5


def test_cross_family_report_and_validation(cross):
    md = crossfamily.format_markdown(cross)
    for label in ("AF-ResNet50", "AdaFocusV2-MN2/RN", "TSM-ResNet50", "bLVNet-TAM-R50", "FullVideo-TSM-R50"):
        assert label in md
    broken = copy.deepcopy(cross)
    broken["rows"][1]["check_max_rel_diff_vs_official"] = 0.5
    broken["rows"][2]["throughput_clips_s"] = 0.0
    probs = crossfamily.validate_cross_family(broken)
    assert len(probs) == 2 and "logits differ" in " ".join(probs)


def test_release_segments_match_the_device_clustering():
    """The release-style host rules (the cross-family 'official' full-video row) pick the segments of the device
    kernels, ties included (few bits per frame make equal distances common)."""
    from afnet_edge.kernels.fullvideo_reference import adjacent_hamming, binarize_pack, segment_boundaries
    g = torch.Generator().manual_seed(5)
    for rule in ("slope", "cumulative", "cumulative_official"):
        for n, k, d in ((32, 8, 6), (12, 4, 40), (5, 8, 9), (9, 3, 1)):
            y = torch.relu(torch.randn(n, d, generator=g))
            h = adjacent_hamming(binarize_pack(y))
            offs, m = segment_boundaries(h, k, rule, torch.tensor([0, n]), num_bits=d)
            off, m = offs[0].tolist(), int(m[0])
            want = [(off[j], off[j + 1] - 1) for j in range(m)]
            want += [want[-1]] * (k - m)
            bits = np.sign(y.numpy())
            mism = [bits[t] != bits[t + 1] for t in range(n - 1)]
            got = crossfamily.release_segments([float(x.mean()) for x in mism], [int(x.sum()) for x in mism], k, rule)
            if rule == "cumulative_official" and not any(int(x.sum()) for x in mism):
                continue  # the release's all-identical fallback (first K frames, unaveraged) has no offsets form
            assert got == want, (rule, n, k, d)


def test_official_crop_switch():
    from afnet_edge.kernels.adafocus_ops import focus_crop, official_crop, release_crop
    g = torch.Generator().manual_seed(1)
    x, a = torch.randn(3, 2, 40, 40, generator=g), torch.rand(3, 2, generator=g)
    fused = focus_crop(x, a, 17, "bilinear", kernels="torch")
    with official_crop():
        off = focus_crop(x, a, 17, "bilinear", kernels="torch")
        assert torch.equal(focus_crop(x, a, 17, "floor"), focus_crop(x, a, 17, "floor", kernels="torch"))
    assert torch.equal(off, release_crop(x, a, 17)) and not torch.equal(off, fused)
    assert (off - fused).abs().max() <= 2e-4


@pytest.mark.parametrize("argv, word", [
    (["--models", "tsn_resnet50"], "operating point"),
    (["--batches", "1,2,4"], "--batches"),
    (["--quick"], "--quick"),
])
def test_cross_family_bad_input_is_one_line_exit_2(argv, word, capsys, tmp_path):
    rc = cli.main(["bench", "--cross-family", "--out", str(tmp_path), "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and word in err


def test_docs_crossfamily_block_equals_committed_results():
    tool = _readme_tool()
    path = os.path.join(tool.ROOT, "docs", "performance.md")
    text = open(path).read()
    current = tool.current_block(text, tool.CBEGIN, tool.CEND)
    assert current is not None, "docs/performance.md lost its crossfamily markers"
    assert os.path.exists(tool.CROSS_JSON), "benchmarks/results/cpu/cross_family.json is not committed"
    assert current == tool.crossfamily_block().rstrip("\n") + "\n", \
        "docs/performance.md cross-family block is stale: run python benchmarks/make_readme_table.py"


def _mask_rows(own_inf: float, own_dis: float, own: float, shifted: float, oracle: float) -> list[dict]:
    return [dict(selection="own", top1=own, informative_kept=own_inf, distractor_kept=own_dis),
            dict(selection="own, positions shifted by one", top1=shifted, informative_kept=0.3, distractor_kept=0.3),
            dict(selection="all frames", top1=97.0, informative_kept=1.0, distractor_kept=1.0),
            dict(selection="no frame", top1=30.0, informative_kept=0.0, distractor_kept=0.0),
            dict(selection="informative frames only", top1=oracle, informative_kept=1.0, distractor_kept=0.0)]


def test_demo_model_masks_reading_follows_the_numbers():
    """demo_model_masks.py writes its reading from the measured rows: a content-blind model (fixed per-position
    pattern, oracle far below its own selections) and a content-following one get opposite statements."""
    reading = _script("demo_model_masks").reading
    blind = "\n".join(reading(_mask_rows(0.32, 0.33, 96.0, 93.0, 23.0),
                              torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])))
    assert "2 of its 2 navigation modules select the same frame positions" in blind
    assert "fixed per-position pattern" in blind and "0.97× as often as distractors" in blind
    assert "the oracle is below its own selections by 73.0 points" in blind
    follows = "\n".join(reading(_mask_rows(0.36, 0.11, 95.0, 80.0, 94.0),
                                torch.tensor([[0.4, 0.2, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5]])))
    assert "0 of its 2 navigation modules" in follows and "every module's selections depend on what" in follows
    some = "\n".join(reading(_mask_rows(0.36, 0.11, 95.0, 80.0, 94.0), torch.tensor([[1.0, 0.0], [0.5, 0.5]])))
    assert "1 of its 2 navigation modules selects the same" in some and "the selections of the others depend" in some
    assert "3.27× as often" in follows and "costs 15.0 points; the oracle is within 5 points" in follows


def test_train_demo_model_reuses_runs_written_before_a_setting_existed(tmp_path):
    """train_demo_model.py --reuse: a finished run whose checkpoint does not record a newer setting ran with that
    setting's default, so it is reused for a config at the default and trained again for any other value."""
    from afnet_edge import create_model
    from afnet_edge.data import SyntheticVideoDataset
    from afnet_edge.training import TrainConfig, Trainer
    tdm = _script("train_demo_model")
    model = create_model("af_mobilenetv3", num_classes=4, num_frames=4)
    data = SyntheticVideoDataset(4, num_frames=4, size=32, num_classes=4, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=4, rt=1.0, eval_every=0, nav_estimator="local")
    out = str(tmp_path / "run")
    Trainer(model, data, cfg, device="cpu", out_dir=out, log=None).fit()
    path = os.path.join(out, "last.pth")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("hold_ratio", "nav_natural_gradient"):      # as written before these settings existed
        del ck["train_config"][key]
    torch.save(ck, path)
    tdm._G["args"] = type("Args", (), {"reuse": True})()
    assert tdm._finished(out, cfg, 1) is not None
    assert tdm._finished(out, TrainConfig(**{**cfg.to_dict(), "hold_ratio": 0.25}), 1) is None
    assert tdm._finished(out, cfg, 2) is None                 # not finished for a longer run
    tdm._G["args"].reuse = False
    assert tdm._finished(out, cfg, 1) is None                 # without --reuse every run trains
