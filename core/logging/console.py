"""What a dlsuite command shows on stderr: one line per message; with ``quiet`` nothing but
warnings and errors.

:func:`console` is the whole of it, for the duration of a command:

* the ``dlsuite`` logger goes to stderr through :class:`LineHandler`, one line per record
  (``warning: ...`` / ``error: ...``; info lines plain and only when not quiet);
* Python warnings (NumPy, Keras, ...) become one ``warning: Category: text`` line each, once
  per distinct text, without the source file and line Python prints;
* TensorFlow's native (C++) log lines -- ``All log messages before absl::InitializeLog()``,
  ``I0000 ... cpu_feature_guard.cc``, GPU plugin registration errors and the like, which
  TensorFlow writes to file descriptor 2 past Python -- are dropped by
  :func:`native_stderr_filtered`, always with ``quiet``, otherwise unless
  ``TF_CPP_MIN_LOG_LEVEL`` is set to 0 or 1 (a request to see them);
* warnings and errors of library loggers that have no handler of their own (absl, Keras)
  become ``warning: ...`` / ``error: ...`` lines, each once (a root handler standing in for
  Python's last resort, which also keeps absl from configuring the root logger itself);
* with ``quiet`` also ``TF_CPP_MIN_LOG_LEVEL`` is 3 for a TensorFlow imported later, and
  TensorFlow's and absl's Python loggers show errors only.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from .handlers import attached

__all__ = ["console", "LineHandler", "native_stderr_filtered", "warnings_as_log_lines",
           "is_native_log_line"]

#: glog/absl line header: level letter, MMDD, time (seconds may be since the epoch), thread
#: id, file:line]
_NATIVE_HEADER = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+(\.\d+)?\s+\d+ \S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
#: Second lines of known multi-line native messages (nothing else is taken for one: a line
#: dropped by mistake could be the one that explains a crash).
_CONTINUATIONS = ("To enable the following instructions:",)
_PREFIX = {logging.WARNING: "warning", logging.ERROR: "error", logging.CRITICAL: "error"}
_COLOUR = {"warning": "\033[33m", "error": "\033[31m"}


def is_native_log_line(line: str) -> bool:
    """True for a line of TensorFlow's native logging below FATAL (info, warning, error) and
    absl's ``All log messages before absl::InitializeLog()`` preamble."""
    return line.startswith(_ABSL_PREAMBLE) or (
        _NATIVE_HEADER.match(line) is not None and not line.startswith("F"))


class LineHandler(logging.Handler):
    """One line per record on the current ``sys.stderr`` (looked up at each record, so a
    progress display or a redirection in force at that moment is honoured): the message as
    is for INFO and below, ``warning: message`` / ``error: message`` above (coloured on a
    terminal). Line breaks inside a message become ``"; "``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = "; ".join(part.strip() for part in record.getMessage().splitlines()
                             if part.strip())
            prefix = next((p for level, p in sorted(_PREFIX.items(), reverse=True)
                           if record.levelno >= level), None)
            stream = sys.stderr
            if prefix is not None:
                tty = getattr(stream, "isatty", lambda: False)()
                head = f"{_COLOUR[prefix]}{prefix}:\033[0m" if tty else f"{prefix}:"
                text = f"{head} {text}"
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _forward(read_fd: int, write_fd: int) -> None:
    """Copy ``read_fd`` to ``write_fd`` line by line until EOF, dropping native log lines
    and the known second lines of such messages (:data:`_CONTINUATIONS`)."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        dropping = False
        kept = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if is_native_log_line(line):
                dropping = True
            elif dropping and line.startswith(_CONTINUATIONS):
                pass  # the second line of the dropped message
            else:
                dropping = False
                kept.append(raw + b"\n")
        if kept:
            try:
                os.write(write_fd, b"".join(kept))
            except OSError:
                pass
    if pending and not is_native_log_line(pending.decode("utf-8", "replace")):
        try:
            os.write(write_fd, pending)
        except OSError:
            pass
    os.close(read_fd)


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """For the block, file descriptor 2 (where native libraries write) goes through a filter
    that drops native log lines (:func:`is_native_log_line`) and passes everything else on;
    Python's ``sys.stderr``, when it wrote to descriptor 2, writes to the real stderr directly
    (a captured ``sys.stderr`` is left alone). A process started in the block keeps writing
    through the filter until it ends."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, closed)
        yield
        return
    read_fd, write_fd = os.pipe()
    real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8",
                     errors="backslashreplace")
    thread = threading.Thread(target=_forward, args=(read_fd, saved), daemon=True,
                              name="dlsuite-stderr-filter")
    thread.start()
    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):  # captured (CliRunner, pytest capsys)
        python_on_fd2 = False
    os.dup2(write_fd, 2)
    os.close(write_fd)
    old_stderr = sys.stderr
    if python_on_fd2:
        sys.stderr = real
    try:
        yield
    finally:
        sys.stderr = old_stderr
        try:
            real.flush()
        finally:
            real.close()
        os.dup2(saved, 2)  # closes our pipe end: the thread ends unless a child holds one
        thread.join(timeout=1.0)
        if not thread.is_alive():
            os.close(saved)  # else a child still writes through the filter to it


#: Distributions whose warnings need no "(from ...)": dlsuite's own.
_OURS = frozenset({"dlsuite", "dlsuite_plugins"})


def _installed_package(filename: str | None) -> str | None:
    """The top-level package of a file installed in ``site-packages`` (or
    ``dist-packages``), e.g. ``numpy``; None for any other file."""
    parts = Path(filename or "").parts
    for i, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages"):
            return parts[i + 1].removesuffix(".py")
    return None


@contextmanager
def warnings_as_log_lines(logger: logging.Logger | None = None) -> Iterator[None]:
    """Python warnings raised in the block become one WARNING record each on ``logger``
    (default ``dlsuite.warnings``): ``Category: text``, or ``Category (from package): text``
    when an installed package other than dlsuite raised it, once per distinct text, without
    the source file and line."""
    logger = logger or logging.getLogger("dlsuite.warnings")
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        origin = _installed_package(filename)
        where = f" (from {origin})" if origin and origin not in _OURS else ""
        text = " ".join(f"{category.__name__}{where}: {message}".split())
        if text not in seen:
            seen.add(text)
            logger.warning("%s", text)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextmanager
def _library_loggers_at(level: int) -> Iterator[None]:
    names = ("tensorflow", "absl", "h5py")
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(level)
    try:
        yield
    finally:
        for n, lv in old.items():
            logging.getLogger(n).setLevel(lv)


def _tf_logs_requested() -> bool:
    """``TF_CPP_MIN_LOG_LEVEL`` set below 2 (the ``dlsuite`` command's default): the user
    asked to see TensorFlow's info or warning lines."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1")


def _not_handled_elsewhere(record: logging.LogRecord) -> bool:
    """True when no logger between ``record``'s and the root has a handler: the records
    Python's last-resort handler would print (the ``dlsuite`` logger's own are shown by its
    handler, a library's with handlers of its own by those)."""
    logger = logging.getLogger(record.name)
    while logger is not None and logger is not logging.root:
        if logger.handlers or not logger.propagate:
            return False
        logger = logger.parent
    return True


@contextmanager
def _library_records_as_lines() -> Iterator[None]:
    """Warnings and errors of library loggers without a handler (absl, Keras, ...) as
    ``warning: ...`` lines, through a root handler that also keeps absl from calling
    ``logging.basicConfig()`` (whose root handler printed every ``dlsuite`` record a second
    time, as ``WARNING:dlsuite...:``). Left alone when the root logger has handlers already
    (a program embedding dlsuite, a test runner): logging is theirs."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = LineHandler()
    handler.setLevel(logging.WARNING)
    handler.addFilter(_not_handled_elsewhere)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


@contextmanager
def console(quiet: bool = False) -> Iterator[None]:
    """Everything of the module docstring for the block: the ``dlsuite`` logger on stderr as
    one line per record (warnings and errors only when ``quiet``), Python warnings as log
    lines, no native TensorFlow log lines (unless asked for with ``TF_CPP_MIN_LOG_LEVEL``
    0 or 1 and not ``quiet``)."""
    handler = LineHandler()
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    with ExitStack() as stack:
        if quiet:
            stack.enter_context(_env("TF_CPP_MIN_LOG_LEVEL", "3"))  # read by a TF import
            stack.enter_context(_library_loggers_at(logging.ERROR))
        if quiet or not _tf_logs_requested():
            stack.enter_context(native_stderr_filtered())
        stack.enter_context(attached(handler))
        stack.enter_context(_library_records_as_lines())
        stack.enter_context(warnings_as_log_lines())
        yield
