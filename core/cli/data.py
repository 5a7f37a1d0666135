"""Data commands of the CLI (no TensorFlow import): ``dlsuite example-data ...`` and
``dlsuite prepare ...``. Bad input raises DlsuiteInputError / DataError from the API: exit
status 2 without a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from dlsuite import api

from ._output import key_values, quiet_option

__all__ = ["example_data", "prepare"]

_DIR = click.Path(file_okay=False, path_type=Path)


# --------------------------------------------------------------------------------------------
# example-data


@click.group("example-data")
def example_data() -> None:
    """Write small synthetic phase-contrast datasets (for trying dlsuite and for tests)."""


@example_data.command("videos")
@click.argument("out_dir", type=_DIR)
@click.option("--n-videos", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--frames", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=16))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@quiet_option
def example_videos(out_dir: Path, n_videos: int, frames: int, size: int, seed: int,
                   quiet: bool) -> None:
    """Write synthetic 2D+t videos to OUT_DIR/videos (videos layout) and OUT_DIR/ctc (CTC)."""
    written = api.example_data(out_dir, "videos", n_videos=n_videos, frames=frames, size=size,
                               seed=seed)
    if quiet:
        return
    key_values(
        "example videos",
        [
            ("videos layout", f"{written['videos']}  ({len(written['inputs'])} videos, "
                              f"{frames} frames, {size}x{size}, uint16)"),
            ("CTC sequences", f"{written['ctc']}  ({len(written['sequences'])} sequences, "
                              f"SEG on frames {written['annotated']})"),
        ],
    )


@example_data.command("frames")
@click.argument("out_dir", type=_DIR)
@click.option("--n", "n", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=16))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@quiet_option
def example_frames(out_dir: Path, n: int, size: int, seed: int, quiet: bool) -> None:
    """Write synthetic 2D frames to OUT_DIR/frames (frames layout)."""
    written = api.example_data(out_dir, "frames", n=n, size=size, seed=seed)
    if quiet:
        return
    key_values("example frames", [("frames layout", f"{written['frames']}  ({n} frames, "
                                                    f"{size}x{size})")])


# --------------------------------------------------------------------------------------------
# prepare


@click.group("prepare")
def prepare() -> None:
    """Convert datasets between layouts (frames, videos, CTC, OME-Zarr) and make validation
    clips."""


@prepare.command("frames")
@click.argument("src", type=_DIR)
@click.argument("dst", type=_DIR)
@click.option("--overwrite", is_flag=True, help="replace earlier outputs in DST")
@quiet_option
def prepare_frames(src: Path, dst: Path, overwrite: bool, quiet: bool) -> None:
    """Split the videos of SRC (inputs/ + labels/) into 2D frames in DST, with
    videos2im_relation.csv."""
    done = api.prepare_frames(src, dst, overwrite=overwrite)
    if quiet:
        return
    key_values(
        "videos -> frames",
        [
            ("frames", f"{done['inputs']}  ({done['n_inputs']} files)"),
            ("labels", f"{done['labels']}  ({done['n_labels']} files)"),
            ("relation", str(done["relation"])),
        ],
    )


@prepare.command("videos")
@click.argument("src", type=_DIR)
@click.argument("dst", type=_DIR)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="relation CSV (default: SRC/videos2im_relation.csv)")
@quiet_option
def prepare_videos(src: Path, dst: Path, csv_path: Path | None, quiet: bool) -> None:
    """Rebuild videos in DST from the frames of SRC using the relation CSV."""
    written = api.prepare_videos(src, dst, csv_path)
    if quiet:
        return
    key_values("frames -> videos", [("videos", f"{dst}  ({len(written)} files)")])


@prepare.command("clips")
@click.argument("src", type=_DIR)
@click.argument("dst", type=_DIR)
@click.option("-T", "--frames", "T", required=True, type=click.IntRange(min=1),
              help="frames per clip (the temporal model's window)")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1),
              help="use every N-th annotated frame")
@click.option("--layout", default="auto", show_default=True,
              type=click.Choice(["auto", "videos", "ctc", "frames"]))
@click.option("--overwrite", is_flag=True, help="replace earlier outputs in DST")
@quiet_option
def prepare_clips(src: Path, dst: Path, T: int, every: int, layout: str, overwrite: bool,
                  quiet: bool) -> None:
    """Write validation clips of T frames ending at the annotated frames of SRC into DST."""
    done = api.prepare_clips(src, dst, T, every=every, layout=layout, overwrite=overwrite)
    if quiet:
        return
    key_values(
        "validation clips",
        [
            ("clips", f"{done['inputs']}  ({done['n_clips']} clips of {T} frames)"),
            ("targets", str(done["labels"])),
            ("relation", str(done["relation"])),
        ],
    )


@prepare.command("ctc")
@click.argument("src", type=_DIR)
@click.argument("dst", type=_DIR)
@click.option("--kind", default="GT", show_default=True, type=click.Choice(["GT", "RES"]),
              help="GT: NN_GT/SEG+TRA+man_track.txt; RES: NN_RES/mask*.tif+res_track.txt")
@click.option("--overwrite", is_flag=True, help="replace earlier outputs in DST")
@quiet_option
def prepare_ctc(src: Path, dst: Path, kind: str, overwrite: bool, quiet: bool) -> None:
    """Export the label videos of SRC (SRC/labels/ or SRC itself) as CTC sequences in DST."""
    done = api.prepare_ctc(src, dst, kind=kind, overwrite=overwrite)
    if quiet:
        return
    rows = [(seq, video) for seq, video in done["sequences"].items()]
    rows.append(("mapping", str(done["mapping"])))
    key_values(f"CTC {kind} export -> {dst}", rows)


@prepare.command("ome-zarr")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=_DIR)
@click.option("--overwrite", is_flag=True, help="replace earlier outputs in DST")
@quiet_option
def prepare_omezarr(src: Path, dst: Path, overwrite: bool, quiet: bool) -> None:
    """Convert the 2D / 2D+t TIFF SRC, or the TIFFs of the folder SRC, to OME-Zarr images
    DST/<name>.ome.zarr (pixel size from the TIFF resolution), block by block. Needs
    dlsuite[scale]."""
    written = api.prepare_omezarr(src, dst, overwrite=overwrite)
    if quiet:
        return
    key_values("TIFF -> OME-Zarr", [("images", f"{dst}  ({len(written)} images)")])


@prepare.command("tiff")
@click.argument("src", type=_DIR)
@click.argument("dst", type=_DIR)
@click.option("--overwrite", is_flag=True, help="replace earlier outputs in DST")
@quiet_option
def prepare_tiff(src: Path, dst: Path, overwrite: bool, quiet: bool) -> None:
    """Convert the OME-Zarr images of SRC (or SRC itself) to TIFFs DST/<name>.tif.
    Needs dlsuite[scale]."""
    written = api.prepare_tiff(src, dst, overwrite=overwrite)
    if quiet:
        return
    key_values("OME-Zarr -> TIFF", [("files", f"{dst}  ({len(written)} files)")])
