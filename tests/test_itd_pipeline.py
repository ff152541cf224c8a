"""Information-theoretic diffusion in the framework: logistic log-SNR training, nll_itd, 2D data end to end."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from scripts.config import build
from scripts.training.trainer import Trainer
from tests.helpers import load_config_file, make_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gaussian(name="identity", **kwargs):
    return make_process("gaussian", name, 10, 4, blurring_sigma_max=2.0, **kwargs)


def test_logistic_training_loss_is_the_weighted_eps_mse():
    from model_code.itd import sample_truncated_logistic

    process = gaussian(logsnr_sampling="logistic", logistic_loc=1.0, logistic_scale=2.0)
    x0 = torch.randn(6, 2, 4, 4)
    zero = lambda u, time: torch.zeros_like(u)
    losses, _ = process.loss(zero, x0, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    _, weight = sample_truncated_logistic(6, 1.0, 2.0, generator)
    eps = torch.randn(x0.shape, generator=generator)
    torch.testing.assert_close(losses, weight * eps.pow(2).flatten(1).mean(1))


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="plain Gaussian channel.*'blur' operator degrades the signal"):
        gaussian("blur", logsnr_sampling="logistic")
    with pytest.raises(ValueError, match="scale must be a positive finite number, got -1"):
        gaussian(logsnr_sampling="logistic", logistic_scale=-1.0)
    with pytest.raises(ValueError, match="plain Gaussian channel"):
        gaussian("blur").itd_eps_predictor(torch.nn.Identity())
    ihdm = make_process("ihdm", "identity", 3, 2, sigma=0.1)
    with pytest.raises(
        ValueError, match="needs the gaussian process with the identity operator; this model uses the 'ihdm' process"
    ):
        ihdm.itd_eps_predictor(torch.nn.Identity())


def test_toy_datasets_in_the_pipeline():
    config = load_config_file(os.path.join(ROOT, "configs", "toy2d", "two_moons.py"))
    process = build.build_process(config)
    data = build.build_data(config, "train", process)
    assert data.kind == "points" and len(data) == 50000
    batch = data.prepare(data.raw_batch(range(4)))
    assert batch.shape == (4, 2, 1, 1) and build.data_shape(config) == (2, 1, 1)
    config.data.image_size = 4
    with pytest.raises(ValueError, match="data.num_channels=2 and data.image_size=1"):
        build.build_data(config, "train", process)


@pytest.fixture(scope="module")
def trained_gaussian(tmp_path_factory):
    """A short real training run on the correlated Gaussian (exact entropy known)."""
    workdir = str(tmp_path_factory.mktemp("correlated"))
    config = load_config_file(os.path.join(ROOT, "configs", "toy2d", "correlated_gaussian.py"))
    config.model.update(dict(mlp_hidden=128, mlp_depth=3))  # a Gaussian needs less than the spiral's network
    config.training.update(
        dict(n_iters=1500, snapshot_freq=1500, snapshot_freq_for_preemption=1500, sampling_freq=1500, num_samples=500)
    )
    Trainer(config, workdir, torch.device("cpu")).run()
    return workdir


def run_cli(*args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_nll_itd_after_training_is_within_a_tenth_of_a_nat(trained_gaussian):
    out = run_cli(
        "evaluate.py",
        "--workdir",
        trained_gaussian,
        "--mode=nll_itd",
        "--num_test=2000",
        "--num_logsnr=200",
        "--experiment_name=itd",
        "--param_name=p",
    )
    result = json.load(open(os.path.join(trained_gaussian, "evaluation_results", "itd", "results.json")))["p"][
        "nll_itd"
    ]
    exact = result["exact_entropy_nats"]
    assert exact == pytest.approx(0.5 * math.log((2 * math.pi * math.e) ** 2 * 4.0 * 0.05), rel=1e-9)
    assert abs(result["nll_nats"] - exact) < 0.1, (result["nll_nats"], result["nll_nats_stderr"], exact)
    assert result["variational_bound"]["nats_per_image"] > exact  # the DDPM bound of the same model, side by side
    for key in ("mse_curve_plot", "density_plot"):
        assert os.path.getsize(result[key]) > 0
    assert "NLL (information-theoretic)" in out.stdout.strip().splitlines()[-1]
    assert os.listdir(os.path.join(trained_gaussian, "tensorboard", "evaluation"))


def test_nll_ode_after_training_is_within_a_tenth_of_a_nat_and_beside_the_other_estimate(trained_gaussian):
    """The probability-flow likelihood of the same model (exact divergence in 2D) lands on the exact entropy."""
    out = run_cli(
        "evaluate.py",
        "--workdir",
        trained_gaussian,
        "--mode=nll_ode",
        "--num_test=500",
        "--batch_size=250",
        "--experiment_name=itd",
        "--param_name=p",
    )
    results = json.load(open(os.path.join(trained_gaussian, "evaluation_results", "itd", "results.json")))["p"]
    result, exact = results["nll_ode"], 0.5 * math.log((2 * math.pi * math.e) ** 2 * 4.0 * 0.05)
    assert result["divergence"] == "exact" and result["dimensions"] == 2 and result["test_images"] == 500
    assert abs(result["nll_nats"] - exact) < 0.1 + 3 * result["nll_nats_stderr"], (result, exact)
    assert result["bits_per_dim"] == pytest.approx(result["nll_nats"] / (2 * math.log(2)))
    assert "discrete_bits_per_dim" not in result  # 2D points are not 8-bit data
    assert result["nfe_mean"] > 10 and result["nfe_max"] >= result["nfe_mean"]
    assert out.stdout.strip().splitlines()[-1].startswith("NLL (probability-flow ODE, exact divergence")


def test_samples_of_2d_data_are_scatter_plots(trained_gaussian):
    out = run_cli("sample.py", "--workdir", trained_gaussian, "--batch_size=500")
    folder = [line.strip() for line in out.stdout.splitlines() if line.strip().endswith("samples.npz")][0]
    import numpy as np

    samples = np.load(folder)["samples"].reshape(500, 2)
    covariance = np.cov(samples.T)
    eigenvalues = np.linalg.eigvalsh(covariance)
    assert eigenvalues[1] == pytest.approx(4.0, rel=0.25) and eigenvalues[0] == pytest.approx(0.05, rel=0.5)
    assert os.path.getsize(os.path.join(os.path.dirname(folder), "samples.png")) > 0


def test_suggest_command_from_the_spectrum():
    out = run_cli("-m", "scripts.suggest_logsnr", "--config", "configs/toy2d/correlated_gaussian.py")
    assert "loc = 0.79" in out.stdout and "--config.model.logistic_loc=0.79" in out.stdout


def test_suggest_command_from_a_trained_model(trained_gaussian):
    """The model's MSE curve gives back roughly the spectrum's parameters (loc 0.79, scale 2.05)."""
    out = run_cli("-m", "scripts.suggest_logsnr", "--workdir", trained_gaussian, "--num_items=1000")
    loc, scale = (float(v) for v in out.stdout.split("loc = ")[1].split("\n")[0].split(", scale = "))
    assert loc == pytest.approx(0.79, abs=0.4) and scale == pytest.approx(2.05, abs=0.5), out.stdout
