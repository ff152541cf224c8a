"""The ODE samplers against closed forms and independent float64 re-derivations.

Gaussian data with independent coefficients x_f ~ N(m_f, s_f^2) in the operator's basis has the exact denoiser
in closed form (``GaussianDataOracle``), and its probability-flow ODE keeps (u_f - alpha_f m_f) / r_f fixed,
r_f^2 = alpha_f^2 s_f^2 + sigma^2: the exact solution between any two levels. Heun and DPM-Solver++(2M) must
converge to it at order 2, for DDPM (identity) and blurring diffusion (blur, each frequency its own alpha).
For DDPM they must also take the very steps of EDM's Heun (Algorithm 1, in EDM's own variables) and of
DPM-Solver++(2M) as diffusers' multistep scheduler writes it, both re-derived here in float64.
"""

import math

import numpy as np
import pytest
import torch

from model_code.samplers import GRIDS, SAMPLERS
from model_code.samplers.spec import SamplingSpec
from tests.helpers import GaussianDataOracle, make_process, run_command, train_tiny_run

SIZE = 4
K = 1000
STEPS = (32, 64, 128, 256)  # past the first, large steps (log SNR -10 to 9.6), where the order is not yet seen


def gaussian_data(operator_name):
    """(process in float64, oracle network, its data's mean and std in the basis [1, 1, H, W], u_K [6, 1, H, W])."""
    process = make_process("gaussian", operator_name, K, SIZE, blur_sigma_max=2.0, clip_denoised=False).double()
    generator = torch.Generator().manual_seed(0)
    mean = 0.3 * torch.randn(1, 1, SIZE, SIZE, generator=generator, dtype=torch.float64)
    std = 0.05 + 0.4 * torch.rand(1, 1, SIZE, SIZE, generator=generator, dtype=torch.float64)
    prior_state = torch.randn(6, 1, SIZE, SIZE, generator=generator, dtype=torch.float64)
    return process, GaussianDataOracle(process, mean, std), mean, std, prior_state


def exact_flow(process, mean, std, u, k_from, k_to):
    """The probability-flow ODE's solution from level k_from to k_to for the Gaussian data, per coefficient."""
    denoiser = process.denoiser(None)
    (alpha_a, sigma_a), (alpha_b, sigma_b) = denoiser.marginal(k_from, u), denoiser.marginal(k_to, u)
    standardised = (process.operator.to_basis(u) - alpha_a * mean) / (alpha_a**2 * std**2 + sigma_a**2).sqrt()
    return process.operator.from_basis(alpha_b * mean + (alpha_b**2 * std**2 + sigma_b**2).sqrt() * standardised)


def run(sampler, process, net, u, levels, **settings):
    return SAMPLERS.get(sampler)(process.denoiser(net), levels, u, None, lambda i, state: None, **settings)


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2m"])
def test_ode_samplers_converge_at_order_two_to_the_exact_flow(float64, sampler, operator_name):
    process, net, mean, std, prior_state = gaussian_data(operator_name)
    errors = []
    for steps in STEPS:
        levels = GRIDS.get("logsnr")(process.denoiser(net), steps)  # from K to 1 whatever the steps
        exact = exact_flow(process, mean, std, prior_state, K, levels[-1])
        errors.append((run(sampler, process, net, prior_state, levels) - exact).abs().max().item())
    slope = np.polyfit(np.log(STEPS), np.log(errors), 1)[0]
    assert -2.6 < slope < -1.7, (errors, slope)


def ddpm_schedule(process, level):
    """(alpha, sigma) of the cosine schedule at a level, float64 scalars, computed here from the formula."""
    b = math.atan(math.exp(-process.logsnr_max / 2))
    a = math.atan(math.exp(-process.logsnr_min / 2)) - b
    logsnr = -2 * math.log(math.tan(a * level / process.K + b))
    return math.sqrt(1 / (1 + math.exp(-logsnr))), math.sqrt(1 / (1 + math.exp(logsnr)))


def x0_of(process, net, u, level):
    """x0_hat of the oracle at u (pixels = basis for the identity), written out for the eps network."""
    alpha, sigma = ddpm_schedule(process, level)
    time = torch.full((u.shape[0],), 1000 * level / process.K)
    return (u - sigma * net(u, time)) / alpha


def edm_heun(process, net, u, levels):
    """EDM's Algorithm 1 in its variables: x = u / alpha, sigma_i = sigma / alpha, D(x; sigma_i) = x0_hat."""
    schedule = [ddpm_schedule(process, level) for level in levels]
    sigmas = [s / a for a, s in schedule] + [0.0]
    x = u / schedule[0][0]
    for i in range(len(levels)):
        denoised = x0_of(process, net, schedule[i][0] * x, levels[i])
        d = (x - denoised) / sigmas[i]
        x_next = x + (sigmas[i + 1] - sigmas[i]) * d
        if sigmas[i + 1] > 0:
            alpha_next = schedule[i + 1][0]
            d_next = (x_next - x0_of(process, net, alpha_next * x_next, levels[i + 1])) / sigmas[i + 1]
            x_next = x + (sigmas[i + 1] - sigmas[i]) * (0.5 * d + 0.5 * d_next)
        x = x_next
    return x  # at sigma = 0, x is the data estimate


def diffusers_dpmpp_2m(process, net, u, levels):
    """DPM-Solver++(2M) as diffusers' DPMSolverMultistepScheduler (algorithm_type="dpmsolver++", solver_order=2,
    midpoint) writes it: with m0, m1 the last two model outputs, D0 = m0, D1 = (m0 - m1) / r0,
    x_t = (sigma_t / sigma_s0) x - alpha_t (e^{-h} - 1) D0 - 0.5 alpha_t (e^{-h} - 1) D1; the first step and the
    last (to the data) are first order."""
    outputs, lambdas = [], []
    x = u
    for i, level in enumerate(levels):
        alpha_s, sigma_s = ddpm_schedule(process, level)
        outputs.append(x0_of(process, net, x, level))
        lambdas.append(math.log(alpha_s / sigma_s))
        if i == len(levels) - 1:
            return outputs[-1]
        alpha_t, sigma_t = ddpm_schedule(process, levels[i + 1])
        h = math.log(alpha_t / sigma_t) - lambdas[-1]
        first_order = (sigma_t / sigma_s) * x - alpha_t * (math.exp(-h) - 1.0) * outputs[-1]
        if i == 0:
            x = first_order
        else:
            r0 = (lambdas[-1] - lambdas[-2]) / h
            d1 = (outputs[-1] - outputs[-2]) / r0
            x = first_order - 0.5 * alpha_t * (math.exp(-h) - 1.0) * d1


@pytest.mark.parametrize(
    "sampler, reference", [("heun", edm_heun), ("dpmpp_2m", diffusers_dpmpp_2m)], ids=["heun", "dpmpp_2m"]
)
def test_ddpm_steps_are_edm_heun_and_diffusers_dpmpp_2m(float64, sampler, reference):
    process, net, _, _, prior_state = gaussian_data("identity")
    levels = GRIDS.get("edm")(process.denoiser(net), 7)
    ours = run(sampler, process, net, prior_state, [*levels, 0])
    # the process evaluates its schedule in float32 (as everywhere), the references in float64
    torch.testing.assert_close(ours, reference(process, net, prior_state, levels), atol=2e-6, rtol=2e-5)


def test_grids_follow_their_formulas(float64):
    process, net, *_ = gaussian_data("identity")
    denoiser = process.denoiser(net)
    assert GRIDS.get("uniform")(denoiser, 4) == process.sampling_levels(4) == [1000, 750, 500, 250]
    edm = GRIDS.get("edm")(denoiser, 5)
    noise_levels = [math.exp(-denoiser.logsnr(level) / 2) for level in edm]
    high, low = noise_levels[0] ** (1 / 7), noise_levels[-1] ** (1 / 7)
    expected = [(high + i / 4 * (low - high)) ** 7 for i in range(5)]
    np.testing.assert_allclose(noise_levels, expected, rtol=1e-9)
    assert edm[0] == K and edm[-1] == 1 and edm == sorted(edm, reverse=True)
    logsnrs = [denoiser.logsnr(level) for level in GRIDS.get("logsnr")(denoiser, 5)]
    np.testing.assert_allclose(np.diff(logsnrs), np.full(4, (logsnrs[-1] - logsnrs[0]) / 4), rtol=1e-9)


def test_heun_spends_two_evaluations_a_step_but_the_last_and_churn_draws_noise(float64):
    process, net, _, _, prior_state = gaussian_data("blur")
    for sampler, settings, nfe in (("heun", {}, 9), ("dpmpp_2m", {}, 5), ("ddim", {"eta": 0.0}, 5)):
        denoiser = process.denoiser(net)
        levels = [*GRIDS.get("edm")(denoiser, 5), 0]
        SAMPLERS.get(sampler)(denoiser, levels, prior_state, None, lambda i, state: None, **settings)
        assert denoiser.nfe == nfe, sampler
    draws = []

    def noise():
        draws.append(torch.randn(prior_state.shape))
        return draws[-1]

    levels = [*GRIDS.get("edm")(process.denoiser(net), 5), 0]
    churned = SAMPLERS.get("heun")(process.denoiser(net), levels, prior_state, noise, lambda i, s: None, churn=2.0)
    assert len(draws) == 5 and torch.isfinite(churned).all()
    assert not torch.allclose(churned, run("heun", process, net, prior_state, levels))


def test_specs_refuse_what_the_model_cannot_run():
    ihdm = make_process("ihdm", "heat", 5, SIZE, sigma=0.01)
    with pytest.raises(
        ValueError, match="sampler='heun': the 'ihdm' process cannot run it.*allowed for this process: ancestral"
    ):
        SamplingSpec(sampler="heun").levels(ihdm.denoiser(None), "ihdm")
    discrete = make_process("gaussian", "identity", 5, SIZE, continuous_time=False)
    with pytest.raises(ValueError, match="grid='edm' places levels between the integers"):
        SamplingSpec(sampler="heun", grid="edm").levels(discrete.denoiser(None), "gaussian")
    with pytest.raises(ValueError, match="churn=1.0 raises the noise between the levels"):
        SamplingSpec(sampler="heun", churn=1.0).levels(discrete.denoiser(None), "gaussian")
    with pytest.raises(ValueError, match="steps=9: an integer in 1..5"):
        SamplingSpec(steps=9).levels(discrete.denoiser(None), "gaussian")
    for spec, message in (
        (
            SamplingSpec(sampler="euler"),
            "unknown sampler 'euler'; known: ancestral, cold_default, ddim, dpmpp_2m, flow_inverse, heun, x0_step_down",
        ),
        (SamplingSpec(grid="cosine"), "unknown grid 'cosine'; known: edm, logsnr, uniform"),
        (SamplingSpec(sampler="heun", eta=0.5), "eta=0.5 does not apply to sampler=heun; allowed with sampler=ddim"),
        (SamplingSpec(sampler="heun", churn=-1.0), "churn=-1.0: a finite number >= 0"),
        (SamplingSpec(sampler="ddim", eta=1.5), r"eta=1.5: a number in \[0, 1\]"),
    ):
        with pytest.raises(ValueError, match=message):
            spec.check()
    assert SamplingSpec.from_options(eta=0.5).sampler == "ddim" and SamplingSpec.from_options().sampler is None
    assert SamplingSpec().for_process(discrete).sampler == "ancestral"


def test_no_process_constructor_takes_a_sampler_setting():
    import inspect

    from model_code.processes import PROCESSES

    sampler_settings = {"eta", "churn", "sampler", "grid", "steps", "temperature", "noise_temperature"}
    for name in PROCESSES.names():
        taken = set(inspect.signature(PROCESSES.get(name)).parameters) & sampler_settings
        assert not taken, f"process {name!r} takes sampler settings {taken}"


def test_the_sampling_benchmark_times_every_sampler_per_nfe_against_ancestral(tmp_path):
    workdir = train_tiny_run(str(tmp_path / "run"), process="gaussian", forward="identity")
    result = run_command(
        "-m", "scripts.benchmark_sampling", f"--workdir={workdir}", "--steps=3", "--batch_size=2",
        "--mixed_precision=bf16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:2]): line.split() for line in result.stdout.splitlines() if line.startswith("  ")}
    gaussian = [name for name in SAMPLERS.names() if SAMPLERS.metadata(name)["needs"] in ("ancestral", "marginal")]
    # every sampler the gaussian process can run, in float32 (the reference) and in the precision asked for
    assert sorted(rows) == sorted((name, precision) for name in gaussian for precision in ("float32", "bf16"))
    assert rows[("ancestral", "float32")][-3] == "1.000x"
    assert rows[("heun", "bf16")][2] == "5" and rows[("dpmpp_2m", "float32")][2] == "3"
