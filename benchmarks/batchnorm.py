"""BatchNorm momentum and precise BN: validation Jaccard of from-scratch models on real data.

Trains from scratch on the annotated Usiigaci T98G phase-contrast images
(``../shared/data/usiigaci_t98g_phc/annotated``, 1022x1024; ``val`` sets spread over the 40
validate on their full 256x256 tile grid, the others train) with the real datagen (patch 256,
batch 4, uniform sampling, percentile normalization, flips), Adam 1e-3, sparse CCE, and
prints ``val_jaccard`` after 25 / 50 / 75 / 100 training steps for each architecture x
BatchNorm momentum x precise-BN setting, and the training ``jaccard`` of the last epoch:

* momentum ``keras``: Keras' own momenta (0.99 in our layers, 0.999 in the MobileNetV2
  encoder), i.e. the behaviour before ``bn_momentum`` existed; a number: ``bn_momentum``
  (MobileNetV2 encoder included);
* precise ``N``: before each validation the moving statistics are re-estimated as the average
  over N training batches (:func:`dlsuite.batchnorm.recompute_bn_statistics`); 0: off.

Every run uses the same seed, data stream and initial weights draw. Runs are independent and
small but take minutes on a shared 2-core CPU (a 100-step MobileUNet run about 1-2 min).

Run: python benchmarks/batchnorm.py [--arch mobilenet_mobileunet unet] [--momenta keras 0.8
0.9] [--precise 0 8] [--steps 25] [--epochs 4] [--val 2] [--quick]
``--quick``: one tiny run (mobilenet, 2 x 5 steps, 1 validation image) that prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "usiigaci_t98g_phc" / "annotated"

#: architecture -> model parameters of the measured configuration (the legacy config's
#: MobileUNet; a U-Net with batch norm, half the default width to keep the runs short)
MODELS = {
    "mobilenet_mobileunet": {"n_filters": 16, "pools": 4, "alpha": 0.35, "encoder_weights": None},
    "unet": {"n_filters": 8, "pools": 4, "batch_norm": True},
}


def write_frames(root: Path, sets: list[Path]) -> Path:
    """The ``sets`` (``setN/raw.tif`` + ``instances_ids.png``) as a frames-layout folder."""
    import numpy as np

    from dlsuite.data.io import read_image, write_tiff

    for i, folder in enumerate(sets, start=1):
        write_tiff(root / "inputs" / f"raw_{i:03d}.tif", read_image(folder / "raw.tif"))
        labels = read_image(folder / "instances_ids.png").astype(np.uint16)
        write_tiff(root / "labels" / f"instance_ids_{i:03d}.tif", labels)
    return root


def split_data(root: Path, n_val: int, n_train: int | None = None) -> tuple[Path, Path]:
    """Write the val folder (``n_val`` sets evenly spread over the 40: the cell density
    falls from ~20 % to ~7 % foreground over the set numbers) and the train folder (the
    other sets, the first ``n_train`` of them if given) under ``root``."""
    sets = sorted(DATA.glob("set*"), key=lambda p: int(p.name[3:]))
    step = len(sets) // n_val
    val_sets = sets[step // 2::step][:n_val]
    train_sets = [s for s in sets if s not in val_sets][:n_train]
    return write_frames(root / "train", train_sets), write_frames(root / "val", val_sets)


def make_config(registry, train: Path, val: Path, arch: str, momentum: str, seed: int = 0,
                model: dict | None = None):
    """The parsed config of one measured run."""
    from dlsuite.config import parse_config

    params = dict(MODELS[arch] if model is None else model)
    if momentum == "keras":
        params["bn_momentum"] = 0.99
        if arch.startswith("mobilenet"):
            params["encoder_bn_momentum"] = 0.999
    else:
        params["bn_momentum"] = float(momentum)
    raw = {"seed": seed,
           "data": {"train": str(train), "val": str(val), "layout": "frames"},
           "model": {"name": arch, **params},
           "optimizer": {"name": "adam", "learning_rate": 1e-3},
           "datagen": {"patch_size": [256, 256], "batch_size": 4, "patches_per_image": 1,
                       "sampling": {"name": "uniform"},
                       "augmentation": ["flip"]}}
    return parse_config(raw, registry, check_paths=False).config


def measure(registry, config, *, steps: int, epochs: int, precise: int
            ) -> tuple[list, float, float]:
    """Train ``epochs`` x ``steps`` steps; returns (val_jaccard after each epoch, training
    jaccard of the last epoch, seconds)."""
    import keras

    from dlsuite import training as T
    from dlsuite.batchnorm import PreciseBN
    from dlsuite.data.pipeline import build_datasets

    T.seed_everything(config.seed)
    data = build_datasets(config, registry, temporal=False)
    model, _ = T.build_model(config, registry, n_classes=data.n_classes)
    T.compile_model(model, config, registry, n_classes=data.n_classes)
    callbacks = [PreciseBN(data.train, precise, config.model.params)] if precise else []
    start = time.perf_counter()
    history = model.fit(data.train, epochs=epochs, steps_per_epoch=steps,
                        validation_data=data.val, validation_steps=data.validation_steps,
                        callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - start
    keras.backend.clear_session()
    logs = history.history
    return [float(v) for v in logs["val_jaccard"]], float(logs["jaccard"][-1]), seconds


def main(argv=None) -> None:
    """Measure every requested setting and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--momenta", nargs="+", default=["keras", "0.9", "0.8"])
    parser.add_argument("--precise", nargs="+", type=int, default=[0, 8],
                        help="precise-BN batch counts (0: off)")
    parser.add_argument("--steps", type=int, default=25, help="steps between validations")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--val", type=int, default=2, help="validation images (the last sets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one tiny smoke run")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    n_train = None
    if args.quick:
        args.arch, args.momenta, args.precise = ["mobilenet_mobileunet"], ["0.9"], [2]
        args.steps, args.epochs, args.val, n_train = 5, 2, 1, 4

    from dlsuite.registry import Registry

    registry = Registry.from_entry_points()
    cols = [f"@{args.steps * (e + 1)}" for e in range(args.epochs)]
    header = f"{'architecture':<22} {'momentum':>8} {'precise':>7} " + " ".join(
        f"{c:>6}" for c in cols) + f" {'train':>6} {'s/run':>6}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlsuite-bn-") as tmp:
        train, val = split_data(Path(tmp), args.val, n_train)
        for arch in args.arch:
            for momentum in args.momenta:
                for precise in args.precise:
                    config = make_config(registry, train, val, arch, momentum, args.seed)
                    values, train_j, seconds = measure(registry, config, steps=args.steps,
                                                       epochs=args.epochs, precise=precise)
                    row = f"{arch:<22} {momentum:>8} {precise:>7} " + " ".join(
                        f"{v:6.3f}" for v in values) + f" {train_j:6.3f} {seconds:6.0f}"
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
    print(f"val_jaccard after N training steps, training jaccard of the last epoch (patch "
          f"256, batch 4, {args.val} validation images, seed {args.seed})")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
