"""A training process for tests/test_distribute.py (run as a script in a subprocess).

``python _distributed_worker.py [resume:]CONFIG... [--logical-cpus N] [--save-weights PATH]
[--kill-relus-at EPOCH]``:
optionally splits the CPU into N logical devices (before TensorFlow starts, which is why this
runs in its own process), then trains each CONFIG in turn through ``dlsuite.pipeline.train``
(``resume:CONFIG`` resumes its run); with
``--save-weights`` a ``dlsuite_callbacks`` plugin saves the model's weights when training
ends (so the weights of a worker whose scratch folder is removed can be compared); with
``--kill-relus-at`` the model collapses when that epoch begins (:mod:`_dead_relus`). Exit
code 2 on bad input, as the CLI.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("--save-weights", default=None)
    parser.add_argument("--kill-relus-at", type=int, default=0)
    args = parser.parse_args()
    if args.logical_cpus:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(args.logical_cpus)])

    from dlsuite import hookimpl, pipeline
    from dlsuite.config import load_config
    from dlsuite.errors import DlsuiteInputError
    from dlsuite.registry import Registry

    class SaveWeightsAtEnd:
        @hookimpl
        def dlsuite_callbacks(self, config):
            import keras

            class Save(keras.callbacks.Callback):
                def on_train_end(self, logs=None):
                    self.model.save_weights(args.save_weights)

            return [Save()]

    registry = Registry.from_entry_points()
    if args.save_weights:
        registry.add_plugin(SaveWeightsAtEnd(), "save-weights", None, None)
    if args.kill_relus_at:
        from _dead_relus import DeadRelus

        registry.add_plugin(DeadRelus(args.kill_relus_at), "dead-relus", None, None)
    for config in args.configs:
        resume = config.startswith("resume:")
        try:
            loaded = load_config(config.removeprefix("resume:"), registry)
            result = pipeline.train(loaded, quiet=True, registry=registry, resume=resume)
        except DlsuiteInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"finished: {result.run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
