"""Priors: the fitted Gaussian recovers known statistics and samples without data; the picture command."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from model_code.priors import PRIORS
from model_code.randomness import seeded_generators
from scripts.visualize_forward import forward_strip
from tests.helpers import make_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def correlated_images(n=4000, size=4, seed=0):
    """Images whose 3 channels are correlated the same way at every pixel: known mean and covariance."""
    generator = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.2, -0.5, 0.4]])
    mean = np.array([0.5, -0.2, 0.1])
    values = generator.normal(size=(n, size, size, 3)) @ mixing.T + mean
    return torch.tensor(values, dtype=torch.float32).permute(0, 3, 1, 2), mean, mixing @ mixing.T


def fitted(process, images):
    prior = PRIORS.build(
        "fitted_gaussian",
        process=process,
        shape=images.shape[1:],
        load_data=lambda: (len(images), lambda idx: images[idx]),
    )
    prior.fit("cpu")
    return prior


def test_fitted_gaussian_recovers_channel_covariance_and_samples_without_data():
    images, mean, covariance = correlated_images()
    process = make_process("ihdm", "identity", 3, 4, sigma=0.01)
    prior = fitted(process, images)
    np.testing.assert_allclose(prior.mean[:, 0, 0].numpy(), mean, atol=0.06)
    chol = prior.scale_tril[1, 2].double()
    np.testing.assert_allclose((chol @ chol.T).numpy(), covariance, atol=0.08)

    restored = PRIORS.build("fitted_gaussian", process=process, shape=(3, 4, 4))  # no data at all
    restored.load_state_dict(prior.state_dict())
    draws = restored.sample(seeded_generators(0, 0, range(3000)), (3, 4, 4), "cpu")
    pixel = draws[:, :, 2, 1].double().numpy()
    np.testing.assert_allclose(pixel.mean(0), mean, atol=0.08)
    np.testing.assert_allclose(np.cov(pixel.T), covariance + process.delta**2 * np.eye(3), atol=0.1)


def test_fitted_gaussian_in_the_dct_basis_keeps_only_what_survives_the_blur():
    images = torch.rand(500, 1, 8, 8)
    process = make_process("ihdm", "heat", 4, 8, blur_sigma_min=0.5, blur_sigma_max=6.0, sigma=0.01)
    op = process.operator
    prior = fitted(process, images)
    blurred = op(images, torch.full((500,), 4))
    coefficients = op.to_basis(blurred)
    torch.testing.assert_close(prior.mean, coefficients.mean(0), atol=1e-5, rtol=0)
    variances = prior.scale_tril[..., 0, 0] ** 2
    np.testing.assert_allclose(variances.numpy(), coefficients.var(0, unbiased=False)[0].numpy(), atol=1e-6)
    assert variances[0, 0] > 1e-5 and variances[4:, 4:].max() < 2e-10  # high frequencies are gone (1e-10 is the jitter)


def test_fitted_gaussian_needs_a_basis_and_fitting():
    process = make_process("ihdm", "random_matrix", 3, 4, operator_seed=0, sigma=0.01)
    with pytest.raises(ValueError, match="needs an operator with an orthonormal basis; 'random_matrix'"):
        PRIORS.build("fitted_gaussian", process=process, shape=(1, 4, 4))
    identity = make_process("ihdm", "identity", 3, 4, sigma=0.01)
    with pytest.raises(ValueError, match="has not been fitted"):
        PRIORS.build("fitted_gaussian", process=identity, shape=(1, 4, 4)).sample(
            seeded_generators(0, 0, [0]), (1, 4, 4), "cpu"
        )


def test_forward_strip_starts_at_the_data_and_follows_the_process():
    process = make_process("ihdm", "constant_velocity", 4, 4, sigma=0.01)
    images = torch.rand(2, 1, 4, 4)
    strip = forward_strip(process, images, num_levels=5, seed=0)
    assert strip.shape == (2, 5, 1, 4, 4)
    for column, k in enumerate(range(5)):
        residual = strip[:, column] - (1 - k / 4) * images
        assert residual.abs().max() < 0.06 and residual.std() > 0.005  # the sigma noise is drawn


def test_forward_picture_command(tmp_path):
    out = tmp_path / "forward.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.visualize_forward",
            "--config",
            "configs/mnist/quickstart.py",
            "--operators=heat,random_matrix",
            "--num_images=2",
            "--num_levels=4",
            f"--out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    picture = Image.open(out)
    assert picture.height > 4 * 28 and str(out) in result.stdout


def test_the_mixture_fit_recovers_two_separated_clusters():
    """EM on 3,000 channel-mean points from 0.3 N(-0.5, 0.05^2) + 0.7 N(0.4, 0.1^2) (C = 1): weights, means and
    stds within sampling error of the truth."""
    from model_code.priors.gmm import fit_mixture

    generator = torch.Generator().manual_seed(0)
    first = -0.5 + 0.05 * torch.randn(900, 1, generator=generator, dtype=torch.float64)
    second = 0.4 + 0.1 * torch.randn(2100, 1, generator=generator, dtype=torch.float64)
    weights, means, covariances = fit_mixture(torch.cat([first, second]), 2)
    order = torch.argsort(means[:, 0])
    torch.testing.assert_close(weights[order], torch.tensor([0.3, 0.7], dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(means[order, 0], torch.tensor([-0.5, 0.4], dtype=torch.float64), atol=0.01, rtol=0)
    stds = covariances[order, 0, 0].sqrt()
    torch.testing.assert_close(stds, torch.tensor([0.05, 0.1], dtype=torch.float64), atol=0.005, rtol=0)
