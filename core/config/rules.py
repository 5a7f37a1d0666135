"""Rules across config sections that need the installed plugins or the data (no TensorFlow).

Single values and the rules inside one section are attrs validators on the schema classes
(:mod:`dlsuite.checks`); what is left needs more than one section and the registry:

* ``datagen.patch_size`` is divisible by the architecture's ``size_multiple`` (``2**pools``
  for the U-Nets, 32 for MobileNetV2 encoders), i.e. ``pools`` downsamplings fit the patch;
* a model with a static input size (ConvLSTM) predicts tiles of ``datagen.patch_size``: the
  halo on both sides must leave a core (only when a test set is to be predicted);
* the loss gets the ``y_true`` channels it needs (``LossSpec.target_channels``, e.g. the
  pixel weights of ``weighted_bce``) from the target (``TargetSpec.channels``);
* the ``postprocess`` chain can work on the outputs of the target's heads (each step's
  ``accepts``/``gives``/``needs``, :mod:`dlsuite.chains`);
* ``export.formats`` lists ``bioimageio`` only with ``data.scale`` 1;

and, when the data paths are checked (a run about to start, not a trained run reopened):

* a training step takes ``datagen.batch_size`` *different* training samples;
* ``datagen.patch_size`` is at most twice the largest training frame (after ``data.scale``)
  in each side: a larger patch is mostly mirrored padding (and memory);
* ``inference.output_folder`` is not one of the run's own files or folders;
* ``output_dir`` is a folder or does not exist yet (a file there is refused before any
  pixel is read), and neither a data folder nor inside one.

Each rule takes ``(config, registry)`` and returns ``(json_path, message)`` problems; they are
run by :func:`dlsuite.config.parse_config` (so ``dlsuite config validate`` reports them) and
again by :func:`dlsuite.preflight.preflight`. Every rule is bounded in time whatever the
values: plugin callables run only on parameters that passed their checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import DlsuiteInputError

__all__ = ["CONFIG_RULES", "DATA_RULES", "config_problems", "data_problems"]

Problem = tuple[str, str]


def _geometry(config, registry) -> dict | str | None:
    """The model geometry; None when a plugin is unknown (reported where its name is); the
    error text when the architecture's ``size_multiple``/``receptive_field`` fail."""
    from ..models import model_geometry
    from ..registry import PluginRejected

    try:
        return model_geometry(config, registry)
    except PluginRejected as exc:  # the plugin's size_multiple/receptive_field refused
        return str(exc)
    except DlsuiteInputError:
        return None
    except Exception as exc:  # noqa: BLE001 - a plugin's geometry callable on these params
        return f"{type(exc).__name__}: {exc}"


def _fewer_pools(config, registry, patch: list[int]) -> str:
    """`` or $.model.pools at most N`` when the architecture has ``pools`` and a smaller
    value fits ``patch`` (at most 64 values tried, downwards), else a generic hint."""
    params = config.model.params
    spec = registry.resolve("architectures", config.model.name).spec
    if not attrs.has(type(params)) or "pools" not in attrs.fields_dict(type(params)):
        return " or fewer pools ($.model.pools)"
    pools_now = int(params.pools)
    for pools in range(pools_now - 1, max(pools_now - 65, 0), -1):
        try:
            m = int(spec.size_multiple(attrs.evolve(params, pools=pools)) or 1)
        except Exception:  # noqa: BLE001 - a value its checks refuse, or a plugin's error
            break
        if all(v % m == 0 for v in patch):
            return f" or $.model.pools at most {pools}"
    return " or fewer pools ($.model.pools)"


def patch_fits_model(config, registry) -> list[Problem]:
    """``datagen.patch_size`` divisible by the model's ``size_multiple``: otherwise the
    decoder's skip connections would not line up (and ``2**pools`` larger than the patch
    leaves nothing to downsample)."""
    geo = _geometry(config, registry)
    if geo is None:
        return []
    if isinstance(geo, str):
        return [("$.model", f"architecture {config.model.name!r}: its size_multiple or "
                            f"receptive_field fails on these parameters ({geo})")]
    m = int(geo["size_multiple"] or 1)
    patch = [int(v) for v in config.datagen.patch_size]
    if not [v for v in patch if v % m]:
        return []
    fit = [max(m, v - v % m) for v in patch]
    return [("$.datagen.patch_size",
             f"{patch} does not fit model {config.model.name!r}: height and width must be "
             f"divisible by {m} (its size_multiple, e.g. 2**pools for U-Nets); "
             f"use e.g. {fit}{_fewer_pools(config, registry, patch)}")]


def static_model_leaves_a_core(config, registry) -> list[Problem]:
    """A model with a static input size (ConvLSTM models, built at ``datagen.patch_size``)
    predicts tiles of exactly that size; the halo on both sides must leave a core (the rule
    of :mod:`dlsuite.inference`). Checked only when a test set is to be predicted."""
    if not config.data.test:
        return []
    geo = _geometry(config, registry)
    if not isinstance(geo, dict) or geo["supports_dynamic_size"]:
        return []
    if geo["receptive_field"] is None and config.inference.halo == "auto":
        return []  # an undeclared receptive field is measured when the run predicts
    from ..models import halo_pixels

    m = int(geo["size_multiple"] or 1)
    halo = halo_pixels(config.inference.halo, geo["receptive_field"])
    rounded = -(-int(halo) // m) * m
    size = min(int(v) for v in config.datagen.patch_size)
    if (size - 2 * rounded) // m * m >= 1:
        return []
    return [("$.inference.halo",
             f"{config.inference.halo!r} (= {halo} px, {rounded} px at the model's size "
             f"multiple {m}) leaves no core in the {size} px tiles model "
             f"{config.model.name!r} predicts (its input size is fixed at "
             f"$.datagen.patch_size): set inference.halo to at most "
             f"{max((size - m) // 2 // m * m, 0)} or "
             "use a larger patch_size")]


def loss_fits_target(config, registry) -> list[Problem]:
    """The target plugin gives every ``y_true`` channel the loss needs (otherwise the loss
    fails on its first batch, after TensorFlow is up and the run directory exists)."""
    try:
        loss = registry.resolve("losses", config.loss.name).spec
        target = registry.resolve("targets", config.datagen.target.name).spec
    except DlsuiteInputError:
        return []
    missing = [c for c in loss.target_channels if c not in target.channels]
    if not missing:
        return []
    fitting = [name for name in registry.names("targets") if ":" not in name and all(
        c in _channels(registry, name) for c in loss.target_channels)]
    hint = f"; targets that do: {', '.join(fitting)}" if fitting else ""
    return [("$.loss",
             f"loss {config.loss.name!r} needs the y_true channel(s) {', '.join(missing)}, "
             f"which target {config.datagen.target.name!r} ($.datagen.target) does not "
             f"give{hint}")]


def postprocess_chain_works(config, registry) -> list[Problem]:
    """The ``postprocess`` chain can work on the model's outputs: each step gets a kind it
    accepts with the classes it needs (:func:`dlsuite.chains.chain_problems`)."""
    from ..chains import chain_problems

    return chain_problems(config, registry)


def _channels(registry, name: str) -> tuple[str, ...]:
    try:
        return tuple(registry.resolve("targets", name).spec.channels)
    except DlsuiteInputError:
        return ()


def _training_samples(config) -> list | None:
    """The labelled samples of ``data.train``; None without training data or when the
    folder cannot be listed (the path checks report that)."""
    from ..data.layouts import list_samples

    if not config.data.train:
        return None
    try:
        return list_samples(config.data.train, config.data.layout, require_labels=True)
    except DlsuiteInputError:
        return None


def enough_training_samples(config, registry) -> list[Problem]:
    """A training step takes ``datagen.batch_size`` different training samples (images,
    videos or CTC sequences): fewer is an error rather than a silent repetition."""
    samples = _training_samples(config)
    if samples is None:
        return []
    batch = int(config.datagen.batch_size)
    if len(samples) >= batch:
        return []
    kind = samples[0].layout if samples else "samples"
    unit = {"frames": "images", "videos": "videos", "ctc": "sequences"}.get(kind, "samples")
    return [("$.datagen.batch_size",
             f"{batch} training samples per batch, but {config.data.train} holds only "
             f"{len(samples)} labelled {unit}: lower datagen.batch_size to at most "
             f"{max(len(samples), 1)} (use datagen.patches_per_image for more patches per "
             "step) or add training data")]


#: How many times the largest training frame's side a patch side may be (reflect padding).
PATCH_OVER_FRAME = 2


def patch_within_training_frames(config, registry) -> list[Problem]:
    """A side of ``datagen.patch_size`` more than :data:`PATCH_OVER_FRAME` times that of
    the largest training frame (headers read, after ``data.scale``) is refused: every patch
    would be mostly reflect padding, and memory goes to copies of mirrored pixels. Smaller
    frames than the patch are padded (and warned about) when training starts."""
    from ..data.layouts import frame_size
    from ..data.resize import scaled_size

    sizes = [s for s in map(frame_size, _training_samples(config) or []) if s is not None]
    if not sizes:
        return []
    largest = scaled_size(max(h for h, _ in sizes), max(w for _, w in sizes),
                          float(config.data.scale))
    patch = [int(v) for v in config.datagen.patch_size]
    if all(p <= PATCH_OVER_FRAME * f for p, f in zip(patch, largest)):
        return []
    scaled = "" if float(config.data.scale) == 1 else f" at data.scale {config.data.scale}"
    return [("$.datagen.patch_size",
             f"{patch} is over {PATCH_OVER_FRAME} times the largest training frame "
             f"({largest[0]} x {largest[1]}{scaled} in {config.data.train}): every patch "
             f"would be mostly mirrored padding; choose a patch no larger than the frames")]


def distribution_fits_batch(config, registry) -> list[Problem]:
    """``train.distribute``: named ``devices`` only with ``mirrored``, each a device name
    (``GPU:0``, ``/gpu:1``, ``/device:CPU:0``) named once, and ``datagen.batch_size`` (the
    global batch) divisible by their number. The replicas of ``mirrored`` on every GPU and of
    ``multi_worker`` are known only when TensorFlow starts: ``dlsuite train`` checks them
    then, before anything is written (:mod:`dlsuite.distribute`)."""
    return device_problems(config.train.distribute, int(config.datagen.batch_size))


_DEVICE = re.compile(r"^/?(?:device:)?(GPU|CPU):(\d+)$", re.IGNORECASE)


def device_name(name: str) -> str | None:
    """``GPU:0`` / ``/gpu:0`` / ``/device:GPU:0`` as TensorFlow's ``/device:GPU:0``; None
    when ``name`` is not a device name."""
    match = _DEVICE.match(str(name).strip())
    return f"/device:{match[1].upper()}:{int(match[2])}" if match else None


def device_problems(distribute, batch_size: int) -> list[Problem]:
    """The problems of a ``train.distribute`` section on its own (see
    :func:`distribution_fits_batch`)."""
    devices = list(distribute.devices or [])
    if not devices:
        return []
    where = "$.train.distribute.devices"
    if distribute.strategy != "mirrored":
        return [(where, f"names devices, which only strategy 'mirrored' uses (strategy is "
                        f"{distribute.strategy!r}; multi_worker uses every GPU of each host)")]
    names = []
    for i, name in enumerate(devices):
        full = device_name(name)
        if full is None:
            return [(f"{where}[{i}]", f"{name!r} is not a device name: use e.g. 'GPU:0', "
                                      "'GPU:1' (or 'CPU:0')")]
        if full in names:
            return [(f"{where}[{i}]", f"{name!r} is named twice")]
        names.append(full)
    if batch_size % len(names):
        ok = -(-batch_size // len(names)) * len(names)
        return [("$.datagen.batch_size",
                 f"{batch_size} (the global batch) is not divisible by the {len(names)} "
                 f"replicas of $.train.distribute.devices: each device takes batch_size / "
                 f"{len(names)} images per step; use e.g. {ok}")]
    return []


def scale_export_problem(fmt: str, scale: float) -> str | None:
    """Why a run with ``data.scale`` ``scale`` cannot be exported as ``fmt`` (None: it can).
    A bioimage.io package cannot carry the scale: the spec has no resizing step, so
    deepImageJ, ilastik or QuPath would feed the model unresized images."""
    if scale == 1 or fmt != "bioimageio":
        return None
    return (f"'bioimageio' cannot carry data.scale {scale:g}: bioimage.io preprocessing has "
            "no resizing step; export savedmodel (dlsuite predict reads the scale from it), "
            "keras or onnx, or train with scale 1")


def export_keeps_scale(config, registry) -> list[Problem]:
    """``export.formats`` lists no format the run's ``data.scale`` cannot be exported in
    (:func:`scale_export_problem`)."""
    return [(f"$.export.formats[{i}]", why) for i, fmt in enumerate(config.export.formats or ())
            if (why := scale_export_problem(fmt, config.data.scale))]


def predictions_apart_from_run_files(config, registry) -> list[Problem]:
    """``inference.output_folder`` is not one of the run's own files or folders (the
    predictions would mix with its checkpoints, logs or report, or replace its files)."""
    from pathlib import PurePosixPath

    from ..run_layout import RUN_OWN_NAMES

    parts = PurePosixPath(config.inference.output_folder).parts  # "./x" -> ("x",)
    first = parts[0] if parts else ""
    if first in RUN_OWN_NAMES:
        return [("$.inference.output_folder",
                 f"{first!r} is one of the run's own files or folders "
                 f"({', '.join(RUN_OWN_NAMES)}): the predictions would mix with it; choose "
                 "another name (default: predictions)")]
    return []


def output_dir_is_a_folder(config, registry) -> list[Problem]:
    """``output_dir`` does not name an existing file (the run could not be written there;
    said before the data's pixels are read, not after)."""
    from pathlib import Path

    out = Path(config.output_dir).expanduser()
    if out.exists() and not out.is_dir():
        return [("$.output_dir", f"{out}: exists and is not a folder; name a folder for the "
                 "run (new, or one an earlier dlsuite run wrote)")]
    return []


def output_dir_outside_the_data(config, registry) -> list[Problem]:
    """``output_dir`` is not a data folder (train, val, test) nor inside one: the run's
    checkpoints, logs and predictions would land among the data (e.g. in ``inputs/``)."""
    from pathlib import Path

    out = Path(config.output_dir).expanduser().resolve()
    for key in ("train", "val", "test"):
        folder = getattr(config.data, key)
        if folder is None:
            continue
        data = Path(folder).expanduser().resolve()
        if out == data or data in out.parents:
            return [("$.output_dir", f"{out}: is the data folder data.{key} ({data}) or "
                     "inside it: the run's files would mix with the data; choose a folder "
                     "outside it")]
    return []


def monitor_is_logged(config, registry) -> list[Problem]:
    """``train.monitor`` names a value training logs: ``loss`` or a configured metric (a
    metric plugin's Keras metric carries its name: the contract tests check it), or either
    with ``val_``. A misspelt monitor trained to the end without a best checkpoint."""
    names = ["loss", *dict.fromkeys(c.name.rpartition(":")[2] for c in config.metrics)]
    monitor = config.train.monitor
    if monitor in names or (monitor.startswith("val_") and monitor[4:] in names):
        return []
    choices = ", ".join(n for name in names for n in (f"val_{name}", name))
    return [("$.train.monitor", f"{monitor!r} is not a value training logs; choose one of "
             f"{choices} (the metrics are the config's 'metrics')")]


Rule = Callable[[Any, Any], list[Problem]]
#: Rules that need only the config and the registry (run by every validation).
CONFIG_RULES: tuple[Rule, ...] = (patch_fits_model, static_model_leaves_a_core, loss_fits_target,
                                  postprocess_chain_works, distribution_fits_batch,
                                  export_keeps_scale, monitor_is_logged)
#: Rules for a run about to start, run when data paths are checked (``config validate``,
#: ``run``, ``train``) and by preflight, not when a trained run's own config is reopened
#: (``predict``, ``tune``): what it reads (the data) and where it writes.
DATA_RULES: tuple[Rule, ...] = (enough_training_samples, patch_within_training_frames,
                                predictions_apart_from_run_files,
                                output_dir_is_a_folder, output_dir_outside_the_data)


def config_problems(config, registry) -> list[Problem]:
    """Every problem :data:`CONFIG_RULES` find in a structured config."""
    return [p for rule in CONFIG_RULES for p in rule(config, registry)]


def data_problems(config, registry) -> list[Problem]:
    """Every problem :data:`DATA_RULES` find (the data folders are read; where the run
    writes is checked)."""
    return [p for rule in DATA_RULES for p in rule(config, registry)]
