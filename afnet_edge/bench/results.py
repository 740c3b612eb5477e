"""Results documents (:data:`SCHEMA`): the derived metrics (speed-up, FLOPs-implied speed-up, realised ratio),
validation, and row look-ups shared by the reports."""
from __future__ import annotations

import math

from .grid import COMPACT_BACKENDS, TORCH_BACKENDS

__all__ = ["SCHEMA", "derive", "validate_results", "best_rows", "row_ok"]

SCHEMA = "afnet_edge.bench/1"


def row_ok(row: dict) -> bool:
    """A measured row (status ok, with latencies)."""
    return row.get("status") == "ok" and isinstance(row.get("latency_ms"), dict)


def _same_config(a: dict, b: dict, keys=("model", "frames", "precision", "batch", "size")) -> bool:
    return all(a.get(k) == b.get(k) for k in keys)


def derive(doc: dict) -> dict:
    """Fill ``speedup_vs_masked``, ``flops_implied_speedup``, ``realised_ratio`` (from p50), ``realised_ratio_min``
    (from the fastest run of each) and ``realised_ratio_vs_r1`` in every compact row that has its anchor (in place;
    returns ``doc``)."""
    rows = doc.get("rows", [])
    for row in rows:
        for k in ("speedup_vs_masked", "flops_implied_speedup", "realised_ratio", "realised_ratio_vs_r1",
                  "anchor", "realised_ratio_min"):
            row.pop(k, None)
        if not row_ok(row) or row.get("backend") not in COMPACT_BACKENDS or row.get("ratio") is None:
            continue
        fl = row.get("flops") or {}
        if not fl.get("official_gflops") or not fl.get("official_gflops_r1"):
            continue
        implied = fl["official_gflops_r1"] / fl["official_gflops"]
        row["flops_implied_speedup"] = implied
        p50 = row["latency_ms"]["p50"]
        for a in rows:
            if row_ok(a) and a.get("backend") == "masked" and a.get("mode") == row.get("mode") \
                    and _same_config(a, row) and (a.get("ratio") is None or a.get("ratio") == row.get("ratio")) \
                    and row.get("backend") in TORCH_BACKENDS:
                row["speedup_vs_masked"] = a["latency_ms"]["p50"] / p50
                row["realised_ratio"] = row["speedup_vs_masked"] / implied
                # the same from the fastest run of each: more robust on a shared, loaded CPU
                row["realised_ratio_min"] = a["latency_ms"]["min"] / row["latency_ms"]["min"] / implied
                row["anchor"] = f"masked{'' if a['mode'] == 'eager' else '+' + a['mode']} r={a.get('ratio')}"
                break
        for a in rows:
            if row_ok(a) and a.get("backend") == row.get("backend") and a.get("mode") == row.get("mode") \
                    and _same_config(a, row) and a.get("ratio") == 1.0:
                r1 = a["flops"]["official_gflops"]
                row["realised_ratio_vs_r1"] = (a["latency_ms"]["p50"] / p50) / (r1 / fl["official_gflops"])
                break
    return doc


_REQUIRED_TOP = ("schema", "kind", "created", "command", "environment", "grid", "timing", "rows", "load_average")
_REQUIRED_ENV = ("device", "device_type", "device_slug", "torch", "python", "cpu_model", "torch_threads",
                 "git_commit", "tensorrt", "onnxruntime")
_REQUIRED_ROW = ("model", "frames", "backend", "mode", "precision", "batch", "ratio", "size", "status", "label")


def validate_results(doc: dict) -> list[str]:
    """Problems of a results document (empty list = valid): required keys, positive numbers, and derived metrics
    that agree with the latencies and FLOPs they are computed from."""
    probs: list[str] = []
    if not isinstance(doc, dict):
        return ["results must be a JSON object"]
    for k in _REQUIRED_TOP:
        if k not in doc:
            probs.append(f"missing top-level key {k!r}")
    if doc.get("schema") != SCHEMA:
        probs.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    env = doc.get("environment") or {}
    for k in _REQUIRED_ENV:
        if k not in env:
            probs.append(f"environment lacks {k!r}")
    if env.get("device_type") == "cuda":
        for k in ("cuda", "driver", "cudnn"):
            if k not in env:
                probs.append(f"environment lacks {k!r} (CUDA run)")
    rows = doc.get("rows")
    if not isinstance(rows, list) or not rows:
        return probs + ["rows must be a non-empty list"]
    by_id = rows
    for i, row in enumerate(rows):
        where = f"rows[{i}] ({row.get('model')} {row.get('label')} r={row.get('ratio')})"
        for k in _REQUIRED_ROW:
            if k not in row:
                probs.append(f"{where}: missing {k!r}")
        if row.get("status") not in ("ok", "skipped"):
            probs.append(f"{where}: status must be 'ok' or 'skipped'")
        if row.get("status") == "skipped":
            if not row.get("reason"):
                probs.append(f"{where}: skipped without a reason")
            continue
        lat = row.get("latency_ms") or {}
        for k in ("p50", "p90", "mean", "min"):
            v = lat.get(k)
            if not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
                probs.append(f"{where}: latency_ms.{k} must be a positive number, got {v!r}")
        if isinstance(lat.get("p50"), (int, float)) and isinstance(lat.get("p90"), (int, float)) \
                and lat["p90"] < lat["p50"]:
            probs.append(f"{where}: p90 < p50")
        if not isinstance(lat.get("n"), int) or lat["n"] < 1:
            probs.append(f"{where}: latency_ms.n must be a positive integer")
        tp = row.get("throughput_clips_s")
        if not isinstance(tp, (int, float)) or not tp > 0:
            probs.append(f"{where}: throughput_clips_s must be positive")
        elif isinstance(lat.get("p50"), (int, float)) and lat["p50"] > 0 and \
                not math.isclose(tp, row["batch"] / (lat["p50"] * 1e-3), rel_tol=1e-6):
            probs.append(f"{where}: throughput_clips_s != batch / p50")
        fl = row.get("flops") or {}
        for k in ("official_gflops", "executed_gmacs"):
            if not isinstance(fl.get(k), (int, float)) or not fl[k] > 0:
                probs.append(f"{where}: flops.{k} must be positive")
        if "realised_ratio" in row:
            anchor = [a for a in by_id if row_ok(a) and a.get("backend") == "masked" and a.get("mode") == row["mode"]
                      and _same_config(a, row) and (a.get("ratio") is None or a.get("ratio") == row.get("ratio"))]
            if not anchor:
                probs.append(f"{where}: realised_ratio without a masked anchor row")
                continue
            speed = anchor[0]["latency_ms"]["p50"] / lat["p50"]
            implied = fl["official_gflops_r1"] / fl["official_gflops"]
            if not math.isclose(row.get("speedup_vs_masked", -1), speed, rel_tol=1e-9):
                probs.append(f"{where}: speedup_vs_masked {row.get('speedup_vs_masked')} != anchor p50 / p50 = {speed}")
            if not math.isclose(row.get("flops_implied_speedup", -1), implied, rel_tol=1e-9):
                probs.append(f"{where}: flops_implied_speedup != official_gflops_r1 / official_gflops")
            if not math.isclose(row["realised_ratio"], speed / implied, rel_tol=1e-9):
                probs.append(f"{where}: realised_ratio != speedup_vs_masked / flops_implied_speedup")
            if "realised_ratio_min" in row and not math.isclose(
                    row["realised_ratio_min"], anchor[0]["latency_ms"]["min"] / lat["min"] / implied, rel_tol=1e-9):
                probs.append(f"{where}: realised_ratio_min != anchor min / min / flops_implied_speedup")
    return probs


def best_rows(doc: dict, model: str, frames: int, precision: str, batch: int, ratio=None,
              backends=None) -> dict | None:
    """Fastest ok row (lowest p50) of a configuration, over backends and modes."""
    cand = [r for r in doc.get("rows", []) if row_ok(r) and r["model"] == model and r["frames"] == frames
            and r["precision"] == precision and r["batch"] == batch
            and (ratio is None or r.get("ratio") == ratio) and (backends is None or r["backend"] in backends)]
    return min(cand, key=lambda r: r["latency_ms"]["p50"]) if cand else None

