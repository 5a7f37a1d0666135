"""One dlsuite process at a time in a run directory.

A second ``dlsuite run --overwrite`` (or ``--resume``, ``train``, ``tune``) on a run directory
that another process is still writing would delete or replace that process's files under it.
Whoever writes a run directory holds an exclusive lock on its ``.dlsuite-lock`` file
(``fcntl.flock``: the operating system releases it when the process ends, however it ends,
so a killed run never leaves a stale lock). A second process is refused with one line naming
the folder and the holder (its pid and command line, which the holder writes into the file).

The lock file is dlsuite's own: :class:`~dlsuite.ownership.OwnedFolder` neither lists it as a
user's file nor removes it. The lock is re-entrant within a process (``api.run`` inside a
notebook, then ``api.tune`` of the same folder). Without ``fcntl`` (Windows) there is no lock.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DlsuiteInputError
from .ownership import LOCK_FILE, output_error

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "LazyLock", "acquire", "release", "held", "in_use"]

_held: dict[Path, list[int]] = {}  # folder -> [file descriptor, depth]


def acquire(root: str | os.PathLike, what: str = "folder") -> None:
    """Hold the lock of the folder ``root`` (created if missing) for this process. Raises
    DlsuiteInputError naming ``root`` and the holder when another process holds it; ``what``
    names what to choose instead (e.g. ``"output_dir"``). A folder that cannot be written
    (read-only, full) is the DlsuiteInputError of :func:`dlsuite.ownership.output_error`
    naming ``root`` as given."""
    given = Path(root).expanduser()
    root = given.resolve()
    if root in _held:
        _held[root][1] += 1
        return
    if fcntl is None:  # pragma: no cover
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise output_error(given, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise DlsuiteInputError(
            f"{root}: in use by another dlsuite process ({holder}); wait for it to end or "
            f"choose another {what}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv) or 'python'}\n".encode(), 0)
    _held[root] = [fd, 1]


def in_use(root: str | os.PathLike, what: str = "folder") -> str | None:
    """The message :func:`acquire` would refuse ``root`` with when another process holds
    its lock, found without creating or locking anything (a shared lock tried and let go at
    once); None when the folder is free, held by this process, or has no lock file."""
    root = Path(root).expanduser().resolve()
    lock = root / LOCK_FILE
    if fcntl is None or root in _held or not lock.is_file():
        return None
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
        return (f"{root}: in use by another dlsuite process ({holder}); wait for it to end "
                f"or choose another {what}")
    finally:
        os.close(fd)  # also lets go of the shared lock
    return None


def release(root: str | os.PathLike) -> None:
    """Let go of one :func:`acquire` of ``root``; the last one releases the lock (the file
    stays). Nothing happens for a folder this process does not hold."""
    root = Path(root).expanduser().resolve()
    entry = _held.get(root)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[root]
        os.close(entry[0])


class LazyLock:
    """The lock of ``root``, taken when :meth:`acquire` is called (e.g. as the
    ``before_write`` of :meth:`~dlsuite.ownership.OwnedFolder.claim`, once the folder's checks
    passed) and let go by :meth:`release` only if it was taken."""

    def __init__(self, root: str | os.PathLike, what: str = "folder"):
        self.root, self.what, self.taken = root, what, False

    def acquire(self) -> None:
        acquire(self.root, self.what)
        self.taken = True

    def release(self) -> None:
        if self.taken:
            self.taken = False
            release(self.root)


@contextmanager
def held(root: str | os.PathLike, what: str = "folder") -> Iterator[None]:
    """:func:`acquire` ``root`` for the block, :func:`release` it after."""
    acquire(root, what)
    try:
        yield
    finally:
        release(root)
