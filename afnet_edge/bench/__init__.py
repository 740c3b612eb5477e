"""Model benchmarks: latency, throughput, memory and the *realised ratio* of AFNet's frame skipping.

The package, one job per module:

* :mod:`.grid`        — :class:`Case`, :class:`GridSpec`, :func:`expand_grid`, the backend/mode/precision names;
* :mod:`.timing`      — :func:`timing_stats`, :func:`time_callable`, :func:`measure_ceilings`;
* :mod:`.memory`      — :func:`live_tensor_peak`, resident-set and model-state bytes;
* :mod:`.environment` — :func:`collect_environment`, :func:`device_slug`, Jetson state (read only);
* :mod:`.runners`     — random-weight models and inputs, skip reasons, the PyTorch and ONNX Runtime runners;
* :mod:`.run`         — :func:`run_grid`: every case set up, timed, checked, gathered into a results document;
* :mod:`.results`     — :data:`SCHEMA`, :func:`derive`, :func:`validate_results`, :func:`best_rows`;
* :mod:`.report`      — :func:`format_markdown`, :func:`make_plots`, :func:`write_outputs`;
* :mod:`.profile`     — ``--profile``: :func:`profile_compact`, :func:`format_profile`;
* :mod:`.crossfamily` — ``--cross-family``: every family at its published operating point, official-style vs fused
  execution (:func:`~.crossfamily.run_cross_family`);
* :mod:`.devices`, :mod:`.projection` — the roofline latency PROJECTION (``afnet-edge project``);
* :mod:`.cli`, :mod:`.project_cli` — ``afnet-edge bench`` and ``afnet-edge project`` (each: ``register(subparsers)``).

Acceptance targets of the project are not part of the package: ``benchmarks/check_targets.py`` evaluates them on a
results file.

``afnet-edge bench`` (and ``benchmarks/bench_models.py``, which runs the same command) times a grid of
models × backends × modes × precisions × batches × frames × ratios and writes, under
``benchmarks/results/<device slug>/``, a results JSON (:data:`SCHEMA`), a markdown page and PNG plots.

Backends (``--backends``):

* ``masked``        — the official execution: every focal body on every frame, masks multiplied in. The anchor with
  "no real saving"; its cost does not depend on the ratio, so it is measured once per configuration (``ratio: null``)
  unless ``--masked-per-ratio``.
* ``compact-torch`` — compact execution (focal bodies only on the ``k = ceil(r·T)`` selected frames), fused ops in
  pure PyTorch (``model.configure(kernels="torch")``).
* ``compact-ext``   — compact execution with the compiled ``afnet_edge._C`` kernels (skipped, with the reason, when the
  extension is not built or has no kernels for the device).
* ``onnxruntime``   — the compact ``topk`` graph exported by :func:`afnet_edge.export.export_onnx`, run by ONNX Runtime
  (CPU provider on CPU, CUDA provider on a GPU; fp32 only).
* ``trt``           — a TensorRT engine given with ``--engine`` (model, T, ratio, batch, precision from its sidecar).

Dense baselines (``tsn_resnet50``, ``tsm_resnet50``) have no masked/compact distinction: every torch backend maps to
one backend called ``dense``. Modes (``--modes``) apply to the torch backends: ``eager``, ``cudagraph`` (the whole
forward captured in one CUDA graph; ``topk`` selection keeps every shape static; CUDA only) and ``compile``
(``torch.compile``; a failure is recorded as a skipped row with the error). Selection is always ``topk`` so that every
configuration has a fixed compact batch (``k = ceil(r·T)`` frames per clip in every navigation module).

Timing: warm-up runs, then ``repeats`` timed runs, each on its own: CUDA events around one forward after a device
synchronisation on a GPU, ``time.perf_counter`` around one (synchronous) forward on a CPU; p50 = median. Inputs are
random normal clips (never zeros), rotated among 3 buffers in eager/compile modes (the CUDA-graph mode reads its one
static input buffer). Clocks are never touched; their state is recorded where readable. Weights are random with
variance-preserving scales and random BN statistics (or a ``--checkpoint``): timing does not depend on their values
except through frame selection, which ``topk`` fixes.

Derived metrics (:func:`derive`): ``speedup_vs_masked`` = masked p50 / p50 (same model, T, precision, batch, size and
mode); ``flops_implied_speedup`` = official F(1) / F(r) (spec §9: every focal frame vs the selected fraction);
``realised_ratio`` = ``speedup_vs_masked / flops_implied_speedup`` (1.0 = skipping buys everything the FLOPs promise);
``realised_ratio_vs_r1`` the same against the backend's own r = 1 run (for backends without a masked twin: ONNX Runtime,
TensorRT).

Memory: on CUDA the allocator's peak (``torch.cuda.max_memory_allocated``) over one forward; everywhere for the torch
eager modes the *peak of live tensor bytes* created during one forward, tracked op by op with a dispatch mode
(deterministic, independent of the host allocator's caching: glibc keeps freed pages, so a CPU RSS delta measures the
allocator's history rather than the model); weights and the cached focal constant maps are reported separately. For
ONNX Runtime the resident-set growth over session creation + first run (``/proc/self/status`` VmHWM after resetting it
through ``/proc/self/clear_refs``), which includes ORT's arena and its copy of the weights.
"""
from __future__ import annotations

from .cli import DEFAULT_RESULTS, add_bench_args, canonical_argv, csv_list, spec_from_args
from .environment import (collect_environment, device_slug, jetson_slug, jetson_state, parse_nvpmodel,
                          parse_tegra_release)
from .grid import BACKENDS, COMPACT_BACKENDS, DENSE, MODES, PRECISIONS, QUICK, TORCH_BACKENDS, Case, GridSpec, \
    expand_grid
from .memory import live_tensor_peak
from .profile import format_profile, profile_compact
from .report import format_markdown, make_plots, write_outputs
from .results import SCHEMA, best_rows, derive, validate_results
from .run import run_grid
from .runners import randomize_weights
from .timing import measure_ceilings, time_callable, timing_stats

__all__ = ["SCHEMA", "BACKENDS", "TORCH_BACKENDS", "COMPACT_BACKENDS", "DENSE", "MODES", "PRECISIONS", "QUICK",
           "DEFAULT_RESULTS", "GridSpec", "Case", "expand_grid", "run_grid", "derive", "validate_results", "best_rows",
           "collect_environment", "device_slug", "measure_ceilings", "write_outputs", "format_markdown", "make_plots",
           "timing_stats", "time_callable", "live_tensor_peak", "parse_tegra_release", "parse_nvpmodel",
           "jetson_state", "jetson_slug", "randomize_weights", "profile_compact", "format_profile", "csv_list",
           "add_bench_args", "spec_from_args", "canonical_argv"]
