"""The ``dlsuite`` command line (click + rich). Every command parses its arguments, calls one
:mod:`dlsuite.api` function and prints the result; one module per command family.

Exit codes: 0 ok, 2 bad input (config errors, missing files, unknown plugins, usage errors,
an output location that is read-only, full or not permitted),
1 unexpected failure (one raised in a third-party plugin's code is reported as that
plugin's error: plugin, distribution, version, where to report it; a ValueError of a
plugin factory is bad input, 2), 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM. Bad input never
prints a traceback; ``--debug`` shows one. ``--help``, ``plugins`` and ``config ...`` never
import TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback
from typing import NoReturn

import click

from dlsuite import __version__
from dlsuite.errors import LOCATION_ERRNOS, ConfigError, DlsuiteInputError, os_error_head
from dlsuite.signal_handlers import Terminated, install, signal_behind

from ._output import err, say

__all__ = ["cli", "main", "load_commands", "SUBCOMMANDS", "EXIT_OK", "EXIT_UNEXPECTED",
           "EXIT_BAD_INPUT", "EXIT_SIGINT", "EXIT_SIGTERM"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM

# Commands defined in their own modules, attached to the group at start-up
# (module, attribute). None of these modules imports TensorFlow at import time.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("dlsuite.cli.config", "config_group"),
    ("dlsuite.cli.plugins", "plugins_command"),
    ("dlsuite.cli.model", "model_group"),
    ("dlsuite.cli.scaffold", "new_plugin_command"),
    ("dlsuite.cli.data", "example_data"),
    ("dlsuite.cli.data", "prepare"),
    ("dlsuite.cli.evaluate", "evaluate"),
    ("dlsuite.cli.run", "train"),
    ("dlsuite.cli.run", "run"),
    ("dlsuite.cli.track", "track"),
    ("dlsuite.cli.predict", "predict"),
    ("dlsuite.cli.tune", "tune"),
    ("dlsuite.cli.compare", "test"),
    ("dlsuite.cli.compare", "compare"),
    ("dlsuite.cli.compare", "sweep"),
    ("dlsuite.cli.export", "export"),
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


def load_commands() -> click.Group:
    """Attach the built-in commands of :data:`SUBCOMMANDS` and those plugins add (hook
    ``dlsuite_add_commands``) to the ``dlsuite`` group; returns the group. No TensorFlow."""
    for module_name, attr in SUBCOMMANDS:
        module = importlib.import_module(module_name)
        cli.add_command(getattr(module, attr))
    try:
        from dlsuite import api

        api.plugins().call_event("dlsuite_add_commands", cli=cli)
    except Exception as exc:  # noqa: BLE001 - a plugin must not break the CLI
        say(err, (f"warning: a plugin failed to add commands: {exc}", "yellow"))
    return cli


def _on_sigterm(signum, frame) -> NoReturn:
    raise Terminated


def _report(exc: BaseException) -> None:
    say(err, ("error:", "red"), f" {exc.args[0] if isinstance(exc, ConfigError) else exc}",
        highlight=False)


def _exit_code(argv: list[str] | None) -> int:
    """Run the command line ``argv``; the documented exit code of every outcome."""
    try:
        # non-standalone: click returns the code of an ``Exit`` (or the command's return
        # value) instead of exiting, and raises the other exceptions to us
        code = cli.main(args=argv, prog_name="dlsuite", standalone_mode=False)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt
        err.print("interrupted")
        return EXIT_SIGINT
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DlsuiteInputError as exc:
        if State.debug:
            traceback.print_exc()
        _report(exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_SIGINT
    except Terminated:
        err.print("terminated")
        return EXIT_SIGTERM
    except OSError as exc:
        if exc.errno not in LOCATION_ERRNOS:
            return _unexpected(exc)
        if State.debug:
            traceback.print_exc()
        say(err, ("error:", "red"), f" {os_error_head(exc)} (check the permissions "
            "and free space of that location)", highlight=False)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - last resort: one line, exit 1
        stop = signal_behind(exc)
        if stop is not None:
            err.print("interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated")
            return EXIT_SIGINT if isinstance(stop, KeyboardInterrupt) else EXIT_SIGTERM
        return _unexpected(exc)
    return code if isinstance(code, int) and not isinstance(code, bool) else EXIT_OK


def _unexpected(exc: BaseException) -> int:
    from dlsuite import api

    failure = api.plugin_failure(exc)  # raised in a third-party plugin's code: its error
    if State.debug:
        traceback.print_exc()
    if failure is not None:
        say(err, ("error:", "red"), f" {failure}", highlight=False)
        return failure.exit_code
    if not State.debug:
        say(err, ("unexpected error:", "red"), f" {type(exc).__name__}: {exc}\n"
            "(run with --debug for the traceback; please report it)", highlight=False)
    return EXIT_UNEXPECTED


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``dlsuite`` console script: runs ``argv`` (default: the process
    arguments) and exits with the documented code (0 ok, 1 unexpected, 2 bad input, 130
    SIGINT, 143 SIGTERM) on every path."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if threading.current_thread() is threading.main_thread():
        install(signal.SIGTERM, _on_sigterm)
    load_commands()
    sys.exit(_exit_code(argv))
