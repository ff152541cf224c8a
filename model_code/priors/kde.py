"""The paper's prior: a Gaussian kernel density over the training images taken to level K."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch

from model_code.priors.base import PRIORS, LoadData, Prior, prior_component_means, randn_per_generator


@PRIORS.register("kde")
class KernelDensityPrior(Prior):
    """Kernel density over the training set taken to level K (Rissanen et al. 2023, Sec. 3).

    ``chunk_size`` bounds the components held at once by ``kl_bound``.
    """

    library_only = ("chunk_size",)

    def __init__(self, *, process, load_data: Optional[LoadData] = None, chunk_size: int = 1024):
        super().__init__(process=process, load_data=load_data)
        self.chunk_size = chunk_size

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = m_n + T s eps, with n ~ U{0..N-1} and eps from generator i. Returns [len(generators), *shape]."""
        num_items, fetch = self.data()
        indices = torch.stack([torch.randint(num_items, (), generator=g) for g in generators])
        mean, std = self.process.prior_component(fetch(indices).to(device))
        return mean + temperature * std * randn_per_generator(generators, shape, device)

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """Upper bound of KL(q || p(u_K)) for q = N(q_mean, sigma^2 I), sigma = q_std, in nats: [B, C, H, W] -> [B].

        With KL_n the closed-form KL from q to component n (mean m_n, bandwidth delta, D = C H W),
            KL_n = 0.5 (D sigma^2/delta^2 + |q_mean - m_n|^2/delta^2 - D + 2 D log(delta/sigma)),
        convexity of -log gives KL(q || 1/N sum_n p_n) <= log N - logsumexp_n(-KL_n).
        The N components are streamed in chunks, so no [B, N] matrix is held at once.
        """
        sigma, delta = q_std, self.process.prior_component_std()
        dim = q_mean[0].numel()
        constant = dim * sigma**2 / delta**2 - dim + 2 * dim * math.log(delta / sigma)
        return (math.log(self.data()[0]) - self._logsumexp_over_components(q_mean, delta, constant)).float()

    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u) = logsumexp_n(-|u - m_n|^2 / (2 delta^2)) - log N - (D / 2) log(2 pi delta^2), the mixture's
        density. u [B, C, H, W] -> [B]."""
        delta, dim = self.process.prior_component_std(), u[0].numel()
        normaliser = math.log(self.data()[0]) + 0.5 * dim * math.log(2 * math.pi * delta**2)
        return (self._logsumexp_over_components(u, delta, 0.0) - normaliser).float()

    def _logsumexp_over_components(self, points: torch.Tensor, delta: float, constant: float) -> torch.Tensor:
        """logsumexp_n(-0.5 (|p - m_n|^2 / delta^2 + constant)) per point p [B, C, H, W] -> [B] (float64), the N
        components m_n streamed in chunks of ``chunk_size``."""
        flat = points.flatten(1).double()
        num_items, fetch = self.data()
        running = torch.full((points.shape[0],), -float("inf"), dtype=torch.float64, device=points.device)
        for components in prior_component_means(self.process, num_items, fetch, points.device, self.chunk_size):
            components = components.flatten(1).double()
            distances = (
                flat.pow(2).sum(1, keepdim=True) + components.pow(2).sum(1)[None] - 2 * flat @ components.T
            ).clamp_min(0)
            running = torch.logaddexp(running, torch.logsumexp(-0.5 * (distances / delta**2 + constant), dim=1))
        return running
