"""``dlsuite config validate|show|migrate|schema`` (no TensorFlow import)."""

from __future__ import annotations

import json

import click

from dlsuite import api

from ._output import announce_migration, console_logging, err, out, print_migration, say

__all__ = ["config_group"]

_FILE = click.Path(dir_okay=False)
_NO_PATHS = click.option("--no-paths", is_flag=True, help="Do not check that data paths exist.")
_VERBOSE = click.option("--verbose", "-v", is_flag=True,
                        help="Show the full mapping of a legacy config (default: one line).")
_SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                    help="Override a config value (repeatable): a dotted JSON path and a JSON "
                         "value, else a string, e.g. --set model.n_filters=32.")


@click.group("config")
def config_group() -> None:
    """Validate, show, migrate configs, and print the config JSON Schema."""


@config_group.command("validate")
@click.argument("file", type=_FILE)
@_NO_PATHS
@click.option("--no-pixels", is_flag=True,
              help="Do not read the pixels of the data (default: every file of train, val "
                   "and test is read once, as dlsuite run does before it starts).")
@_VERBOSE
@_SET
@click.option("--quiet", "-q", is_flag=True,
              help="Warnings and errors only: the exit status says valid (0) or not (2).")
def config_validate(file: str, no_paths: bool, no_pixels: bool, verbose: bool,
                    overrides: tuple[str, ...], quiet: bool) -> None:
    """Validate FILE (with --set overrides) and its data as dlsuite run checks them before it
    starts: every problem is listed with its JSON path, or the override that caused it
    (exit 2 if any)."""
    with console_logging(quiet):  # notes of the checks (e.g. undeclared post-processors)
        loaded = api.check_config(file, check_paths=not no_paths, pixels=not no_pixels,
                                  overrides=list(overrides))
    announce_migration(loaded.migration, file, verbose=verbose, quiet=quiet)
    if not quiet:
        say(out, (f"{file}: valid", "green"))


@config_group.command("show")
@click.argument("file", type=_FILE)
@_NO_PATHS
@_VERBOSE
@_SET
def config_show(file: str, no_paths: bool, verbose: bool, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved config of FILE (with --set overrides), defaults included, as
    JSON."""
    shown = api.show_config(file, check_paths=not no_paths, overrides=list(overrides))
    announce_migration(shown.migration, file, verbose=verbose)
    click.echo(json.dumps(shown.data, indent=2))


@config_group.command("migrate")
@click.argument("file", type=_FILE)
@click.option("-o", "--output", type=_FILE,
              help="Write the new config here (a new file: an existing one is never replaced).")
def config_migrate(file: str, output: str | None) -> None:
    """Migrate a legacy flat config FILE of the original suite to the new form."""
    migration = api.migrate_config(file, output)
    print_migration(migration.rows, header=False)
    for key, old, new in migration.rebased:
        say(err, f"{key}: {old} -> {new} (relative to the folder of {output})")
    if migration.written is not None:
        say(err, (f"wrote {output}", "green"))
    else:
        click.echo(json.dumps(migration.config, indent=2))
        if migration.relative_to is not None:
            say(err, ("note:", "yellow"), f" its relative paths name places in "
                f"{migration.relative_to}/ (the legacy file's folder), as read from a file "
                "there; to save the config in another folder use -o FILE, which rewrites "
                "them for FILE's folder")


@config_group.command("schema")
@click.argument("file", required=False, type=_FILE)
@click.option("--overwrite", is_flag=True,
              help="Replace FILE when it is a schema dlsuite wrote (any other file is never "
                   "replaced).")
def config_schema(file: str | None, overwrite: bool) -> None:
    """Print the JSON Schema of the config (installed plugins' parameters included).

    With FILE, the schema is written there instead."""
    schema = api.config_schema(file, overwrite=overwrite)
    if file:
        say(err, (f"wrote {file}", "green"))
    else:
        click.echo(json.dumps(schema, indent=2))
