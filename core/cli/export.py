"""``dlsuite export RUN_DIR --format F``: a trained model for tools outside dlsuite."""

from __future__ import annotations

from pathlib import Path

import click

from dlsuite import api

from ._output import console_logging, err, say

__all__ = ["export"]

# the choices of --format (kept here, TF- and core-free; tests check them against
# dlsuite.export.FORMATS)
FORMAT_NAMES = ("keras", "savedmodel", "onnx", "bioimageio")


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), required=True,
              help="keras: plain-Keras .keras file; savedmodel: TensorFlow SavedModel "
                   "(signature 'serve'); onnx: ONNX file; bioimageio: bioimage.io "
                   "model package, 2D models (onnx and bioimageio need dlsuite[export]).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="Where to write (must not exist unless --overwrite; a name ending in "
                   ".keras for keras, .zip for bioimageio) "
                   "[default: RUN_DIR/export/<run name>.keras|_savedmodel|.onnx|.bioimageio.zip].")
@click.option("--weights", help="Checkpoint: best, last or a path to a .keras file "
                                "[default: the run's inference.weights].")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier export dlsuite wrote at that path (e.g. after dlsuite "
                   "tune), once the new one is complete; anything else there is refused.")
@click.option("-q", "--quiet", is_flag=True,
              help="Warnings and errors only: no notes, model description or 'wrote' line.")
def export(run_dir: Path, fmt: str, out: Path | None, weights: str | None, overwrite: bool,
           quiet: bool) -> None:
    """Export the model of the trained run RUN_DIR for use without dlsuite.

    The model takes images normalized as the run did (see the printed normalization) of
    any height and width that are multiples of the size multiple, and outputs logits
    (softmax over the last axis gives the class probabilities).
    """
    with console_logging(quiet):  # one line per message, no TensorFlow log lines
        result = api.export(run_dir, fmt, out, weights=weights, overwrite=overwrite)
    if quiet:
        return
    for note in result.notes:
        say(err, ("note:", "yellow"), f" {note}", highlight=False)
    norm = result.normalization
    err.print(f"checkpoint {result.checkpoint}; input {result.input_shape} (height and width "
              f"multiples of {result.size_multiple}); outputs {result.outputs}; normalize "
              f"inputs with {norm['name']} {norm['params']}", highlight=False)
    click.echo(f"wrote {result.path}")
