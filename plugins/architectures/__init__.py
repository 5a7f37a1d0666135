"""Built-in architectures plugins of dlsuite.

Modules (only the last two import Keras):

* ``plugin``    -- the ``dlsuite_architectures`` hook: one ArchitectureSpec per model.
* ``params``    -- the attrs parameter classes (TF-free).
* ``geometry``  -- ``size_multiple`` / ``receptive_field`` callables (TF-free).
* ``common``    -- input-shape and parameter validation (TF-free).
* ``layers``    -- registered custom layers (import it before ``keras.models.load_model``)
  and the output heads.
* ``unet``, ``mobilenet``, ``unet_lstm`` -- the builders (factories).

A pretrainable encoder is a sub-model named ``"encoder"``; :mod:`dlsuite.keras_helpers`
(un)freezes it and summarizes models.
"""
