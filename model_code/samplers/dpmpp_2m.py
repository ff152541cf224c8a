"""DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): data prediction, multistep, second order, per coefficient.

With lambda = log(alpha / sigma) per basis coefficient, h_i = lambda_i - lambda_{i-1} and r_i = h_{i-1} / h_i,
the exponential integrator steps
    u_i = (sigma_i / sigma_{i-1}) u_{i-1} - alpha_i (exp(-h_i) - 1) D_i,
    D_i = (1 + 1 / (2 r_i)) x0_{i-1} - x0_{i-2} / (2 r_i)   (the first step: D_1 = x0_0),
x0_j the denoiser's estimate at level j; the last step returns x0 at the last level (1 network evaluation
per step).
"""

from __future__ import annotations

from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("dpmpp_2m", needs="marginal", deterministic=lambda settings: True)
def dpmpp_2m(
    denoiser, levels: Sequence[float], initial: torch.Tensor, noise: NoiseSource, callback: Callback
) -> torch.Tensor:
    """DPM-Solver++(2M) along ``levels`` (the module docstring), u [B, C, H, W] in pixels between steps."""
    u = initial
    previous = None  # (x0 estimate, h) of the step before
    for i, k, k_next in transitions(levels):
        denoised = denoiser.x0(u, k)
        if k_next == 0:
            u = denoiser.from_basis(denoised)
        else:
            alpha, sigma = denoiser.marginal(k, u)
            alpha_next, sigma_next = denoiser.marginal(k_next, u)
            h = torch.log(alpha_next / sigma_next) - torch.log(alpha / sigma)
            estimate = denoised
            if previous is not None:
                ratio = previous[1] / h
                estimate = (1 + 1 / (2 * ratio)) * denoised - previous[0] / (2 * ratio)
            coefficients = (sigma_next / sigma) * denoiser.to_basis(u) - alpha_next * torch.expm1(-h) * estimate
            previous = (denoised, h)
            u = denoiser.from_basis(coefficients)
        callback(i, u)
    return u
