"""``dlsuite track INPUT_DIR OUTPUT_DIR``: overlap tracking of label videos into CTC folders.

The lead's ``dlsuite`` group adds it with ``cli.add_command(track)``. No TensorFlow import.
Bad input raises :class:`~dlsuite.errors.DataError` (missing folder, no videos, unreadable or
non-video files); the top-level CLI turns it into exit status 2 without a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["track"]


@click.command("track")
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(path_type=Path))
@click.option("--max-distance", default=50.0, show_default=True, type=float,
              help="Largest centroid displacement (pixels) of a link.")
@click.option("--min-overlap", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Smallest overlap of linked objects, as a fraction of the smaller one "
                   "(0: link by distance alone).")
@click.option("--gap-closing", default=2, show_default=True, type=click.IntRange(0),
              help="Largest number of missing frames bridged (0: none).")
@click.option("--splitting/--no-splitting", default=True, show_default=True,
              help="Detect cell divisions.")
@click.option("--fill-gaps", is_flag=True,
              help="0/1 mask videos: temporal Gaussian gap filling before labelling.")
@click.option("--sigma", default=2.0, show_default=True, type=float,
              help="Gaussian width (frames and pixels) of --fill-gaps.")
@click.option("--min-size", default=0, show_default=True, type=click.IntRange(0),
              help="0/1 mask videos: drop objects smaller than this (pixels).")
def track(input_dir: Path, output_dir: Path, **options) -> None:
    """Track the label (or 0/1 mask) videos of INPUT_DIR and write CTC result folders
    OUTPUT_DIR/01_RES, 02_RES, ... (maskTTT.tif + res_track.txt) and sequences.csv."""
    from dlsuite.tracking.folder import track_folder

    for row in track_folder(input_dir, output_dir, fill_gaps=options.pop("fill_gaps"),
                            **options):
        click.echo(f"{row['sequence']}_RES  {row['video']}: {row['frames']} frames, "
                   f"{row['tracks']} tracks, {row['divisions']} divisions")
