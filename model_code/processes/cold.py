"""Cold Diffusion (Bansal et al. 2022): a restoration network inverts a deterministic degradation, any operator."""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import torch

from model_code.operators import Operator
from model_code.processes.base import PROCESSES, Denoiser, Net, Process
from model_code.randomness import RandomSource, as_randomness

LOSS_NORMS = ("l1", "l2")


@PROCESSES.register("cold")
class ColdProcess(Process):
    """Cold Diffusion over any linear operator: the network R(u_k, k) predicts x0 from u_k = A_k x0.

    Forward: u_k = A_k x0, no noise, levels k ~ U{1..K}. Training: the per-example mean of |R(u_k, k) - x0|
    (``loss_norm`` l1, Cold's default) or of its square (l2). Sampling: Cold's Algorithm 1 (``cold_default``:
    u_{k-1} = A_{k-1} x0_hat) or Algorithm 2 (``x0_step_down``, the default: u_{k-1} = u_k - A_k x0_hat +
    A_{k-1} x0_hat), from a prior over u_K whose components are A_K x0 + ``prior_noise`` eps (Cold's noise,
    which breaks the symmetry of a fully degraded state). Data in [-1, 1], as Cold's.
    """

    data_range = (-1.0, 1.0)
    default_sampler = "x0_step_down"

    def __init__(self, *, operator: Operator, loss_norm: str = "l1", prior_noise: float = 0.002):
        super().__init__(operator=operator)
        if loss_norm not in LOSS_NORMS:
            raise ValueError(f"loss_norm={loss_norm!r}; allowed: {', '.join(LOSS_NORMS)}")
        if not (math.isfinite(prior_noise) and prior_noise > 0):
            raise ValueError(f"prior_noise={prior_noise}: a finite number > 0 (the prior components' std)")
        self.loss_norm = loss_norm
        self.prior_noise = float(prior_noise)

    def model_time(self, k: torch.Tensor) -> torch.Tensor:
        return k.float()

    def diffuse(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """u_k = A_k x0 (no noise: ``eps`` is not used). x0 [B, C, H, W], k [B]."""
        return self.operator(x0, k)

    def denoiser(self, net: Net) -> "ColdDenoiser":
        return ColdDenoiser(self, net)

    def loss(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """mean_pixels |R(A_k x0, k) - x0|^p, p = 1 (l1) or 2 (l2), k ~ U{1..K}.

        x0 [B, C, H, W] -> (loss [B], t = k / K [B])."""
        k = as_randomness(randomness, x0.device).randint(1, self.K + 1, (x0.shape[0],))
        error = self.denoiser(net).x0(self.operator(x0, k), k) - x0
        error = error.abs() if self.loss_norm == "l1" else error.square()
        return error.flatten(1).mean(1), k.float() / self.K

    def prior_component(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """(A_K x0, prior_noise): the fully degraded image and the noise that breaks its symmetry."""
        k = torch.full((x0.shape[0],), self.K, device=x0.device, dtype=torch.long)
        return self.operator(x0, k), self.prior_component_std()

    def prior_component_std(self) -> float:
        return self.prior_noise

    def forward_marginal_at_K(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """q(u_K | x0) is the point A_K x0 (std 0): the forward process has no noise."""
        return self.prior_component(x0)[0], 0.0

    def sampling_settings(self) -> Dict[str, Any]:
        """{'prior_noise': the prior components' std}."""
        return {"prior_noise": self.prior_noise}

    def elbo_terms(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Dict[str, torch.Tensor]:
        raise ValueError(
            "the cold process has no likelihood (its forward process is deterministic, so there is no ELBO); "
            "allowed for it: the FID of its samples and the restoration metrics"
        )


class ColdDenoiser(Denoiser):
    """The cold network as the samplers see it ("restoration"): ``x0(u, k)``, the network's estimate of x0 from
    u_k (one evaluation), and ``degrade(x, k)`` = A_k x, the operator at level k (A_0 = I)."""

    provides = ("restoration",)

    def x0(self, u: torch.Tensor, k) -> torch.Tensor:
        """x0_hat = R(u_k, k) [B, C, H, W]; k a level (a number, or [B])."""
        levels = k if torch.is_tensor(k) else torch.full((u.shape[0],), int(k), device=u.device, dtype=torch.long)
        return self.network(u, self.process.model_time(levels))

    def degrade(self, x: torch.Tensor, k) -> torch.Tensor:
        """A_k x [B, C, H, W] at level k (a number)."""
        return self.process.operator(x, torch.full((x.shape[0],), int(k), device=x.device, dtype=torch.long))
