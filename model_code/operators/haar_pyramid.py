"""hflow's levels: the image at each resolution of its Haar pyramid, shown at full size, and nothing at level K."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from model_code import haar
from model_code.operators.base import OPERATORS, ImageSize, SeparableOperator
from model_code.operators.pixelate import block_average_matrix


@OPERATORS.register("haar_pyramid")
class HaarPyramidOperator(SeparableOperator):
    """Levels k = 0..K-1 are the resolutions of the pyramid (``hflow_resolutions``, the image height first, each
    the one before halved one or more times: 28, 14, 7), K = len(resolutions) (``K`` must say so):
    A_k average-pools to resolution k
    and repeats each pixel back to (H, W), f_k = H / resolutions[k] (``pixelate``'s projection, and the Haar
    coarse image x_k = f_k x the block mean); A_K = 0: nothing of the image is left at level K. Integer
    levels. ``level_image(u, k)`` and ``show(x_k, k)`` move between a state and the pyramid's image x_k.
    """

    def __init__(self, *, image_size: ImageSize, K: int, hflow_resolutions: Sequence[int]):
        super().__init__(image_size=image_size, K=K)
        height, width = self.height, self.width
        self.sizes = haar.pyramid_sizes(height, width, tuple(hflow_resolutions))
        if K != len(self.sizes):
            raise ValueError(f"K={K}: haar_pyramid has one level per resolution; allowed: {len(self.sizes)}")
        self.factors = [height // h for h, _ in self.sizes]
        left = torch.stack([block_average_matrix(height, f) for f in self.factors] + [torch.zeros(height, height)])
        right = torch.stack([block_average_matrix(width, f) for f in self.factors] + [torch.zeros(width, width)])
        self.register_levels(left, right, persistent=False)

    def level_image(self, u: torch.Tensor, k: int) -> torch.Tensor:
        """x_k = f_k avg_pool_{f_k}(u) [B, C, h_k, w_k] of a state u [B, C, H, W] at level k < K."""
        factor = self.factors[k]
        return F.avg_pool2d(u, factor) * factor if factor > 1 else u

    def show(self, image: torch.Tensor, k: int) -> torch.Tensor:
        """The state u_k [B, C, H, W] of the pyramid's image x_k [B, C, h_k, w_k]: x_k / f_k, each pixel repeated."""
        factor = self.factors[k]
        if factor == 1:
            return image
        return (image / factor).repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
