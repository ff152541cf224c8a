"""Datasets: images (embedded, torchvision, folders and zips) and 2D point sets."""
