"""Exact latents of images: the prior state u_K and the standard-normal noise of every reverse step.

A latent of x0 [B, C, H, W] is (prior [B, C, H, W], noise [B, S, C, H, W]) for the S = len(levels) reverse
steps k = K, ..., 1 (``process.sampling_levels()``). Entries 0..S-2 are the noise of steps K..2; entry S-1 is
the residual of the last step, x0 - ancestral_step(u_1, 1 -> 0), which has no noise of its own. Decoding runs the
model's own reverse process with this noise and adds the residual, so decode(encode(x0)) = x0 up to float
rounding. A denoiser whose last step draws noise (``Denoiser.final_noise``: hflow's finest detail) has that
step's noise in entry S-1 instead, and no residual: its steps are exactly invertible. Encoding draws a
trajectory of the forward process (``process.encoding_trajectory``: the gaussian process's Markov chain, ihdm's
marginals; its noise from the caller's generators, one per image) and solves each ancestral step of the
process's denoiser for its noise (``Denoiser.ancestral_step_noise``).

A process that a deterministic sampler can run (the gaussian process: DDIM with eta = 0, Heun, DPM-Solver++)
also has a deterministic latent, u_K alone (``encode_deterministic``): the sampler run backwards from the
image, then decoded forwards (``decode_deterministic``); that round trip is exact only as the steps shrink.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Sequence, Tuple

import torch

from model_code.randomness import PerRowNormals

Latent = Tuple[torch.Tensor, torch.Tensor]


def forward_trajectory(process, x0: torch.Tensor, generators: List[torch.Generator]) -> List[torch.Tensor]:
    """States u_k [B, C, H, W] of ``process.encoding_trajectory`` at the levels of ``process.sampling_levels()``,
    in order, its standard normal draws from ``generators`` (one per image)."""
    levels = process.sampling_levels()
    return process.encoding_trajectory(x0, levels, PerRowNormals(generators, x0.shape[1:], x0.device, len(levels)))


def ancestral_denoiser(process, net: torch.nn.Module):
    """The process's denoiser, which must have an ancestral step (exact latents hold that step's noise); else
    one line naming the deterministic latents instead."""
    denoiser = process.denoiser(net)
    if "ancestral" not in denoiser.provides:
        raise ValueError(
            f"the {process.name!r} process has no stochastic reverse step, so it has no exact latents; allowed: "
            "the deterministic latents (encode_deterministic) with one of its samplers"
        )
    return denoiser


@torch.no_grad()
def encode(process, net: torch.nn.Module, x0: torch.Tensor, generators: List[torch.Generator]) -> Latent:
    """x0 [B, C, H, W] -> (u_K [B, C, H, W], noise [B, S, C, H, W]); see the module docstring."""
    denoiser = ancestral_denoiser(process, net)
    states = forward_trajectory(process, x0, generators)
    levels = process.sampling_levels()
    noise = []
    for k, k_next, u, u_next in zip(levels[:-1], levels[1:], states[:-1], states[1:]):
        noise.append(denoiser.ancestral_step_noise(u, k, k_next, u_next))
    if denoiser.final_noise:
        noise.append(denoiser.ancestral_step_noise(states[-1], levels[-1], 0, x0))
    else:
        noise.append(x0 - denoiser.ancestral_step(states[-1], levels[-1], 0, torch.zeros_like(x0)))
    return states[0], torch.stack(noise, dim=1)


@torch.no_grad()
def decode(process, net: torch.nn.Module, latent: Latent) -> torch.Tensor:
    """(u_K [B, C, H, W], noise [B, S, C, H, W]) -> u_0 [B, C, H, W]: every ancestral step with the latent's
    noise, then the residual: u_0 = ancestral_step(u_1, 1 -> 0) + noise[:, S-1] (``final_noise``: the last step
    with noise[:, S-1])."""
    denoiser, (u, noise) = ancestral_denoiser(process, net), latent
    levels = process.sampling_levels()
    for step, (k, k_next) in enumerate(zip(levels[:-1], levels[1:])):
        u = denoiser.ancestral_step(u, k, k_next, noise[:, step])
    if denoiser.final_noise:
        return denoiser.ancestral_step(u, levels[-1], 0, noise[:, -1])
    return denoiser.ancestral_step(u, levels[-1], 0, torch.zeros_like(u)) + noise[:, -1]


def _no_noise() -> torch.Tensor:
    raise AssertionError("a deterministic sampler drew noise")


def _run(sampler, denoiser, path: Sequence[float], u: torch.Tensor, settings: Mapping[str, Any]) -> torch.Tensor:
    return sampler(denoiser, path, u, _no_noise, lambda i, state: None, **settings)


@torch.no_grad()
def encode_deterministic(
    denoiser, sampler, settings: Mapping[str, Any], x0: torch.Tensor, levels: Sequence[float], refinements: int = 1
) -> torch.Tensor:
    """x0 [B, C, H, W] -> u_K [B, C, H, W]: the deterministic ``sampler`` (with ``settings``) run backwards
    through ``levels`` (a grid, K first), 0 -> levels[-1] -> ... -> levels[0] = K.

    With ``refinements`` = 0 the sampler runs along the reversed path in one go (a multistep sampler keeps its
    history). Otherwise each step s -> t is taken on its own, starting from the sampler's backward step and
    making ``refinements`` fixed-point corrections u_t <- u_t + (u_s - D(u_t)) towards the state that the
    decoding step D: t -> s maps to u_s (one more step each). Decoding is approximate:
    ``decode_deterministic`` returns x0 up to an error that falls as the steps get smaller."""
    path = [0, *levels[::-1]]
    if refinements == 0:
        return _run(sampler, denoiser, path, x0, settings)
    u = x0
    for s, t in zip(path[:-1], path[1:]):
        state = _run(sampler, denoiser, [s, t], u, settings)
        for _ in range(refinements):
            state = state + (u - _run(sampler, denoiser, [t, s], state, settings))
        u = state
    return u


@torch.no_grad()
def decode_deterministic(
    denoiser, sampler, settings: Mapping[str, Any], prior_state: torch.Tensor, levels: Sequence[float]
) -> torch.Tensor:
    """u_K [B, C, H, W] -> u_0 [B, C, H, W]: the deterministic ``sampler`` through ``levels`` (K first), then to 0."""
    return _run(sampler, denoiser, [*levels, 0], prior_state, settings)
