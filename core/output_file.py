"""The reuse rule of a single output file a command writes (``dlsuite evaluate -o``,
``--per-frame``, ``dlsuite config schema FILE``, ``config migrate -o``, ``compare --plot``,
``tune --output``): a new path is written; an existing file is replaced only when the command
recognises it as one it wrote itself (``ours``) and ``overwrite`` is given; any other
existing file is never touched. Checked before any work, so a refusal leaves everything as
it was. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from .errors import DlsuiteInputError

__all__ = ["check_output_file", "json_object_with"]

#: Larger than any JSON file a command writes (a schema, scores, a tuned chain).
_LARGEST_OWN_JSON = 64 * 2**20


def check_output_file(path: str | os.PathLike, label: str, *, writer: str,
                      overwrite: bool = False,
                      ours: Callable[[Path], bool] | None = None) -> Path:
    """The path ``path`` a command may write, or DlsuiteInputError starting with ``label``
    (e.g. ``"--output out.json"``) when it is a folder, its folder does not exist, or the file
    exists and either ``ours`` is not given (the command never replaces a file), ``ours`` is
    false for it (not written by ``writer``: never replaced) or ``overwrite`` is false."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise DlsuiteInputError(f"{label}: is a folder; give a file's path")
    if target.exists() and not target.is_file():  # reading it to recognise it could hang
        raise DlsuiteInputError(f"{label}: exists and is not a regular file (a device, FIFO "
                                "or socket); choose another path")
    if not target.parent.is_dir():
        raise DlsuiteInputError(f"{label}: folder {target.parent} does not exist")
    if target.exists() or target.is_symlink():
        if ours is None:
            raise DlsuiteInputError(f"{label}: exists; {writer} does not replace an existing "
                                    "file (choose another path or remove it)")
        if not ours(target):
            raise DlsuiteInputError(f"{label}: exists and was not written by {writer}; it is "
                                    "not replaced, not even with --overwrite (choose another "
                                    "path)")
        if not overwrite:
            raise DlsuiteInputError(f"{label}: exists (written by {writer} before); pass "
                                    "--overwrite to replace it")
    return target


def json_object_with(path: Path, keys: frozenset[str] | None = None,
                     **values: object) -> bool:
    """True when ``path`` (not a symbolic link) holds a JSON object whose key set is ``keys``
    (when given) and whose entries equal ``values``: how a command recognises a JSON file it
    wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        if path.stat().st_size > _LARGEST_OWN_JSON:  # none of ours: not read into memory
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (keys is None or set(data) == keys) and \
        all(data.get(k) == v for k, v in values.items())
