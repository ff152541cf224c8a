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
    alpha, sigma = denoiser.marginal(k)
    return coefficients / alpha, sigma / alpha, alpha


def _churned(denoiser, coefficients: torch.Tensor, k: float, gamma: float, noise: NoiseSource):
    """The state moved up from level k to the level whose s is (1 + gamma) s in the log-SNR schedule, by noise of
    variance s_hat^2 - s^2 per coefficient (in x = c / alpha): (c_hat [B, C, H, W] in the basis, its level)."""
    raised = min(denoiser.level_at_logsnr(denoiser.logsnr(k) - 2 * math.log1p(gamma)), float(denoiser.K))
    x, s, _ = _scaled(denoiser, coefficients, k)
    alpha_raised, sigma_raised = denoiser.marginal(raised)
    extra = ((sigma_raised / alpha_raised) ** 2 - s**2).clamp_min(0).sqrt()
    return alpha_raised * (x + extra * denoiser.to_basis(noise())), raised


@SAMPLERS.register("heun", needs="marginal", deterministic=True)
def heun(
    denoiser,
    levels: Sequence[float],
    initial: torch.Tensor,
    noise: NoiseSource,
    callback: Callback,
    churn: float = 0.0,
) -> torch.Tensor:
    """Heun steps between ``levels`` (the module docstring), u [B, C, H, W] in pixels between steps."""
    gamma = min(churn / len(levels), math.sqrt(2) - 1) if churn > 0 else 0.0
    coefficients = denoiser.to_basis(initial)
    for i, k, k_next in transitions(levels):
        if gamma > 0:
            coefficients, k = _churned(denoiser, coefficients, k, gamma, noise)
        x, s, _ = _scaled(denoiser, coefficients, k)
        denoised = denoiser.x0(coefficients, k)
        if k_next == 0:
            u = denoiser.from_basis(denoised)
            callback(i, u)
            return u
        slope = (x - denoised) / s
        _, s_next, alpha_next = _scaled(denoiser, coefficients, k_next)
        x_euler = x + (s_next - s) * slope
        slope_next = (x_euler - denoiser.x0(alpha_next * x_euler, k_next)) / s_next
        coefficients = alpha_next * (x + (s_next - s) * (slope + slope_next) / 2)
        callback(i, denoiser.from_basis(coefficients))
    raise AssertionError("unreachable: the last transition goes to level 0")
