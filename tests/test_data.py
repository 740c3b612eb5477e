"""afnet_edge.data: the synthetic temporal-order dataset and the TSN-layout list dataset (videos and frame folders)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from afnet_edge import video as V
from afnet_edge.data import (
    CLASS_NAMES,
    SyntheticVideoDataset,
    VideoListDataset,
    multiscale_crop_params,
    parse_video_list,
    write_synthetic_videos,
)
from afnet_edge.data.transforms import fixed_crop_offsets, train_augment
from conftest import HAVE_AV, needs_av


# --------------------------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("t, size", [(1, 32), (4, (48, 64)), (8, 64), (12, 112)])
def test_synthetic_shapes_and_normalisation(t, size):
    ds = SyntheticVideoDataset(6, num_frames=t, size=size, seed=3)
    h, w = (size, size) if isinstance(size, int) else size
    clip, label = ds[5]
    assert clip.shape == (t, 3, h, w) and clip.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label < ds.num_classes
    sample = ds.render(5)
    assert sample.frames.shape == (t, h, w, 3) and sample.frames.dtype == np.uint8
    assert sample.label == label and sample.distractor.shape == (t,) and sample.object_mask.shape == (t, h, w)
    torch.testing.assert_close(clip, V.normalize_frames(sample.frames), rtol=0, atol=0)
    assert float(clip.std()) > 0.1  # real content, not a constant


def test_synthetic_determinism():
    a = SyntheticVideoDataset(10, num_frames=6, size=48, seed=11)
    b = SyntheticVideoDataset(10, num_frames=6, size=48, seed=11)
    c = SyntheticVideoDataset(10, num_frames=6, size=48, seed=12)
    for i in (0, 7):
        xa, la = a[i]
        xb, lb = b[i]
        assert torch.equal(xa, xb) and la == lb
        assert not torch.equal(xa, c[i][0])
    assert not torch.equal(a[0][0], a[1][0])
    # order of access does not matter (no hidden state)
    x7 = a[7][0]
    _ = a[3]
    assert torch.equal(a[7][0], x7)
    assert torch.equal(a[-1][0], a[9][0])
    with pytest.raises(IndexError):
        a[10]


def test_synthetic_class_balance_and_names():
    ds = SyntheticVideoDataset(5 * 14, num_frames=2, size=16, seed=0)
    labels = ds.labels()
    assert np.bincount(labels, minlength=14).tolist() == [5] * 14
    assert labels[:14].tolist() != list(range(14))  # shuffled inside each block, not cyclic
    assert ds.class_names == list(CLASS_NAMES)
    ds4 = SyntheticVideoDataset(40, num_frames=2, size=16, num_classes=4, seed=1)
    assert np.bincount(ds4.labels()).tolist() == [10] * 4
    assert ds4.class_names == ["move_left_to_right", "move_right_to_left", "move_top_to_bottom", "move_bottom_to_top"]
    assert [ds4[i][1] for i in range(8)] == ds4.labels()[:8].tolist()


def test_synthetic_argument_errors():
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticVideoDataset(4, num_classes=15)
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticVideoDataset(4, num_classes=1)
    with pytest.raises(ValueError, match="distractor_prob"):
        SyntheticVideoDataset(4, distractor_prob=1.0)
    with pytest.raises(ValueError, match="num_frames"):
        SyntheticVideoDataset(4, num_frames=0)
    with pytest.raises(ValueError, match="size"):
        SyntheticVideoDataset(4, size=8)


def _foreground(sample) -> np.ndarray:
    """Pixels that differ from the clean background by more than the sensor noise: bool (T, H, W)."""
    diff = np.abs(sample.frames.astype(np.int16) - sample.background.astype(np.int16)[None]).max(axis=-1)
    return diff > 24


def _temporal_statistic(sample, pair: str) -> tuple[float, float]:
    """(slope over time, time-average) of a per-frame quantity measured on the pixels; the slope's sign should
    give the class inside a pair, the time-average should not."""
    fg = _foreground(sample)
    t, h, w = fg.shape
    yy, xx = np.mgrid[0:h, 0:w]
    per_frame = []
    for k in range(t):
        m = fg[k]
        area = m.sum()
        if pair in ("move_left_to_right", "move_top_to_bottom"):
            coord = xx if pair == "move_left_to_right" else yy
            per_frame.append(coord[m].mean() / (w if pair == "move_left_to_right" else h))
        elif pair in ("grow", "appear"):
            per_frame.append(area / (h * w))
        elif pair == "converge":  # spread of the two objects around their centre, negative so that converge > 0
            per_frame.append(-np.sqrt(((xx[m] - xx[m].mean()) ** 2 + (yy[m] - yy[m].mean()) ** 2).mean()))
        elif pair == "brighten":
            union = sample.object_mask.any(axis=0)
            per_frame.append(sample.frames[k][union].mean())
        elif pair == "rotate_clockwise":
            x, y = xx[m] - xx[m].mean(), yy[m] - yy[m].mean()
            per_frame.append(0.5 * np.arctan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean()))
    v = np.asarray(per_frame, dtype=np.float64)
    if pair == "rotate_clockwise":  # orientation is defined modulo pi: sum the wrapped increments
        d = np.diff(v)
        d = (d + np.pi / 2) % np.pi - np.pi / 2
        return float(d.sum()), 0.0
    slope = float(np.polyfit(np.arange(t), v, 1)[0])
    return slope, float(v.mean())


def test_synthetic_labels_depend_on_temporal_order():
    """A model-free temporal statistic on the pixels tells the two classes of every pair apart; reversing a clip
    in time flips it; and for the motion pair the time-averaged position does not separate the classes."""
    ds = SyntheticVideoDataset(14 * 10, num_frames=8, size=48, seed=5, distractor_prob=0.0)
    labels = ds.labels()
    for pair_start in range(0, 14, 2):
        pair = CLASS_NAMES[pair_start]
        correct, total, means = 0, 0, {0: [], 1: []}
        for i in np.flatnonzero((labels == pair_start) | (labels == pair_start + 1)):
            sample = ds.render(int(i))
            slope, mean = _temporal_statistic(sample, pair)
            is_first = sample.label == pair_start
            correct += (slope > 0) == is_first
            total += 1
            means[int(not is_first)].append(mean)
            if total <= 4:  # time reversal gives the other class's pattern
                sample.frames = sample.frames[::-1].copy()
                sample.object_mask = sample.object_mask[::-1].copy()
                rslope, _ = _temporal_statistic(sample, pair)
                assert (rslope > 0) == (not is_first), (pair, i)
        assert total == 20
        assert correct / total >= 0.95, f"{pair}: temporal statistic separates only {correct}/{total}"
        if pair in ("move_left_to_right", "move_top_to_bottom"):
            # the set of positions is the same for both directions: the average cannot tell them apart
            assert abs(np.mean(means[0]) - np.mean(means[1])) < 0.05


def test_synthetic_distractors():
    ds0 = SyntheticVideoDataset(20, num_frames=8, size=32, seed=2, distractor_prob=0.0)
    assert not any(ds0.render(i).distractor.any() for i in range(20))
    ds = SyntheticVideoDataset(60, num_frames=8, size=32, seed=2, distractor_prob=0.5)
    masks = np.stack([ds.render(i).distractor for i in range(60)])
    assert 0.35 < masks.mean() < 0.6
    assert (masks.sum(axis=1) <= 6).all()  # at least 2 informative frames per clip
    positions = masks.sum(axis=0)
    assert (positions > 0).all()  # distractors occur at every position
    for i in range(10):
        s = ds.render(i)
        diff = np.abs(s.frames.astype(np.int16) - s.background.astype(np.int16)[None]).max(axis=-1)
        for k in range(8):
            if s.distractor[k]:
                assert not s.object_mask[k].any()
                assert (diff[k] > 8).mean() > 0.5  # unlike the clip's scene, where the background stays within 8
            else:
                assert (diff[k][~s.object_mask[k]] <= 8).all()  # background + small noise
                if s.object_mask[k].any():  # (appear/disappear have frames without the object)
                    assert (diff[k][s.object_mask[k]] > 24).mean() > 0.8  # object visible where the mask says
    # T = 1 keeps its only frame informative
    ds1 = SyntheticVideoDataset(20, num_frames=1, size=32, seed=2, distractor_prob=0.9)
    assert not any(ds1.render(i).distractor.any() for i in range(20))


def test_synthetic_render_longer_video_same_label():
    ds = SyntheticVideoDataset(4, num_frames=4, size=32, seed=9, distractor_prob=0.0)
    long = ds.render(2, num_frames=24)
    assert long.frames.shape == (24, 32, 32, 3) and long.label == ds.render(2).label


# --------------------------------------------------------------------------------------------- list file


def _write(path, text):
    path.write_text(text)
    return path


def test_parse_video_list_and_errors(tmp_path):
    good = _write(tmp_path / "l.txt", "a/b 12 3\n\nvideos/with space.mp4 40 0\n")
    recs = parse_video_list(good, num_classes=4)
    assert [(r.path, r.num_frames, r.label, r.line) for r in recs] == [
        ("a/b", 12, 3, 1), ("videos/with space.mp4", 40, 0, 3)]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        parse_video_list(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="no entries"):
        parse_video_list(_write(tmp_path / "empty.txt", ""))
    with pytest.raises(ValueError, match="no entries"):
        parse_video_list(_write(tmp_path / "blank.txt", "\n  \n"))
    with pytest.raises(ValueError, match=r"bad1.txt', line 2: expected 'path num_frames label' \(3 fields\)"):
        parse_video_list(_write(tmp_path / "bad1.txt", "a 12 3\nb 12\n"))
    with pytest.raises(ValueError, match="line 1: num_frames must be an integer, got 'x'"):
        parse_video_list(_write(tmp_path / "bad2.txt", "a x 3\n"))
    with pytest.raises(ValueError, match="line 1: label must be an integer"):
        parse_video_list(_write(tmp_path / "bad3.txt", "a 12 3.5\n"))
    with pytest.raises(ValueError, match="line 1: num_frames must be >= 1"):
        parse_video_list(_write(tmp_path / "bad4.txt", "a 0 3\n"))
    with pytest.raises(ValueError, match=r"line 2: label 4 out of range, expected \[0, 4\)"):
        parse_video_list(_write(tmp_path / "bad5.txt", "a 12 3\nb 12 4\n"), num_classes=4)
    with pytest.raises(ValueError, match="line 1: label -1 out of range"):
        parse_video_list(_write(tmp_path / "bad6.txt", "a 12 -1\n"))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """8 synthetic clips of 20 frames written both as mp4 files and as JPEG frame folders."""
    root = tmp_path_factory.mktemp("synthetic_files")
    ds = SyntheticVideoDataset(8, num_frames=4, size=(48, 64), seed=4, distractor_prob=0.2)
    vlist = write_synthetic_videos(ds, root / "videos", 8, video_frames=20, layout="video") if HAVE_AV else None
    flist = write_synthetic_videos(ds, root / "frames", 8, video_frames=20, layout="frames")
    return ds, vlist, flist


@needs_av
def test_written_files_and_lists(written):
    ds, vlist, flist = written
    vrecs, frecs = parse_video_list(vlist), parse_video_list(flist)
    assert [(r.num_frames, r.label) for r in vrecs] == [(20, ds.label_of(i)) for i in range(8)]
    assert [(r.num_frames, r.label) for r in frecs] == [(20, ds.label_of(i)) for i in range(8)]
    root = os.path.dirname(vlist)
    assert V.probe_video(os.path.join(root, vrecs[0].path)).num_frames == 20
    assert sorted(os.listdir(os.path.join(os.path.dirname(flist), frecs[0].path)))[:2] == [
        "img_00001.jpg", "img_00002.jpg"]


@pytest.mark.parametrize("layout", [pytest.param("video", marks=needs_av), "frames"])
def test_list_dataset_eval_matches_official_pipeline(written, layout):
    ds, vlist, flist = written
    list_file = vlist if layout == "video" else flist
    data = VideoListDataset(os.path.dirname(list_file), list_file, num_frames=6, num_classes=14, size=40,
                            scale_size=(48, 64))
    assert len(data) == 8
    for i in (0, 5):
        clip, label = data[i]
        assert clip.shape == (6, 3, 40, 40) and clip.dtype == torch.float32
        assert label == ds.label_of(i)
        idx = V.official_val_indices(20, 6)
        assert idx == [1, 5, 8, 11, 15, 18]
        src = ds.render(i, num_frames=20).frames
        ref = V.preprocess_frames(src[idx], size=40, scale_size=(48, 64))
        err = float((clip - ref).abs().mean())
        assert err < 0.08, err  # codec / JPEG error only
        wrong = V.preprocess_frames(src[[0, 4, 9, 12, 14, 19]], size=40, scale_size=(48, 64))
        assert float((clip - wrong).abs().mean()) > 2 * err
        torch.testing.assert_close(data[i][0], clip, rtol=0, atol=0)  # evaluation is deterministic


@needs_av
def test_list_dataset_official_sizes(written):
    ds, vlist, _ = written
    data = VideoListDataset(os.path.dirname(vlist), vlist, num_frames=4)
    clip, _ = data[1]
    assert clip.shape == (4, 3, 224, 224)
    train = VideoListDataset(os.path.dirname(vlist), vlist, num_frames=4, train=True)
    torch.manual_seed(0)
    tclip, _ = train[1]
    assert tclip.shape == (4, 3, 224, 224)


def test_list_dataset_train_sampling_and_augmentation(written):
    ds, _, flist = written
    root = os.path.dirname(flist)
    train = VideoListDataset(root, flist, num_frames=5, train=True, size=40, scale_size=(48, 64))
    torch.manual_seed(123)
    a = [train[2][0] for _ in range(3)]
    torch.manual_seed(123)
    b = [train[2][0] for _ in range(3)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)  # reproducible under torch.manual_seed
    assert not torch.equal(a[0], a[1]) or not torch.equal(a[1], a[2])  # but random from call to call
    rec = train.records[2]
    d = 20 // 5
    for s in range(20):
        idx = train.sample_indices(rec, np.random.default_rng(s))
        assert all(x * d <= i < (x + 1) * d for x, i in enumerate(idx))


def test_multiscale_crop_follows_the_official_rule():
    rng = np.random.default_rng(0)
    sides = [240, 210, 180, 158]
    seen_pairs, seen_offsets = set(), set()
    for _ in range(400):
        top, left, ch, cw = multiscale_crop_params(240, 320, 224, rng)
        i, j = sides.index(ch), sides.index(cw)
        assert abs(i - j) <= 1
        assert (top, left) in fixed_crop_offsets(240, 320, ch, cw)
        assert 0 <= top and top + ch <= 240 and 0 <= left and left + cw <= 320
        seen_pairs.add((ch, cw))
        seen_offsets.add((top, left, ch, cw))
    assert len(seen_pairs) == 10  # 4 + 3 + 3 pairs with |i - j| <= 1
    assert len(seen_offsets) > 60
    # a side within 2 px of the output snaps to it
    assert {multiscale_crop_params(128, 128, 112, np.random.default_rng(s))[2] for s in range(50)} <= {
        128, 112, 96, 84}
    frames = np.random.default_rng(1).integers(0, 256, size=(3, 60, 80, 3), dtype=np.uint8)
    out = train_augment(frames, np.random.default_rng(2), size=32, scale_size=(48, 64))
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32


def test_short_videos_in_list_dataset(tmp_path, written):
    ds, _, _ = written
    root = tmp_path / "short"
    list_file = write_synthetic_videos(ds, root, [3], video_frames=3, layout="frames")
    official = VideoListDataset(root, list_file, num_frames=6, size=40, scale_size=(48, 64))
    clip, _ = official[0]
    for k in range(1, 6):
        torch.testing.assert_close(clip[k], clip[0], rtol=0, atol=0)  # frame 0 repeated (official behaviour)
    spread = VideoListDataset(root, list_file, num_frames=6, size=40, scale_size=(48, 64), short="spread")
    clip, _ = spread[0]
    torch.testing.assert_close(clip[1], clip[0], rtol=0, atol=0)
    torch.testing.assert_close(clip[3], clip[2], rtol=0, atol=0)
    assert not torch.equal(clip[1], clip[2]) and not torch.equal(clip[3], clip[4])
    train = VideoListDataset(root, list_file, num_frames=6, train=True, size=40, scale_size=(48, 64))
    assert train.sample_indices(train.records[0], np.random.default_rng(0)) == [0] * 6


@needs_av
def test_list_dataset_errors(tmp_path, written):
    ds, vlist, flist = written
    vroot, froot = os.path.dirname(vlist), os.path.dirname(flist)
    with pytest.raises(FileNotFoundError, match="no_list.txt"):
        VideoListDataset(vroot, os.path.join(vroot, "no_list.txt"))
    with pytest.raises(ValueError, match="no entries"):
        VideoListDataset(vroot, _write(tmp_path / "empty.txt", ""))
    with pytest.raises(ValueError, match="line 1: expected 'path num_frames label'"):
        VideoListDataset(vroot, _write(tmp_path / "bad.txt", "000000.mp4\n"))
    with pytest.raises(ValueError, match=r"label 9 out of range, expected \[0, 5\)"):
        VideoListDataset(vroot, _write(tmp_path / "lab.txt", "000000.mp4 20 9\n"), num_classes=5)
    with pytest.raises(FileNotFoundError, match=r"line 2: no such video file or frame folder .*gone.mp4"):
        VideoListDataset(vroot, _write(tmp_path / "gone.txt", "000000.mp4 20 1\ngone.mp4 20 1\n"))
    # undecodable video: found at construction, reported when read, naming the line
    (tmp_path / "junk.mp4").write_bytes(b"definitely not an mp4 file" * 10)
    data = VideoListDataset(tmp_path, _write(tmp_path / "junk.txt", "junk.mp4 20 0\n"), num_frames=4)
    with pytest.raises(ValueError, match=r"junk.txt', line 1: video: cannot decode '.*junk.mp4'"):
        data[0]
    # the list claims more frames than the video has
    data = VideoListDataset(vroot, _write(tmp_path / "long.txt", "000001.mp4 40 0\n"), num_frames=4)
    with pytest.raises(ValueError, match=r"line 1: .*only 20 decodable frames"):
        data[0]
    # a frame folder with a missing frame file
    data = VideoListDataset(froot, _write(tmp_path / "fr.txt", "000002 30 0\n"), num_frames=4)
    with pytest.raises(FileNotFoundError, match=r"line 1: missing frame file .*img_00027.jpg"):
        data[0]
    # a corrupt frame file
    bad_dir = tmp_path / "badframes"
    bad_dir.mkdir()
    for k in range(1, 5):
        (bad_dir / f"img_{k:05d}.jpg").write_bytes(b"not a jpeg")
    data = VideoListDataset(tmp_path, _write(tmp_path / "bf.txt", "badframes 4 0\n"), num_frames=2)
    with pytest.raises(ValueError, match="cannot decode frame file"):
        data[0]
    with pytest.raises(ValueError, match="image_tmpl"):
        VideoListDataset(vroot, vlist, image_tmpl="img_{:05d}_{}.jpg")
