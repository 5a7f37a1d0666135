"""Find what to compare in a (RES, GT) pair of paths.

Two kinds of input are recognised, tried in this order:

1. CTC folders. ``RES`` is a sequence folder (``NN_RES``, or any folder holding
   ``maskTTT.tif`` when ``GT`` is CTC ground truth) and ``GT`` is its ``NN_GT`` folder (or a
   folder holding that ``NN_GT``, or a single one); or
   ``RES`` is a root holding ``NN_RES`` folders (directly or in sub-folders such as
   ``DATASET/NN_RES``) and ``GT`` the root holding the matching ``NN_GT`` at the same
   relative place (it may be the same root), or the one ``NN_GT`` folder when ``RES`` holds a
   single sequence; ``RES`` may be ``dlsuite predict --ctc``'s output folder (its
   ``ctc/NN_RES``) with ``GT`` the CTC dataset it predicted. Every sequence is evaluated,
   ``01`` included.
2. Folders of label images (any format ``dlsuite.data.io`` reads, 2D or videos), paired by
   identical file names; or two single label files. ``GT`` may be a dataset folder
   (``inputs/`` + ``labels/``, frames or videos layout): its labels are paired with results
   named as their label files or as their input images (``raw_001.tif`` with
   ``labels/instance_ids_001.tif``, as ``dlsuite predict`` names what it predicts of that
   dataset); so may its ``labels/`` folder. ``RES`` may be the output folder of
   ``dlsuite predict``: its ``labels/``.

CTC names (``NN_RES``, ``NN_GT``, ``SEG``, ``TRA``, ``maskTTT.tif``) are those of
:mod:`dlsuite.data.ctc`, matched in any case.

Unpaired sequences or files raise DataError naming them.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from dlsuite.data import ctc
from dlsuite.data.io import is_image_file
from dlsuite.errors import DataError

_MAX_DEPTH = 3


@attrs.frozen
class Pair:
    """One thing to evaluate: a CTC sequence (``kind="ctc"``, folders) or a label image or
    video (``kind="files"``, files), named ``name`` in the outputs."""

    kind: str
    name: str
    res: Path
    gt: Path


def _res_number(folder: Path) -> str | None:
    return ctc.folder_sequence(folder.name, "RES")


def _is_ctc_res(folder: Path) -> bool:
    return bool(_res_number(folder)) or bool(ctc.list_frames(folder, "res"))


def _res_folders(root: Path) -> list[Path]:
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if _res_number(child):
                found.append(child)
            elif depth < _MAX_DEPTH:
                walk(child, depth + 1)

    walk(root, 1)
    return found


def _gt_sequences(gt: Path) -> list[Path]:
    return sorted(p for p in gt.iterdir() if p.is_dir() and ctc.folder_sequence(p.name, "GT"))


def _single_sequence(res: Path, gt: Path) -> list[Pair] | None:
    """Pair a sequence folder ``res`` with ``gt`` (an NN_GT folder, or a folder holding the
    matching NN_GT, or holding exactly one NN_GT when ``res`` is not named NN_RES)."""
    num = _res_number(res)
    candidates = _gt_sequences(gt)
    if ctc.is_ground_truth(gt):
        gt_dir = gt
    elif num and ctc.gt_folder(gt, num).is_dir():
        gt_dir = ctc.gt_folder(gt, num)
    elif not num and len(candidates) == 1:
        gt_dir = candidates[0]
    elif not num and not candidates:
        return None  # maskTTT.tif files but no CTC ground truth: plain label folders
    else:
        raise DataError(
            f"{gt}: not a CTC ground-truth folder for {res} (expected SEG/ or TRA/ inside, "
            f"or a {num or 'NN'}_GT folder)"
        )
    return [Pair("ctc", num or res.name, res, gt_dir)]


def _ctc_roots(res: Path, gt: Path, res_dirs: list[Path]) -> list[Pair]:
    pairs, missing = [], []
    for rd in res_dirs:
        rel = rd.parent.relative_to(res)
        num = _res_number(rd)
        gd = ctc.gt_folder(gt / rel, num)
        if (not gd.is_dir() and rel.parts[:1] == (ctc.PREDICT_CTC_FOLDER,)
                and ctc.gt_folder(gt / Path(*rel.parts[1:]), num).is_dir()):
            # dlsuite predict --ctc's OUT/ctc/NN_RES against the CTC dataset it predicted
            rel = Path(*rel.parts[1:])
            gd = ctc.gt_folder(gt / rel, num)
        name = str(rel / num) if str(rel) != "." else num
        if gd.is_dir():
            pairs.append(Pair("ctc", name, rd, gd))
        else:
            missing.append(str(gd))
    if missing:
        raise DataError("no ground truth for result sequence(s): " + ", ".join(missing))
    return pairs


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file() and is_image_file(p)}


def _result_files(res: Path) -> dict[str, Path]:
    """The label images of ``res``, or of its ``labels/`` (a ``dlsuite predict`` output
    folder: ``labels/`` beside ``probabilities/``, no image of its own)."""
    found = _images_in(res)
    if not found and (res / "labels").is_dir():
        found = _images_in(res / "labels")
    return found


def _is_dataset(gt: Path) -> bool:
    """``gt`` is a dataset folder: ``inputs/`` and ``labels/``, no label image of its own."""
    return (gt / "inputs").is_dir() and (gt / "labels").is_dir() and not _images_in(gt)


def _dataset_truth(gt: Path, result_names: set[str]) -> dict[str, Path] | None:
    """The label files of a dataset folder ``gt`` (``inputs/`` + ``labels/``, frames or
    videos layout) keyed by the name the results give each: its own name, or the name of its
    input image when only that one is among ``result_names``. None when ``gt`` is not a
    dataset folder."""
    if not _is_dataset(gt):
        return None
    from dlsuite.data.layouts import list_samples

    truth = {}
    for sample in list_samples(gt, require_labels=False):
        if sample.labels is None or sample.layout not in ("frames", "videos"):
            continue
        by_input = sample.image.name in result_names and sample.labels.name not in result_names
        truth[sample.image.name if by_input else sample.labels.name] = sample.labels
    return truth


def _files(res: Path, gt: Path) -> list[Pair]:
    if res.is_file() or gt.is_file():
        if not (res.is_file() and gt.is_file()):
            raise DataError(f"cannot compare {res} with {gt}: give two files or two folders")
        return [Pair("files", res.name, res, gt)]
    res_files = _result_files(res)
    if not res_files:
        raise DataError(
            f"{res}: no CTC sequence (NN_RES with maskTTT.tif) and no label image found"
        )
    gt_files = _dataset_truth(gt, set(res_files))
    if gt_files is None and gt.name == "labels":  # a dataset's labels/: paired as the dataset
        gt_files = _dataset_truth(gt.parent, set(res_files))
    if gt_files is None:
        gt_files = _images_in(gt)
    only_res = sorted(set(res_files) - set(gt_files))
    only_gt = sorted(set(gt_files) - set(res_files))
    if only_res or only_gt:
        parts = []
        if only_res:
            parts.append(f"no ground truth in {gt} for: {', '.join(only_res[:20])}")
        if only_gt:
            parts.append(f"no result in {res} for: {', '.join(only_gt[:20])}")
        if only_res and gt.is_dir() and _gt_sequences(gt):
            parts.append(f"{gt} is CTC ground truth (NN_GT folders): compare CTC results "
                         "with it, e.g. those of dlsuite predict --ctc (OUT, or OUT/ctc)")
        raise DataError("unpaired label images; " + "; ".join(parts))
    return [Pair("files", n, res_files[n], gt_files[n]) for n in sorted(res_files)]


def discover(res: str | Path, gt: str | Path) -> list[Pair]:
    """The list of :class:`Pair` to evaluate for the paths ``res`` and ``gt`` (see the module
    docstring). Raises DataError when a path is missing, nothing is found, or something is
    unpaired."""
    res, gt = Path(res), Path(gt)
    for p, what in ((res, "result"), (gt, "ground truth")):
        if not p.exists():
            raise DataError(f"{p}: {what} path not found")
    if res.is_dir() and gt.is_dir():
        if _is_ctc_res(res):
            single = _single_sequence(res, gt)
            if single is not None:
                return single
        else:
            res_dirs = _res_folders(res)
            if res_dirs and not _is_dataset(gt):  # else: dlsuite predict's labels/ of it
                if ctc.is_ground_truth(gt) and len(res_dirs) == 1:
                    return [Pair("ctc", _res_number(res_dirs[0]), res_dirs[0], gt)]
                return _ctc_roots(res, gt, res_dirs)
    return _files(res, gt)
