"""Image grids, PNGs and GIFs from tensors in [0, 1]."""
from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image


def to_unit(x: torch.Tensor, data_range: Tuple[float, float]) -> torch.Tensor:
    """Map x from data_range = (low, high) to [0, 1] and clip, for display."""
    low, high = data_range
    return ((x - low) / (high - low)).clamp(0, 1)


def make_grid(images: torch.Tensor, nrow: Optional[int] = None, padding: int = 2) -> np.ndarray:
    """Tile images [N, C, H, W] in [0, 1] into a uint8 array [rows*(H+p)+p, nrow*(W+p)+p, 3]."""
    images = images.detach().float().clamp(0, 1).cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    count, _, height, width = images.shape
    nrow = nrow or math.ceil(math.sqrt(count))
    rows = math.ceil(count / nrow)
    grid = torch.ones(3, rows * (height + padding) + padding, nrow * (width + padding) + padding)
    for index in range(count):
        row, col = divmod(index, nrow)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[:, top : top + height, left : left + width] = images[index]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_png(path: str, images: torch.Tensor, nrow: Optional[int] = None) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(make_grid(images, nrow)).save(path)
    return path


def save_gif(path: str, frames: Sequence[torch.Tensor], nrow: Optional[int] = None, duration_ms: int = 60, max_frames: int = 100) -> str:
    """Animate a sequence of batches [N, C, H, W] in [0, 1], keeping at most ``max_frames`` (always the last)."""
    frames = list(frames)
    keep = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    pictures: List[Image.Image] = [Image.fromarray(make_grid(frames[i], nrow)) for i in keep]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    durations = [duration_ms] * (len(pictures) - 1) + [1500]  # linger on the final samples
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return path
