"""``--scheduler``: a ``dask.distributed`` client, and the model cache of each worker.

``local`` / ``local:N`` starts a ``LocalCluster`` of N (default 2) single-threaded worker
processes on 127.0.0.1 (each under a nanny, so a killed worker is replaced and its tasks
rerun); any other value is the address of a running scheduler (``tcp://host:8786``,
e.g. one started by dask-jobqueue on SLURM). Nothing here imports dask or TensorFlow at module
level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from typing import Iterable, Iterator

from ..errors import DlsuiteInputError

__all__ = ["SCALE_HINT", "completed", "parse_scheduler", "probe_scheduler", "require_scale",
           "connect", "connect_when_needed", "scheduler_timeout", "pause_note", "worker_memory",
           "worker_predictor", "worker_settings"]

#: What to install when the optional engines are missing.
SCALE_HINT = "pip install 'dlsuite[scale]' (dask, distributed, zarr, ome-zarr)"

_LOCAL = re.compile(r"^local(?::(\d+))?$")


def require_scale(what: str) -> None:
    """DlsuiteInputError naming ``what`` and the extra to install when dask.distributed,
    zarr or ome-zarr is missing."""
    import importlib.util

    missing = [m for m in ("dask", "distributed", "zarr", "ome_zarr")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise DlsuiteInputError(f"{what} needs {', '.join(missing)}: {SCALE_HINT}")


def parse_scheduler(value: str) -> tuple[str, int | str]:
    """``("local", n_workers)`` for ``local[:N]``, or ``("address", address)``.
    DlsuiteInputError naming the value when it is neither."""
    text = str(value).strip()
    match = _LOCAL.match(text)
    if match:
        n = int(match.group(1) or 2)
        if n < 1:
            raise DlsuiteInputError(f"--scheduler {value}: local needs at least 1 worker")
        return "local", n
    if re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$", text) or re.match(r"^[\w.\-]+:\d+$", text):
        return "address", text
    raise DlsuiteInputError(f"--scheduler {value!r}: expected local, local:N or a scheduler "
                            "address such as tcp://host:8786")


def probe_scheduler(address: str) -> None:
    """DlsuiteInputError naming ``address`` unless a Dask scheduler answers at this ``tcp://``
    (or ``host:port``) address: at once when the host refuses the connection (nothing listens
    on the port), after :func:`scheduler_timeout` seconds when the connection is not accepted
    or the peer sends nothing (a scheduler sends its handshake first; the Dask client itself
    would wait forever on a port that accepts and stays silent). Other protocols are left to
    the client."""
    import socket

    match = re.match(r"^(?:tcp://)?\[?([\w.\-:]+?)\]?:(\d+)$", address)
    if match is None:
        return
    timeout = scheduler_timeout()
    problem = None
    try:
        with socket.create_connection((match.group(1), int(match.group(2))),
                                      timeout=timeout) as sock:
            if not sock.recv(1):
                problem = "the connection was closed without an answer"
    except ConnectionRefusedError:
        problem = "the connection is refused: nothing listens on that port"
    except TimeoutError:
        problem = (f"nothing answered within {timeout:g} s; DLSUITE_SCHEDULER_TIMEOUT sets "
                   "how long to wait")
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if problem:
        raise DlsuiteInputError(f"--scheduler {address}: no Dask scheduler answers there "
                                f"({problem})")


#: Seconds the client waits for a scheduler address to answer (``DLSUITE_SCHEDULER_TIMEOUT``).
DEFAULT_SCHEDULER_TIMEOUT = 60.0


def scheduler_timeout() -> float:
    """``DLSUITE_SCHEDULER_TIMEOUT`` in seconds (default 60): how long a scheduler address
    may take to answer. DlsuiteInputError naming the variable when it is not a positive
    number."""
    text = os.environ.get("DLSUITE_SCHEDULER_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_SCHEDULER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise DlsuiteInputError(f"DLSUITE_SCHEDULER_TIMEOUT={text!r}: expected a number of "
                                "seconds > 0")
    return value


@contextlib.contextmanager
def connect_when_needed(scheduler: str) -> Iterator:
    """A function returning the one ``distributed.Client`` of this block for ``scheduler``
    (:func:`connect`). A scheduler address is connected at once, so one that does not answer
    is refused before the caller writes anything; a local cluster is started on the first
    call only (not at all when there is nothing to do)."""
    scheduler_timeout()  # a bad value is refused before anything is written
    with contextlib.ExitStack() as stack:
        held: list = []

        def client():
            if not held:
                held.append(stack.enter_context(connect(scheduler)))
            return held[0]

        if parse_scheduler(scheduler)[0] == "address":
            client()
        yield client


@contextlib.contextmanager
def connect(scheduler: str, *, timeout: float | None = None) -> Iterator:
    """A ``distributed.Client`` for ``scheduler`` (see :func:`parse_scheduler`); a local
    cluster is started on 127.0.0.1 (no dashboard) and closed on exit. DlsuiteInputError
    naming the address when no scheduler answers within ``timeout`` seconds (default
    :func:`scheduler_timeout`), when it has no worker and none joins in that time, or when
    its smallest worker cannot hold TensorFlow and a model (:func:`worker_memory`)."""
    kind, value = parse_scheduler(scheduler)
    if timeout is None:
        timeout = scheduler_timeout()
    require_scale("--scheduler")
    from distributed import Client, LocalCluster

    if kind == "local":
        cluster = LocalCluster(n_workers=int(value), threads_per_worker=1, processes=True,
                               silence_logs=logging.ERROR,  # no INFO chatter on the console
                               host="127.0.0.1", scheduler_port=0, dashboard_address=None,
                               worker_dashboard_address=None,
                               # no dashboard; its HTTP routes on a free local port, not 8787
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               # set in each worker (restarts too) by its nanny: without a
                               # dashboard the statistical profiler would only cost CPU
                               config={"distributed.worker.profile.enabled": False})
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    probe_scheduler(value)
    try:
        client = Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise DlsuiteInputError(f"--scheduler {value}: no Dask scheduler answers there "
                                f"({exc})") from None
    with client:
        _require_workers(client, value, timeout)
        _require_worker_memory(client, value)
        yield client


def _require_workers(client, address: str, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the scheduler at ``address`` to have a worker:
    without one its tasks would wait for ever (the prediction hung, silent, until killed).
    DlsuiteInputError naming the address and how to start workers."""
    if client.scheduler_info().get("workers"):
        return
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        raise DlsuiteInputError(
            f"--scheduler {address}: the scheduler has no workers (none joined within "
            f"{timeout:g} s; DLSUITE_SCHEDULER_TIMEOUT sets how long to wait); start some "
            f"with: dask worker {address}") from None


def pause_note(usable: int, limit: int) -> str:
    """Why a worker may use ``usable`` of its ``limit`` bytes, for messages."""
    return (f"Dask pauses a worker at {usable / limit:.0%} of its memory limit, "
            f"{limit / 2**30:.1f} GiB")


def _require_worker_memory(client, address: str) -> None:
    """DlsuiteInputError when the smallest worker at ``address`` cannot hold TensorFlow and
    a model before Dask pauses it (it would pause at its first task, for ever)."""
    from ..predict_memory import BASELINE_BYTES

    memory = worker_memory(client)
    if memory is not None and memory[0] <= BASELINE_BYTES:
        usable, limit = memory
        raise DlsuiteInputError(
            f"--scheduler {address}: its smallest worker can use {usable / 2**30:.1f} GiB "
            f"({pause_note(usable, limit)}); TensorFlow and a model alone need about "
            f"{BASELINE_BYTES / 2**30:.1f} GiB: start workers with a larger memory limit "
            f"(e.g. dask worker {address} --memory-limit 4GiB)")


def worker_memory(client) -> tuple[int, int] | None:
    """``(usable, limit)`` bytes of the cluster's smallest worker: its memory limit and the
    part of it a task may use before Dask pauses the worker (``distributed.worker.memory.
    pause``, 80 % by default; a paused worker never resumes while TensorFlow holds its
    memory, so the prediction would wait for ever). None when no worker states a limit
    (``--memory-limit 0``)."""
    import dask

    limits = [int(w.get("memory_limit") or 0)
              for w in client.scheduler_info().get("workers", {}).values()]
    limits = [n for n in limits if n > 0]
    if not limits:
        return None
    pause = dask.config.get("distributed.worker.memory.pause", 0.8) or 1.0
    return int(min(limits) * float(pause)), min(limits)


#: Seconds between two looks at a running job's futures and workers.
_POLL = 0.5


_MEMORY_WAY = ("give the workers more memory (dask worker {address} --memory-limit 8GiB) or "
               "predict block by block (--block-size 1024; with --tile-size none the model "
               "sees whole images), then {rerun}")
#: How to go on after a stopped job, in the errors of :func:`completed`.
RERUN = "run the same command again (finished outputs are kept)"


def _killed_worker(client, future, rerun: str = RERUN) -> DlsuiteInputError | None:
    """The error for a task that killed every worker it ran on (Dask's KilledWorker: a
    worker's nanny restarts it at 95% of its memory limit), None for any other outcome."""
    if future.status != "error":
        return None
    from distributed import KilledWorker

    exc = future.exception()
    if not isinstance(exc, KilledWorker):
        return None
    address = client.scheduler.address
    return DlsuiteInputError(
        f"--scheduler {address}: task {exc.args[0] if exc.args else future.key!r} ended "
        "every worker that ran it (Dask restarts a worker that goes over 95% of its memory "
        "limit; the workers' logs say why); " + _MEMORY_WAY.format(address=address,
                                                                  rerun=rerun))


def _all_paused(workers: dict | None) -> bool:
    """Whether every worker of the scheduler's ``workers`` info is paused (none: False)."""
    return bool(workers) and all(w.get("status") == "paused" for w in workers.values())


def completed(client, futures: Iterable, *, timeout: float | None = None,
              rerun: str = RERUN) -> Iterator:
    """The ``futures`` in the order they finish (as ``distributed.as_completed``), watching
    the cluster meanwhile: DlsuiteInputError when it has had no worker, or only workers Dask
    paused for want of memory, for :func:`scheduler_timeout` seconds (every worker gone,
    e.g. SLURM jobs at their wall time, or stuck above 80% of its memory limit: the tasks
    would wait for ever), or when a task killed every worker it ran on (memory); TimeoutError
    when ``timeout`` seconds pass without all of them done. ``rerun``: how the errors say
    to go on."""
    from distributed import as_completed

    pending = as_completed(futures)
    grace = scheduler_timeout()
    deadline = None if timeout is None else time.monotonic() + timeout
    alone_since = paused_since = None
    while not pending.is_empty():
        if pending.has_ready():
            for future in pending.next_batch(block=False):
                killed = _killed_worker(client, future, rerun)
                if killed is not None:
                    raise killed
                yield future
            continue
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise TimeoutError(f"{pending.count()} task(s) not done within {timeout:g} s")
        workers = client.scheduler_info().get("workers")
        alone_since = None if workers else (alone_since or now)
        paused_since = (paused_since or now) if _all_paused(workers) else None
        address = client.scheduler.address
        if alone_since is not None and now - alone_since > grace:
            raise DlsuiteInputError(
                f"--scheduler {address}: every worker left and none came "
                f"back within {grace:g} s (DLSUITE_SCHEDULER_TIMEOUT), {pending.count()} "
                f"task(s) not done; start workers, then {rerun}")
        if paused_since is not None and now - paused_since > grace:
            raise DlsuiteInputError(
                f"--scheduler {address}: every worker has been paused by Dask for want of "
                f"memory (above 80% of its memory limit) for {grace:g} s "
                f"(DLSUITE_SCHEDULER_TIMEOUT), {pending.count()} task(s) not done; "
                + _MEMORY_WAY.format(address=address, rerun=rerun))
        time.sleep(_POLL)


# --------------------------------------------------------------------------------------------
# worker side: the model loaded once per worker process

_CACHE: dict = {}
_LOCK = threading.Lock()
_SETTINGS: dict = {"steady_malloc": False}


def _single_threaded_tf() -> None:
    """On a single-threaded Dask worker, let TensorFlow use one thread too, so N workers on N
    cores do not oversubscribe them (only possible before TF's runtime starts)."""
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    if threads != 1 or os.environ.get("DLSUITE_WORKER_TF_THREADS") == "all":
        return
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # runtime already started: keep its threads
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


#: glibc ``mallopt`` parameters (malloc.h) and the steady state of its dynamic thresholds.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_STEADY, _TRIM_STEADY = 32 << 20, 64 << 20


def _steady_malloc() -> bool:
    """Undo, in this worker process, the ``MALLOC_TRIM_THRESHOLD_=65536`` Dask's nanny starts
    workers with (``distributed.nanny.pre-spawn-environ``); True when done.

    Setting that variable also freezes glibc's mmap threshold at 128 KiB, so every tile and
    activation array TensorFlow and numpy allocate is mmapped afresh and page-faulted in, and
    freed at once: measured 1.86 CPU-s per 1022x1024 image on a worker against 1.0 in one
    process (three times the page faults). The thresholds are set to the values glibc's own
    dynamic rule settles on (32 MiB mmap, 64 MiB trim). Skipped off glibc, when the variable
    is absent, or with ``DLSUITE_WORKER_MALLOC=keep``; only in a Dask worker (a local
    cluster's nanny leaks the variable into the client process, whose glibc never read it)."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or \
            os.environ.get("DLSUITE_WORKER_MALLOC") == "keep":
        return False
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: its thresholds are not ours to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_STEADY)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_STEADY))
    _SETTINGS["steady_malloc"] = done
    return done


def worker_predictor(run_dir: str, options: tuple, postprocess: bool):
    """``(predictor, chain, lock)`` of the run ``run_dir`` with the inference ``options``
    (sorted ``(key, value)`` pairs for :func:`dlsuite.predict.open_run`, a chain and
    overrides as JSON text: :func:`dlsuite.scale.run_options.worker_run`), loaded once per
    process and reused by every later task with the same key (``chain`` None without
    ``postprocess``); ``lock`` serializes use of the model within the process."""
    key = (run_dir, options, postprocess)
    with _LOCK:
        if key not in _CACHE:
            _single_threaded_tf()
            _steady_malloc()
            from ..inference import build_postprocess
            from ..predict import open_run
            from .run_options import open_options

            pred = open_run(run_dir, quiet=True, **open_options(options))
            chain = (build_postprocess(pred.ctx.config.postprocess, pred.ctx.registry)
                     if postprocess else None)
            _CACHE[key] = (pred, chain, threading.Lock())
        return _CACHE[key]


def worker_settings() -> dict:
    """What this worker process runs with (tests, benchmarks): ``tf_threads`` (intra, inter;
    None before TensorFlow is imported), ``steady_malloc`` (:func:`_steady_malloc` applied),
    ``profiler`` (Dask's statistical profiler on)."""
    import sys

    import dask

    tf = sys.modules.get("tensorflow")
    threads = None if tf is None else (tf.config.threading.get_intra_op_parallelism_threads(),
                                       tf.config.threading.get_inter_op_parallelism_threads())
    return {"tf_threads": threads, "steady_malloc": _SETTINGS["steady_malloc"],
            "profiler": bool(dask.config.get("distributed.worker.profile.enabled"))}


def cached_models() -> int:
    """How many models this process holds (tests: one per worker)."""
    return len(_CACHE)
