"""Atomic writes: write to a temporary file beside the target, then rename it over it.

Readers never see a half-written file, and a failed write leaves the old file in place.
Every module that writes results goes through :func:`atomic_write`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import signal
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "write_text_atomic", "write_json_atomic", "to_jsonable",
           "leftover_temporaries", "WRITE_ERRNOS"]


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: once, at import (not thread-safe)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


_TMP_PREFIX = ".tmp-{}-"


def leftover_temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporary files that :func:`atomic_write` calls for ``path`` left beside it
    because their process was killed before the rename (SIGKILL, power loss): the names
    only ``atomic_write(path, ...)`` makes, never another file. Sorted; [] without any."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = _TMP_PREFIX.format(path.stem)
    suffix = "".join(path.suffixes) or ".tmp"
    # mkstemp's random part: 8 characters of [a-z0-9_]
    name = re.compile(re.escape(prefix) + "[a-z0-9_]{8}" + re.escape(suffix))
    return sorted(p for p in path.parent.iterdir()
                  if p.name.startswith(prefix) and name.fullmatch(p.name) and p.is_file())


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Parent folders are created. The temporary name keeps ``path``'s suffixes (Keras checks
    ``.keras`` / ``.weights.h5``); the file gets the usual permissions (mkstemp makes 0600);
    on any failure, a SIGINT/SIGTERM included, the temporary file is removed and the exception
    propagates; an OSError of :data:`WRITE_ERRNOS` (read-only, full, ...) then names ``path``
    (same errno and type).
    """
    path = Path(path)
    tmp: Path | None = None
    held = _hold_signals()
    try:
        tmp = _temporary_beside(path)
        _release_signals(held)  # a signal that came meanwhile raises here, where tmp is guarded
        held = None
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        cause = exc
        if tmp is not None:
            if isinstance(exc, OSError) and exc.errno is None:  # e.g. a writer's "short write"
                cause = _why_short(tmp) or exc
            tmp.unlink(missing_ok=True)
        _release_signals(held)
        if isinstance(cause, OSError) and cause.errno in WRITE_ERRNOS:
            raise _naming(cause, path) from exc
        raise
    return path


def _temporary_beside(path: Path) -> Path:
    """A new empty file beside ``path`` with :func:`leftover_temporaries`' name pattern;
    an OSError names ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX.format(path.stem),
                                    suffix="".join(path.suffixes) or ".tmp")
        os.close(fd)
    except OSError as exc:
        raise _naming(exc, path) from exc
    return Path(name)


_HELD = (signal.SIGINT, signal.SIGTERM)


class _SignalHold:
    """SIGINT/SIGTERM held at Python level in the main thread: their Python handlers are
    swapped for a recorder and restored by :meth:`release`, which then raises what was
    recorded. Not a thread signal mask: the kernel may hand the signal to any thread (with
    TensorFlow's running, often another one), while Python handlers always run in the main
    thread; a mask there let a KeyboardInterrupt land between creating the temporary file and
    knowing its name (seen in CI: a Ctrl-C left ``.tmp-img_00-*.tif``). A handler that is not
    Python's (``SIG_DFL``, ``SIG_IGN``) is left alone: the kernel acts on it, nothing raises."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._caught: list[int] = []
        if threading.current_thread() is not threading.main_thread():
            return  # Python handlers run in the main thread only: nothing can land here
        for signum in _HELD:
            if callable(signal.getsignal(signum)):
                self._previous[signum] = signal.signal(signum, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        self._caught.append(signum)

    def release(self) -> None:
        """Restore the handlers; a signal recorded meanwhile is raised again now (its
        handler's exception comes from this call). Idempotent."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        caught, self._caught = self._caught, []
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def _hold_signals() -> _SignalHold:
    """Hold SIGINT/SIGTERM until :func:`_release_signals` (see :class:`_SignalHold`)."""
    return _SignalHold()


def _release_signals(held: _SignalHold | None) -> None:
    """Release what :func:`_hold_signals` held; a signal that arrived meanwhile is
    delivered now (Python raises its handler's exception from this call)."""
    if held is not None:
        held.release()


#: errno values that mean "this location cannot be written" (no permission, read-only, full,
#: quota, file size limit), not a bug: callers report them as bad input naming the path.
WRITE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                          errno.EFBIG})


def _why_short(tmp: Path) -> OSError | None:
    """Why a write without an errno failed (writers report a short write as a bare OSError):
    appending to ``tmp`` shows whether the location is full or over the file size limit;
    that OSError, or None when it is not the reason."""
    try:
        with open(tmp, "ab", buffering=0) as fh:
            for _ in range(16):
                fh.write(bytes(4096))
            os.fsync(fh.fileno())
    except OSError as exc:
        return exc if exc.errno in WRITE_ERRNOS else None
    return None


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` as the same OSError subclass naming the target ``path`` instead of the
    temporary file (or no file)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, paths into
    strings and NaN/inf into None, recursively through dicts, lists and tuples."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (see :func:`to_jsonable`) atomically."""
    return write_text_atomic(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")
