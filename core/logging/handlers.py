"""Attaching a handler to the ``dlsuite`` logger for the duration of a block."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

__all__ = ["attached"]


@contextmanager
def attached(handler: logging.Handler, level: int = logging.INFO) -> Iterator[None]:
    """Add ``handler`` to the ``dlsuite`` logger, lowering the logger to ``level`` if it is
    quieter; on exit remove (and close) the handler and restore the logger's level."""
    logger = logging.getLogger("dlsuite")
    old_level = logger.level
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()
