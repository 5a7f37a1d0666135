"""Loading one dataset :class:`~dlsuite.data.layouts.Sample` (any layout) as ``(T, H, W)``
arrays with the indices of its annotated frames, checking on the pixels what
:func:`dlsuite.data.layouts.check_dataset` checks on headers. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from dlsuite.data import ctc
from dlsuite.data.io import ImageInfo, read_image
from dlsuite.data.layouts import (LoadedSample, Sample, _file_problems, _label_dtype_problem,
                                  _raise, whole_number_labels, ctc_seg_files)

__all__ = ["load_sample"]


def _as_video(array: np.ndarray) -> np.ndarray:
    return array[np.newaxis] if array.ndim == 2 else array


def _load_files(sample: Sample) -> LoadedSample:
    image = read_image(sample.image)
    if sample.labels is None:
        video = _as_video(image)
        return LoadedSample(sample.name, video, None, np.zeros(0, dtype=np.int64))
    labels = whole_number_labels(sample.labels, read_image(sample.labels))
    info = lambda a: ImageInfo(a.shape, a.dtype)  # noqa: E731
    _raise(_file_problems(sample, info(image), info(labels)))
    video = _as_video(image)
    n = video.shape[0]
    if sample.layout == "frames" and n > 1 and labels.ndim == 2:
        full = np.zeros(video.shape, dtype=labels.dtype)  # clip: target is the last frame
        full[-1] = labels
        return LoadedSample(sample.name, video, full, np.array([n - 1], dtype=np.int64))
    return LoadedSample(sample.name, video, _as_video(labels), np.arange(n, dtype=np.int64))


def _load_ctc(sample: Sample) -> LoadedSample:
    indices, image = ctc.read_sequence(sample.image, "image")
    position = {index: i for i, index in enumerate(indices)}
    first = image[0]
    if sample.labels is None:
        return LoadedSample(sample.name, image, None, np.zeros(0, dtype=np.int64))
    segs = [(index, path, whole_number_labels(path, read_image(path)))
            for index, path in ctc_seg_files(sample.labels)]
    problems = []
    for index, path, seg in segs:
        problems += _label_dtype_problem(path, seg.dtype)
        if index not in position:
            problems.append(f"{path}: no frame {ctc.frame_name('image', index)} in "
                            f"{sample.image}")
        if seg.shape != first.shape:
            problems.append(f"{path}: label shape {seg.shape} does not match frame {first.shape}")
    _raise(problems)
    dtype = np.result_type(*[seg.dtype for _, _, seg in segs]) if segs else np.uint16
    labels = np.zeros(image.shape, dtype=dtype)
    annotated = []
    for index, _, seg in segs:
        labels[position[index]] = seg
        annotated.append(position[index])
    return LoadedSample(sample.name, image, labels, np.array(sorted(annotated), dtype=np.int64))


_LOADERS = {"frames": _load_files, "videos": _load_files, "ctc": _load_ctc}


def load_sample(sample: Sample) -> LoadedSample:
    """Load a :class:`Sample` as ``(T, H, W)`` arrays (see :class:`LoadedSample`).

    Raises DataError naming the file for unreadable images, shape mismatches and labels
    that are not whole numbers. Dtypes are kept as stored, except float labels of whole
    numbers, read as int32.
    """
    return _LOADERS[sample.layout](sample)
