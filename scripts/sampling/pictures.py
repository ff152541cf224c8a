"""The pictures of drawn samples that sample.py and the trainer write: image grids, or scatter plots for 2D points.

A scatter plot shows the samples over a fixed background of the data, ``scatter_reference``: its first
``REFERENCE_POINTS`` points. The trainer takes them from the training set it holds; sample.py from the test split
(generated in milliseconds for the 2D sets), so that drawing samples never builds the training set.

A request of many samples is pictured by its first ones (``pictured_count``): the first PICTURED_IMAGES images
in the grids and the GIF, or the first PICTURED_POINTS points in the scatter plots.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from scripts.data.datasets import Data
from scripts.sampling.imaging import save_gif, save_npz, save_png, save_scatter, save_scatter_gif, to_unit

REFERENCE_POINTS = 2000
PICTURED_IMAGES = 100  # a 10 x 10 grid
PICTURED_POINTS = 10000


def pictured_count(count: int, points: bool) -> int:
    """How many of ``count`` samples the pictures show: the first PICTURED_POINTS of 2D points (``points``), the
    first PICTURED_IMAGES of images."""
    return min(count, PICTURED_POINTS if points else PICTURED_IMAGES)


def scatter_reference(data: Data) -> torch.Tensor:
    """The background of a scatter plot: the first REFERENCE_POINTS points of 2D ``data`` (fewer if it has fewer),
    [M, 2]."""
    return data.fetch(torch.arange(min(REFERENCE_POINTS, len(data)))).flatten(1)


def write_sample_pictures(
    folder: str,
    out: Dict[str, torch.Tensor],
    mode: str,
    data_range: Tuple[float, float],
    reference: Optional[torch.Tensor],
    row_length: Optional[int] = None,
) -> List[str]:
    """samples.png, initial.png and process.gif in ``folder`` of the sampler's ``out`` (samples and initial
    [N, C, H, W], trajectory a list of [N, C, H, W]); returns their paths.

    ``reference`` (points [M, 2], for 2D data) makes them scatter plots over it; None, image grids, one row per
    interpolation, or of ``row_length`` images (a grid of classes: one row per class).
    """
    path = lambda name: os.path.join(folder, name)
    if reference is not None:
        points = lambda x: x.flatten(1)  # [N, 2, 1, 1] -> [N, 2]
        return [
            save_scatter(path("samples.png"), points(out["samples"]), reference, f"{mode} samples"),
            save_scatter(path("initial.png"), points(out["initial"]), reference, "initial states u_K"),
            save_scatter_gif(path("process.gif"), [points(u) for u in out["trajectory"]], reference),
        ]
    nrow = len(out["samples"]) if mode.startswith("interpolate") else row_length
    unit = lambda x: to_unit(x, data_range)
    return [
        save_png(path("samples.png"), unit(out["samples"]), nrow),
        save_png(path("initial.png"), unit(out["initial"]), nrow),
        save_gif(path("process.gif"), [unit(u) for u in out["trajectory"]], nrow),
    ]


def save_arrays(folder: str, data_range: Tuple[float, float], **arrays: torch.Tensor) -> str:
    """folder/samples.npz (written atomically): each tensor of ``arrays`` as a numpy array, with the data range;
    returns its path."""
    numpy_arrays = {name: x.cpu().numpy() for name, x in arrays.items()}
    return save_npz(os.path.join(folder, "samples.npz"), **numpy_arrays, data_range=np.array(data_range))
