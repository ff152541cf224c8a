"""Data: the registered datasets (a package, one module per family: images, 2D points) and training batches."""
