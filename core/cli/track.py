"""``dlsuite track INPUT_DIR OUTPUT_DIR``: overlap tracking of label videos into CTC folders.

No TensorFlow import. The linking defaults are the config schema's tracking defaults (the
values ``dlsuite run`` uses). Bad input raises DataError (missing folder, no videos,
unreadable or non-video files): exit status 2 without a traceback.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from dlsuite import api

from ._output import quiet_option

__all__ = ["track"]

_DEFAULTS = api.tracking_defaults()


def _finite(smallest: float, *, open_: bool):
    """A click callback refusing NaN, infinity and values below ``smallest`` (or equal to it
    when ``open_``), so the error names the flag, not the API parameter behind it."""
    def check(ctx, param, value: float) -> float:
        low_ok = value > smallest if open_ else value >= smallest
        if not (math.isfinite(value) and low_ok):
            raise click.BadParameter(f"{value} is not a finite number "
                                     f"{'>' if open_ else '>='} {smallest:g}")
        return value
    return check


@click.command("track")
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(path_type=Path))
@click.option("--max-distance", default=_DEFAULTS["max_distance"], show_default=True,
              type=float, callback=_finite(0, open_=True),
              help="Largest centroid displacement (pixels) of a link.")
@click.option("--min-overlap", default=_DEFAULTS["min_overlap"], show_default=True,
              type=click.FloatRange(0, 1),
              help="Smallest overlap of linked objects, as a fraction of the smaller one "
                   "(0: link by distance alone).")
@click.option("--gap-closing", default=_DEFAULTS["gap_closing"], show_default=True,
              type=click.IntRange(0), help="Largest number of missing frames bridged (0: none).")
@click.option("--splitting/--no-splitting", default=_DEFAULTS["splitting"], show_default=True,
              help="Detect cell divisions.")
@click.option("--fill-gaps", is_flag=True,
              help="0/1 mask videos: temporal Gaussian gap filling before labelling.")
@click.option("--sigma", default=2.0, show_default=True, type=float,
              callback=_finite(0, open_=False),
              help="Gaussian width (frames and pixels) of --fill-gaps.")
@click.option("--min-size", default=0, show_default=True, type=click.IntRange(0),
              help="0/1 mask videos: drop objects smaller than this (pixels).")
@click.option("--overwrite", is_flag=True,
              help="Replace the results an earlier dlsuite track wrote in OUTPUT_DIR (files "
                   "you added there stay).")
@quiet_option
def track(input_dir: Path, output_dir: Path, quiet: bool, **options) -> None:
    """Track the label (or 0/1 mask) videos of INPUT_DIR and write CTC result folders
    OUTPUT_DIR/01_RES, 02_RES, ... (maskTTT.tif + res_track.txt) and sequences.csv.

    OUTPUT_DIR (outside INPUT_DIR) must be new, empty or hold an earlier dlsuite track's
    results (replaced with --overwrite); a folder with other files is refused, nothing in it
    touched."""
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    for row in api.track(input_dir, output_dir, **options):
        if not quiet:
            click.echo(f"{row['sequence']}_RES  {row['video']}: {n(row['frames'], 'frame')}, "
                       f"{n(row['tracks'], 'track')}, {n(row['divisions'], 'division')}")
