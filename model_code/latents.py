"""Exact latents of images: the prior state u_K and the standard-normal noise of every reverse step.

A latent of x0 [B, C, H, W] is (prior [B, C, H, W], noise [B, S, C, H, W]) for the S = len(levels) reverse
steps k = K, ..., 1 (``process.sampling_levels()``). Entries 0..S-2 are the noise of steps K..2; entry S-1 is
the residual of the last step, x0 - reverse_step(u_1, 1), which has no noise of its own. Decoding runs the
model's own reverse process with this noise and adds the residual, so decode(encode(x0)) = x0 up to float
rounding. Encoding draws a trajectory of the forward process (``process.encoding_trajectory``: the gaussian
process's Markov chain, ihdm's marginals; its noise from the caller's generators, one per image) and solves
each reverse step for its noise (``reverse_step_noise``).

A process with a deterministic sampler (the gaussian process: DDIM with eta = 0) also has a deterministic
latent, u_K alone (``encode_deterministic``): the sampler run backwards from the image, then decoded forwards
(``decode_deterministic``); that round trip is exact only as the number of steps grows.
"""

from __future__ import annotations

from typing import List, Tuple

import torch

from model_code.priors import randn_per_generator

Latent = Tuple[torch.Tensor, torch.Tensor]


def forward_trajectory(process, x0: torch.Tensor, generators: List[torch.Generator]) -> List[torch.Tensor]:
    """States u_k [B, C, H, W] of ``process.encoding_trajectory`` at the levels of ``process.sampling_levels()``,
    in order, its standard normal draws from ``generators`` (one per image)."""
    draw_noise = lambda: randn_per_generator(generators, x0.shape[1:], x0.device)
    return process.encoding_trajectory(x0, process.sampling_levels(), draw_noise)


@torch.no_grad()
def encode(process, net: torch.nn.Module, x0: torch.Tensor, generators: List[torch.Generator]) -> Latent:
    """x0 [B, C, H, W] -> (u_K [B, C, H, W], noise [B, S, C, H, W]); see the module docstring."""
    states = forward_trajectory(process, x0, generators)
    levels = process.sampling_levels()
    targets = states[1:] + [x0]
    noise = []
    for k, u, u_prev in zip(levels[:-1], states[:-1], targets[:-1]):
        noise.append(process.reverse_step_noise(net, u, k, u_prev))
    noise.append(x0 - process.reverse_step(net, states[-1], levels[-1], torch.zeros_like(x0)))
    return states[0], torch.stack(noise, dim=1)


@torch.no_grad()
def decode(process, net: torch.nn.Module, latent: Latent) -> torch.Tensor:
    """(u_K [B, C, H, W], noise [B, S, C, H, W]) -> u_0 [B, C, H, W]: every reverse step with the latent's
    noise, then the residual: u_0 = reverse_step(u_1, 1) + noise[:, S-1]."""
    u, noise = latent
    levels = process.sampling_levels()
    for step, k in enumerate(levels[:-1]):
        u = process.reverse_step(net, u, k, noise[:, step])
    return process.reverse_step(net, u, levels[-1], torch.zeros_like(u)) + noise[:, -1]


@torch.no_grad()
def encode_deterministic(
    process, net: torch.nn.Module, x0: torch.Tensor, levels: List[int], refinements: int = 1
) -> torch.Tensor:
    """x0 [B, C, H, W] -> u_K [B, C, H, W]: the process's deterministic sampler run backwards through ``levels``
    (K first, as ``process.sampling_levels(steps)`` gives them), 0 -> levels[-1] -> ... -> levels[0] = K.

    Each step s -> t starts from the sampler's own backward step (DDIM inversion: the model evaluated at s)
    and makes ``refinements`` fixed-point corrections u_t <- u_t + (u_s - D(u_t)) towards the state that the
    decoding step D: t -> s maps to u_s, one network evaluation each. Decoding is approximate:
    ``decode_deterministic`` returns x0 up to an error that falls as the steps get smaller."""
    path = [0] + levels[::-1]
    u = x0
    for k, k_next in zip(path[:-1], path[1:]):
        state = process.deterministic_step(net, u, k, k_next)
        for _ in range(refinements):
            state = state + (u - process.deterministic_step(net, state, k_next, k))
        u = state
    return u


@torch.no_grad()
def decode_deterministic(process, net: torch.nn.Module, prior_state: torch.Tensor, levels: List[int]) -> torch.Tensor:
    """u_K [B, C, H, W] -> u_0 [B, C, H, W]: the deterministic sampler through ``levels`` (K first), then to 0."""
    u = prior_state
    for k, k_next in zip(levels, levels[1:] + [0]):
        u = process.deterministic_step(net, u, k, k_next)
    return u
