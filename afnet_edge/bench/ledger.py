"""Analytical BYTES LEDGER of one inference forward per execution plan (issue 16): a per-kernel list of
``(name, layer, bytes read, bytes written, MACs)`` computed from the architecture alone — layer shapes, T, batch,
``k = topk_count(r, T)`` selected frames per clip and block, dtype size — with no tracing and no tensor arithmetic.

Plans (the names used by bench, projection and docs): ``masked`` (official: every focal body on every frame),
``compact-eager`` (today's compact path: gather → body on K frames → full scatter ``φ(K_i + r)``),
``compact-lazy`` (lazy constant chains: the scatter writes only the selected rows, readers apply the pending maps),
``compact-fused`` (lazy + the gather fused into the first 1×1 conv and the scatter into the last 1×1 conv's epilogue;
ResNet focal bottlenecks only — AF-MobileNetV3 falls back to the lazy plan, as the model does). Dense baselines
(TSM/TSN-ResNet50) have one plan (every frame). The ``lower-bound`` entry is what these semantics cannot avoid.

The model is built on the ``meta`` device only to read its module configuration (channels, kernels, groups, strides,
which blocks shift); shapes are then propagated by formula.

Rules — the projection's ``fused`` scenario (:mod:`.projection`: an ideal graph compiler), stated per kernel:

* Element-wise ops (BN in eval, ReLU, h-swish, the mask multiply, residual adds, the SE scale, sigmoid) are fused
  into their producer and **move no bytes** (BN folded into its producer's epilogue). In particular the masked path's
  mask multiply is fused into conv1's operand load, and the residual add of a stock bottleneck is charged nothing
  (optimistic for ``masked``/dense; the fused ops below do charge the residual rows they read, since that read is
  part of their own argument list).
* A convolution / matrix product reads its whole input tensor once and its weights once (+ bias), writes its
  output once; MACs ``out·C_in/groups·kh·kw`` (= :func:`afnet_edge.flops.count_flops`' executed MACs, tested).
* TSM shift, as the model runs it (``reference.temporal_shift``): a separate copy of three concatenations, i.e. reads
  and writes ``N·(C + 2·⌊C/8⌋)·H·W`` elements, plus one ``B·⌊C/8⌋·H·W`` zero block. Not fused into conv1: the
  projection's fused scenario fuses element-wise ops only (the ``compact-fused`` plan does fuse it, for the focal
  branch, inside ``gather_conv1x1``).
* Pools: ``avg_pool2d``/``max_pool2d`` read the input and write the output (the stem's max-pool also writes int64
  indices, as PyTorch's ``max_pool2d_with_indices`` does); a global mean reads its input, writes ``(N, C)``. Legacy
  nearest upsampling (masked fusion) reads ``xl`` and writes ``up(xl)``; the masked pool then reads the full-size
  ``up(xl) + xb`` once (the add itself is fused).
* Fused ops, one kernel per call:
  - ``focal_gather``: each selected frame's row reads C channels in total, split among itself (6/8) and its TSM
    neighbours (1/8 each) — zero-filled clip-edge segments are counted as read (≤ 2/(8T) of the gather, an upper
    bound); writes the ``(K, C, H, W)`` compact batch; + the index; + chain state.
  - ``focal_scatter`` eager: reads the full residual ``(N, C, H, W)``, ``y``, the constant map ``K_i``, the index;
    writes the full output. With a chain, in place: reads and writes only the K selected rows (+ ``y``, chain state).
  - ``ample_fuse_pool`` / ``ample_fuse_blend``: read ``xl`` and ``xb`` once (+ ``a``, + chain state); write
    ``(N, C)`` / ``(N, C, H, W)``.
  - ``gather_conv1x1``: the gathered operand (as the gather) + weights + folded BN (float32 scale, bias) + chain
    state; writes ``(K, C_w, H, W)``. ``conv1x1_scatter``: ``h`` + weights + folded BN + the K selected residual rows
    + chain state; writes the K rows in place.
  - chain state, read once per kernel: ``start`` (int32 ``(N,)``) and the constant maps ``K_0 .. K_{upto−1}`` that
    may be pending at that reader (stored dtype); ``start`` is zero-filled once per stage and updated per block
    (``index_fill_``: tiny, included).
  - ``select_frames`` (compact): one kernel per stage, reads the stacked logits, writes index/counts/mask.
* Ignored (each < 1 kB): the masked path's per-block top-k of the navigation logits, the final mean over T.
* Lower bound (per model and r): every kernel the plans share (stem, ample branches, navigation, ``base_transform``,
  fusion attention, the fusion blocks, layer4 / later stages, head — as above, including their shift copies) + for
  the focal branch only what the semantics make unavoidable: the first focal block's residual downsample on **all**
  frames (it feeds unselected frames: ``φ(K_0 + downsample(x))``), the convolutions on the K selected frames with
  the gather fused into conv1's operand load (reads ``K·C_in·H·W``) and conv3 writing the selected rows in place
  (reading the K residual rows it adds), the constant maps ``K_i`` read once per stage, and the fusion as the masked
  path is charged under these rules (the cheaper valid accounting: upsample ``xl``, one pooled read of ``up(xl) +
  xb``, the element-wise blend fused away — the fused ops' pool + blend cost ≈ 1.5 full passes more per stage).
  Weights are read once per kernel.
* ``bytes realised`` = (masked − plan) / (masked − lower bound): 1.0 = every avoidable byte avoided.
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from ..kernels.reference import topk_count
from ..models import create_model, model_entry
from .grid import PRECISIONS
from .projection import PLANS, OpRecord

__all__ = ["PLANS", "LEDGER_PLANS", "PARTS", "ledger", "lower_bound", "fused_bytes", "stage_of", "bytes_by_stage",
           "bytes_by_part", "part_of", "bytes_realised", "macs"]

LEDGER_PLANS = PLANS + ("lower-bound",)
_INT64, _INT32 = 8, 4


def stage_of(layer: str) -> str:
    """Stage of a module name: ``layer1``..``layer4`` (ResNets), ``stage2``..``stage5`` (MobileNetV3), else
    ``stem/head``."""
    m = re.search(r"layer(\d)", layer)
    if m:
        return f"layer{m.group(1)}"
    m = re.search(r"(?:stage|gen)(\d)", layer)
    if m:
        return f"stage{m.group(1)}"
    return "stem/head"


def fused_bytes(records: list[OpRecord]) -> float:
    """Bytes moved under the projection's ``fused`` scenario: element-wise kernels are fused (move nothing)."""
    return sum(r.bytes_read + r.bytes_written for r in records if r.cls != "elementwise")


def bytes_by_stage(records: list[OpRecord]) -> dict:
    """``{stage: bytes}`` under the ``fused`` scenario (:func:`stage_of` of each kernel's layer)."""
    out: dict = {}
    for r in records:
        if r.cls != "elementwise":
            k = stage_of(r.layer)
            out[k] = out.get(k, 0.0) + r.bytes_read + r.bytes_written
    return out


def macs(records: list[OpRecord]) -> float:
    """Total multiply-accumulates of ``records``."""
    return sum(r.macs for r in records)


def bytes_realised(masked: float, plan: float, bound: float) -> float:
    """(masked − plan) / (masked − lower bound)."""
    if masked <= bound:
        raise ValueError(f"masked bytes ({masked}) must exceed the lower bound ({bound})")
    return (masked - plan) / (masked - bound)


class _Ledger:
    """Kernel list under construction; ``s`` bytes per stored element; shapes are ``(C, H, W)`` per frame."""

    def __init__(self, model: nn.Module, s: int, B: int, T: int, tsm_shift: str = "copy"):
        self.shift_fused = tsm_shift == "fused"
        self.names = {m: n for n, m in model.named_modules()}
        self.s, self.B, self.T = s, B, T
        self.N = B * T
        self.records: list[OpRecord] = []

    def add(self, op: str, layer, read: float, written: float, cls: str = "data", macs: float = 0.0,
            kind: str = "") -> None:
        name = layer if isinstance(layer, str) else self.names[layer]
        self.records.append(OpRecord(op, name, float(macs), 0.0 if cls == "matrix" else written / self.s,
                                     float(read), float(written), cls, kind))

    def t(self, n: int, shape) -> float:
        """Bytes of ``n`` frames of a ``(C, H, W)`` activation."""
        c, h, w = shape
        return float(n * c * h * w * self.s)

    def conv(self, conv: nn.Conv2d, n: int, shape) -> tuple:
        c, h, w = shape
        kh, kw = conv.kernel_size
        sh, sw = conv.stride
        if isinstance(conv.padding, str):
            raise ValueError(f"conv: padding must be explicit (ph, pw), got {conv.padding!r}")
        ph, pw = conv.padding
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        out = (conv.out_channels, ho, wo)
        wbytes = conv.weight.numel() * self.s + (conv.bias.numel() * self.s if conv.bias is not None else 0)
        self.add("convolution", conv, self.t(n, shape) + wbytes, self.t(n, out), "matrix",
                 n * conv.out_channels * ho * wo * (c // conv.groups) * kh * kw, "conv")
        return out

    def linear(self, lin: nn.Linear, n: int) -> None:
        wb = lin.weight.numel() * self.s + (lin.bias.numel() * self.s if lin.bias is not None else 0)
        self.add("addmm" if lin.bias is not None else "mm", lin, n * lin.in_features * self.s + wb,
                 n * lin.out_features * self.s, "matrix", n * lin.in_features * lin.out_features, "mm")

    def mean(self, layer, n: int, shape) -> None:
        self.add("mean", layer, self.t(n, shape), n * shape[0] * self.s, "reduction")

    def shift(self, layer, n: int, shape) -> None:
        if self.shift_fused:
            return  # folded into the consumer's (conv1's) operand load: it reads its input once anyway
        c, h, w = shape
        fold = c // 8
        self.add("new_zeros", layer, 0.0, self.B * fold * h * w * self.s)
        for _ in range(2):
            self.add("cat", layer, self.t(n, (fold, h, w)), self.t(n, (fold, h, w)))
        self.add("cat", layer, self.t(n, shape), self.t(n, shape))

    def avgpool(self, pool: nn.AvgPool2d, n: int, shape) -> tuple:
        c, h, w = shape
        out = (c, (h + 2 * pool.padding - pool.kernel_size) // pool.stride + 1,
               (w + 2 * pool.padding - pool.kernel_size) // pool.stride + 1)
        self.add("avg_pool2d", pool, self.t(n, shape), self.t(n, out), "reduction")
        return out

    def sequential(self, seq: nn.Sequential, n: int, shape) -> tuple:
        for m in seq:
            if isinstance(m, nn.Conv2d):
                shape = self.conv(m, n, shape)
            elif isinstance(m, nn.AvgPool2d):
                shape = self.avgpool(m, n, shape)
        return shape

    def chain(self, upto: int, shape) -> float:
        """Chain state read by one kernel: ``start`` + the maps of blocks ``< upto``."""
        return self.N * _INT32 + upto * self.t(1, shape)


# ------------------------------------------------------------------------------------------- family pieces
def _ample_resnet(L: _Ledger, blk, n: int, shape) -> tuple:
    """AmpleBottleneck (AFNet ample / fusion / layer4 and the TSM/TSN bottleneck)."""
    if blk.downsample is not None:
        L.sequential(blk.downsample, n, shape)
    if blk.shift:
        L.shift(blk, n, shape)
    s = L.conv(blk.conv1, n, shape)
    s = L.conv(blk.conv2, n, s)
    return L.conv(blk.conv3, n, s)


def _inverted_body(L: _Ledger, blk, n: int, shape) -> tuple:
    """Conv path of a MobileNetV3 inverted residual (expand, depthwise, SE, project), on ``n`` frames."""
    convs = [blk.conv1, blk.conv2] + ([blk.conv3] if blk.has_expand else [])
    s = shape
    for conv in convs:
        if blk.se is not None and conv is convs[-1]:
            L.mean(blk.se, n, s)
            for m in blk.se.fc:
                if isinstance(m, nn.Linear):
                    L.linear(m, n)
        s = L.conv(conv, n, s)
    return s


def _conv_shape(conv: nn.Conv2d, shape) -> tuple:
    c, h, w = shape
    kh, kw = conv.kernel_size
    return (conv.out_channels, (h + 2 * conv.padding[0] - kh) // conv.stride[0] + 1,
            (w + 2 * conv.padding[1] - kw) // conv.stride[1] + 1)


def _ample_mobilenet(L: _Ledger, blk, n: int, shape) -> tuple:
    L.shift(blk, n, shape)
    return _inverted_body(L, blk, n, shape)


def _navigation(L: _Ledger, nav, shape) -> None:
    L.mean(nav, L.N, shape)
    L.conv(nav.conv_pool, L.N, (shape[0], 1, 1))
    L.conv(nav.conv_gs, L.B, (2 * L.T, 1, 1))


def _focal_body(L: _Ledger, blk, n: int, shape, fused: bool = False) -> tuple:
    """Focal body on ``n`` frames; ``fused``: conv1/conv3 are charged by the fused GEMM ops instead (ResNet)."""
    if hasattr(blk, "has_expand"):
        return _inverted_body(L, blk, n, shape)
    s = _conv_shape(blk.conv1, shape) if fused else L.conv(blk.conv1, n, shape)
    s = L.conv(blk.conv2, n, s)
    return _conv_shape(blk.conv3, s) if fused else L.conv(blk.conv3, n, s)


def _focal_residual(blk):
    return getattr(blk, "downsample", None) if not hasattr(blk, "has_expand") else blk.res_connect


def _gemm_macs(conv: nn.Conv2d, K: int, shape_out) -> float:
    c, h, w = shape_out
    return float(K * c * h * w * (conv.in_channels // conv.groups))


def _af_stage(L: _Ledger, plan: str, k: int, x_shape, stage: str, navs, amples, focals, transform, attention,
              fuse, ample_fn) -> tuple:
    """One AF stage; returns the stage output shape."""
    N, s = L.N, L.s
    K = L.B * k
    n_blocks = len(focals)
    xl = x_shape
    for nav, ample in zip(navs, amples):       # masks first (identical kernels in every plan)
        _navigation(L, nav, xl)
        xl = ample_fn(L, ample, N, xl)
    if plan.startswith("compact"):
        lg = n_blocks * L.B * L.T * 2 * s
        L.add("stack", stage, lg, lg)
        L.add("select_frames", stage, lg, n_blocks * K * _INT64 + n_blocks * _INT64 + n_blocks * L.B * L.T * s)
    xb = x_shape
    lazy = plan in ("compact-lazy", "compact-fused", "lower-bound")
    is_resnet = not hasattr(focals[0], "has_expand")
    fused = plan in ("compact-fused", "lower-bound") and is_resnet
    for j, blk in enumerate(focals):
        cin = xb
        res = _focal_residual(blk)
        out = (blk.conv3.out_channels,) + cin[1:] if is_resnet else _focal_out(blk, cin)
        if plan == "masked":
            if res is not None:
                L.sequential(res, N, cin)
            if blk.shift:
                L.shift(blk, N, cin)
            _focal_body(L, blk, N, cin)
            xb = out
            continue
        if res is not None:
            L.sequential(res, N, cin)               # residual of every frame (feeds the unselected ones)
        if lazy and j == 0 and plan != "lower-bound":
            L.add("zeros", stage, 0.0, N * _INT32)  # chain start
        ch_g = 0.0 if (j == 0 or not lazy) else L.chain(j, out)
        ch_s = L.chain(j, out) if lazy else 0.0
        if plan == "lower-bound":
            ch_g = ch_s = 0.0
        gather = L.t(K, cin) + K * _INT64 + ch_g
        if plan == "lower-bound" and not is_resnet:   # gather fused into the first conv's operand load
            _focal_body(L, blk, K, cin)
            L.add("residual_rows", stage, L.t(K, out), 0.0)
            xb = out
            continue
        if fused:
            c1 = blk.conv1
            h_shape = _conv_shape(c1, cin)
            L.add("gather_conv1x1", stage, gather + c1.weight.numel() * s + 2 * 4 * c1.out_channels,
                  L.t(K, h_shape), "matrix", _gemm_macs(c1, K, h_shape), "conv")
        else:
            L.add("focal_gather", stage, gather, L.t(K, cin))
        yshape = _focal_body(L, blk, K, cin, fused=fused)
        if fused:
            c3 = blk.conv3
            L.add("conv1x1_scatter", stage,
                  L.t(K, _conv_shape(blk.conv2, _conv_shape(blk.conv1, cin))) + c3.weight.numel() * s
                  + 2 * 4 * c3.out_channels + L.t(K, out) + K * _INT64 + ch_s, L.t(K, out), "matrix",
                  _gemm_macs(c3, K, out), "conv")
        elif lazy:
            L.add("focal_scatter", stage, L.t(K, out) + L.t(K, yshape) + K * _INT64 + ch_s, L.t(K, out))
        else:
            L.add("focal_scatter", stage, L.t(N, out) + L.t(K, yshape) + L.t(1, out) + K * _INT64, L.t(N, out))
        if lazy and plan != "lower-bound":
            L.add("index_fill_", stage, N * _INT32 + K * _INT64, N * _INT32, "other")
        xb = out
    if plan == "lower-bound":
        L.add("constant_maps", stage, n_blocks * L.t(1, xb), 0.0)
    if transform is not None:
        xl = L.sequential(transform, N, xl)
    if plan in ("masked", "lower-bound"):
        L.add("upsample_nearest2d", stage, L.t(N, xl), L.t(N, xb))
        L.mean(stage, N, xb)
    else:
        ch = L.chain(n_blocks, xb) if lazy and plan != "lower-bound" else 0.0
        L.add("ample_fuse_pool", stage, L.t(N, xl) + L.t(N, xb) + ch, N * xb[0] * s, "reduction")
    for m in attention.fc:
        if isinstance(m, nn.Linear):
            L.linear(m, N)
    if plan not in ("masked", "lower-bound"):
        ch = L.chain(n_blocks, xb) if lazy else 0.0
        L.add("ample_fuse_blend", stage, L.t(N, xl) + L.t(N, xb) + N * xb[0] * s + ch, L.t(N, xb))
    return ample_fn(L, fuse, N, xb)


def _focal_out(blk, shape) -> tuple:
    convs = [blk.conv1, blk.conv2] + ([blk.conv3] if blk.has_expand else [])
    s = shape
    for c in convs:
        s = _conv_shape(c, s)
    return s


# ------------------------------------------------------------------------------------------- families
def _afnet_resnet(L: _Ledger, model, plan: str, k: int, size: int) -> None:
    bm = model.base_model
    s = _resnet_stem(L, bm, size)
    for name in ("layer1", "layer2", "layer3"):
        st = getattr(bm, name)
        s = _af_stage(L, plan, k, s, L.names[st], st.list_gen, st.base_module, st.refine_module, st.base_transform,
                      st.att_gen, st.fusion[0], _ample_resnet)
    for blk in bm.layer4:
        s = _ample_resnet(L, blk, L.N, s)
    _resnet_head(L, model, s)


def _resnet_stem(L: _Ledger, bm, size: int) -> tuple:
    """conv1 (+ BN + ReLU, fused) and the 3×3/2 max pool (values + int64 indices) on every frame; returns (C, H, W)."""
    s = L.conv(bm.conv1, L.N, (3, size, size))
    c, h, w = s
    out = (c, (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1)
    L.add("max_pool2d_with_indices", bm.maxpool, L.t(L.N, s), L.t(L.N, out) + L.N * c * out[1] * out[2] * _INT64,
          "reduction")
    return out


def _resnet_head(L: _Ledger, model, s) -> None:
    L.mean(model.base_model.avgpool, L.N, s)
    L.linear(model.new_fc, L.N)


def _dense_resnet(L: _Ledger, model, plan: str, k: int, size: int) -> None:
    bm = model.base_model
    s = _resnet_stem(L, bm, size)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        for blk in getattr(bm, name):
            s = _ample_resnet(L, blk, L.N, s)
    _resnet_head(L, model, s)


def _afnet_mobilenet(L: _Ledger, model, plan: str, k: int, size: int) -> None:
    bm = model.base_model
    s = L.conv(bm.conv, L.N, (3, size, size))
    for blk in (*bm.features_head, *bm.features_stage1):
        s = _ample_mobilenet(L, blk, L.N, s)
    for i in (2, 3):
        fuse = getattr(bm, f"features_stage{i}_fuse")[0]
        s = _af_stage(L, plan, k, s, f"base_model.stage{i}", getattr(bm, f"list_gen{i}"),
                      getattr(bm, f"features_stage{i}_base"), getattr(bm, f"features_stage{i}_refine"), None,
                      getattr(bm, f"att_gen{i}"), fuse, _ample_mobilenet)
    for blk in (*bm.features_stage4, *bm.features_stage5):
        s = _ample_mobilenet(L, blk, L.N, s)
    s = L.conv(bm.conv_last, L.N, s)
    L.mean(bm, L.N, s)
    for m in bm.fc:
        if isinstance(m, nn.Linear):
            L.linear(m, L.N)


_FAMILIES = {"af_resnet50": _afnet_resnet, "af_resnet101": _afnet_resnet, "af_mobilenetv3": _afnet_mobilenet,
             "tsm_resnet50": _dense_resnet, "tsn_resnet50": _dense_resnet}


def ledger(model_name: str, plan: str = "masked", frames: int | None = None, ratio: float = 0.4, batch: int = 1,
           size: int = 224, precision: str = "fp16", num_classes: int = 174, tsm_shift: str = "copy",
           **options) -> list[OpRecord]:
    """Per-kernel bytes ledger (:class:`~afnet_edge.bench.projection.OpRecord` s, so :func:`project_ops` projects
    it) of one forward of ``model_name`` on ``(batch, T, 3, size, size)`` under ``plan`` (:data:`LEDGER_PLANS`;
    dense baselines ignore it). ``ratio`` gives ``k = topk_count(ratio, T)`` selected frames per clip and block.
    ``tsm_shift``: ``"copy"`` (as the models run it and the projection counts it) or ``"fused"`` (a sensitivity
    case: every TSM shift folded into its conv1's operand load, in every block of every model — no shift kernel)."""
    if tsm_shift not in ("copy", "fused"):
        raise ValueError(f"tsm_shift must be 'copy' or 'fused', got {tsm_shift!r}")
    if model_name not in _FAMILIES:
        raise ValueError(f"model_name must be one of {sorted(_FAMILIES)}, got {model_name!r}")
    if plan not in LEDGER_PLANS:
        raise ValueError(f"plan must be one of {LEDGER_PLANS}, got {plan!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    frames = frames or model_entry(model_name).default_frames
    with torch.device("meta"):
        model = create_model(model_name, num_classes=num_classes, num_frames=frames, **options)
    s = torch.empty((), dtype=PRECISIONS[precision]).element_size()
    L = _Ledger(model, s, batch, frames, tsm_shift)
    _FAMILIES[model_name](L, model, plan, topk_count(ratio, frames), size)
    return L.records


def lower_bound(model_name: str, frames: int | None = None, ratio: float = 0.4, batch: int = 1, size: int = 224,
                precision: str = "fp16", **options) -> list[OpRecord]:
    """The ``lower-bound`` ledger (module docstring: what it includes)."""
    return ledger(model_name, "lower-bound", frames, ratio, batch, size, precision, **options)


PARTS = ("stem/head", "ample branch + navigation", "focal branch", "fusion (pool, attention, blend)",
         "fusion blocks", "late stages (layer4 / stages 4-5)")
_FOCAL_OPS = {"focal_gather", "focal_scatter", "gather_conv1x1", "conv1x1_scatter", "constant_maps", "residual_rows",
              "select_frames", "stack", "zeros", "index_fill_"}


def part_of(rec: OpRecord) -> str:
    """Which part of an AF model a kernel belongs to (:data:`PARTS`), to say what sets a bound (by module name and
    op; the frame-selection kernels count as focal branch)."""
    layer, op = rec.layer, rec.op
    if "refine_module" in layer or "_refine" in layer or op in _FOCAL_OPS:
        return "focal branch"
    if op in ("ample_fuse_pool", "ample_fuse_blend", "upsample_nearest2d") or "att_gen" in layer or \
            (op == "mean" and re.fullmatch(r"base_model\.(layer\d|stage\d)", layer)):
        return "fusion (pool, attention, blend)"
    if "base_module" in layer or "list_gen" in layer or "base_transform" in layer or "_base" in layer:
        return "ample branch + navigation"
    if ".fusion." in layer or "_fuse" in layer:
        return "fusion blocks"
    if stage_of(layer) in ("layer4", "stage4", "stage5"):
        return "late stages (layer4 / stages 4-5)"
    return "stem/head"  # stem, MobileNetV3 head block and stage 1, classifier (and a dense model's layers 1-3)


def bytes_by_part(records: list[OpRecord]) -> dict:
    """``{part: bytes}`` (:func:`part_of`) under the ``fused`` scenario."""
    out = {p: 0.0 for p in PARTS}
    for r in records:
        if r.cls != "elementwise":
            out[part_of(r)] += r.bytes_read + r.bytes_written
    return out
