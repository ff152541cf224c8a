"""A registered dataset presented to the processes: ``ImageData`` for kind 'image', ``PointData`` for 'points'.

``ImageData`` turns a uint8 batch into floats in the process's range (with optional random flips and
uniform dequantisation); both fetch items by index for the kernel-density prior.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.utils.data import Dataset

from model_code.randomness import RandomSource, as_randomness
from scripts.data.datasets.base import DATA_KINDS


class Data:
    """A registered dataset presented to the processes: ``prepare`` (training batches), ``fetch`` (the prior's
    view), ``raw_batch`` (items stacked, as stored). ``kind`` is the dataset's registered kind."""

    kind: str

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def labels(self) -> Optional[torch.Tensor]:
        """The items' class labels, int64 [N], where the dataset has them (else None)."""
        return getattr(self.dataset, "labels", None)

    def class_labels(self, num_classes: int) -> Optional[torch.Tensor]:
        """The labels a model with ``num_classes`` classes trains on: None for an unconditional model (0); one
        line refusing a conditional model on a dataset without labels, or labels outside 0..num_classes-1."""
        if num_classes == 0:
            return None
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        if self.labels is None:
            raise ValueError(
                f"model.num_classes={num_classes}: dataset {name!r} has no class labels; allowed: "
                "model.num_classes=0 (unconditional), or a dataset with labels (mnist5k, mnist, cifar10, a prepared "
                "zip of one, gaussian_mixture)"
            )
        largest = int(self.labels.max()) if len(self.labels) else -1
        if int(self.labels.min()) < 0 or largest >= num_classes:
            raise ValueError(
                f"model.num_classes={num_classes}: dataset {name!r} has labels {int(self.labels.min())}..{largest}; "
                f"allowed: model.num_classes >= {largest + 1} with labels >= 0"
            )
        return self.labels

    def labels_of(self, indices, num_classes: int) -> Optional[torch.Tensor]:
        """The labels int64 [n] of the items at ``indices`` for a model of ``num_classes`` classes (None when it
        is unconditional; refused as ``class_labels`` says)."""
        labels = self.class_labels(num_classes)
        return None if labels is None else labels[torch.as_tensor(list(indices), dtype=torch.int64)]

    def raw_batch(self, indices) -> torch.Tensor:
        """The items at ``indices`` (a sequence or [n] tensor of ints) stacked as stored: [n, *item shape]."""
        return torch.stack([self.dataset[int(i)] for i in indices])


class ImageData(Data):
    """A dataset of uint8 images plus the map into the process's data range.

    ``prepare`` turns a uint8 batch [B, C, H, W] into floats in ``data_range``: optional random
    horizontal flips, optional uniform dequantisation ((255 x + u) / 256, u ~ U[0, 1)), then the
    affine map from [0, 1]. Randomness comes from the caller's generator, so training resumes exactly.
    """

    kind = "image"

    def __init__(
        self, dataset: Dataset, *, data_range: Tuple[float, float], random_flip: bool, uniform_dequantization: bool
    ):
        super().__init__(dataset)
        self.low, self.high = data_range
        self.random_flip = random_flip
        self.uniform_dequantization = uniform_dequantization

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * x

    def prepare(self, batch: torch.Tensor, randomness: RandomSource = None, *, augment: bool = True) -> torch.Tensor:
        """uint8 images [B, C, H, W] -> floats in the data range, flipped and dequantised as configured."""
        x = batch.float()
        draw = as_randomness(randomness, x.device)
        if augment and self.random_flip:
            flip = draw.rand((x.shape[0],)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.uniform_dequantization:
            x = (x + draw.rand(x.shape)) / 256.0
        else:
            x = x / 255.0
        return self.from_unit(x)

    def fetch(self, indices: torch.Tensor) -> torch.Tensor:
        """Images at ``indices`` [n] as floats in the data range, no augmentation or dequantisation: [n, C, H, W]."""
        return self.from_unit(self.raw_batch(indices).float() / 255.0)


class PointData(Data):
    """2D points [B, 2] presented as [B, 2, 1, 1] so every process and sampler treats them as tiny images.

    Points are continuous already: flips and dequantisation do not apply to them."""

    kind = "points"

    def prepare(self, batch: torch.Tensor, randomness: RandomSource = None, *, augment: bool = True) -> torch.Tensor:
        return batch.float()[:, :, None, None]

    def fetch(self, indices: torch.Tensor) -> torch.Tensor:
        return self.prepare(self.raw_batch(indices))


def wrap_dataset(
    dataset: Dataset, *, kind: str, data_range: Tuple[float, float], random_flip: bool, uniform_dequantization: bool
) -> Data:
    """ImageData for a dataset of kind 'image', PointData for kind 'points'."""
    if kind == "points":
        return PointData(dataset)
    if kind != "image":
        raise ValueError(f"unknown data kind {kind!r}; allowed: {', '.join(DATA_KINDS)}")
    return ImageData(
        dataset, data_range=data_range, random_flip=random_flip, uniform_dequantization=uniform_dequantization
    )
