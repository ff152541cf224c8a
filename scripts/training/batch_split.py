"""How a global batch is split over processes and gradient-accumulation rounds.

``training.batch_size`` B is the global batch. Each of the W processes takes B / W examples (its
rows of every global batch), and computes them in rounds of ``training.batch_per_device`` examples
(0: all B / W in one round), accumulating gradients. Every example's randomness is keyed by its row
in the global batch (``model_code.randomness.ExampleRandomness``), so the split changes float
summation order only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchSplit:
    global_batch: int
    world_size: int
    rank: int
    per_device: int

    @classmethod
    def of(cls, global_batch: int, batch_per_device: int, world_size: int, rank: int) -> "BatchSplit":
        """Validate and build; a split that does not divide evenly is one clear error naming both numbers."""
        if global_batch % world_size:
            raise ValueError(
                f"training.batch_size={global_batch} cannot be split evenly over {world_size} processes; "
                "use a multiple of the process count"
            )
        per_rank = global_batch // world_size
        per_device = batch_per_device or per_rank
        if batch_per_device < 0 or per_rank % per_device:
            raise ValueError(
                f"training.batch_per_device={batch_per_device} does not divide the {per_rank} examples per "
                f"process (training.batch_size={global_batch} over {world_size} processes); use a divisor of "
                f"{per_rank}, or 0 for all of them in one round"
            )
        return cls(global_batch, world_size, rank, per_device)

    @property
    def per_rank(self) -> int:
        return self.global_batch // self.world_size

    @property
    def rounds(self) -> int:
        return self.per_rank // self.per_device

    @property
    def rows(self) -> range:
        """This process's rows of the global batch."""
        return range(self.rank * self.per_rank, (self.rank + 1) * self.per_rank)

    def round_rows(self, index: int) -> range:
        """The global rows of accumulation round ``index`` of this process."""
        start = self.rows.start + index * self.per_device
        return range(start, start + self.per_device)
