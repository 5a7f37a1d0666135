"""Run logging: the guarded W&B run (:mod:`.wandb_run`, no TensorFlow) and the Keras callbacks
that record a run (:mod:`.callbacks`, imports Keras; import it explicitly)."""

from .wandb_run import WandbRun, resolve_mode

__all__ = ["WandbRun", "resolve_mode"]
