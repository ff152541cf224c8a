"""Blurring diffusion's dissipation: the heat kernel with a floor d_min on every frequency, real levels allowed."""

from __future__ import annotations

import math

import torch

from model_code.operators.base import OPERATORS, DCTOperator, ImageSize


@OPERATORS.register("blur")
class BlurOperator(DCTOperator):
    """Blurring-diffusion dissipation: d_t = (1 - d_min) exp(-lambda tau_t) + d_min.

    sigma_B(t) = blurring_sigma_max sin^2(pi t / 2), tau_t = sigma_B(t)^2 / 2, t = k / K (real levels
    allowed). The floor d_min keeps every frequency invertible. blurring_sigma_max = 0 gives A_k = I.
    """

    continuous = True

    def __init__(self, *, image_size: ImageSize, K: int, blurring_sigma_max: float, min_scale: float = 0.001):
        super().__init__(image_size=image_size, K=K)
        if blurring_sigma_max < 0:
            raise ValueError(f"blurring_sigma_max must be >= 0, got {blurring_sigma_max}")
        if not 0 <= min_scale < 1:
            raise ValueError(f"min_scale (d_min) must lie in [0, 1), got {min_scale}")
        self.blurring_sigma_max = float(blurring_sigma_max)
        self.min_scale = float(min_scale)

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        t = self.fraction(self.check_levels(k))
        tau = (self.blurring_sigma_max * torch.sin(math.pi * t / 2) ** 2) ** 2 / 2  # [B]
        decay = torch.exp(-tau[:, None, None] * self.frequencies_squared())
        return ((1 - self.min_scale) * decay + self.min_scale)[:, None]
