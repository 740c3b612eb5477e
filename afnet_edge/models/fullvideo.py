"""Full-video recognition by temporal clustering: X. Liu, S. L. Pintea, F. Karimi Nejadasl, O. Booij, J. C. van Gemert,
"No frame left behind: Full Video Action Recognition", CVPR 2021 (``shared/spec/full-video-clustering.md``).

A TSM-ResNet split after ``layer1`` (§2.1): stem + layer1 run on **every** frame (no temporal shift there, §2.2), each
frame's layer1 output is binarised (``> 0``), neighbouring frames are compared by Hamming distance and the sequence is
cut into K contiguous segments (§4: ``slope``, ``cumulative``, ``cumulative_official``); each segment is averaged and
layers 2–4 (TSM shift over the K representations, fold 1/8) + the TSN head (dropout, ``new_fc``, mean over K) run on
the K averages. The clustering runs on the device without host synchronisation
(:mod:`afnet_edge.kernels.fullvideo_reference`).

Forward contract::

    out = model(video)                           # (B, N, 3, H, W): B videos of N frames (any N ≥ 1)
    out = model([v0, v1])                        # ragged: list of (N_i, 3, H, W)
    out = model(frames, frame_offsets=offs)      # ragged CSR: frames (ΣN_i, 3, H, W), offsets (B+1,)
    out.logits                                   # (B, num_classes)
    out.segments                                 # (B, K+1) int64 boundaries (frame indices after the stride schedule)
    out.num_segments                             # (B,) emitted segments M (segments ≥ M repeat segment M−1)

``num_frames`` is only the nominal video length N used by ``count_flops`` (per-frame part × N, per-cluster part × K,
§7) and by the generic drivers' example clips; the forward accepts any N.

Streaming (§11.5): ``model.stream()`` returns a :class:`FullVideoStream`; ``push(frames)`` chunks of one video, then
``finish()`` gives the offline logits for the slope rule with O(K·D) memory.

Export (§11.3): ``afnet-edge export`` traces :class:`ExportForward`, i.e. :meth:`FullVideoTSM.forward_portable` — the
slope rule with static N (``num_frames``) and K in standard ONNX operators (:func:`portable_slope`), verified against
the forward above. The ``plugin`` flavour (:meth:`FullVideoTSM.forward_plugin`) replaces the clustering step by one
``SegmentCluster`` TensorRT plugin node (csrc/trt/SegmentClusterPlugin.h: the device kernels), so the ``cumulative``
rule and ragged batches (frames + ``frame_offsets``) export too; ``cumulative_official`` (no kernel) and
``degenerate="even"`` are refused with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# The clustering ops: afnet_edge._C's kernels where the extension has them, else the reference (the choice is made in
# kernels/ext.py, per call; the reference also serves the cumulative rules, degenerate="even" and autograd).
from ..kernels.ext import adjacent_hamming, binarize_pack, segment_boundaries, segment_mean
from ..kernels.fullvideo_ops import cluster_impl
from ..kernels.fullvideo_reference import RULES, popcount32
from .afnet_resnet import WIDTH_OPTION
from .common import MIN_SIZE, VideoClassifier, VideoOutput, init_resnet_weights
from .flops_walk import FlopsWalk, Term, pool_out
from .registry import (BenchDefaults, CliOption, ExportAdapter, FamilyHooks, MappedCheckpoint, StateDict,
                       register_model)
from .registry import OperatingPoint
from .tsn import BACKBONE, is_video_layout, map_tsn_checkpoint

MODEL_RULES = ("slope", "cumulative", "cumulative_official")
SHIFT_DIV = 8
# The release's "all-in" loader (§5): (upper bound of N_raw, stride, frames kept are a multiple of this).
RELEASE_SCHEDULE = ((1200, 1, 16), (4048, 2, 32), (8000, 4, 64), (None, 8, 128))


# ------------------------------------------------------------------------------------------------ frame policy
def frame_schedule(n_raw: int, max_frames: int | None = 1024) -> tuple[int, int]:
    """Frames of a video of ``n_raw`` decoded frames that the model uses (spec §5): ``(stride, count)`` — frames
    ``0, stride, 2·stride, …`` (``count`` of them).

    ``n_raw ≤ max_frames``: every frame (stride 1, count n_raw). Beyond it, the release's all-in schedule: N_raw ≤ 1200
    → every frame of the first ⌊N_raw/16⌋·16; ≤ 4048 → every 2nd of the first ⌊N_raw/32⌋·32; ≤ 8000 → every 4th of
    ⌊N_raw/64⌋·64; above → every 8th of ⌊N_raw/128⌋·128; if that still exceeds ``max_frames`` the stride (and the
    multiple) keeps doubling until it does not (our extension, so that ``max_frames`` bounds memory).
    ``max_frames=None`` applies the release's schedule to every video (exactly its loader).
    """
    if isinstance(n_raw, bool) or not isinstance(n_raw, int) or n_raw < 1:
        raise ValueError(f"n_raw must be a positive integer number of frames, got {n_raw!r}")
    if max_frames is not None and n_raw <= max_frames:
        return 1, n_raw
    for bound, stride, mult in RELEASE_SCHEDULE:
        if bound is None or n_raw <= bound:
            break
    while True:
        kept = (n_raw // mult) * mult or n_raw     # shorter than the multiple: the whole video
        count = (kept + stride - 1) // stride
        if max_frames is None or count <= max_frames:
            return stride, count
        stride, mult = stride * 2, mult * 2


# ------------------------------------------------------------------------------------------------------ blocks
def temporal_shift(x: torch.Tensor, n_segment: int, fold_div: int = SHIFT_DIV) -> torch.Tensor:
    """TSM shift of ``(B·K, C, H, W)`` over the K representations of each video (§2.2), out of place: channels
    [0, C/8) of k take k+1 (last: zeros), [C/8, C/4) take k−1 (first: zeros).

    Written as slices and concatenations with zero blocks (no in-place slice assignment, no 5-D pads), so that the
    traced ONNX graph is ``Slice`` + ``Concat`` (+ a constant zero block) and the batch axis stays symbolic."""
    nk, c, h, w = x.shape
    fold = c // fold_div
    v = x.reshape(-1, n_segment, c, h * w)
    zero = torch.zeros_like(v[:, :1, :fold])
    if n_segment > 1:
        left = torch.cat([v[:, 1:, :fold], zero], 1)               # k takes k+1
        right = torch.cat([zero, v[:, :-1, fold:2 * fold]], 1)     # k takes k−1
    else:                                                          # a single representation: both folds are zero
        left, right = zero, zero
    return torch.cat([left, right, v[:, :, 2 * fold:]], 2).reshape(x.shape)


class ShiftConv(nn.Module):
    """The release's ``TemporalShift(net=conv1)`` wrapper (hence the ``conv1.net.`` keys of layers 2–4).

    ``release_quirk``: as the release, no shift when the batch holds a single video (§2.2); off by default.
    """

    def __init__(self, net: nn.Conv2d, n_segment: int, release_quirk: bool = False):
        super().__init__()
        self.net = net
        self.n_segment = n_segment
        self.release_quirk = release_quirk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.release_quirk and x.shape[0] // self.n_segment <= 1):
            x = temporal_shift(x, self.n_segment)
        return self.net(x)


def _down(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """torchvision ResNet-18 block; ``conv1`` optionally a :class:`ShiftConv`."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, shift: int, quirk: bool):
        super().__init__()
        conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.conv1 = ShiftConv(conv1, shift, quirk) if shift else conv1
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _down(cin, width, stride)

    def convs(self) -> list[nn.Conv2d]:
        c1 = self.conv1.net if isinstance(self.conv1, ShiftConv) else self.conv1
        return [c1, self.conv2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.downsample(x) if self.downsample is not None else x
        z = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(z)) + r)


class Bottleneck(nn.Module):
    """torchvision (v1.5) ResNet-50 bottleneck; ``conv1`` optionally a :class:`ShiftConv`."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, shift: int, quirk: bool):
        super().__init__()
        conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.conv1 = ShiftConv(conv1, shift, quirk) if shift else conv1
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = _down(cin, width * 4, stride)

    def convs(self) -> list[nn.Conv2d]:
        c1 = self.conv1.net if isinstance(self.conv1, ShiftConv) else self.conv1
        return [c1, self.conv2, self.conv3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.downsample(x) if self.downsample is not None else x
        z = F.relu(self.bn1(self.conv1(x)))
        z = F.relu(self.bn2(self.conv2(z)))
        return F.relu(self.bn3(self.conv3(z)) + r)


class SplitResNet(nn.Module):
    """ResNet backbone split at the clustering point: :meth:`per_frame` (stem + layer1, no shift) and
    :meth:`per_cluster` (layers 2–4 with the shift over K, pooled features). ``fc`` is the TSN Dropout.
    ``widths``: the stage widths (torchvision's 64, 128, 256, 512; the stem has ``widths[0]`` channels)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple, clusters: int, dropout: float,
                 quirk: bool, widths: tuple = (64, 128, 256, 512)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        stages = []
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks: list[nn.Module] = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1, clusters if i > 0 else 0, quirk))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_features = cin
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Dropout(dropout)
        init_resnet_weights(self)

    def per_frame(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → layer1 output ``(N, C1, H/4, W/4)`` (post-ReLU, so ``> 0`` is the release's sign)."""
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))

    def per_cluster(self, z: torch.Tensor) -> torch.Tensor:
        """``(B·K, C1, h, w)`` cluster means → ``(B·K, C4)`` pooled features after the TSN dropout."""
        z = self.layer4(self.layer3(self.layer2(z)))
        return self.fc(torch.flatten(self.avgpool(z), 1))


# ------------------------------------------------------------------------------------ portable export graph (§11.3)
#: Hamming counts are summed in fp32: exact while every partial sum is an integer below 2^24 (D = C·h·w < 2^24;
#: ResNet-50 at 224² has D = 802,816).
MAX_EXACT_BITS = 1 << 24


def _static_assignment(n: int, k: int, even: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Assignment of the cases decided by N and K alone (graph constants): ``onehot (K, N)`` float (row j marks the
    frames of segment j) and ``offsets (K+1,)`` int64 as :func:`~afnet_edge.kernels.fullvideo_reference
    .segment_boundaries` gives them. ``even``: even segments (§4.4); else N < K (one segment per frame, the last
    repeated, §4.1(4)) or K = 1 (one segment)."""
    t = torch.arange(n)
    j = torch.arange(k)
    if even:
        q, r = divmod(n, k)
        offsets = torch.arange(k + 1) * q + torch.clamp(torch.arange(k + 1), max=r)
        onehot = (t.unsqueeze(0) >= offsets[:-1].unsqueeze(1)) & (t.unsqueeze(0) < offsets[1:].unsqueeze(1))
    else:                                  # K = 1: every frame; N < K: frame j for j < N, then frame N−1 repeated
        if k == 1:
            onehot = torch.ones(1, n, dtype=torch.bool)
            offsets = torch.tensor([0, n])
        else:
            onehot = t.unsqueeze(0) == torch.clamp(j, max=n - 1).unsqueeze(1)
            offsets = torch.clamp(torch.arange(k + 1), max=n)
    return onehot.float(), offsets.to(torch.int64)


def portable_slope(a: torch.Tensor, k: int, degenerate: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """Slope clustering (spec §4.1) of ``a (B, N, D)`` (layer1 outputs, frames in order) in operators that export to
    standard ONNX and build in TensorRT: no data-dependent shapes or control flow, no TopK/Scatter, no CumSum.

    * bits ``a > 0`` (Greater, Cast) and ``h_t = Σ|b_{t+1} − b_t|`` (Sub, Abs, ReduceSum): exact integer counts in
      fp32 for D < 2^24;
    * the tie rule as a rank count: position t's rank is the number of positions s that beat it in the order (h
      descending, later position first), ``#{s: h_s > h_t} + #{s > t: h_s = h_t}`` (a (B, N−1, N−1) comparison
      against a constant "later" mask, ReduceSum); the cuts are the positions of rank < K−1 — exactly the K−1
      largest (h, t) keys of the reference's two stable sorts;
    * segment of frame t = number of cuts before t: a MatMul of the cut flags with a constant strictly-upper-
      triangular (N−1, N) matrix (integer-valued, exact), one-hot against ``arange(K)`` (Equal);
    * means: ``(onehot (B, K, N) @ a) / sizes`` (MatMul reads ``a`` once; fp32 accumulation);
    * ``degenerate="even"``: Where(all distances equal, even segments, slope segments).
    The rank count holds (N−1)² comparisons per video (4 MB in fp32 at N = 1,024, the default ``max_frames``).
    The cases fixed by N and K (N < K, K = 1, N < 3 with ``degenerate="even"``) are graph constants.

    Returns ``(z (B, K, D), offsets (B, K+1) int64)`` equal to
    ``segment_mean(a, *segment_boundaries(adjacent_hamming(binarize_pack(a)), K, "slope"))`` (offsets exactly,
    means to fp32 rounding; here every video has M = min(N, K) emitted segments).
    """
    if a.dim() != 3:
        raise ValueError(f"portable_slope: a must be (B, N, D), got shape {tuple(a.shape)}")
    n, dim = int(a.shape[1]), int(a.shape[2])
    if n < 1 or dim < 1:
        raise ValueError(f"portable_slope: a must have at least one frame and one element per frame, got "
                         f"{tuple(a.shape)}")
    if dim >= MAX_EXACT_BITS:
        raise ValueError(f"portable_slope: D = {dim} activations per frame; the fp32 Hamming counts are exact only "
                         f"for D < 2^24 (lower the input size)")
    if degenerate not in ("none", "even"):
        raise ValueError(f"degenerate must be 'none' or 'even', got {degenerate!r}")
    acc = torch.promote_types(a.dtype, torch.float32)
    if n < k or k == 1 or (degenerate == "even" and n < 3):
        onehot, offsets = _static_assignment(n, k, degenerate == "even" and n >= k)
        onehot = onehot.to(a.device, acc).unsqueeze(0)
        offsets = offsets.to(a.device).unsqueeze(0).expand(a.shape[0], k + 1)
    else:
        bits = (a > 0).to(acc)
        h = (bits[:, 1:] - bits[:, :-1]).abs().sum(-1)                       # (B, N−1) exact integer counts
        pos = torch.arange(n - 1, device=a.device)
        later = (pos.unsqueeze(0) > pos.unsqueeze(1)).to(acc)                # later[t, s] = s > t
        hi, hs = h.unsqueeze(2), h.unsqueeze(1)                               # [b, t, s]: h_t, h_s
        rank = ((hs > hi).to(acc) + (hs == hi).to(acc) * later).sum(-1)       # positions that beat t
        cut = (rank < k - 1).to(acc)                                          # (B, N−1)
        frames = torch.arange(n, device=a.device)
        upper = (pos.unsqueeze(1) < frames.unsqueeze(0)).to(acc)              # upper[s, t] = s < t
        seg = torch.matmul(cut, upper)                                        # (B, N): cuts before frame t
        j = torch.arange(k + 1, device=a.device, dtype=acc).view(1, k + 1, 1)
        onehot = (seg.unsqueeze(1) == j[:, :k]).to(acc)                       # (B, K, N)
        offsets = (seg.unsqueeze(1) < j).to(acc).sum(-1).to(torch.int64)     # frames before segment j
        if degenerate == "even":
            flat = (h.amax(-1) <= h.amin(-1)).view(-1, 1, 1)
            even_hot, even_off = _static_assignment(n, k, True)
            onehot = torch.where(flat, even_hot.to(a.device, acc), onehot)
            offsets = torch.where(flat.view(-1, 1), even_off.to(a.device), offsets)
    sums = torch.matmul(onehot, a.to(acc))
    z = sums / onehot.sum(-1, keepdim=True)
    return z.to(a.dtype), offsets


# -------------------------------------------------------------------------------------------------------- model
@dataclass
class FullVideoOutput(VideoOutput):
    """``logits (B, classes)``; ``segments (B, K+1)`` int64 boundaries and ``num_segments (B,)`` M per video
    (segment j < M = frames ``segments[j]:segments[j+1]``; j ≥ M repeat M−1); ``masks`` is empty (no navigation)."""

    segments: torch.Tensor | None = None
    num_segments: torch.Tensor | None = None
    frame_offsets: torch.Tensor | None = None
    masks: list = field(default_factory=list)


class FullVideoTSM(VideoClassifier):
    """Full-video TSM-ResNet with temporal clustering after layer1 (spec §1–§4).

    Args:
        clusters: K, the number of cluster representations per video (= the TSM segments of layers 2–4).
        rule: ``"slope"`` (cut at the K−1 largest neighbour distances, later position wins ties), ``"cumulative"``
            (default; the repaired sequential equal-share rule in exact integers, last segment emitted) or
            ``"cumulative_official"`` — the release's ``accumulated_selection`` bit for bit, **bug included**: the
            final open band is never emitted (its frames get no gradient and do not influence the output) and the
            last emitted segment is repeated to reach K; all-identical patterns give the first K frames unaveraged
            (§4.2). Float64 normalised distances, ``≤`` comparisons as the release.
        max_frames: frame-count policy (:func:`frame_schedule`): all frames up to it, the release's stride schedule
            beyond (None: always the release's schedule). Applied where the video lengths are known on the host
            (5-D input, list input, ``frame_offsets`` given as a list or CPU tensor); with ``frame_offsets`` on the
            device the frames are used as given (no host sync).
        degenerate: ``"none"`` (release) or ``"even"`` (slope: even segments when all distances are equal, §4.4).
        release_shift_quirk: reproduce the release's TSM quirk (no shift when the batch holds one video, §2.2).
        dropout: TSN dropout before ``new_fc``.
        widths: the ResNet stage widths (tests build narrow variants; the registered models use torchvision's).
    """

    def __init__(self, arch: str, block: type[BasicBlock] | type[Bottleneck], layers: tuple, num_classes: int, num_frames: int, clusters: int,
                 rule: str, max_frames: int | None, dropout: float, degenerate: str, release_shift_quirk: bool,
                 width: float = 1.0):
        super().__init__(num_classes, num_frames)
        widths = fullvideo_widths(width)
        if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1:
            raise ValueError(f"clusters (K) must be a positive integer, got {clusters!r}")
        if rule not in MODEL_RULES:
            raise ValueError(f"rule must be one of {MODEL_RULES}, got {rule!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                       or max_frames < 1):
            raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
        if degenerate not in ("none", "even"):
            raise ValueError(f"degenerate must be 'none' or 'even', got {degenerate!r}")
        self.arch = arch
        self.width = float(width)
        self.tsm = True
        self.clusters = clusters
        self.rule = rule
        self.max_frames = max_frames
        self.degenerate = degenerate
        self.release_shift_quirk = bool(release_shift_quirk)
        self.base_model = SplitResNet(block, layers, clusters, dropout, self.release_shift_quirk, widths)
        self.new_fc = nn.Linear(self.base_model.out_features, num_classes)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.zeros_(self.new_fc.bias)

    # ------------------------------------------------------------------------------------------------ input
    def _check_tensor(self, t: torch.Tensor, name: str) -> None:
        p = next(self.parameters())
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor (normalised pixels), got dtype {t.dtype}")
        if t.dtype != p.dtype:
            raise TypeError(f"{name} dtype {t.dtype} does not match the model's parameters ({p.dtype})")
        if t.device != p.device:
            raise ValueError(f"{name} is on {t.device} but the model is on {p.device}")
        h, w = t.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"{name} frames are {h}×{w}; H and W must be at least {MIN_SIZE}")

    def prepare(self, video, frame_offsets=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate the input and apply the frame-count policy: returns frames ``(ΣN_i, 3, H, W)`` and CSR
        ``frame_offsets (B+1,)`` int64 on the frames' device (never syncs the device)."""
        form = ("(B, N, 3, H, W), a list of (N_i, 3, H, W) tensors, or frames (ΣN_i, 3, H, W) with frame_offsets "
                "(B+1,)")
        lengths: list[int] | None
        if isinstance(video, (list, tuple)):
            if frame_offsets is not None:
                raise ValueError("frame_offsets is only for a frames tensor (ΣN_i, 3, H, W), not for a list of videos")
            if not video or not all(isinstance(v, torch.Tensor) and v.dim() == 4 and v.shape[1] == 3
                                    and v.shape[0] >= 1 for v in video):
                raise ValueError(f"video list must hold tensors of shape (N_i, 3, H, W) with N_i ≥ 1; expected {form}")
            if len({tuple(v.shape[1:]) for v in video}) != 1:
                raise ValueError(f"all videos of a list must have the same (3, H, W), got "
                                 f"{[tuple(v.shape[1:]) for v in video]}")
            for i, v in enumerate(video):
                self._check_tensor(v, f"video[{i}]")
            lengths = [int(v.shape[0]) for v in video]
            frames = torch.cat(list(video), 0)
        elif isinstance(video, torch.Tensor):
            self._check_tensor(video, "video")
            if video.dim() == 5:
                if frame_offsets is not None:
                    raise ValueError("frame_offsets is only for a frames tensor (ΣN_i, 3, H, W), not (B, N, 3, H, W)")
                b, n, c = video.shape[:3]
                if c != 3 or b < 1 or n < 1:
                    raise ValueError(f"video must be {form}; got {tuple(video.shape)}")
                lengths = [n] * b
                frames = video.reshape(b * n, *video.shape[2:])
            elif video.dim() == 4:
                if video.shape[1] != 3:
                    raise ValueError(f"a rank-4 video must be frames (ΣN_i, 3, H, W) with frame_offsets; got "
                                     f"{tuple(video.shape)}")
                if frame_offsets is None:
                    raise ValueError(f"frames (ΣN_i, 3, H, W) need frame_offsets (B+1,); expected {form}")
                frames = video
                lengths = None
                if isinstance(frame_offsets, (list, tuple)) or (isinstance(frame_offsets, torch.Tensor)
                                                                and frame_offsets.device.type == "cpu"):
                    offs = [int(x) for x in (frame_offsets.tolist() if isinstance(frame_offsets, torch.Tensor)
                                             else frame_offsets)]
                    if len(offs) < 2 or offs[0] != 0 or offs[-1] != frames.shape[0] \
                            or any(b2 - a2 < 1 for a2, b2 in zip(offs, offs[1:])):
                        raise ValueError(f"frame_offsets must be (B+1,) integers starting at 0, ending at ΣN_i="
                                         f"{frames.shape[0]} and increasing strictly; got {offs}")
                    lengths = [b2 - a2 for a2, b2 in zip(offs, offs[1:])]
                elif not (isinstance(frame_offsets, torch.Tensor) and frame_offsets.dim() == 1
                          and frame_offsets.numel() >= 2 and not frame_offsets.is_floating_point()):
                    raise ValueError("frame_offsets must be a list or an integer tensor of shape (B+1,)")
            else:
                raise ValueError(f"video must be {form}; got shape {tuple(video.shape)}")
        else:
            raise TypeError(f"video must be a torch.Tensor or a list of tensors: {form}; got {type(video).__name__}")
        if lengths is None:  # device offsets: frames used as given; only the shapes are checked (no device sync)
            if frames.shape[0] < frame_offsets.numel() - 1:
                raise ValueError(f"frames has {frames.shape[0]} rows for {frame_offsets.numel() - 1} videos in "
                                 f"frame_offsets (B+1,); every video needs at least one frame")
            return frames.contiguous(), frame_offsets.to(frames.device, torch.int64)
        dev = frames.device
        if len(set(lengths)) == 1:  # uniform batch: index and offset tensors made on the device (graph-capturable)
            n, b = lengths[0], len(lengths)
            stride, count = frame_schedule(n, self.max_frames)
            if stride != 1 or count != n:
                idx = (torch.arange(b, device=dev) * n).unsqueeze(1) + torch.arange(count, device=dev) * stride
                frames = frames.index_select(0, idx.reshape(-1))
            return frames.contiguous(), torch.arange(b + 1, device=dev, dtype=torch.int64) * count
        starts, keep, offs = 0, [], [0]
        resampled = False
        for n in lengths:
            stride, count = frame_schedule(n, self.max_frames)
            resampled |= stride != 1 or count != n
            keep.append(torch.arange(count) * stride + starts)
            starts += n
            offs.append(offs[-1] + count)
        if resampled:
            frames = frames.index_select(0, torch.cat(keep).to(frames.device))
        return frames.contiguous(), torch.tensor(offs, dtype=torch.int64, device=frames.device)

    # ---------------------------------------------------------------------------------------------- forward
    def cluster(self, feats: torch.Tensor, frame_offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                    torch.Tensor]:
        """Layer1 outputs ``(ΣN_i, C, h, w)`` → cluster means ``(B·K, C, h, w)``, offsets ``(B, K+1)`` and M ``(B,)``.
        On the device, no host sync (bits, distances and cuts on detached data; means tracked by autograd)."""
        h = adjacent_hamming(binarize_pack(feats))
        offsets, m = segment_boundaries(h, self.clusters, self.rule, frame_offsets,
                                        num_bits=feats[0].numel(), degenerate=self.degenerate)
        return segment_mean(feats, offsets, m, frame_offsets), offsets, m

    def head(self, z: torch.Tensor, batch: int) -> torch.Tensor:
        """Cluster means ``(B·K, C, h, w)`` → logits ``(B, classes)`` (layers 2–4, new_fc, mean over K)."""
        per = self.new_fc(self.base_model.per_cluster(z))
        return per.view(batch, self.clusters, -1).mean(dim=1)

    def forward(self, video, masks=None, generator: torch.Generator | None = None, *,  # type: ignore[override]
                frame_offsets=None) -> FullVideoOutput:
        """``video`` as in the module docstring (``frame_offsets`` keyword-only); ``masks`` must be None or empty
        (no navigation), ``generator`` is unused (the forward is deterministic)."""
        if masks:
            raise ValueError("masks: this model has no navigation modules (num_navigation=0)")
        frames, offs = self.prepare(video, frame_offsets)
        batch = offs.shape[0] - 1
        feats = self.base_model.per_frame(frames)
        z, offsets, m = self.cluster(feats, offs)
        return FullVideoOutput(logits=self.head(z, batch), segments=offsets, num_segments=m, frame_offsets=offs)

    def forward_frames(self, frames: torch.Tensor, ctx) -> torch.Tensor:
        raise NotImplementedError("FullVideoTSM clusters whole videos: call model(video)")

    def forward_portable(self, clip: torch.Tensor) -> FullVideoOutput:
        """The exported computation (spec §11.3): ``clip (B, N, 3, H, W)`` with static N and K, ``rule="slope"``,
        every step in standard ONNX operators (:func:`portable_slope`; the frame-count policy as a static strided
        slice). Same logits as :meth:`forward` (to fp32 rounding) and the same ``segments``; the batch axis is
        never read, so it may be symbolic. Raises ValueError for the cumulative rules and for ragged input."""
        check_portable(self)
        if not isinstance(clip, torch.Tensor) or clip.dim() != 5:
            raise ValueError(_RAGGED_REFUSAL)
        self._check_tensor(clip, "clip")
        n = int(clip.shape[1])
        if clip.shape[0] < 1 or n < 1 or clip.shape[2] != 3:
            raise ValueError(f"clip must be (B, N, 3, H, W) with B ≥ 1 and N ≥ 1, got {tuple(clip.shape)}")
        stride, count = frame_schedule(n, self.max_frames)
        if stride != 1 or count != n:
            clip = clip[:, :(count - 1) * stride + 1:stride]
        feats = self.base_model.per_frame(clip.reshape(-1, *clip.shape[2:]))
        c, h, w = (int(v) for v in feats.shape[1:])
        z, offsets = portable_slope(feats.reshape(-1, count, c * h * w), self.clusters, self.degenerate)
        per = self.new_fc(self.base_model.per_cluster(z.reshape(-1, c, h, w)))
        logits = per.reshape(-1, self.clusters, per.shape[-1]).mean(dim=1)
        m = torch.full((offsets.shape[0],), min(count, self.clusters), dtype=torch.int64, device=offsets.device)
        return FullVideoOutput(logits=logits, segments=offsets, num_segments=m)

    def forward_plugin(self, video: torch.Tensor, frame_offsets: torch.Tensor | None, cluster) -> FullVideoOutput:
        """The ``plugin`` flavour's computation (spec §11.3): the clustering step is ``cluster(feats, K, rule,
        frame_offsets) -> (means, offsets)`` (one ``SegmentCluster`` node while exporting), the rest as
        :meth:`forward`. ``video``: ``clip (B, N, 3, H, W)`` (static N, frame-count policy as a static strided slice;
        ``frame_offsets`` must be None and become the constant ``arange(B+1)·N``) or ragged frames ``(ΣN_i, 3, H, W)``
        with ``frame_offsets (B+1,)`` int64 (frames used as given, as :meth:`prepare` does for device offsets).
        ``num_segments`` is not an output of the plugin: it is derived from the offsets (M = number of non-empty
        segments). Raises ValueError for ``cumulative_official`` and ``degenerate="even"`` (no kernel)."""
        check_plugin(self)
        if isinstance(video, torch.Tensor) and video.dim() == 5:
            if frame_offsets is not None:
                raise ValueError("frame_offsets is only for a frames tensor (ΣN_i, 3, H, W), not (B, N, 3, H, W)")
            self._check_tensor(video, "clip")
            b, n = int(video.shape[0]), int(video.shape[1])
            if b < 1 or n < 1 or video.shape[2] != 3:
                raise ValueError(f"clip must be (B, N, 3, H, W) with B ≥ 1 and N ≥ 1, got {tuple(video.shape)}")
            stride, count = frame_schedule(n, self.max_frames)
            if stride != 1 or count != n:
                video = video[:, :(count - 1) * stride + 1:stride]
            frames = video.reshape(-1, *video.shape[2:])
            offs = torch.arange(b + 1, device=frames.device, dtype=torch.int64) * count
        elif isinstance(video, torch.Tensor) and video.dim() == 4:
            self._check_tensor(video, "frames")
            if not isinstance(frame_offsets, torch.Tensor) or frame_offsets.dtype != torch.int64 \
                    or frame_offsets.dim() != 1 or frame_offsets.shape[0] < 2:
                raise ValueError("frames (ΣN_i, 3, H, W) need frame_offsets: an int64 tensor of shape (B+1,)")
            frames, offs = video, frame_offsets
        else:
            raise ValueError("the plugin flavour takes clip (B, N, 3, H, W), or frames (ΣN_i, 3, H, W) with "
                             "frame_offsets (B+1,) int64")
        feats = self.base_model.per_frame(frames)
        z, offsets = cluster(feats, self.clusters, self.rule, offs)
        per = self.new_fc(self.base_model.per_cluster(z))
        logits = per.reshape(-1, self.clusters, per.shape[-1]).mean(dim=1)
        m = ((offsets[:, 1:] - offsets[:, :-1]) > 0).sum(dim=1)
        return FullVideoOutput(logits=logits, segments=offsets, num_segments=m, frame_offsets=offs)

    def stream(self) -> "FullVideoStream":
        """A streaming session over one video (slope rule only; see :class:`FullVideoStream`)."""
        return FullVideoStream(self)


# ---------------------------------------------------------------------------------------------------- streaming
class FullVideoStream:
    """Exact streaming slope clustering of one long video (spec §11.5): memory O(K·D) whatever N is.

    ``push(frames (n, 3, H, W))`` any number of times, then ``finish()`` → :class:`FullVideoOutput` with the same
    logits and segments as ``model(all_frames[None])`` for ``rule="slope"`` (no frame-count policy is applied: every
    pushed frame is used). State: the packed bits of the previous frame, the kept boundaries (at most K−1, each with
    its (distance, position) key) and one fp32 running sum per open segment (at most K). A new boundary enters the
    kept set; when more than K−1 are kept, the smallest key (distance, then position: the later position wins ties,
    as offline) is evicted and the sums of its two neighbouring segments are merged — an evicted boundary is smaller
    than K−1 later-kept ones, so it can never be among the final K−1 (exactly offline). Runs in no-grad mode.
    """

    def __init__(self, model: FullVideoTSM):
        if model.rule != "slope":
            raise ValueError(f"streaming is exact for rule='slope' only; this model has rule={model.rule!r}")
        self.model = model
        self.k = model.clusters
        self.n = 0
        self.prev_bits: torch.Tensor | None = None
        self.cuts: list[tuple[int, int]] = []      # kept boundaries (h, position), ordered by position
        self.sums: list[torch.Tensor] = []          # one fp32 sum per segment between kept cuts (len(cuts) + 1)
        self.sizes: list[int] = []
        self.finished = False

    @torch.no_grad()
    def push(self, frames: torch.Tensor) -> "FullVideoStream":
        """Process a chunk ``(n, 3, H, W)`` of the video (in temporal order)."""
        if self.finished:
            raise RuntimeError("stream already finished")
        if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must have shape (n, 3, H, W), got "
                             f"{tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__}")
        self.model._check_tensor(frames, "frames")
        if frames.shape[0] == 0:
            return self
        feats = self.model.base_model.per_frame(frames)
        bits = binarize_pack(feats)
        if self.prev_bits is not None:
            bits_all = torch.cat([self.prev_bits, bits])
        else:
            bits_all = bits
        hs = adjacent_hamming(bits_all).tolist() if bits_all.shape[0] > 1 else []
        first = 0
        if self.prev_bits is None:
            self.sums.append(feats[0].float().clone())
            self.sizes.append(1)
            first = 1
        for i in range(first, feats.shape[0]):
            pos = self.n + i - 1                        # boundary between frame pos and pos+1
            self.cuts.append((hs[i - first], pos))
            self.sums.append(feats[i].float().clone())
            self.sizes.append(1)
            if len(self.cuts) > self.k - 1:
                j = min(range(len(self.cuts)), key=lambda q: self.cuts[q])
                del self.cuts[j]
                self.sums[j] = self.sums[j] + self.sums[j + 1]
                self.sizes[j] += self.sizes[j + 1]
                del self.sums[j + 1], self.sizes[j + 1]
        self.n += feats.shape[0]
        self.prev_bits = bits[-1:].clone()
        return self

    @torch.no_grad()
    def finish(self) -> FullVideoOutput:
        """Logits ``(1, classes)`` and segments of the whole pushed video."""
        if self.n == 0:
            raise ValueError("no frames were pushed")
        self.finished = True
        k = self.k
        means = [s / c for s, c in zip(self.sums, self.sizes)]
        m = len(means)
        means += [means[-1]] * (k - m)
        dt = next(self.model.parameters()).dtype
        z = torch.stack(means).to(dt)
        bounds = [0] + [p + 1 for _, p in self.cuts] + [self.n] * (k - m + 1)
        dev = z.device
        return FullVideoOutput(logits=self.model.head(z, 1), segments=torch.tensor([bounds], device=dev),
                               num_segments=torch.tensor([m], device=dev),
                               frame_offsets=torch.tensor([0, self.n], device=dev))

    def state_bytes(self) -> int:
        """Bytes held by the stream's state (running sums + previous bits)."""
        b = sum(s.numel() * s.element_size() for s in self.sums)
        return b + (self.prev_bits.numel() * 4 if self.prev_bits is not None else 0)


# ------------------------------------------------------------------------------------- official checkpoint keys
def _layer_of(key: str) -> str | None:
    for part in key.split("."):
        if part.startswith("layer") and part[5:].isdigit():
            return part
    return None


def checkpoint_filter_fn(state_dict: StateDict, model: nn.Module) -> MappedCheckpoint:
    """Release training checkpoints, stock TSM checkpoints and ImageNet ResNet files onto :class:`FullVideoTSM`
    (spec §10). Our keys are the release's: layers 2–4 ``conv1.net.*`` (shift wrapper), layer1 ``conv1.*``.

    * release layout (``base_model.layer1.*.conv1.weight``, layers 2–4 ``conv1.net.weight``): loaded as is;
    * stock TSM (``conv1.net.`` in layer1 too): layer1's ``conv1.net.`` → ``conv1.``;
    * ImageNet backbone (torchvision keys): layers 2–4 ``conv1.`` → ``conv1.net.``, into ``base_model``, ``fc.*``
      dropped.
    Anything else (e.g. an unshifted TSN checkpoint: layers 2–4 without ``.net``) fails strictly in the driver.
    """
    sd = dict(state_dict)
    if is_video_layout(sd):
        kind = "official_tsm" if any(_layer_of(k) == "layer1" and ".conv1.net." in k for k in sd) \
            else "official_fullvideo"
        sd = {(k.replace(".conv1.net.", ".conv1.") if _layer_of(k) == "layer1" else k): v for k, v in sd.items()}
        return MappedCheckpoint(kind, sd)
    if any(".conv1.net." in k for k in sd):
        raise ValueError("has TSM wrapper keys (conv1.net.) but no base_model.* keys; expected a release/TSM video "
                         "checkpoint (module.base_model.*) or a torchvision ImageNet ResNet file")
    sd = {(k.replace(".conv1.", ".conv1.net.") if _layer_of(k) in ("layer2", "layer3", "layer4") else k): v
          for k, v in sd.items()}
    return map_tsn_checkpoint(sd, model)


def checkpoint_info(state_dict: StateDict) -> dict:
    """Recognise the release's layout (layer1 unshifted, layers 2–4 shift-wrapped): kind and classes; ``{}``
    otherwise (stock TSM and ImageNet files are described by the dense family)."""
    keys = list(state_dict)
    l1_plain = any(k.startswith(BACKBONE + ".layer1.") and ".conv1.weight" in k for k in keys)
    l2_net = any(k.startswith(BACKBONE + ".layer2.") and ".conv1.net.weight" in k for k in keys)
    if not (l1_plain and l2_net):
        return {}
    w = state_dict.get("new_fc.weight")
    # marker: only this release has layer1 unshifted and layers 2-4 shift-wrapped (a TSN file has no .net keys)
    return {"kind": "official_fullvideo", "num_classes": int(w.shape[0]) if w is not None else None,
            "num_frames": None, "marker": True}


# ------------------------------------------------------------------------------------------------------- FLOPs
def _block_flops(walk: FlopsWalk, blk: BasicBlock | Bottleneck, s):
    if blk.downsample is not None:
        walk.sequential_convs(blk.downsample, s)
    for conv in blk.convs():
        s = walk.conv(conv, s)
    return s


def _per_cluster(walk: FlopsWalk, since_official: int, since_executed: int, k: int) -> None:
    """Turn the per-frame terms added since the given indices into per-clip terms × K (they run on K clusters)."""
    for lst, i0 in ((walk.official, since_official), (walk.executed, since_executed)):
        for i in range(i0, len(lst)):
            t = lst[i]
            lst[i] = Term(t.stage, t.name, t.value * k, t.nav, per="clip")


def flops_walk(walk: FlopsWalk, model: FullVideoTSM, size: int, head: str) -> None:
    """Spec §2.1/§7: stem + layer1 per frame (× N = ``num_frames``), layers 2–4 + ``new_fc`` per cluster (× K);
    conv and fc MACs only (no pooling, BN or clustering terms; the clustering is O(N·D) bit ops and adds)."""
    bm = model.base_model
    walk.stage = "stem"
    s = walk.conv(bm.conv1, (3, size, size))
    s = (s[0],) + pool_out(bm.maxpool, s[1], s[2])
    walk.stage = "layer1"
    for blk in bm.layer1:
        s = _block_flops(walk, blk, s)  # type: ignore[arg-type]
    i_off, i_ex = len(walk.official), len(walk.executed)
    for i, stage in ((2, bm.layer2), (3, bm.layer3), (4, bm.layer4)):
        walk.stage = f"layer{i}"
        for blk in stage:
            s = _block_flops(walk, blk, s)  # type: ignore[arg-type]
    walk.stage = "head"
    walk.linear(model.new_fc)
    if head == "imagenet":
        walk.off("base_model.fc", s[0] * 1000)
    else:
        walk.off("new_fc", model.new_fc.in_features * model.new_fc.out_features)
    _per_cluster(walk, i_off, i_ex, model.clusters)


def export_metadata(model: nn.Module) -> dict:
    return {"num_navigation": 0, "tsm": True, "clusters": model.clusters, "rule": model.rule,
            "max_frames": "" if model.max_frames is None else model.max_frames, "degenerate": model.degenerate}


_PLUGIN_NOTE = ("the cumulative rule and ragged batches export in the plugin flavour (--flavour plugin: one "
                "SegmentCluster TensorRT plugin node, rules slope/cumulative/even); the portable graph covers "
                "rule='slope' with static N and K (spec §11.3)")
_RAGGED_REFUSAL = ("ragged input (a list of videos or frames with frame_offsets) cannot be exported in the portable "
                   "flavour: the portable graph takes clip (B, N, 3, H, W) with static N; " + _PLUGIN_NOTE)


def check_portable(model: FullVideoTSM) -> None:
    """Raise ValueError naming the option when ``model`` has no portable export (the cumulative rules)."""
    if model.rule != "slope":
        hint = ("--flavour plugin (the SegmentCluster plugin)" if model.rule == "cumulative" else
                "neither flavour has it: cumulative_official has no kernel; use --rule cumulative (the repaired rule)")
        raise ValueError(f"rule={model.rule!r} (--rule) cannot be exported portably: the cumulative rules are a "
                         f"sequential scan (ONNX Loop/Scan); export with --rule slope, or {hint}")


def check_plugin(model: FullVideoTSM) -> None:
    """Raise ValueError naming the option when ``model`` has no plugin-flavour export: the SegmentCluster kernels
    implement the rules slope, cumulative (and even), without ``degenerate="even"``."""
    if model.rule == "cumulative_official":
        raise ValueError("rule='cumulative_official' (--rule) cannot be exported: the SegmentCluster plugin has no "
                         "kernel for the release's float64 rule (its dropped final band is a bug the spec documents); "
                         "export --rule cumulative (the repaired rule) or --rule slope")
    if model.degenerate != "none":
        raise ValueError(f"degenerate={model.degenerate!r} cannot be exported: the SegmentCluster kernels implement "
                         f"degenerate='none' only")


class ExportForward(nn.Module):
    """What ``afnet-edge export`` traces for a full-video model: ``clip (B, N, 3, H, W)`` → ``logits (B, classes)``
    (``segments=True``: also ``segments (B, K+1)`` int64). The flavour is the clustering step installed when the
    wrapper is made (:func:`afnet_edge.kernels.fullvideo_ops.use_cluster`, set by the exporter's flavour scope):
    none — ``portable``: traced, :meth:`FullVideoTSM.forward_portable` (standard operators, slope rule only);
    installed — ``plugin``: traced, :meth:`FullVideoTSM.forward_plugin` (one ``SegmentCluster`` node; also ragged
    ``forward(frames, frame_offsets)``). Called eagerly it runs the model's own forward (the device clustering ops)
    in both flavours, which is therefore the reference every export is verified against."""

    def __init__(self, model: nn.Module, segments: bool = False):
        super().__init__()
        if not isinstance(model, FullVideoTSM):
            raise ValueError(f"{getattr(model, 'arch', type(model).__name__)} is not a full-video model")
        self.cluster = cluster_impl()
        if self.cluster is None:
            check_portable(model)
        else:
            check_plugin(model)
        self.model = model
        self.segments = bool(segments)
        self.train(model.training)     # exporters restore the wrapper's mode afterwards: keep the model's

    def forward(self, clip: torch.Tensor, frame_offsets: torch.Tensor | None = None):
        ragged = frame_offsets is not None or not isinstance(clip, torch.Tensor) or clip.dim() != 5
        if ragged and self.cluster is None:
            raise ValueError(_RAGGED_REFUSAL)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            out = (self.model.forward_portable(clip) if self.cluster is None
                   else self.model.forward_plugin(clip, frame_offsets, self.cluster))
        else:
            out = self.model(clip, frame_offsets=frame_offsets)
        return (out.logits, out.segments) if self.segments else out.logits


# ------------------------------------------------------------------------------------------------- registration
def flops_note(model: FullVideoTSM) -> str:
    """The cost line of ``afnet-edge flops``: stem + layer1 on every frame, layers 2-4 on the K clusters."""
    return (f"stem + layer1 on all {model.num_frames} frames, layers 2-4 on {model.clusters} cluster "
            f"representations")


HOOKS = FamilyHooks(
    family="fullvideo",
    checkpoint_filter=checkpoint_filter_fn,
    checkpoint_info=checkpoint_info,
    flops_note=flops_note,
    cli_options=(CliOption("--clusters", "clusters", "positive_int", "full-video: K cluster representations"),
                 CliOption("--rule", "rule", "str", "full-video: clustering rule", choices=MODEL_RULES),
                 CliOption("--max-frames", "max_frames", "positive_int",
                           "full-video: every frame up to this count, the release's stride schedule beyond"),
                 WIDTH_OPTION),
    flops_walk=flops_walk,
    export=ExportAdapter(metadata=export_metadata, wrapper=ExportForward, selects_frames=False,
                         flavours=("portable", "plugin"),
                         fp16_reason="the portable graph counts Hamming distances in floating point, exact in fp32 "
                                     "(D < 2^24 bits) but not in fp16 (over 2048 bits a count is rounded, over "
                                     "65504 it overflows), and the slope rule's ties would change"),
)


def fullvideo_widths(width: float) -> tuple[int, int, int, int]:
    """Stage widths ``(64, 128, 256, 512)·width`` (``width`` 1.0 = torchvision's); each must be a whole number of
    channels (``width`` a multiple of 1/64, e.g. 0.25 → 16, 32, 64, 128)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width: expected a positive channel multiplier (1.0 = torchvision's ResNet), got {width!r}")
    c = 64 * float(width)
    if c != int(c):
        raise ValueError(f"width: {width} gives {c:g} stem channels; expected a multiple of 1/64 (e.g. 1.0, 0.5, "
                         f"0.25)")
    return int(c), 2 * int(c), 4 * int(c), 8 * int(c)


def _make(arch, block, layers, num_classes, num_frames, clusters, rule, max_frames, dropout, degenerate,
          release_shift_quirk, width=1.0):
    return FullVideoTSM(arch, block, layers, num_classes, num_frames, clusters, rule, max_frames, dropout,
                        degenerate, release_shift_quirk, width)


@register_model("fullvideo_tsm_r50", HOOKS, default_frames=32, official_arch="resnet50",
                bench=BenchDefaults(skips_frames=False, frames=(32,), label="FullVideo-TSM-R50",
                                   operating_point=OperatingPoint(32, options=(("clusters", 8),),
                                                                  source="spec §7: N = 32 -> K = 8")))
def fullvideo_tsm_r50(num_classes: int = 174, num_frames: int = 32, clusters: int = 8, rule: str = "cumulative",
                      max_frames: int | None = 1024, dropout: float = 0.5, degenerate: str = "none",
                      release_shift_quirk: bool = False, width: float = 1.0) -> FullVideoTSM:
    """Full-video TSM-ResNet50: all frames to layer1, Hamming clustering to K, layers 2-4 on K."""
    return _make("fullvideo_tsm_r50", Bottleneck, (3, 4, 6, 3), num_classes, num_frames, clusters, rule,
                 max_frames, dropout, degenerate, release_shift_quirk, width)


@register_model("fullvideo_tsm_r18", HOOKS, default_frames=32, official_arch="resnet18",
                bench=BenchDefaults(skips_frames=False, frames=(32,), label="FullVideo-TSM-R18"))
def fullvideo_tsm_r18(num_classes: int = 174, num_frames: int = 32, clusters: int = 16, rule: str = "slope",
                      max_frames: int | None = 1024, dropout: float = 0.8, degenerate: str = "none",
                      release_shift_quirk: bool = False, width: float = 1.0) -> FullVideoTSM:
    """Full-video TSM-ResNet18 (the release's Move4MNIST script: slope rule, 32 -> 16); ``width`` < 1 scales every
    channel count (the CPU Move4MNIST experiment uses 0.25)."""
    return _make("fullvideo_tsm_r18", BasicBlock, (2, 2, 2, 2), num_classes, num_frames, clusters, rule,
                 max_frames, dropout, degenerate, release_shift_quirk, width)
