"""The inputs of ``dlsuite predict``: :func:`list_inputs` finds the images, videos, CTC
sequences or dataset samples under a path, each an :class:`InputItem` that checks and loads
its pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import attrs
import numpy as np

from .errors import DataError, DlsuiteInputError

log = logging.getLogger("dlsuite.predict")


@attrs.frozen
class InputItem:
    """One input to predict: ``name`` (output file stem) and ``path`` (a file; a CTC
    sequence folder when ``ctc_sequence``). With ``frames``, the input is the video stacked
    from those 2D image files in order (``path`` is their folder)."""

    name: str
    path: Path
    ctc_sequence: bool = False
    frames: tuple = ()

    def load(self) -> np.ndarray:
        """The pixels: ``(H, W)`` or ``(T, H, W)`` as stored (a CTC sequence or a stack of
        frames is a video). DataError naming the file for unreadable or mismatched frames."""
        from .data.io import read_image
        from .data.layouts import Sample
        from .data.sample_loading import load_sample

        if self.ctc_sequence:
            return load_sample(Sample(self.name, "ctc", self.path, None)).image
        if self.frames:
            first = read_image(self.frames[0])
            video = np.empty((len(self.frames),) + first.shape, dtype=first.dtype)
            for t, frame_path in enumerate(self.frames):
                frame = first if t == 0 else read_image(frame_path)
                if frame.shape != first.shape or frame.dtype != first.dtype:
                    raise DataError(f"{frame_path}: frame {frame.shape} {frame.dtype} differs "
                                    f"from {self.frames[0].name} {first.shape} {first.dtype}")
                video[t] = frame
            return video
        return read_image(self.path)

    def check(self) -> tuple[int, ...] | None:
        """Read the file headers (not the pixels) and return the input's shape (``(H, W)``
        or ``(T, H, W)``; None for a CTC sequence, checked when loaded): DataError naming
        the file when it is unreadable or not a 2D image / video (stacked frames: not 2D or
        of different shapes)."""
        from .data.io import read_info

        if self.ctc_sequence:
            return None
        if self.frames:
            shapes = {}
            for frame_path in self.frames:
                shape = read_info(frame_path).shape
                if len(shape) != 2:
                    raise DataError(f"{frame_path}: --as-video stacks 2D images, got shape "
                                    f"{shape}")
                shapes.setdefault(shape, frame_path)
            if len(shapes) > 1:
                desc = ", ".join(f"{p.name}: {s}" for s, p in shapes.items())
                raise DataError(f"{self.path}: frames differ in shape ({desc})")
            return (len(self.frames),) + next(iter(shapes))
        shape = read_info(self.path).shape
        if len(shape) not in (2, 3):
            raise DataError(f"{self.path}: expected a 2D image or a video, got shape {shape}")
        return tuple(shape)


def _direct_images(folder: Path) -> list[Path]:
    from .data.io import is_image_file
    from .data.layouts import natural_key

    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p)]
    return sorted(files, key=lambda p: natural_key(p.name))


def _unique(items: list[InputItem], where: Path) -> list[InputItem]:
    seen: dict[str, Path] = {}
    for item in items:
        if item.name in seen:
            raise DataError(f"{where}: {seen[item.name].name} and {item.path.name} would both "
                            f"be written as {item.name}.tif; rename one")
        seen[item.name] = item.path
    return items


def list_inputs(path: str | os.PathLike, *, as_video: bool = False) -> list[InputItem]:
    """The inputs under ``path``, in natural order: the file itself; the TIFF/PNG files
    directly in a folder (one input each, a warning naming its subfolders that hold images
    too; or with ``as_video`` one video stacked from them, named after the folder); a
    folder of CTC frames ``tNNN.tif`` (one video named after the folder); or the samples of a dataset folder (frames, videos or CTC layout; labels not
    needed). DataError naming the path when it does not exist or holds no image."""
    from .data.io import unread_images, warn_or_refuse_unread
    from .data.layouts import ctc_frame_files, list_samples

    path = Path(path).expanduser()
    if path.is_file():
        if as_video:
            raise DlsuiteInputError(f"{path}: --as-video needs a folder of 2D images")
        return [InputItem(_stem(path), path)]
    if not path.is_dir():
        raise DataError(f"{path}: input not found")
    files = _direct_images(path)
    if as_video:
        if not files:
            raise DataError(f"{path}: no TIFF/PNG images directly in this folder to stack "
                            "into a video (--as-video)")
        return [InputItem(path.resolve().name, path, frames=tuple(files))]
    if files and len(ctc_frame_files(path)) == len(files):
        return [InputItem(path.resolve().name, path, ctc_sequence=True)]
    # named (a warning, or the error rather than "no dataset layout"), not skipped silently
    warn_or_refuse_unread(
        path, unread_images(path), found=bool(files),
        skipped="{n} file(s) in a format dlsuite does not read are not predicted",
        nothing="no TIFF/PNG image to predict, only {n} file(s) in a format dlsuite does not "
                "read")
    if files:
        _warn_of_subfolders(path)
        return _unique([InputItem(_stem(p), p) for p in files], path)
    try:
        samples = list_samples(path, "auto", require_labels=False)
    except DataError as exc:
        raise DataError(f"{path}: no TIFF/PNG images to predict in this folder, and no dataset "
                        f"layout ({exc})") from None
    return _unique([InputItem(s.name, s.image, s.layout == "ctc") for s in samples], path)


def _warn_of_subfolders(folder: Path) -> None:
    """A warning naming the subfolders of ``folder`` that hold images too: only the images
    directly in ``folder`` are predicted."""
    nested = [d.name for d in sorted(folder.iterdir(), key=lambda d: d.name)
              if d.is_dir() and not d.name.startswith(".") and _direct_images(d)]
    if nested:
        shown = ", ".join(nested[:5]) + (f" and {len(nested) - 5} more" if len(nested) > 5
                                         else "")
        log.warning("%s: the images directly in it are predicted, not those of its "
                    "subfolder(s) %s: predict each folder on its own", folder, shown)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
