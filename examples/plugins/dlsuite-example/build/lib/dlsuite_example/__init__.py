"""dlsuite-example: an example third-party plugin package for dlsuite."""
