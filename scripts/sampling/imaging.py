"""Image grids, PNGs and GIFs from tensors in [0, 1], and sample arrays as npz.

Every file is written to a temporary beside it and renamed into place (``write_atomic_with``): a full disk or
a killed process never leaves a truncated picture, and the one-line error names the file.
"""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from scripts.storage.files import write_atomic_with


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


def evenly_spaced_frames(count: int, max_frames: int) -> List[int]:
    """Indices of at most ``max_frames`` of ``count`` frames, evenly spaced and sorted, the first and the last
    always among them (for max_frames >= 2): ``round(linspace(0, count - 1, min(max_frames, count)))``."""
    return np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int)).tolist()


def save_png(path: str, images: torch.Tensor, nrow: Optional[int] = None) -> str:
    """A grid of images [N, C, H, W] in [0, 1] (``make_grid``) as a PNG; returns ``path``."""
    picture = Image.fromarray(make_grid(images, nrow))
    write_atomic_with(path, lambda handle: picture.save(handle, format="PNG"))
    return path


def save_npz(path: str, **arrays: np.ndarray) -> str:
    """``np.savez_compressed`` of ``arrays``, written atomically; returns ``path``."""
    write_atomic_with(path, lambda handle: np.savez_compressed(handle, **arrays))
    return path


def save_animation(path: str, pictures: List[Image.Image], durations: List[int]) -> str:
    """Pictures as a looping GIF, each shown for its duration in ms, written atomically; returns ``path``."""
    write_atomic_with(
        path,
        lambda handle: pictures[0].save(
            handle, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0
        ),
    )
    return path


def save_gif(
    path: str, frames: Sequence[torch.Tensor], nrow: Optional[int] = None, duration_ms: int = 60, max_frames: int = 100
) -> str:
    """Animate a sequence of batches [N, C, H, W] in [0, 1], keeping at most ``max_frames`` (always the last)."""
    pictures = [Image.fromarray(make_grid(frames[i], nrow)) for i in evenly_spaced_frames(len(frames), max_frames)]
    return save_animation(path, pictures, [duration_ms] * (len(pictures) - 1) + [1500])  # linger on the last


def save_mp4(path: str, frames: Sequence[torch.Tensor], fps: float, nrow: Optional[int] = None) -> str:
    """An H.264 MP4 of a sequence of batches [N, C, H, W] in [0, 1], one grid per frame at ``fps`` frames per
    second, through the ffmpeg that imageio-ffmpeg ships; the grid is padded to even sides (yuv420p needs them)
    and written to a temporary file renamed into place."""
    import imageio_ffmpeg

    pictures = [make_grid(frame, nrow) for frame in frames]
    height, width = pictures[0].shape[:2]
    padded = [np.pad(p, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge") for p in pictures]
    temporary = f"{path}.tmp.mp4"
    writer = imageio_ffmpeg.write_frames(
        temporary,
        (width + width % 2, height + height % 2),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for picture in padded:
        writer.send(np.ascontiguousarray(picture))
    writer.close()
    os.replace(temporary, path)
    return path


def _scatter_image(points: torch.Tensor, reference: Optional[torch.Tensor], title: str, extent: float) -> Image.Image:
    """Render points [N, 2] (orange) over reference points [M, 2] (grey) to a PIL image."""
    import io
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 4))
    if reference is not None:
        axis.scatter(reference[:, 0].cpu(), reference[:, 1].cpu(), s=2, c="0.7", label="data")
    axis.scatter(points[:, 0].cpu(), points[:, 1].cpu(), s=3, c="tab:orange", label="samples")
    axis.set_xlim(-extent, extent)
    axis.set_ylim(-extent, extent)
    axis.set_aspect("equal")
    axis.set_title(title, fontsize=9)
    axis.legend(loc="upper right", fontsize=7, markerscale=3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_scatter(
    path: str, points: torch.Tensor, reference: Optional[torch.Tensor] = None, title: str = "", extent: float = 3.5
) -> str:
    """Scatter plot of 2D samples [N, 2] over the data [M, 2] as a PNG."""
    picture = _scatter_image(points, reference, title, extent)
    write_atomic_with(path, lambda handle: picture.save(handle, format="PNG"))
    return path


def save_scatter_gif(
    path: str,
    frames: Sequence[torch.Tensor],
    reference: Optional[torch.Tensor] = None,
    max_frames: int = 25,
    extent: float = 3.5,
) -> str:
    """Animate 2D points [N, 2] along the reverse process (at most ``max_frames``, always the last)."""
    keep = evenly_spaced_frames(len(frames), max_frames)
    pictures = [_scatter_image(frames[i], reference, f"frame {i} of {len(frames) - 1}", extent) for i in keep]
    return save_animation(path, pictures, [120] * (len(pictures) - 1) + [1500])
