"""``dlsuite new-plugin NAME``: scaffold a plugin package."""

from __future__ import annotations

import click

from dlsuite import api

from ._output import out, quiet_option, say

__all__ = ["new_plugin_command"]


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", "kinds", type=click.Choice(["architecture", "loss", "postprocessor",
                                                    "target", "augmentation"]),
              multiple=True, default=("architecture",), show_default=True,
              help="What the plugin contributes; repeat for several kinds (each contribution "
                   "is then named NAME_KIND).")
@click.option("-d", "--directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Where to create the package folder.")
@quiet_option
def new_plugin_command(name: str, kinds: tuple[str, ...], directory: str, quiet: bool) -> None:
    """Write a ready-to-install plugin package for NAME (entry point, params, tests)."""
    root = api.new_plugin(name, list(kinds), directory)
    if quiet:
        return
    say(out, (f"created {root}", "green"), f"\nnext: pip install -e {root} && "
                    f"dlsuite plugins && pytest {root}/tests")
