"""The one sampling driver: prior draw, then the spec's sampler over the process's denoiser, one seed per image.

Image i of a request draws its initial state from a generator seeded by (seed, INIT, i) and its
step noise from one seeded by (seed, NOISE, i), so a sample depends on its seeds alone, never on
the batch size or the device count. The modes of sample.py only choose the seeds:

- random: image i uses init seed i and noise seed i;
- same_init: every image uses init seed 0 (the same u_K), noise seeds differ;
- share_noise: init seeds differ, every image uses noise seed 0 (the same noise at every step);
- interpolate: u_K moves linearly between two prior draws, the noise of every step spherically between
  the draws of noise seeds 0 and 1 (the same two streams for every image, whatever the batch);
- interpolate_shared_noise: u_K as for interpolate, every image uses noise seed 0.

Under torchrun or mpiexec, ``sample_on_ranks`` gives each process a contiguous block of the images
and gathers them, so the samples are bit-identical for any number of processes.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

from model_code.priors import randn_per_generator
from model_code.randomness import INIT_STREAM, NOISE_STREAM, seeded_generators
from model_code.samplers import SAMPLERS
from model_code.samplers.spec import SamplingSpec
from scripts.runtime import distributed
from scripts.sampling.imaging import evenly_spaced_frames

MODES = ("random", "same_init", "share_noise", "interpolate", "interpolate_shared_noise")
INTERPOLATIONS = ("interpolate", "interpolate_shared_noise")
MAX_FRAMES = 100  # states of the reverse process kept for the GIF


def check_steps(steps: Optional[int], process) -> None:
    """A --steps value: ``--steps=S: an integer in 1..K`` unless 1 <= S <= K, then the process's own refusal
    if it cannot skip levels; None (every level) passes."""
    from scripts.cli.values import int_at_least, require

    require("--steps", steps, lambda s: int_at_least(1)(s) and s <= process.K, f"an integer in 1..{process.K}")
    process.sampling_levels(steps)


def spherical(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, eps: Optional[float] = 1e-7) -> torch.Tensor:
    """slerp(a, b; w) = sin((1-w) theta)/sin(theta) a + sin(w theta)/sin(theta) b, theta the angle between
    the flattened a and b [...]; weights [N] -> [N, ...]. Ends are a and b exactly."""
    cos = (a.flatten() @ b.flatten()) / (a.norm() * b.norm()).clamp_min(eps)
    theta = torch.arccos(cos.clamp(-1, 1)).clamp_min(eps)
    w = weights.view(-1, *[1] * a.dim())
    return (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)


def step_noise(
    generators: List[torch.Generator], shape: Sequence[int], device, weights: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """One step's standard normal noise [B, *shape]: a draw per generator (B of them), or with ``weights`` [B]
    the spherical interpolation between the draws of the two ``generators``."""
    drawn = randn_per_generator(generators, shape, device)
    return drawn if weights is None else spherical(drawn[0], drawn[1], weights)


@torch.no_grad()
def reverse_process(
    process,
    net: torch.nn.Module,
    initial: torch.Tensor,
    noise_generators: List[torch.Generator],
    spec: SamplingSpec = SamplingSpec(),
    record: bool = False,
    progress: bool = False,
    max_frames: int = MAX_FRAMES,
    noise_weights: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, List[torch.Tensor], int]:
    """Run ``spec``'s sampler over the process's denoiser along ``spec.levels`` from u_K = ``initial``
    [B, ...]; each noise draw is ``step_noise`` of ``noise_generators`` and ``noise_weights`` scaled by
    ``spec.noise_temperature``, so the ancestral sampler's step i draws the i-th noise of each stream.

    Returns (u_0, trajectory, nfe): with ``record``, at most ``max_frames`` states evenly spaced from u_K
    to u_0 (always both ends), kept on the CPU, otherwise an empty list; nfe the network evaluations spent.
    """
    denoiser = process.denoiser(net)
    levels = spec.levels(denoiser, process.name)
    kept = set(evenly_spaced_frames(len(levels), max_frames)) if record else set()
    trajectory = [initial.cpu()] if 0 in kept else []
    bar = tqdm(total=len(levels) - 1, desc="sampling", leave=False, disable=not progress)

    def noise() -> torch.Tensor:
        return spec.noise_temperature * step_noise(noise_generators, initial.shape[1:], initial.device, noise_weights)

    def callback(step: int, u: torch.Tensor) -> None:
        bar.update()
        if step in kept:
            trajectory.append(u.cpu())

    sampler = SAMPLERS.get(spec.sampler)
    u = sampler(denoiser, levels, initial, noise, callback, **spec.settings())
    bar.close()
    return u, trajectory, denoiser.nfe


def trajectory_frames(process, spec: SamplingSpec) -> int:
    """The number of states ``reverse_process`` records with ``spec`` (the uniform grid's or any grid's S + 1)."""
    steps = process.K if spec.steps is None else spec.steps
    return len(evenly_spaced_frames(steps + 1, MAX_FRAMES))


def mode_seeds(mode: str, count: int) -> Tuple[List[int], List[int]]:
    """(init seed indices, noise seed indices) of ``count`` images for a sampling mode."""
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; known: {', '.join(MODES)}")
    indices = list(range(count))
    if mode == "same_init":
        return [0] * count, indices
    if mode in ("share_noise", *INTERPOLATIONS):
        return indices, [0] * count
    return indices, indices


@torch.no_grad()
def initial_states(
    prior, mode: str, count: int, seed: int, shape: Sequence[int], device, temperature: float = 1.0
) -> torch.Tensor:
    """u_K for ``count`` images: prior draws at ``temperature``, or for INTERPOLATIONS the line between two."""
    if mode in INTERPOLATIONS:
        ends = prior.sample(seeded_generators(seed, INIT_STREAM, [0, 1]), shape, device, temperature)
        weights = interpolation_weights(count, device).view(-1, *[1] * len(shape))
        return (1 - weights) * ends[:1] + weights * ends[1:]
    init_indices, _ = mode_seeds(mode, count)
    return prior.sample(seeded_generators(seed, INIT_STREAM, init_indices), shape, device, temperature)


def interpolation_weights(count: int, device) -> torch.Tensor:
    """[count] evenly spaced weights from 0 to 1: the position of each image along an interpolation."""
    return torch.linspace(0, 1, count, device=device)


def noise_sources(
    mode: str, count: int, seed: int, rows: range, device
) -> Tuple[List[torch.Generator], Optional[torch.Tensor]]:
    """(generators, weights) of ``reverse_process``'s step noise for images ``rows`` of a request: their
    own noise seeds, or for ``interpolate`` the two ends' seeds 0 and 1 and the images' weights."""
    if mode == "interpolate":
        weights = interpolation_weights(count, device)[rows.start : rows.stop]
        return seeded_generators(seed, NOISE_STREAM, [0, 1]), weights
    _, noise_indices = mode_seeds(mode, count)
    return seeded_generators(seed, NOISE_STREAM, noise_indices[rows.start : rows.stop]), None


@torch.no_grad()
def sample(
    process,
    net: torch.nn.Module,
    prior,
    *,
    mode: str,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    spec: SamplingSpec = SamplingSpec(),
    record: bool = False,
    progress: bool = False,
) -> Dict[str, object]:
    """Draw ``count`` samples in one of MODES as ``spec`` says (sampler, grid, steps, the prior at
    ``spec.temperature``). Returns {'initial', 'samples', 'trajectory', 'nfe'}."""
    initial = initial_states(prior, mode, count, seed, shape, device, spec.temperature)
    generators, weights = noise_sources(mode, count, seed, range(count), device)
    samples, trajectory, nfe = reverse_process(
        process, net, initial, generators, spec, record=record, progress=progress, noise_weights=weights
    )
    return {"initial": initial, "samples": samples, "trajectory": trajectory, "nfe": nfe}


@torch.no_grad()
def generate_range(
    process,
    net,
    prior,
    *,
    start: int,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    spec: SamplingSpec = SamplingSpec(),
) -> Tuple[torch.Tensor, int]:
    """Random-mode samples for image indices start..start+count-1 (FID generation in batches) as ``spec`` says,
    and the network evaluations each image took."""
    indices = list(range(start, start + count))
    initial = prior.sample(seeded_generators(seed, INIT_STREAM, indices), shape, device, spec.temperature)
    samples, _, nfe = reverse_process(process, net, initial, seeded_generators(seed, NOISE_STREAM, indices), spec)
    return samples, nfe


@torch.no_grad()
def sample_on_ranks(
    process,
    net: torch.nn.Module,
    prior,
    *,
    mode: str,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    batch_size: int,
    spec: SamplingSpec = SamplingSpec(),
    record: bool = False,
    progress: bool = False,
) -> Dict[str, object]:
    """``sample`` in batches of ``batch_size`` images shared out over the processes, gathered on every one.

    Each process computes the initial states of all ``count`` images (prior draws are cheap) and the
    reverse process of its batches (``distributed.my_blocks``); the samples are bit-identical for any
    number of processes, and equal ``sample``'s when ``batch_size >= count``. Returns {'initial', 'samples',
    'trajectory', 'nfe'}.
    """
    initial = initial_states(prior, mode, count, seed, shape, device, spec.temperature)
    frames = trajectory_frames(process, spec) if record else 0
    samples, trajectory, nfe = [], [[] for _ in range(frames)], 0
    for rows in distributed.my_blocks(count, batch_size):
        generators, weights = noise_sources(mode, count, seed, rows, device)
        part = initial[rows.start : rows.stop]
        out, states, nfe = reverse_process(
            process, net, part, generators, spec, record=record, progress=progress, noise_weights=weights
        )
        samples.append((rows.start, out))
        for frame, state in zip(trajectory, states):
            frame.append((rows.start, state))
    return {
        "initial": initial,
        "samples": distributed.gather_blocks(samples, initial),
        "trajectory": [distributed.gather_blocks(frame, initial.cpu()) for frame in trajectory],
        "nfe": nfe,
    }
