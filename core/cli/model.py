"""``dlsuite model summary CONFIG``: build the configured model and print its size."""

from __future__ import annotations

import json

import click
from rich.table import Table

from dlsuite import api

from ._output import console_logging, table_console

__all__ = ["model_group"]


@click.group("model")
def model_group() -> None:
    """Inspect the configured model."""


@model_group.command("summary")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON with keys total, trainable, "
              "non_trainable, input_shape, output_shape, size_multiple, receptive_field, "
              "training_memory_gib.")
def summary(config: str, as_json: bool) -> None:
    """Build the model of CONFIG; print total/trainable/non-trainable parameters, shapes,
    size multiple, receptive field and the least memory a training step of the configured
    batch needs."""
    with console_logging(False):  # one line per message, no TensorFlow log lines
        info = api.model_summary(config)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = Table(title=f"{info['architecture']} ({config})")
    table.add_column("item")
    table.add_column("value", justify="right")
    for key in ("total", "trainable", "non_trainable"):
        table.add_row(f"{key} parameters", f"{info[key]:,}")
    table.add_row("input shape", str(info["input_shape"]))
    table.add_row("output shape", str(info["output_shape"]))
    table.add_row("size multiple", str(info["size_multiple"]))
    field = info["receptive_field"]
    table.add_row("receptive field", "measured when predicting" if field is None
                  else f"{field} px")
    need = info["training_memory_gib"]
    table.add_row("training step memory", "not known" if need is None
                  else f"at least {need:.2f} GiB")
    table_console().print(table)
