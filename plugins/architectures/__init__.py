"""Built-in architectures plugins of dlsuite."""
