"""``dlsuite predict RUN_DIR INPUT``: predict new images or videos with a trained run.

TensorFlow is imported only when the command runs. Bad input (missing run, checkpoint or
input, non-empty output) raises DlsuiteInputError / DataError: exit status 2, one line, no
traceback.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from dlsuite import api

from ._output import console_logging, err, say

__all__ = ["predict"]


def _tile_size(value: str | None):
    """``--tile-size``: a positive integer, or ``none`` for the whole image."""
    if value is None:
        return None
    if value.lower() in ("none", "whole", "0"):
        return "whole"
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an integer or 'none'") from None
    if n < 1:
        raise click.BadParameter("must be >= 1 (or 'none' for the whole image)")
    return n


def _halo(value: str | None):
    """``--halo``: a non-negative integer or ``auto``."""
    if value is None or value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an integer or 'auto'") from None
    if n < 0:
        raise click.BadParameter("must be >= 0 (or 'auto')")
    return n


@click.command("predict")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path),
              help="Output folder [default: RUN_DIR/<inference.output_folder>/<INPUT name>; "
                   "<INPUT name>-predicted for an INPUT named like the run's own labels, "
                   "probabilities, ctc or test_videos].")
@click.option("--weights", help="Checkpoint: best, last or a path to a .keras file "
                                "[default: the run's inference.weights].")
@click.option("--tile-size", callback=lambda c, p, v: _tile_size(v), metavar="N|none",
              help="Output tile edge in pixels; none: the whole image "
                   "[default: the run's inference.tile_size].")
@click.option("--halo", callback=lambda c, p, v: _halo(v), metavar="N|auto",
              help="Context pixels around each tile [default: the run's inference.halo].")
@click.option("--batch-size", type=click.IntRange(1),
              help="Tiles (or frames) per batch [default: the run's inference.batch_size].")
@click.option("--no-postprocess", is_flag=True,
              help="Write probabilities only (no post-processing, no labels).")
@click.option("--postprocess", "chain", type=click.Path(dir_okay=False, path_type=Path),
              metavar="CHAIN.json",
              help="Another post-processing chain to try (no retraining): a JSON file holding "
                   "a list of steps in the config's \"postprocess\" format (or a chain "
                   "dlsuite tune wrote, or another run's postprocess.json); checked against "
                   "the run's model outputs before anything is written.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the run's postprocess, inference or tracking config, or "
                   "data.nonfinite_pixels (repeatable), e.g. --set "
                   "postprocess[0].threshold=0.6.")
@click.option("--ctc", is_flag=True,
              help="Also track each video and write CTC folders OUT/ctc/NN_RES "
                   "(masks + res_track.txt) with the run's tracking settings.")
@click.option("--as-video", is_flag=True,
              help="INPUT is a folder of 2D images: stack them (natural name order) into one "
                   "video, e.g. a time-lapse saved one file per frame.")
@click.option("--overwrite", is_flag=True, help="Replace the predictions in a non-empty OUT.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted prediction into OUT: inputs whose outputs are "
                   "all there (newer than the input) are skipped, and so are the blocks "
                   "already predicted of a block-wise (OME-Zarr) prediction (refused when "
                   "OUT was predicted with another run, checkpoint, input, tiling, block "
                   "size, chain or overrides).")
@click.option("--scheduler", metavar="local[:N]|ADDRESS",
              help="Predict the inputs as tasks on a Dask cluster: local:N starts N "
                   "single-threaded worker processes on this machine, an address "
                   "(tcp://host:8786) uses a running scheduler. Rerunning skips complete "
                   "outputs. Needs dlsuite[scale].")
@click.option("--block-size", type=click.IntRange(1), metavar="N",
              help="Predict block by block (N output pixels a side, plus the model's halo), "
                   "reading the inputs lazily, into OUT/<name>.ome.zarr; OME-Zarr inputs "
                   "always go this way [default: 1024]. Needs dlsuite[scale].")
@click.option("-q", "--quiet", is_flag=True,
              help="Warnings and errors only: no progress bar, notes, summary table or totals.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="With an exported model: a dlsuite config (e.g. the run's config.json) "
                   "giving normalization, tiling, halo and post-processing.")
def predict(run_dir: Path, input_path: Path, out_dir: Path | None, weights: str | None,
            tile_size, halo, batch_size: int | None, no_postprocess: bool, chain: Path | None,
            overrides: tuple[str, ...], ctc: bool, as_video: bool, overwrite: bool,
            resume: bool, scheduler: str | None, block_size: int | None, quiet: bool,
            config_file: Path | None) -> None:
    """Predict INPUT with the trained run RUN_DIR and write per input
    probabilities/<name>.tif (float32) and labels/<name>.tif (instance labels).

    INPUT is a TIFF/PNG image or video, a folder of them, a folder of CTC frames tNNN.tif,
    or a dataset folder (frames, videos or CTC layout; labels are not needed). The run's
    config gives normalization, tiling, post-processing and tracking; --postprocess and
    --set try another chain or other values without retraining.

    RUN_DIR may instead be an exported model: a bioimage.io package (.zip or folder), a
    SavedModel folder or a .keras file. Its settings then come from --config, else from
    what dlsuite export stored in it (package, SavedModel), else from dlsuite's defaults
    (a package's own preprocessing and halo); outputs go beside it by default.
    """
    if chain is not None and no_postprocess:
        raise click.UsageError("--postprocess and --no-postprocess exclude each other")
    given = {"weights": weights, "halo": halo, "batch_size": batch_size,
             "config": config_file}
    options = {k: v for k, v in given.items() if v is not None}  # left out: the run's config
    if scheduler is not None:
        options["scheduler"] = scheduler
    if block_size is not None:
        options["block_size"] = block_size
    if resume:
        options["resume"] = True
    if tile_size is not None:
        options["tile_size"] = None if tile_size == "whole" else tile_size
    with console_logging(quiet):  # --quiet: warnings and errors only, one line each
        summary = api.predict_folder(run_dir, input_path, out_dir,
                                     postprocess=False if no_postprocess else (chain or True),
                                     overrides=list(overrides), ctc=ctc, as_video=as_video,
                                     overwrite=overwrite, quiet=quiet, **options)
    if quiet:
        return
    for note in summary.notes:
        say(err, ("note:", "yellow"), f" {note}", highlight=False)
    table = Table("input", "shape", "objects", "CTC", title=f"{summary.checkpoint}")
    for row in summary.rows:
        table.add_row(row["name"], "x".join(map(str, row["shape"])),
                      "-" if row["objects"] is None else str(row["objects"]),
                      f"{row['sequence']}_RES" if row["sequence"] else "-")
    err.print(table)
    click.echo(f"wrote {len(summary.rows)} prediction(s) to {summary.out_dir}")
