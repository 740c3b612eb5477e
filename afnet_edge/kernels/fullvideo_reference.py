"""Pure-PyTorch reference of the full-video clustering ops ("No frame left behind", CVPR 2021).

Semantics: ``shared/spec/full-video-clustering.md`` §3 (bits, Hamming distances), §4 (rules, tie-breaking, padding,
degenerate inputs), §4.6 (ragged batches), §11.2 (the future kernels: the functions here carry their names and
signatures so that the CUDA/CPU twins can be tested against them).

Everything runs on the input's device without a host synchronisation: no ``.item()``, ``.cpu()``, ``nonzero`` or
data-dependent shapes — every output shape depends only on (N_total, B, K, D). That is what lets the forward be
captured in one CUDA graph for fixed N.

Ragged layout (CSR, §4.6): the frames of B videos are rows of one ``(N_total, ...)`` tensor; ``frame_offsets``
``(B+1,)`` int64 holds the first row of every video and N_total at the end (video b = rows
``frame_offsets[b] : frame_offsets[b+1]``, at least one frame each).

Segment representation (all rules): per video ``offsets (K+1,)`` (frame indices local to the video) and the number of
*emitted* segments ``M`` (1 ≤ M ≤ K). Segment j < M is frames ``offsets[j] : offsets[j+1]`` (non-empty, contiguous,
temporally ordered); segments j ≥ M repeat segment M−1 (the release's padding); ``offsets[j] = offsets[M]`` for
j > M. Frames ``offsets[M] : N`` belong to no segment — always none, except for ``cumulative_official`` which drops the
final open band as the release does (§4.2). ``segment_mean`` turns this into K means per video.
"""
from __future__ import annotations

import torch

from ._common import tracing

__all__ = ["RULES", "binarize_pack", "popcount32", "adjacent_hamming", "segment_boundaries", "even_offsets",
           "segment_mean", "video_index"]

RULES = ("slope", "cumulative", "cumulative_official", "even")
WORD = 32


# ------------------------------------------------------------------------------------------------------ bits
def binarize_pack(y: torch.Tensor) -> torch.Tensor:
    """Bit-pack the sign pattern of every frame (spec §3, kernel ``binarize_pack``).

    Args:
        y: ``(N, ...)`` float activations (one frame per row; the trailing dims are flattened to D elements in
            memory order — any fixed order gives the same Hamming distances, §3).

    Returns ``(N, ⌈D/32⌉)`` int32 words holding the uint32 bit patterns: bit i of word w is ``y[n].flatten()[32·w+i]
    > 0`` (LSB first); the padding bits of the last word are 0. No gradient (the assignment is computed on detached
    data, §4.5).
    """
    if not isinstance(y, torch.Tensor) or not y.is_floating_point() or y.dim() < 1:
        raise TypeError("binarize_pack: y must be a floating-point tensor of shape (N, ...), got "
                        f"{type(y).__name__ if not isinstance(y, torch.Tensor) else (y.dtype, tuple(y.shape))}")
    n = y.shape[0]
    b = (y.detach().reshape(n, -1) > 0)
    d = b.shape[1]
    words = (d + WORD - 1) // WORD
    if words * WORD != d:
        b = torch.cat([b, b.new_zeros(n, words * WORD - d)], dim=1)
    shifts = torch.arange(WORD, device=y.device, dtype=torch.int32)
    # Distinct powers of two: the int32 sum wraps modulo 2^32 exactly like an OR of the bits.
    return (b.view(n, words, WORD).to(torch.int32) << shifts).sum(dim=2, dtype=torch.int32)


def popcount32(x: torch.Tensor) -> torch.Tensor:
    """Number of set bits of every 32-bit word of an int32 tensor (as the uint32 pattern); int64 result."""
    v = x.to(torch.int64) & 0xFFFFFFFF                       # non-negative: every shift below is logical
    v = v - ((v >> 1) & 0x55555555)
    v = (v & 0x33333333) + ((v >> 2) & 0x33333333)
    v = (v + (v >> 4)) & 0x0F0F0F0F
    return ((v * 0x01010101) & 0xFFFFFFFF) >> 24


def adjacent_hamming(bits: torch.Tensor) -> torch.Tensor:
    """Hamming distances of neighbouring rows (spec §3, kernel ``adjacent_hamming``): XOR + popcount, exact.

    Args:
        bits: ``(N, W)`` int32 words from :func:`binarize_pack`.

    Returns ``h (N−1,)`` int32 with ``h[t] = popcount(bits[t] XOR bits[t+1])``. In a ragged batch the pairs that
    straddle two videos (t = frame_offsets[b+1]−1) are computed too and ignored by :func:`segment_boundaries`.
    """
    if not isinstance(bits, torch.Tensor) or bits.dtype != torch.int32 or bits.dim() != 2:
        raise TypeError("adjacent_hamming: bits must be an int32 tensor of shape (N, W) (from binarize_pack), got "
                        f"{type(bits).__name__ if not isinstance(bits, torch.Tensor) else (bits.dtype, tuple(bits.shape))}")
    if bits.shape[0] < 2:
        return bits.new_zeros(0)
    x = torch.bitwise_xor(bits[1:], bits[:-1])
    return popcount32(x).sum(dim=1).to(torch.int32)


# -------------------------------------------------------------------------------------------------- boundaries
def _check_offsets(frame_offsets: torch.Tensor | None, n_total: int, device: torch.device) -> torch.Tensor:
    if frame_offsets is None:
        return torch.tensor([0, n_total], dtype=torch.int64, device=device)
    if not isinstance(frame_offsets, torch.Tensor) or frame_offsets.dim() != 1 or frame_offsets.numel() < 2 \
            or frame_offsets.dtype not in (torch.int32, torch.int64):
        raise ValueError("frame_offsets must be an integer tensor of shape (B+1,) with 0 first, N_total last and at "
                         "least one frame per video")
    o = frame_offsets.to(device=device, dtype=torch.int64)
    if o.device.type == "cpu" and not tracing(o):  # values are checked where that costs no device sync
        lens = o[1:] - o[:-1]
        if int(o[0]) != 0 or int(o[-1]) != n_total or bool((lens < 1).any()):
            raise ValueError(f"frame_offsets must start at 0, end at N_total={n_total} and increase strictly (at "
                             f"least one frame per video), got {o.tolist()}")
    return o


def video_index(frame_offsets: torch.Tensor, n_total: int) -> torch.Tensor:
    """``(N_total,)`` int64: the video of every row of a ragged batch (no host sync)."""
    rows = torch.arange(n_total, device=frame_offsets.device, dtype=torch.int64)
    return torch.searchsorted(frame_offsets[1:].contiguous(), rows, right=True)


def even_offsets(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """Even segments (spec §4.4, our definition): ``(B, K+1)`` offsets, sizes ⌈N/K⌉ for the first N mod K segments
    and ⌊N/K⌋ for the rest; for N < K the first N segments are single frames (the rest empty)."""
    j = torch.arange(k + 1, device=lengths.device, dtype=torch.int64)
    q, r = (lengths // k).unsqueeze(1), (lengths % k).unsqueeze(1)
    return j * q + torch.minimum(j, r)


def _offsets_from_starts(start: torch.Tensor, vid: torch.Tensor, local: torch.Tensor, o: torch.Tensor,
                         lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment offsets (B, K+1) from per-frame start flags (1 at the first frame of every segment, at most K+1 per
    video; the segment after the K-th is only possible as the dropped open band) and the number of starts (B,)."""
    b = lengths.shape[0]
    cs = torch.cumsum(start.to(torch.int64), 0)
    seg = cs - cs[o[:-1]][vid]                                     # 0 for the first segment of every video
    slot = torch.where(start.bool(), vid * (k + 1) + seg.clamp(max=k), torch.full_like(seg, b * (k + 1)))
    flat = torch.cat([lengths.unsqueeze(1).expand(b, k + 1).reshape(-1), lengths.new_zeros(1)])
    flat = flat.scatter_reduce(0, slot, local, reduce="amin")
    count = torch.zeros(b, dtype=torch.int64, device=start.device).index_add_(0, vid, start.to(torch.int64))
    return flat[:-1].view(b, k + 1), count


def _pad_after(offsets: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """offsets[j] := offsets[m] for j > m (padded segments are empty in the representation)."""
    j = torch.arange(offsets.shape[1], device=offsets.device)
    at_m = offsets.gather(1, m.unsqueeze(1))
    return torch.where(j.unsqueeze(0) > m.unsqueeze(1), at_m, offsets)


def _cummin_per_video(val: torch.Tensor, vid: torch.Tensor, big: int) -> torch.Tensor:
    """Inclusive running minimum restarted at every video (values must lie in (−big/2, big/2))."""
    return torch.cummin(val - vid * big, 0).values + vid * big


def _scan_counts(g: torch.Tensor, vid: torch.Tensor, local: torch.Tensor, big: int) -> torch.Tensor:
    """The sequential cumulative scan of spec §4.2, vectorised.

    The scan keeps a counter c (1 at frame 0) and starts a new segment at frame k ≥ 1 iff ``g_k > c``, then c += 1,
    where ``g_k`` (≥ 1, non-decreasing in k) is the smallest band number whose upper edge is ≥ the running sum at
    k. Because g is non-decreasing and c can only grow by one per frame, ``c_{k+1} = min(c_k + 1, g_k)`` with
    ``c_1 = g_0 = 1``, i.e. ``c_k = min_{j<k}(g_j − j) + k − 1``: a running minimum instead of a loop.
    Returns the start flags (int64, 1 at local frame 0 too).
    """
    cm = _cummin_per_video(g - local, vid, big)
    prev = torch.cat([cm.new_zeros(1), cm[:-1]])                 # min over j ≤ k−1 (same video when local ≥ 1)
    c = prev + local - 1
    return torch.where(local == 0, torch.ones_like(g), (g > c).to(torch.int64))


def segment_boundaries(h: torch.Tensor, k: int, rule: str, frame_offsets: torch.Tensor | None = None,
                       num_bits: int | None = None, degenerate: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """Cut every video into K contiguous segments (spec §4, kernel ``segment_boundaries``). No host sync.

    Args:
        h: ``(N_total−1,)`` int32 neighbour Hamming distances from :func:`adjacent_hamming` (pairs across videos
            are ignored).
        k: number of clusters K ≥ 1.
        rule: ``"slope"`` — cut after the K−1 largest distances, ties broken towards the **later** position (order
            by (h_t, t) descending, §4.1); ``"cumulative"`` — the repaired sequential rule in exact integers: frame
            k ≥ 1 starts a segment iff ``K·H_k > c·H`` (H_k = h_0+…+h_{k−1}, H = H_{N−1}), then c += 1; the last
            segment is emitted; H = 0 falls back to even segments (§4.2, §4.4); ``"cumulative_official"`` — the
            release's rule bit for bit: float64 normalised distances d_t = h_t / D, sequential running sums, θ = S/K,
            ``s_k ≤ c·θ`` joins, the final open segment is **dropped**, S = 0 gives the first K frames as single
            segments (§4.2). Bit for bit on CPU, where torch's cumsum adds left to right as the release does; on
            CUDA torch's float64 cumsum is a parallel scan that may round a running sum differently (the future
            ``segment_boundaries`` kernel scans sequentially in one warp); ``"even"`` — even segments (§4.4).
        frame_offsets: ``(B+1,)`` int CSR offsets of a ragged batch (default: one video of N_total frames).
        num_bits: D, the number of binarised elements per frame; required by ``cumulative_official``.
        degenerate: ``"none"`` (default, the release's behaviour) or ``"even"`` — slope switches to even segments
            for a video whose distances are all equal (§4.4).

    Degenerate inputs (documented deviations from the release, §4.1(4)): a video with N < K frames gets one segment
    per frame (M = N, the last one repeated); ``cumulative_official`` with no emitted segment (only K = 1) uses one
    segment of all frames.

    Returns ``(offsets (B, K+1) int64, num_segments (B,) int64)``: local frame indices, see the module docstring.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (clusters) must be a positive integer, got {k!r}")
    if degenerate not in ("none", "even"):
        raise ValueError(f"degenerate must be 'none' or 'even', got {degenerate!r}")
    if not isinstance(h, torch.Tensor) or h.dim() != 1 or h.dtype not in (torch.int32, torch.int64):
        raise TypeError("segment_boundaries: h must be an integer tensor of shape (N_total-1,) (adjacent_hamming)")
    dev = h.device
    n_total = h.shape[0] + 1
    o = _check_offsets(frame_offsets, n_total, dev)
    lengths = o[1:] - o[:-1]
    vid = video_index(o, n_total)
    local = torch.arange(n_total, device=dev, dtype=torch.int64) - o[:-1][vid]
    nb = lengths[vid]
    hp = torch.cat([h.to(torch.int64), h.new_zeros(1, dtype=torch.int64)])  # pair t = frames (t, t+1)
    valid_pair = local < nb - 1
    hp = torch.where(valid_pair, hp, torch.zeros_like(hp))
    small = lengths < k                                      # N < K: one segment per frame, padded (§4.1(4))
    singles = torch.minimum(torch.arange(k + 1, device=dev, dtype=torch.int64).unsqueeze(0), lengths.unsqueeze(1))

    if rule == "even":
        offsets, m = even_offsets(lengths, k), torch.minimum(lengths, torch.full_like(lengths, k))
        return offsets, m

    if rule == "slope":
        # Keys unique per video: h·N_total + t; sort by (video asc, key desc); rank within the video.
        key = hp * n_total + local
        grp = torch.where(valid_pair, vid, torch.full_like(vid, lengths.shape[0]))
        # Order = video ascending, then larger keys first (two stable sorts, exact; invalid pairs last).
        order = torch.sort(key, descending=True, stable=True).indices
        order = order[torch.sort(grp[order], stable=True).indices]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n_total, device=dev, dtype=torch.int64)
        rank = rank - (o[:-1] - torch.arange(lengths.shape[0], device=dev))[vid]  # pairs before video b: o_b − b
        cut = valid_pair & (rank < k - 1)
        start = torch.cat([torch.ones(1, dtype=torch.int64, device=dev), cut[:-1].to(torch.int64)])
        start = torch.where(local == 0, torch.ones_like(start), start)
        offsets, m = _offsets_from_starts(start, vid, local, o, lengths, k)
        if degenerate == "even":
            big = torch.iinfo(torch.int64).max
            hmax = torch.full_like(lengths, -1).scatter_reduce(0, vid, torch.where(valid_pair, hp, -1), "amax")
            hmin = torch.full_like(lengths, big).scatter_reduce(0, vid, torch.where(valid_pair, hp, big), "amin")
            flat = (hmax <= hmin) | (lengths < 3)
            offsets = torch.where(flat.unsqueeze(1), even_offsets(lengths, k), offsets)
            m = torch.where(flat, torch.minimum(lengths, torch.full_like(lengths, k)), m)
        offsets = torch.where(small.unsqueeze(1), singles, offsets)
        m = torch.where(small, lengths, m)
        return _pad_after(offsets, m), m

    # Cumulative rules: running sums per video (pair t contributes to frame t+1's running sum).
    big = 2 * (n_total + k + 2)
    if rule == "cumulative":
        inc = torch.cat([hp.new_zeros(1), hp[:-1]])          # H_k − H_{k−1} = h_{k−1} for local k ≥ 1
        inc = torch.where(local == 0, torch.zeros_like(inc), inc)
        cs = torch.cumsum(inc, 0)
        hk = cs - cs[o[:-1]][vid]                            # H_k (exact integers)
        tot = hk[o[1:] - 1]                                  # H per video
        tv = tot[vid]
        band = (k * hk + tv - 1) // tv.clamp(min=1)          # ⌈K·H_k / H⌉: K·H_k > c·H ⟺ band > c
        g = band.clamp(min=1)
        start = _scan_counts(g, vid, local, big)
        offsets, m = _offsets_from_starts(start, vid, local, o, lengths, k)
        zero = tot == 0
        offsets = torch.where(zero.unsqueeze(1), even_offsets(lengths, k), offsets)
        m = torch.where(zero, torch.minimum(lengths, torch.full_like(lengths, k)), m)
        offsets = torch.where(small.unsqueeze(1), singles, offsets)
        m = torch.where(small, lengths, m)
        return _pad_after(offsets, m), m

    # cumulative_official: float64, sequential sums per video (a padded (B, N_total) matrix keeps every row's
    # cumsum sequential and independent of the other videos; torch's CPU cumsum adds left to right).
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
        raise ValueError(f"num_bits (D, elements per frame) must be a positive integer for cumulative_official, "
                         f"got {num_bits!r}")
    b = lengths.shape[0]
    d = torch.where(valid_pair, hp.to(torch.float64) / float(num_bits), torch.zeros((), dtype=torch.float64,
                                                                                        device=dev))
    mat = torch.zeros(b, n_total + 1, dtype=torch.float64, device=dev)
    mat = mat.index_put((vid, local + 1), d)                 # the last frame's (invalid) pair writes 0 at column N_b
    srow = torch.cumsum(mat, 1)                              # s_k at column k (column 0 = 0)
    s = srow[vid, local]
    tot = srow[torch.arange(b, device=dev), lengths - 1]     # S
    theta = tot / k
    th = theta[vid]
    g = torch.ceil(s / torch.where(th > 0, th, torch.ones_like(th))).to(torch.int64)
    for _ in range(2):  # exact smallest c with s ≤ fl(c·θ) (the float multiply of the release)
        g = torch.where((g - 1).to(torch.float64) * th >= s, g - 1, g)
    for _ in range(2):
        g = torch.where(g.to(torch.float64) * th < s, g + 1, g)
    g = g.clamp(min=1, max=k + 2)
    start = _scan_counts(g, vid, local, big)
    offsets, starts = _offsets_from_starts(start, vid, local, o, lengths, k)
    m = (starts - 1).clamp(max=k)                            # the open segment is never emitted
    none = m == 0                                            # only K = 1: one segment of all frames (deviation)
    jj = torch.arange(k + 1, device=dev, dtype=torch.int64).unsqueeze(0)
    whole = torch.where(jj == 0, torch.zeros_like(jj), lengths.unsqueeze(1))
    offsets = torch.where(none.unsqueeze(1), whole, offsets)
    m = torch.where(none, torch.ones_like(m), m)
    zero = tot == 0                                          # the release returns the first K frames, unaveraged
    offsets = torch.where((zero | small).unsqueeze(1), singles, offsets)
    m = torch.where(zero | small, torch.minimum(lengths, torch.full_like(lengths, k)), m)
    return _pad_after(offsets, m), m


# --------------------------------------------------------------------------------------------------- aggregation
def segment_mean(a: torch.Tensor, offsets: torch.Tensor, num_segments: torch.Tensor,
                 frame_offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of every segment (spec §4.5, kernel ``segment_mean``), fp32 accumulation, autograd through ``a``.

    Args:
        a: ``(N_total, ...)`` activations (rows = frames of a ragged batch).
        offsets: ``(B, K+1)`` int64 local segment offsets and ``num_segments`` ``(B,)`` M from
            :func:`segment_boundaries`.
        frame_offsets: ``(B+1,)`` CSR offsets (default: one video).

    Returns ``(B·K, ...)`` in ``a``'s dtype: row b·K+j is the mean of segment min(j, M_b−1) of video b. The gradient
    of a frame is g_j/|S_j| summed over the outputs that use its segment; frames in no segment get zero.
    """
    if not isinstance(a, torch.Tensor) or not a.is_floating_point() or a.dim() < 1:
        raise TypeError("segment_mean: a must be a floating-point tensor of shape (N_total, ...)")
    if not isinstance(offsets, torch.Tensor) or offsets.dim() != 2 or offsets.shape[1] < 2:
        raise ValueError("segment_mean: offsets must have shape (B, K+1) (from segment_boundaries)")
    n_total = a.shape[0]
    dev = a.device
    o = _check_offsets(frame_offsets, n_total, dev)
    b, k = offsets.shape[0], offsets.shape[1] - 1
    if o.shape[0] != b + 1 or num_segments.shape != (b,):
        raise ValueError(f"segment_mean: offsets (B={b}, K+1), num_segments (B,) and frame_offsets (B+1,) disagree: "
                         f"{tuple(offsets.shape)}, {tuple(num_segments.shape)}, {tuple(o.shape)}")
    offsets = offsets.to(dev, torch.int64)
    m = num_segments.to(dev, torch.int64)
    vid = video_index(o, n_total)
    local = torch.arange(n_total, device=dev, dtype=torch.int64) - o[:-1][vid]
    # Segment of every frame: number of offsets[1..M] ≤ local; frames at or beyond offsets[M] go to a dummy row.
    seg = (offsets[vid, 1:] <= local.unsqueeze(1)).sum(1)
    inside = seg < m[vid]
    row = torch.where(inside, vid * k + seg, torch.full_like(seg, b * k))
    flat = a.reshape(n_total, -1)
    acc = torch.promote_types(a.dtype, torch.float32)        # fp32 accumulation (fp64 stays fp64)
    sums = torch.zeros(b * k + 1, flat.shape[1], dtype=acc, device=dev)
    sums = sums.index_add(0, row, flat.to(acc))
    sizes = (offsets[:, 1:] - offsets[:, :-1]).reshape(-1).clamp(min=1).to(acc)
    means = sums[:-1] / sizes.unsqueeze(1)
    j = torch.arange(k, device=dev, dtype=torch.int64)
    src = (torch.arange(b, device=dev).unsqueeze(1) * k + torch.minimum(j.unsqueeze(0), (m - 1).unsqueeze(1)))
    out = means.index_select(0, src.reshape(-1))
    return out.to(a.dtype).reshape((b * k,) + tuple(a.shape[1:]))
