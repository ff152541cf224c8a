"""Orthonormal 2D DCT-II as two small matrix products.

For an image x of shape [..., H, W], the coefficients are ``c = C_H x C_W^T`` and the inverse
is ``x = C_H^T c C_W``, with C_n the orthonormal DCT-II matrix
``C[k, i] = s_k cos(pi (2 i + 1) k / (2 n))``, ``s_0 = sqrt(1/n)``, ``s_k = sqrt(2/n)``.
DCT-II diagonalises the discrete Laplacian with half-sample symmetric (reflecting) boundaries;
its eigenvalue for frequency index i is approximated by ``(pi i / n)^2``.
"""

from __future__ import annotations

import math

import torch


def dct_matrix(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix, shape [n, n] (rows are frequencies). Built in float64."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    matrix = torch.cos(math.pi * (2 * i[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(dtype)


def laplacian_eigenvalues(n: int) -> torch.Tensor:
    """``(pi i / n)^2`` for i = 0..n-1, float64, shape [n]: the heat-equation decay rates."""
    return (math.pi * torch.arange(n, dtype=torch.float64) / n) ** 2


def apply_separable(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left @ x @ right^T`` over the last two dims, always in the dtype of x (never autocast).

    x: [B, C, H, W]; left: [H, H] or [B, H, H]; right: [W, W] or [B, W, W]. Returns [B, C, H, W].
    Every operator's matrix product goes through here; under an enclosing ``torch.autocast`` a
    bf16 product would round away the difference between neighbouring levels, so autocast is
    switched off for it.
    """
    if left.dim() == 3:
        left = left[:, None]
    if right.dim() == 3:
        right = right[:, None]
    with torch.autocast(x.device.type, enabled=False):
        return left.to(x.dtype) @ x @ right.to(x.dtype).transpose(-1, -2)
