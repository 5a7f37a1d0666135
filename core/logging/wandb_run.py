"""A Weights & Biases run that never raises into training.

:class:`WandbRun` wraps ``wandb``: every call is guarded; a failure logs one warning (per
operation) and the run carries on without W&B. Mode: ``WANDB_MODE`` from the environment wins
over the config's ``wandb.mode`` (default ``offline``: no account, no network; ``wandb sync``
later). Files go to ``<run_dir>/wandb``. Resuming passes the previous run id, so the same W&B
run continues (``resume="allow"``).

Online without a network: before ``wandb.init`` the W&B server (``WANDB_BASE_URL``, or the
HTTPS proxy when one is set) is probed with a TCP connection of at most
:data:`PROBE_SECONDS`; when it does not answer, or when the online start itself fails, the run
logs offline instead (one warning saying how to upload it later with ``wandb sync``), so
nothing is lost and training is not held up. An invalid ``WANDB_MODE`` is one warning line
(``dlsuite run`` refuses it before starting: :func:`invalid_env_mode`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

__all__ = ["WandbRun", "resolve_mode", "invalid_env_mode", "server_unreachable",
           "image_with_masks", "flatten_config", "override_tags", "visible_overrides",
           "model_artifact_name", "PROBE_SECONDS", "JOB_TRAIN", "JOB_EVALUATE", "JOB_PREDICT",
           "JOB_SWEEP_TRIAL"]

log = logging.getLogger("dlsuite.wandb")

MODES = ("offline", "online", "disabled")
#: W&B's own spellings accepted in ``WANDB_MODE`` besides :data:`MODES`.
_ENV_ALIASES = {"dryrun": "offline", "run": "online"}
#: Longest wait for the W&B server (or proxy) to accept a TCP connection, and for an online
#: ``wandb.init`` before logging offline instead.
PROBE_SECONDS = 3.0
ONLINE_INIT_SECONDS = 15
_warned_env: set[str] = set()
#: W&B ``job_type`` of each kind of dlsuite run (W&B: "the function of a run"; the dashboard
#: groups and filters runs by it): ``dlsuite train``/``run``, ``dlsuite test``,
#: ``dlsuite predict``, a trial of ``dlsuite sweep`` (set through ``wandb.job_type``).
JOB_TRAIN, JOB_EVALUATE, JOB_PREDICT, JOB_SWEEP_TRIAL = "train", "evaluate", "predict", \
    "sweep-trial"
#: Overrides that only place a run (its folder, name, W&B group and tags): not shown as the
#: run's overrides, not tags.
_PLACEMENT = ("output_dir", "name", "wandb.")
_TAG_LENGTH = 64  # W&B refuses longer tags


def _env_mode() -> str:
    return os.environ.get("WANDB_MODE", "").strip().lower()


def invalid_env_mode() -> str | None:
    """The value of ``WANDB_MODE`` when it is set but not a W&B mode (online, offline,
    disabled, or W&B's dryrun/run), else None."""
    env = _env_mode()
    if not env or env in MODES or env in _ENV_ALIASES:
        return None
    return os.environ["WANDB_MODE"]


def resolve_mode(config_mode: str) -> str:
    """The effective W&B mode: ``WANDB_MODE`` (if valid) else the config's; ``dryrun`` is
    W&B's old spelling of offline. An invalid ``WANDB_MODE`` is one warning (once per
    value) and the config's mode is used."""
    bad = invalid_env_mode()
    if bad is not None:
        if bad not in _warned_env:
            _warned_env.add(bad)
            log.warning("WANDB_MODE=%r is not a W&B mode (online, offline, disabled): using "
                        "the config's wandb.mode %r", bad, config_mode)
        return config_mode
    env = _env_mode()
    return _ENV_ALIASES.get(env, env) if env else config_mode


def _proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
    if parts.hostname and any(parts.hostname.endswith(h.strip().lstrip("*")) for h in
                              no_proxy.split(",") if h.strip()):
        return None
    names = (["HTTPS_PROXY", "https_proxy"] if parts.scheme == "https" else
             ["HTTP_PROXY", "http_proxy"]) + ["ALL_PROXY", "all_proxy"]
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def server_unreachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why the W&B server at ``url`` (or the proxy the environment sets for it) does not
    accept a TCP connection within ``timeout`` seconds (name lookup included), or None when
    it does. Sends nothing."""
    target = _proxy_for(url) or url
    parts = urlsplit(target if "://" in target else f"http://{target}")
    host = parts.hostname
    if not host:
        return f"no host in {target!r}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as exc:
            result.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=probe, daemon=True)  # a DNS lookup has no timeout
    thread.start()
    thread.join(timeout)
    if not result:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return result[0]


@contextmanager
def _wandb_env(mode: str) -> Iterator[None]:
    """``WANDB_MODE`` set to the mode we chose (W&B rejects an invalid one with a long
    error) and W&B's own console messages off, for the duration of ``wandb.init``."""
    keys = {"WANDB_MODE": mode, "WANDB_SILENT": "true"}
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _sync_hint(run_dir) -> str:
    return f"upload it later with: wandb sync {Path(run_dir) / 'wandb'}/offline-run-*"


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested (unstructured) config into dotted keys a dashboard can filter on:
    ``{"model": {"name": "unet", "n_filters": 8}}`` -> ``{"model.name": "unet",
    "model.n_filters": 8}``. Lists of objects (metrics, post-processing chain, augmentations)
    get their index as a key part (``postprocess.0.name``); lists of plain values stay lists;
    an empty object or list is kept as is."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{name}."))
        elif (isinstance(value, (list, tuple)) and value
              and any(isinstance(v, Mapping) for v in value)):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    out.update(flatten_config(item, f"{name}.{i}.") if item
                               else {f"{name}.{i}": {}})
                else:
                    out[f"{name}.{i}"] = item
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def visible_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``--set`` overrides that change what a run does (its folder, name, W&B group and
    tags left out), in their order."""
    return {k: v for k, v in (overrides or {}).items()
            if not (k in _PLACEMENT or k.startswith(_PLACEMENT[-1]))}


def override_tags(overrides: Mapping[str, Any] | None) -> list[str]:
    """One W&B tag ``KEY=VALUE`` per :func:`visible_overrides` entry (strings as they are,
    other values as JSON), cut to W&B's 64 characters."""
    import json

    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}"[:_TAG_LENGTH]
            for k, v in visible_overrides(overrides).items()]


def model_artifact_name(run_name: str) -> str:
    """The name of the ``model`` artifact a run named ``run_name`` logs: ``model-<name>``
    (characters W&B refuses replaced by ``-``)."""
    return "model-" + re.sub(r"[^A-Za-z0-9_.-]", "-", run_name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _base_url(wandb) -> str:
    """``WANDB_BASE_URL``, else the default server of the installed wandb."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    try:
        return str(wandb.Settings().base_url)
    except Exception:  # noqa: BLE001 - settings broken by the environment
        return "https://api.wandb.ai"


def _init(wandb, mode: str, kwargs: dict) -> tuple[Any, str | None]:
    """``(run, None)`` or ``(None, one-line reason)``; never raises."""
    try:
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                  init_timeout=ONLINE_INIT_SECONDS if mode == "online" else 60)
        with _wandb_env(mode):
            return wandb.init(mode=mode, settings=settings, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - W&B must never stop training
        return None, f"{type(exc).__name__}: {_one_line(exc)}"


class WandbRun:
    """A guarded W&B run. ``active`` is False when disabled or when ``wandb.init`` failed;
    every method is then a no-op. ``id`` is the W&B run id (None when not active)."""

    def __init__(self, run: Any = None, wandb_module: Any = None):
        self._run = run
        self._wandb = wandb_module
        self._warned: set[str] = set()

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def start(cls, *, wandb_config: Any, run_dir: str | os.PathLike, name: str,
              config: Mapping[str, Any], resume_id: str | None = None,
              job_type: str = JOB_TRAIN, overrides: Mapping[str, Any] | None = None
              ) -> "WandbRun":
        """Start (or, with ``resume_id``, continue) a run; never raises.

        ``wandb_config`` is the config's ``wandb`` section (mode, project, entity, group,
        tags); ``config`` the unstructured resolved config, logged as the run config with
        flattened dotted keys (:func:`flatten_config`: ``model.n_filters``, ...) plus
        ``overrides``: the run's ``--set`` overrides as one string ``"k=v, k=v"`` (a config
        value the dashboard can group runs by; ``""`` without overrides). ``job_type`` is
        W&B's job type (:data:`JOB_TRAIN`, ...); the tags are the config's followed by one
        ``KEY=VALUE`` tag per override (:func:`override_tags`).
        """
        mode = resolve_mode(wandb_config.mode)
        if mode == "disabled":
            log.info("W&B disabled")
            return cls()
        try:
            import wandb
        except Exception as exc:  # noqa: BLE001 - W&B must never stop training
            log.warning("W&B could not be imported (%s: %s); continuing without W&B",
                        type(exc).__name__, _one_line(exc))
            return cls()
        tags = list(dict.fromkeys([*wandb_config.tags, *override_tags(overrides)]))
        flat = {**flatten_config(config), "overrides": ", ".join(override_tags(overrides))}
        kwargs: dict[str, Any] = dict(
            project=wandb_config.project, entity=wandb_config.entity,
            group=wandb_config.group, job_type=job_type, tags=tags or None,
            name=name, config=flat, dir=str(run_dir), reinit="finish_previous")
        if resume_id:
            kwargs.update(id=resume_id, resume="allow")
        if mode == "online":
            url = _base_url(wandb)
            why = server_unreachable(url)
            if why is not None:
                log.warning("W&B server %s unreachable (%s): logging offline instead; %s",
                            url, why, _sync_hint(run_dir))
                mode = "offline"
        run, error = _init(wandb, mode, kwargs)
        if run is None and mode == "online":
            log.warning("W&B could not start online (%s): logging offline instead; %s",
                        error, _sync_hint(run_dir))
            mode = "offline"
            run, error = _init(wandb, mode, kwargs)
        if run is None:
            log.warning("W&B could not start (%s); continuing without W&B", error)
            return cls()
        log.info("W&B run %s (%s) in %s", run.id, mode, Path(run_dir) / "wandb")
        return cls(run, wandb)

    # ---- state ------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._run is not None

    @property
    def id(self) -> str | None:
        return self._guard("id", lambda: self._run.id) if self.active else None

    def _guard(self, what: str, fn, default: Any = None) -> Any:
        if self._run is None:
            return default
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - W&B must never stop training
            if what not in self._warned:
                self._warned.add(what)
                log.warning("W&B %s failed (%s: %s); training continues",
                            what, type(exc).__name__, exc)
            return default

    # ---- logging ----------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log a dict of values (numbers, ``wandb.Image`` lists) at ``step``."""
        self._guard("log", lambda: self._run.log(dict(data), step=step))

    def offline(self) -> bool:
        """True when the run logs to local files only (offline), False online or inactive."""
        return bool(self._guard("offline", lambda: self._run.offline, False))

    def track_best(self, metric: str, mode: str) -> None:
        """Have W&B keep the ``min`` or ``max`` (``mode``) of the logged ``metric`` in the
        summary (W&B's ``define_metric(summary=...)``: ``val_loss.min`` in the dashboard)."""
        if mode in ("min", "max"):
            self._guard("define_metric", lambda: self._run.define_metric(metric, summary=mode))

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
                  ) -> None:
        """Log a ``wandb.Table`` of ``rows`` (cells: numbers, strings, ``wandb.Image``...)
        under ``key``; nothing when there is no row."""
        if rows:
            self._guard("log_table", lambda: self._run.log(
                {key: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])}))

    def log_images(self, key: str, images: Sequence[Any], step: int | None = None) -> None:
        """Log already-built ``wandb.Image`` objects under ``key``."""
        if images:
            self.log({key: list(images)}, step=step)

    def image(self, image, *, truth=None, prediction=None, class_labels=None, caption=None):
        """A ``wandb.Image`` of a 2D ``image`` with ground-truth and prediction masks, or None."""
        return self._guard("image", lambda: image_with_masks(
            self._wandb, image, truth=truth, prediction=prediction,
            class_labels=class_labels, caption=caption))

    def summary(self, data: Mapping[str, Any]) -> None:
        """Put values (e.g. test metrics) in the run summary."""
        self._guard("summary", lambda: self._run.summary.update(dict(data)))

    def log_model(self, path: str | os.PathLike, *, name: str,
                  metadata: Mapping[str, Any] | None = None, aliases: Sequence[str] = (),
                  extra: Sequence[str | os.PathLike] = ()) -> None:
        """Log the file at ``path`` as a ``model`` artifact named
        :func:`model_artifact_name` of ``name``, an output of this run (``log_artifact``),
        with the files and folders ``extra`` (e.g. exported models; a folder is added under
        its own name)."""
        def go():
            art = self._wandb.Artifact(model_artifact_name(name), type="model",
                                       metadata=dict(metadata or {}))
            art.add_file(str(path))
            for item in map(Path, extra):
                if item.is_dir():
                    art.add_dir(str(item), name=item.name)
                else:
                    art.add_file(str(item))
            self._run.log_artifact(art, aliases=list(aliases) or None)
        self._guard("log_model", go)

    def use_model(self, name: str, alias: str = "latest") -> bool:
        """Mark the model artifact of the run named ``name`` as an input of this run
        (``use_artifact("model-<name>:<alias>")``), so W&B links the evaluation to the
        training run. W&B cannot do this offline: the artifact's name is then only
        recorded in the config (``model_artifact``). True when W&B linked it."""
        ref = f"{model_artifact_name(name)}:{alias}"
        self._guard("config", lambda: self._run.config.update({"model_artifact": ref},
                                                                allow_val_change=True))
        if not self.active or self.offline():
            return False
        return self._guard("use_artifact", lambda: self._run.use_artifact(ref) is not None,
                           False)

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run (idempotent)."""
        if self._run is not None:
            self._guard("finish", lambda: self._run.finish(exit_code=exit_code))
            self._run = None


def image_with_masks(wandb_module, image, *, truth=None, prediction=None,
                     class_labels: Mapping[int, str] | None = None, caption: str | None = None):
    """Build a ``wandb.Image`` of ``image`` (2D, any dtype; its finite pixels scaled to
    0..255 uint8, NaN/Inf pixels 0) with optional ``ground_truth`` and ``prediction`` class
    masks."""
    import numpy as np

    img = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(img)
    lo, hi = (float(img[finite].min()), float(img[finite].max())) if finite.any() else (0, 0)
    img = np.where(finite, img, lo)  # NaN/Inf pixels (data.nonfinite_pixels "mask") shown dark
    img8 = ((img - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(img)).astype(np.uint8)
    labels = dict(class_labels or {})
    masks = {}
    for key, mask in (("ground_truth", truth), ("prediction", prediction)):
        if mask is not None:
            entry: dict[str, Any] = {"mask_data": np.asarray(mask).astype(np.int64)}
            if labels:
                entry["class_labels"] = labels
            masks[key] = entry
    return wandb_module.Image(img8, masks=masks or None, caption=caption)
