"""Merge a TrackMate label image back onto the segmentation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from dlsuite.errors import DataError

from .labels import as_label_video, check_video

__all__ = ["merge_trackmate"]


def _components(frame: np.ndarray) -> np.ndarray:
    """Objects of a segmentation frame: its labels, or 8-connected components of a 0/1 mask."""
    if frame.dtype == np.bool_ or (frame.size and int(frame.max()) <= 1):
        return ndi.label(frame != 0, structure=np.ones((3, 3), bool))[0]
    return frame.astype(np.int64, copy=False)


def merge_trackmate(segmentation_video, trackmate_label_video) -> np.ndarray:
    """Track ids painted onto the segmentation, per frame ``(T, H, W)``.

    For every track id of a frame of ``trackmate_label_video`` (pixels hold the track id, as
    TrackMate's label-image export), the segmentation object it overlaps most (a component of a
    0/1 mask, or an instance label) takes the id as a whole; an object claimed by several tracks
    goes to the one overlapping it most. A track left without an object (no overlap, or its
    object went to another track) is copied as its own (gap-filled) region where the output is
    still empty. The output dtype is uint16, or uint32
    when ids exceed 65535: ids never wrap (the original's uint8 wrapped above 255).
    """
    seg = check_video(segmentation_video, "segmentation video")
    tm = check_video(trackmate_label_video, "TrackMate label video")
    if seg.shape != tm.shape:
        raise DataError(
            f"merge_trackmate: segmentation {seg.shape} and TrackMate {tm.shape} shapes differ"
        )
    out = np.zeros(seg.shape, dtype=np.uint64)
    for t in range(seg.shape[0]):
        comps = _components(seg[t])
        both = (comps > 0) & (tm[t] > 0)
        pairs, counts = np.unique(
            np.stack([tm[t][both].astype(np.int64), comps[both]]), axis=1, return_counts=True
        )
        # best object per track, then best track per object (largest overlap wins)
        best: dict[int, tuple[int, int]] = {}
        for (track_id, obj), n in zip(pairs.T.tolist(), counts.tolist()):
            if n > best.get(track_id, (0, -1))[1]:
                best[track_id] = (obj, n)
        owner: dict[int, tuple[int, int]] = {}
        for track_id, (obj, n) in best.items():
            if n > owner.get(obj, (0, -1))[1]:
                owner[obj] = (track_id, n)
        lut = np.zeros(int(comps.max()) + 1, dtype=np.uint64)
        for obj, (track_id, _) in owner.items():
            lut[obj] = track_id
        frame = lut[comps]
        placed = [track_id for track_id, _ in owner.values()]
        for track_id in np.setdiff1d(np.unique(tm[t]), [0, *placed]):
            frame[(tm[t] == track_id) & (frame == 0)] = track_id
        out[t] = frame
    return as_label_video(out)
