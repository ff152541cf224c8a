"""Random draws for a batch, either from one generator or keyed by (seed, step, example index).

Processes and data augmentation draw through a ``Randomness``: ``randn(shape)``, ``rand(shape)``
and ``randint(low, high, shape)``, where ``shape[0]`` is the number of examples.

- ``GeneratorRandomness(generator)`` draws directly from one ``torch.Generator`` (tests, tools).
- ``ExampleRandomness(seed, step, total, start, count)`` serves the examples start..start+count-1
  of a global batch of ``total`` examples at training step ``step``. Its d-th draw is taken for all
  ``total`` examples from a generator seeded by (seed, step, d), and the rows of this part are
  returned. Example j of step n therefore gets the same level, noise, flip and dequantisation
  whichever process or accumulation round computes it: 1 process, N processes and gradient
  accumulation train the same model up to float summation order.
- ``seeded_generators(seed, stream, indices)`` gives one generator per image, so that image i of a request
  depends on its own seeds alone, never on the batch size or the device count.

Every seed mixed from several integer keys goes through ``seed_from`` (numpy's SeedSequence). The streams
(``*_STREAM``) name what a per-image generator draws; the seeded draws of the project:

  what is drawn                                      generator seeded with
  -------------------------------------------------  --------------------------------------------------
  image i's initial state u_K (sampling, resample)   seed_from(seed, INIT_STREAM = 0, i)
  image i's reverse-step noise (sampling, resample)  seed_from(seed, NOISE_STREAM = 1, i)
  image i's forward trajectory (``Model.encode``,    seed_from(seed, ENCODE_STREAM = 2, i)
  and its degradation in ``Model.restore``)
  image i's class label, drawn (conditional models)  seed_from(seed, LABEL_STREAM = 4, i)
  label dropout, draw d of training step n           seed_from(seed_from(seed, LABEL_DROPOUT_STREAM = 5), n, d)
  draw d of training step n (``ExampleRandomness``)  seed_from(seed, n, d)
  draw d of ELBO pass p, batch b (of B per pass)     seed_from(seed, p * B + b, d)
  information-theoretic NLL, batch b                 seed_from(seed, b)
  dropout of training process r > 0 (global RNG)     seed_from(seed, r); process 0 keeps the one seeded with seed
  ``Model.elbo``'s batch (one generator)             seed + ELBO_SEED_OFFSET (3): an offset, not a stream
  the order of training epoch e                      seed * 100003 + e (``EpochBatches``)
"""

from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Union

import numpy as np
import torch

Shape = Sequence[int]

INIT_STREAM = 0
NOISE_STREAM = 1
ENCODE_STREAM = 2
ELBO_SEED_OFFSET = 3
LABEL_STREAM = 4
LABEL_DROPOUT_STREAM = 5


class Randomness(Protocol):
    def randn(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal tensor of ``shape``."""

    def rand(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uniform [0, 1) tensor of ``shape``."""

    def randint(self, low: int, high: int, shape: Shape) -> torch.Tensor:
        """Integers in [low, high) (int64) of ``shape``."""


class GeneratorRandomness:
    """Every draw straight from ``generator``, on the generator's device."""

    def __init__(self, generator: Optional[torch.Generator], device: Union[str, torch.device, None] = None):
        self.generator = generator
        self.device = torch.device(device) if device is not None else (generator.device if generator else "cpu")

    def randn(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.generator, device=self.device, dtype=dtype)

    def rand(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(tuple(shape), generator=self.generator, device=self.device, dtype=dtype)

    def randint(self, low: int, high: int, shape: Shape) -> torch.Tensor:
        return torch.randint(low, high, tuple(shape), generator=self.generator, device=self.device)


def seed_from(*keys: int) -> int:
    """A 64-bit seed mixed from integer keys (numpy's SeedSequence), for torch.Generator.manual_seed."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def seeded_generators(seed: int, stream: int, indices: Sequence[int]) -> List[torch.Generator]:
    """One CPU generator per index, seeded with ``seed_from(seed, stream, index)``."""
    return [torch.Generator().manual_seed(seed_from(seed, stream, index)) for index in indices]


class ExampleRandomness:
    """Draws for rows ``start .. start + count - 1`` of a global batch of ``total`` examples at ``step``."""

    def __init__(self, seed: int, step: int, total: int, start: int = 0, count: Optional[int] = None, device="cpu"):
        count = total - start if count is None else count
        if start < 0 or count < 0 or start + count > total:
            raise ValueError(f"rows {start}..{start + count - 1} are outside a batch of {total}")
        self.seed, self.step, self.total, self.start, self.count = seed, step, total, start, count
        self.device = torch.device(device)
        self.draws = 0

    def _generator(self) -> torch.Generator:
        generator = torch.Generator(self.device).manual_seed(seed_from(self.seed, self.step, self.draws))
        self.draws += 1
        return generator

    def _full_shape(self, shape: Shape) -> tuple:
        if shape[0] != self.count:
            raise ValueError(f"this part of the batch has {self.count} examples; asked for {shape[0]}")
        return (self.total, *shape[1:])

    def _rows(self, full: torch.Tensor) -> torch.Tensor:
        return full[self.start : self.start + self.count]

    def randn(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        full = torch.randn(self._full_shape(shape), generator=self._generator(), device=self.device, dtype=dtype)
        return self._rows(full)

    def rand(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        full = torch.rand(self._full_shape(shape), generator=self._generator(), device=self.device, dtype=dtype)
        return self._rows(full)

    def randint(self, low: int, high: int, shape: Shape) -> torch.Tensor:
        full = torch.randint(low, high, self._full_shape(shape), generator=self._generator(), device=self.device)
        return self._rows(full)


RandomSource = Union[Randomness, torch.Generator, None]


def as_randomness(source: RandomSource, device=None) -> Randomness:
    """A ``Randomness`` from a generator (or None: the global RNG); a ``Randomness`` is returned as is."""
    if source is None or isinstance(source, torch.Generator):
        return GeneratorRandomness(source, device)
    return source


class PerRowNormals:
    """Successive standard normal draws [B, *shape] from B generators: row b of draw i is the i-th draw of
    ``shape`` from generator b, exactly as ``randn_per_generator`` draws it step by step.

    torch's CPU normal sampler fills a block of a multiple of 16 values in 16-value groups of consecutive uniforms,
    so ``block`` draws of such a shape taken at once are the same numbers as ``block`` separate draws; then each
    generator is called once per ``block`` draws instead of once per draw (the sampler's loop overhead). Other
    shapes are drawn one at a time. ``limit`` bounds the draws taken ahead (the sampler's step count).
    """

    BLOCK_VALUES = 1 << 20  # values per generator call at most (4 MiB of float32)

    def __init__(self, generators: List[torch.Generator], shape: Sequence[int], device, limit: int):
        self.generators, self.shape, self.device = generators, tuple(shape), device
        size = int(np.prod(self.shape))
        self.block = max(1, min(limit, self.BLOCK_VALUES // max(size, 1))) if size % 16 == 0 else 1
        self.buffer: Optional[torch.Tensor] = None  # [block, B, *shape]: each draw a contiguous [B, *shape]
        self.used = 0

    def __call__(self) -> torch.Tensor:
        if self.buffer is None or self.used == self.buffer.shape[0]:
            draws = [torch.randn((self.block, *self.shape), generator=g) for g in self.generators]
            self.buffer, self.used = torch.stack(draws, dim=1).to(self.device), 0
        self.used += 1
        return self.buffer[self.used - 1]
