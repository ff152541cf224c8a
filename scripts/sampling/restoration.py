"""Restoration of degraded images: take images to level k with the run's own operator (or take them as already
degraded), then run the reverse process from level k down to the data, on the spec's grid below k.

A process restores if its denoiser provides "restoration" (an estimate of x0 in pixels and the degradation to
apply to it: the cold process); the one-step estimate x0_hat(u_k, k) is Cold Diffusion's "direct" restoration,
the reverse process its "sampled" one.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from model_code.priors import randn_per_generator
from model_code.randomness import ENCODE_STREAM, NOISE_STREAM, seeded_generators
from model_code.samplers.spec import SamplingSpec
from scripts.sampling.sampler import reverse_process


def check_restorable(process, data_kind: str = "image") -> None:
    """One line unless the model restores images: its process's denoiser must provide "restoration"."""
    if data_kind != "image":
        raise ValueError(f"restoration takes images; this run models {data_kind} (allowed: a run on images)")
    if "restoration" not in process.denoiser(None).provides:
        raise ValueError(
            f"the {process.name!r} process cannot restore (it has no one-step estimate of x0 from a degraded image "
            "in pixels); allowed: a run of the cold process"
        )


def check_from_level(level, K: int, flag: str = "from_level") -> None:
    """``from_level=<value>: an integer in 1..K`` unless it is one."""
    if not (isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= K):
        raise ValueError(f"{flag}={level!r}: an integer in 1..{K} (the level the images are degraded to; K = {K})")


def check_restoration(process, data_kind: str, from_level: Optional[int]) -> int:
    """The level k of a restoration request, ``from_level`` (None: K), refused in one line unless the model
    restores images (``check_restorable``) and k lies in 1..K."""
    check_restorable(process, data_kind)
    level = process.K if from_level is None else from_level
    check_from_level(level, process.K, "--from_level")
    return level


@torch.no_grad()
def restore(
    process,
    net,
    images: torch.Tensor,
    from_level: int,
    *,
    rows: Sequence[int],
    seed: int,
    spec: SamplingSpec = SamplingSpec(),
    degraded: bool = False,
) -> Dict[str, torch.Tensor]:
    """{'degraded': u_k, 'direct': x0_hat(u_k, k), 'restored': the reverse process from u_k} [B, C, H, W], and
    'nfe'. images [B, C, H, W] in the data range are taken to level k = ``from_level`` by ``process.diffuse``
    (its noise, if any, from each image's ENCODE_STREAM generator of ``rows``), or used as u_k if ``degraded``."""
    check_restorable(process)
    check_from_level(from_level, process.K)
    device = images.device
    if degraded:
        u = images
    else:
        eps = randn_per_generator(seeded_generators(seed, ENCODE_STREAM, rows), images.shape[1:], device)
        u = process.diffuse(images, torch.full((len(images),), from_level, device=device), eps)
    direct = process.denoiser(net).x0(u, from_level)
    generators = seeded_generators(seed, NOISE_STREAM, rows)
    restored, _, nfe = reverse_process(process, net, u, generators, spec, start_level=from_level)
    return {"degraded": u, "direct": direct, "restored": restored, "nfe": nfe}
