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

``sample_chunks`` draws a request in chunks of a fixed number of images, so its memory is bounded by the chunk,
not by the number of images; under torchrun or mpiexec the chunks are shared out over the processes, whole,
so the samples are bit-identical for any number of processes. ``first_images`` keeps the first images of the
chunks (all of them: the request in memory).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

from model_code.conditioning import conditioned, num_classes_of
from model_code.precision import AutocastNetwork
from model_code.randomness import INIT_STREAM, NOISE_STREAM, PerRowNormals, seeded_generators
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
    generators: List[torch.Generator],
    shape: Sequence[int],
    device,
    steps: int,
    weights: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
) -> Callable[[], torch.Tensor]:
    """The noise source of ``steps`` steps: each call is the next step's standard normal noise [B, *shape] scaled
    by ``temperature``, a draw per generator (B of them, ``PerRowNormals``), or with ``weights`` [B] the spherical
    interpolation between the draws of the two ``generators``."""
    draw = PerRowNormals(generators, shape, device, limit=steps)

    def noise() -> torch.Tensor:
        drawn = draw()
        drawn = drawn if weights is None else spherical(drawn[0], drawn[1], weights)
        return drawn if temperature == 1 else temperature * drawn

    return noise


def sampling_network(net: torch.nn.Module, spec: SamplingSpec, process, device: torch.device):
    """``net`` in the spec's ``mixed_precision`` on ``device`` (``AutocastNetwork``: float32 in and out), or ``net``
    itself in float32 (always for a process whose network must compute in float32)."""
    dtype = spec.network_dtype(device, process)
    return net if dtype is None else AutocastNetwork(net, torch.device(device).type, dtype)


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
    recorded_rows: Optional[int] = None,
    labels: Optional[torch.Tensor] = None,
    start_level: Optional[int] = None,
) -> Tuple[torch.Tensor, List[torch.Tensor], int]:
    """Run ``spec``'s sampler over the process's denoiser along ``spec.levels`` from u_K = ``initial`` [B, ...]
    (or from u_k at ``start_level`` k: a restoration); each noise draw is ``step_noise`` of ``noise_generators``
    and ``noise_weights`` scaled by ``spec.noise_temperature``, so the ancestral sampler's step i draws the i-th
    noise of each stream. A class-conditional ``net`` gets the images' ``labels`` [B] (``spec.labels``) and
    ``spec.guidance``.

    Returns (u_0, trajectory, nfe): with ``record``, at most ``max_frames`` states evenly spaced from u_K
    to u_0 (always both ends), copied to the CPU (their first ``recorded_rows`` images; None: all), otherwise
    an empty list; nfe the network evaluations spent.
    """
    spec = spec.for_process(process)
    denoiser = process.denoiser(
        conditioned(sampling_network(net, spec, process, initial.device), labels, spec.guidance)
    )
    levels = spec.levels(denoiser, process.name, start_level)
    kept = set(evenly_spaced_frames(len(levels), max_frames)) if record else set()
    trajectory = [initial[:recorded_rows].to("cpu", copy=True)] if 0 in kept else []
    bar = tqdm(total=len(levels) - 1, desc="sampling", leave=False, disable=not progress)

    noise = step_noise(
        noise_generators, initial.shape[1:], initial.device, len(levels) - 1, noise_weights, spec.noise_temperature
    )

    def callback(step: int, u: torch.Tensor) -> None:
        bar.update()
        if step in kept:
            trajectory.append(u[:recorded_rows].to("cpu", copy=True))

    sampler = SAMPLERS.get(spec.sampler)
    u = sampler(denoiser, levels, initial, noise, callback, **spec.settings())
    bar.close()
    return u, trajectory, denoiser.nfe


def mode_seeds(mode: str, rows: range) -> Tuple[List[int], List[int]]:
    """(init seed indices, noise seed indices) of images ``rows`` of a request in a sampling mode."""
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; known: {', '.join(MODES)}")
    indices = list(rows)
    if mode == "same_init":
        return [0] * len(rows), indices
    if mode in ("share_noise", *INTERPOLATIONS):
        return indices, [0] * len(rows)
    return indices, indices


@torch.no_grad()
def initial_states(
    prior,
    mode: str,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    temperature: float = 1.0,
    rows: Optional[range] = None,
) -> torch.Tensor:
    """u_K for images ``rows`` (None: all) of ``count`` images: prior draws at ``temperature``, or for
    INTERPOLATIONS the line between two."""
    rows = range(count) if rows is None else rows
    if mode in INTERPOLATIONS:
        ends = prior.sample(seeded_generators(seed, INIT_STREAM, [0, 1]), shape, device, temperature)
        weights = interpolation_weights(count, device)[rows.start : rows.stop].view(-1, *[1] * len(shape))
        return (1 - weights) * ends[:1] + weights * ends[1:]
    init_indices, _ = mode_seeds(mode, rows)
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
    _, noise_indices = mode_seeds(mode, rows)
    return seeded_generators(seed, NOISE_STREAM, noise_indices), None


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
    labels = spec.labels(range(count), seed, num_classes_of(net))
    samples, trajectory, nfe = reverse_process(
        process, net, initial, generators, spec, record, progress, noise_weights=weights, labels=labels
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
    generators = seeded_generators(seed, NOISE_STREAM, indices)
    labels = spec.labels(indices, seed, num_classes_of(net))
    samples, _, nfe = reverse_process(process, net, initial, generators, spec, labels=labels)
    return samples, nfe


@dataclass
class Chunk:
    """Images start..start + len(samples) - 1 of a request, on the CPU: their initial states and samples
    [n, ...], the recorded states of the reverse process of the first of them (a list of [r, ...], r <= n;
    empty where none is recorded), and the network evaluations each image took."""

    start: int
    initial: torch.Tensor
    samples: torch.Tensor
    trajectory: List[torch.Tensor]
    nfe: int

    def head(self, rows: int) -> "Chunk":
        """The chunk's first ``rows`` images."""
        trajectory = [state[:rows] for state in self.trajectory]
        return Chunk(self.start, self.initial[:rows], self.samples[:rows], trajectory, self.nfe)


@torch.no_grad()
def sample_chunks(
    process,
    net: torch.nn.Module,
    prior,
    *,
    mode: str,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    chunk_size: int,
    spec: SamplingSpec = SamplingSpec(),
    recorded: int = 0,
    progress: bool = False,
) -> Iterator[Chunk]:
    """The ``count`` images of a request in one of MODES, in chunks of ``chunk_size`` in image order, on every
    process; the reverse process of the first ``recorded`` images is kept (``MAX_FRAMES`` states).

    The chunks are shared out over the processes round-robin (``distributed.block_rounds``): each round every
    process draws one and all of them are gathered, so a process holds at most one chunk per process at once,
    and every chunk is drawn exactly as a single process draws it (bit-identical samples for any number of
    processes). Every process must consume the whole iterator (each round is a collective). Progress: the
    steps of a single round, or the images of several.
    """
    one_round = count <= chunk_size * distributed.world_size()
    request = dict(mode=mode, count=count, seed=seed, shape=shape, device=device, spec=spec, recorded=recorded)
    draw = functools.partial(draw_chunk, process, net, prior, **request, progress=progress and one_round)
    bar = tqdm(total=count, desc="sampling", unit="image", leave=False, disable=not progress or one_round)
    for rows in distributed.block_rounds(count, chunk_size):
        mine = draw(rows) if rows is not None else None
        for chunk in distributed.gather_objects(mine):  # rank order is image order within a round
            if chunk is not None:
                bar.update(len(chunk.samples))
                yield chunk
    bar.close()


def draw_chunk(
    process,
    net: torch.nn.Module,
    prior,
    rows: range,
    *,
    mode: str,
    count: int,
    seed: int,
    shape: Sequence[int],
    device,
    spec: SamplingSpec,
    recorded: int,
    progress: bool,
) -> Chunk:
    """Images ``rows`` of a request of ``count`` (``sample_chunks``), the states of those below ``recorded``
    kept."""
    initial = initial_states(prior, mode, count, seed, shape, device, spec.temperature, rows)
    generators, weights = noise_sources(mode, count, seed, rows, device)
    kept = max(0, min(rows.stop, recorded) - rows.start)
    samples, trajectory, nfe = reverse_process(
        process,
        net,
        initial,
        generators,
        spec,
        record=kept > 0,
        progress=progress,
        noise_weights=weights,
        recorded_rows=kept,
        labels=spec.labels(rows, seed, num_classes_of(net)),
    )
    return Chunk(rows.start, initial.cpu(), samples.cpu(), trajectory, nfe)


def first_images(chunks: Iterable[Chunk], count: int) -> Dict[str, object]:
    """{'initial', 'samples', 'trajectory', 'nfe'} of the first ``count`` images of ``chunks`` (in image order,
    on the CPU; the trajectory a list of states of those of them that the chunks recorded); consumes every
    chunk, so that every process takes part in each round of ``sample_chunks``."""
    kept, nfe = [], 0
    for chunk in chunks:
        nfe = chunk.nfe
        if chunk.start < count:
            kept.append(chunk.head(count - chunk.start))
    return {
        "initial": torch.cat([chunk.initial for chunk in kept]),
        "samples": torch.cat([chunk.samples for chunk in kept]),
        "trajectory": [torch.cat(states) for states in zip(*[chunk.trajectory for chunk in kept if chunk.trajectory])],
        "nfe": nfe,
    }
