"""The contract of architecture plugins: :class:`ArchitectureContract`, checked on tiny
models (build, logits, temporal windows, ``.keras`` round trip, learning, receptive field,
production shapes in graph mode).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import pytest

from ..registry import call_spec
from .contract_base import PluginContract


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
    #: 1e-2 made a tiny U-Net's loss rise over the steps for 3 of 80 random initialisations
    learning_rate: ClassVar[float] = 3e-3
    #: the weights of the training check start from this seed: one answer on every run
    init_seed: ClassVar[int] = 0
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
        ``(B, H, W, 1)`` class-index target, weights initialised from ``init_seed``: the loss
        after a few steps is below the first."""
        import keras

        keras.utils.set_random_seed(self.init_seed)
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
