"""Cold Diffusion's decolorisation: every pixel's colour blends towards its channel mean, level by level."""

from __future__ import annotations

import math

import torch

from model_code.operators.base import OPERATORS, ImageSize, Operator

DESATURATE_ROUTINES = ("linear", "constant")


def saturation_schedule(K: int, routine: str, desaturate_factor: float) -> torch.Tensor:
    """s_k for k = 0..K, float64 [K+1]: linear 1 - k/K, constant desaturate_factor^k."""
    k = torch.arange(K + 1, dtype=torch.float64)
    return 1 - k / K if routine == "linear" else desaturate_factor**k


@OPERATORS.register("desaturate")
class DesaturateOperator(Operator):
    """Cold Diffusion's decolorisation: A_k x = P x + s_k (I - P) x per pixel, x [B, C, H, W].

    P = (1/C) 1 1^T replaces each pixel's C channel values by their mean (Cold's decolor kernel: the
    'luminance' is the channel mean). ``desaturate_routine``: ``linear`` s_k = 1 - k/K (Cold's Linear,
    whose per-step factors multiply to exactly this; grey at K) or ``constant`` s_k = f^k,
    f = ``desaturate_factor`` (Cold's Constant with decolor_ema_factor). For C = 1, P = I and A_k = I
    at every level.

    A_k is diagonal in an orthonormal colour basis (1/sqrt(C) (1, .., 1) and a complement, per pixel)
    with spectrum (1, s_k, .., s_k) over the colour coefficients, but it is not a DiagonalOperator:
    ``spectrum(k)`` takes levels only and must be the same for every channel (the gaussian process's
    marginal is per pixel coefficient, [B, 1, H, W]), while this spectrum differs between channels
    and its length is the channel count, which an operator is not given. Integer levels; use it with
    the ihdm or cold process.
    """

    def __init__(self, *, image_size: ImageSize, K: int, desaturate_routine: str, desaturate_factor: float):
        super().__init__(image_size=image_size, K=K)
        if desaturate_routine not in DESATURATE_ROUTINES:
            raise ValueError(f"desaturate_routine={desaturate_routine!r}: one of {', '.join(DESATURATE_ROUTINES)}")
        if not (math.isfinite(desaturate_factor) and 0 < desaturate_factor <= 1):
            raise ValueError(f"desaturate_factor={desaturate_factor!r}: a number in (0, 1] (s_k = factor^k)")
        saturation = saturation_schedule(K, desaturate_routine, desaturate_factor)
        self.register_buffer("saturation", saturation.float(), persistent=False)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        grey = x.mean(dim=1, keepdim=True)
        return grey + self.saturation[k].to(x.dtype)[:, None, None, None] * (x - grey)
