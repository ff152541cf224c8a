"""Ancestral sampling: the process's own reverse step at every level, fresh noise each step (every process)."""

from __future__ import annotations

from typing import Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("ancestral", needs="ancestral", deterministic=lambda settings: False)
def ancestral(
    denoiser, levels: Sequence[float], initial: torch.Tensor, noise: NoiseSource, callback: Callback
) -> torch.Tensor:
    """u_{k_next} = denoiser.ancestral_step(u_k, k, k_next, z), z = noise() drawn at every step (so step i uses
    the i-th draw of each image's stream); the last step returns the data estimate. [B, C, H, W]."""
    u = initial
    for i, k, k_next in transitions(levels):
        u = denoiser.ancestral_step(u, k, k_next, noise())
        callback(i, u)
    return u
