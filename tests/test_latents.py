"""Exact latents: decode(encode(x)) == x for every (process, operator) pair with a small network."""

import types

import pytest
import torch

from model_code.latents import decode, encode
from model_code.priors import PRIORS
from scripts.api import Model
from scripts.sampling.sampler import seeded_generators
from tests.test_ddim import GaussianDataOracle, gaussian
from tests.test_processes import PAIRS, SIZE, process, tiny_net


@pytest.mark.parametrize("process_name,operator_name", PAIRS)
def test_decode_of_encode_is_the_image(process_name, operator_name):
    torch.manual_seed(0)
    proc = process(process_name, operator_name)
    net = tiny_net().eval()
    channels = 1
    x0 = torch.rand(2, channels, SIZE, SIZE)
    prior_state, noise = encode(proc, net, x0, seeded_generators(0, 2, [0, 1]))
    assert prior_state.shape == x0.shape
    assert noise.shape == (2, len(proc.sampling_levels()), *x0.shape[1:])
    assert torch.isfinite(noise).all()
    assert (decode(proc, net, (prior_state, noise)) - x0).abs().max().item() < 1e-5


@pytest.mark.parametrize("operator_name", ["identity", "blur"])
def test_gaussian_latents_of_the_exact_denoiser_hold_standard_normal_noise(operator_name):
    """Gaussian data with the exact denoiser (K = 100): the noise that encode recovers from the forward chain
    has std 1 (4.6 for identity, 3.6 for blur when each state was drawn from its own marginal), decode(encode)
    is exact, and redrawing every latent is sampling from the prior."""
    K, count = 100, 16
    process = gaussian(operator_name, K, clip_denoised=False)
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
