"""Built-in postprocess plugins of dlsuite."""
