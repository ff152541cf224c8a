"""Random linear maps (the linear-maps fork): a seeded random matrix per level, or their running product."""

from __future__ import annotations

import math

import torch

from model_code.operators.base import OPERATORS, ImageSize, SeparableOperator


class SeparableMatrixOperator(SeparableOperator):
    """A_k = R_W(k) (x) R_H(k): x -> R_H(k) x R_W(k)^T per channel, seeded random matrices per level.

    The per-level factors are persistent buffers, so a checkpoint holds the exact map.
    Index 0 holds the identity.
    """

    def __init__(self, *, image_size: ImageSize, K: int, seed: int):
        super().__init__(image_size=image_size, K=K)
        generator = torch.Generator().manual_seed(int(seed))
        left = self.make_factors(self.height, generator)
        right = self.make_factors(self.width, generator)
        self.register_levels(left, right, persistent=True)

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


def _gaussian_factors(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """count matrices [count, n, n] with N(0, 1/n) entries, so E|R v|^2 = |v|^2. float64."""
    return torch.randn(count, n, n, generator=generator, dtype=torch.float64) / math.sqrt(n)


def _with_identity(factors: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(factors.shape[-1], dtype=factors.dtype)[None]
    return torch.cat([eye, factors])


@OPERATORS.register("random_matrix")
class RandomMatrixOperator(SeparableMatrixOperator):
    """A fixed, independent random matrix for each level k >= 1 (A_0 = I).

    Each A_k is the Kronecker product of two seeded Gaussian factors (H x H and W x W) with
    N(0, 1/n) entries, so applying it preserves the squared norm in expectation; storing the
    factors costs K (H^2 + W^2) numbers instead of K (H W)^2 for a dense matrix.
    """

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return _with_identity(_gaussian_factors(self.K, n, generator))


@OPERATORS.register("random_matrix_product")
class RandomMatrixProductOperator(SeparableMatrixOperator):
    """A_k = c_k R_k R_{k-1} ... R_1 with seeded Gaussian factors R_i (Kronecker-structured).

    The raw product of many random matrices overflows or vanishes in float32; here the running
    product is accumulated in float64 and rescaled after every factor so that its Frobenius norm
    stays sqrt(n) (mean squared singular value 1). It stays finite for any K.
    """

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        factors = _gaussian_factors(self.K, n, generator)
        products = []
        running = torch.eye(n, dtype=torch.float64)
        for factor in factors:
            running = factor @ running
            running = running * (math.sqrt(n) / torch.linalg.matrix_norm(running))
            products.append(running)
        return _with_identity(torch.stack(products))
