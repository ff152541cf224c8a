"""Cold Diffusion's resolution degradation: average-pool to a coarser grid, then upsample back by repetition."""

from __future__ import annotations

import torch

from model_code.operators.base import OPERATORS, ImageSize, SeparableOperator


def pixelate_factors(K: int, pixelate_every: int) -> torch.Tensor:
    """f_k = 2^ceil(k / pixelate_every) for k = 0..K, int64 [K+1]: the resolution halves every pixelate_every levels."""
    levels = torch.arange(K + 1)
    return 2 ** torch.div(levels + pixelate_every - 1, pixelate_every, rounding_mode="floor")


def block_average_matrix(n: int, factor: int) -> torch.Tensor:
    """P[p, q] = 1/f where p and q lie in the same block of f pixels, float32 [n, n] (f divides n).

    P averages each block and writes the average back to its pixels: a symmetric, idempotent
    orthogonal projection.
    """
    block = torch.arange(n) // factor
    return (block[:, None] == block[None, :]).float() / factor


def check_divisible(factors: torch.Tensor, height: int, width: int, pixelate_every: int) -> None:
    """Refuse a schedule whose factor at some level does not divide the image height and width."""
    for level, factor in enumerate(factors.tolist()):
        for side in (height, width):
            if side % factor:
                raise ValueError(
                    f"pixelate: level {level} asks for {side}/{factor} = {side / factor:g} pixels; allowed: K and "
                    f"pixelate_every={pixelate_every} such that 2^ceil(K/pixelate_every) divides the image "
                    f"height {height} and width {width}"
                )


@OPERATORS.register("pixelate")
class PixelateOperator(SeparableOperator):
    """Cold Diffusion's resolution degradation: A_k average-pools to (H / f_k, W / f_k), then upsamples by
    nearest-neighbour repetition back to (H, W); f_k = 2^ceil(k / pixelate_every) (``pixelate_factors``).

    pixelate_every = 1 halves the resolution at every level (Cold's Incremental_factor_2: 32x32 with
    K = 3 gives 16, 8, 4). Blocks are exact: a schedule whose f_K does not divide H and W (28 -> 14 ->
    7 -> 3.5), or whose coarsest grid would be under one pixel, is refused at construction.

    A_k x = P_H(k) x P_W(k)^T per channel (``SeparableOperator``) with block-average matrices P(k) ([K+1, n, n],
    ``block_average_matrix``), so every A_k is an orthogonal projection, A_k A_k = A_k and
    A_j A_k = A_max(j,k). The projections commute and are diagonal in a Haar basis, but no such basis
    is implemented: not marked diagonal. Integer levels.
    """

    def __init__(self, *, image_size: ImageSize, K: int, pixelate_every: int):
        super().__init__(image_size=image_size, K=K)
        if not isinstance(pixelate_every, int) or pixelate_every < 1:
            raise ValueError(f"pixelate_every={pixelate_every!r}: an integer >= 1 (levels per halving)")
        factors = pixelate_factors(K, pixelate_every)
        check_divisible(factors, self.height, self.width, pixelate_every)
        self.register_levels(
            _level_matrices(self.height, factors), _level_matrices(self.width, factors), persistent=False
        )


def _level_matrices(n: int, factors: torch.Tensor) -> torch.Tensor:
    return torch.stack([block_average_matrix(n, factor) for factor in factors.tolist()])
