"""Images held in memory as one uint8 tensor: what the embedded, downloaded and prepared datasets yield."""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Dataset


class TensorImages(Dataset):
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
