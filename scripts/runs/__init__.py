"""A run directory: its layout, saved config, checkpoints, and loading a trained model."""
