"""Built-in losses and metrics plugins of dlsuite.

Modules (only the last three import TensorFlow):

* ``plugin``  - the entry point: ``dlsuite_losses()`` / ``dlsuite_metrics()`` hook impls.
* ``catalog`` - the declarative table of losses and metrics (names, params, channels).
* ``params``  - attrs parameter classes.
* ``errors``  - :class:`LossInputError` (bad shapes or parameters).
* ``tensors`` - shared TF helpers (shape checks, foreground logit, border weights).
* ``losses``  - the loss formulas and the Keras-serializable ``SegmentationLoss``.
* ``metrics`` - the stateful ``jaccard`` / ``dice`` / ``accuracy`` metrics.

A process that loads a ``.keras`` file compiled with these losses/metrics must import
``dlsuite_plugins.losses.losses`` and ``.metrics`` first (e.g. by ``entry.load()`` of the
registry entries), so Keras finds the registered classes.
"""
