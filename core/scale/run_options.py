"""The trained run as the client chose it, in a form Dask workers can open themselves.

``dlsuite predict --scheduler`` and block-wise prediction send each task a *model key*
``(run dir, options, postprocess)``; a worker opens the run once per key
(:func:`dlsuite.scale.cluster.worker_predictor`). :func:`worker_run` builds that key on the
client, before anything is written: the checkpoint, the tiling, and, when the user gave them,
another post-processing chain (``--postprocess CHAIN.json``, sent as its JSON text so that a
worker on another machine does not need the file) and ``--set`` overrides, both validated
exactly as single-process ``dlsuite predict`` validates them
(:func:`dlsuite.inference.chain_choice.load_predict_config`). No TensorFlow is imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..inference.chain_choice import chain_steps_record, read_chain
from ..rundir import RunDir

__all__ = ["WorkerRun", "worker_run", "open_options"]

#: Options sent as JSON text (lists and dicts are not hashable in a cache key).
_JSON_OPTIONS = ("chain", "overrides")


@attrs.frozen
class WorkerRun:
    """``key``: the tasks' model key; ``config``: the run's config as the workers will use it
    (chain, overrides, tuned ``postprocess.json`` and inference options applied);
    ``checkpoint``; ``record``: what ``predict.json`` records of the choice (``chain``:
    ``{"steps", "file"}`` or None without post-processing; ``overrides``)."""

    key: tuple
    config: Any
    checkpoint: Path
    record: dict

    def job(self, input_path, postprocess: bool) -> dict:
        """What a prediction of ``input_path`` with this choice records in its output
        folder's marker and ``predict.json`` (what ``--resume`` compares)."""
        inference = self.config.inference
        return {"run_dir": self.key[0], "checkpoint": str(self.checkpoint),
                "input": str(Path(input_path).expanduser().resolve()),
                "postprocess": postprocess,
                "tiling": {"tile_size": inference.tile_size, "halo": inference.halo,
                           "batch_size": inference.batch_size}, **self.record}


def worker_run(run_dir, registry, *, weights=None, tile_size, halo=None, batch_size=None,
               postprocess: Any = True, overrides: Any = None) -> WorkerRun:
    """The :class:`WorkerRun` of the run in ``run_dir`` with these inference options;
    ``postprocess`` True (the run's chain with its tuned values), False (probabilities only)
    or another chain (a list or a JSON file, as ``dlsuite predict --postprocess``),
    ``overrides`` as ``--set``. DlsuiteInputError / ConfigError naming the run, the chain's
    file or the override, raised before anything is written."""
    from ..inference import choose_checkpoint
    from ..predict import run_predict_config

    given = None if isinstance(postprocess, bool) else postprocess
    loaded = run_predict_config(run_dir, registry, chain=given, overrides=overrides,
                                weights=weights, tile_size=tile_size, halo=halo,
                                batch_size=batch_size)
    cfg = loaded.config
    inference = cfg.inference
    root = Path(run_dir).expanduser()
    checkpoint = choose_checkpoint(RunDir(root.resolve()), inference.weights)
    options = {"weights": str(checkpoint), "tile_size": inference.tile_size,
               "halo": inference.halo, "batch_size": inference.batch_size}
    if given is not None:
        options["chain"] = json.dumps(read_chain(given)[0], sort_keys=True)
    set_values = dict(loaded.overrides or {})
    if set_values:
        options["overrides"] = json.dumps(set_values, sort_keys=True)
    with_labels = postprocess is not False
    record = {"chain": chain_steps_record(cfg, registry, given) if with_labels else None,
              "overrides": set_values}
    key = (str(root.resolve()), tuple(sorted(options.items())), with_labels)
    return WorkerRun(key, cfg, Path(checkpoint), record)


def open_options(options: tuple) -> dict:
    """The keyword arguments of :func:`dlsuite.predict.open_run` for a model key's
    ``options`` (worker side)."""
    out = dict(options)
    for name in _JSON_OPTIONS:
        if name in out:
            out[name] = json.loads(out[name])
    return out
