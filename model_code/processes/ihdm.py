"""Inverse heat dissipation (Rissanen et al. 2023), for any linear operator: the network predicts u_{k-1}."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import torch

from model_code.operators import Operator
from model_code.processes.base import PROCESSES, AncestralDenoiser, Net, Process, per_example_sum, randn_like
from model_code.randomness import RandomSource, as_randomness


@PROCESSES.register("ihdm")
class IHDMProcess(Process):
    """Inverse heat dissipation (and any linear operator): the network predicts u_{k-1} from u_k.

    Forward: u_k = A_k u_0 + sigma eps, levels drawn uniformly from 1..K inclusive.
    Network: mu(u_k, k) = u_k + f(u_k, k), trained against the noise-free A_{k-1} u_0 with the
    per-image sum of squared errors. Reverse: u_{k-1} = mu(u_k, k) + delta z for k > 1; the
    last step returns mu(u_1, 1). Data in [0, 1].
    """

    def __init__(self, *, operator: Operator, sigma: float, delta: Optional[float] = None):
        super().__init__(operator=operator)
        if sigma <= 0:
            raise ValueError(f"sigma (training noise) must be > 0, got {sigma}")
        delta = 1.25 * sigma if delta is None else delta
        if delta <= 0:
            raise ValueError(f"delta (sampling noise) must be > 0, got {delta}")
        self.sigma = float(sigma)
        self.delta = float(delta)

    def model_time(self, k: torch.Tensor) -> torch.Tensor:
        return k.float()

    def diffuse(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """u_k = A_k x0 + sigma eps. x0, eps [B, C, H, W], k [B]."""
        return self.operator(x0, k) + self.sigma * eps

    def denoiser(self, net: Net) -> "IHDMDenoiser":
        return IHDMDenoiser(self, net)

    def loss(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """sum_pixels (mu(u_k, k) - A_{k-1} x0)^2 with k ~ U{1..K}.

        x0 [B, C, H, W] -> (loss [B], t = k / K [B]).
        """
        k = as_randomness(randomness, x0.device).randint(1, self.K + 1, (x0.shape[0],))
        u = self.diffuse(x0, k, randn_like(x0, randomness))
        target = self.operator(x0, k - 1)
        return per_example_sum((self.denoiser(net).mean(u, k) - target) ** 2), k.float() / self.K

    def prior_component_std(self) -> float:
        """The kernel-density prior's bandwidth: delta."""
        return self.delta

    def forward_marginal_at_K(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """q(u_K | x0) = N(A_K x0, sigma^2 I): (mean, std)."""
        return self.prior_component(x0)[0], self.sigma

    def prior_component(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """The kernel-density prior's component for image x0: mean A_K x0, bandwidth delta."""
        k = torch.full((x0.shape[0],), self.K, device=x0.device, dtype=torch.long)
        return self.operator(x0, k), self.prior_component_std()

    def sampling_settings(self) -> Dict[str, Any]:
        """{'delta': the reverse-step noise std}."""
        return {"delta": self.delta}

    def sampling_levels(self, steps: Optional[int] = None) -> List[int]:
        """Every level K, ..., 1: the network predicts u_{k-1} from u_k, so no level can be skipped."""
        if steps not in (None, self.K):
            raise ValueError(
                f"steps={steps!r}: the ihdm process cannot skip levels (its network predicts u_(k-1) from u_k, "
                f"one level at a time); allowed: every level (leave the steps out, or {self.K} = K)"
            )
        return super().sampling_levels(steps)

    def elbo_terms(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Dict[str, torch.Tensor]:
        """Per-example ELBO terms in nats (D = C H W), x0 [B, C, H, W] (dequantised, in [0, 1]).

        transitions [B, K-1], column j for level k = j + 2:
            0.5 (|A_{k-1} x0 - mu(u_k, k)|^2 / delta^2 + 2 D log(delta / sigma) + D sigma^2 / delta^2 - D),
            the KL between q(u_{k-1} | x0) = N(A_{k-1} x0, sigma^2) and p(u_{k-1} | u_k) = N(mu, delta^2).
        reconstruction [B]: -log N(x0; mu(u_1, 1), delta^2) = 0.5 |x0 - mu|^2 / delta^2 + D log(delta sqrt(2 pi)).
        """
        dim, mean = x0[0].numel(), self.denoiser(net).mean
        sigma, delta = self.sigma, self.delta
        constant = 2 * dim * math.log(delta / sigma) + dim * sigma**2 / delta**2 - dim
        transitions = []
        for k in range(2, self.K + 1):
            levels = torch.full((x0.shape[0],), k, device=x0.device, dtype=torch.long)
            u = self.diffuse(x0, levels, randn_like(x0, randomness))
            error = per_example_sum((self.operator(x0, levels - 1) - mean(u, levels)) ** 2)
            transitions.append(0.5 * (error / delta**2 + constant))
        ones = torch.ones(x0.shape[0], device=x0.device, dtype=torch.long)
        u1 = self.diffuse(x0, ones, randn_like(x0, randomness))
        reconstruction = 0.5 * per_example_sum((x0 - mean(u1, ones)) ** 2) / delta**2
        reconstruction = reconstruction + dim * math.log(delta * math.sqrt(2 * math.pi))
        empty = torch.zeros(x0.shape[0], 0, device=x0.device)
        return {
            "transitions": torch.stack(transitions, dim=1) if transitions else empty,
            "reconstruction": reconstruction,
        }


class IHDMDenoiser(AncestralDenoiser):
    """The ihdm network as the samplers see it: mu(u_k, k) = u_k + f(u_k, k), the estimate of A_{k-1} u_0, and
    the reverse step u_{k-1} = mu(u_k, k) + delta z (k > 1), mu(u_1, 1) at k = 1. It steps one level at a time
    (the network predicts u_{k-1} from u_k), so only the ancestral sampler runs it."""

    def mean(self, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """mu(u_k, k) = u_k + f(u_k, k). u [B, C, H, W], k [B]."""
        return u + self.network(u, self.process.model_time(k))

    def _mean_at(self, u: torch.Tensor, k: float, k_next: float) -> torch.Tensor:
        if k_next != k - 1:
            raise ValueError(f"the ihdm process steps from level {k} to {k - 1} only, not to {k_next}")
        return self.mean(u, torch.full((u.shape[0],), k, device=u.device, dtype=torch.float32))

    def ancestral_step(self, u: torch.Tensor, k: float, k_next: float, noise: torch.Tensor) -> torch.Tensor:
        """u_{k-1} = mu(u_k, k) + delta noise (k > 1), mu(u_1, 1) at k = 1; k_next must be k - 1."""
        mean = self._mean_at(u, k, k_next)
        return mean + self.process.delta * noise if k > 1 else mean

    def ancestral_step_noise(self, u: torch.Tensor, k: float, k_next: float, u_next: torch.Tensor) -> torch.Tensor:
        """noise = (u_{k-1} - mu(u_k, k)) / delta (k > 1)."""
        return (u_next - self._mean_at(u, k, k_next)) / self.process.delta
