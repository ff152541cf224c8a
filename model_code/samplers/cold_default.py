"""Cold Diffusion's Algorithm 1 (its ``default`` routine): restore, then degrade to the next level."""

from __future__ import annotations

from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("cold_default", needs="restoration", deterministic=lambda settings: True)
def cold_default(
    denoiser, levels: Sequence[float], initial: torch.Tensor, noise: NoiseSource, callback: Callback
) -> torch.Tensor:
    """u_{k_next} = A_{k_next} x0_hat(u_k, k) (Bansal et al. 2022, Algorithm 1); at k_next = 0, x0_hat.
    Draws no noise. [B, C, H, W]."""
    u = initial
    for i, k, k_next in transitions(levels):
        u = denoiser.degrade(denoiser.x0(u, k), k_next)
        callback(i, u)
    return u
