"""A Gaussian fitted to the prior components in the operator's orthonormal basis, stored in the checkpoint."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch

from model_code.priors.base import PRIORS, LoadData, Prior, prior_component_means, randn_per_generator


@PRIORS.register("fitted_gaussian")
class FittedGaussianPrior(Prior):
    """u_K = B^T c + s eps with c ~ N(mean, Sigma) fitted to the basis coefficients c_n = B m_n.

    For heat dissipation only the low frequencies survive at level K; their mean and C x C colour
    covariance (per coefficient) are all that is stored: buffers ``mean`` [C, H, W] and
    ``scale_tril`` [H, W, C, C] (Cholesky factor of Sigma), saved in checkpoints.
    """

    def __init__(self, *, process, shape: Sequence[int], load_data: Optional[LoadData] = None):
        super().__init__(process=process, load_data=load_data)
        operator = process.operator
        if not operator.diagonal:
            raise ValueError(
                f"the fitted_gaussian prior needs an operator with an orthonormal basis; {operator.name!r} has none "
                "(use prior=kde)"
            )
        channels, height, width = shape
        self.register_buffer("mean", torch.zeros(channels, height, width))
        self.register_buffer("scale_tril", torch.zeros(height, width, channels, channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, device) -> None:
        """Mean and per-coefficient channel covariance of B m_n over the training set (float64 sums)."""
        num_items, fetch = self.data()
        total = outer = None
        for means in prior_component_means(self.process, num_items, fetch, device):
            coefficients = self.process.operator.to_basis(means).double().permute(0, 2, 3, 1)  # [n, H, W, C]
            chunk_total = coefficients.sum(0)
            chunk_outer = torch.einsum("nhwc,nhwd->hwcd", coefficients, coefficients)
            total = chunk_total if total is None else total + chunk_total
            outer = chunk_outer if outer is None else outer + chunk_outer
        mean = total / num_items
        covariance = outer / num_items - torch.einsum("hwc,hwd->hwcd", mean, mean)
        jitter = 1e-10 * torch.eye(covariance.shape[-1], dtype=torch.float64, device=covariance.device)
        self.mean.copy_(mean.permute(2, 0, 1).float())
        self.scale_tril.copy_(torch.linalg.cholesky(covariance + jitter).float())
        self.fitted.fill_(True)

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = B^T(mean + T L z) + T s eps. Returns [len(generators), *shape]."""
        if not bool(self.fitted):
            raise ValueError("the fitted_gaussian prior has not been fitted (it is fitted when training starts)")
        z = randn_per_generator(generators, shape, device)
        eps = randn_per_generator(generators, shape, device)
        correlated = torch.einsum("hwcd,nhwd->nhwc", self.scale_tril, z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        coefficients = self.mean + temperature * correlated
        return self.process.operator.from_basis(coefficients) + temperature * self.process.prior_component_std() * eps

    def _coefficient_cholesky(self) -> torch.Tensor:
        """The Cholesky factor [H, W, C, C] (float64) of S = Sigma + s^2 I_C, each coefficient's covariance."""
        eye = torch.eye(self.scale_tril.shape[-1], dtype=torch.float64, device=self.scale_tril.device)
        tril = self.scale_tril.double()
        return torch.linalg.cholesky(tril @ tril.transpose(-1, -2) + self.process.prior_component_std() ** 2 * eye)

    def _whitened(self, chol: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """L^-1 (B u - mean) per coefficient, [B, H, W, C], for S = L L^T; u [B, C, H, W] in pixels."""
        difference = (self.process.operator.to_basis(u).double() - self.mean.double()).permute(0, 2, 3, 1)
        return torch.linalg.solve_triangular(chol, difference.unsqueeze(-1), upper=False).squeeze(-1)

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(q || p), exact: per coefficient, q = N(B m, s_q^2 I_C) and p = N(mean, S), S = Sigma + s^2 I_C:
        0.5 (s_q^2 tr S^-1 + (mean - B m)^T S^-1 (mean - B m) - C + log det S - C log s_q^2).
        m = q_mean [B, C, H, W], s_q = q_std -> [B]."""
        std_q, chol = q_std, self._coefficient_cholesky()
        whitened = self._whitened(chol, q_mean)
        trace = torch.cholesky_inverse(chol).diagonal(dim1=-2, dim2=-1).sum()
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum()
        dim = q_mean[0].numel()
        return (
            0.5 * (std_q**2 * trace + whitened.pow(2).flatten(1).sum(1) - dim + log_det - 2 * dim * math.log(std_q))
        ).float()

    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u) = sum over coefficients of log N(B u; mean, S), S = Sigma + s^2 I_C (the basis is orthonormal,
        so densities in pixels and in the basis agree). u [B, C, H, W] -> [B]."""
        chol = self._coefficient_cholesky()
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum()
        squared = self._whitened(chol, u).pow(2).flatten(1).sum(1)
        return (-0.5 * (squared + log_det + u[0].numel() * math.log(2 * math.pi))).float()
