"""Kernel Inception Distance: the unbiased estimate of the squared MMD between two feature sets under the cubic
polynomial kernel k(x, y) = (x . y / D + 1)^3 (Binkowski et al. 2018), computed exactly over all pairs.

    MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
            - 2 sum_{i, j} k(x_i, y_j) / (m n)

in float64, one block of rows at a time (memory O(block * max(m, n))).
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

KID_BLOCK_ROWS = 1024
KID_REFERENCE_FEATURES = 10000  # reference features kept beside the FID statistics for KID (float32)


def kernel_sum(x: np.ndarray, y: np.ndarray) -> float:
    """sum_{i, j} (x_i . y_j / D + 1)^3 for x [m, D], y [n, D] (float64), in row blocks of x."""
    dim = x.shape[1]
    total = 0.0
    for start in range(0, x.shape[0], KID_BLOCK_ROWS):
        gram = x[start : start + KID_BLOCK_ROWS] @ y.T
        total += float(np.sum((gram / dim + 1.0) ** 3))
    return total


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD of features x [m, D] and y [n, D] (m, n >= 2) under the cubic polynomial kernel."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(x.shape[0], y.shape[0]) < 2:
        raise ValueError(f"KID needs features [m, D] and [n, D] with m, n >= 2, got {x.shape} and {y.shape}")
    m, n, dim = x.shape[0], y.shape[0], x.shape[1]
    diagonal_x = float(np.sum((np.einsum("id,id->i", x, x) / dim + 1.0) ** 3))
    diagonal_y = float(np.sum((np.einsum("id,id->i", y, y) / dim + 1.0) ** 3))
    within_x = (kernel_sum(x, x) - diagonal_x) / (m * (m - 1))
    within_y = (kernel_sum(y, y) - diagonal_y) / (n * (n - 1))
    return within_x + within_y - 2.0 * kernel_sum(x, y) / (m * n)


class FeatureSample:
    """Keeps the feature rows of images 0..capacity-1 (float32 [<= capacity, D]), whatever the number of processes.

    Each process streams its own batches through ``add``: one batch per ``distributed.my_blocks`` block, in
    order, so that under W processes batch i of rank r is block i * W + r of the images. A process keeps its
    first ``capacity`` rows (every kept row of rank r comes before its others in image order); ``merge`` puts
    every process's batches back in image order and keeps the first ``capacity`` rows.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.parts: List[np.ndarray] = []
        self.count = 0

    def add(self, features: np.ndarray) -> None:
        room = self.capacity - self.count
        if room > 0:
            self.parts.append(features[:room].astype(np.float32))
            self.count += min(room, features.shape[0])

    def array(self) -> Optional[np.ndarray]:
        return np.concatenate(self.parts) if self.parts else None

    def merge(self, parts_per_rank: List[List[np.ndarray]]) -> None:
        """Replace the kept rows by the first ``capacity`` of every process's ``parts`` (in rank order), taken
        in image order: batch i of rank r (block i * W + r) before batch i of rank r + 1 and batch i + 1 of r."""
        order = sorted((i, rank) for rank, parts in enumerate(parts_per_rank) for i in range(len(parts)))
        self.parts, self.count = [], 0
        for i, rank in order:
            self.add(parts_per_rank[rank][i])
