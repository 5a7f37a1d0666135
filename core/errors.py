"""Exceptions of dlsuite. ``DlsuiteInputError`` (and subclasses) mean bad input: the CLI
prints their message without a traceback and exits with status 2."""

from __future__ import annotations

import errno

#: ``OSError`` numbers that mean the location itself refuses the write (permissions, a
#: read-only or full file system, a quota, a file size limit): bad input, exit 2.
LOCATION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                             errno.EDQUOT, errno.EFBIG})


def os_error_head(exc: OSError) -> str:
    """``FILE: reason`` of an OSError (just the reason when it names no file): the start of
    every one-line message dlsuite prints for a refused read or write."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


class DlsuiteInputError(Exception):
    """Bad input from the user (config, files, plugin names): a clear message, exit 2."""


class PluginError(DlsuiteInputError):
    """A plugin cannot be resolved: unknown, ambiguous, or broken."""


class DataError(DlsuiteInputError):
    """A data file or folder is missing, unreadable or inconsistent; the message names it."""


class ConfigError(DlsuiteInputError):
    """A config failed validation. ``problems`` holds ``(json_path, message)`` pairs, all of
    them, in document order."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = [f"{head}{len(self.problems)} config error(s):"]
        lines += [f"  {path}: {msg}" for path, msg in self.problems]
        super().__init__("\n".join(lines))

