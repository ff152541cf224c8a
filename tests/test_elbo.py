"""ELBO terms: closed forms with an oracle, the kernel-density prior bound, and a Gaussian whose NLL is known."""

import math

import pytest
import torch

from model_code.priors.kde import KernelDensityPrior
from scripts.evaluation.elbo import elbo_terms
from tests.helpers import IHDMOracle, make_process


def ihdm(name="heat", K=4, size=4, sigma=0.05, delta=0.08):
    return make_process("ihdm", name, K, size, blur_sigma_min=0.5, blur_sigma_max=3.0, sigma=sigma, delta=delta)


def gaussian_kl(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q I) || N(mean_p, var_p I)) summed over dims, per example."""
    dim = mean_q[0].numel()
    return 0.5 * (
        dim * var_q / var_p + ((mean_q - mean_p) ** 2).flatten(1).sum(1) / var_p - dim + dim * math.log(var_p / var_q)
    )


def test_oracle_transitions_reduce_to_the_gaussian_kl():
    process = ihdm()
    x0 = torch.rand(3, 1, 4, 4)
    prior = KernelDensityPrior(process=process, load_data=lambda: (3, lambda idx: x0[idx]))
    terms = elbo_terms(process, IHDMOracle(process, x0), prior, x0)
    closed = gaussian_kl(x0, process.sigma**2, x0, process.delta**2)  # q and p share their mean
    assert terms["transitions"].shape == (3, 3)  # levels 2..K
    torch.testing.assert_close(terms["transitions"], closed[:, None].expand(3, 3), atol=1e-4, rtol=1e-5)
    # reconstruction: -log N(x0; x0, delta^2) = D log(delta sqrt(2 pi))
    torch.testing.assert_close(terms["reconstruction"], torch.full((3,), 16 * math.log(0.08 * math.sqrt(2 * math.pi))))


def test_kde_bound_is_exact_for_one_component_and_independent_of_chunking():
    process = ihdm()
    images = torch.rand(7, 1, 4, 4)
    x0 = torch.rand(2, 1, 4, 4)
    k = torch.full((1,), 4)
    single = KernelDensityPrior(process=process, load_data=lambda: (1, lambda idx: images[idx]))
    exact = gaussian_kl(
        process.operator(x0, k.expand(2)), process.sigma**2, process.operator(images[:1], k), process.delta**2
    )
    q = process.forward_marginal_at_K(x0)
    torch.testing.assert_close(single.kl_bound(*q), exact.float(), atol=1e-3, rtol=1e-5)
    duplicated = KernelDensityPrior(
        process=process, load_data=lambda: (5, lambda idx: images[:1].expand(len(idx), -1, -1, -1))
    )
    torch.testing.assert_close(duplicated.kl_bound(*q), exact.float(), atol=1e-3, rtol=1e-5)
    whole = KernelDensityPrior(process=process, load_data=lambda: (7, lambda idx: images[idx]))
    chunked = KernelDensityPrior(process=process, load_data=lambda: (7, lambda idx: images[idx]), chunk_size=2)
    torch.testing.assert_close(chunked.kl_bound(*q), whole.kl_bound(*q), atol=1e-4, rtol=1e-6)


def test_kde_bound_is_above_a_monte_carlo_kl():
    process = ihdm(sigma=0.2, delta=0.25, size=2)
    images = torch.rand(5, 1, 2, 2) * 0.3
    x0 = torch.rand(1, 1, 2, 2) * 0.3
    prior = KernelDensityPrior(process=process, load_data=lambda: (5, lambda idx: images[idx]))
    bound = prior.kl_bound(*process.forward_marginal_at_K(x0)).item()
    k = torch.full((1,), 4)
    mean_q = process.operator(x0, k).flatten()
    components = process.operator(images, k.expand(5)).flatten(1)
    samples = mean_q + 0.2 * torch.randn(200000, 4, dtype=torch.float64)
    log_q = torch.distributions.Normal(mean_q.double(), 0.2).log_prob(samples).sum(1)
    log_p = torch.logsumexp(
        torch.distributions.Normal(components.double()[None], 0.25).log_prob(samples[:, None]).sum(2), dim=1
    ) - math.log(5)
    monte_carlo = (log_q - log_p).mean().item()
    assert bound >= monte_carlo - 0.01 and bound - monte_carlo < 1.0


class ExactGaussianPrior:
    """p(u_K) = N(0, (s^2 + sigma^2) I): the true marginal of u_K = x + sigma eps for x ~ N(0, s^2 I)."""

    def __init__(self, variance):
        self.variance = variance

    def kl_bound(self, q_mean, q_std):
        return gaussian_kl(q_mean, q_std**2, torch.zeros_like(q_mean), self.variance)


class OptimalLinear(torch.nn.Module):
    """mu(u) = E[x | u] = s^2 / (s^2 + sigma^2) u, written as the residual f = mu - u."""

    def __init__(self, shrink):
        super().__init__()
        self.shrink = shrink

    def forward(self, u, time):
        return (self.shrink - 1) * u


@pytest.mark.parametrize("K", [1, 3])
def test_elbo_of_gaussian_data_bounds_the_exact_nll(K):
    """x ~ N(0, s^2 I) through the identity map: with the Bayes-optimal reverse model and prior the
    ELBO equals the exact NLL for K = 1 and is an upper bound for K > 1."""
    s, sigma, dim = 0.5, 0.1, 8
    posterior_std = s * sigma / math.sqrt(s**2 + sigma**2)
    process = ihdm("identity", K=K, size=(2, 4), sigma=sigma, delta=posterior_std)
    generator = torch.Generator().manual_seed(0)
    x0 = s * torch.randn(40000, 1, 2, 4, generator=generator)
    terms = elbo_terms(
        process, OptimalLinear(s**2 / (s**2 + sigma**2)), ExactGaussianPrior(s**2 + sigma**2), x0, generator
    )
    total = terms["prior"] + terms["transitions"].sum(1) + terms["reconstruction"]
    estimate, error = total.mean().item(), total.std().item() / math.sqrt(len(total))
    exact = 0.5 * dim * math.log(2 * math.pi * math.e * s**2)
    if K == 1:
        assert abs(estimate - exact) < 4 * error
    else:
        assert estimate > exact + 4 * error  # the per-level noise of IHDM's forward process costs nats


class OptimalEps(torch.nn.Module):
    """E[eps | z] for x ~ N(0, s^2 I) and z = a x + sigma eps: sigma z / (a^2 s^2 + sigma^2)."""

    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, z, time):
        from model_code.processes import cosine_logsnr

        logsnr = cosine_logsnr(time / 1000, -10, 10)[:, None, None, None]
        a2, sigma2 = torch.sigmoid(logsnr), torch.sigmoid(-logsnr)
        return sigma2.sqrt() * z / (a2 * self.s**2 + sigma2)


def cosine_schedule(t: float):
    """(alpha_t^2, sigma_t^2) of the cosine log-SNR schedule clipped to [-10, 10], in float64:
    logsnr(t) = -2 log tan(a t + b), b = arctan(e^-5), a = arctan(e^5) - b."""
    b = math.atan(math.exp(-5))
    a = math.atan(math.exp(5)) - b
    logsnr = -2 * math.log(math.tan(a * t + b))
    return 1 / (1 + math.exp(-logsnr)), 1 / (1 + math.exp(logsnr))


def gaussian_transition_weight(k: int, K: int) -> float:
    """KL(q(u_{k-1} | u_k, x) || p(u_{k-1} | u_k)) per coefficient and per unit of (x - x_hat)^2:
    0.5 v alpha_s^2 / sigma_s^4 with s = k - 1, v = sigma_{t|s}^2 sigma_s^2 / sigma_t^2,
    sigma_{t|s}^2 = sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2 (identity operator, t = k / K)."""
    a2_t, s2_t = cosine_schedule(k / K)
    a2_s, s2_s = cosine_schedule((k - 1) / K)
    posterior_variance = (s2_t - a2_t / a2_s * s2_s) * s2_s / s2_t
    return 0.5 * posterior_variance * a2_s / s2_s**2


def exact_ddpm_bound(K: int, s: float, dim: int) -> float:
    """E_x[K-step bound] in nats for x ~ N(0, s^2 I_dim), the identity operator, the optimal denoiser and
    the standard normal prior. With mmse_k = s^2 sigma_k^2 / (alpha_k^2 s^2 + sigma_k^2) = E (x - x_hat(u_k))^2:
        prior          0.5 alpha_K^2 s^2 / sigma_K^2                  (KL to N(0, sigma_K^2))
        transitions    sum_{k=2..K} gaussian_transition_weight(k) mmse_k
        reconstruction 0.5 (mmse_1 / dv + log(2 pi dv)),  dv = sigma_1^2 / alpha_1^2
    per dimension."""
    a2_K, s2_K = cosine_schedule(1.0)
    a2_1, s2_1 = cosine_schedule(1 / K)

    def mmse(k):
        a2, s2 = cosine_schedule(k / K)
        return s**2 * s2 / (a2 * s**2 + s2)

    prior = 0.5 * a2_K * s**2 / s2_K
    transitions = sum(gaussian_transition_weight(k, K) * mmse(k) for k in range(2, K + 1))
    decoder_variance = s2_1 / a2_1
    reconstruction = 0.5 * (mmse(1) / decoder_variance + math.log(2 * math.pi * decoder_variance))
    return dim * (prior + transitions + reconstruction)


def test_ddpm_bound_of_gaussian_data_matches_its_exact_value():
    """Optimal denoiser for x ~ N(0, s^2 I): the Monte-Carlo K-step bound must equal its exact expectation
    (the exact NLL plus the discretisation gap, both closed forms) within 4 standard errors. The tolerance is
    about 0.6 nats (K = 200) and 0.9 nats (K = 1000) for 64 dimensions, while a decoder variance off by a
    factor 1.5 moves the bound by 64 * 0.5 (log 1.5 - 1/3) = 2.3 nats."""
    from model_code.priors import PRIORS

    s, dim = 0.5, 64
    exact_nll = 0.5 * dim * math.log(2 * math.pi * math.e * s**2)
    gaps = []
    for K, count in ((200, 8000), (1000, 2000)):
        process = make_process("gaussian", "identity", K, 8, continuous_time=True)
        generator = torch.Generator().manual_seed(0)
        x0 = s * torch.randn(count, 1, 8, 8, generator=generator)
        terms = elbo_terms(process, OptimalEps(s), PRIORS.build("standard_normal", process=process), x0, generator)
        total = terms["prior"].double() + terms["transitions"].double().sum(1) + terms["reconstruction"].double()
        estimate, error = total.mean().item(), total.std().item() / math.sqrt(count)
        expected = exact_ddpm_bound(K, s, dim)
        assert abs(estimate - expected) < 4 * error, (K, estimate, expected, error)
        gaps.append(expected - exact_nll)
    assert 0 < gaps[1] < gaps[0]  # a bound, tightening as K grows (measured gaps: 39.0 and 12.4 nats)


class LevelOffsetOracle(torch.nn.Module):
    """ihdm network whose mean misses the target by a known, level-dependent offset:
    mu(u_k, k) = u_k + f(u_k, k) = A_{k-1} x0 + offsets[k]."""

    def __init__(self, process, x0, offsets):
        super().__init__()
        self.process, self.x0, self.offsets = process, x0, offsets

    def forward(self, u, time):
        k = time.round().long()
        return self.process.operator(self.x0, k - 1) - u + self.offsets[k]


def level_offsets(K, shape, seed=0):
    """offsets[k] = 0.01 k * (a fixed +-1 pattern) for k = 0..K: |offsets[k]|^2 = 1e-4 k^2 D."""
    signs = torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).float() * 2 - 1
    return torch.stack([0.01 * k * signs for k in range(K + 1)])


def test_ihdm_transition_columns_are_their_levels_closed_forms():
    """Column j of ``transitions`` is level k = j + 2 and the reconstruction is level 1: with a network error
    that grows with the level, summing levels 1..K-1 (the upstream range) or using A_k as the target changes
    every column. Per level: 0.5 (|offset_k|^2 / delta^2 + 2 D log(delta / sigma) + D sigma^2 / delta^2 - D)."""
    K, sigma, delta = 6, 0.05, 0.08
    process = ihdm(K=K, sigma=sigma, delta=delta)
    x0 = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    offsets = level_offsets(K, (1, 4, 4))
    terms = process.elbo_terms(LevelOffsetOracle(process, x0, offsets), x0)
    dim = 16
    constant = 2 * dim * math.log(delta / sigma) + dim * sigma**2 / delta**2 - dim
    squared = offsets.double().flatten(1).pow(2).sum(1)  # [K + 1]
    expected = 0.5 * (squared[2:] / delta**2 + constant)  # levels 2..K
    torch.testing.assert_close(terms["transitions"].double(), expected.expand(3, K - 1), rtol=1e-4, atol=1e-4)
    reconstruction = 0.5 * squared[1] / delta**2 + dim * math.log(delta * math.sqrt(2 * math.pi))
    torch.testing.assert_close(terms["reconstruction"].double(), reconstruction.expand(3), rtol=1e-4, atol=1e-4)


class EpsLevelOffsetOracle(torch.nn.Module):
    """gaussian-process network (identity operator) whose x_hat misses x0 by offsets[k] at level k:
    eps_hat = (u - alpha_t (x0 + offsets[k])) / sigma_t with the schedule computed in float64 here."""

    def __init__(self, x0, offsets, K):
        super().__init__()
        self.x0, self.offsets, self.K = x0, offsets, K

    def forward(self, u, time):
        k = (time / 1000 * self.K).round().long()
        a2, s2 = zip(*(cosine_schedule(int(level) / self.K) for level in k))
        alpha = torch.tensor(a2, dtype=torch.float64).sqrt().view(-1, 1, 1, 1)
        sigma = torch.tensor(s2, dtype=torch.float64).sqrt().view(-1, 1, 1, 1)
        return ((u.double() - alpha * (self.x0.double() + self.offsets[k].double())) / sigma).float()


def test_gaussian_transition_columns_are_their_levels_closed_forms():
    """As for ihdm: column j is level k = j + 2 (per coefficient gaussian_transition_weight(k) offset_k^2) and
    the reconstruction is level 1 (0.5 (offset_1^2 / dv + log(2 pi dv)), dv = sigma_1^2 / alpha_1^2)."""
    K = 6
    process = make_process("gaussian", "identity", K, 4, continuous_time=True)
    x0 = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    offsets = level_offsets(K, (1, 4, 4), seed=3)
    terms = process.elbo_terms(EpsLevelOffsetOracle(x0, offsets, K), x0)
    squared = offsets.double().flatten(1).pow(2).sum(1)  # [K + 1]
    expected = torch.tensor([gaussian_transition_weight(k, K) * squared[k] for k in range(2, K + 1)])
    torch.testing.assert_close(terms["transitions"].double(), expected.expand(3, K - 1), rtol=2e-3, atol=1e-4)
    a2_1, s2_1 = cosine_schedule(1 / K)
    decoder_variance = s2_1 / a2_1
    reconstruction = 0.5 * (squared[1] / decoder_variance + 16 * math.log(2 * math.pi * decoder_variance))
    torch.testing.assert_close(terms["reconstruction"].double(), reconstruction.expand(3), rtol=2e-3, atol=1e-4)


def test_prior_kl_terms_match_torch_distributions():
    from model_code.priors import PRIORS

    process = make_process("gaussian", "blur", 5, 4, blurring_sigma_max=2.0, continuous_time=True)
    x0 = torch.rand(3, 2, 4, 4) * 2 - 1
    mean, std_q = process.forward_marginal_at_K(x0)
    normal = PRIORS.build("standard_normal", process=process)
    q = torch.distributions.Normal(mean.double(), std_q)
    expected = (
        torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, process.prior_component_std()))
        .flatten(1)
        .sum(1)
    )
    torch.testing.assert_close(normal.kl_bound(mean, std_q).double(), expected, rtol=1e-4, atol=1e-4)

    images = torch.rand(50, 2, 4, 4) * 2 - 1
    fitted = PRIORS.build(
        "fitted_gaussian", process=process, shape=(2, 4, 4), load_data=lambda: (50, lambda idx: images[idx])
    )
    fitted.fit("cpu")
    tril = fitted.scale_tril.double()
    covariance = tril @ tril.transpose(-1, -2) + process.prior_component_std() ** 2 * torch.eye(2, dtype=torch.float64)
    p = torch.distributions.MultivariateNormal(fitted.mean.double().permute(1, 2, 0), covariance)
    coefficients = process.operator.to_basis(mean).double().permute(0, 2, 3, 1)
    q = torch.distributions.MultivariateNormal(coefficients, std_q**2 * torch.eye(2, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(fitted.kl_bound(mean, std_q).double(), expected, rtol=1e-4, atol=1e-3)
