"""Built-in datagen plugins of dlsuite."""
