"""A run directory: its layout, saved config, atomic files, checkpoints, and loading a trained model."""
