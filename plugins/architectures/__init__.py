"""Built-in architectures plugins of dlsuite.

Modules (only the last four import Keras):

* ``plugin``    -- the ``dlsuite_architectures`` hook: one ArchitectureSpec per model.
* ``params``    -- the attrs parameter classes (TF-free).
* ``geometry``  -- ``size_multiple`` / ``receptive_field`` callables (TF-free).
* ``common``    -- input-shape and parameter validation (TF-free).
* ``freeze``    -- ``set_encoder_trainable(model, trainable)`` / ``find_encoders`` (Keras lazily).
* ``summary``   -- ``summarize(model) -> dict`` of parameter counts and shapes.
* ``layers``    -- registered custom layers (import it before ``keras.models.load_model``)
  and the output heads.
* ``unet``, ``mobilenet``, ``unet_lstm`` -- the builders (factories).
"""
