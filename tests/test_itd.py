"""Information-theoretic NLL: proposal, estimator oracles, log-SNR rule, MLP denoiser, toy data."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import expit, logsumexp

from model_code import itd
from model_code.networks import MLPDenoiser
from scripts.data.datasets.toy2d import TOY2D_DATASETS, CorrelatedGaussian, GaussianMixture, Toy2DDataset, make_toy2d
from tests.helpers import optimal_gaussian_eps_pred

LOG_2PI_E = math.log(2 * math.pi * math.e)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tests run many small elementwise ops; with 2 intra-op threads on a busy 2-core machine
    they ran up to 20x slower (thread oversubscription), so run them on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def softplus(v):
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- truncated logistic proposal


def test_truncated_logistic_support_density_and_weights():
    loc, scale = 1.5, 2.0
    logsnr, weight = itd.sample_truncated_logistic(50_000, loc, scale, generator(1), dtype=torch.float64)
    lo, hi = loc - 4 * scale, loc + 4 * scale
    assert logsnr.shape == weight.shape == (50_000,)
    assert lo <= logsnr.min().item() and logsnr.max().item() <= hi
    assert logsnr.min().item() < lo + 0.05 and logsnr.max().item() > hi - 0.05  # the whole interval is used
    logistic = stats.logistic(loc=loc, scale=scale)
    mass = logistic.cdf(hi) - logistic.cdf(lo)
    assert mass == pytest.approx(math.tanh(2.0), rel=1e-12)
    # the samples follow the truncated logistic CDF
    ks = stats.kstest(logsnr.numpy(), lambda a: (logistic.cdf(a) - logistic.cdf(lo)) / mass)
    assert ks.pvalue > 1e-3
    # and the weight is 1 / q(a) for the truncated density q = pdf / mass
    np.testing.assert_allclose(weight.numpy(), mass / logistic.pdf(logsnr.numpy()), rtol=1e-9)


@pytest.mark.parametrize(
    "f",
    [lambda a: np.ones_like(a), expit, lambda a: a**2, lambda a: 3.0 * expit(a + 1.0) * expit(-(a + 1.0))],
    ids=["one", "sigmoid", "square", "bump"],
)
def test_importance_weights_integrate_over_truncated_interval(f):
    loc, scale = -0.7, 1.3
    logsnr, weight = itd.sample_truncated_logistic(200_000, loc, scale, generator(2), dtype=torch.float64)
    terms = weight.numpy() * f(logsnr.numpy())
    estimate, stderr = terms.mean(), terms.std() / math.sqrt(terms.size)
    exact = quad(f, loc - 4 * scale, loc + 4 * scale)[0]
    assert abs(estimate - exact) < 4 * stderr + 1e-12
    assert abs(estimate - exact) < 0.02 * abs(exact)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_scale_is_an_error(scale):
    with pytest.raises(ValueError, match=f"scale must be a positive finite number, got {scale!r}"):
        itd.sample_truncated_logistic(4, 0.0, scale)
    with pytest.raises(ValueError, match="scale"):
        itd.nll_estimate(lambda z, a: z, torch.zeros(2, 2), 4, 0.0, scale)


# ---------------------------------------------------------------- Gaussian closed forms


def test_gaussian_entropy_and_curves_match_scipy_and_each_other():
    cg = CorrelatedGaussian()
    assert itd.gaussian_entropy(cg.cov) == pytest.approx(
        stats.multivariate_normal(cov=cg.cov.numpy()).entropy(), rel=1e-12
    )
    assert cg.entropy() == pytest.approx(LOG_2PI_E + 0.5 * math.log(4.0 * 0.05), rel=1e-12)
    grid = torch.linspace(-12, 12, 49, dtype=torch.float64)
    torch.testing.assert_close(itd.gaussian_baseline_mse(grid, 3), itd.gaussian_mmse_curve(grid, [1.0, 1.0, 1.0]))
    expected = expit(grid.numpy() + math.log(4.0)) + expit(grid.numpy() + math.log(0.05))
    np.testing.assert_allclose(itd.gaussian_mmse_curve(grid, cg.eigenvalues).numpy(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        itd.gaussian_entropy([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="eigenvalues must be positive"):
        itd.gaussian_mmse_curve(grid, [1.0, 0.0])


@pytest.mark.parametrize("logsnr", [-4.0, 0.0, 2.5, 7.0])
def test_optimal_gaussian_denoiser_attains_the_mmse_curve(logsnr):
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cg = CorrelatedGaussian(mean=mean)
    pred = optimal_gaussian_eps_pred(mean, cg.cov)
    g = generator(3)
    n = 200_000
    x = cg.sample(n, g).double()
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    a = torch.full((n,), logsnr, dtype=torch.float64)
    z = math.sqrt(expit(logsnr)) * x + math.sqrt(expit(-logsnr)) * eps
    residual = eps - pred(z, a)
    mse = residual.pow(2).sum(1)
    curve = itd.gaussian_mmse_curve(torch.tensor([logsnr]), cg.eigenvalues).item()
    assert abs(mse.mean().item() - curve) < 4 * mse.std().item() / math.sqrt(n)
    # orthogonality principle: the residual is uncorrelated with z (and has mean zero)
    covariance = (residual.T @ (z - z.mean(0))) / n
    assert covariance.abs().max().item() < 0.01
    assert residual.mean(0).abs().max().item() < 0.01


def test_optimal_gaussian_denoiser_keeps_shapes_and_is_the_isotropic_closed_form():
    cov = torch.eye(6, dtype=torch.float64) * 2.0
    pred = optimal_gaussian_eps_pred(torch.zeros(6), cov)
    z = torch.randn(5, 2, 3, dtype=torch.float64)
    a = torch.linspace(-3, 3, 5, dtype=torch.float64)
    out = pred(z, a)
    # isotropic N(0, 2 I): E[eps | z] = sigma z / (2 alpha^2 + sigma^2)
    alpha2, sigma2 = torch.sigmoid(a), torch.sigmoid(-a)
    torch.testing.assert_close(out, z * (sigma2.sqrt() / (2 * alpha2 + sigma2))[:, None, None])


# ---------------------------------------------------------------- the NLL estimator


def test_nll_recovers_entropy_of_correlated_gaussian():
    cg = CorrelatedGaussian()
    loc, scale = itd.suggest_logistic_params_from_spectrum(cg.eigenvalues)
    # two eigenvalues: sigmoid(a + l1) + sigmoid(a + l2) = 1 exactly at a = -(l1 + l2) / 2
    assert loc == pytest.approx(-0.5 * math.log(4.0 * 0.05), abs=1e-9)
    curve = lambda a: expit(a + math.log(4.0)) + expit(a + math.log(0.05))  # noqa: E731
    a75 = brentq(lambda a: curve(a) - 1.5, -20, 20, xtol=1e-13)
    assert scale == pytest.approx((a75 - loc) / math.log(3.0), abs=1e-6)
    assert scale == pytest.approx(2.0373, abs=1e-3)

    # truncating to loc +- 4 scale loses little: integrate the closed-form integrand of eq. (1)
    integrand = lambda a: curve(a) - 2 * expit(a)  # noqa: E731
    lo, hi = itd.truncation_interval(loc, scale)
    full = quad(integrand, -80, 80, limit=200, points=[lo, hi])[0]
    assert full == pytest.approx(math.log(4.0 * 0.05), abs=1e-8)  # int = log det Sigma
    truncation_bias = 0.5 * (full - quad(integrand, lo, hi, limit=200)[0])
    assert abs(truncation_bias) < 2e-3

    pred = optimal_gaussian_eps_pred(cg.mean, cg.cov)
    g = generator(4)
    x = cg.sample(16_000, g).double()
    result = itd.nll_estimate(pred, x, 64, loc, scale, g, batch_size=65_536)
    entropy = cg.entropy()
    assert result["stderr"] < 0.03
    assert abs(result["mean"] - entropy) < 3 * result["stderr"]
    assert result["bits_per_dim"] == pytest.approx(result["mean"] / (2 * math.log(2)), rel=1e-12)
    # pointwise: the per-example estimates track -log p(x) itself (only Monte-Carlo noise remains)
    difference = result["nll"] - (-cg.log_prob(x))
    assert abs(difference.mean().item()) < 3 * difference.std().item() / math.sqrt(x.shape[0]) + abs(truncation_bias)

    # the raw pairs trace the MMSE curve
    assert result["logsnr"].shape == result["mse"].shape == result["weight"].shape == (16_000 * 64,)
    for centre in (-2.0, loc, 4.0):
        near = (result["logsnr"] - centre).abs() < 0.02
        values = result["mse"][near]
        assert values.numel() > 1000
        assert abs(values.mean().item() - curve(centre)) < 4 * values.std().item() / math.sqrt(values.numel()) + 0.01


def test_nll_with_zero_predictor_matches_closed_form():
    # eps_hat = 0: mse = ||eps||^2, integrand d (1 - sigmoid(a)) = d sigmoid(-a), whose integral is
    # d (softplus(-lo) - softplus(-hi)).
    d, loc, scale = 3, 1.0, 1.5
    lo, hi = itd.truncation_interval(loc, scale)
    exact = 0.5 * d * LOG_2PI_E + 0.5 * d * (softplus(-lo) - softplus(-hi))
    g = generator(5)
    x = torch.randn(4000, d, generator=g, dtype=torch.float64) * 3.0
    result = itd.nll_estimate(lambda z, a: torch.zeros_like(z), x, 32, loc, scale, g)
    assert abs(result["mean"] - exact) < 3 * result["stderr"]
    assert result["stderr"] < 0.05 * exact


def test_nll_of_untrained_mlp_is_the_zero_predictor_closed_form():
    net = MLPDenoiser(data_dim=2, hidden=16, depth=2)
    loc, scale = 0.0, 1.0
    lo, hi = itd.truncation_interval(loc, scale)
    exact = LOG_2PI_E + (softplus(-lo) - softplus(-hi))
    g = generator(6)
    x = TOY2D_DATASETS["two_moons"]().sample(2000, g)
    result = itd.nll_estimate(net, x, 32, loc, scale, g)
    assert abs(result["mean"] - exact) < 3 * result["stderr"]


def test_nll_of_standard_normal_with_baseline_denoiser():
    # eps_hat = sqrt(sigmoid(-a)) z is optimal for N(0, I): E_eps mse = d s(a)^2 + s(a) s(-a) ||x||^2,
    # so the estimate is (d/2) log(2 pi e) + 1/2 (||x||^2 - d)(sigmoid(hi) - sigmoid(lo)) per point
    # and exactly (d/2) log(2 pi e) in expectation over x, even with truncation.
    shape, loc, scale = (3, 4), 0.5, 2.0
    d = 12
    lo, hi = itd.truncation_interval(loc, scale)
    g = generator(7)
    x = torch.randn(4000, *shape, generator=g, dtype=torch.float64)

    def baseline(z, a):
        return torch.sigmoid(-a).sqrt()[:, None, None] * z

    result = itd.nll_estimate(baseline, x, 32, loc, scale, g, batch_size=1000)
    assert result["nll"].shape == (4000,) and result["d"] == d
    assert abs(result["mean"] - 0.5 * d * LOG_2PI_E) < 3 * result["stderr"]
    pointwise = 0.5 * d * LOG_2PI_E + 0.5 * (x.pow(2).flatten(1).sum(1) - d) * (expit(hi) - expit(lo))
    difference = result["nll"] - pointwise
    assert abs(difference.mean().item()) < 3 * difference.std().item() / math.sqrt(4000)
    # the mean over this set of the pointwise closed form is the estimator's target here
    assert abs(result["mean"] - pointwise.mean().item()) < 3 * difference.std().item() / math.sqrt(4000)


def test_nll_single_example_stderr_and_log_density_grid():
    cg = CorrelatedGaussian()
    pred = optimal_gaussian_eps_pred(cg.mean, cg.cov)
    loc, scale = itd.suggest_logistic_params_from_spectrum(cg.eigenvalues)
    points = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-2.0, -1.2], [0.3, -0.3]], dtype=torch.float64)
    estimate = itd.log_density_grid(pred, points, 20_000, loc, scale, generator(8))
    again = -itd.nll_estimate(pred, points, 20_000, loc, scale, generator(8))["nll"]
    torch.testing.assert_close(estimate, again, rtol=0, atol=0)
    exact = cg.log_prob(points)
    for i in range(points.shape[0]):
        single = itd.nll_estimate(pred, points[i : i + 1], 20_000, loc, scale, generator(9 + i))
        assert math.isfinite(single["stderr"]) and single["stderr"] < 0.2
        assert abs(-single["mean"] - exact[i].item()) < 4 * single["stderr"] + 2e-3


def test_nll_estimate_rejects_bad_predictor_shape_and_arguments():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"eps_pred returned shape \(6, 1\), expected \(6, 2\)"):
        itd.nll_estimate(lambda z, a: z[:, :1], x, 2, 0.0, 1.0)
    with pytest.raises(ValueError, match="num_samples"):
        itd.nll_estimate(lambda z, a: z, x, 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="loc must be a finite number"):
        itd.nll_estimate(lambda z, a: z, x, 2, float("nan"), 1.0)


# ---------------------------------------------------------------- choosing loc and scale


@pytest.mark.parametrize("loc,scale,d", [(0.0, 1.0, 1), (2.7, 0.6, 5), (-3.2, 3.5, 3072)])
def test_suggest_logistic_params_is_exact_for_a_logistic_curve(loc, scale, d):
    grid = torch.linspace(-40.123, 40.0, 997, dtype=torch.float64)  # crossings fall between grid points
    mse = d * torch.sigmoid((grid - loc) / scale)
    suggested_loc, suggested_scale = itd.suggest_logistic_params(grid, mse, d)
    assert suggested_loc == pytest.approx(loc, abs=1e-9)
    assert suggested_scale == pytest.approx(scale, rel=1e-9)
    # order of the grid does not matter
    reverse = itd.suggest_logistic_params(grid.flip(0), mse.flip(0), d)
    assert reverse == pytest.approx((suggested_loc, suggested_scale), rel=1e-12)


def test_suggest_logistic_params_errors_when_quantiles_are_not_crossed():
    grid = torch.linspace(-5, 0.5, 50, dtype=torch.float64)
    with pytest.raises(ValueError, match="never reaches 75% of d"):
        itd.suggest_logistic_params(grid, 2 * torch.sigmoid(grid), 2)
    with pytest.raises(ValueError, match="never reaches 50% of d"):
        itd.suggest_logistic_params(grid, 2 * torch.sigmoid(grid - 3), 2)
    with pytest.raises(ValueError, match="already at 50% of d at the lowest grid log SNR"):
        itd.suggest_logistic_params(grid, 2 * torch.sigmoid(grid + 9), 2)
    with pytest.raises(ValueError, match="same length"):
        itd.suggest_logistic_params(grid, grid[:-1], 2)


def test_suggest_from_spectrum_of_isotropic_gaussian():
    # N(0, lambda I): curve d sigmoid(a + log lambda), a logistic with loc = -log lambda, scale 1
    loc, scale = itd.suggest_logistic_params_from_spectrum([0.25] * 4)
    assert loc == pytest.approx(math.log(4.0), abs=1e-6)
    assert scale == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- MLP denoiser


def test_mlp_denoiser_shapes_zero_init_and_gradients():
    torch.manual_seed(0)
    net = MLPDenoiser(data_dim=2, hidden=32, depth=3, time_embedding_dim=16)
    x = torch.randn(7, 2)
    time = torch.linspace(-5, 5, 7)
    out = net(x, time)
    assert out.shape == (7, 2) and torch.count_nonzero(out) == 0
    (out - 1.0).pow(2).sum().backward()
    assert net.output.weight.grad.abs().sum() > 0 and net.output.bias.grad.abs().sum() > 0
    # after one step every layer receives gradient and the output depends on x and on time
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    net.zero_grad()
    out = net(x, time)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.zeros(7)), net(x, torch.full((7,), 3.0)))
        assert not torch.allclose(net(x, time), net(x + 1.0, time))
    assert net(x, torch.tensor(2.0)).shape == (7, 2)  # a scalar time is broadcast
    with pytest.raises(ValueError, match=r"x must hold 2 entries per example"):
        net(torch.zeros(3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        MLPDenoiser(data_dim=2, depth=0)


# ---------------------------------------------------------------- toy datasets


@pytest.mark.parametrize("name", sorted(TOY2D_DATASETS))
def test_toy_datasets_shapes_determinism_and_scale(name):
    distribution = make_toy2d(name)
    a = distribution.sample(20_000, generator(10))
    b = distribution.sample(20_000, generator(10))
    c = distribution.sample(20_000, generator(11))
    assert a.shape == (20_000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    mean_square = a.double().pow(2).mean().item()
    if name == "correlated_gaussian":
        assert mean_square == pytest.approx((4.0 + 0.05) / 2, rel=0.05)
        np.testing.assert_allclose(np.cov(a.double().numpy().T), distribution.cov.numpy(), atol=0.1)
    else:
        assert mean_square == pytest.approx(1.0, abs=0.03)  # E||x||^2 = d = 2 by construction
        assert a.double().mean(0).abs().max().item() < 0.03
    dataset = Toy2DDataset(name, 100, seed=3)
    assert len(dataset) == 100 and dataset[5].shape == (2,)
    assert torch.equal(dataset.points, Toy2DDataset(name, 100, seed=3).points)
    assert torch.equal(dataset.points, distribution.sample(100, generator(3)))


def test_gaussian_mixture_log_prob_matches_scipy():
    mixture = GaussianMixture()
    assert mixture.means.shape == (8, 2)
    x = mixture.sample(500, generator(12)).double()
    x[:5] = torch.tensor([[0.0, 0.0], [3.0, -3.0], [1.4, 0.0], [0.0, 1.2], [-1.0, -1.0]], dtype=torch.float64)
    components = np.stack(
        [
            stats.multivariate_normal(mean=m, cov=mixture.std**2 * np.eye(2)).logpdf(x.numpy())
            for m in mixture.means.numpy()
        ]
    )
    expected = logsumexp(components, axis=0) - math.log(8)
    np.testing.assert_allclose(mixture.log_prob(x).numpy(), expected, rtol=1e-10)
    assert mixture.log_prob(x.float()).dtype == torch.float32


def test_correlated_gaussian_log_prob_and_entropy_match_scipy():
    cg = CorrelatedGaussian()
    eigenvalues = np.linalg.eigvalsh(cg.cov.numpy())
    np.testing.assert_allclose(eigenvalues, [0.05, 4.0], rtol=1e-12)
    correlation = cg.cov[0, 1] / (cg.cov[0, 0] * cg.cov[1, 1]).sqrt()
    assert correlation.item() > 0.95 and cg.cov[0, 0].item() > 2 * cg.cov[1, 1].item()
    x = cg.sample(500, generator(13)).double()
    reference = stats.multivariate_normal(mean=np.zeros(2), cov=cg.cov.numpy())
    np.testing.assert_allclose(cg.log_prob(x).numpy(), reference.logpdf(x.numpy()), rtol=1e-10)
    assert cg.entropy() == pytest.approx(reference.entropy(), rel=1e-12)
    # a shifted mean moves log_prob with it
    shifted = CorrelatedGaussian(mean=(1.0, -1.0))
    np.testing.assert_allclose(
        shifted.log_prob(x + torch.tensor([1.0, -1.0], dtype=torch.float64)).numpy(), cg.log_prob(x).numpy(), rtol=1e-10
    )


def test_closed_form_log_prob_only_where_known():
    assert {name for name, cls in TOY2D_DATASETS.items() if cls.exact_log_prob} == {
        "gaussian_mixture",
        "correlated_gaussian",
    }
    with pytest.raises(NotImplementedError, match="Spiral has no closed-form log density"):
        make_toy2d("spiral").log_prob(torch.zeros(3, 2))


def test_unknown_toy_dataset_lists_known_names():
    with pytest.raises(
        ValueError,
        match="unknown toy2d dataset 'swissroll'; known: correlated_gaussian, gaussian_mixture, spiral, two_moons",
    ):
        Toy2DDataset("swissroll", 10, seed=0)
    with pytest.raises(ValueError, match="unknown toy2d dataset"):
        make_toy2d("moons")


# ---------------------------------------------------------------- end to end (slow)


@pytest.mark.slow
def test_trained_mlp_estimates_the_entropy_of_the_correlated_gaussian():
    """Train MLPDenoiser with the eps-MSE under the log-SNR proposal; its NLL estimate upper-bounds
    the entropy in expectation and should land close to it."""
    torch.manual_seed(0)
    cg = CorrelatedGaussian()
    loc, scale = itd.suggest_logistic_params_from_spectrum(cg.eigenvalues)
    net = MLPDenoiser(data_dim=2, hidden=128, depth=3, max_period=100.0)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = generator(14)
    data = cg.sample(50_000, g)
    for step in range(3000):
        x = data[torch.randint(len(data), (512,), generator=g)]
        logsnr, _ = itd.sample_truncated_logistic(512, loc, scale, g)
        eps = torch.randn(x.shape, generator=g)
        z = torch.sigmoid(logsnr).sqrt()[:, None] * x + torch.sigmoid(-logsnr).sqrt()[:, None] * eps
        loss = (eps - net(z, logsnr)).pow(2).sum(1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step == 2000:
            for group in optimiser.param_groups:
                group["lr"] = 5e-4
    net.eval()
    result = itd.nll_estimate(net, cg.sample(8000, generator(15)), 32, loc, scale, generator(16))
    assert abs(result["mean"] - cg.entropy()) < 0.1 + 3 * result["stderr"]
