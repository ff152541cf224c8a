"""Heat dissipation (IHDM): a Gaussian blur with reflecting boundaries, diagonal in the DCT basis."""

from __future__ import annotations

import math

import torch

from model_code.dct import apply_separable, dct_matrix, laplacian_eigenvalues
from model_code.operators.base import OPERATORS, DCTOperator, ImageSize, check_positive_int


def heat_blur_schedule(K: int, blur_sigma_min: float, blur_sigma_max: float) -> torch.Tensor:
    """sigma_B,k for k = 0..K, float64 [K+1]: 0 at k = 0, then log-spaced min..max over 1..K."""
    check_positive_int("K", K)
    if not 0 < blur_sigma_min <= blur_sigma_max:
        raise ValueError(f"need 0 < blur_sigma_min <= blur_sigma_max, got {blur_sigma_min} and {blur_sigma_max}")
    log_sigmas = torch.linspace(math.log(blur_sigma_min), math.log(blur_sigma_max), K, dtype=torch.float64)
    return torch.cat([torch.zeros(1, dtype=torch.float64), log_sigmas.exp()])


@OPERATORS.register("heat")
class HeatOperator(DCTOperator):
    """Heat dissipation (IHDM): d_k = exp(-lambda tau_k), tau_k = sigma_B,k^2 / 2.

    This is a Gaussian blur of std sigma_B,k with reflecting boundaries. The schedule is
    log-spaced from blur_sigma_min (k = 1) to blur_sigma_max (k = K), sigma_B,0 = 0.
    The heat kernel is separable, so ``forward`` applies A_k = M_H(k) x M_W(k)^T with per-level
    blur matrices M(k) = C^T diag(exp(-lambda tau_k)) C precomputed once (two matrix products); from
    ``blur_by_fft_from`` pixels, where FFTs are faster (and the [K+1, n, n] matrices large), it applies
    C^T diag(d_k) C by ``to_basis`` and ``from_basis``.
    """

    # a DCT, its inverse and a product beat the two per-level products from 512 x 512 (python -m
    # scripts.benchmark_blur, one thread of the project's AMD EPYC)
    blur_by_fft_from = 512 * 512

    def __init__(self, *, image_size: ImageSize, K: int, blur_sigma_min: float, blur_sigma_max: float):
        super().__init__(image_size=image_size, K=K)
        tau = heat_blur_schedule(K, blur_sigma_min, blur_sigma_max) ** 2 / 2
        self.register_buffer("blur_sigmas", tau.mul(2).sqrt().float(), persistent=False)
        decay_h = torch.exp(-tau[:, None] * laplacian_eigenvalues(self.height)[None, :])  # [K+1, H]
        decay_w = torch.exp(-tau[:, None] * laplacian_eigenvalues(self.width)[None, :])  # [K+1, W]
        self.register_buffer("decay_h", decay_h.float(), persistent=False)
        self.register_buffer("decay_w", decay_w.float(), persistent=False)
        self.blur_by_fft = self.height * self.width >= self.blur_by_fft_from
        if not self.blur_by_fft:
            self.register_buffer("blur_h", _blur_matrices(decay_h), persistent=False)
            self.register_buffer("blur_w", _blur_matrices(decay_w), persistent=False)

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        return (self.decay_h[k][:, :, None] * self.decay_w[k][:, None, :])[:, None]

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if self.blur_by_fft:
            return super().forward(x, k)
        k = self.check_levels(k)
        return apply_separable(x, self.blur_h[k], self.blur_w[k])


def _blur_matrices(decay: torch.Tensor) -> torch.Tensor:
    """M(k) = C^T diag(decay[k]) C for every level; decay [L, n] float64 -> float32 [L, n, n]."""
    dct = dct_matrix(decay.shape[1], torch.float64)
    return torch.einsum("fi,lf,fj->lij", dct, decay, dct).float()
