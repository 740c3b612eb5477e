"""Pure-PyTorch reference of bLVNet-TAM's fused-op-shaped functions (``shared/spec/blvnet-tam.md`` §4, §8.2).

The three functions named like the future kernels of issue 13 — :func:`temporal_aggregate` (TAM),
:func:`temporal_aggregate_pair` (the stage TAMs on pair features, §4.3) and :func:`bl_merge` (big-little merge) —
define the semantics the CUDA kernels / CPU twins / TensorRT plugins will reproduce, and run the model's pair-aware
path today. Each is one depthwise temporal convolution (or one add) on a view of its input: no zero fill, no
index_put, no gather, no 5-D pad.

Next to them, the *official-semantics* pieces (:func:`tam_official`, :func:`duplicate_pairs`, :func:`pair_rows`)
reproduce the release's op sequence (per-tap depthwise 1×1 convs, pad/slice in time, stack, sum, ReLU; zero tensor
filled by two strided writes; branch selection by index lists). They serve the ``masked`` (official) execution and
the parity tests.

Layout: frames are rows of an ``(N, C, H, W)`` tensor, clip-major: ``N = B·T``, row ``n = b·T + t``. Pair k of a clip
is slots (2k, 2k+1): even slot → little branch, odd slot → big branch (spec §2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .reference import upsample_nearest

__all__ = ["temporal_aggregate", "temporal_conv", "temporal_aggregate_pair", "fold_pair_weights", "bl_merge",
           "tam_official", "duplicate_pairs", "pair_rows"]


def _check_frames(name: str, x: torch.Tensor, num_frames: int, what: str) -> tuple[int, int, int, int, int]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: x must be a 4-D tensor ({what}, C, H, W), got {shape}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"{name}: num_frames must be a positive int, got {num_frames!r}")
    n, c, h, w = x.shape
    if n % num_frames:
        raise ValueError(f"{name}: x has {n} rows, not a multiple of num_frames={num_frames} (expected {what} rows)")
    return n // num_frames, n, c, h, w


def _check_weight(name: str, arg: str, weight: torch.Tensor, channels: int) -> int:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] != channels \
            or weight.shape[0] % 2 == 0:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"{name}: {arg} must have shape (K, C) = (odd K, {channels}), got {shape}")
    return weight.shape[0]


# ------------------------------------------------------------------------------------------------- fused-op shaped
def temporal_aggregate(x: torch.Tensor, weight: torch.Tensor, num_frames: int, relu: bool = True) -> torch.Tensor:
    """TAM (spec §4.1): ``out_t = ReLU(Σ_i w_i ⊙ x_{t+i−r})``, zero padding in time at each clip's ends.

    Args:
        x: ``(B·T, C, H, W)`` frames, clip-major.
        weight: ``(K, C)`` tap weights, K odd, tap i at temporal offset ``i − K//2`` (fp32; cast to x's dtype).
        num_frames: T, frames per clip.
        relu: apply the TAM's ReLU (always True in the model; False exposes the linear part for tests).

    Returns ``(B·T, C, H, W)``. One depthwise temporal convolution (kernel (K, 1), groups C) on the
    ``(B, C, T, H·W)`` view.
    """
    b, n, c, h, w = _check_frames("temporal_aggregate", x, num_frames, "B·T")
    k = _check_weight("temporal_aggregate", "weight", weight, c)
    return temporal_conv(x, [weight.t().reshape(c, 1, k, 1).to(x.dtype)], num_frames, relu)[0]


def temporal_conv(x: torch.Tensor, kernels: list[torch.Tensor], num_frames: int,
                  relu: bool = True) -> list[torch.Tensor]:
    """Depthwise convolutions over time sharing one read of ``x``: the form of the TAM in an exported graph.

    Args:
        x: ``(B·T, C, H, W)`` frames, clip-major.
        kernels: depthwise kernels ``(C, 1, K, 1)`` (K odd, tap i at temporal offset ``i − K//2``), each giving one
            output; :meth:`afnet_edge.layers.blvnet.TAM.conv_kernels` makes them from the taps.
        num_frames: T, frames per clip (zero padding in time at each clip's ends).
        relu: apply the TAM's ReLU.

    Returns one ``(B·T, C, H, W)`` tensor per kernel. Every tensor is rank 4: the ``(B, C, T, H·W)`` view (one
    Reshape + Transpose, shared by the kernels), a Conv with kernel ``(K, 1)`` and ``groups=C``, and back. The batch
    axis is left to ``-1`` so that a traced graph keeps a symbolic batch.
    """
    _, c, h, w = x.shape
    v = x.reshape(-1, num_frames, c, h * w).transpose(1, 2)
    outs = []
    for kernel in kernels:
        out = F.conv2d(v, kernel, padding=(kernel.shape[2] // 2, 0), groups=c)
        if relu:
            out = torch.relu(out)
        outs.append(out.transpose(1, 2).reshape(-1, c, h, w))
    return outs


def fold_pair_weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold TAM taps ``(K, C)`` (offsets −r…r over slots) onto pair offsets (spec §4.3).

    When slots 2k and 2k+1 both hold pair feature y_k, the weight on y_{k+d} is the sum of the w_i whose source slot
    ``s + i − r`` lies in pair k+d: for the big (odd) slot ``d = ⌊(1 + i − r)/2⌋``, for the little (even) slot
    ``d = ⌊(i − r)/2⌋``. Returns ``(w_big, w_little)``, each ``(2R+1, C)`` over pair offsets −R…R with
    R = ⌈r/2⌉ (zero rows where no tap lands). For K = 3: ``w_big = (0, w_prev + w_curr, w_next)``,
    ``w_little = (w_prev, w_curr + w_next, 0)``. Differentiable in ``weight``.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[0] % 2 == 0:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"fold_pair_weights: weight must have shape (K, C) with K odd, got {shape}")
    k = weight.shape[0]
    r = k // 2
    big_r = (r + 1) // 2
    big: list[list[torch.Tensor]] = [[] for _ in range(2 * big_r + 1)]
    little: list[list[torch.Tensor]] = [[] for _ in range(2 * big_r + 1)]
    for i in range(k):
        big[(1 + i - r) // 2 + big_r].append(weight[i])
        little[(i - r) // 2 + big_r].append(weight[i])

    def rows(groups):
        return torch.stack([sum(g[1:], g[0]) if g else torch.zeros_like(weight[0]) for g in groups])
    return rows(big), rows(little)


def temporal_aggregate_pair(y: torch.Tensor, w_big: torch.Tensor, w_little: torch.Tensor, num_pairs: int,
                            relu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A stage TAM on pair features (spec §4.3): both branch inputs from one read of ``y``.

    Args:
        y: ``(B·P, C, H, W)`` pair features, clip-major (the official model holds each twice, in slots 2k, 2k+1).
        w_big, w_little: ``(K_p, C)`` folded weights over pair offsets −R…R (:func:`fold_pair_weights`).
        num_pairs: P, pairs per clip.

    Returns ``(big_in, little_in)``, each ``(B·P, C, H, W)``: the TAM outputs of the odd (big) and even (little)
    slots, ``ReLU(Σ_d w[d] ⊙ y_{k+d})`` with ``y`` zero outside the clip. One depthwise temporal convolution
    with two outputs per channel (out channel 2c → big, 2c+1 → little).
    """
    b, n, c, h, w = _check_frames("temporal_aggregate_pair", y, num_pairs, "B·P")
    k = _check_weight("temporal_aggregate_pair", "w_big", w_big, c)
    if not isinstance(w_little, torch.Tensor) or tuple(w_little.shape) != (k, c):
        shape = tuple(w_little.shape) if isinstance(w_little, torch.Tensor) else type(w_little).__name__
        raise ValueError(f"temporal_aggregate_pair: w_little must have w_big's shape ({k}, {c}), got {shape}")
    v = y.reshape(b, num_pairs, c, h * w).permute(0, 2, 1, 3)
    wt = torch.stack([w_big, w_little], dim=-1).permute(1, 2, 0).reshape(2 * c, 1, k, 1).to(y.dtype)
    out = F.conv2d(v, wt, padding=(k // 2, 0), groups=c)          # (B, 2C, P, H·W)
    if relu:
        out = torch.relu(out)
    out = out.reshape(b, c, 2, num_pairs, h * w)

    def frames(j: int) -> torch.Tensor:
        return out[:, :, j].permute(0, 2, 1, 3).reshape(n, c, h, w)
    return frames(0), frames(1)


def bl_merge(big: torch.Tensor, little: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """Big-little merge: ``ReLU(nearest_up(big) + little)``.

    Args:
        big: ``(N, C, h, w)`` big-branch output (half resolution in layers 1–3, full in layer0).
        little: ``(N, C, H, W)`` little-branch output (after ``little_e``).

    Returns ``(N, C, H, W)``. The upsampling is PyTorch's legacy nearest (destination d reads ⌊d·h/H⌋), an exact
    2× replication at multiples of 32 px; none when the sizes agree (layer0).
    """
    if not isinstance(big, torch.Tensor) or not isinstance(little, torch.Tensor) or big.dim() != 4 \
            or little.dim() != 4 or big.shape[:2] != little.shape[:2]:
        raise ValueError(f"bl_merge: big and little must be (N, C, h, w) and (N, C, H, W) with the same N and C, got "
                         f"{getattr(big, 'shape', big)} and {getattr(little, 'shape', little)}")
    out = upsample_nearest(big, (little.shape[-2], little.shape[-1])) + little
    return torch.relu(out) if relu else out


# ------------------------------------------------------------------------------------------------ official semantics
def tam_official(x: torch.Tensor, taps: list[torch.Tensor], num_frames: int) -> torch.Tensor:
    """TAM as the release computes it: one depthwise 1×1 conv per tap on every frame, each result padded with zeros
    in time and sliced by its offset, stacked, summed, ReLU.

    Args:
        x: ``(B·T, C, H, W)``; taps: K weights ``(C, 1, 1, 1)`` in offset order −r…r; num_frames: T.
    Returns ``(B·T, C, H, W)``.
    """
    b, n, c, h, w = _check_frames("tam_official", x, num_frames, "B·T")
    r = len(taps) // 2
    shifted = []
    for i, tap in enumerate(taps):
        z = F.conv2d(x, tap, groups=c).view(b, num_frames, c, h, w)
        s = i - r
        if s < 0:
            z = F.pad(z, (0, 0, 0, 0, 0, 0, -s, 0))[:, :num_frames]
        elif s > 0:
            z = F.pad(z, (0, 0, 0, 0, 0, 0, 0, s))[:, s:s + num_frames]
        shifted.append(z)
    return torch.relu(torch.stack(shifted).sum(dim=0)).view(n, c, h, w)


def pair_rows(n: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Index lists of the big (odd) and little (even) slots among ``n`` clip-major rows (int64, ascending)."""
    return (torch.arange(1, n, 2, device=device, dtype=torch.long),
            torch.arange(0, n, 2, device=device, dtype=torch.long))


def duplicate_pairs(y: torch.Tensor) -> torch.Tensor:
    """The release's pair distribution: a zero tensor of ``2·N`` rows with ``y`` ``(N, C, H, W)`` written to rows
    0, 2, 4, … and 1, 3, 5, … (so slots 2k and 2k+1 both hold pair k)."""
    x = torch.zeros((2 * y.shape[0],) + tuple(y.shape[1:]), device=y.device, dtype=y.dtype)
    big, little = pair_rows(x.shape[0], y.device)
    x[little] = y
    x[big] = y
    return x
