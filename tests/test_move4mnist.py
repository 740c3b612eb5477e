"""The Move4MNIST-style generator (issue 14 item 4): what each frame shows is what ``render`` says it shows, the
digit moves in the class direction at the documented speed, splits use disjoint digit images, frame sampling is TSN's,
and ``afnet-edge train --data move4mnist`` runs with clear errors for a wrong class or frame count."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import afnet_edge
from afnet_edge.cli import main
from afnet_edge.data import move4mnist as m4
from afnet_edge.data.move4mnist import BACKGROUND, BLANK, INFORMATIVE, Move4MNISTDataset, bundled_digits
from afnet_edge.video import normalize_frames


@pytest.fixture(scope="module")
def data():
    return Move4MNISTDataset(24, seed=3)


def test_frames_shapes_and_determinism(data):
    s = data.render(5)
    assert s.frames.shape == (32, 64, 64) and s.frames.dtype == np.uint8 and s.label == 5 % 4
    assert np.array_equal(s.frames, data.render(5).frames)                       # (seed, index) decides everything
    assert not np.array_equal(s.frames, data.render(9).frames)
    assert not np.array_equal(s.frames, Move4MNISTDataset(24, seed=4).render(5).frames)
    clip, label = data[5]
    assert clip.shape == (32, 3, 64, 64) and clip.dtype == torch.float32 and label == s.label
    grey = np.repeat(s.frames[..., None], 3, axis=-1)
    assert torch.equal(clip, normalize_frames(grey))                              # three equal channels, normalised
    assert data._cache is not None and 5 in data._cache                          # rendered once, then cached
    assert torch.equal(data[5][0], clip)
    uncached = Move4MNISTDataset(24, seed=3, cache_mb=0)
    assert uncached._cache is None and torch.equal(uncached[5][0], clip)
    assert Move4MNISTDataset(24, seed=3, cache_mb=0.5)._cache is None            # 24 videos of 128 KiB do not fit
    assert data.labels().tolist() == [data.label_of(i) for i in range(len(data))]
    assert np.bincount(data.labels(), minlength=4).tolist() == [6, 6, 6, 6]


def test_frame_kinds_are_what_they_claim(data):
    for i in range(len(data)):
        s = data.render(i)
        assert (s.kind == INFORMATIVE).sum() >= 2
        assert (s.frames[s.kind == BLANK] == 0).all()                            # blank frames are black
        assert not s.distractor[s.kind == BLANK].any()
        shown = s.frames[s.kind != BLANK].reshape(-1, 64 * 64)
        assert (shown.std(axis=1) > 5).all()                                     # a textured scene elsewhere
    kinds = np.concatenate([data.render(i).kind for i in range(len(data))])
    share = np.bincount(kinds, minlength=3) / len(kinds)
    assert 0.25 < share[INFORMATIVE] < 0.5 and 0.1 < share[BLANK] < 0.3 and 0.35 < share[BACKGROUND] < 0.6


def _digit_centroid(frame: np.ndarray, scene: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (row, col) of what a frame adds to its scene."""
    w = np.clip(frame.astype(np.float32) - scene.astype(np.float32), 0, None)
    w[w < 40] = 0                                                                # sensor noise is ~4 grey levels
    ys, xs = np.mgrid[: frame.shape[0], : frame.shape[1]]
    return np.array([(w * ys).sum(), (w * xs).sum()]) / w.sum()


def test_digit_moves_slowly_in_the_class_direction_where_it_is_drawn(monkeypatch):
    data = Move4MNISTDataset(16, seed=11)
    direction = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}
    for i in range(len(data)):
        s = data.render(i)
        step = np.diff(s.positions, axis=0)
        speed = np.linalg.norm(step, axis=1)
        assert np.allclose(speed, speed[0], atol=1e-4) and 0.2 <= speed[0] <= 0.4
        assert np.allclose(step / speed[:, None], direction[s.label], atol=1e-4)
        assert (s.positions >= 0).all() and (s.positions + s.glyph_size <= 64).all()
    # The pixels agree with the positions: render once more without the moving digit (same random stream, its
    # glyph replaced by a blank one) and compare the digit's centroid with its position in informative frames.
    s = data.render(2)
    images, labels = bundled_digits()
    blank = images.copy()
    blank[:] = 0.0
    monkeypatch.setattr(m4, "bundled_digits", lambda: (blank, labels))
    scene = data.render(2)
    monkeypatch.undo()
    assert np.array_equal(scene.kind, s.kind) and np.array_equal(scene.frames[s.kind == BLANK], s.frames[s.kind == BLANK])
    clean = np.flatnonzero((s.kind == INFORMATIVE) & ~s.distractor)
    assert len(clean) >= 1
    a = int(np.random.default_rng([data.seed, m4._TAG, 2]).integers(*m4._SPLIT_GLYPHS["train"]))
    g = images[a]
    ys, xs = np.mgrid[:8, :8]
    glyph_centre = np.array([(g * (ys + 0.5)).sum(), (g * (xs + 0.5)).sum()]) / g.sum() * s.glyph_size / 8
    for t in clean:
        # the blank-glyph scene differs from the real one in sensor noise only where no digit is drawn
        got = _digit_centroid(s.frames[t], scene.frames[t])
        assert np.abs(got - (s.positions[t] + glyph_centre)).max() < 1.0, (t, got, s.positions[t] + glyph_centre)


def test_splits_draw_disjoint_digit_images(monkeypatch):
    drawn = {"train": set(), "val": set()}
    real = m4._draw

    def spy(glyph, *a):
        images, _ = bundled_digits()
        drawn[split].add(int(np.flatnonzero((images == glyph).all(axis=(1, 2)))[0]))
        return real(glyph, *a)

    monkeypatch.setattr(m4, "_draw", spy)
    for split in ("train", "val"):
        d = Move4MNISTDataset(40, seed=0, split=split)
        for i in range(len(d)):
            d.render(i)
    assert max(drawn["train"]) < 1200 <= min(drawn["val"])
    assert len(drawn["train"]) > 40 and len(drawn["val"]) > 40                   # moving and distractor digits


def test_sparse_sampling_is_tsn_segment_sampling():
    val = Move4MNISTDataset(4, num_frames=8)
    assert val.frame_indices(0).tolist() == [2, 6, 10, 14, 18, 22, 26, 30]       # segment centres
    clip, _ = val[1]
    s = val.render(1)
    assert torch.equal(clip, normalize_frames(np.repeat(s.frames[2::4, ..., None], 3, axis=-1)))
    train = Move4MNISTDataset(4, num_frames=8, random_sampling=True)
    rng = np.random.default_rng(0)
    picks = np.stack([train.frame_indices(0, rng) for _ in range(200)])
    assert ((picks // 4) == np.arange(8)).all()                                  # one frame in each segment
    assert all(len(np.unique(picks[:, k])) == 4 for k in range(8))               # every frame of it drawn


def test_informative_only_draws_informative_frames_in_time_order():
    d = Move4MNISTDataset(6, num_frames=8, size=32, seed=2, informative_only=True)
    for i in range(len(d)):
        s = d.render(i)
        clip, label = d[i]
        frames = {bytes(normalize_frames(np.repeat(f[None, ..., None], 3, axis=-1)).numpy()): t
                  for t, f in enumerate(s.frames)}
        picks = [frames[bytes(c[None].numpy())] for c in clip]                    # which frame each one is
        assert label == s.label and picks == sorted(picks)
        assert all(s.kind[t] == INFORMATIVE for t in picks)
        if (s.kind == INFORMATIVE).sum() >= 8:
            assert len(set(picks)) == 8                                          # no repeats when enough


@pytest.mark.parametrize("kw, match", [(dict(num_frames=33), "num_frames"), (dict(size=8), "size"),
                                       (dict(split="test"), "split"), (dict(num_samples=0), "num_samples")])
def test_bad_arguments_name_themselves(kw, match):
    args = dict(num_samples=4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        Move4MNISTDataset(**args)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    bundled_digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"pip install -e \.\[data\]"):
            Move4MNISTDataset(4)
    finally:
        monkeypatch.undo()
        bundled_digits.cache_clear()


def test_train_cli_on_move4mnist(tmp_path, capsys, monkeypatch):
    from afnet_edge.training import commands
    built = []
    real = commands.build_model
    monkeypatch.setattr(commands, "build_model", lambda args, **kw: built.append(real(args, **kw)) or built[-1])
    out = tmp_path / "run"
    assert main(["train", "--data", "move4mnist", "--model", "fullvideo_tsm_r18", "--clusters", "4", "--size", "32",
                 "--epochs", "1", "--train-samples", "8", "--val-samples", "4", "--batch-size", "4", "--out", str(out),
                 "--dropout", "0.3", "--width-mult", "0.25", "--no-progress", "--json"]) == 0
    assert (out / "last.pth").exists()
    drops = [m.p for m in built[0].modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and set(drops) == {0.3}                                          # --dropout reached the model
    # K is no weight shape: the checkpoint records it, and eval rebuilds the K=4 model (not the default 16)
    from afnet_edge.checkpoint import inspect_checkpoint
    assert built[0].base_model.conv1.out_channels == 16                            # --width-mult 0.25 reached it
    opts = inspect_checkpoint(str(out / "last.pth"))["options"]
    assert opts["clusters"] == 4 and opts["width"] == 0.25
    capsys.readouterr()
    assert main(["eval", "--data", "move4mnist", "--checkpoint", str(out / "last.pth"), "--size", "32",
                 "--val-samples", "4", "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    k4 = afnet_edge.count_flops(afnet_edge.create_model("fullvideo_tsm_r18", num_classes=4, clusters=4, width=0.25),
                                image_size=32)["official_gflops"]
    assert res["official_gflops"] == pytest.approx(k4)
    # the release's schedule shape: fine-tune the full-video TSM's own checkpoint into another K (the TSM wrapper's
    # .conv1.net. names kept, not mapped to AFNet's)
    assert main(["train", "--data", "move4mnist", "--model", "fullvideo_tsm_r18", "--clusters", "2", "--size", "32",
                 "--epochs", "1", "--train-samples", "4", "--val-samples", "0", "--batch-size", "4", "--finetune",
                 str(out / "last.pth"), "--width-mult", "0.25", "--out", str(tmp_path / "ft"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "--data", "move4mnist", "--dropout", "1.5", "--out", str(tmp_path / "z")]) == 2
    assert "--dropout" in capsys.readouterr().err
    assert main(["train", "--data", "synthetic", "--informative-only", "--out", str(tmp_path / "z")]) == 2
    assert "--informative-only" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["train", "--data", "move4mnist", "--model", "fullvideo_tsm_r18", "--classes", "5",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--data move4mnist has 4 classes" in err and "\n" not in err
    assert main(["train", "--data", "move4mnist", "--model", "fullvideo_tsm_r18", "--distractor-prob", "0.3",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--distractor-prob" in capsys.readouterr().err
