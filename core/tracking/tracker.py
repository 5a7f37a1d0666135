"""Overlap tracker: link per-frame instances into CTC tracks.

Linking is solved by ``laptrack`` (the maintained implementation of TrackMate's LAP linking,
Jaqaman et al. 2008): frame-to-frame linking, gap closing over up to ``gap_closing`` missing
frames, and division (splitting). Every instance ``(frame, label)`` is a detection at its
centroid; the cost of joining two detections ``a`` (earlier) and ``b`` is

* linking and gap closing: ``(1 - IoU(a, b)) + distance / max_distance``;
* division (``b`` a daughter of ``a``): ``(1 - |a ∩ b| / |b|) + distance / max_distance``;

and a join is forbidden when the centroids are more than ``max_distance`` pixels apart or when
the overlap covers less than ``min_overlap`` of the smaller object (``min_overlap = 0`` allows
joins by distance alone). The alternative costs (ending or starting a track, refusing a
division) are fixed at the cutoff, so any allowed join is preferred to a track ending next to
a track starting; the assignment is solved globally, so competing joins go to the cheapest
overall.

The result follows the CTC rules (:mod:`dlsuite.data.ctc`): each laptrack segment is cut
at its gaps into contiguous tracks chained by parent links, daughters point at their mother,
and labels are renumbered 1..n in order of (begin frame, old label).
"""

from __future__ import annotations

import math

import numpy as np

from dlsuite.data.ctc import Track
from dlsuite.errors import DataError

from .labels import as_label_video, check_video

__all__ = ["linking_problem", "track", "untracked"]

_FORBIDDEN = 1e9
_CUTOFF = 2.0 + 1e-6  # the largest allowed cost is 2 (no overlap, distance = max_distance)
# cost of ending or starting a track (and of refusing a division). laptrack accepts a join of
# cost c when c + (smallest cost of the frame) < end + start; with both at the cutoff every
# allowed join is accepted whatever the other objects of the frame, and competing joins are
# settled by the global assignment.
_ALTERNATIVE = _CUTOFF


def _detections(video: np.ndarray):
    """DataFrame of one row per (frame, label): centroid ``y``, ``x``."""
    import pandas as pd

    rows = []
    for t, frame in enumerate(video):
        ids, inverse, counts = np.unique(frame, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(frame.shape)
        yy, xx = np.indices(frame.shape)
        sy = np.bincount(inverse.ravel(), weights=yy.ravel())
        sx = np.bincount(inverse.ravel(), weights=xx.ravel())
        for k, lab in enumerate(ids):
            if lab:
                rows.append((t, int(lab), sy[k] / counts[k], sx[k] / counts[k]))
    return pd.DataFrame(rows, columns=["frame", "label", "y", "x"])


def _cost_functions(video: np.ndarray, max_distance: float, min_overlap: float):
    """``(link_cost, split_cost)`` taking two detection vectors ``(frame, label, y, x)``."""
    from laptrack.metric_utils import LabelOverlap

    overlaps = LabelOverlap(video)

    def make(split: bool):
        def cost(c1, c2) -> float:
            if c1[0] > c2[0]:
                c1, c2 = c2, c1
            distance = math.hypot(c1[2] - c2[2], c1[3] - c2[3])
            if distance > max_distance:
                return _FORBIDDEN
            _, iou, ratio_1, ratio_2 = overlaps.calc_overlap(
                int(c1[0]), int(c1[1]), int(c2[0]), int(c2[1]))
            if max(ratio_1, ratio_2) < min_overlap or (min_overlap > 0 and iou == 0):
                return _FORBIDDEN
            return (1.0 - (ratio_2 if split else iou)) + distance / max_distance

        return cost

    return make(False), make(True)


def _segments(frames: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(begin, end)`` of sorted frame numbers."""
    runs = []
    for t in frames:
        if runs and t == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def linking_problem(max_distance: float, min_overlap: float, gap_closing: int) -> str | None:
    """Why these linking options of :func:`track` are refused, or None when they are valid
    (NaN fails every comparison, so it is refused too)."""
    if not max_distance > 0 or not 0 <= min_overlap <= 1 or not gap_closing >= 0:
        return (f"track: need max_distance > 0, 0 <= min_overlap <= 1, gap_closing >= 0 "
                f"(got {max_distance}, {min_overlap}, {gap_closing})")
    return None


def track(
    label_video,
    *,
    max_distance: float = 50.0,
    min_overlap: float = 0.1,
    gap_closing: int = 2,
    splitting: bool = True,
) -> tuple[np.ndarray, list[Track]]:
    """Link the instances of ``label_video`` ``(T, H, W)`` (per-frame labels; each non-zero id
    of a frame is one object) into tracks.

    ``max_distance`` (pixels) bounds centroid displacement per link; ``min_overlap`` the
    overlap relative to the smaller object; ``gap_closing`` is the largest number of missing
    frames bridged (0: none); ``splitting`` allows divisions. Returns ``(relabelled_video,
    tracks)``: the video with one label per track (uint16, uint32 above 65535 tracks) and
    :class:`~dlsuite.data.ctc.Track` tuples consistent with it under the CTC rules.
    """
    video = check_video(label_video)
    problem = linking_problem(max_distance, min_overlap, gap_closing)
    if problem is not None:
        raise DataError(problem)
    detections = _detections(video)
    if detections.empty:
        return np.zeros(video.shape, np.uint16), []
    link_df = _link(video, detections, max_distance, min_overlap, gap_closing, splitting)
    return _to_ctc(video, link_df)


def _link(video, detections, max_distance, min_overlap, gap_closing, splitting):
    """laptrack's result: ``(detections with track_id, {child_track: parent_track})``."""
    import laptrack

    link_cost, split_cost = _cost_functions(video, max_distance, min_overlap)
    tracker = laptrack.LapTrack(
        metric=link_cost,
        cutoff=_CUTOFF,
        gap_closing_metric=link_cost,
        gap_closing_cutoff=_CUTOFF if gap_closing > 0 else False,
        gap_closing_max_frame_count=max(int(gap_closing) + 1, 1),
        splitting_metric=split_cost,
        splitting_cutoff=_CUTOFF if splitting else False,
        merging_cutoff=False,
        track_start_cost=_ALTERNATIVE,
        track_end_cost=_ALTERNATIVE,
        segment_start_cost=_ALTERNATIVE,
        segment_end_cost=_ALTERNATIVE,
        no_splitting_cost=_ALTERNATIVE,
        no_merging_cost=_ALTERNATIVE,
    )
    track_df, split_df, _ = tracker.predict_dataframe(
        detections, ["frame", "label", "y", "x"], only_coordinate_cols=False
    )
    parents = {}
    if len(split_df):
        parents = {int(c): int(p) for p, c in zip(split_df["parent_track_id"],
                                                  split_df["child_track_id"])}
    return track_df, parents


def _to_ctc(video: np.ndarray, link) -> tuple[np.ndarray, list[Track]]:
    """Cut laptrack tracks at gaps, renumber, and paint the new labels."""
    track_df, parents = link
    track_df = track_df.reset_index(drop=True)
    runs = []  # (begin, end, old track id, first old label) per contiguous piece
    pieces_of: dict[int, list[int]] = {}
    for tid, group in track_df.groupby("track_id"):
        group = group.sort_values("frame")
        for begin, end in _segments(group["frame"].astype(int).tolist()):
            first = int(group.loc[group["frame"] == begin, "label"].iloc[0])
            pieces_of.setdefault(int(tid), []).append(len(runs))
            runs.append((begin, end, int(tid), first))
    order = sorted(range(len(runs)), key=lambda k: (runs[k][0], runs[k][3]))
    new_label = {k: n + 1 for n, k in enumerate(order)}
    tracks = []
    for k in order:
        begin, end, tid, _ = runs[k]
        pieces = pieces_of[tid]
        index = pieces.index(k)
        if index > 0:
            parent = new_label[pieces[index - 1]]
        elif tid in parents:
            parent = new_label[pieces_of[parents[tid]][-1]]
        else:
            parent = 0
        tracks.append(Track(new_label[k], begin, end, parent))
    label_of_piece = {tid: [(runs[k][0], runs[k][1], new_label[k]) for k in pieces]
                      for tid, pieces in pieces_of.items()}
    out = np.zeros(video.shape, dtype=np.uint32)
    for t, group in track_df.groupby("frame"):
        t = int(t)
        frame = video[t]
        ids = group["label"].astype(np.int64).to_numpy()
        values = [_piece_label(label_of_piece, int(tid), t)
                  for tid in group["track_id"].to_numpy()]
        lut_ids = np.concatenate([[0], ids])
        lut_vals = np.concatenate([[0], values]).astype(np.uint32)
        sorter = np.argsort(lut_ids)
        pos = np.searchsorted(lut_ids, frame, sorter=sorter)
        out[t] = lut_vals[sorter][pos]
    return as_label_video(out), tracks


def _piece_label(label_of_piece: dict, tid: int, t: int) -> int:
    for begin, end, label in label_of_piece[tid]:
        if begin <= t <= end:
            return label
    raise AssertionError(f"frame {t} of track {tid} not in any piece")


def untracked(label_video) -> tuple[np.ndarray, list[Track]]:
    """Make per-frame instances CTC-valid without linking: every (frame, label) becomes its
    own one-frame track with a unique label. Returns ``(relabelled_video, tracks)``; for SEG
    evaluation (TRA needs :func:`track`)."""
    video = check_video(label_video)
    out = np.zeros(video.shape, dtype=np.uint32)
    tracks: list[Track] = []
    for t, frame in enumerate(video):
        ids, inverse = np.unique(frame, return_inverse=True)
        base = len(tracks)
        nonzero = ids != 0
        new = np.zeros(len(ids), np.uint32)
        new[nonzero] = base + np.arange(1, nonzero.sum() + 1)
        out[t] = new[inverse.reshape(frame.shape)]
        tracks += [Track(base + k, t, t, 0) for k in range(1, int(nonzero.sum()) + 1)]
    return as_label_video(out), tracks
