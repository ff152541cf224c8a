"""Cold Diffusion's Algorithm 2 (its ``x0_step_down`` routine): step by the change of the degradation alone."""

from __future__ import annotations

from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("x0_step_down", needs="restoration", deterministic=lambda settings: True)
def x0_step_down(
    denoiser, levels: Sequence[float], initial: torch.Tensor, noise: NoiseSource, callback: Callback
) -> torch.Tensor:
    """u_{k_next} = u_k - A_k x0_hat + A_{k_next} x0_hat, x0_hat = x0_hat(u_k, k) (Bansal et al. 2022,
    Algorithm 2). An error e in x0_hat reaches u_{k_next} as (A_{k_next} - A_k) e, first order in the step for
    a smooth degradation, where Algorithm 1 passes A_{k_next} e on whole. Draws no noise. [B, C, H, W]."""
    u = initial
    for i, k, k_next in transitions(levels):
        x0_hat = denoiser.x0(u, k)
        u = u - denoiser.degrade(x0_hat, k) + denoiser.degrade(x0_hat, k_next)
        callback(i, u)
    return u
