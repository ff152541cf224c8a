"""The probability-flow likelihood (``evaluate.py --mode=nll_ode``) against the exact density of Gaussian data.

With x_f ~ N(m_f, s_f^2) per coefficient of the operator's basis the exact denoiser is known in closed form
(``GaussianDataOracle``) and so is the density of u_0: per coefficient N(alpha_0 m_f, alpha_0^2 s_f^2 + sigma_0^2).
The ODE's log-likelihood, started there and ended in the exact marginal at K, must equal it, for DDPM (identity)
and blurring diffusion (blur, each frequency its own alpha); Hutchinson's estimate must be unbiased.
"""

import math

import pytest
import torch

from model_code.ode_likelihood import probability_flow_log_likelihood, rademacher_probes
from tests.helpers import GaussianDataOracle, make_process

SIZE = 4
K = 100
DIMS = SIZE * SIZE


def gaussian_data(operator_name, count):
    """(process, oracle denoiser, the exact log density at level k as a function, ``count`` data images)."""
    process = make_process("gaussian", operator_name, K, SIZE, blur_sigma_max=2.0, clip_denoised=False).double()
    generator = torch.Generator().manual_seed(0)
    mean = 0.3 * torch.randn(1, 1, SIZE, SIZE, generator=generator)
    std = 0.05 + 0.4 * torch.rand(1, 1, SIZE, SIZE, generator=generator)
    denoiser = process.denoiser(GaussianDataOracle(process, mean, std))
    data = process.operator.from_basis(mean + std * torch.randn(count, 1, SIZE, SIZE, generator=generator))

    def exact_log_density(u, k):
        alpha, sigma = denoiser.marginal(k, u)
        marginal = torch.distributions.Normal(alpha * mean, (alpha**2 * std**2 + sigma**2).sqrt())
        return marginal.log_prob(process.operator.to_basis(u)).flatten(1).sum(1)

    return denoiser, exact_log_density, data


def flow_log_likelihood(denoiser, exact_log_density, data, tolerance, probes=None):
    return probability_flow_log_likelihood(
        denoiser.flow_velocity,
        lambda u: exact_log_density(u, K),
        data,
        (0.0, float(K)),
        rtol=tolerance,
        atol=tolerance,
        probes=probes,
    )


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_the_flow_likelihood_of_gaussian_data_is_its_exact_density(float64, operator_name):
    denoiser, exact_log_density, data = gaussian_data(operator_name, 4)
    flow = flow_log_likelihood(denoiser, exact_log_density, data, 1e-7)
    exact = exact_log_density(data, 0.0)
    assert ((flow.log_likelihood - exact).abs() / DIMS).max() < 1e-3, (flow.log_likelihood, exact)
    assert flow.nfe > 20  # an adaptive solve, counted


def test_hutchinson_estimate_is_within_four_standard_errors_of_the_exact_divergence(float64):
    denoiser, exact_log_density, data = gaussian_data("blur", 24)
    exact = flow_log_likelihood(denoiser, exact_log_density, data, 1e-5).log_likelihood
    probes = rademacher_probes(1, tuple(data.shape), torch.Generator().manual_seed(3)).double()
    estimate = flow_log_likelihood(denoiser, exact_log_density, data, 1e-5, probes).log_likelihood
    difference = estimate - exact
    stderr = difference.std() / math.sqrt(len(difference))
    assert difference.abs().max() > 1e-3  # one probe does estimate: the draws differ from the exact divergence
    assert difference.mean().abs() < 4 * stderr, (difference.mean(), stderr)
