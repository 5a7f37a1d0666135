"""dlsuite.tracking: tracking preparation, an overlap tracker and CTC tracking output.

- :func:`gap_fill` - temporal Gaussian gap filling of a mask video into per-frame instances
  (the original's TrackMate preparation, in float);
- :func:`track` - link instances frame to frame (LAP linking by ``laptrack``: overlap and
  distance costs, gap closing, division) into CTC-consistent tracks;
- :func:`merge_trackmate` - give TrackMate track ids to the segmentation's components;
- :func:`untracked` - one track per frame object (CTC-valid without linking);
- :func:`write_ctc_result` / :func:`write_res_track` / :func:`check_tracks` / :class:`Track` -
  CTC ``NN_RES`` folders (``maskTTT.tif`` + ``res_track.txt``), re-exported from the one CTC
  module :mod:`dlsuite.data.ctc` (``write_result`` / ``write_track_file`` there);
- :func:`track_folder` - all of it for a folder of videos (``dlsuite track``).
"""

from dlsuite.data.ctc import Track, check_tracks
from dlsuite.data.ctc import write_result as write_ctc_result
from dlsuite.data.ctc import write_track_file as write_res_track

from .folder import track_folder
from .gapfill import gap_fill
from .trackmate import merge_trackmate
from .tracker import track, untracked

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
