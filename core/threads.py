"""How many threads TensorFlow may use in this process: ``DLSUITE_THREADS``.

``dlsuite sweep --parallel N`` sets it for its trials (the cores divided among them:
``benchmarks/parallel_threads.py`` measured two trainings at once on 2 cores 13 % slower with
every core each than with one thread each); a user may set it too, e.g. to leave cores to
other work. Unset or empty: TensorFlow's own choice (every core). Reading the variable
imports no TensorFlow; :func:`limit_threads` applies it.
"""

from __future__ import annotations

import logging
import os

from .errors import DlsuiteInputError

__all__ = ["THREADS_ENV", "THREADS_PROBLEM", "threads_from_env", "limit_threads", "threads_line", "share_of_cores"]

THREADS_ENV = "DLSUITE_THREADS"
THREADS_PROBLEM = ("expected a positive whole number of threads, or unset it to let TensorFlow "
                   "use every core")

log = logging.getLogger("dlsuite.training")


def threads_from_env() -> int | None:
    """The thread count ``DLSUITE_THREADS`` asks for; None when unset or empty.
    DlsuiteInputError naming the variable for anything but a positive whole number."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise DlsuiteInputError(f"{THREADS_ENV}={raw!r}: {THREADS_PROBLEM}")
    return int(raw)


def share_of_cores(parallel: int) -> int:
    """Threads for each of ``parallel`` processes sharing the cores this process may use
    (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, parallel))


def limit_threads() -> int | None:
    """Limit TensorFlow's intra-op and inter-op thread pools to ``DLSUITE_THREADS``; returns
    the count (None when unset). Works only before TensorFlow's runtime starts: a runtime
    already started keeps its pools (a warning says so)."""
    n = threads_from_env()
    if n is None:
        return None
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == n:
        return n  # applied before (a second run in this process)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError as exc:  # the runtime has started: its pools are fixed
        log.warning("%s=%d not applied: %s", THREADS_ENV, n, exc)
        return None
    return n


def threads_line() -> str | None:
    """One log line with the thread pools ``DLSUITE_THREADS`` set, as TensorFlow reports
    them (None when unset)."""
    if threads_from_env() is None:
        return None
    import tensorflow as tf

    return (f"threads: {tf.config.threading.get_intra_op_parallelism_threads()} intra-op, "
            f"{tf.config.threading.get_inter_op_parallelism_threads()} inter-op "
            f"({THREADS_ENV})")
