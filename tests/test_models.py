"""U-Net, EMA and the ihdm process: shapes, zero init, oracle denoisers, level coverage."""

import math

import pytest
import torch

from model_code.ema import EMA
from model_code.processes import PROCESSES
from tests.helpers import IHDMOracle, make_process, tiny_unet


@pytest.mark.parametrize("size", [(8, 8), (7, 11), (28, 28)])
def test_unet_shapes_and_zero_output_at_init(size):
    net = tiny_unet(3, channel_mult=(1, 2, 2), attention_levels=(2,))
    x = torch.randn(2, 3, *size)
    out = net(x, torch.tensor([1.0, 7.0]))
    assert out.shape == x.shape and torch.count_nonzero(out) == 0
    out.sum().backward()
    assert net.output[-1].weight.grad.abs().sum() > 0


def test_unet_rejects_attention_outside_levels():
    with pytest.raises(ValueError, match="attention_levels"):
        tiny_unet(attention_levels=(2,))


def test_ema_follows_formula_with_ramped_half_life():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, 0.9, rampup_ratio=0.05)
    for n, beta in [(0, 0.0), (5, 0.5**4), (100, 0.5**0.2), (300, 0.9)]:  # min(0.9, 0.5^(1 / (0.05 n)))
        before = ema.shadow.weight.clone()
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net, n)
        torch.testing.assert_close(ema.shadow.weight, beta * before + (1 - beta) * net.weight)


def test_ema_half_life_in_images_does_not_depend_on_the_batch_size():
    ema = EMA(torch.nn.Linear(1, 1), 0.999, rampup_ratio=0.05)
    for images_seen in (6400, 640_000):
        for batch in (32, 128):  # after images_seen images: half-life min(h, 0.05 images_seen) images
            halflife_images = min(batch * math.log(0.5) / math.log(0.999), 0.05 * images_seen)
            beta = ema.decay(images_seen // batch)
            assert beta == pytest.approx(0.5 ** (batch / halflife_images), rel=1e-12)


def heat_ihdm(K=5, size=8, sigma=0.01, delta=None):
    return make_process("ihdm", "heat", K, size, blur_sigma_min=0.5, blur_sigma_max=4.0, sigma=sigma, delta=delta)


def test_ihdm_trains_every_level_including_K():
    process = heat_ihdm(K=5)
    x0 = torch.rand(4000, 1, 8, 8)
    _, t = process.loss(lambda u, time: torch.zeros_like(u), x0, torch.Generator().manual_seed(0))
    levels = (t * process.K).round().long()
    assert set(levels.tolist()) == {1, 2, 3, 4, 5}


def test_ihdm_loss_is_zero_for_the_oracle_and_matches_formula():
    process = heat_ihdm()
    x0 = torch.rand(3, 1, 8, 8)
    losses, _ = process.loss(IHDMOracle(process, x0), x0)
    assert losses.shape == (3,) and losses.abs().max() < 1e-10
    generator = torch.Generator().manual_seed(1)
    zero_losses, t = process.loss(lambda u, time: torch.zeros_like(u), x0, generator)
    # with f = 0 the loss is |A_k x0 + sigma eps - A_{k-1} x0|^2: recompute with the same draws
    generator = torch.Generator().manual_seed(1)
    k = torch.randint(1, 6, (3,), generator=generator)
    eps = torch.randn(x0.shape, generator=generator)
    expected = ((process.operator(x0, k) + 0.01 * eps - process.operator(x0, k - 1)) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(zero_losses, expected)
    torch.testing.assert_close(t, k / 5)


def test_ihdm_reverse_step_with_the_oracle():
    process = heat_ihdm(delta=0.02)
    x0 = torch.rand(2, 1, 8, 8)
    oracle = IHDMOracle(process, x0)
    u3 = process.operator(x0, torch.tensor([3, 3]))
    noise = torch.randn_like(x0)
    torch.testing.assert_close(
        process.denoiser(oracle).ancestral_step(u3, 3, 2, noise),
        process.operator(x0, torch.tensor([2, 2])) + 0.02 * noise,
    )
    last = process.denoiser(oracle).ancestral_step(u3, 1, 0, noise)
    torch.testing.assert_close(last, x0)  # the last step returns the mean


def test_ihdm_defaults_and_errors():
    assert heat_ihdm(sigma=0.01).delta == pytest.approx(0.0125)
    with pytest.raises(ValueError, match="sigma"):
        heat_ihdm(sigma=0.0)
    with pytest.raises(ValueError, match="unknown process 'flow'"):
        PROCESSES.get("flow")
