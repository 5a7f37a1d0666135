"""Built-in losses plugins of dlsuite."""
