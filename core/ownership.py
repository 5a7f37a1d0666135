"""What dlsuite wrote into a folder, so that replacing it never touches anything else.

A folder dlsuite writes into (a run directory, a ``predict`` output folder, a ``prepare``
destination, a ``track`` output) holds a marker file only dlsuite writes: ``.dlsuite-run``,
``.dlsuite-predict``, ``.dlsuite-prepare`` or ``.dlsuite-track``. It records the kind, an id
and when it was created (run and predict folders; a prepare marker has neither, so equal
conversions give equal folders) and ``written``: the entries dlsuite wrote (or was about to
write: they are recorded *before* the writing, so an interrupted writer leaves nothing
unrecorded). An entry is a path relative to the folder (``/``-separated; a folder stands for
everything in it) or a glob pattern of such paths.

:meth:`OwnedFolder.claim` is the reuse rule of every such folder: a new or empty folder is
claimed; a non-empty folder without the marker was not written by dlsuite and is refused,
even with ``--overwrite`` (nothing in it is touched); a folder with the marker is refused
unless ``overwrite``, which removes exactly the recorded entries (files the user added beside
them stay), or unless it holds no file but the marker (an earlier writer stopped before
writing anything: it is claimed again as if empty). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import attrs

from .errors import DlsuiteInputError
from .fileio import write_json_atomic

__all__ = ["LOCK_FILE", "MARKERS", "Marker", "OwnedFolder", "check_apart", "output_error",
           "unwritable"]

log = logging.getLogger("dlsuite")

#: The marker file of each kind of folder dlsuite writes.
MARKERS = {"run": ".dlsuite-run", "predict": ".dlsuite-predict", "prepare": ".dlsuite-prepare",
           "sweep": ".dlsuite-sweep", "track": ".dlsuite-track"}
#: The lock file of a folder a process is writing (:mod:`dlsuite.folder_lock`): dlsuite's
#: own, never a user's file, never removed.
LOCK_FILE = ".dlsuite-lock"
#: Kinds whose marker carries a random id and the creation time; a ``prepare`` marker has
#: neither, so converting the same data twice gives identical folders.
_STAMPED = frozenset({"run", "predict", "sweep"})


def output_error(path: str | os.PathLike, exc: OSError) -> DlsuiteInputError:
    """The bad-input error for an output location that cannot be written (read-only, full,
    no permission): one line naming ``path``."""
    reason = exc.strerror or str(exc)
    return DlsuiteInputError(f"{path}: cannot write here ({reason}); choose a writable "
                             "location with free space")


def unwritable(path: str | os.PathLike) -> str | None:
    """The one-line refusal (:func:`output_error`'s) of a folder ``path`` this process could
    not create or write into: the nearest existing folder at or above it is not a folder or
    denies writing (permissions, a read-only file system, the immutable attribute); None when
    it looks writable. Asked before long work; the write itself may still fail (a full disk)."""
    target = Path(path).expanduser().absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    code = (errno.ENOTDIR if not existing.is_dir() else
            None if os.access(existing, os.W_OK | os.X_OK) else errno.EACCES)
    if code is None:
        return None
    return output_error(path, OSError(code, os.strerror(code))).args[0]


def check_apart(out: str | os.PathLike, source: str | os.PathLike, *, what: str,
                option: str) -> None:
    """Refuse an output folder ``out`` that is the input folder ``source``, inside it, or
    holds it: the outputs (``what``, e.g. ``"predictions"``) would mix with (or replace) the
    inputs. DlsuiteInputError naming ``out``, ``source`` and the ``option`` to change."""
    o = Path(out).expanduser().resolve()
    i = Path(source).expanduser().resolve()
    if o == i or i in o.parents:
        raise DlsuiteInputError(
            f"{out}: the output folder is the input {source} or inside it; {what} would mix "
            f"with (or replace) the inputs. Choose a folder outside it ({option})")
    if o in i.parents:
        raise DlsuiteInputError(
            f"{out}: the output folder holds the input {source}; {what} would mix with (or "
            f"replace) the inputs. Choose a folder outside it ({option})")


@attrs.frozen
class Marker:
    """The content of a marker file."""

    kind: str
    id: str
    created: str
    written: tuple[str, ...] = ()
    #: The settings of the job writing the folder (``predict``: run, checkpoint, tiling, ...),
    #: recorded before its first output so that resuming it can be checked; None: not given.
    job: dict | None = None

    def to_json(self) -> dict:
        data = {"kind": self.kind, "id": self.id, "created": self.created,
                "written": list(self.written)}
        return data if self.job is None else {**data, "job": self.job}


def _safe_entry(entry: str) -> bool:
    """A relative path that stays inside the folder (no absolute path, no ``..``)."""
    p = PurePosixPath(entry)
    return bool(entry) and not p.is_absolute() and ".." not in p.parts and "\\" not in entry


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@attrs.frozen
class OwnedFolder:
    """A folder dlsuite writes into, of ``kind`` (a key of :data:`MARKERS`). Constructing
    it touches nothing."""

    root: Path = attrs.field(converter=lambda p: Path(p).expanduser())
    kind: str = attrs.field(validator=attrs.validators.in_(MARKERS))

    @property
    def marker_path(self) -> Path:
        return self.root / MARKERS[self.kind]

    def read(self) -> Marker | None:
        """The marker, or None when the folder has none. DlsuiteInputError naming the marker
        file when it is unreadable or of another kind."""
        path = self.marker_path
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            marker = Marker(kind=data["kind"], id=str(data["id"]), created=str(data["created"]),
                            written=tuple(str(e) for e in data.get("written", ())),
                            job=data.get("job"))
            if marker.job is not None and not isinstance(marker.job, dict):
                raise TypeError("job is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DlsuiteInputError(f"{path}: unreadable dlsuite marker ({exc}); nothing in "
                                    f"{self.root} is touched") from None
        if marker.kind != self.kind:
            raise DlsuiteInputError(f"{path}: marker of a {marker.kind!r} folder, expected "
                                    f"{self.kind!r}")
        return marker

    def is_empty(self) -> bool:
        """True when the folder does not exist or holds nothing (hidden files count) but
        dlsuite's lock file (:mod:`dlsuite.folder_lock`)."""
        return not self.root.is_dir() or next(
            (p for p in self.root.iterdir() if p.name != LOCK_FILE), None) is None

    def _marker_alone(self) -> bool:
        """True when the folder holds no file but the marker and the lock file (empty
        subfolders, e.g. made just before a writer was stopped, hold nothing to lose)."""
        own = {self.marker_path, self.root / LOCK_FILE}
        return next((p for p in self.root.rglob("*")
                     if p not in own and (p.is_symlink() or not p.is_dir())), None) is None

    def _write(self, marker: Marker) -> Marker:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.marker_path, marker.to_json())
        except OSError as exc:
            raise output_error(self.root, exc) from None
        return marker

    def create(self, written: Iterable[str] = ()) -> Marker:
        """Create the folder (and parents) and a new marker recording ``written``; an
        existing marker is replaced. DlsuiteInputError naming the folder when it cannot be
        written (read-only, full)."""
        stamped = self.kind in _STAMPED
        return self._write(Marker(self.kind, uuid.uuid4().hex if stamped else "",
                                  time.strftime("%Y-%m-%dT%H:%M:%S%z") if stamped else "",
                                  tuple(dict.fromkeys(written))))

    def record(self, entries: Iterable[str]) -> Marker:
        """Add ``entries`` to the marker's ``written`` (before writing them); returns it."""
        marker = self.read()
        if marker is None:
            return self.create(entries)
        new = tuple(dict.fromkeys([*marker.written, *entries]))
        if new == marker.written:
            return marker
        return self._write(attrs.evolve(marker, written=new))

    def record_job(self, job: dict) -> Marker:
        """Record the settings of the job about to write the folder (:attr:`Marker.job`);
        returns the marker."""
        marker = self.read()
        if marker is None:
            marker = self.create()
        return self._write(attrs.evolve(marker, job=job))

    def matches(self, entry: str) -> list[Path]:
        """The existing paths an entry of ``written`` stands for: never the marker, nothing
        reached through a symbolic link to elsewhere, none for unsafe entries."""
        if not _safe_entry(entry):
            return []
        if glob.has_magic(entry):
            found = sorted(self.root.glob(entry))
        else:
            path = self.root / entry
            found = [path] if path.exists() or path.is_symlink() else []
        root = self.root.resolve()
        return [p for p in found if p != self.marker_path and p.name != LOCK_FILE
                and (p.parent.resolve() == root or root in p.parent.resolve().parents)]

    def remove_written(self) -> list[Path]:
        """Remove what the marker records (and folders left empty by that, up to the root);
        returns the removed paths. Nothing else is touched."""
        marker = self.read()
        if marker is None:
            return []
        removed = []
        try:
            for entry in marker.written:
                for path in self.matches(entry):
                    _remove(path)
                    removed.append(path)
            for path in sorted({p.parent for p in removed}, key=lambda p: -len(p.parts)):
                while path != self.root and path.is_dir() and next(path.iterdir(), None) is None:
                    path.rmdir()
                    path = path.parent
        except OSError as exc:
            raise output_error(exc.filename or self.root, exc) from None
        return removed

    def _left_inside(self, marker: Marker) -> list[Path]:
        """Files still in the folders of recorded entries once those were removed (recorded
        as patterns, e.g. ``01_RES/mask*.tif``): what the user added there."""
        tops = {PurePosixPath(e).parts[0] for e in marker.written if _safe_entry(e)
                and len(PurePosixPath(e).parts) > 1}
        return sorted(p for top in tops if (self.root / top).is_dir()
                      for p in (self.root / top).rglob("*") if p.is_file())

    def foreign(self) -> list[Path]:
        """Entries directly in the folder that are neither the marker nor (the top folder
        of) an entry the marker records: what dlsuite did not write there."""
        if not self.root.is_dir():
            return []
        marker = self.read()
        tops = {self.marker_path.name, LOCK_FILE}
        tops.update(PurePosixPath(e).parts[0] for e in (marker.written if marker else ())
                    if _safe_entry(e))
        return sorted(p for p in self.root.iterdir()
                      if not any(fnmatch.fnmatchcase(p.name, t) for t in tops))

    def refusal(self, *, overwrite: bool, holds: str, hint: str,
                in_use: Callable[[], str | None] | None = None) -> str | None:
        """The message :meth:`claim` would refuse the folder with (None: it would claim it),
        found without touching anything: to say it before long work. ``in_use`` (the
        side-effect-free form of ``claim``'s ``before_write``) is asked in the same place."""
        root = self.root
        if root.exists() and not root.is_dir():
            return f"{root}: exists and is not a folder"
        marker = self.read()
        if marker is None and not self.is_empty():
            return (f"{root} is not empty and was not written by dlsuite (no "
                    f"{MARKERS[self.kind]} marker): nothing in it is deleted or replaced, "
                    "not even with --overwrite; choose an empty or new folder")
        busy = in_use() if in_use is not None else None
        if busy is not None:
            return busy
        if marker is not None and not overwrite and not self._marker_alone():
            return f"{root} already holds {holds}; {hint}"
        return unwritable(root)

    def claim(self, *, overwrite: bool, written: Iterable[str] = (), holds: str,
              hint: str, before_write: Callable[[], None] | None = None) -> Marker:
        """Apply the reuse rule (module docstring) and return the new marker recording
        ``written``. Refusals are DlsuiteInputError naming the folder: a path that is not a
        folder; a non-empty folder without the marker (also with ``overwrite``); a folder with
        the marker without ``overwrite`` (``"<root> already holds <holds>; <hint>"``).
        ``before_write`` is called after those checks and before anything is removed or
        written (e.g. to take the folder's lock; it may refuse too)."""
        root = self.root
        # not a folder, or a user's: refused before the lock (overwrite=True: the rest after)
        refusal = self.refusal(overwrite=True, holds=holds, hint=hint)
        if refusal is not None:
            raise DlsuiteInputError(refusal)
        marker = self.read()
        if before_write is not None:
            before_write()
        if marker is None:
            return self.create(written)
        if not overwrite and self._marker_alone():
            # an earlier writer stopped before writing anything: there is nothing to replace
            log.info("%s holds only dlsuite's marker (an earlier %s stopped before writing): "
                     "reused", root, self.kind)
            return self.create(written)
        if not overwrite:
            raise DlsuiteInputError(f"{root} already holds {holds}; {hint}")
        removed = self.remove_written()
        kept = self.foreign() + self._left_inside(marker)
        log.info("--overwrite: removed %d entr%s dlsuite wrote in %s", len(removed),
                 "y" if len(removed) == 1 else "ies", root)
        if kept:
            log.warning("--overwrite kept %d file(s) dlsuite did not write in %s: %s",
                        len(kept), root, ", ".join(p.relative_to(root).as_posix()
                                                   for p in kept[:5]))
        return self.create(written)
