"""Exact latents of Gaussian data with the exact denoiser (decode(encode(x)) == x for every process and operator
is in test_contract_processes.py)."""

import types

import pytest
import torch

from model_code.latents import decode, encode
from model_code.priors import PRIORS
from model_code.randomness import seeded_generators
from scripts.api import Model
from tests.helpers import GaussianDataOracle, make_process

SIZE = 8


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_gaussian_latents_of_the_exact_denoiser_hold_standard_normal_noise(operator_name):
    """Gaussian data with the exact denoiser (K = 100): the noise that encode recovers from the forward chain
    has std 1 (4.6 for identity, 3.6 for blur when each state was drawn from its own marginal), decode(encode)
    is exact, and redrawing every latent is sampling from the prior."""
    K, count = 100, 16
    process = make_process("gaussian", operator_name, K, SIZE, clip_denoised=False)
    generator = torch.Generator().manual_seed(0)
    mean = 0.3 * torch.randn(1, 1, SIZE, SIZE, generator=generator)
    std = 0.05 + 0.4 * torch.rand(1, 1, SIZE, SIZE, generator=generator)
    x0 = process.operator.from_basis(mean + std * torch.randn(count, 1, SIZE, SIZE, generator=generator))
    oracle = GaussianDataOracle(process, mean, std)
    prior_state, noise = encode(process, oracle, x0, seeded_generators(0, 2, range(count)))
    assert abs(noise[:, :-1].std().item() - 1) < 0.05, noise[:, :-1].std().item()
    assert (decode(process, oracle, (prior_state, noise)) - x0).abs().max().item() < 1e-4
    trained = types.SimpleNamespace(
        process=process,
        net=oracle,
        prior=PRIORS.build("standard_normal", process=process),
        shape=(1, SIZE, SIZE),
        config=None,
        step=0,
        checkpoint_path="",
    )
    model = Model(trained, torch.device("cpu"))
    torch.testing.assert_close(model.resample(x0[0], 3, above=0, seed=4), model.sample(3, seed=4), atol=1e-5, rtol=0)
