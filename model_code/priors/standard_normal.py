"""N(0, s^2 I): DDPM's prior, where the components' means are close to 0."""

from __future__ import annotations

import math
from typing import List, Sequence

import torch

from model_code.priors.base import PRIORS, Prior, randn_per_generator


@PRIORS.register("standard_normal")
class StandardNormalPrior(Prior):
    """u_K ~ N(0, s^2 I) with s the process's prior-component standard deviation."""

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = T s eps. Returns [len(generators), *shape]."""
        return temperature * self.process.prior_component_std() * randn_per_generator(generators, shape, device)

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(N(m, s_q^2 I) || N(0, s^2 I)) = 0.5 (D s_q^2/s^2 + |m|^2/s^2 - D + 2 D log(s/s_q)), exact.
        m = q_mean [B, C, H, W], s_q = q_std -> [B]."""
        std_q, std, dim = q_std, self.process.prior_component_std(), q_mean[0].numel()
        squared = q_mean.flatten(1).double().pow(2).sum(1)
        return (0.5 * (dim * std_q**2 / std**2 + squared / std**2 - dim + 2 * dim * math.log(std / std_q))).float()

    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """log N(u; 0, s^2 I) = -|u|^2 / (2 s^2) - (D / 2) log(2 pi s^2). u [B, C, H, W] -> [B]."""
        std, dim = self.process.prior_component_std(), u[0].numel()
        squared = u.flatten(1).double().pow(2).sum(1)
        return (-0.5 * squared / std**2 - 0.5 * dim * math.log(2 * math.pi * std**2)).float()
