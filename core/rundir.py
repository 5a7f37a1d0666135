"""The run directory of a training run: where each file lives, and the rule for reusing one.

Layout (``config.output_dir``)::

    config.json          resolved config + config_hash + package versions + plugin provenance
    run.log              log of the run
    history.csv          one row per epoch (all Keras logs + learning_rate)
    metrics.json         final training and test metrics (test.matching: per IoU threshold;
                         test.unavailable: requested metrics not computed, and why)
                         + plugin provenance
    postprocess.json     post-processing values tuned on data.val (used by predict and test)
    checkpoints/         best.keras, last.keras, epoch_NNNN.keras
    checkpoints/resume/  model.weights.h5 + optimizer.npz + state.json (resumable state)
    logs/                TensorBoard
    predictions/         predicted probabilities and masks of the test set (ctc/: tracked
                         NN_RES folders of test videos; test_videos/: the test frames
                         rebuilt into videos by data.videos_csv)
    report/              PNG pictures (training curves, test overlays)
    wandb/               offline W&B run files
    export/              the model exported (export.formats, dlsuite export)
    test/best, test/last predictions and metrics of dlsuite test with that checkpoint

A run directory carries the marker ``.dlsuite-run`` (:mod:`dlsuite.ownership`); it is reused
only with ``resume`` or ``overwrite``, and ``overwrite`` removes only what the run wrote. No
TensorFlow is imported here.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from .errors import DlsuiteInputError
from .fileio import to_jsonable, write_json_atomic
from .run_layout import PERIODIC_ENTRY, RUN_ENTRIES, RUN_OWN_NAMES  # re-exported

__all__ = ["RunDir", "prepare_run_dir", "flatten_keys", "read_json", "load_run_config", "package_versions",
           "write_run_config", "config_changes", "describe_changes", "resume_changes",
           "RUN_ENTRIES", "RUN_OWN_NAMES", "FIXED_ON_RESUME", "KEPT_ON_RESUME"]

log = logging.getLogger("dlsuite")


@attrs.frozen
class RunDir:
    """Paths of one run directory (nothing is created by constructing it)."""

    root: Path

    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    @property
    def history_csv(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.keras"

    def periodic(self, epoch: int) -> Path:
        """``checkpoints/epoch_NNNN.keras`` for the 1-based ``epoch``."""
        return self.root / PERIODIC_ENTRY.format(epoch=epoch)

    @property
    def resume_dir(self) -> Path:
        return self.checkpoints / "resume"

    @property
    def resume_state(self) -> Path:
        return self.resume_dir / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def is_run(self) -> bool:
        """True when the folder already holds a run (a ``config.json``)."""
        return self.config_json.is_file()

    def make(self) -> "RunDir":
        """Create the folders of the run; returns self."""
        for folder in (self.root, self.checkpoints, self.resume_dir, self.logs, self.report):
            folder.mkdir(parents=True, exist_ok=True)
        return self


#: Config keys (dotted prefixes) that cannot change when a run is resumed: the saved weights
#: and optimizer state belong to them.
FIXED_ON_RESUME = ("model", "datagen.target", "data.layout", "optimizer.name",
                   "train.mixed_precision")
#: Config keys whose new value is not used on resume (the run keeps its own); listed, not
#: refused.
KEPT_ON_RESUME = ("seed",)
#: Config keys not compared on resume (the folder is the same run whatever they say).
_NOT_COMPARED = ("output_dir", "schema_version")


def _run_entries(loaded: Any) -> tuple[str, ...]:
    entries = list(RUN_ENTRIES)
    if loaded is not None:  # a relative path inside the run (checked by the config)
        entries.append(Path(loaded.config.inference.output_folder).parts[0])
    return tuple(dict.fromkeys(entries))


def _output_folder_refusal(run: RunDir, output_folder: str | None) -> str | None:
    """A refusal when ``inference.output_folder`` names a folder of the run directory that
    its marker does not record: the user's, which the run would adopt as its own (and a
    later ``--overwrite`` remove with everything in it)."""
    from .ownership import OwnedFolder

    if output_folder is None:
        return None
    top = Path(output_folder).parts[0]
    marker = OwnedFolder(run.root, "run").read()
    if marker is None or not (run.root / top).exists() or any(
            Path(e).parts[:1] == (top,) for e in marker.written):
        return None
    return (f"{run.root / top}: inference.output_folder names an existing folder dlsuite did "
            "not write in the run directory; the run would take it as its own (and a later "
            "--overwrite remove it): choose another inference.output_folder, or move it")


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def flatten_keys(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` for nested dicts (a non-empty dict's keys joined with dots; lists
    and empty dicts are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten_keys(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_changes(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` for every key whose value differs between two
    unstructured configs (lists compare as a whole; a missing key is None; when a plugin
    choice's ``name`` changed, only that key is listed, not the parameters)."""
    a = flatten_keys(json.loads(json.dumps(to_jsonable(old))))
    b = flatten_keys(json.loads(json.dumps(to_jsonable(new))))
    changed = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
               if a.get(k) != b.get(k) and not _under(k, _NOT_COMPARED)}
    # another plugin chosen (``X.name``): its parameters are not changes of the old ones
    switched = tuple(k[: -len(".name")] for k in changed if k.endswith(".name"))
    return {k: v for k, v in changed.items()
            if k.endswith(".name") or not _under(k, switched)}


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    """``key old -> new, ...`` (long values shortened)."""
    return ", ".join(f"{k} {_short(a)} -> {_short(b)}" for k, (a, b) in changes.items())


def resume_changes(run: RunDir, loaded: Any, registry: Any) -> dict[str, tuple[Any, Any]]:
    """The config changes of ``loaded`` against the run's ``config.json`` (see
    :func:`config_changes`). DlsuiteInputError listing them when a key of
    :data:`FIXED_ON_RESUME` changed (before any model is built); otherwise the changes are
    logged (keys of :data:`KEPT_ON_RESUME` as not applied) and returned."""
    from .config.converter import unstructure_config

    saved = read_json(run.config_json)
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise DlsuiteInputError(f"{run.config_json}: no \"config\" key; not written by dlsuite")
    changes = config_changes(saved["config"], unstructure_config(loaded.config, registry))
    fixed = {k: v for k, v in changes.items() if _under(k, FIXED_ON_RESUME)}
    if fixed:
        raise DlsuiteInputError(
            f"{run.root}: cannot resume with a changed {describe_changes(fixed)}: the saved "
            "weights and optimizer state belong to the run's values. Put them back in the "
            "config to resume, or start a new run (another output_dir, or --overwrite)")
    kept = {k: v for k, v in changes.items() if _under(k, KEPT_ON_RESUME)}
    applied = {k: v for k, v in changes.items() if k not in kept}
    if applied:
        log.warning("resuming with a changed config: %s", describe_changes(applied))
    if kept:
        log.warning("not applied on resume (the run keeps its own): %s", describe_changes(kept))
    return changes


def _remove_stale_temporaries(run: RunDir) -> None:
    """Temporary files of atomic writes a killed process left behind (``.tmp-*``)."""
    for folder in (run.root, run.checkpoints, *run.resume_dir.glob("*")):
        if folder.is_dir():
            for tmp in folder.glob(".tmp-*"):
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)


_REUSE_HINT = ("pass --resume to continue it or --overwrite to replace it, or choose another "
               "output_dir")
#: A run without a resumable state: killed (e.g. for want of memory) or failed before the
#: end of its first epoch. --resume cannot help; saying so ends a loop of advice.
_RESTART = "pass --overwrite to start it again, or choose another output_dir"
_STOPPED_HINT = f"it stopped before its first epoch ended, with nothing to resume: {_RESTART}"


def _reuse_hint(run: RunDir) -> str:
    """What to pass for a folder already holding ``run``."""
    return _REUSE_HINT if run.resume_state.is_file() else _STOPPED_HINT


def _flags_refusal(run: RunDir, *, resume: bool, overwrite: bool) -> str | None:
    """Why ``--resume`` / ``--overwrite`` cannot apply to ``run`` (None: they can)."""
    from .ownership import OwnedFolder

    if resume and overwrite:
        return "--resume and --overwrite exclude each other: pick one"
    if resume and not run.resume_state.is_file():
        missing = run.resume_state.relative_to(run.root)
        if run.root.is_dir() and OwnedFolder(run.root, "run").read() is not None:
            return (f"{run.root}: nothing to resume (no {missing}): the run stopped before "
                    f"its first epoch ended; {_RESTART}")
        return (f"{run.root}: nothing to resume (no {missing}); run without --resume to start "
                "a new run")
    return None


def run_dir_refusal(output_dir: str | os.PathLike, *, resume: bool = False,
                    overwrite: bool = False, output_folder: str | None = None) -> str | None:
    """What :func:`prepare_run_dir` would refuse ``output_dir`` with for these flags (None:
    it would take it), found without creating, locking or removing anything, so that a
    run says it before reading the data's pixels. ``output_folder``: the config's
    ``inference.output_folder``, refused when it names a folder of the user's there."""
    from . import folder_lock
    from .ownership import OwnedFolder

    run = RunDir(Path(output_dir).expanduser().resolve())
    flags = _flags_refusal(run, resume=resume, overwrite=overwrite)
    if flags is not None or resume:
        return (flags or _output_folder_refusal(run, output_folder)
                or folder_lock.in_use(run.root, "output_dir"))
    return OwnedFolder(run.root, "run").refusal(
        overwrite=overwrite, holds="a run", hint=_reuse_hint(run),
        in_use=lambda: folder_lock.in_use(run.root, "output_dir")) or \
        _output_folder_refusal(run, output_folder)


def prepare_run_dir(output_dir: str | os.PathLike, *, resume: bool = False,
                    overwrite: bool = False, loaded: Any = None,
                    registry: Any = None) -> RunDir:
    """Return the (created) run directory at ``output_dir``, applying the reuse rule.

    A run directory carries the marker ``.dlsuite-run`` (:mod:`dlsuite.ownership`) recording
    the entries of :data:`RUN_ENTRIES` (plus ``inference.output_folder`` of ``loaded``).

    * a new or empty folder becomes a run;
    * a non-empty folder without the marker (e.g. ``output_dir: "."`` beside the user's own
      files) is refused, also with ``overwrite``: nothing in it is touched;
    * a run (the marker) without a flag: DlsuiteInputError saying to pass ``--resume`` or
      ``--overwrite``;
    * ``overwrite``: what the run wrote (the recorded entries) is deleted first; files the
      user added beside them stay;
    * ``resume``: the folder must hold a resumable state (``checkpoints/resume/state.json``),
      else DlsuiteInputError; with ``loaded`` (and ``registry``), a changed config key that
      cannot change on resume is refused and the others are logged
      (:func:`resume_changes`); nothing is deleted but stale temporary files.
    ``resume`` and ``overwrite`` together are refused. A location that cannot be written
    (read-only, full) is DlsuiteInputError naming it.

    The returned run directory is locked for this process (:mod:`dlsuite.folder_lock`;
    the caller releases it with ``folder_lock.release(run.root)``): a run directory another
    process is writing is refused (DlsuiteInputError naming it and that process) before
    anything in it is removed or written.
    """
    from . import folder_lock
    from .ownership import OwnedFolder, output_error

    run = RunDir(Path(output_dir).expanduser().resolve())
    if run.root.exists() and not run.root.is_dir():
        raise DlsuiteInputError(f"{run.root}: output_dir exists and is not a folder")
    flags = _flags_refusal(run, resume=resume, overwrite=overwrite)
    if flags is not None:
        raise DlsuiteInputError(flags)
    folder = OwnedFolder(run.root, "run")
    entries = _run_entries(loaded)
    adopted = _output_folder_refusal(
        run, loaded.config.inference.output_folder if loaded is not None else None)
    if adopted is not None:
        raise DlsuiteInputError(adopted)

    lock = folder_lock.LazyLock(run.root, "output_dir")
    try:
        if resume:
            lock.acquire()
            if loaded is not None:
                resume_changes(run, loaded, registry)
            folder.record(entries)  # also adopts a run written before the marker existed
            _remove_stale_temporaries(run)
        else:
            folder.claim(overwrite=overwrite, written=entries, holds="a run",
                         hint=_reuse_hint(run),
                         before_write=lock.acquire)
        return run.make()
    except BaseException as exc:
        lock.release()
        if isinstance(exc, OSError):
            raise output_error(exc.filename or run.root, exc) from None
        raise


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by this module; a broken file raises DlsuiteInputError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DlsuiteInputError(f"{path}: cannot read: {exc}") from None


def load_run_config(run_dir: str | os.PathLike, registry: Any = None) -> Any:
    """The validated config of the run in ``run_dir`` (from its ``config.json``, whose
    ``"config"`` key holds the resolved config), as a ``LoadedConfig``; data paths are not
    checked. DlsuiteInputError when the folder holds no run."""
    from .config import parse_config

    run = RunDir(Path(run_dir))
    if not run.is_run():
        raise DlsuiteInputError(f"{run.root}: not a dlsuite run directory (no config.json)")
    data = read_json(run.config_json)
    if not isinstance(data, dict) or "config" not in data:
        raise DlsuiteInputError(f"{run.config_json}: no \"config\" key; not written by dlsuite")
    return parse_config(data["config"], registry, source=str(run.config_json), check_paths=False)


def package_versions() -> dict[str, str | None]:
    """Versions of python, dlsuite, tensorflow, keras, numpy, wandb (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dists in (("dlsuite", ("dlsuite",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")),
                        ("keras", ("keras",)), ("numpy", ("numpy",)), ("wandb", ("wandb",))):
        out[name] = None
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def write_run_config(run: RunDir, loaded: Any, registry: Any, *, seed: int | None,
                     resumed: bool) -> dict:
    """Write ``config.json`` of the run: ``{"config": resolved config, "config_hash",
    "versions", "provenance" (plugin, distribution and version of every chosen plugin,
    :func:`dlsuite.provenance.provenance`), "seed", "source", "legacy_migrated", "overrides" (``--set``), "created", "resumed",
    "resume_changes"}``. ``created``, earlier ``resumed`` times and ``resume_changes`` are
    kept from a previous file; a resume with a changed config appends ``{"time",
    "after_epoch", "changes": {key: [old, new]}, "not_applied": [keys the run keeps]}`` to
    ``resume_changes``. Returns what was written."""
    from .config import config_hash
    from .config.converter import unstructure_config
    from .provenance import provenance

    config = loaded.config
    previous = read_json(run.config_json) if run.config_json.is_file() else {}
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = {
        "config": unstructure_config(config, registry),
        "config_hash": config_hash(config, registry),
        "versions": package_versions(),
        "provenance": provenance(config, registry),
        "seed": seed,
        "source": loaded.source,
        "legacy_migrated": loaded.is_legacy,
        "overrides": dict(getattr(loaded, "overrides", {}) or {}),
        "created": previous.get("created", now),
        "resumed": previous.get("resumed", []) + ([now] if resumed else []),
        "resume_changes": list(previous.get("resume_changes", [])),
    }
    if resumed and isinstance(previous.get("config"), dict):
        changes = config_changes(previous["config"], data["config"])
        if changes:
            state = read_json(run.resume_state) if run.resume_state.is_file() else {}
            data["resume_changes"].append({
                "time": now, "after_epoch": state.get("epoch") if isinstance(state, dict) else None,
                "changes": {k: [a, b] for k, (a, b) in changes.items()},
                "not_applied": [k for k in changes if _under(k, KEPT_ON_RESUME)]})
    write_json_atomic(run.config_json, data)
    return data
