"""Installing dlsuite's signal handlers the way POSIX tools do: a signal the process
inherited as ignored (``SIG_IGN``: a background job of a non-interactive shell ignores
SIGINT, so that a Ctrl-C meant for the foreground does not stop it) stays ignored."""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["install"]


def install(signum: int, handler: Any) -> Any:
    """Set ``handler`` for ``signum`` and return the previous handler (to restore it later),
    or, when ``signum`` is ignored, leave it ignored and return ``signal.SIG_IGN`` (restoring
    that changes nothing). Main thread only, like :func:`signal.signal` (ValueError else)."""
    if signal.getsignal(signum) == signal.SIG_IGN:
        return signal.SIG_IGN
    return signal.signal(signum, handler)
