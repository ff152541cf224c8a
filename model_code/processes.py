"""Processes: a forward operator composed with a training objective and a reverse step.

A process owns the semantics of its method, so the trainer, sampler and evaluator call the
same methods on every process and never branch on which one it is:

- ``data_range``: the interval the process expects its data in.
- ``loss(net, x0, generator) -> ([B], [B])``: per-example training loss and the level t in [0, 1]
  each example was trained at (for logging the loss by level).
- ``model_time(...)``: what the network sees as its time input.
- ``sampling_levels()``: the levels K, K-1, ..., 1 the sampler steps through.
- ``terminal(x0) -> (mean, std)``: the marginal of u_K given x0 (priors are built on it).
- ``reverse_step(net, u, k, noise) -> u_{k-1}``: one ancestral step; stateless, the caller
  passes the standard normal ``noise`` so it controls seeds and noise sharing.
- ``elbo_terms(net, x0, prior, generator)``: the per-example ELBO breakdown, where defined.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from model_code.operators import DiagonalOperator, Operator
from model_code.registry import Registry

PROCESSES = Registry("process")

Net = nn.Module


def _per_example_sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


class Process(nn.Module):
    """Base class holding the operator (and so its buffers) and the number of levels K."""

    data_range: Tuple[float, float] = (0.0, 1.0)

    def __init__(self, *, operator: Operator):
        super().__init__()
        self.operator = operator
        self.K = operator.K

    def sampling_levels(self) -> List[int]:
        return list(range(self.K, 0, -1))

    def elbo_terms(self, net: Net, x0: torch.Tensor, prior, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"the {self.build_spec['name']!r} process does not define ELBO terms yet")


def _randn_like(x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


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

    def denoise(self, net: Net, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """mu(u_k, k) = u_k + f(u_k, k): the estimate of A_{k-1} u_0. u [B, C, H, W], k [B]."""
        return u + net(u, self.model_time(k)).to(u.dtype)

    def loss(self, net: Net, x0: torch.Tensor, generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """sum_pixels (mu(u_k, k) - A_{k-1} x0)^2 with k ~ U{1..K}.

        x0 [B, C, H, W] -> (loss [B], t = k / K [B]).
        """
        k = torch.randint(1, self.K + 1, (x0.shape[0],), device=x0.device, generator=generator)
        u = self.operator(x0, k) + self.sigma * _randn_like(x0, generator)
        target = self.operator(x0, k - 1)
        return _per_example_sum((self.denoise(net, u, k) - target) ** 2), k.float() / self.K

    def terminal_std(self) -> float:
        """The kernel-density prior's bandwidth: delta."""
        return self.delta

    def terminal(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """The kernel-density prior's component for image x0: mean A_K x0, bandwidth delta."""
        k = torch.full((x0.shape[0],), self.K, device=x0.device, dtype=torch.long)
        return self.operator(x0, k), self.terminal_std()

    def reverse_step(self, net: Net, u: torch.Tensor, k: int, noise: torch.Tensor) -> torch.Tensor:
        """u_{k-1} = mu(u_k, k) + delta noise (k > 1), mu(u_1, 1) at k = 1."""
        levels = torch.full((u.shape[0],), k, device=u.device, dtype=torch.long)
        mean = self.denoise(net, u, levels)
        return mean + self.delta * noise if k > 1 else mean

    def elbo_terms(self, net: Net, x0: torch.Tensor, prior, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Per-example ELBO terms in nats (D = C H W), x0 [B, C, H, W] (dequantised, in [0, 1]).

        prior [B]: variational bound of KL(q(u_K | x0) || p(u_K)) from ``prior.kl_bound``.
        transitions [B, K-1], column j for level k = j + 2:
            0.5 (|A_{k-1} x0 - mu(u_k, k)|^2 / delta^2 + 2 D log(delta / sigma) + D sigma^2 / delta^2 - D),
            the KL between q(u_{k-1} | x0) = N(A_{k-1} x0, sigma^2) and p(u_{k-1} | u_k) = N(mu, delta^2).
        reconstruction [B]: -log N(x0; mu(u_1, 1), delta^2) = 0.5 |x0 - mu|^2 / delta^2 + D log(delta sqrt(2 pi)).
        """
        dim = x0[0].numel()
        sigma, delta = self.sigma, self.delta
        constant = 2 * dim * math.log(delta / sigma) + dim * sigma**2 / delta**2 - dim
        transitions = []
        for k in range(2, self.K + 1):
            levels = torch.full((x0.shape[0],), k, device=x0.device, dtype=torch.long)
            u = self.operator(x0, levels) + sigma * _randn_like(x0, generator)
            error = _per_example_sum((self.operator(x0, levels - 1) - self.denoise(net, u, levels)) ** 2)
            transitions.append(0.5 * (error / delta**2 + constant))
        ones = torch.ones(x0.shape[0], device=x0.device, dtype=torch.long)
        u1 = self.operator(x0, ones) + sigma * _randn_like(x0, generator)
        reconstruction = 0.5 * _per_example_sum((x0 - self.denoise(net, u1, ones)) ** 2) / delta**2
        reconstruction = reconstruction + dim * math.log(delta * math.sqrt(2 * math.pi))
        empty = torch.zeros(x0.shape[0], 0, device=x0.device)
        return {
            "prior": prior.kl_bound(x0, self, generator),
            "transitions": torch.stack(transitions, dim=1) if transitions else empty,
            "reconstruction": reconstruction,
        }
