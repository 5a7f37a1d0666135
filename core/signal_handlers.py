"""Signals in dlsuite: installing handlers the way POSIX tools do (a signal the process
inherited as ignored, ``SIG_IGN``, stays ignored: a background job of a non-interactive shell
ignores SIGINT, so that a Ctrl-C meant for the foreground does not stop it), SIGTERM's
exception outside training, and finding the signal behind an exception C code wrapped."""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["Terminated", "install", "signal_behind"]


def install(signum: int, handler: Any) -> Any:
    """Set ``handler`` for ``signum`` and return the previous handler (to restore it later),
    or, when ``signum`` is ignored, leave it ignored and return ``signal.SIG_IGN`` (restoring
    that changes nothing). Main thread only, like :func:`signal.signal` (ValueError else)."""
    if signal.getsignal(signum) == signal.SIG_IGN:
        return signal.SIG_IGN
    return signal.signal(signum, handler)


class Terminated(BaseException):
    """SIGTERM outside training (training handles it itself and saves a resumable state).
    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it."""


def signal_behind(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or :class:`Terminated` that ``exc`` is or was raised from, if
    any (its ``__cause__`` / ``__context__`` chain): a signal's exception raised while C code
    ran (numpy's ``__array__`` of a TensorFlow tensor) comes back as a SystemError
    ("returned a result with an exception set") caused by it; None otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
