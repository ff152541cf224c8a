"""Oracle checks of the processes' reverse steps and schedules, and which operators each accepts (what every
process keeps is in test_contract_processes.py)."""

import math

import numpy as np
import pytest
import torch

from model_code.operators import OPERATORS
from model_code.processes import PROCESSES, cosine_logsnr, cosine_time
from tests.helpers import IHDMOracle, make_operator, make_process, tiny_unet

SIZE = 8
K = 6


OPERATOR_SETTINGS = {"haar_pyramid": (4, dict(hflow_resolutions=(8, 4, 2, 1)))}  # K: one level per resolution


def operator(name, **overrides):
    levels, settings = OPERATOR_SETTINGS.get(name, (K, {}))
    return make_operator(name, levels, SIZE, **{**settings, **overrides})


def process(process_name, operator_name, **overrides):
    defaults = dict(sigma=0.02) if process_name == "ihdm" else dict(continuous_time=operator(operator_name).continuous)
    levels, settings = OPERATOR_SETTINGS.get(operator_name, (K, {}))
    return make_process(process_name, operator_name, levels, SIZE, **{**settings, **defaults, **overrides})


def test_every_operator_works_with_ihdm_and_the_gaussian_refusals_say_why():
    for name in OPERATORS.names():
        process("ihdm", name)
    process("gaussian", "blur")
    process("gaussian", "identity")
    diagonal = r"\(blur, constant_deceleration, constant_velocity, heat, identity, mask\)"
    with pytest.raises(ValueError, match=rf"diagonal in an orthonormal basis {diagonal}; 'random_matrix' is not"):
        process("gaussian", "random_matrix")
    with pytest.raises(ValueError, match="'constant_velocity' operator's spectrum reaches 0 at level K"):
        process("gaussian", "constant_velocity")
    with pytest.raises(ValueError, match="'heat' operator's spectrum reaches 0"):  # no floor: use blur
        process("gaussian", "heat")
    with pytest.raises(ValueError, match="integer levels only"):
        PROCESSES.build("gaussian", operator=operator("heat"), continuous_time=True)


@pytest.mark.parametrize("operator_name", OPERATORS.names())
def test_ihdm_oracle_reverse_step_gives_the_forward_quantity(operator_name):
    proc = process("ihdm", operator_name)
    x0 = torch.rand(3, 1, SIZE, SIZE)
    oracle = IHDMOracle(proc, x0)
    for k in range(1, proc.K + 1):
        levels = torch.full((3,), k)
        u = proc.operator(x0, levels) + proc.sigma * torch.randn_like(x0)
        out = proc.denoiser(oracle).ancestral_step(u, k, k - 1, torch.zeros_like(x0))
        torch.testing.assert_close(out, proc.operator(x0, levels - 1), atol=1e-5, rtol=1e-5)


class EpsOracle(torch.nn.Module):
    """Returns the true noise of u_t: knows x0 and the level (from the model time)."""

    def __init__(self, proc, x0):
        super().__init__()
        self.proc, self.x0 = proc, x0

    def forward(self, u, time):
        levels = (cosine_time(cosine_logsnr(time / 1000, -10, 10), -10, 10) * K).round().long()
        alpha, sigma, _ = self.proc.marginal(levels)
        return (u - self.proc.operator.from_basis(alpha * self.proc.operator.to_basis(self.x0))) / sigma


def test_gaussian_identity_oracle_matches_the_closed_form_ddpm_posterior():
    proc = process("gaussian", "identity")
    proc.clip_denoised = False
    x0 = torch.rand(2, 1, SIZE, SIZE, dtype=torch.float64).float() * 2 - 1
    oracle = EpsOracle(proc, x0)
    for k in range(2, K + 1):
        # DDPM in its own notation: abar = sigmoid(logsnr), alpha_step = abar_t / abar_s, beta = 1 - alpha_step
        abar_t = 1 / (1 + math.exp(-float(cosine_logsnr(torch.tensor(k / K, dtype=torch.float64), -10, 10))))
        abar_s = 1 / (1 + math.exp(-float(cosine_logsnr(torch.tensor((k - 1) / K, dtype=torch.float64), -10, 10))))
        alpha_step, beta = abar_t / abar_s, 1 - abar_t / abar_s
        eps = torch.randn_like(x0)
        u = math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps
        mean = math.sqrt(abar_s) * beta / (1 - abar_t) * x0 + math.sqrt(alpha_step) * (1 - abar_s) / (1 - abar_t) * u
        variance = (1 - abar_s) / (1 - abar_t) * beta
        noise = torch.randn_like(x0)
        out = proc.denoiser(oracle).ancestral_step(u, k, k - 1, noise)
        torch.testing.assert_close(out, mean + math.sqrt(variance) * noise, atol=2e-4, rtol=1e-4)
    last = proc.denoiser(oracle).ancestral_step(math.sqrt(0.9) * x0, 1, 0, noise)
    torch.testing.assert_close(last, x0, atol=1e-3, rtol=0)


def test_gaussian_blur_posterior_matches_a_per_frequency_float64_computation():
    proc = process("gaussian", "blur")
    proc.clip_denoised = False
    x0 = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
    k = 4
    eps = torch.randn_like(x0)
    u = proc.diffuse(x0, torch.tensor([k]), eps)
    noise = torch.randn_like(x0)
    out = proc.denoiser(EpsOracle(proc, x0)).ancestral_step(u, k, k - 1, noise)

    def per_frequency(level):
        t = level / K
        logsnr = float(cosine_logsnr(torch.tensor(t, dtype=torch.float64), -10, 10))
        freqs = (np.pi * np.arange(SIZE) / SIZE) ** 2
        lam = freqs[:, None] + freqs[None, :]
        tau = (4.0 * np.sin(np.pi * t / 2) ** 2) ** 2 / 2
        d = 0.999 * np.exp(-lam * tau) + 0.001
        return np.sqrt(1 / (1 + np.exp(-logsnr))) * d, np.sqrt(1 / (1 + np.exp(logsnr)))

    import scipy.fft

    (a_t, s_t), (a_s, s_s) = per_frequency(k), per_frequency(k - 1)
    x_c = scipy.fft.dctn(x0[0, 0].double().numpy(), norm="ortho")
    u_c = scipy.fft.dctn(u[0, 0].double().numpy(), norm="ortho")
    a_ts = a_t / a_s
    v_ts = s_t**2 - a_ts**2 * s_s**2
    var = v_ts * s_s**2 / s_t**2
    mean = var * (a_ts / v_ts * u_c + a_s / s_s**2 * x_c)
    expected = scipy.fft.idctn(mean + np.sqrt(var) * noise[0, 0].double().numpy(), norm="ortho")
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=5e-4)


def test_blur_without_blur_gives_exactly_the_ddpm_marginals():
    blur = process("gaussian", "blur", blurring_sigma_max=0.0)
    identity = process("gaussian", "identity")
    x0, eps = torch.rand(3, 1, SIZE, SIZE), torch.randn(3, 1, SIZE, SIZE)
    levels = torch.tensor([0.5, 2.0, 6.0])
    u_blur = blur.diffuse(x0, levels, eps)
    u_identity = identity.diffuse(x0, levels, eps)
    logsnr = blur.logsnr(levels / K)
    expected = (
        torch.sigmoid(logsnr).sqrt()[:, None, None, None] * x0
        + torch.sigmoid(-logsnr).sqrt()[:, None, None, None] * eps
    )
    torch.testing.assert_close(u_blur, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(u_identity, expected, atol=1e-6, rtol=0)


def test_cosine_schedule_endpoints_and_inverse():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    logsnr = cosine_logsnr(t, -10, 10)
    assert logsnr[0].item() == pytest.approx(10) and logsnr[-1].item() == pytest.approx(-10)
    torch.testing.assert_close(cosine_time(logsnr, -10, 10), t)


class VOracle(torch.nn.Module):
    """Returns the true v of u_t at any (real) level: v = B^T((alpha B eps - sigma B x0) / r) per coefficient,
    r^2 = alpha^2 + sigma^2, with eps recovered from u_t and x0; the level comes from the model time 1000 t."""

    def __init__(self, proc, x0):
        super().__init__()
        self.proc, self.x0 = proc, x0

    def forward(self, u, time):
        alpha, sigma, _ = self.proc.marginal(time / 1000 * K)
        to_basis, from_basis = self.proc.operator.to_basis, self.proc.operator.from_basis
        eps = (to_basis(u) - alpha * to_basis(self.x0)) / sigma
        return from_basis((alpha * eps - sigma * to_basis(self.x0)) / (alpha**2 + sigma**2).sqrt())


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_v_prediction_with_the_true_v_samples_as_eps_prediction_with_the_true_eps(operator_name):
    eps_process = process("gaussian", operator_name)
    v_process = process("gaussian", operator_name, prediction="v")
    eps_process.clip_denoised = v_process.clip_denoised = False
    x0 = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    for k in range(1, K + 1):
        u = eps_process.diffuse(x0, torch.full((2,), k), torch.randn_like(x0))
        x_hat = v_process.denoiser(VOracle(v_process, x0)).x0(u, torch.full((2,), k), clip=False)
        torch.testing.assert_close(v_process.operator.from_basis(x_hat), x0, atol=2e-4, rtol=0)
        noise = torch.randn_like(x0)
        expected = eps_process.denoiser(EpsOracle(eps_process, x0)).ancestral_step(u, k, k - 1, noise)
        sampled = v_process.denoiser(VOracle(v_process, x0)).ancestral_step(u, k, k - 1, noise)
        torch.testing.assert_close(sampled, expected, atol=2e-4, rtol=0)


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_v_prediction_trains_on_the_true_v(operator_name):
    v_process = process("gaussian", operator_name, prediction="v")
    x0 = torch.rand(16, 1, SIZE, SIZE) * 2 - 1
    losses, t = v_process.loss(VOracle(v_process, x0), x0, torch.Generator().manual_seed(0))
    assert losses.max() < 1e-9 and t.min() < 0.3 and t.max() > 0.7  # zero at levels across the range


def test_v_prediction_keeps_the_logistic_loss_an_estimate_of_the_eps_integral():
    """With logistic log-SNR sampling a v network is trained on the same integral as the eps network it
    implies: eps_hat = sigma z + alpha v_hat, so the v loss is the eps loss of that network."""
    v_process = process("gaussian", "identity", prediction="v", logsnr_sampling="logistic")
    eps_process = process("gaussian", "identity", logsnr_sampling="logistic")
    v_net = tiny_unet()
    implied_eps = v_process.itd_eps_predictor(v_net)

    def eps_net(z, time):
        return implied_eps(z, cosine_logsnr(time / 1000, -10, 10))

    x0 = torch.rand(8, 1, SIZE, SIZE) * 2 - 1
    v_loss, _ = v_process.loss(v_net, x0, torch.Generator().manual_seed(3))
    eps_loss, _ = eps_process.loss(eps_net, x0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(v_loss, eps_loss, rtol=1e-4, atol=1e-6)
    logsnr = torch.tensor([-3.0, 0.0, 4.0])
    eps = torch.randn_like(x0[:3])
    u = eps_process.diffuse(x0[:3], cosine_time(logsnr, -10, 10) * K, eps)
    true_eps = v_process.itd_eps_predictor(VOracle(v_process, x0[:3]))(u, logsnr)
    torch.testing.assert_close(true_eps, eps, atol=1e-4, rtol=0)


def test_prediction_must_be_eps_or_v():
    with pytest.raises(ValueError, match=r"prediction='x'; allowed: eps, v"):
        process("gaussian", "identity", prediction="x")
