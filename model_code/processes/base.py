"""The process interface: a forward operator composed with a training objective and a reverse step.

A process owns the semantics of its method, so the trainer, sampler and evaluator call the
methods that ``Process`` declares on every process and never branch on which one it is.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from model_code.operators import Operator
from model_code.randomness import RandomSource, as_randomness
from model_code.registry import Registered, Registry

PROCESSES = Registry("process", package="model_code.processes")
Net = nn.Module


def per_example_sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


class Process(Registered, nn.Module, abc.ABC):
    """The interface of every process: what the trainer, sampler, evaluator and priors call.

    Holds the operator (and so its buffers) and the number of levels K. Shapes: data x0 and states
    u [B, C, H, W] (2D points as [B, 2, 1, 1]) in ``data_range``; levels k [B] (integers 0..K, or reals
    for continuous-time processes); ``net(x [B, C, H, W], time [B]) -> [B, C, H, W]``; ``randomness``
    (a ``torch.Generator`` or a ``model_code.randomness.Randomness``) drives every random draw, so a caller
    that seeds it reproduces the result.
    """

    data_range: Tuple[float, float] = (0.0, 1.0)  # the interval the process expects its data in
    default_sampler = "ancestral"  # the sampler a spec without one runs (``SamplingSpec.for_process``)
    float32_network = False  # the network must compute in float32 (hflow's exact inverse and log-determinants)

    def __init__(self, *, operator: Operator):
        super().__init__()
        self.operator = operator
        self.K = operator.K

    def sampling_levels(self, steps: Optional[int] = None) -> List[int]:
        """The levels of the uniform grid, K first: step i goes from levels[i] to levels[i + 1], the last one to
        level 0 (the data). ``steps`` None or K: every level K, K-1, ..., 1; S < K: S levels evenly spaced,
        l_i = ceil(K (S - i) / S) (K first, ceil(K / S) last), for processes that can skip levels."""
        steps = self.K if steps is None else steps
        if not (isinstance(steps, int) and 1 <= steps <= self.K):
            raise ValueError(f"steps={steps!r} is outside 1..{self.K}; allowed: an integer in 1..K (K of this model)")
        return [-(-self.K * (steps - i) // steps) for i in range(steps)]

    @abc.abstractmethod
    def loss(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-example training loss [B] and the level fraction t in [0, 1] [B] each example was trained at."""

    @abc.abstractmethod
    def diffuse(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """A draw u_k [B, C, H, W] from the forward process q(u_k | x0), given standard normal eps [B, C, H, W]."""

    def encoding_trajectory(
        self, x0: torch.Tensor, levels: List[int], draw_noise: Callable[[], torch.Tensor]
    ) -> List[torch.Tensor]:
        """The states u_k [B, C, H, W] at ``levels`` (K first) whose reverse-step noise the exact latents hold
        (``latents.encode``); ``draw_noise()`` returns a fresh standard normal [B, C, H, W]. Here each state is
        a draw of its own forward marginal, u_k = diffuse(x0, k, eps_k) with independent eps_k: the reverse
        step of a process that is not a Markov chain in k (ihdm) is trained on these marginals."""
        states = []
        for k in levels:
            k_batch = torch.full((x0.shape[0],), k, device=x0.device, dtype=torch.long)
            states.append(self.diffuse(x0, k_batch, draw_noise()))
        return states

    @abc.abstractmethod
    def denoiser(self, net: Net) -> "Denoiser":
        """The process's network as the samplers see it (``Denoiser``): the one place where the network's
        output is turned into the quantities the samplers and the ELBO use."""

    @abc.abstractmethod
    def prior_component(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """The prior's Gaussian component N(mean, std^2 I) built on training image x0: (mean [B, C, H, W], std).

        Priors over u_K are built from these components (a kernel density, a fitted Gaussian, ...)."""

    @abc.abstractmethod
    def prior_component_std(self) -> float:
        """The std of every prior component, without an image (the standard-normal prior's scale)."""

    @abc.abstractmethod
    def forward_marginal_at_K(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """q(u_K | x0) = N(mean, std^2 I): (mean [B, C, H, W], std). The ELBO's prior term is
        KL(q(u_K | x0) || p(u_K)), which the prior computes from these two."""

    @abc.abstractmethod
    def sampling_settings(self) -> Dict[str, Any]:
        """The settings of the reverse process that may differ from training (recorded with results)."""

    def initialize_network(self, net: Net, x0: torch.Tensor) -> None:
        """Data-dependent initialisation of the network from a first batch x0 [B, C, H, W] (hflow's ActNorm),
        called once by the trainer on a new run with the same batch on every process; nothing by default."""

    def training_scalars(self, net: Net, x0: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Scalars [] the trainer logs to TensorBoard beside the loss, from a batch x0 [B, C, H, W] (hflow: bits/dim
        per level); none by default."""
        return {}

    def elbo_terms(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Dict[str, torch.Tensor]:
        """Per-example ELBO terms in nats except the prior's: {'transitions': [B, K-1] for levels 2..K,
        'reconstruction': [B]}. The prior term comes from ``prior.kl_bound(*forward_marginal_at_K(x0))``."""
        raise NotImplementedError(f"the {self.name!r} process does not define ELBO terms yet")

    def itd_eps_predictor(self, net: Net):
        """eps_hat(z, a) for the information-theoretic NLL estimator; only a plain Gaussian channel has one."""
        raise ValueError(
            f"the information-theoretic NLL estimator needs the gaussian process with the identity operator; "
            f"this model uses the {self.name!r} process"
        )


class Denoiser:
    """A process's network as the samplers (``model_code.samplers``) see it.

    ``provides`` names what it gives samplers, each a capability some samplers need (``SAMPLERS`` metadata
    ``needs``): "ancestral" (``AncestralDenoiser``: the process's own reverse step and its inverse in the
    noise), "marginal" (the gaussian process: the forward marginal per basis coefficient and x0_hat),
    "restoration" (the cold process: x0_hat and the operator), "flow" (hflow: an ancestral step whose noise is
    a flow's latent, exactly invertible, that a sampler may scale per level). ``nfe`` counts the network
    evaluations made through it.
    """

    provides: Tuple[str, ...] = ()
    final_noise = False  # whether the step to level 0 draws noise (hflow's finest detail; ``model_code.latents``)

    def __init__(self, process: Process, net: Net):
        self.process, self.net, self.nfe = process, net, 0
        self.K = process.K

    def network(self, u: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """The network's output at u [B, C, H, W] and network time [B], in u's dtype; counts one evaluation."""
        self.nfe += 1
        out = self.net(u, time)
        return out if out.dtype == u.dtype else out.to(u.dtype)


class AncestralDenoiser(Denoiser, abc.ABC):
    """A denoiser with a stochastic reverse step of its own (ihdm, gaussian): the ``ancestral`` sampler and the
    exact latents (``model_code.latents``) run it."""

    provides: Tuple[str, ...] = ("ancestral",)

    @abc.abstractmethod
    def ancestral_step(self, u: torch.Tensor, k: float, k_next: float, noise: torch.Tensor) -> torch.Tensor:
        """One step of the process's reverse process u_k [B, C, H, W] -> u_{k_next}, k_next < k; stateless: the
        caller passes the standard normal ``noise`` [B, C, H, W]. At k_next = 0 it returns the data estimate."""

    @abc.abstractmethod
    def ancestral_step_noise(self, u: torch.Tensor, k: float, k_next: float, u_next: torch.Tensor) -> torch.Tensor:
        """The inverse of ``ancestral_step`` in its noise (k_next > 0): with the step written u_{k_next} =
        mean(u_k) + scale noise, noise = (u_{k_next} - mean(u_k)) / scale, so that ``ancestral_step`` with it
        returns ``u_next``. u, u_next [B, C, H, W] -> noise [B, C, H, W]."""


def randn_like(x: torch.Tensor, randomness: RandomSource) -> torch.Tensor:
    return as_randomness(randomness, x.device).randn(x.shape, dtype=x.dtype)
