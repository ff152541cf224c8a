"""hflow (Timonen, Aittala & Lehtinen 2023): conditional normalizing flows over a Haar pyramid, exact likelihood.

Levels (``haar_pyramid`` operator): u_k = A_k x0 is the image at resolution k of the pyramid shown at full size
(k = 0..K-1); u_K ~ N(0, I) whatever the image (A_K = 0: nothing of it is left), so q(u_K | x0) = p(u_K) and the
ELBO's prior term is 0. The reverse step k -> k-1 draws level j = k-1 of the network (``HFlowNetwork``): the
coarsest image from its latent at k = K (u_K is not read), then at each finer level the detail from its latent,
conditioned on the image at level k. Latents z_j ~ N(0, s_j^2 I) (s_j = ``hflow_prior_stds[j]``); the step noise
holds them, level j's in its own entries of the flattened [B, C, H, W] noise (``haar.latent_sizes``: the coarsest
level's first), so a step's noise is s_j^-1 z_j. The likelihood is exact:

    -log p(x) = sum_j nll_j,   nll_j = |z_j|^2 / (2 s_j^2) + (n_j / 2) log(2 pi s_j^2) - log|det dz_j / d detail_j|

in nats of the density of x in ``data_range``. Training minimises sum_j w_j nll_j / D (w_j = ``hflow_loss_weights``,
D = C H W), with Gaussian noise of std ``hflow_noise_std`` added to the (dequantised) images; the ELBO terms are
the unweighted nll_j, exact, so the ELBO is log p(x).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from model_code import haar
from model_code.operators import Operator
from model_code.processes.base import PROCESSES, AncestralDenoiser, Net, Process
from model_code.randomness import RandomSource, as_randomness


def per_level_numbers(name: str, values: Sequence[float], levels: int, low_open: bool) -> Tuple[float, ...]:
    """One finite number per level, > 0 (``low_open``) or >= 0; a single one is used for every level."""
    values = tuple(float(v) for v in values)
    values = values * levels if len(values) == 1 else values
    bound = "> 0" if low_open else ">= 0"
    good = all(math.isfinite(v) and (v > 0 if low_open else v >= 0) for v in values)
    if len(values) != levels or not good:
        raise ValueError(f"{name}={values}: one finite number {bound} per resolution ({levels}), or a single one")
    return values


@PROCESSES.register("hflow")
class HFlowProcess(Process):
    """hflow as a process (module docstring); its operator is ``haar_pyramid``, its network ``hflow``."""

    data_range = (-0.5, 0.5)
    default_sampler = "flow_inverse"
    float32_network = True  # bf16 would break the exact inverse and log-determinants

    def __init__(
        self,
        *,
        operator: Operator,
        hflow_prior_stds: Sequence[float] = (1.0,),
        hflow_loss_weights: Sequence[float] = (1.0,),
        hflow_noise_std: float = 0.0,
    ):
        super().__init__(operator=operator)
        if not hasattr(operator, "level_image"):
            raise ValueError(f"the hflow process takes the haar_pyramid operator, got {operator.name!r}")
        self.prior_stds = per_level_numbers("hflow_prior_stds", hflow_prior_stds, self.K, low_open=True)
        self.loss_weights = per_level_numbers("hflow_loss_weights", hflow_loss_weights, self.K, low_open=False)
        if not (math.isfinite(hflow_noise_std) and hflow_noise_std >= 0):
            raise ValueError(f"hflow_noise_std={hflow_noise_std}: a finite number >= 0 (training noise std)")
        self.noise_std = float(hflow_noise_std)

    def latent_sizes(self, channels: int) -> List[int]:
        """n_j, the latent entries of level j = 0..K-1 (``haar.latent_sizes``)."""
        return haar.latent_sizes(channels, self.operator.sizes)

    def latent_slice(self, channels: int, j: int) -> slice:
        """Where level j's latent lies in a flattened [B, C, H, W] latent: the coarsest level's first."""
        sizes = self.latent_sizes(channels)
        start = sum(sizes[j + 1 :])
        return slice(start, start + sizes[j])

    def level_nll(self, z: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
        """nll_j [B, K] (nats) of latents z [B, C, H, W] and log-determinants [B, K] (module docstring)."""
        flat, columns = z.flatten(1), []
        for j, std in enumerate(self.prior_stds):
            part = flat[:, self.latent_slice(z.shape[1], j)]
            columns.append(0.5 * part.pow(2).sum(1) / std**2 + 0.5 * part.shape[1] * math.log(2 * math.pi * std**2))
        return torch.stack(columns, dim=1) - logdet

    def nll(self, net: Net, x0: torch.Tensor) -> torch.Tensor:
        """-log p(x0) per level, nats [B, K]: one pass of the flow network."""
        z, logdet = net(x0, torch.zeros(x0.shape[0], device=x0.device))
        return self.level_nll(z, logdet)

    def loss(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """sum_j w_j nll_j(x0 + noise_std eps) / D [B], and t = 1 [B] (every example trains every level 1..K)."""
        if self.noise_std:
            x0 = x0 + self.noise_std * as_randomness(randomness, x0.device).randn(x0.shape, dtype=x0.dtype)
        weights = torch.tensor(self.loss_weights, device=x0.device)
        loss = (self.nll(net, x0) * weights).sum(1) / x0[0].numel()
        return loss, torch.ones(x0.shape[0], device=x0.device)

    def discrete_bits(self, nats: torch.Tensor, dims) -> torch.Tensor:
        """8-bit discrete bits per dimension of ``nats`` over ``dims`` dimensions: nats / (dims ln 2) + log2(256 /
        width of the data range), the bound of uniformly dequantised 8-bit data."""
        return nats / (dims * math.log(2)) + math.log2(256 / (self.data_range[1] - self.data_range[0]))

    def training_scalars(self, net: Net, x0: torch.Tensor) -> Dict[str, torch.Tensor]:
        """{'bits_per_dim/level_j_HxW': the batch's discrete bits/dim of level j's n_j dimensions (unweighted),
        'bits_per_dim/total': of the image's D}."""
        nll = self.nll(net, x0).mean(0)
        sizes = self.latent_sizes(x0.shape[1])
        scalars = {
            f"bits_per_dim/level_{j}_{h}x{w}": self.discrete_bits(nll[j], sizes[j])
            for j, (h, w) in enumerate(self.operator.sizes)
        }
        return {**scalars, "bits_per_dim/total": self.discrete_bits(nll.sum(), x0[0].numel())}

    def initialize_network(self, net: Net, x0: torch.Tensor) -> None:
        """The flow's data-dependent initialisation (``HFlowNetwork.initialize``) on a batch x0 [B, C, H, W]."""
        net.initialize(x0)

    def diffuse(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """u_k = A_k x0, the pyramid's image at level k < K; u_K = eps. x0, eps [B, C, H, W], k [B]."""
        at_k = (k == self.K).to(x0.dtype)[:, None, None, None]
        return self.operator(x0, k) + at_k * eps

    def sampling_levels(self, steps: Optional[int] = None) -> List[int]:
        """Every level K, K-1, ..., 1: the flow of a level cannot be skipped (steps None or K)."""
        if steps not in (None, self.K):
            raise ValueError(f"steps={steps!r}: the hflow process steps through every level; allowed: {self.K}")
        return super().sampling_levels()

    def denoiser(self, net: Net) -> "HFlowDenoiser":
        return HFlowDenoiser(self, net)

    def prior_component(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """(0, 1): u_K ~ N(0, I) for every image; the coarsest image is drawn by the first step."""
        return torch.zeros_like(x0), 1.0

    def prior_component_std(self) -> float:
        return 1.0

    def forward_marginal_at_K(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """N(0, I), the standard-normal prior itself: the ELBO's prior term KL(q || p) is 0."""
        return self.prior_component(x0)

    def sampling_settings(self) -> Dict[str, Any]:
        """{'prior_stds': s_j per level, finest first}."""
        return {"prior_stds": list(self.prior_stds)}

    def elbo_terms(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Dict[str, torch.Tensor]:
        """The exact -log p(x0) by level: 'transitions' [B, K-1] = nll_j of levels k = j + 1 = 2..K (the coarsest
        last), 'reconstruction' [B] = nll_0, the finest detail."""
        nll = self.nll(net, x0)
        return {"transitions": nll[:, 1:], "reconstruction": nll[:, 0]}


class HFlowDenoiser(AncestralDenoiser):
    """The flow network as the samplers see it: "ancestral" (the step k -> k-1 is level k-1's flow inverse of its
    noise, exactly invertible) and "flow" (a step's noise is a flow's latent, so a sampler may scale it per
    level: ``flow_inverse``'s temperatures)."""

    provides = ("ancestral", "flow")
    final_noise = True

    def check_step(self, k: float, k_next: float) -> int:
        if int(k) != k or k_next != k - 1:
            raise ValueError(f"the hflow process steps from a level to the next one down, not {k} -> {k_next}")
        return int(k) - 1

    def ancestral_step(self, u: torch.Tensor, k: float, k_next: float, noise: torch.Tensor) -> torch.Tensor:
        """u_{k-1} [B, C, H, W]: x_{k-1} = flow_{k-1}^-1(s_{k-1} noise_{k-1} | x_k) shown at full size; at
        k = K the coarsest image from its latent alone."""
        j, process = self.check_step(k, k_next), self.process
        z = process.prior_stds[j] * noise.flatten(1)[:, process.latent_slice(u.shape[1], j)]
        coarser = None if j == self.K - 1 else process.operator.level_image(u, j + 1)
        self.nfe += 1
        image = self.net.level_inverse(j, z, coarser)
        return process.operator.show(image.to(u.dtype), j)

    def ancestral_step_noise(self, u: torch.Tensor, k: float, k_next: float, u_next: torch.Tensor) -> torch.Tensor:
        """The noise [B, C, H, W] of the step u_k -> u_next: level k-1's latent of x_{k-1} over s_{k-1} in its
        entries, 0 elsewhere."""
        j, process = self.check_step(k, k_next), self.process
        z, _ = self.net.level_forward(j, process.operator.level_image(u_next, j))
        noise = torch.zeros_like(u_next).flatten(1)
        noise[:, process.latent_slice(u.shape[1], j)] = z.to(u.dtype) / process.prior_stds[j]
        return noise.view_as(u_next)
