"""``zarr``, imported once with a quiet exit: :func:`zarr_module`.

zarr 3 runs its I/O on an event loop in a thread of its own and closes that loop at exit
(``zarr.core.sync.cleanup_resources``). When the process ends in the middle of a read (Ctrl-C
or SIGTERM during a block-wise prediction: exit 130 / 143), the loop is still busy after its
0.2 s wait and the close raises: a warning and a traceback ("Cannot close a running event
loop") printed after dlsuite's own one-line "interrupted". The hook registered here runs
before zarr's (``atexit`` runs the last registered first): it stops the loop, waits up to
:data:`STOP_SECONDS` for the thread and, if it is still busy, lets the process end with the
loop unclosed (the operating system frees it) instead of printing the traceback; asyncio's
reports of the reads cut short ("Task was destroyed but it is pending!") are not printed.
"""

from __future__ import annotations

import atexit
import logging
import sys
from types import ModuleType

__all__ = ["zarr_module", "STOP_SECONDS"]

#: How long the exit hook waits for zarr's I/O thread to finish its current read.
STOP_SECONDS = 5.0
_hooked = False


def zarr_module() -> ModuleType:
    """The ``zarr`` module; the first call registers the quiet exit hook (module docstring)."""
    global _hooked
    import zarr

    if not _hooked:
        atexit.register(_stop_io_loop)
        _hooked = True
    return zarr


def _stop_io_loop() -> None:
    sync = sys.modules.get("zarr.core.sync")
    loop = getattr(sync, "loop", [None])[0] if sync is not None else None
    if loop is None or loop.is_closed():
        return
    thread = sync.iothread[0]
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # closed meanwhile
        return
    if thread is not None:
        thread.join(timeout=STOP_SECONDS)
    # reads cut short leave tasks that asyncio reports as "destroyed but pending" when
    # they are collected: the process is ending, so that is noise
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if thread is not None and thread.is_alive():
        sync.loop[0] = None  # zarr's own hook then leaves it alone: no traceback
        sync.iothread[0] = None
