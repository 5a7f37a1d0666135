"""Built-in plugins of dlsuite, registered through the ``dlsuite`` entry-point group."""
