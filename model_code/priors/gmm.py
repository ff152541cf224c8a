"""Cold Diffusion's prior for a blur: a Gaussian mixture over the channel means of the fully degraded images."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch

from model_code.operators.base import check_positive_int
from model_code.priors.base import PRIORS, LoadData, Prior, prior_component_means, randn_per_generator

EM_ITERATIONS = 200
COVARIANCE_FLOOR = 1e-6  # added to each component's covariance: a cluster of equal means stays a density


@PRIORS.register("gmm")
class ChannelMeanMixturePrior(Prior):
    """u_K = m 1 + s eps: m [C] from a J-component Gaussian mixture fitted to the channel means of the training
    images at level K, spread over every pixel, and s eps the process's component noise (Cold Diffusion's
    ``gmm_cluster`` and ``noise``; it suits operators whose level K is nearly constant per channel, such as a
    blur at large K). Buffers ``weights`` [J], ``means`` [J, C], ``scale_tril`` [J, C, C], saved in checkpoints.

    Densities split u [C, H, W] into its channel means a = sqrt(HW) mean_hw(u) (coordinates along the C unit
    constant images) and the rest r (the (HW - 1) C orthogonal directions): a ~ sum_j w_j N(sqrt(HW) mu_j,
    HW Sigma_j + s^2 I) and r ~ N(0, s^2 I), independently.
    """

    def __init__(self, *, process, shape: Sequence[int], gmm_components: int, load_data: Optional[LoadData] = None):
        super().__init__(process=process, load_data=load_data)
        check_positive_int("gmm_components", gmm_components)
        channels = shape[0]
        self.register_buffer("weights", torch.zeros(gmm_components))
        self.register_buffer("means", torch.zeros(gmm_components, channels))
        self.register_buffer("scale_tril", torch.zeros(gmm_components, channels, channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, device) -> None:
        """EM (``fit_mixture``) on the channel means [N, C] of A_K x_n over the training set (float64)."""
        num_items, fetch = self.data()
        points = torch.cat(
            [m.double().mean((2, 3)) for m in prior_component_means(self.process, num_items, fetch, device)]
        )
        if len(points) < len(self.weights):
            raise ValueError(f"gmm_components={len(self.weights)} exceeds the {len(points)} training images")
        weights, means, covariances = fit_mixture(points, len(self.weights))
        self.weights.copy_(weights.float())
        self.means.copy_(means.float())
        self.scale_tril.copy_(torch.linalg.cholesky(covariances).float())
        self.fitted.fill_(True)

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = (mu_j + T L_j z) 1 + T s eps, j ~ w, z and eps standard normal, all from generator i.

        Returns [len(generators), *shape]."""
        if not bool(self.fitted):
            raise ValueError("the gmm prior has not been fitted (it is fitted when training starts)")
        components = torch.stack([torch.multinomial(self.weights.cpu(), 1, generator=g)[0] for g in generators])
        components = components.to(self.weights.device)
        z = randn_per_generator(generators, self.means.shape[1:], device)
        eps = randn_per_generator(generators, shape, device)
        means = self.means[components] + temperature * torch.einsum("ncd,nd->nc", self.scale_tril[components], z)
        return means[:, :, None, None] + temperature * self.process.prior_component_std() * eps

    def _split(self, u: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(a [B, C] = sqrt(HW) channel means, |r|^2 [B]) of u [B, C, H, W] (float64)."""
        u = u.double()
        pixels = u.shape[2] * u.shape[3]
        means = u.mean((2, 3))
        rest = (u - means[:, :, None, None]).pow(2).flatten(1).sum(1)
        return math.sqrt(pixels) * means, rest

    def _mean_coordinates(self, pixels: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(HW) mu_j [J, C], the Cholesky factor of HW Sigma_j + s^2 I [J, C, C]), float64."""
        tril = self.scale_tril.double()
        eye = torch.eye(tril.shape[-1], dtype=torch.float64, device=tril.device)
        covariance = pixels * tril @ tril.transpose(-1, -2) + self.process.prior_component_std() ** 2 * eye
        return math.sqrt(pixels) * self.means.double(), torch.linalg.cholesky(covariance)

    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u) = log sum_j w_j N(a; sqrt(HW) mu_j, HW Sigma_j + s^2 I) + log N(r; 0, s^2 I).

        u [B, C, H, W] -> [B]."""
        channels, pixels, s = u.shape[1], u.shape[2] * u.shape[3], self.process.prior_component_std()
        a, rest = self._split(u)
        centres, chol = self._mean_coordinates(pixels)
        log_mixture = torch.logsumexp(self.weights.double().log() + gaussian_log_density(a, centres, chol), dim=1)
        rest_dim = (pixels - 1) * channels
        return (log_mixture - 0.5 * rest / s**2 - 0.5 * rest_dim * math.log(2 * math.pi * s**2)).float()

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(q || p) <= -log sum_j w_j exp(-KL_j) (convexity of -log), KL_j the closed-form KL from q =
        N(q_mean, q_std^2 I) to component j, the sum of the mean coordinates' and the rest's Gaussian KLs.
        q_mean [B, C, H, W] -> [B]."""
        channels, pixels, s, q = (
            q_mean.shape[1],
            q_mean.shape[2] * q_mean.shape[3],
            self.process.prior_component_std(),
            q_std,
        )
        a, rest = self._split(q_mean)
        centres, chol = self._mean_coordinates(pixels)
        inverse = torch.cholesky_inverse(chol)  # [J, C, C]
        difference = centres[None] - a[:, None]  # [B, J, C]
        mahalanobis = torch.einsum("bjc,jcd,bjd->bj", difference, inverse, difference)
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # [J]
        trace = inverse.diagonal(dim1=-2, dim2=-1).sum(-1)  # [J]
        kl_means = 0.5 * (q**2 * trace + mahalanobis - channels + log_det - channels * math.log(q**2))
        rest_dim = (pixels - 1) * channels
        kl_rest = 0.5 * (rest_dim * (q**2 / s**2 - 1 - math.log(q**2 / s**2)) + rest / s**2)
        log_weights = self.weights.double().log()
        return (-torch.logsumexp(log_weights - kl_means, dim=1) + kl_rest).float()


def gaussian_log_density(points: torch.Tensor, means: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """log N(x_b; mu_j, L_j L_j^T) for points [B, C], means [J, C], Cholesky factors [J, C, C] -> [B, J]."""
    difference = (points[:, None] - means[None]).unsqueeze(-1)  # [B, J, C, 1]
    whitened = torch.linalg.solve_triangular(chol[None], difference, upper=False).squeeze(-1)
    log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * (whitened.pow(2).sum(-1) + log_det + points.shape[1] * math.log(2 * math.pi))


def fit_mixture(points: torch.Tensor, components: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximum-likelihood Gaussian mixture by EM: points [N, C] float64 -> (weights [J], means [J, C], covariances
    [J, C, C]). Deterministic: the means start at the points of the J evenly spaced quantiles along the first
    principal axis, every covariance at the data's; each covariance gets COVARIANCE_FLOOR I."""
    count, channels = points.shape
    eye = COVARIANCE_FLOOR * torch.eye(channels, dtype=points.dtype, device=points.device)
    centred = points - points.mean(0)
    axis = torch.linalg.eigh(centred.T @ centred)[1][:, -1]
    order = torch.argsort(centred @ axis)
    quantiles = order[((torch.arange(components) + 0.5) * count / components).long()]
    means = points[quantiles].clone()
    covariances = (centred.T @ centred / count + eye).expand(components, channels, channels).clone()
    weights = torch.full((components,), 1.0 / components, dtype=points.dtype, device=points.device)
    for _ in range(EM_ITERATIONS):
        log_joint = weights.log() + gaussian_log_density(points, means, torch.linalg.cholesky(covariances))
        responsibilities = torch.softmax(log_joint, dim=1)  # [N, J]
        mass = responsibilities.sum(0).clamp_min(1e-12)
        weights = mass / count
        means = responsibilities.T @ points / mass[:, None]
        offsets = points[None] - means[:, None]  # [J, N, C]
        covariances = torch.einsum("nj,jnc,jnd->jcd", responsibilities, offsets, offsets) / mass[:, None, None] + eye
    return weights, means, covariances
