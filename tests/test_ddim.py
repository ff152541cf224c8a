"""Few-step (DDIM) sampling and deterministic latents of the gaussian process.

Closed forms in float64 for the skipping step, an oracle denoiser of Gaussian data for the deterministic
encoding, and the sample.py / evaluate.py flags on a tiny trained run.
"""

import json
import math
import os
import re

import numpy as np
import pytest
import torch

from model_code import latents
from model_code.priors import PRIORS, randn_per_generator
from model_code.processes import PROCESSES
from model_code.randomness import NOISE_STREAM, seeded_generators
from model_code.samplers import SAMPLERS
from model_code.samplers.spec import SamplingSpec
from scripts.api import Model
from scripts.sampling.sampler import sample
from tests.helpers import GaussianDataOracle, make_operator, make_process, run_command, tiny_unet, train_tiny_run

SIZE = 8


def gaussian(operator_name, K, **settings):
    return make_process("gaussian", operator_name, K, SIZE, **settings)


def test_sampling_levels_are_evenly_spaced_and_checked():
    process = gaussian("identity", 10)
    assert process.sampling_levels() == process.sampling_levels(10) == list(range(10, 0, -1))
    assert process.sampling_levels(3) == [10, 7, 4]
    assert process.sampling_levels(4) == [10, 8, 5, 3]
    assert process.sampling_levels(1) == [10]
    for steps in (0, 11, -2):
        with pytest.raises(ValueError, match=f"steps={steps} is outside 1..10"):
            process.sampling_levels(steps)
    ihdm = PROCESSES.build("ihdm", operator=make_operator("heat", 10, SIZE), sigma=0.01)
    assert ihdm.sampling_levels(10) == list(range(10, 0, -1))
    with pytest.raises(ValueError, match="steps=5: the ihdm process cannot skip levels"):
        ihdm.sampling_levels(5)


def schedule64(process, k):
    """(alpha per coefficient [1, 1, H, W], sigma) at level k in float64, from the cosine log SNR and the spectrum."""
    b = math.atan(math.exp(-process.logsnr_max / 2))
    a = math.atan(math.exp(-process.logsnr_min / 2)) - b
    logsnr = -2 * math.log(math.tan(a * k / process.K + b))
    spectrum = process.operator.spectrum(torch.tensor([k])).double()
    return math.sqrt(1 / (1 + math.exp(-logsnr))) * spectrum, math.sqrt(1 / (1 + math.exp(logsnr)))


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_a_skipping_step_is_the_posterior_at_eta_one_and_its_mean_at_eta_zero(operator_name):
    """From level 9 to 4 of K = 10: eta = 1 gives N(mu, v) of q(u_4 | u_9, x = x_hat) per frequency (computed here
    in float64 from the schedule), eta = 0 gives alpha_s x_hat + sigma_s eps_hat, and eta = 0.5 the variance /4."""
    torch.manual_seed(0)
    noise = torch.randn(3, 1, SIZE, SIZE)
    process = gaussian(operator_name, 10, clip_denoised=False)
    net = GaussianDataOracle(process, torch.zeros(1, 1, SIZE, SIZE), 0.5 * torch.ones(1, 1, SIZE, SIZE))
    u = process.diffuse(torch.rand(3, 1, SIZE, SIZE) * 2 - 1, torch.full((3,), 9), torch.randn(3, 1, SIZE, SIZE))
    denoiser = process.denoiser(net)
    x_hat = denoiser.x0(u, torch.full((3,), 9), clip=False).double()
    alpha_t, sigma_t = schedule64(process, 9)
    alpha_s, sigma_s = schedule64(process, 4)
    alpha_ts, var_ts = alpha_t / alpha_s, sigma_t**2 - (alpha_t / alpha_s) ** 2 * sigma_s**2
    var = var_ts * sigma_s**2 / sigma_t**2
    u_basis = process.operator.to_basis(u).double()
    mean = var * (alpha_ts / var_ts * u_basis + alpha_s / sigma_s**2 * x_hat)
    to_pixels = lambda c: process.operator.from_basis(c.float())
    with torch.no_grad():
        stochastic = denoiser.ancestral_step(u, 9, 4, noise)
        torch.testing.assert_close(stochastic, to_pixels(mean + var.sqrt() * noise.double()), atol=1e-4, rtol=0)
        deterministic = denoiser.ddim_step(u, 9, 4, 0.0, noise)
        eps_hat = (u_basis - alpha_t * x_hat) / sigma_t
        torch.testing.assert_close(deterministic, to_pixels(alpha_s * x_hat + sigma_s * eps_hat), atol=1e-4, rtol=0)
        half = denoiser.ddim_step(u, 9, 4, 0.5, noise)
        c2 = 0.25 * var
        expected = alpha_s * x_hat + (sigma_s**2 - c2).sqrt() * eps_hat + c2.sqrt() * noise.double()
        torch.testing.assert_close(half, to_pixels(expected), atol=1e-4, rtol=0)


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_deterministic_encoding_error_falls_with_the_steps_and_is_tiny_at_K(operator_name):
    K = 1000
    process = gaussian(operator_name, K, clip_denoised=False)
    generator = torch.Generator().manual_seed(0)
    mean = 0.3 * torch.randn(1, 1, SIZE, SIZE, generator=generator)
    std = 0.05 + 0.4 * torch.rand(1, 1, SIZE, SIZE, generator=generator)
    x0 = process.operator.from_basis(mean + std * torch.randn(16, 1, SIZE, SIZE, generator=generator))
    oracle = GaussianDataOracle(process, mean, std)
    errors = []
    for steps in (10, 30, 100, K):
        levels = process.sampling_levels(steps)
        ddim = (process.denoiser(oracle), SAMPLERS.get("ddim"), {"eta": 0.0})
        prior_state = latents.encode_deterministic(*ddim, x0, levels)
        decoded = latents.decode_deterministic(*ddim, prior_state, levels)
        errors.append((decoded - x0).pow(2).mean().sqrt().item())
    assert errors == sorted(errors, reverse=True) and errors[0] > 10 * errors[-1], errors
    assert errors[-1] < 1e-4, errors  # 1.5e-3 without the fixed-point refinement
    # u_K of Gaussian data under the probability flow is Gaussian with std sqrt(alpha_1^2 s^2 + sigma_1^2) ~ 1
    assert abs(prior_state.std().item() - 1) < 0.05


def test_every_step_of_the_ancestral_sampler_is_the_ddim_step_at_eta_one():
    """sample(steps=K) with eta = 1 draws what an independent float64 loop of DDPM posteriors draws, same seeds."""
    torch.manual_seed(1)
    K, net = 6, tiny_unet().eval()
    process = gaussian("identity", K, clip_denoised=True)
    prior = PRIORS.build("standard_normal", process=process)
    spec = SamplingSpec(steps=K)
    out = sample(process, net, prior, mode="random", count=3, seed=4, shape=(1, SIZE, SIZE), device="cpu", spec=spec)
    u = out["initial"]
    generators = seeded_generators(4, NOISE_STREAM, range(3))
    with torch.no_grad():
        for k in range(K, 0, -1):
            noise = randn_per_generator(generators, (1, SIZE, SIZE), "cpu").double()
            x_hat = process.denoiser(net).x0(u, torch.full((3,), k), clip=True).double()
            if k == 1:
                u = x_hat.float()
                break
            (alpha_t, sigma_t), (alpha_s, sigma_s) = schedule64(process, k), schedule64(process, k - 1)
            a2_t, s2_t, a2_s, s2_s = alpha_t.max().item() ** 2, sigma_t**2, alpha_s.max().item() ** 2, sigma_s**2
            var_ts = s2_t - a2_t / a2_s * s2_s
            var = var_ts * s2_s / s2_t
            mean = var * (math.sqrt(a2_t / a2_s) / var_ts * u.double() + math.sqrt(a2_s) / s2_s * x_hat)
            u = (mean + math.sqrt(var) * noise).float()
    torch.testing.assert_close(out["samples"], u, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def gaussian_run(tmp_path_factory):
    """A tiny blurring-diffusion run (K = 5) trained for 2 steps."""
    folder = str(tmp_path_factory.mktemp("gaussian_run"))
    return train_tiny_run(folder, process="gaussian", forward="blur", prior="standard_normal")


def sampled(workdir, *flags):
    """Run sample.py with ``flags`` (3 images, seed 2); returns (its output folder, the samples)."""
    result = run_command("sample.py", "--workdir", workdir, "--batch_size=3", "--seed=2", *flags)
    assert result.returncode == 0, result.stderr
    folder = next(line.strip() for line in result.stdout.splitlines() if line.strip().endswith("samples.npz"))
    return os.path.basename(os.path.dirname(folder)), torch.from_numpy(np.load(folder)["samples"])


def test_steps_K_eta_one_is_the_ancestral_sampler_and_fewer_steps_match_the_api(gaussian_run):
    _, ancestral = sampled(gaussian_run)
    name, full = sampled(gaussian_run, "--steps=5", "--eta=1")
    assert name.endswith("_seed2_steps5_eta1") and torch.equal(full, ancestral)
    name, few = sampled(gaussian_run, "--steps=2", "--eta=0")
    assert name.endswith("_seed2_steps2_eta0")
    api = Model.from_run(gaussian_run).sample(3, seed=2, steps=2, eta=0.0)
    torch.testing.assert_close(few, api, atol=1e-6, rtol=0)
    assert (few - ancestral).abs().max() > 1e-2


def test_deterministic_interpolation_command(gaussian_run, tmp_path):
    from PIL import Image

    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    for path, value in zip(paths, (40, 200)):
        Image.new("L", (12, 9), value).save(path)
    flags = ["--interpolate", f"--image_a={paths[0]}", f"--image_b={paths[1]}", "--deterministic", "--steps=5"]
    result = run_command("sample.py", "--workdir", gaussian_run, "--num_points=4", *flags)
    assert result.returncode == 0, result.stderr
    assert "reconstruction error of the deterministic latents" in result.stdout
    npz = next(line.strip() for line in result.stdout.splitlines() if line.strip().endswith("samples.npz"))
    assert "_steps5_deterministic" in npz
    model = Model.from_run(gaussian_run)
    images = model.load_images(paths)
    expected, errors = model.interpolate_deterministic(images[0], images[1], num_points=4, steps=5)
    torch.testing.assert_close(torch.from_numpy(np.load(npz)["samples"]), expected, atol=1e-5, rtol=0)
    ends = expected[[0, -1]]
    torch.testing.assert_close((ends - images).flatten(1).pow(2).mean(1).sqrt(), errors, atol=1e-5, rtol=1e-4)


def test_fid_with_few_steps_records_them(gaussian_run, tmp_path):
    flags = ["--mode=fid", "--feature_net=fast_random_conv", f"--stats_dir={tmp_path}", "--num_gen=8", "--steps=2"]
    result = run_command("evaluate.py", "--workdir", gaussian_run, "--experiment_name=steps", "--eta=0", *flags)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(gaussian_run, "evaluation_results", "steps", "results.json")) as handle:
        entry = json.load(handle)["default"]["fid"]
    assert entry["steps"] == 2 and entry["eta"] == 0.0 and "2 steps" in entry["headline"]


def test_the_readme_snippet_for_gaussian_models_runs(gaussian_run):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    section = open(os.path.join(root, "README.md")).read().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    snippet = next(s for s in re.findall(r"```python\n(.*?)```", section, re.S) if "encode_deterministic" in s)
    namespace = {}
    exec(
        compile(
            snippet.replace("runs/quick_ddpm", gaussian_run)
            .replace("=20", "=2")
            .replace("=50", "=5")
            .replace("=10", "=3"),
            "README",
            "exec",
        ),
        namespace,
    )
    assert namespace["fast"].shape == (8, 1, 8, 8) and namespace["path"].shape == (9, 1, 8, 8)
    rms = (namespace["back"] - namespace["x"]).flatten(1).pow(2).mean(1).sqrt()
    torch.testing.assert_close(rms, namespace["error"], atol=1e-6, rtol=0)
