"""CIFAR-10 (``cifar10``): torchvision's 32x32 RGB images, downloaded into the root when online."""

from __future__ import annotations

from typing import Tuple

import torch
from torch.utils.data import Dataset

from scripts.data.datasets.base import DATASETS, TensorImages, check_channels, resize_uint8, torchvision_dataset


@DATASETS.register("cifar10", kind="image")
def cifar10(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """torchvision CIFAR-10 (50000 train / 10000 test), downloaded into root when online."""
    check_channels("cifar10", num_channels, allowed=(3,))
    data = torchvision_dataset("CIFAR-10", "CIFAR10", root, split, num_channels)
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return TensorImages(resize_uint8(images, image_size), torch.as_tensor(data.targets))
