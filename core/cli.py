"""The ``dlsuite`` command line (click + rich). It parses arguments and calls the API.

Exit codes: 0 ok, 2 bad input (config errors, missing files, unknown plugins), 1 unexpected
failure, 130/143 interrupted. Bad input never prints a traceback; ``--debug`` shows one.
None of the commands listed in the Foundation contract imports TensorFlow.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

import click
from rich.console import Console

from . import __version__
from .errors import ConfigError, DlsuiteInputError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# Commands defined in their own modules, attached to the group at start-up
# (module, attribute). None of these modules imports TensorFlow at import time.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("dlsuite.cli_model", "model_group"),
    ("dlsuite.cli_scaffold", "new_plugin_command"),
    ("dlsuite.cli_data", "example_data"),
    ("dlsuite.cli_data", "prepare"),
    ("dlsuite.cli_eval", "evaluate"),
    ("dlsuite.cli_run", "train"),
    ("dlsuite.cli_run", "run"),
    ("dlsuite.cli_track", "track"),
    ("dlsuite.cli_predict", "predict"),
]


class State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dlsuite")
@click.option("--debug", is_flag=True, help="Show tracebacks for every error.")
def cli(debug: bool) -> None:
    """dlsuite: deep-learning segmentation of 2D microscopy images and videos.

    Write one JSON config, then `dlsuite run config.json`.
    """
    State.debug = debug


# ---- config ---------------------------------------------------------------------------------
@cli.group("config")
def config_group() -> None:
    """Validate, show, migrate configs, and print the config JSON Schema."""


def _print_migration(loaded) -> None:
    if loaded.migration:
        from .config.legacy import format_migration

        err.print("[yellow]legacy config of the original suite: migrated as follows[/yellow]")
        err.print(format_migration(loaded.migration))


@config_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--no-paths", is_flag=True, help="Do not check that data paths exist.")
def config_validate(file: str, no_paths: bool) -> None:
    """Validate FILE: every problem is listed with its JSON path (exit 2 if any)."""
    from .api import load_config

    loaded = load_config(file, check_paths=not no_paths)
    _print_migration(loaded)
    out.print(f"[green]{file}: valid[/green]")


@config_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--no-paths", is_flag=True, help="Do not check that data paths exist.")
def config_show(file: str, no_paths: bool) -> None:
    """Print the fully resolved config of FILE, defaults included, as JSON."""
    from .api import load_config, plugins
    from .config.converter import unstructure_config

    loaded = load_config(file, check_paths=not no_paths)
    _print_migration(loaded)
    click.echo(json.dumps(unstructure_config(loaded.config, plugins()), indent=2))


@config_group.command("migrate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the new config here.")
def config_migrate(file: str, output: str | None) -> None:
    """Migrate a legacy flat config FILE of the original suite to the new form."""
    from .config.legacy import format_migration, is_legacy, migrate, write_migrated
    from .config.loader import load_config_data, parse_config
    from .registry import get_registry

    data = load_config_data(file)
    if not is_legacy(data):
        raise DlsuiteInputError(f"{file}: not a legacy config (it has schema_version or no "
                                "keys of the original suite); nothing to migrate")
    new, rows = migrate(data)
    err.print(format_migration(rows))
    parse_config(data, get_registry(), source=file, check_paths=False)  # must validate
    if output:
        write_migrated(new, output)
        err.print(f"[green]wrote {output}[/green]")
    else:
        click.echo(json.dumps(new, indent=2))


@config_group.command("schema")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def config_schema(file: str | None) -> None:
    """Print the JSON Schema of the config (installed plugins' parameters included).

    With FILE, the schema is written there instead."""
    from .config.jsonschema import config_json_schema
    from .registry import get_registry

    text = json.dumps(config_json_schema(get_registry()), indent=2)
    if file:
        from .fileio import write_text_atomic

        write_text_atomic(file, text + "\n")
        err.print(f"[green]wrote {file}[/green]")
    else:
        click.echo(text)


# ---- plugins --------------------------------------------------------------------------------
@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--validate", is_flag=True, help="Import every factory; exit 1 if one fails.")
@click.option("--kind", type=click.Choice(["architectures", "losses", "metrics", "normalizers",
                                           "samplers", "targets", "augmentations",
                                           "postprocessors"]),
              help="Show only this kind, with each entry's parameters.")
def plugins_command(as_json: bool, validate: bool, kind: str | None) -> None:
    """List installed plugins, their distributions and what each contributes."""
    from .plugins_view import plugins_report

    code = plugins_report(as_json=as_json, validate=validate, kind=kind, out=out)
    sys.exit(code)


def _attach_subcommands() -> None:
    for module_name, attr in SUBCOMMANDS:
        module = importlib.import_module(module_name)
        cli.add_command(getattr(module, attr))
    try:
        from .registry import get_registry

        get_registry().call_event("dlsuite_add_commands", cli=cli)
    except Exception as exc:  # noqa: BLE001 - a plugin must not break the CLI
        err.print(f"[yellow]warning: a plugin failed to add commands: {exc}[/yellow]")


def _report(exc: BaseException) -> None:
    if isinstance(exc, ConfigError):
        err.print(f"[red]error:[/red] {exc.args[0]}", markup=True, highlight=False)
    else:
        err.print(f"[red]error:[/red] {exc}", highlight=False)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``dlsuite`` console script; exits with the documented codes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    _attach_subcommands()
    try:
        cli.main(args=argv, prog_name="dlsuite", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DlsuiteInputError as exc:
        if State.debug:
            traceback.print_exc()
        _report(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, exit 1
        if State.debug:
            traceback.print_exc()
        else:
            err.print(f"[red]unexpected error:[/red] {type(exc).__name__}: {exc}\n"
                      "(run with --debug for the traceback; please report it)", highlight=False)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
