"""``data.videos_csv``: a test set of 2D frames evaluated as the videos they came from.

A test set written by ``dlsuite prepare frames`` (or the original suite's ``stack2im``) is a
folder of frames plus ``videos2im_relation.csv`` saying which frame is which frame of which
video. With ``data.videos_csv`` naming that file, ``dlsuite run`` and ``dlsuite test``
rebuild the test videos (inputs and labels, dtypes kept) under the prediction folder of the
run, ``<inference.output_folder>/test_videos/``, and predict, track and score those videos:
a temporal model sees each frame with the frames before it, and tracking and the CTC
folders work as for a test set of videos. :func:`relation_problems` checks the relation
against the test folder when the config is validated, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from dlsuite.errors import DlsuiteInputError

__all__ = ["TEST_VIDEOS", "relation_problems"]

#: Folder of the rebuilt videos (:func:`dlsuite.data.prepare.frames_to_videos`), inside the
#: run's prediction folder.
TEST_VIDEOS = "test_videos"


def relation_problems(videos_csv: str, test: str | None, layout: str) -> list[str]:
    """What keeps ``videos_csv`` from rebuilding the test set ``test`` (``data.layout``
    ``layout``) into videos: an unreadable relation, no test set, a test set that is not in
    the frames layout, a frame index of the relation with no input frame, an input frame in
    no video, or frames of one video of different shapes or dtypes. Empty when the videos can
    be rebuilt. Reads the CSV, file names and image headers only."""
    from .layouts import _listing, detect_layout, frame_token, list_samples
    from .prepare import read_relation

    try:
        relation = read_relation(videos_csv)
    except DlsuiteInputError as exc:
        return [str(exc)]
    if test is None:
        return [f"{videos_csv}: data.videos_csv is set but data.test is not: there are no "
                "test frames to rebuild into videos"]
    if not Path(test).is_dir():
        return []  # reported at $.data.test
    try:
        resolved = detect_layout(test) if layout == "auto" else layout
    except DlsuiteInputError:
        return []  # reported at $.data.test
    if resolved != "frames":
        return [f"{videos_csv}: relates 2D frames to videos, but data.test ({test}) is in the "
                f"{resolved} layout; leave data.videos_csv out"]
    try:
        samples = list_samples(test, "frames", require_labels=False)
    except DlsuiteInputError:
        return []  # reported at $.data.test
    by_index = {frame_token(s.image.stem): s for s in samples}
    listed = {i for indices in relation.values() for i in indices}
    missing = [f"{video} frame {f} (index {i})" for video, indices in relation.items()
               for f, i in enumerate(indices) if i not in by_index]
    problems = []
    if missing:
        problems.append(f"{videos_csv}: {len(missing)} frame(s) of its videos have no input "
                        f"frame in {test}: {_listing(missing)}")
    unlisted = sorted(s.image.name for i, s in by_index.items() if i not in listed)
    if unlisted:
        problems.append(f"{videos_csv}: {len(unlisted)} test frame(s) of {test} belong to no "
                        f"video of it: {_listing(unlisted)}")
    if not problems:
        problems += _mismatched_frames(relation, by_index)
    return problems


def _mismatched_frames(relation: dict[str, list[int]], samples: dict) -> list[str]:
    """Frames of one video whose shape or dtype differ from its first frame (input or
    label file; headers only): they could not be stacked into the video."""
    from .io import read_info

    problems = []
    for video, indices in relation.items():
        for attr in ("image", "labels"):
            paths = [getattr(samples[i], attr) for i in indices]
            if any(p is None for p in paths):
                continue
            first = read_info(paths[0])
            for path in paths[1:]:
                info = read_info(path)
                if (info.shape, info.dtype) != (first.shape, first.dtype):
                    problems.append(f"{path}: {info.shape} {info.dtype} differs from "
                                    f"{paths[0].name} {first.shape} {first.dtype}, an earlier "
                                    f"frame of video {video}")
                    break
    return problems

