"""``python -m dlsuite.cli``: the ``dlsuite`` command."""

from dlsuite.cli import main

main()
