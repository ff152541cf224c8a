"""The log-likelihood of the probability-flow ODE (Song et al. 2021, Sec. 4.3 and App. D.2).

Along the ODE du/dk = f(u, k) of a gaussian process's denoiser (``GaussianDenoiser.flow_velocity``) the log
density of the state changes by d log p_k(u_k) / dk = -div f(u_k, k) (the instantaneous change of variables),
so for data x = u_0:

    log p_0(x) = log p_K(u_K) + integral_0^K div f(u_k, k) dk,

u_K the ODE's solution at level K from u_0 = x and p_K the prior. The state and the integral are solved together
by scipy's adaptive Runge-Kutta (RK45, Dormand-Prince) in float64, the network evaluated in the dtype of x. The
divergence is exact (one backward pass per dimension) or Hutchinson's estimate E_v[v^T J v] with Rademacher
probes v held fixed for the whole solve, which keeps log p unbiased (Grathwohl et al. 2019).

No collective operation happens inside a solve: adaptive solvers take a different number of steps per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from scipy.integrate import solve_ivp

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class FlowLikelihood:
    """``log_likelihood`` [B] (float64) in nats per image; ``nfe`` the velocity (network) evaluations of the solve."""

    log_likelihood: torch.Tensor
    nfe: int


def exact_divergence(velocity: Velocity, u: torch.Tensor, k: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(f(u, k) [B, ...], div f [B]) with div f = sum_i d f_i / d u_i, one backward pass per dimension i."""
    u = u.detach().requires_grad_(True)
    f = velocity(u, k).flatten(1)
    divergence = torch.zeros(u.shape[0], dtype=f.dtype, device=u.device)
    for i in range(f.shape[1]):
        (gradient,) = torch.autograd.grad(f[:, i].sum(), u, retain_graph=True)
        divergence = divergence + gradient.flatten(1)[:, i]
    return f.detach().view_as(u), divergence


def hutchinson_divergence(
    velocity: Velocity, u: torch.Tensor, k: float, probes: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(f(u, k) [B, ...], the mean over probes v of v^T (df/du) v [B]); probes [P, B, ...] with E[v v^T] = I."""
    u = u.detach().requires_grad_(True)
    f = velocity(u, k)
    estimates = []
    for index, probe in enumerate(probes):
        (product,) = torch.autograd.grad(f, u, grad_outputs=probe, retain_graph=index < len(probes) - 1)
        estimates.append((product * probe).flatten(1).sum(1))
    return f.detach(), torch.stack(estimates).mean(0)


def rademacher_probes(count: int, shape: Tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """``count`` probes [count, *shape] of independent +-1 entries, drawn from ``generator``."""
    bits = torch.randint(0, 2, (count, *shape), generator=generator, device=generator.device)
    return bits.float() * 2 - 1


def probability_flow_log_likelihood(
    velocity: Velocity,
    prior_log_density: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    levels: Tuple[float, float],
    *,
    rtol: float,
    atol: float,
    probes: Optional[torch.Tensor] = None,
) -> FlowLikelihood:
    """log p_0(x) (the module docstring) for x [B, C, H, W] at level levels[0], integrating the ODE du/dk =
    ``velocity(u, k)`` up to levels[1] = K, where ``prior_log_density`` [B] takes over. The divergence is exact
    without ``probes``, else Hutchinson's with the given probes [P, B, C, H, W]."""
    shape, batch = x.shape, x.shape[0]
    size = x[0].numel() * batch

    def derivative(k: float, state: np.ndarray) -> np.ndarray:
        u = torch.from_numpy(state[:size]).to(x.device, x.dtype).view(shape)
        with torch.enable_grad():
            if probes is None:
                f, divergence = exact_divergence(velocity, u, float(k))
            else:
                f, divergence = hutchinson_divergence(velocity, u, float(k), probes)
        return np.concatenate([f.flatten().double().cpu().numpy(), divergence.double().cpu().numpy()])

    start = np.concatenate([x.detach().flatten().double().cpu().numpy(), np.zeros(batch)])
    solution = solve_ivp(derivative, levels, start, method="RK45", rtol=rtol, atol=atol)
    if not solution.success:
        raise RuntimeError(f"the probability-flow ODE solve failed: {solution.message}")
    end = torch.from_numpy(solution.y[:, -1])
    u_end = end[:size].to(x.device, x.dtype).view(shape)
    integral = end[size:].to(x.device)
    log_likelihood = prior_log_density(u_end).double() + integral
    return FlowLikelihood(log_likelihood, int(solution.nfev))
