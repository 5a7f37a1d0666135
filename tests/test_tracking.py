"""Tracking preparation, overlap tracker, TrackMate merge and CTC output (core/tracking)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from dlsuite.cli.track import track as track_command
from dlsuite.data import ctc
from dlsuite.errors import DataError
from dlsuite.tracking import (
    Track,
    check_tracks,
    gap_fill,
    merge_trackmate,
    track,
    untracked,
    write_ctc_result,
    write_res_track,
)


def _disk(video, t, cy, cx, r, label):
    yy, xx = np.indices(video.shape[1:])
    video[t][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = label


def _dividing_video():
    """A moving cell (id 5) dividing at frame 4; a cell (id 300) missing at frame 5."""
    v = np.zeros((8, 64, 64), np.int32)
    for t in range(8):
        if t < 4:
            _disk(v, t, 30, 20 + t, 8, 5)
        else:
            _disk(v, t, 24, 24, 6, 1)
            _disk(v, t, 36, 24, 6, 2)
        if t != 5:
            _disk(v, t, 50, 50, 6, 300)
    return v


def _ctc_valid(res_dir) -> int:
    from ctc_metrics.scripts.validate import validate_sequence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_sequence(str(res_dir), threads=1)["Valid"]


# --------------------------------------------------------------------------------------------
# gap filling


def test_gap_fill_bridges_a_missing_frame_in_float():
    masks = np.zeros((7, 60, 60), np.uint8)
    for t in range(7):
        if t != 3:
            masks[t, 10:30, 10:30] = 1
    masks[:, 50:52, 50:52] = 1  # 4 px (with its halo still below min_size)
    out = gap_fill(masks, sigma=2, min_size=100)
    assert out.dtype == np.uint16
    assert out[3, 20, 20] == 1  # the gap is filled
    assert out[:, 51, 51].max() == 0  # small objects dropped
    big = masks.copy()
    big[:, 50:52, 50:52] = 0
    assert np.all(out[big > 0] > 0)  # input foreground kept
    # without filling, the frame stays empty
    assert gap_fill(masks, sigma=0, threshold=0.5, min_size=100)[3].max() == 0


def test_gap_fill_threshold_is_explicit_not_a_uint8_truncation():
    masks = np.zeros((9, 30, 30), np.uint8)
    masks[4, 10:20, 10:20] = 1
    wide = gap_fill(masks, sigma=2, threshold=1e-6, min_size=1)
    narrow = gap_fill(masks, sigma=2, threshold=0.2, min_size=1)
    assert (wide[0] > 0).sum() > 0 and (narrow[0] > 0).sum() == 0
    assert (wide > 0).sum() > (narrow > 0).sum()


# --------------------------------------------------------------------------------------------
# tracker


def test_tracker_links_a_dividing_cell_and_closes_a_gap():
    video = _dividing_video()
    out, tracks = track(video, gap_closing=1)
    assert check_tracks(out, tracks) == []
    by_begin = sorted(tracks, key=lambda t: (t.begin, t.label))
    mother = out[0, 30, 20]
    daughters = {int(out[4, 24, 24]), int(out[4, 36, 24])}
    assert len(daughters) == 2 and mother not in daughters
    assert {t.parent for t in tracks if t.label in daughters} == {mother}
    assert [t for t in tracks if t.label == mother][0].end == 3
    # the cell missing at frame 5: a track ending at 4, and a new one from 6 with it as parent
    before, after = int(out[4, 50, 50]), int(out[6, 50, 50])
    assert before != after
    assert Track(after, 6, 7, before) in tracks
    assert len(by_begin) == 5


def test_tracker_without_splitting_or_gap_closing():
    video = _dividing_video()
    out, tracks = track(video, gap_closing=0, splitting=False)
    assert check_tracks(out, tracks) == []
    assert all(t.parent == 0 for t in tracks)


def test_tracker_far_objects_are_not_linked():
    v = np.zeros((2, 40, 80), np.int32)
    _disk(v, 0, 20, 10, 5, 1)
    _disk(v, 1, 20, 70, 5, 1)  # same id, 60 px away
    out, tracks = track(v, max_distance=30, min_overlap=0)
    assert len(tracks) == 2 and out[0, 20, 10] != out[1, 20, 70]
    out, tracks = track(v, max_distance=80, min_overlap=0)
    assert len(tracks) == 1


def test_tracker_handles_more_than_255_tracks_and_empty_frames():
    v = np.zeros((3, 40, 120), np.int32)
    k = 0
    for y in range(0, 40, 4):
        for x in range(0, 120, 4):
            k += 1
            v[0, y : y + 2, x : x + 2] = k  # 300 tiny cells over 2 frames (frame 2 empty)
            v[1, y : y + 2, x : x + 2] = k + 5000
    out, tracks = track(v, max_distance=3)
    assert out.dtype == np.uint16 and int(out.max()) == 300 and len(tracks) == 300
    assert all(t.begin == 0 and t.end == 1 for t in tracks)
    assert check_tracks(out, tracks) == []
    assert track(np.zeros((3, 8, 8), np.uint8))[1] == []


def test_tracker_bad_input():
    with pytest.raises(DataError, match="video"):
        track(np.zeros((8, 8), np.int32))
    with pytest.raises(DataError, match="integer"):
        track(np.zeros((2, 8, 8), np.float32))


# --------------------------------------------------------------------------------------------
# TrackMate merge


def test_merge_trackmate_gives_ids_above_255_without_wrapping():
    seg = np.zeros((2, 20, 30), np.uint8)
    seg[:, 2:10, 2:10] = 1
    seg[:, 12:18, 12:28] = 1
    tm = np.zeros((2, 20, 30), np.uint32)
    tm[:, 4:8, 4:8] = 300  # overlaps the first component
    tm[0, 13:16, 13:20] = 1000  # overlaps the second component ...
    tm[0, 13:15, 20:27] = 70  # ... less than track 1000 overlaps it: 70 keeps its own region
    tm[1, 0:2, 25:29] = 70000  # no overlap: region copied
    out = merge_trackmate(seg, tm)
    assert out.dtype == np.uint32
    assert np.all(out[:, 2:10, 2:10] == 300)
    assert np.all(out[0, 12:18, 12:28][seg[0, 12:18, 12:28] > 0] == 1000)
    assert np.all(out[1, 0:2, 25:29] == 70000)
    assert (out[0] == 70).sum() == 0  # region of 70 lies inside object 1000 (already filled)
    with pytest.raises(DataError, match="shapes"):
        merge_trackmate(seg, tm[:1])


# --------------------------------------------------------------------------------------------
# CTC output


def test_write_ctc_result_is_valid_for_the_official_checker(tmp_path):
    out, tracks = track(_dividing_video(), gap_closing=1)
    res = write_ctc_result(tmp_path / "01_RES", out, tracks)
    assert sorted(p.name for p in res.iterdir())[:2] == ["mask000.tif", "mask001.tif"]
    mask = tifffile.imread(res / "mask004.tif")
    assert mask.dtype == np.uint16 and np.array_equal(mask, out[4])
    lines = (res / "res_track.txt").read_text().splitlines()
    assert len(lines) == len(tracks) and all(len(line.split()) == 4 for line in lines)
    assert _ctc_valid(res) == 1


def test_write_ctc_result_refuses_inconsistent_tracks(tmp_path):
    video = np.zeros((3, 8, 8), np.uint16)
    video[0, 1, 1] = video[2, 1, 1] = 1  # label 1 with a gap
    with pytest.raises(DataError, match="track 1"):
        write_ctc_result(tmp_path / "01_RES", video, [Track(1, 0, 2, 0)])
    relabelled, tracks = untracked(video)
    assert len(tracks) == 2 and check_tracks(relabelled, tracks) == []
    write_res_track(tmp_path / "t.txt", [Track(2, 0, 1, 0), Track(1, 0, 0, 0)])
    assert (tmp_path / "t.txt").read_text() == "1 0 0 0\n2 0 1 0\n"


def test_track_command_writes_ctc_folders(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a.tif", _dividing_video().astype(np.uint16))
    binary = (_dividing_video() > 0).astype(np.uint8)
    tifffile.imwrite(src / "b.tif", binary)
    result = CliRunner().invoke(track_command, [str(src), str(tmp_path / "out"),
                                                "--gap-closing", "1"])
    assert result.exit_code == 0, result.output
    assert "01_RES" in result.output and "2 divisions" in result.output
    assert "3 tracks, 1 division\n" in result.output  # one division, not "1 divisions"
    assert _ctc_valid(tmp_path / "out" / "01_RES") == 1
    assert _ctc_valid(tmp_path / "out" / "02_RES") == 1
    assert (tmp_path / "out" / "sequences.csv").read_text().splitlines()[1] == "01,a.tif"
    bad = CliRunner().invoke(track_command, [str(tmp_path / "missing"), str(tmp_path / "o")])
    assert isinstance(bad.exception, DataError)


# --------------------------------------------------------------------------------------------
# real data (skipped when ../shared/data is absent)

_REAL = __import__("pathlib").Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
_SET1 = _REAL / "usiigaci_t98g_phc" / "annotated" / "set1" / "instances_ids.png"


@pytest.mark.skipif(not _SET1.exists(), reason="real data ../shared/data not present")
def test_tracker_follows_real_cells_drifting_over_frames():
    """Manually labelled T98G cells seen through a window drifting 3 px/frame, relabelled at
    random in every frame: every cell fully inside the window in all frames is one track over
    all frames, and keeps it."""
    from dlsuite.data.io import read_image

    labels = read_image(_SET1).astype(np.int32)
    rng = np.random.default_rng(0)
    frames, truth = [], []
    for t in range(6):
        crop = labels[20 - 3 * t : 1000 - 3 * t, 20 - 2 * t : 1000 - 2 * t]
        ids = np.unique(crop)[1:]
        lut = np.zeros(int(labels.max()) + 1, np.int32)
        lut[ids] = rng.permutation(len(ids)) + 1  # unrelated ids per frame
        frames.append(lut[crop])
        truth.append(crop)
    video, truth = np.stack(frames), np.stack(truth)
    out, tracks = track(video, max_distance=20, gap_closing=0)
    assert check_tracks(out, tracks) == []
    inside = [c for c in np.unique(labels)[1:]
              if all((frame == c).sum() == (labels == c).sum() for frame in truth)]
    assert len(inside) > 30
    by_label = {t.label: t for t in tracks}
    seen = set()
    for c in inside:
        got = {int(v) for v in np.unique(out[truth == c])}
        assert len(got) == 1, f"cell {c} split over tracks {got}"
        tr = by_label[got.pop()]
        assert (tr.begin, tr.end, tr.parent) == (0, 5, 0)
        seen.add(tr.label)
    assert len(seen) == len(inside)  # no two cells share a track


# --------------------------------------------------------------------------------------------
# synthetic moving and dividing discs, scored by py-ctcmetrics


def _discs():
    """10 frames of 96x96: (ground-truth label video, man_track rows, per-frame instances).

    Track 1 moves right, track 2 moves down and divides at frame 5 into tracks 3 and 4
    (moving apart vertically), track 5 moves diagonally. The instance video given to the
    tracker has unrelated, shuffled labels in every frame."""
    n, size = 10, 96
    gt = np.zeros((n, size, size), np.uint16)
    for t in range(n):
        _disk(gt, t, 15, 10 + 3 * t, 7, 1)
        if t < 5:
            _disk(gt, t, 40 + 2 * t, 50, 9, 2)
        else:
            d = 4 + 2 * (t - 5)
            _disk(gt, t, 50 - d, 50, 6, 3)
            _disk(gt, t, 50 + d, 50, 6, 4)
        _disk(gt, t, 60 + 2 * t, 10 + 2 * t, 7, 5)
    rows = [(1, 0, 9, 0), (2, 0, 4, 0), (3, 5, 9, 2), (4, 5, 9, 2), (5, 0, 9, 0)]
    rng = np.random.default_rng(0)
    shuffled = np.zeros_like(gt, dtype=np.int32)
    for t in range(n):
        lut = np.zeros(6, np.int32)
        lut[1:] = rng.permutation(5) * 7 + 11  # unrelated ids per frame
        shuffled[t] = lut[gt[t]]
    return gt, rows, shuffled


def test_tracker_on_moving_and_dividing_discs_has_perfect_tra(tmp_path):
    import contextlib
    import io

    from ctc_metrics import evaluate_sequence

    gt, rows, instances = _discs()
    for t in range(10):  # the discs never touch: every track is one whole disc
        assert np.unique(gt[t]).tolist() == ([0, 1, 2, 5] if t < 5 else [0, 1, 3, 4, 5])
    gt_dir = ctc.write_ground_truth(tmp_path / "01_GT", gt, rows)

    out, tracks = track(instances, max_distance=20, gap_closing=1)
    assert sum(1 for tr in tracks if tr.parent) == 2  # the two daughters
    res = write_ctc_result(tmp_path / "01_RES", out, tracks)
    assert _ctc_valid(res) == 1
    with contextlib.redirect_stdout(io.StringIO()):
        scores = evaluate_sequence(str(res), str(gt_dir), ["DET", "TRA"], threads=1)
    assert scores["DET"] == 1.0 and scores["TRA"] == 1.0

    # the score is not vacuous: the same result without the division links is not perfect
    orphaned = [Track(tr.label, tr.begin, tr.end, 0) for tr in tracks]
    bad = write_ctc_result(tmp_path / "02_RES", out, orphaned)
    with contextlib.redirect_stdout(io.StringIO()):
        worse = evaluate_sequence(str(bad), str(gt_dir), ["TRA"], threads=1)
    assert worse["TRA"] < 1.0


def test_merge_trackmate_with_300_tracks_keeps_every_id():
    """300 cells as one 0/1 mask, TrackMate ids 1..300 (shuffled between frames): every id
    survives, on exactly its cell, and nothing wraps at 255."""
    seg = np.zeros((2, 60, 200), np.uint8)
    tm = np.zeros((2, 60, 200), np.uint16)
    rng = np.random.default_rng(1)
    cells = [(y, x) for y in range(0, 60, 6) for x in range(0, 200, 6)][:300]
    assert len(cells) == 300
    for t in range(2):
        ids = rng.permutation(300) + 1
        for (y, x), track_id in zip(cells, ids):
            seg[t, y : y + 4, x : x + 4] = 1
            tm[t, y + 1 : y + 3, x + 1 : x + 3] = track_id  # TrackMate spots inside the cells
    out = merge_trackmate(seg, tm)
    for t in range(2):
        assert set(np.unique(out[t]).tolist()) == set(range(301))
        for y, x in cells:
            assert np.all(out[t, y : y + 4, x : x + 4] == tm[t, y + 1, x + 1])
    assert np.array_equal(out > 0, seg > 0)
