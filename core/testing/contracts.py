"""Contract test classes: what every plugin of a kind must do.

Each class is a pytest test class (its name does not start with ``Test`` so it is not
collected by itself); subclass it with ``plugin``, ``name`` and ``params`` set.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

from ..registry import Entry, Registry, call_spec

__all__ = ["plugin_registry", "PluginContract", "ArchitectureContract", "LossContract",
           "MetricContract", "NormalizerContract", "SamplerContract", "TargetContract",
           "AugmentationContract", "PostprocessorContract"]


def plugin_registry(plugin: Any, name: str | None = None) -> Registry:
    """A registry holding only ``plugin`` (a module or an object with hook implementations)."""
    return Registry.from_plugins([plugin], [name or getattr(plugin, "__name__", "plugin")])


class PluginContract:
    """Checks shared by every kind: spec present, params documented, factory importable,
    plugin module importable without TensorFlow."""

    kind: ClassVar[str] = ""
    plugin: ClassVar[Any] = None
    name: ClassVar[str] = ""
    params: ClassVar[dict] = {}

    @pytest.fixture
    def entry(self) -> Entry:
        return plugin_registry(self.plugin).resolve(self.kind, self.name)

    @pytest.fixture
    def built_params(self, entry):
        return entry.spec.params(**self.params)

    def test_spec_is_declared_with_description(self, entry):
        assert entry.name == self.name
        assert entry.spec.description, f"{self.name}: give the spec a description"

    def test_params_have_defaults_and_help(self, entry):
        assert attrs.has(entry.spec.params), "params must be an attrs class"
        for field in attrs.fields(entry.spec.params):
            assert field.metadata.get("help"), f"{self.name}.{field.name}: add help= text"
        entry.spec.params()  # every field has a default

    def test_factory_imports(self, entry):
        assert callable(entry.load())

    def test_plugin_module_imports_without_tensorflow(self):
        module = getattr(self.plugin, "__name__", None)
        if not isinstance(module, str) or module not in sys.modules:
            pytest.skip("plugin is not a module")
        code = (f"import sys, importlib; importlib.import_module({module!r}); "
                "print('tensorflow' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == "False", f"importing {module} imported TensorFlow: keep it lazy"


class ArchitectureContract(PluginContract):
    """What every architecture must do, checked on tiny models (keep ``params`` small: a few
    thousand parameters; ``size`` is the side of the test images, 32-64 px).

    * builds from the spec's default parameters (at a small size);
    * gives raw logits ``(B, H, W, n_classes)`` of the input's size, for two classes counts and
      for two input sizes, a square one and a non-square one (one model for both when
      ``supports_dynamic_size``, else one model per size): any multiple of the declared
      ``size_multiple`` must work, and a spec that declares none must accept any size;
    * temporal models accept windows of ``T = 3`` and ``T = 5`` frames
      (``attrs.evolve(params, time_windows=T)``);
    * round-trips through a ``.keras`` file in safe mode (same outputs);
    * a few Adam steps on one tiny fixed batch lower the sparse cross-entropy (it can learn);
    * the declared ``receptive_field(params)`` is at least the measured one
      (:func:`dlsuite.inference.receptive_field.measured_receptive_field`: the reach of the gradient of
      one output pixel, over every phase modulo ``size_multiple``); a spec that declares none
      fails with the measured number to declare, one whose callable raises fails with the
      plugin's error;
    * production shapes in graph mode: one model, as ``dlsuite predict`` runs it
      (:func:`dlsuite.inference.predict_video`, i.e. ``predict_on_batch`` / ``tf.function``,
      several input sizes in one process): a square image, an image as tall as the default
      inference tile (``production_tile``, default ``inference.tile_size`` of the config
      schema) plus a partial second tile, and a non-square one that needs mirroring to the
      size multiple; temporal models on videos of 1 frame (shorter than the window) and of
      ``time_windows + 1`` frames.

    Models with several outputs are checked on their first output (the segmentation logits).
    """

    kind = "architectures"
    size: ClassVar[int] = 32
    batch: ClassVar[int] = 2
    train_steps: ClassVar[int] = 6
    learning_rate: ClassVar[float] = 1e-2
    #: largest side the receptive-field measurement grows to (an undeclared field)
    max_measure_size: ClassVar[int] = 1024
    #: tile edge of the production-shape check (None: the config default, 1024)
    production_tile: ClassVar[int | None] = None

    # ---- helpers (also usable by subclasses) ------------------------------------------
    def _multiple(self, entry, params) -> int:
        return call_spec(entry, "size_multiple", params) or 1

    def _side(self, entry, params, side: int) -> int:
        """``side`` rounded down to a multiple of the spec's size multiple (at least one)."""
        m = self._multiple(entry, params)
        return max(m, (side // m) * m)

    def _sizes(self, entry, params) -> list[tuple[int, int]]:
        """Two input sizes: a square one and a non-square one a size multiple away."""
        s = self._side(entry, params, self.size)
        return [(s, s), (2 * s, s + self._multiple(entry, params))]

    def _input(self, entry, params, h: int, w: int, seed: int = 0) -> np.ndarray:
        lead = (self.batch, params.time_windows) if entry.spec.temporal else (self.batch,)
        return np.random.default_rng(seed).random((*lead, h, w, 1), dtype=np.float32)

    def _make(self, entry, params, n_classes: int, hw: tuple[int, int] | None):
        """Build for frames of ``hw`` (``None``: dynamic H, W)."""
        frame = (None, None, 1) if hw is None else (*hw, 1)
        shape = (params.time_windows, *frame) if entry.spec.temporal else frame
        return entry.load()(params, n_classes=n_classes, input_shape=shape)

    def _build(self, entry, built_params, n_classes=2):
        h, w = self._sizes(entry, built_params)[0]
        hw = None if entry.spec.supports_dynamic_size else (h, w)
        model = self._make(entry, built_params, n_classes, hw)
        return model, self._input(entry, built_params, h, w), (h, w)

    @staticmethod
    def _logits(model, x) -> np.ndarray:
        y = model(x, training=False)
        return np.asarray(y[0] if isinstance(y, (list, tuple)) else y)

    # ---- checks ------------------------------------------------------------------------
    def test_builds_from_defaults(self, entry):
        params = entry.spec.params()
        h, w = self._sizes(entry, params)[0]
        model = self._make(entry, params, 2, (h, w))
        y = self._logits(model, self._input(entry, params, h, w))
        assert y.shape == (self.batch, h, w, 2)
        assert np.isfinite(y).all()

    @pytest.mark.parametrize("n_classes", [2, 3])
    def test_output_is_logits_of_input_size(self, entry, built_params, n_classes):
        model, x, (h, w) = self._build(entry, built_params, n_classes)
        y = self._logits(model, x)
        assert y.shape == (self.batch, h, w, n_classes)
        assert np.isfinite(y).all()

    def test_output_shape_for_two_input_sizes(self, entry, built_params):
        dynamic = entry.spec.supports_dynamic_size
        model = self._make(entry, built_params, 2, None) if dynamic else None
        for h, w in self._sizes(entry, built_params):
            net = model if dynamic else self._make(entry, built_params, 2, (h, w))
            y = self._logits(net, self._input(entry, built_params, h, w))
            assert y.shape == (self.batch, h, w, 2), f"input {h}x{w}"

    @pytest.mark.parametrize("time_windows", [3, 5])
    def test_temporal_window_lengths(self, entry, built_params, time_windows):
        if not entry.spec.temporal:
            pytest.skip("not a temporal architecture")
        params = attrs.evolve(built_params, time_windows=time_windows)
        h, w = self._sizes(entry, params)[0]
        model = self._make(entry, params, 2, None if entry.spec.supports_dynamic_size else (h, w))
        x = self._input(entry, params, h, w)
        assert x.shape[1] == time_windows
        assert self._logits(model, x).shape == (self.batch, h, w, 2)

    def test_keras_round_trip(self, entry, built_params, tmp_path):
        import keras

        model, x, _ = self._build(entry, built_params)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True, compile=False)
        np.testing.assert_allclose(self._logits(loaded, x), self._logits(model, x),
                                   rtol=1e-5, atol=1e-5)

    def _training_batch(self, entry, params) -> tuple[np.ndarray, np.ndarray]:
        """A fixed tiny batch: noisy frames with a bright square (class 1) on a dark
        background (class 0); the target ``(B, H, W, 1)`` marks the last frame's square."""
        h, w = self._sizes(entry, params)[0]
        rng = np.random.default_rng(1)
        x = self._input(entry, params, h, w, seed=2) * 0.2 + 0.1
        y = np.zeros((self.batch, h, w, 1), np.float32)
        for b in range(self.batch):
            top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
            y[b, top:top + h // 2, left:left + w // 2] = 1.0
        x[..., 0] += 0.6 * (y[:, None, ..., 0] if entry.spec.temporal else y[..., 0])
        return x, y

    def test_training_steps_lower_the_loss(self, entry, built_params):
        """Adam (lr ``learning_rate``) on one fixed tiny batch, sparse CCE from logits on a
        ``(B, H, W, 1)`` class-index target: the loss after a few steps is below the first."""
        import keras

        model, _, _ = self._build(entry, built_params)
        if len(model.outputs) > 1:
            model = keras.Model(model.inputs, model.outputs[0])
        x, y = self._training_batch(entry, built_params)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      run_eagerly=True)  # tiny models: tracing would cost more than the steps
        losses = [float(model.train_on_batch(x, y)) for _ in range(self.train_steps)]
        assert np.isfinite(losses).all(), losses
        assert losses[-1] < losses[0], f"loss did not decrease: {losses}"


    def test_receptive_field_covers_the_measured_reach(self, entry, built_params):
        """The declared receptive field (``2 r + 1``, ``r`` the farthest influencing input
        pixel over every phase) is not smaller than the measured one."""
        from ..inference.receptive_field import measured_receptive_field, radius_of

        declared = call_spec(entry, "receptive_field", built_params)
        m = self._multiple(entry, built_params)
        if declared is None:
            reach = measured_receptive_field(entry, built_params,
                                             max_size=self.max_measure_size)
            bound = "" if reach.complete else "at least "
            pytest.fail(
                f"{self.name}: the spec declares no receptive_field; measured {bound}"
                f"{reach.receptive_field} px (reach {reach.radius} px over {m} phases) with "
                f"{built_params!r}. Declare receptive_field=<function of params> giving at "
                "least that (dlsuite would otherwise measure it at every first use)")
        # an input wide enough to see a reach beyond the declared one from every phase
        size = 2 * (radius_of(declared) + 2 * m)
        reach = measured_receptive_field(entry, built_params, start_size=size, max_size=size)
        bound = "" if reach.complete else "at least "
        assert declared >= reach.receptive_field, (
            f"{self.name}: declared receptive_field {declared} px is smaller than the measured "
            f"{bound}{reach.receptive_field} px (reach {reach.radius} px; per phase modulo {m}: "
            f"{list(reach.per_phase)}) with {built_params!r}: inference.halo 'auto' would "
            "leave seams between tiles")

    def _production_tile(self) -> int:
        if self.production_tile is not None:
            return int(self.production_tile)
        from ..config.schema import InferenceConfig

        return int(InferenceConfig().tile_size or 1024)

    def test_predicts_production_shapes_in_graph_mode(self, entry, built_params):
        """One model through :func:`dlsuite.inference.predict_video` (``predict_on_batch``
        in graph mode) on several sizes in one process, as ``dlsuite predict`` runs it."""
        from ..inference import predict_video
        from ..inference.receptive_field import radius_of

        m = self._multiple(entry, built_params)
        declared = call_spec(entry, "receptive_field", built_params)
        halo = radius_of(declared) if declared else 2 * m
        tile = self._production_tile()
        s = self._side(entry, built_params, self.size)
        windows = int(getattr(built_params, "time_windows", 1) or 1)
        # (frames, height, width): square; as tall as the default tile plus a partial second
        # tile; non-square and not a multiple of m (mirrored up to it). Temporal models also
        # get a video longer than the window and one shorter (mirrored in time).
        cases = [(windows + 1 if entry.spec.temporal else 1, s, s), (1, tile + m + 1, s + 3),
                 (1, 2 * s + 1, s + (m - 1 if m > 1 else 5))]
        hw = None if entry.spec.supports_dynamic_size else (s, s)
        model = self._make(entry, built_params, 2, hw)
        rng = np.random.default_rng(3)
        for t, h, w in cases:
            video = rng.random((t, h, w), dtype=np.float32)
            try:
                probs = predict_video(model, video, tile_size=tile, halo=halo, batch_size=2,
                                      size_multiple=m, temporal=entry.spec.temporal,
                                      time_windows=windows)
            except Exception as exc:  # noqa: BLE001 - name the size that fails
                pytest.fail(f"{self.name}: prediction in graph mode of a {t}x{h}x{w} input "
                            f"(tile {tile}, halo {halo}, size multiple {m}) failed: "
                            f"{type(exc).__name__}: {exc}")
            assert probs.shape == (t, h, w, 2), f"input {t}x{h}x{w}"
            assert np.isfinite(probs).all(), f"input {t}x{h}x{w}: non-finite output"
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)


class _KerasObjectContract(PluginContract):
    """Shared test data of losses and metrics.

    ``n_classes``: the model output channels to test with (1: one foreground logit).
    ``target_channels``: channels of ``y_true`` (channel 0 the class index, the others pixel
    weights, all 1); ``None`` takes ``len(spec.target_channels)`` for losses, else 1.
    ``perfect_output``: what a perfect ``y_pred`` is: ``"logits"`` (+8 for the true class,
    -8 elsewhere) or ``"target"`` (the class index itself, for regression / heatmap losses).
    """

    n_classes: ClassVar[int] = 2
    target_channels: ClassVar[int | None] = None
    perfect_output: ClassVar[str] = "logits"

    def _channels(self, entry) -> int:
        if self.target_channels is not None:
            return int(self.target_channels)
        return len(getattr(entry.spec, "target_channels", ("class",)))

    def _data(self, entry):
        rng = np.random.default_rng(0)
        n_labels = max(self.n_classes, 2)  # 1-channel models predict 0/1 with one logit
        classes = rng.integers(0, n_labels, size=(2, 16, 16, 1)).astype("float32")
        extra = [np.ones((2, 16, 16, 1), "float32")] * (self._channels(entry) - 1)
        y_true = np.concatenate([classes, *extra], axis=-1)
        logits = rng.normal(size=(2, 16, 16, self.n_classes)).astype("float32")
        if self.perfect_output == "target":
            perfect = np.repeat(classes, self.n_classes, axis=-1)
        elif self.n_classes == 1:
            perfect = np.where(classes == 1, 8.0, -8.0).astype("float32")
        else:
            perfect = np.where(np.arange(self.n_classes) == classes, 8.0, -8.0).astype("float32")
        return y_true, logits, perfect


class LossContract(_KerasObjectContract):
    """A finite scalar, lower for a perfect prediction than for a random one, with gradients.

    A ``multi_head`` loss is built with ``heads`` (default: a ``class`` head of ``n_classes``
    channels and a sigmoid ``distance`` regression head) and the matching target channels;
    its data gets a regression target of 1 (perfect logit +8) for every regression head."""

    kind = "losses"
    heads: ClassVar[tuple] = ()

    def _heads(self):
        from ..specs import HeadSpec

        return self.heads or (HeadSpec("class", self.n_classes, "softmax", "class"),
                              HeadSpec("distance", 1, "sigmoid", "regression"))

    def _make(self, entry, built_params):
        if not getattr(entry.spec, "multi_head", False):
            return entry.load()(built_params, n_classes=self.n_classes)
        heads = self._heads()
        channels = ("class",) + tuple(h.name for h in heads if h.role == "regression")
        return entry.load()(built_params, n_classes=sum(h.channels for h in heads),
                            heads=heads, target_channels=channels)

    def _loss_data(self, entry):
        y_true, logits, perfect = self._data(entry)
        if not getattr(entry.spec, "multi_head", False):
            return y_true, logits, perfect
        rng = np.random.default_rng(1)
        extra = [h for h in self._heads() if h.role == "regression"]
        y_true = np.concatenate([y_true[..., :1]] + [np.ones_like(y_true[..., :1])] * len(extra),
                                axis=-1)
        n = sum(h.channels for h in extra)
        logits = np.concatenate(
            [logits, rng.normal(size=logits.shape[:-1] + (n,)).astype("float32")], axis=-1)
        perfect = np.concatenate([perfect, np.full(perfect.shape[:-1] + (n,), 8.0, "float32")],
                                 axis=-1)
        return y_true, logits, perfect

    def test_scalar_lower_for_perfect_prediction(self, entry, built_params):
        loss = self._make(entry, built_params)
        y_true, logits, perfect = self._loss_data(entry)
        bad, good = float(loss(y_true, logits)), float(loss(y_true, perfect))
        assert np.isfinite(bad) and np.isfinite(good)
        assert good < bad

    def test_has_gradients(self, entry, built_params):
        import tensorflow as tf

        loss = self._make(entry, built_params)
        y_true, logits, _ = self._loss_data(entry)
        var = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(y_true), var)
        grad = tape.gradient(value, var)
        assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


class MetricContract(_KerasObjectContract):
    """A stateful Keras metric named like the spec; perfect predictions score best."""

    kind = "metrics"

    def test_named_like_the_spec_and_perfect_is_best(self, entry, built_params):
        metric = entry.load()(built_params, n_classes=self.n_classes)
        assert metric.name == self.name
        y_true, logits, perfect = self._data(entry)
        metric.update_state(y_true, perfect)
        best = float(metric.result())
        metric.reset_state()
        metric.update_state(y_true, logits)
        other = float(metric.result())
        assert (best >= other) if entry.spec.mode == "max" else (best <= other)


class NormalizerContract(PluginContract):
    """Float32 output of the input's shape, for images and videos; finite on constant input."""

    kind = "normalizers"

    @pytest.mark.parametrize("shape", [(24, 20), (3, 24, 20)])
    def test_shape_dtype_finite(self, entry, built_params, shape):
        norm = entry.load()(built_params)
        image = np.random.default_rng(0).integers(0, 4000, size=shape).astype(np.uint16)
        out = norm(image)
        assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert np.isfinite(norm(np.full(shape, 7, np.uint16))).all()


class SamplerContract(PluginContract):
    """Patches always fully inside the image."""

    kind = "samplers"

    def test_patch_inside_image(self, entry, built_params):
        sample = entry.load()(built_params)
        labels = np.zeros((40, 30), np.int32)
        labels[5:10, 20:28] = 3
        rng = np.random.default_rng(0)
        for _ in range(50):
            top, left = sample(labels, (16, 12), rng)
            assert 0 <= top <= 40 - 16 and 0 <= left <= 30 - 12


class TargetContract(PluginContract):
    """``(H, W, C)`` float32 with C = len(spec.channels); classes below spec.n_classes; the
    declared heads are consistent (:func:`dlsuite.heads.heads_of`) and each regression head's
    channel holds finite values."""

    kind = "targets"

    def test_heads_are_consistent(self, entry, built_params):
        from ..heads import heads_of

        heads = heads_of(entry.spec)
        make = entry.load()(built_params)
        labels = np.zeros((24, 24), np.int32)
        labels[3:12, 3:12], labels[12:20, 6:18] = 1, 2
        target = make(labels)
        for h in heads:
            if h.role == "regression":
                assert np.isfinite(target[..., entry.spec.channels.index(h.name)]).all()

    def test_shape_and_classes(self, entry, built_params):
        make = entry.load()(built_params)
        labels = np.zeros((32, 32), np.uint32)
        labels[4:14, 4:14], labels[14:24, 10:20], labels[20:30, 22:30] = 1, 300, 70000
        target = make(labels)
        assert target.shape == (32, 32, len(entry.spec.channels)) and target.dtype == np.float32
        classes = target[..., 0]
        assert set(np.unique(classes)) <= set(range(entry.spec.n_classes))
        assert classes[labels == 0].max() == 0 or entry.spec.n_classes > 2


class AugmentationContract(PluginContract):
    """Keeps shapes and dtypes; the class channel stays integral (nearest interpolation)."""

    kind = "augmentations"

    def test_shapes_and_integral_classes(self, entry, built_params):
        augment = entry.load()(built_params)
        rng = np.random.default_rng(0)
        image = rng.random((3, 32, 32), dtype=np.float32)
        target = np.zeros((32, 32, 1), np.float32)
        target[8:20, 8:24] = 1
        for _ in range(5):
            img2, tgt2 = augment(image, target, rng)
            assert img2.shape == image.shape and tgt2.shape == target.shape
            assert np.array_equal(tgt2[..., 0], np.round(tgt2[..., 0]))


class PostprocessorContract(PluginContract):
    """Accepts the chain's input and returns a 2D array of the image size; every tunable
    parameter (``spec.tunable``) is a field of the params class and each of its candidate
    values builds a step that works; a step declaring ``accepts``/``gives`` works on a
    sample of each accepted kind and returns the kind it declares.

    ``input_kind`` is ``"probabilities"`` (``(H, W, 2)`` float), ``"distance"`` (``(H, W, 3)``:
    the two class probabilities then a distance channel, as the ``distance`` target's model
    gives) or ``"mask"`` (``(H, W)``)."""

    kind = "postprocessors"
    input_kind: ClassVar[str] = "mask"

    def _input(self):
        from scipy import ndimage

        mask = np.zeros((40, 40), np.uint8)
        mask[5:20, 5:20] = 1
        mask[25:35, 22:38] = 1
        if self.input_kind == "mask":
            return mask
        probs = [1.0 - mask, mask]
        if self.input_kind == "distance":
            d = ndimage.distance_transform_edt(mask)
            probs.append(d / d.max())
        return np.stack(probs, axis=-1).astype(np.float32)

    def test_returns_image_sized_array(self, entry, built_params):
        step = entry.load()(built_params)
        out = step(self._input())
        assert out.shape == (40, 40)

    def test_declared_kinds_hold(self, entry, built_params):
        """A step declaring ``accepts``/``gives`` (typed chains) works on a sample of each
        kind it accepts holding what it ``needs``, and returns the kind it gives, read from
        the dtype as the chain does: float probabilities, uint8/bool mask or class map, other
        integers labels. Skipped for a step that declares nothing."""
        spec = entry.spec
        if getattr(spec, "accepts", None) is None:
            pytest.skip("the step declares no accepts/gives (taken as accepting anything)")
        needs = spec.needs_for(built_params)
        for kind in spec.accepts:
            out = np.asarray(entry.load()(built_params)(_kind_sample(kind, needs)))
            assert out.shape[:2] == (40, 40), f"{kind} in: shape {out.shape}"
            if spec.gives is not None:
                want = kind if spec.gives == "same" else spec.gives
                assert _dtype_kind(out) == _dtype_kind_of(want), (
                    f"declared to give {want} for {kind}, returned {out.dtype}")

    def test_tunable_parameters_exist_and_work(self, entry, built_params):
        fields = {f.name for f in attrs.fields(entry.spec.params)}
        for tunable in getattr(entry.spec, "tunable", ()):
            assert tunable.name in fields, f"tunable {tunable.name!r} is not a parameter"
            values = tunable.candidates()
            assert values, f"tunable {tunable.name!r} has no candidate values"
            for value in values:
                step = entry.load()(attrs.evolve(built_params, **{tunable.name: value}))
                assert step(self._input()).shape == (40, 40)


def _dtype_kind(array: np.ndarray) -> str:
    """The chain kind an array's dtype says (class map and mask share uint8/bool)."""
    if array.dtype.kind == "f":
        return "probabilities"
    if array.dtype.kind == "b" or array.dtype == np.uint8:
        return "mask"
    return "labels"


def _dtype_kind_of(kind: str) -> str:
    return "mask" if kind == "class_map" else kind


def _kind_sample(kind: str, needs) -> np.ndarray:
    """A 40 x 40 sample of chain ``kind`` with two objects, holding the classes, channels
    and regression head ``needs`` asks for."""
    from scipy import ndimage

    mask = np.zeros((40, 40), np.uint8)
    mask[5:20, 5:20] = 1
    mask[25:35, 22:38] = 1
    if kind == "mask":
        return mask
    if kind == "labels":
        return ndimage.label(mask)[0].astype(np.int32)
    if kind == "class_map":  # cells (1) inside contours (2), further classes a pixel each
        out = mask.copy()
        out[(mask > 0) & ~ndimage.binary_erosion(mask > 0)] = 2
        for i, c in enumerate(c for c in needs.classes if c > 2):
            out[0, i] = c
        return out
    n_classes = max([2, *(c + 1 for c in (*needs.classes, *needs.channels) if c >= 0)])
    probs = [1.0 - mask, mask] + [np.zeros_like(mask)] * (n_classes - 2)
    if needs.regression:
        d = ndimage.distance_transform_edt(mask)
        probs.append(d / d.max())
    return np.stack(probs, axis=-1).astype(np.float32)
