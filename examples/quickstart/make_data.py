"""Write the quickstart's ``data/`` from the Usiigaci T98G phase-contrast images (MIT).

Reproducible: ``python examples/quickstart/make_data.py [SOURCE] [OUT]`` with SOURCE the
``usiigaci_t98g_phc`` folder (default ``../shared/data/usiigaci_t98g_phc`` relative to the
project root) and OUT this example's ``data`` folder. Each selected ``annotated/setN`` image
(1022x1024 uint16) is downsampled 2x: the raw image by 2x2 block means (uint16), the
instance labels by taking the top-left pixel of each block (ids stay exact; uint16). The
result, 511x512 per image, is written in the frames layout
``data/{train,val,test}/{inputs/raw_NNN.tif, labels/instance_ids_NNN.tif}`` (zlib-compressed
TIFF), and ``SOURCE.md`` plus ``LICENSE-usiigaci.txt`` are copied into ``data/``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "data" / "usiigaci_t98g_phc"

#: split -> the ``annotated/setN`` numbers it takes (disjoint).
SPLITS = {"train": [1, 2, 3, 4, 5, 6], "val": [7], "test": [8, 9]}


def downsample(raw: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x downsampling: 2x2 block mean of ``raw`` (rounded, uint16) and the top-left pixel
    of each 2x2 block of ``labels`` (uint16)."""
    h, w = (raw.shape[0] // 2) * 2, (raw.shape[1] // 2) * 2
    blocks = raw[:h, :w].astype(np.float64).reshape(h // 2, 2, w // 2, 2)
    small = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint16)
    return small, labels[:h:2, :w:2].astype(np.uint16)


def write(source: Path, out: Path) -> None:
    """Write every split of :data:`SPLITS` from ``source`` into ``out``."""
    if out.exists():
        shutil.rmtree(out)
    for split, sets in SPLITS.items():
        for k, n in enumerate(sets, start=1):
            folder = source / "annotated" / f"set{n}"
            raw = tifffile.imread(folder / "raw.tif")
            labels = np.asarray(Image.open(folder / "instances_ids.png"))
            raw, labels = downsample(raw, labels)
            for sub, name, array in (("inputs", f"raw_{k:03d}.tif", raw),
                                     ("labels", f"instance_ids_{k:03d}.tif", labels)):
                path = out / split / sub / name
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, array, compression="zlib", photometric="minisblack",
                                 metadata={"axes": "YX", "source": f"usiigaci set{n}"})
    for name in ("SOURCE.md", "LICENSE-usiigaci.txt"):
        shutil.copy2(source / name, out / name)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "data"
    write(src, dst)
    print(f"wrote {dst} from {src}")
