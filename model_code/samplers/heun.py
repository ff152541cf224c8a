"""Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithms 1 and 2).

Per basis coefficient, u = alpha x + sigma eps is rescaled to x = u / alpha with noise level s = sigma / alpha
(each coefficient its own alpha for blurring diffusion), where the ODE reads dx/ds = (x - D(x; s)) / s with
D the denoiser's x0_hat. A step from level k (noise levels s) to k_next (s'):
    d = (x - D(x, k)) / s,   x' = x + (s' - s) d,   x_next = x + (s' - s) (d + (x' - D(x', k_next)) / s') / 2;
the last step returns D at the last level (2 network evaluations per step, 1 for the last). With ``churn``
(S_churn of Algorithm 2) > 0 each step first raises the noise by gamma = min(churn / S, sqrt(2) - 1), adding
noise of variance s_hat^2 - s^2 per coefficient, s_hat = (1 + gamma) s of the log-SNR schedule.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


def _scaled(denoiser, coefficients: torch.Tensor, k: float):
    """(x = c / alpha, s = sigma / alpha, alpha) per coefficient at level k; c [B, C, H, W] in the basis."""
    alpha, sigma = denoiser.marginal(k, coefficients)
    return coefficients / alpha, sigma / alpha, alpha


def _churned(denoiser, u: torch.Tensor, k: float, gamma: float, noise: NoiseSource):
    """u [B, C, H, W] moved up from level k to the level whose s is (1 + gamma) s in the log-SNR schedule, by
    noise of variance s_hat^2 - s^2 per coefficient (in x = c / alpha): (u_hat in pixels, its level)."""
    raised = min(denoiser.level_at_logsnr(denoiser.logsnr(k) - 2 * math.log1p(gamma)), float(denoiser.K))
    x, s, _ = _scaled(denoiser, denoiser.to_basis(u), k)
    _, s_raised, alpha_raised = _scaled(denoiser, x, raised)
    extra = (s_raised**2 - s**2).clamp_min(0).sqrt()
    return denoiser.from_basis(alpha_raised * (x + extra * denoiser.to_basis(noise()))), raised


@SAMPLERS.register("heun", needs="marginal", deterministic=lambda settings: not settings.get("churn"))
def heun(
    denoiser,
    levels: Sequence[float],
    initial: torch.Tensor,
    noise: NoiseSource,
    callback: Callback,
    churn: float = 0.0,
) -> torch.Tensor:
    """Heun steps along ``levels`` (the module docstring), u [B, C, H, W] in pixels between steps."""
    gamma = min(churn / (len(levels) - 1), math.sqrt(2) - 1) if churn > 0 else 0.0
    u = initial
    for i, k, k_next in transitions(levels):
        if gamma > 0:
            u, k = _churned(denoiser, u, k, gamma, noise)
        denoised = denoiser.x0(u, k)
        if k_next == 0:
            u = denoiser.from_basis(denoised)
        else:
            x, s, _ = _scaled(denoiser, denoiser.to_basis(u), k)
            slope = (x - denoised) / s
            _, s_next, alpha_next = _scaled(denoiser, x, k_next)
            x_euler = x + (s_next - s) * slope
            slope_next = (x_euler - denoiser.x0(denoiser.from_basis(alpha_next * x_euler), k_next)) / s_next
            u = denoiser.from_basis(alpha_next * (x + (s_next - s) * (slope + slope_next) / 2))
        callback(i, u)
    return u
