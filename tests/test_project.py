"""``afnet-edge project``: the traced kernels agree with the FLOPs module, bytes and roofline arithmetic are right, the
device table cites its sources, and the projection error is computed against a results file.

The results documents used here are SYNTHETIC TEST FIXTURES built in the tests (their ``kind`` says so): they check
the comparison logic, they are not measurements and are never written to benchmarks/results."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from afnet_edge import cli
from afnet_edge.flops import count_flops, executed_macs_per_module
from afnet_edge.models import create_model
from afnet_edge.bench.projection import (DEVICES, LABEL, DeviceSpec, OpRecord, find_results, project, project_ops,
                                         projection_error, record_ops, spec_from_ceilings, trace_ops)


@pytest.mark.parametrize("name, execution, ratio", [("af_resnet50", "compact", 0.4), ("af_resnet50", "masked", 0.4),
                                                    ("af_mobilenetv3", "compact", 0.25),
                                                    ("tsm_resnet50", "compact", 1.0)])
def test_traced_macs_equal_executed_macs(name, execution, ratio):
    size, batch = 96, 2
    ops = trace_ops(name, None, ratio, batch, size, "fp32", execution)
    with torch.device("meta"):
        model = create_model(name)
    res = count_flops(model, ratio=ratio, image_size=size)
    want = res["executed_gmacs_masked"] if execution == "masked" else res["executed_gmacs_compact"]
    assert sum(o.macs for o in ops) / 1e9 / batch == pytest.approx(want, rel=1e-9)
    if execution == "compact":  # module by module, against the analytic walk
        per = {}
        for o in ops:
            if o.cls == "matrix":
                per[o.layer] = per.get(o.layer, 0.0) + o.macs / batch
        ref = executed_macs_per_module(model, image_size=size, ratio=ratio)
        assert set(per) == set(ref)
        for k, v in ref.items():
            assert per[k] == pytest.approx(v, rel=1e-9), k


def test_compact_moves_fewer_macs_but_more_kernels_than_masked():
    c = trace_ops("af_resnet50", 12, 0.25, 1, 64, "fp16", "compact")
    m = trace_ops("af_resnet50", 12, 0.25, 1, 64, "fp16", "masked")
    assert sum(o.macs for o in c) < 0.8 * sum(o.macs for o in m)
    assert len(c) > len(m)  # gather/scatter index work is extra kernels in pure PyTorch
    assert all(o.bytes_read >= 0 and o.bytes_written >= 0 for o in c)


def test_bytes_and_macs_of_one_conv():
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=2, bias=False).to("meta")
    x = torch.empty(2, 8, 10, 10, device="meta")
    ops = record_ops(conv, x)
    assert len(ops) == 1
    op = ops[0]
    assert op.cls == "matrix" and op.matrix_kind == "conv"
    assert op.macs == 2 * 16 * 10 * 10 * (8 // 2) * 9
    assert op.bytes_read == 4 * (2 * 8 * 10 * 10 + 16 * 4 * 9)
    assert op.bytes_written == 4 * 2 * 16 * 10 * 10


def test_views_are_free_and_gathers_read_what_they_gather():
    class M(nn.Module):
        def forward(self, x, idx):
            v = x.view(4, -1).t()               # views: no kernel
            g = x.index_select(0, idx)          # reads 2 rows + the index
            return v, g

    x = torch.empty(4, 100, device="meta")
    idx = torch.empty(2, dtype=torch.int64, device="meta")
    ops = record_ops(M(), x, idx)
    assert [o.op for o in ops] == ["index_select"]
    assert ops[0].bytes_written == 2 * 100 * 4 and ops[0].bytes_read == 2 * 100 * 4 + 2 * 8


def _spec(**kw) -> DeviceSpec:
    base = dict(key="toy", name="toy", kind="gpu", bandwidth_gbs=100.0,
                matrix_tflops={"fp16": 10.0, "bf16": 10.0, "tf32": 5.0, "fp32": 1.0}, vector_tflops=1.0,
                launch_us={"eager": 10.0, "cudagraph": 2.0, "fused": 1.0})
    base.update(kw)
    return DeviceSpec(**base)


def test_roofline_arithmetic():
    spec = _spec()
    ops = [OpRecord("convolution", "a", macs=5e9, vector_flops=0, bytes_read=1e8, bytes_written=1e8, cls="matrix",
                    matrix_kind="conv"),         # fp16: 1e10 FLOP / 1e13 = 1 ms compute; 2e8 B / 1e11 = 2 ms memory
               OpRecord("relu", "a", macs=0, vector_flops=1e6, bytes_read=5e7, bytes_written=5e7, cls="elementwise"),
               OpRecord("cat", "b", macs=0, vector_flops=1e6, bytes_read=1e8, bytes_written=1e8, cls="data")]
    eager = project_ops(ops, spec, "fp16", "eager")
    assert eager["kernels"] == 3
    assert eager["total_ms"] == pytest.approx(2.0 + 1.0 + 2.0 + 3 * 0.010)
    assert eager["memory_bound_ms"] == pytest.approx(5.0) and eager["compute_bound_ms"] == 0.0
    assert eager["per_layer"][0]["layer"] == "a" and eager["per_layer"][0]["total_ms"] == pytest.approx(3.02)
    fused = project_ops(ops, spec, "fp16", "fused")  # the ReLU is fused away
    assert fused["kernels"] == 2 and fused["total_ms"] == pytest.approx(2.0 + 2.0 + 2 * 0.001)
    # fp32 convolutions run at the TF32 rate where PyTorch allows it, matmuls at fp32
    fast = [OpRecord("convolution", "a", 5e9, 0, 1.0, 1.0, "matrix", "conv"),
            OpRecord("mm", "b", 5e9, 0, 1.0, 1.0, "matrix", "mm")]
    res = project_ops(fast, spec, "fp32", "cudagraph")
    assert res["compute_bound_ms"] == pytest.approx(1e10 / 5e12 * 1e3 + 1e10 / 1e12 * 1e3)
    with pytest.raises(ValueError):
        project_ops(ops, spec, "fp16", "warp")


def test_device_table_cites_sources_and_brief_numbers():
    want_bw = {"h100-sxm": 3350, "orin-agx": 204.8, "orin-nx": 102.4, "orin-nano": 68, "orin-nano-super": 102,
               "thor": 273}
    for k, bw in want_bw.items():
        assert DEVICES[k].bandwidth_gbs == pytest.approx(bw)
    assert DEVICES["h100-sxm"].matrix_tflops["fp16"] == pytest.approx(989.4)
    for s in DEVICES.values():
        assert s.sources and all("http" in src or "measured" in src for src in s.sources)
        assert any("assumption" in d for d in s.derived)  # launch overheads are labelled as assumed


def test_spec_from_ceilings():
    ce = {"matmul_gflops_fp32": 200.0, "copy_gbs": 20.0, "op_overhead_us": 8.0}
    s = spec_from_ceilings(ce)
    assert s.calibrated and s.matrix_tflops["fp32"] == pytest.approx(0.2) and s.bandwidth_gbs == 20.0
    assert s.launch_us["eager"] == 8.0 and not s.conv_fp32_uses_tf32
    cal = spec_from_ceilings({**ce, "matmul_gflops_fp16": 700e3}, "h100-sxm", base=DEVICES["h100-sxm"])
    assert cal.matrix_tflops["fp16"] == pytest.approx(700.0) and cal.launch_us["fused"] == 1.5
    with pytest.raises(ValueError, match="copy_gbs"):
        spec_from_ceilings({"matmul_gflops_fp32": 1.0, "op_overhead_us": 1.0})


def _fixture_doc(rows) -> dict:
    """SYNTHETIC test fixture shaped like an `afnet-edge bench` results file (not a measurement)."""
    return {"schema": "afnet_edge.bench/1", "kind": "measurement", "_comment": "synthetic test fixture",
            "environment": {"device_slug": "toy"}, "ceilings": {"matmul_gflops_fp32": 100.0, "copy_gbs": 10.0,
                                                                "op_overhead_us": 20.0},
            "rows": rows}


def _fixture_row(backend, ratio, p50, mode="eager", status="ok"):
    return {"model": "af_mobilenetv3", "frames": 12, "backend": backend, "label": backend, "mode": mode,
            "precision": "fp32", "batch": 1, "ratio": ratio, "size": 64, "status": status,
            "latency_ms": {"p50": p50}}


def test_projection_error_against_results_fixture():
    spec = _spec()
    rows = [_fixture_row("masked", None, 50.0), _fixture_row("compact-torch", 0.5, 40.0),
            _fixture_row("compact-torch", 0.5, 40.0, mode="compile"),           # not covered: generated kernels
            _fixture_row("compact-ext", 0.5, 30.0, status="skipped")]          # skipped rows carry no time
    err = projection_error(_fixture_doc(rows), spec)
    assert [r["backend"] for r in err["rows"]] == ["masked", "compact-torch"]
    for r, meas, execution in zip(err["rows"], (50.0, 40.0), ("masked", "compact")):
        want = project("af_mobilenetv3", spec, 12, r["ratio"], 1, 64, "fp32", execution, "eager", per_layer=False)
        assert r["projected_ms"] == pytest.approx(want["total_ms"])
        assert r["error"] == pytest.approx(want["total_ms"] / meas - 1.0)
    s = err["summary"]
    assert s["n"] == 2 and s["median_abs_error"] == pytest.approx(
        sum(abs(r["error"]) for r in err["rows"]) / 2)
    assert err["label"] == LABEL


def test_find_results_only_measurements(tmp_path):
    d = tmp_path / "orin-agx"
    d.mkdir()
    (d / "a.json").write_text(json.dumps(_fixture_doc([_fixture_row("masked", None, 1.0)])))
    (d / "b.json").write_text(json.dumps({"kind": "projection", "rows": [1]}))
    (d / "c.json").write_text("{not json")
    assert [p.split("/")[-1] for p in find_results("orin-agx", str(tmp_path))] == ["a.json"]
    assert find_results("thor", str(tmp_path)) == []


def test_cli_projects_and_reports_error(tmp_path, capsys):
    res = tmp_path / "fixture.json"
    res.write_text(json.dumps(_fixture_doc([_fixture_row("masked", None, 50.0),
                                            _fixture_row("compact-torch", 0.5, 40.0)])))
    out_json = tmp_path / "proj.json"
    rc = cli.main(["project", "--device", "orin-nano", "--models", "af_mobilenetv3", "--size", "64", "--ratios",
                   "0.5", "--precision", "fp32", "--scenario", "eager", "--results", str(res), "--json",
                   str(out_json), "--per-layer", "2"])
    text = capsys.readouterr().out
    assert rc == 0 and LABEL in text and "Projection error" in text and "median |error|" in text
    doc = json.loads(out_json.read_text())
    assert doc["kind"] == "projection" and len(doc["projections"]) == 2  # published spec + calibrated by ceilings
    assert doc["projections"][1]["spec"]["calibrated"] is True
    assert all(p["label"] == LABEL for proj in doc["projections"] for p in proj["results"])
    rc = cli.main(["project", "--device", "cpu", "--models", "af_mobilenetv3", "--size", "64", "--ratios", "0.5",
                   "--precision", "fp32", "--scenario", "eager", "--results", str(res)])
    assert rc == 0 and "CPU (measured ceilings)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, word", [(["--device", "tpu-v9"], "--device"), (["--precision", "int3"], "precision"),
                                        (["--results", "/nonexistent.json"], "nonexistent")])
def test_cli_bad_input(argv, word, capsys):
    rc = cli.main(["project", "--models", "af_mobilenetv3", "--size", "64", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and word in err
