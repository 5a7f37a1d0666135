"""``dlsuite evaluate RES GT``: the evaluation command (no TensorFlow import).

Bad input raises DlsuiteInputError / DataError from the API (unknown metric, missing or
unpaired files): exit status 2 without a traceback.

Output: a rich table of the summary metrics (and one row per sequence when there are
several), or with ``--json`` exactly ``{"metrics": {...}, "per_sequence": [...], "matching":
[...]}`` on stdout (``matching``: instance precision/recall/F1/AP/PQ per IoU threshold 0.5..0.9,
null unless precision, recall or f1 is evaluated).
``-o FILE`` also writes that JSON object to FILE; ``--per-frame FILE`` writes the per-frame
rows as CSV. ``--quiet`` leaves out the table (warnings and errors only; ``--json`` still
prints the JSON it asks for). An existing FILE is refused (exit 2, before evaluating) unless
``--overwrite`` and an earlier ``dlsuite evaluate`` wrote it.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from dlsuite import api

from ._output import err, metric_description, metrics_json, say, table_console

__all__ = ["evaluate"]

_PATH = click.Path(exists=False, path_type=Path)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _print_per_sequence(console, names: tuple[str, ...], rows: list[dict]) -> None:
    """The metrics of each sequence: one column per sequence when there are fewer sequences
    than metrics (it fits a terminal), else one row per sequence. A number is never folded
    over two lines: a table wider than the terminal is printed at its own width."""
    from rich.measure import Measurement

    table = Table(title="per sequence", title_justify="left")
    if len(rows) < len(names):
        table.add_column("metric", style="bold")
        for row in rows:
            table.add_column(str(row["sequence"]), justify="right", no_wrap=True)
        for n in names:
            table.add_row(n, *(_fmt(row.get(n)) for row in rows))
    else:
        table.add_column("sequence", style="bold")
        for n in names:
            table.add_column(n, justify="right", no_wrap=True)
        for row in rows:
            table.add_row(str(row["sequence"]), *(_fmt(row.get(n)) for n in names))
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    (console if natural <= console.width else table_console(width=natural)).print(table)


def _print_table(result: dict) -> None:
    names = tuple(result["metrics"])
    console = table_console()
    table = Table(title="evaluation", title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning / reason")
    for n in names:
        value = result["metrics"][n]
        note = metric_description(n)
        if value is None:
            reasons = {s["unavailable"][n] for s in result["per_sequence"]
                       if n in s.get("unavailable", {})}
            if reasons:
                note = "; ".join(sorted(reasons))
        table.add_row(n, _fmt(value), note)
    console.print(table)
    if len(result["per_sequence"]) > 1:
        _print_per_sequence(console, names, result["per_sequence"])
    if result.get("matching"):
        match = Table(title="instance matching (one-to-one, IoU >= threshold; 0 when "
                            "nothing is predicted or nothing is to be found)",
                      title_justify="left")
        keys = ("iou", "tp", "fp", "fn", "precision", "recall", "f1", "ap", "pq")
        for k in keys:
            match.add_column(k, justify="right")
        for e in result["matching"]:
            match.add_row(*(f"{e[k]:.2f}" if k == "iou" else _fmt(e[k]) for k in keys))
        console.print(match)


@click.command("evaluate")
@click.argument("res", type=_PATH)
@click.argument("gt", type=_PATH)
@click.option(
    "--metrics", "metrics", default=None, metavar="LIST",
    help="Comma-separated metrics (default: all): SEG,DET,TRA,jaccard,dice,precision,recall,"
    "f1,temporal_stability,temporal_stability_gt.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("-o", "--output", type=_PATH, default=None, help="Also write the JSON to this file.")
@click.option("--per-frame", "per_frame", type=_PATH, default=None,
              help="Also write the per-frame rows to this CSV file.")
@click.option("--overwrite", is_flag=True,
              help="Replace --output / --per-frame files an earlier dlsuite evaluate wrote "
                   "(any other existing file is never replaced).")
@click.option("--quiet", "-q", is_flag=True,
              help="Warnings and errors only: no table (the results go to -o, --per-frame or "
                   "--json).")
def evaluate(res: Path, gt: Path, metrics: str | None, as_json: bool, output: Path | None,
             per_frame: Path | None, overwrite: bool, quiet: bool) -> None:
    """Evaluate results RES against ground truth GT.

    RES and GT are CTC folders (a root holding NN_RES / NN_GT, or the sequence folders
    themselves) or folders of label images with the same file names (2D images or videos).
    GT may be a dataset folder (inputs/ + labels/) and RES the output folder of dlsuite
    predict on it: results named as the inputs pair with their labels. CTC SEG/DET/TRA
    follow the official definitions; DET/TRA need TRA ground truth and res_track.txt,
    otherwise they are reported as n/a with the reason.
    """
    result = api.evaluate(res, gt, metrics, json_file=output, per_frame_csv=per_frame,
                          overwrite=overwrite)
    for warning in result.get("warnings", ()):
        say(err, ("warning:", "yellow"), f" {warning}", highlight=False)
    if as_json:
        click.echo(metrics_json({"metrics": result["metrics"],
                                 "per_sequence": result["per_sequence"],
                                 "matching": result.get("matching")}))
    elif not quiet:
        _print_table(result)
