"""Training on several devices or hosts: ``train.distribute`` as a ``tf.distribute`` strategy.

:func:`start_distribution` turns the config section into a :class:`Distribution` before the
run directory exists (so a bad cluster or a batch that does not split is refused with
nothing written):

* ``none``: no strategy, TensorFlow not imported here.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` on the named ``devices`` or on every GPU
  of the host (the CPU when there is none).
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` on the cluster of
  ``TF_CONFIG`` or, without it, of the SLURM job step (``SlurmClusterResolver``: one task
  per host, started with ``srun``). It must be created before TensorFlow runs any op.

``datagen.batch_size`` is the global batch: it must divide by the replicas
(``num_replicas_in_sync``); each replica takes ``batch_size / replicas`` images a step.
The chief (``chief`` task, else worker 0) writes the run directory; every other worker runs
the same callbacks into a scratch folder removed at the end (the same saves on every worker,
so no worker waits on a collective the others never start).

Keras 3 on TensorFlow has two known defects with ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585, tensorflow/tensorflow#72388; seen with Keras 3.15 / TF 2.21):
``fit`` fails before the first step (``Attempt to convert a value (PerReplica...)``, the
symbolic build reduces a per-replica batch) and then at the first step (``Invalid reduction
dimension 0 for input with 0 dimensions``, the scalar logs are reduced along axis 0).
:func:`patch_keras_for_multi_worker` works around both for the process; when the Keras
internals it relies on are not there, ``multi_worker`` is refused with a clear message
instead of failing (or hanging) mid-fit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import attrs

from .config.rules import device_name, device_problems
from .errors import DlsuiteInputError

__all__ = ["Distribution", "start_distribution", "patch_keras_for_multi_worker",
           "cluster_source"]

log = logging.getLogger("dlsuite.training")


@attrs.frozen
class Distribution:
    """The strategy of a run and this process's place in it.

    ``strategy`` is None for ``none``; ``replicas`` = ``num_replicas_in_sync``; ``workers``
    the processes (hosts) of the cluster, ``worker_index`` this one's input-pipeline id
    (the chief is 0); ``is_chief`` whether this process writes the run directory."""

    kind: str = "none"
    strategy: Any = None
    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    is_chief: bool = True
    devices: tuple[str, ...] = ()

    def scope(self):
        """The strategy's scope (a no-op context without a strategy)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        """One line for the log: strategy, replicas, devices, workers."""
        if self.strategy is None:
            return "distribution: none (one device)"
        where = f" on {', '.join(self.devices)}" if self.devices else ""
        workers = (f", {self.workers} workers, this is worker {self.worker_index}"
                   f"{' (chief)' if self.is_chief else ''}" if self.kind == "multi_worker"
                   else "")
        return f"distribution: {self.kind}, {self.replicas} replicas{where}{workers}"


def start_distribution(config) -> Distribution:
    """The :class:`Distribution` of ``config.train.distribute`` (see the module docstring).

    Raises DlsuiteInputError (exit 2), before anything is written, for named devices that
    do not exist, a ``TF_CONFIG`` that is not a cluster spec, ``multi_worker`` outside a
    cluster, a Keras whose multi-worker defects cannot be worked around, or a
    ``datagen.batch_size`` that does not divide by the replicas."""
    from .threads import limit_threads

    limit_threads()  # DLSUITE_THREADS: before the runtime starts
    section = config.train.distribute
    batch = int(config.datagen.batch_size)
    problems = device_problems(section, batch)
    if problems:
        raise DlsuiteInputError(f"{problems[0][0]}: {problems[0][1]}")
    if section.strategy == "none":
        return Distribution()
    if section.strategy == "mirrored":
        dist = _mirrored(section)
    else:
        dist = _multi_worker()
    if batch % dist.replicas:
        ok = -(-batch // dist.replicas) * dist.replicas
        raise DlsuiteInputError(
            f"$.datagen.batch_size: {batch} (the global batch) is not divisible by the "
            f"{dist.replicas} replicas of train.distribute.strategy {dist.kind!r}: each "
            f"replica takes batch_size / {dist.replicas} images per step; use e.g. {ok}")
    return dist


def _mirrored(section) -> Distribution:
    import tensorflow as tf

    wanted = [device_name(d) for d in section.devices]
    if wanted:
        known = {device_name(d.name.rpartition("/device:")[2] or d.name)
                 for d in tf.config.list_logical_devices()}
        missing = [d for d, full in zip(section.devices, wanted) if full not in known]
        if missing:
            shown = ", ".join(sorted(k.replace("/device:", "") for k in known if k))
            raise DlsuiteInputError(
                f"$.train.distribute.devices: {', '.join(missing)} not on this host "
                f"(its devices: {shown})")
    strategy = tf.distribute.MirroredStrategy(devices=wanted or None)
    devices = tuple(d.rpartition("/device:")[2] or d for d in strategy.extended.worker_devices)
    return Distribution("mirrored", strategy, int(strategy.num_replicas_in_sync), 1, 0, True,
                        devices)


def cluster_source(environ=None) -> str:
    """Where ``multi_worker`` finds its cluster: ``"tf_config"`` (``TF_CONFIG`` set) or
    ``"slurm"`` (a SLURM job step of several tasks started by ``srun``); DlsuiteInputError
    otherwise or when
    ``TF_CONFIG`` is not a cluster spec naming this task."""
    env = os.environ if environ is None else environ
    raw = env.get("TF_CONFIG", "").strip()
    if raw:
        try:
            spec = json.loads(raw)
            cluster, task = spec["cluster"], spec["task"]
            members = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
            kind, index = task["type"], int(task["index"])
            if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
                raise ValueError(f"task {kind!r} {index} is not in the cluster")
            if not members:
                raise ValueError("no 'chief' or 'worker' addresses")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DlsuiteInputError(
                f"TF_CONFIG: not a usable cluster spec ({type(exc).__name__}: {exc}); "
                'expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
                '"worker", "index": N}}') from None
        return "tf_config"
    # SLURM_STEP_NUM_TASKS is set by srun only: the batch script itself is no cluster
    if int(env.get("SLURM_STEP_NUM_TASKS", "0") or 0) > 1 and "SLURM_PROCID" in env:
        return "slurm"
    raise DlsuiteInputError(
        "$.train.distribute.strategy: 'multi_worker' needs a cluster: set TF_CONFIG on each "
        "worker, or start one task per host with srun in a SLURM job; for the GPUs of one "
        "host use 'mirrored'")


#: The multi-worker Distribution of this process per cluster source: TensorFlow can set up its
#: collective runtime only once, so a second run in the process (a resume) reuses it.
_STARTED: dict[tuple[str, str], Distribution] = {}


def _multi_worker() -> Distribution:
    source = cluster_source()
    key = (source, os.environ.get("TF_CONFIG", ""))
    if key in _STARTED:
        return _STARTED[key]
    patch_keras_for_multi_worker()
    import tensorflow as tf

    resolver = (tf.distribute.cluster_resolver.TFConfigClusterResolver() if source == "tf_config"
                else tf.distribute.cluster_resolver.SlurmClusterResolver())
    try:
        with _signals_end_the_wait():
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except RuntimeError as exc:
        raise DlsuiteInputError(
            f"train.distribute.strategy 'multi_worker': TensorFlow could not start the "
            f"collective runtime ({exc}); it must be created before TensorFlow runs anything "
            "in the process (start dlsuite train afresh, not from a process that already "
            "used TensorFlow)") from None
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    kind, index = resolver.task_type, int(resolver.task_id)
    position = index + (chiefs if kind == "worker" else 0)
    dist = _STARTED[key] = Distribution("multi_worker", strategy,
                                        int(strategy.num_replicas_in_sync), chiefs + workers,
                                        position, position == 0)
    return dist


@contextlib.contextmanager
def _signals_end_the_wait():
    """While TensorFlow sets up the cluster it waits in C++ for the other workers (for ever,
    if one never starts) holding the GIL: no Python code runs, so no Python signal handler
    either, and Ctrl-C did nothing. Here SIGINT and SIGTERM take their default action
    instead: SIGINT ends the process (a shell reports 130; nothing of the run is written
    yet). SIGTERM would too, but TensorFlow (2.21) installs its own SIGTERM handler during
    this set-up, which catches it (docs/scale.md). A signal the process ignores stays
    ignored. The handlers are restored afterwards. Main thread only (elsewhere the block
    runs as it is)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def patch_keras_for_multi_worker() -> None:
    """Work around Keras 3's two ``MultiWorkerMirroredStrategy`` defects (module
    docstring), once per process: the symbolic build gets this worker's first local batch
    instead of a cross-worker reduction of it, and scalar step outputs are averaged over
    the replicas with ``axis=None``. Only multi-worker strategies take the new paths.
    Raises DlsuiteInputError when this Keras lacks the internals patched."""
    import keras

    try:
        import keras.src.backend.tensorflow.trainer as kt
        trainer = kt.TensorFlowTrainer
        original_build = trainer._maybe_symbolic_build
        original_reduce = kt.reduce_per_replica
        is_multi_worker = kt._collective_all_reduce_multi_worker
        tree = kt.tree
    except (ImportError, AttributeError) as exc:
        raise DlsuiteInputError(
            f"train.distribute.strategy 'multi_worker': Keras {keras.__version__} with "
            "TensorFlow fails under MultiWorkerMirroredStrategy (keras-team/keras#20585) and "
            f"dlsuite's workaround does not fit this Keras ({exc}); use 'mirrored' on one "
            "host, or the Keras 3.15 dlsuite is tested with") from None
    if getattr(original_reduce, "_dlsuite_patch", False):
        return
    import tensorflow as tf

    def _local(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tree.map_structure(lambda v: _local(v, strategy), next(it))
            break
        return original_build(self, data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    reduce_per_replica._dlsuite_patch = True
    trainer._maybe_symbolic_build = _maybe_symbolic_build
    kt.reduce_per_replica = reduce_per_replica
    log.info("Keras %s: multi-worker workarounds applied (keras-team/keras#20585)",
             keras.__version__)
