"""DDIM (Song et al. 2021, Eq. 12) with its noise scale eta, per basis coefficient (the gaussian process)."""

from __future__ import annotations

from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("ddim", needs="marginal", deterministic=lambda settings: settings.get("eta", 0.0) == 0)
def ddim(
    denoiser,
    levels: Sequence[float],
    initial: torch.Tensor,
    noise: NoiseSource,
    callback: Callback,
    eta: float = 0.0,
) -> torch.Tensor:
    """u_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z, c^2 = eta^2 sigma_{t->s}^2, per coefficient
    (``denoiser.ddim_step``); eta = 1 is the ancestral sampler, eta = 0 deterministic. For eta > 0, z = noise()
    is drawn at every step, as the ancestral sampler draws it (none at eta = 0); the last step returns x0_hat.
    [B, C, H, W]."""
    u = initial
    for i, k, k_next in transitions(levels):
        u = denoiser.ddim_step(u, k, k_next, eta, noise() if eta > 0 else None)
        callback(i, u)
    return u
