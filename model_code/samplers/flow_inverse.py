"""A flow's inverse, level by level, with the latents drawn at a temperature (hflow's sample std)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from model_code.samplers.base import SAMPLERS, Callback, NoiseSource, transitions


@SAMPLERS.register("flow_inverse", needs="flow", deterministic=lambda settings: False)
def flow_inverse(
    denoiser,
    levels: Sequence[float],
    initial: torch.Tensor,
    noise: NoiseSource,
    callback: Callback,
    temperature: float = 1.0,
    level_temperatures: Optional[Sequence[float]] = None,
) -> torch.Tensor:
    """u_{k-1} = denoiser.ancestral_step(u_k, k, k-1, T_k z), z = noise(): every level's latent drawn at
    temperature T_k = ``level_temperatures[k-1]`` (one per level, the finest first) or ``temperature`` (hflow
    recommends 0.5-0.9; 1 is the trained model). [B, C, H, W]."""
    u = initial
    for i, k, k_next in transitions(levels):
        scale = temperature if level_temperatures is None else level_temperatures[int(k) - 1]
        u = denoiser.ancestral_step(u, k, k_next, scale * noise())
        callback(i, u)
    return u
