"""Full-video clustering family ("No frame left behind", shared/spec/full-video-clustering.md).

The independent oracle is a plain per-video NumPy / Python transcription of the release's semantics (spec §3–§4:
np.sign bits, normalised Hamming as a mean of mismatches, Python's stable ``sorted`` for slope, the sequential float
scan of ``accumulated_selection``) plus our repaired cumulative rule written as the spec states it; the device
implementation (afnet_edge.kernels.fullvideo_reference) is vectorised and must match it exactly.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import CheckpointError, load_checkpoint
from afnet_edge.flops import count_flops, measure_macs
from afnet_edge.kernels.fullvideo_reference import (adjacent_hamming, binarize_pack, popcount32, segment_boundaries,
                                                    segment_mean)
from afnet_edge.models.fullvideo import frame_schedule
from conftest import randomize_model

SIZE = 32                       # the smallest input the models accept: layer1 maps of 8×8


# ------------------------------------------------------------------------------------------------- the oracle
def np_bits(a: np.ndarray) -> np.ndarray:
    """(N, D) sign patterns as the release (np.sign of a float copy)."""
    return np.sign(a.reshape(a.shape[0], -1).astype(np.float64))


def np_hamming_counts(a: np.ndarray) -> list[int]:
    s = np_bits(a)
    return [int(np.sum(s[t] != s[t + 1])) for t in range(s.shape[0] - 1)]


def _pad(segs: list, k: int) -> list:
    return segs + [segs[-1]] * (k - len(segs))


def oracle_segments(h: list, k: int, rule: str, d_bits: int = 1000, degenerate: str = "none") -> list:
    """K inclusive (first, last) frame pairs of one video, padding included, or None entries for nothing."""
    n = len(h) + 1
    if n < k:
        return _pad([(t, t) for t in range(n)], k)
    if rule == "even" or (rule == "slope" and degenerate == "even" and len(set(h)) <= 1):
        q, r = divmod(n, k)
        segs, s = [], 0
        for j in range(k):
            size = q + (1 if j < r else 0)
            segs.append((s, s + size - 1))
            s += size
        return segs
    if rule == "slope":
        d = [x / d_bits for x in h]
        order = sorted(range(n - 1), key=lambda t: d[t])     # stable: equal distances keep position order
        cuts = sorted(order[len(order) - (k - 1):]) if k > 1 else []
        segs, s = [], 0
        for p in cuts:
            segs.append((s, p))
            s = p + 1
        segs.append((s, n - 1))
        return segs
    if rule == "cumulative_official":
        d = [x / d_bits for x in h]
        s = [0.0]
        for x in d:
            s.append(s[-1] + x)
        total = s[-1]
        if total == 0:
            return [(t, t) for t in range(k)]
        theta = total / k
        c, start, segs = 1, 0, []
        for f in range(1, n):
            if s[f] <= c * theta:
                continue
            segs.append((start, f - 1))
            c += 1
            start = f
        if not segs:   # the release crashes here (K = 1); ours: one segment of all frames
            return [(0, n - 1)]
        return _pad(segs, k)
    assert rule == "cumulative"
    hk = [0]
    for x in h:
        hk.append(hk[-1] + x)
    total = hk[-1]
    if total == 0:
        return oracle_segments(h, k, "even")
    c, start, segs = 1, 0, []
    for f in range(1, n):
        if k * hk[f] > c * total:
            segs.append((start, f - 1))
            c += 1
            start = f
    segs.append((start, n - 1))
    return _pad(segs, k)


def oracle_means(a: np.ndarray, segs: list) -> np.ndarray:
    return np.stack([a[f:l + 1].astype(np.float64).mean(0) for f, l in segs])


def as_pairs(offsets: torch.Tensor, m: torch.Tensor) -> list:
    """Our (K+1) offsets + M of one video as the oracle's K inclusive pairs."""
    off, m = offsets.tolist(), int(m)
    segs = [(off[j], off[j + 1] - 1) for j in range(m)]
    return _pad(segs, len(off) - 1)


# ------------------------------------------------------------------------------------------------------- bits
def test_binarize_pack_and_adjacent_hamming_match_numpy():
    g = torch.Generator().manual_seed(0)
    for d in (1, 31, 32, 33, 200):
        y = torch.relu(torch.randn(7, d, generator=g))          # post-ReLU: exact zeros and positives
        bits = binarize_pack(y)
        assert bits.dtype == torch.int32 and bits.shape == (7, (d + 31) // 32)
        # bit i of word w is element 32w+i (LSB first)
        words = bits.to(torch.int64) & 0xFFFFFFFF
        unpacked = torch.stack([(words >> i) & 1 for i in range(32)], dim=2).reshape(7, -1)[:, :d]
        assert torch.equal(unpacked.bool(), y > 0)
        h = adjacent_hamming(bits)
        assert h.dtype == torch.int32
        assert h.tolist() == np_hamming_counts(y.numpy())


def test_popcount_edge_words():
    x = torch.tensor([0, -1, -2 ** 31, 2 ** 31 - 1, 0x55555555, 1], dtype=torch.int32)
    assert popcount32(x).tolist() == [0, 32, 1, 31, 16, 1]


# ------------------------------------------------------------------------------------------ spec's worked cases
def test_slope_worked_case_spec_4_1():
    # Cuts after 5, 7, 13, 15, 18, 23, 26 carry the largest distances (spec §4.1, N = 32, K = 8).
    h = [3] * 31
    for p, v in zip((5, 7, 13, 15, 18, 23, 26), (9, 12, 10, 15, 11, 9, 20)):
        h[p] = v
    off, m = segment_boundaries(torch.tensor(h, dtype=torch.int32), 8, "slope")
    assert as_pairs(off[0], m[0]) == [(0, 5), (6, 7), (8, 13), (14, 15), (16, 18), (19, 23), (24, 26), (27, 31)]


def test_cumulative_official_worked_case_spec_4_2():
    # Spec §4.2: emitted [0–3] [4–7] [8–11] [12–15] [16–18] [19–23] [24–26], then [24–26] again; 27–31 dropped.
    h = [3, 1, 3, 2, 1, 3, 2, 1, 2, 2, 2, 2, 3, 2, 2, 1, 3, 1, 3, 1, 2, 2, 2, 2, 2, 2, 3, 3, 1, 1, 2]
    off, m = segment_boundaries(torch.tensor(h, dtype=torch.int32), 8, "cumulative_official", num_bits=64)
    assert int(m[0]) == 7 and off[0].tolist() == [0, 4, 8, 12, 16, 19, 24, 27, 27]
    assert as_pairs(off[0], m[0]) == [(0, 3), (4, 7), (8, 11), (12, 15), (16, 18), (19, 23), (24, 26), (24, 26)]
    # The repaired rule emits the last band and never drops a frame.
    off, m = segment_boundaries(torch.tensor(h, dtype=torch.int32), 8, "cumulative")
    assert int(m[0]) == 8 and off[0, 0] == 0 and off[0, -1] == 32
    # Frames of the dropped band get zero gradient, the duplicated segment's frames twice the share.
    a = torch.rand(32, 5, dtype=torch.float64, requires_grad=True)
    off, m = segment_boundaries(torch.tensor(h, dtype=torch.int32), 8, "cumulative_official", num_bits=64)
    segment_mean(a, off, m).sum().backward()
    g = a.grad[:, 0]
    assert torch.all(g[27:] == 0)
    assert torch.allclose(g[24:27], torch.full((3,), 2 / 3, dtype=torch.float64))
    assert torch.allclose(g[:4], torch.full((4,), 1 / 4, dtype=torch.float64))


def test_tie_rules():
    n, k = 12, 4
    h = torch.full((n - 1,), 5, dtype=torch.int32)
    off, m = segment_boundaries(h, k, "slope")                 # all equal: the later positions win (release)
    assert off[0].tolist() == [0, 9, 10, 11, 12] and int(m[0]) == 4
    off, m = segment_boundaries(h, k, "slope", degenerate="even")
    assert off[0].tolist() == [0, 3, 6, 9, 12]
    h2 = torch.tensor([1, 7, 7, 1, 7, 1, 1, 1, 1, 1, 1], dtype=torch.int32)  # three 7s for two cuts: keep 2 and 4
    off, _ = segment_boundaries(h2, 3, "slope")
    assert off[0].tolist() == [0, 3, 5, 12]
    z = torch.zeros(n - 1, dtype=torch.int32)                  # H = 0
    off, m = segment_boundaries(z, k, "cumulative")
    assert off[0].tolist() == [0, 3, 6, 9, 12] and int(m[0]) == 4
    off, m = segment_boundaries(z, k, "cumulative_official", num_bits=10)
    assert off[0].tolist() == [0, 1, 2, 3, 4] and int(m[0]) == 4     # first K frames, unaveraged
    off, m = segment_boundaries(torch.tensor([3, 1], dtype=torch.int32), 5, "slope")   # N < K
    assert off[0].tolist() == [0, 1, 2, 3, 3, 3] and int(m[0]) == 3


# ---------------------------------------------------------------------------------------- random oracle checks
@pytest.mark.parametrize("rule", ["slope", "cumulative", "cumulative_official", "even"])
def test_boundaries_and_means_match_oracle_on_random_ragged_batches(rule):
    rnd = random.Random(hash(rule) % 1000)
    g = torch.Generator().manual_seed(7)
    for trial in range(40):
        k = rnd.choice([1, 2, 3, 5, 8])
        lengths = [rnd.choice([1, 2, k, k + 1, rnd.randint(1, 40)]) for _ in range(rnd.randint(1, 4))]
        hi = rnd.choice([1, 3, 50])                             # small ranges: many ties; 1: often H = 0
        hs = [[rnd.randint(0, hi) if rnd.random() < 0.9 else 0 for _ in range(n - 1)] for n in lengths]
        flat = []
        for i, hv in enumerate(hs):
            flat += hv + ([rnd.randint(0, 99)] if i < len(hs) - 1 else [])   # pair straddling two videos
        offs = torch.tensor(np.cumsum([0] + lengths), dtype=torch.int64)
        d_bits = rnd.choice([64, 1000, 802816])
        off, m = segment_boundaries(torch.tensor(flat, dtype=torch.int32), k, rule, offs, num_bits=d_bits,
                                    degenerate="even" if trial % 3 == 0 else "none")
        assert off.shape == (len(lengths), k + 1) and m.shape == (len(lengths),)
        a = torch.randn(sum(lengths), 3, 2, dtype=torch.float32, generator=g)
        z = segment_mean(a, off, m, offs)
        for b, n in enumerate(lengths):
            want = oracle_segments(hs[b], k, rule, d_bits, "even" if trial % 3 == 0 else "none")
            assert as_pairs(off[b], m[b]) == want, (rule, k, hs[b])
            ref = oracle_means(a[offs[b]:offs[b + 1]].numpy(), want)
            np.testing.assert_allclose(z[b * k:(b + 1) * k].numpy(), ref, rtol=1e-6, atol=1e-6)


def test_segment_mean_gradcheck():
    a = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    h = torch.tensor([1, 5, 2, 2, 9, 1, 3, 4], dtype=torch.int32)
    for rule in ("slope", "cumulative_official"):
        off, m = segment_boundaries(h, 4, rule, num_bits=8)
        assert torch.autograd.gradcheck(lambda x: segment_mean(x, off, m), (a,))


def test_clustering_has_no_data_dependent_host_step():
    """The ops and the whole forward run on meta tensors (no data): every shape depends on N, B, K only and nothing
    reads a value back to the host (an .item()/.cpu()/.tolist()/nonzero raises on meta tensors)."""
    with torch.device("meta"):
        feats = torch.rand(20, 4, 3, 3)
        offs = torch.tensor([0, 7, 20])
        with pytest.raises(Exception):
            offs.tolist()                                       # the premise: values cannot be read
        bits = binarize_pack(feats)
        h = adjacent_hamming(bits)
        for rule in ("slope", "cumulative", "cumulative_official"):
            off, m = segment_boundaries(h, 4, rule, offs, num_bits=36)
            z = segment_mean(feats, off, m, offs)
            assert off.shape == (2, 5) and z.shape == (8, 4, 3, 3)
            model = afnet_edge.create_model("fullvideo_tsm_r18", num_classes=3, clusters=4, rule=rule)
            out = model(torch.rand(2, 6, 3, SIZE, SIZE))
            assert out.logits.shape == (2, 3) and out.segments.shape == (2, 5)
            out = model(torch.rand(9, 3, SIZE, SIZE), frame_offsets=torch.tensor([0, 4, 9]))
            assert out.logits.shape == (2, 3)


# ------------------------------------------------------------------------------------------------------ model
def make(name="fullvideo_tsm_r18", seed=0, **kw):
    kw.setdefault("num_classes", 5)
    return randomize_model(afnet_edge.create_model(name, **kw), seed)


def official_semantics_logits(model, videos: list) -> tuple[torch.Tensor, list]:
    """The release's path: per-video host loop (NumPy clustering of the layer1 output), then layers 2–4."""
    zs, segs_all = [], []
    with torch.no_grad():
        for v in videos:
            f = model.base_model.per_frame(v)
            a = f.numpy()
            h = np_hamming_counts(a)
            segs = oracle_segments(h, model.clusters, model.rule, a[0].size)
            segs_all.append(segs)
            zs.append(torch.from_numpy(oracle_means(a, segs)).float())
        return model.head(torch.cat(zs), len(videos)), segs_all


@pytest.mark.parametrize("rule", ["slope", "cumulative", "cumulative_official"])
def test_model_equals_official_semantics_on_ragged_batch(rule):
    model = make(clusters=4, rule=rule, seed=3)
    g = torch.Generator().manual_seed(11)
    videos = [torch.randn(n, 3, SIZE, SIZE, generator=g) for n in (9, 3, 6)]
    ref, segs = official_semantics_logits(model, videos)
    with torch.no_grad():
        out = model(videos)
        flat = torch.cat(videos)
        out2 = model(flat, frame_offsets=torch.tensor([0, 9, 12, 18]))
    for b in range(3):
        assert as_pairs(out.segments[b], out.num_segments[b]) == segs[b]
    assert out.logits.shape == (3, 5)
    err = (out.logits - ref).abs().max() / ref.abs().max()
    assert err <= 1e-5, err
    assert torch.equal(out.logits, out2.logits) and torch.equal(out.segments, out2.segments)
    # a uniform (B, N, 3, H, W) batch equals the per-video results
    with torch.no_grad():
        out5 = model(torch.stack([videos[0][:6], videos[2]]))
        single = model(videos[2][None])
    assert torch.allclose(out5.logits[1], single.logits[0], rtol=1e-5, atol=1e-6)


def test_gradients_reach_clustered_frames_only():
    """Eval mode (per-frame stem + layer1 independent): every frame of an emitted segment gets a gradient, the band
    that cumulative_official drops gets exactly zero (spec §4.2, §4.5)."""
    g = torch.Generator().manual_seed(21)
    for rule in ("cumulative_official", "cumulative", "slope"):
        model = make(clusters=4, rule=rule, seed=6)
        x = torch.randn(1, 14, 3, SIZE, SIZE, generator=g, requires_grad=True)
        out = model(x)
        out.logits.sum().backward()
        per_frame = x.grad[0].abs().flatten(1).sum(1)
        end = int(out.segments[0, int(out.num_segments[0])])
        assert torch.all(per_frame[:end] > 0)
        assert torch.all(per_frame[end:] == 0)
        assert (end < 14) == (rule == "cumulative_official")
        assert model.base_model.layer1[0].conv1.weight.grad.abs().sum() > 0


def test_release_shift_quirk_only_changes_single_video_batches():
    a = make(clusters=4, seed=5)
    b = make(clusters=4, seed=5, release_shift_quirk=True)
    x = torch.randn(2, 8, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(a(x).logits, b(x).logits, rtol=0, atol=0)
        assert not torch.allclose(a(x[:1]).logits, b(x[:1]).logits, rtol=1e-4, atol=1e-7)


def test_frame_schedule_and_max_frames():
    # The release's all-in loader (max_frames=None)
    assert frame_schedule(1000, None) == (1, 992)
    assert frame_schedule(1200, None) == (1, 1200)
    assert frame_schedule(3000, None) == (2, 1488)
    assert frame_schedule(5000, None) == (4, 1248)
    assert frame_schedule(16000, None) == (8, 2000)
    # Ours: every frame up to max_frames, then the release's schedule, then doubling until ≤ max_frames
    assert frame_schedule(1024) == (1, 1024)
    assert frame_schedule(1100) == (2, 544)
    assert frame_schedule(3000) == (4, 736)
    assert frame_schedule(20, max_frames=8) == (4, 5)
    model = make(clusters=2, max_frames=16, seed=1)
    x = torch.randn(1, 40, 3, SIZE, SIZE)
    with torch.no_grad():
        out = model(x)
        ref = model(x[:, 0:32:2])                               # 40 > 16: stride 2 over the first 32 frames
    assert int(out.frame_offsets[-1]) == 16
    assert torch.equal(out.logits, ref.logits)


def test_streaming_equals_offline_slope():
    model = make(clusters=4, rule="slope", seed=2)
    g = torch.Generator().manual_seed(3)
    for n, chunks in ((13, (5, 1, 7)), (3, (3,)), (9, (1,) * 9)):
        v = torch.randn(n, 3, SIZE, SIZE, generator=g)
        with torch.no_grad():
            off = model(v[None])
        s = model.stream()
        i = 0
        for c in chunks:
            s.push(v[i:i + c])
            i += c
        assert s.state_bytes() <= (model.clusters + 1) * 64 * (SIZE // 4) ** 2 * 4 + 4 * 128  # O(K·D)
        got = s.finish()
        assert torch.equal(got.segments, off.segments) and torch.equal(got.num_segments, off.num_segments)
        assert torch.allclose(got.logits, off.logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="slope"):
        make(rule="cumulative").stream()


def test_bad_inputs_name_the_argument():
    model = make(clusters=2)
    with pytest.raises(ValueError, match="frame_offsets"):
        model(torch.randn(6, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="frame_offsets"):
        model(torch.randn(6, 3, SIZE, SIZE), frame_offsets=[0, 4, 4, 6])
    with pytest.raises(ValueError, match="video"):
        model(torch.randn(2, 4, 4, SIZE, SIZE))
    with pytest.raises(TypeError, match="video"):
        model(torch.randn(2, 4, 3, SIZE, SIZE).numpy())
    with pytest.raises(ValueError, match="rule"):
        afnet_edge.create_model("fullvideo_tsm_r18", rule="kmeans")
    with pytest.raises(ValueError, match="clusters"):
        afnet_edge.create_model("fullvideo_tsm_r50", clusters=0)
    with pytest.raises(ValueError, match="max_frames"):
        afnet_edge.create_model("fullvideo_tsm_r50", max_frames=0)
    for width in (0, 0.3, "0.25"):
        with pytest.raises(ValueError, match="width"):
            afnet_edge.create_model("fullvideo_tsm_r18", width=width)


# ------------------------------------------------------------------------------------------------- checkpoints
def _release_layout(model) -> dict:
    """The release's training checkpoint (spec §10): module.-prefixed, layers 2–4 conv1.net., layer1 conv1."""
    return {"module." + k: v.clone() for k, v in model.state_dict().items()}


def test_release_and_stock_tsm_checkpoints_load_strictly(tmp_path):
    src = make(clusters=4, seed=9)
    sd = _release_layout(src)
    assert "module.base_model.layer1.0.conv1.weight" in sd and "module.base_model.layer2.0.conv1.net.weight" in sd
    torch.save({"epoch": 40, "arch": "resnet18", "state_dict": sd, "optimizer": {}, "best_prec1": 0.0},
               tmp_path / "ckpt.pth.tar")
    stock = {k.replace(".conv1.", ".conv1.net.") if ".layer1." in k else k: v for k, v in sd.items()}
    torch.save({"state_dict": stock}, tmp_path / "tsm.pth.tar")
    x = torch.randn(1, 6, 3, SIZE, SIZE)
    with torch.no_grad():
        want = src(x).logits
    for f, kind in (("ckpt.pth.tar", "official_fullvideo"), ("tsm.pth.tar", "official_tsm")):
        dst = afnet_edge.create_model("fullvideo_tsm_r18", num_classes=5, clusters=4)
        rep = load_checkpoint(dst, tmp_path / f)
        assert rep.kind == kind
        with torch.no_grad():
            assert torch.equal(dst(x).logits, want)
    # ImageNet torchvision file: fc dropped, layers 2–4 conv1 mapped to the shift wrapper
    tv = {k[len("base_model."):].replace(".conv1.net.", ".conv1."): v for k, v in src.state_dict().items()
          if k.startswith("base_model.")}
    tv["fc.weight"], tv["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    torch.save(tv, tmp_path / "r18.pth")
    dst = afnet_edge.create_model("fullvideo_tsm_r18", num_classes=5, clusters=4)
    rep = load_checkpoint(dst, tmp_path / "r18.pth")
    assert rep.kind == "official_imagenet" and rep.dropped == ["fc.bias", "fc.weight"]
    assert torch.equal(dst.base_model.layer3[0].conv1.net.weight, src.base_model.layer3[0].conv1.net.weight)


def test_checkpoint_errors_are_clear(tmp_path):
    src = make(clusters=4)
    sd = _release_layout(src)
    cases = {
        "missing": ({k: v for k, v in sd.items() if "layer3.1.bn2" not in k}, "missing key"),
        "unexpected": ({**sd, "module.base_model.extra.weight": torch.zeros(1)}, "unexpected key"),
        "shape": ({**sd, "module.new_fc.weight": torch.zeros(7, 512)}, "shape mismatch"),
        "tsn": ({k.replace(".conv1.net.", ".conv1."): v for k, v in sd.items()}, "layer2.0.conv1.net.weight"),
    }
    for name, (bad, msg) in cases.items():
        torch.save({"state_dict": bad}, tmp_path / f"{name}.pth")
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(afnet_edge.create_model("fullvideo_tsm_r18", num_classes=5, clusters=4),
                            tmp_path / f"{name}.pth")


# ------------------------------------------------------------------------------------------------------- FLOPs
@pytest.mark.parametrize("n,k,gmacs", [(32, 8, 51.6), (48, 8, 64.1), (48, 16, 90.6), (64, 16, 103.1),
                                       (200, 8, 183.6), (1200, 16, 996.0)])
def test_flops_match_spec_table_r50(n, k, gmacs):
    with torch.device("meta"):
        model = afnet_edge.create_model("fullvideo_tsm_r50", num_frames=n, clusters=k)
    res = count_flops(model)
    assert abs(res["official_gflops"] - gmacs) <= 0.005 * gmacs
    assert res["official_gflops"] == pytest.approx(res["executed_gmacs_compact"])
    st = res["per_stage"]
    per_frame = (st["stem"]["official_gflops"] + st["layer1"]["official_gflops"]) / n
    per_cluster = sum(st[s]["official_gflops"] for s in ("layer2", "layer3", "layer4", "head")) / k
    assert abs(per_frame - 0.786) <= 0.005 * 0.786 and abs(per_cluster - 3.302) <= 0.005 * 3.302


def test_flops_r18_move4mnist_and_measured_macs():
    with torch.device("meta"):
        model = afnet_edge.create_model("fullvideo_tsm_r18", num_frames=32, clusters=16, num_classes=4)
    res = count_flops(model)
    assert abs(res["official_gflops"] - 38.3) <= 0.005 * 38.3
    small = make(num_frames=6, clusters=3)
    x = torch.randn(1, 6, 3, SIZE, SIZE)
    measured = measure_macs(small, x)["gmacs_per_clip"]
    assert measured == pytest.approx(count_flops(small, image_size=SIZE)["executed_gmacs_compact"], rel=1e-9)
