"""``dlsuite tune RUN_DIR``: tune a trained run's post-processing on its validation set.

What ``dlsuite run`` does after training (:func:`dlsuite.api.tune`), for a run stopped before
that step or trained with ``evaluation.tune_postprocess`` false. Output: a table of the
chosen values, or with ``--json`` the content written to ``RUN_DIR/postprocess.json``
(``metric``, ``score``, ``default_score``, ``steps``, ``tuned``, ``evaluations``,
``seconds``, ``timed_out``). Bad input is exit status 2 before anything is predicted.
``--postprocess CHAIN.json --output TUNED.json`` tunes another chain and writes it, tuned,
as a chain file for ``dlsuite predict --postprocess`` (then ``--json`` prints the same
result). Importing this module imports no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from dlsuite import api

from ._output import console_logging, table_console

__all__ = ["tune"]


@click.command("tune")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Choice(["best", "last"]), default="best",
              show_default=True, help="The checkpoint whose predictions are post-processed.")
@click.option("--metric", type=click.Choice(["SEG", "f1"]), default=None,
              help="What the search maximises [default: the run's evaluation.tune_metric].")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time budget of the search [default: the run's evaluation.tune_seconds].")
@click.option("--postprocess", "chain", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Tune this chain (a JSON file in the config's \"postprocess\" format, as "
                   "for dlsuite predict --postprocess) instead of the run's; needs --output.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the tuned chain to this file (for dlsuite predict --postprocess) "
                   "instead of RUN_DIR/postprocess.json; the run is not touched.")
@click.option("--overwrite", is_flag=True,
              help="Replace the run's postprocess.json (or an --output file dlsuite tune "
                   "wrote).")
@click.option("--quiet", "-q", is_flag=True, help="Warnings and errors only.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the search's result (postprocess.json's content).")
def tune(run_dir: str, weights: str, metric: str | None, seconds: float | None,
         chain: Path | None, output: Path | None, overwrite: bool, quiet: bool,
         as_json: bool) -> None:
    """Search the tunable post-processing parameters of a trained run on its validation set
    (data.val) and write RUN_DIR/postprocess.json, which dlsuite predict and dlsuite test
    then use (with --output: a chain file for dlsuite predict --postprocess)."""
    with console_logging(quiet):
        result = api.tune(run_dir, weights=weights, metric=metric, seconds=seconds,
                          overwrite=overwrite, quiet=quiet, postprocess=chain, output=output)
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if quiet:
        return
    table = Table(title=f"post-processing of {run_dir} tuned on data.val "
                        f"({result.evaluations} chains in {result.seconds:.0f} s"
                        f"{', budget spent' if result.timed_out else ''})",
                  title_justify="left", show_header=False)
    table.add_row(result.metric,
                  f"{result.score:.4f} (configured values {result.default_score:.4f})")
    for key, value in result.tuned.items():
        table.add_row(key, json.dumps(value))
    table.add_row("written to", str(output if output is not None
                                    else Path(run_dir) / "postprocess.json"))
    table_console().print(table)
