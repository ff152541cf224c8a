"""The dataset registry and what its entries share: splits, kinds, fingerprints, in-memory images, resizing.

Every entry is a constructor ``(*, split, image_size, num_channels, root) -> Dataset`` registered with its
``kind`` (``DATASETS.register(name, kind=...)``): 'image' datasets yield uint8 [C, H, W] items at the
configured size, 'points' datasets float [D] items. An entry may also register a ``fingerprint(*, split,
root) -> str``, the name of a split's content, found without loading it (``split_fingerprint``). What an entry
builds derives from ``Registered``: its ``name`` is the registry name it was built under.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from model_code.registry import Registered, Registry
from scripts.cli.errors import DatasetUnavailable

DATASETS = Registry("dataset", package="scripts.data.datasets")

SPLITS = ("train", "test")
DATA_KINDS = ("image", "points")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")


def dataset_kind(name: str) -> str:
    """'image' (uint8 [C, H, W] items) or 'points' (float [D] items), as the dataset is registered."""
    return DATASETS.metadata(name)["kind"]


def split_fingerprint(name: str, *, split: str, root: str) -> Optional[str]:
    """What names the content of dataset ``name``'s ``split`` under ``root``, found without loading its images.

    A dataset whose registry entry declares a ``fingerprint`` answers with it: a prepared zip, the SHA-256 its
    manifest records. The others (embedded, downloaded, image folders and zips, 2D points) carry none and
    answer None: their FID reference statistics are named by the dataset alone. The images are not read, so
    cached or published statistics are found without loading, or downloading, the dataset.
    """
    fingerprint = DATASETS.metadata(name).get("fingerprint")
    return None if fingerprint is None else fingerprint(split=split, root=root)


class TensorImages(Registered, Dataset):
    """Images held in memory as one uint8 tensor [N, C, H, W] (``items``: training keeps it on the device),
    with their class labels [N] (int64) where the source has them (the dataset tool records them)."""

    def __init__(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None):
        self.images = images
        self.labels = labels

    @property
    def items(self) -> torch.Tensor:
        return self.images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def split_root(root: str, split: str) -> str:
    """Where a file-based dataset's ``split`` lives: ``root`` for 'train'; for another split ``<root>/<split>``
    or ``<stem>_<split>.zip`` beside a zip where that exists, else ``root`` itself (no held-out files)."""
    if split == "train":
        return root
    candidates = [os.path.join(root, split), f"{os.path.splitext(root)[0]}_{split}.zip"]
    return next((c for c in candidates if os.path.exists(c)), root)


def resize_uint8(images: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 [N, C, H, W] to ``size`` (no-op at the same size)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    resized = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def check_channels(name: str, num_channels: int, allowed: Sequence[int]) -> None:
    if num_channels not in allowed:
        raise ValueError(f"data.num_channels={num_channels} does not fit dataset {name!r}; allowed: {list(allowed)}")


def torchvision_dataset(name: str, constructor: str, root: str, split: str, num_channels: int):
    """torchvision's ``constructor`` dataset (e.g. 'MNIST') of ``split``, downloaded into ``root`` if missing;
    offline and missing, one DatasetUnavailable naming the folder to fill and the embedded alternative."""
    from scripts.runtime.compat import import_torchvision

    datasets = import_torchvision().datasets
    try:
        return getattr(datasets, constructor)(root=root, train=split == "train", download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
        # the embedded digits have one channel: the hint switches the channel count too where needed
        digits = "--config.data.dataset=mnist5k" + ("" if num_channels == 1 else " --config.data.num_channels=1")
        raise DatasetUnavailable(
            f"{name} is not in {root} and could not be downloaded ({type(error).__name__}); "
            f"put the {name} files in {root}, or use the embedded digits with {digits}"
        ) from None
