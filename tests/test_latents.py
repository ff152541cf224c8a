"""Exact latents: decode(encode(x)) == x for every (process, operator) pair with a small network."""

import pytest
import torch

from model_code.latents import decode, encode
from model_code.randomness import seeded_generators
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
