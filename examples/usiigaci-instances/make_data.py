"""Write this example's ``data/`` from the Usiigaci T98G phase-contrast images (MIT).

``python examples/usiigaci-instances/make_data.py [SOURCE] [OUT]``: SOURCE is the
``usiigaci_t98g_phc`` folder (default ``../shared/data/usiigaci_t98g_phc`` relative to the
project root), OUT this example's ``data`` folder. The 40 annotated images are split by set
number: ``annotated/set1..set32`` -> ``train``, ``set33..set40`` -> ``val``, written at full
resolution (1022x1024) in the frames layout ``OUT/{train,val}/{inputs/raw_NNN.tif (uint16),
labels/instance_ids_NNN.tif (uint16)}`` (zlib-compressed TIFF; NNN = the set number), with
``SOURCE.md`` and ``LICENSE-usiigaci.txt`` copied into OUT. ``benchmarks/instances.py`` uses
the same split (it imports :func:`write`).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "data" / "usiigaci_t98g_phc"

#: split -> the ``annotated/setN`` numbers it takes (disjoint).
SPLITS = {"train": list(range(1, 33)), "val": list(range(33, 41))}

#: Written last; its presence (with the same content) marks a complete folder.
MANIFEST = "split.json"


def manifest(splits: dict[str, list[int]], crop: int | None = None) -> dict:
    """What :func:`write` records in ``OUT/split.json``."""
    return {"source": "usiigaci_t98g_phc/annotated",
            "resolution": "full (1022x1024)" if crop is None else f"top-left {crop}x{crop} crop",
            "splits": {k: [f"set{n}" for n in v] for k, v in splits.items()}}


def is_written(out: Path, splits: dict[str, list[int]] = SPLITS, crop: int | None = None) -> bool:
    """True when ``out`` holds a complete split written by :func:`write` with these
    arguments."""
    try:
        return json.loads((out / MANIFEST).read_text()) == manifest(splits, crop)
    except (OSError, ValueError):
        return False


def write(source: Path, out: Path, splits: dict[str, list[int]] = SPLITS,
          crop: int | None = None) -> Path:
    """Write every split of ``splits`` from ``source`` into ``out`` and return ``out``;
    ``crop`` keeps only the top-left ``crop x crop`` pixels (for quick smoke runs).

    Raises FileNotFoundError naming the first missing source file before writing anything.
    Refuses (FileExistsError) to replace a non-empty ``out`` it did not write."""
    folders = [source / "annotated" / f"set{n}" for ns in splits.values() for n in ns]
    for folder in folders:
        for name in ("raw.tif", "instances_ids.png"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"missing {folder / name}")
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise FileExistsError(f"{out} is not empty and was not written by make_data.py")
        shutil.rmtree(out)
    for split, sets in splits.items():
        for n in sets:
            folder = source / "annotated" / f"set{n}"
            raw = tifffile.imread(folder / "raw.tif").astype(np.uint16)
            labels = np.asarray(Image.open(folder / "instances_ids.png")).astype(np.uint16)
            if crop is not None:
                raw, labels = raw[:crop, :crop], labels[:crop, :crop]
            for sub, name, array in (("inputs", f"raw_{n:03d}.tif", raw),
                                     ("labels", f"instance_ids_{n:03d}.tif", labels)):
                path = out / split / sub / name
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, array, compression="zlib", photometric="minisblack",
                                 metadata={"axes": "YX", "source": f"usiigaci set{n}"})
    for name in ("SOURCE.md", "LICENSE-usiigaci.txt"):
        shutil.copy2(source / name, out / name)
    (out / MANIFEST).write_text(json.dumps(manifest(splits, crop), indent=1) + "\n")
    return out


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "data"
    try:
        write(src, dst)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"make_data.py: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {dst} from {src}")
