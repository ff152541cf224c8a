"""Training batches in an order that depends on the step alone, so a resumed run sees exactly the batches an
uninterrupted run would: index batches (``EpochBatches``), and the batches themselves on the training device
(``Batch``: the items and, for a class-conditional model, their labels), gathered there from a dataset held in
memory or loaded through a DataLoader."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Optional

import torch
from torch.utils.data import Dataset


class Batch(NamedTuple):
    """A training batch: items [B, ...] (uint8 images, or points) and their class labels int64 [B] (None: the
    model is unconditional)."""

    items: torch.Tensor
    labels: Optional[torch.Tensor] = None

    def rows(self, start: int, stop: int) -> "Batch":
        """Rows start..stop - 1 of the batch."""
        return Batch(self.items[start:stop], None if self.labels is None else self.labels[start:stop])

    def to(self, device: torch.device, non_blocking: bool = False) -> "Batch":
        labels = None if self.labels is None else self.labels.to(device, non_blocking=non_blocking)
        return Batch(self.items.to(device, non_blocking=non_blocking), labels)


class LabelledItems(Dataset):
    """Item i of ``dataset`` with its label: (item, labels[i]), so a DataLoader batches both."""

    def __init__(self, dataset: Dataset, labels: torch.Tensor):
        self.dataset, self.labels = dataset, labels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index], self.labels[index]


class EpochBatches(torch.utils.data.Sampler):
    """Index batches for step ``start_step`` onwards: epoch e is a permutation seeded by (seed, e),
    cut into len // batch_size full batches. The order depends on the step alone, so a resumed run
    sees exactly the batches an uninterrupted run would."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int = 0, rows: Optional[range] = None):
        """``rows``: the part of each global batch this process trains on (default: all of it)."""
        if batch_size > num_items:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {num_items} training images")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.rows = range(batch_size) if rows is None else rows

    def part(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch of indices [batch_size]."""
        return batch[self.rows.start : self.rows.stop]

    def epochs(self) -> Iterator[torch.Tensor]:
        """The rest of each epoch's order from ``start_step`` on: int64 [n * batch_size] per epoch."""
        per_epoch = self.num_items // self.batch_size
        epoch, position = divmod(self.start_step, per_epoch)
        while True:
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            yield order[position * self.batch_size : per_epoch * self.batch_size]
            epoch, position = epoch + 1, 0

    def __iter__(self):
        for order in self.epochs():
            for batch in order.split(self.batch_size):
                yield self.part(batch).tolist()

    def __len__(self) -> int:  # an endless stream; DataLoader asks only for its own bookkeeping
        return 2**62


def batch_loader(
    dataset: Dataset, batches: EpochBatches, num_workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``batches``. It gets its own generator: the default one draws its worker
    seed from the global RNG, which would shift the dropout stream of a resumed run."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(batches.seed),
    )


def device_batches(
    items: torch.Tensor, batches: EpochBatches, labels: Optional[torch.Tensor] = None
) -> Iterator[Batch]:
    """Batches of ``items`` [N, ...] (and ``labels`` [N]), tensors already on the training device, in the order of
    ``batches``: each epoch's order goes to the device once and every batch is an on-device gather,
    with no DataLoader, no host copy and no host synchronisation per step."""
    for order in batches.epochs():
        order = order.to(items.device)
        for start in range(0, order.shape[0], batches.batch_size):
            indices = batches.part(order[start : start + batches.batch_size])
            yield Batch(items.index_select(0, indices), None if labels is None else labels.index_select(0, indices))


def training_batches(
    dataset: Dataset,
    batches: EpochBatches,
    num_workers: int,
    device: torch.device,
    resident: bool = True,
    labels: Optional[torch.Tensor] = None,
) -> Iterator[Batch]:
    """Training batches on ``device``, in the order of ``batches``, with ``labels`` (int64 [N], the dataset's
    class labels; None: batches without labels).

    A dataset held in memory (``items``: uint8 images, or 2D points) is moved to the device once and
    batched there (``resident``); any other dataset goes through a DataLoader, with pinned memory and
    non-blocking copies on CUDA.
    """
    if resident and hasattr(dataset, "items"):
        return device_batches(dataset.items.to(device), batches, None if labels is None else labels.to(device))
    source = dataset if labels is None else LabelledItems(dataset, labels)
    loader = batch_loader(source, batches, num_workers, pin_memory=device.type == "cuda")
    loaded = (Batch(*batch) if labels is not None else Batch(batch) for batch in loader)
    return (batch.to(device, non_blocking=True) for batch in loaded)
