"""dlsuite.tracking: tracking preparation, an overlap tracker and CTC tracking output (SPEC P2-P3).

- :func:`gap_fill` - temporal Gaussian gap filling of a mask video into per-frame instances
  (the original's TrackMate preparation, in float);
- :func:`track` - link instances frame to frame (LAP linking by ``laptrack``: overlap and
  distance costs, gap closing, division) into CTC-consistent tracks;
- :func:`merge_trackmate` - give TrackMate track ids to the segmentation's components;
- :func:`write_res_track` / :func:`write_ctc_result` / :func:`untracked` - CTC ``NN_RES``
  folders (``maskTTT.tif`` + ``res_track.txt``);
- :func:`track_folder` - all of it for a folder of videos (``dlsuite track``).
"""

from .ctc import Track, check_tracks, untracked, write_ctc_result, write_res_track
from .folder import track_folder
from .gapfill import gap_fill
from .trackmate import merge_trackmate
from .tracker import track

__all__ = [
    "Track",
    "check_tracks",
    "gap_fill",
    "merge_trackmate",
    "track",
    "track_folder",
    "untracked",
    "write_ctc_result",
    "write_res_track",
]
