"""hflow's pieces in closed form: the Haar pyramid is orthonormal, every flow layer and the whole network are
invertible (float32 1e-5, float64 1e-10, random and trained weights) with log-determinants equal to the brute-force
Jacobian's, ActNorm's data-dependent initialisation standardises, an identity-initialised flow gives the exact
Gaussian NLL, and bits/dim follow from nats by hand."""

import math

import pytest
import torch

from model_code import haar
from model_code.flows import ActNorm, AffineCoupling, InvertibleConv1x1, LevelFlow
from model_code.networks.hflow import HFlowNetwork
from scripts.evaluation.elbo import summarise


def tiny_network(resolutions=(4, 2, 1), channels=1, layers=2, latent=(0,), dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    net = HFlowNetwork(
        in_channels=channels,
        out_channels=channels,
        hflow_resolutions=resolutions,
        hflow_latent_channels=latent,
        hflow_coupling_layers=(layers,),
        hflow_coupling_channels=(8,),
        hflow_encoder_channels=(4,),
    )
    return net.to(dtype)


def randomise(module, scale=0.3, seed=1):
    """Every parameter moved by scale N(0, 1), so no zero-initialised layer stays the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter += scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
    return module


def layers_under_test(dtype):
    torch.manual_seed(0)
    cond = torch.randn(1, 3, 4, 4, dtype=dtype)
    return {
        "actnorm": (randomise(ActNorm(2).to(dtype)), 2, None),
        "conv1x1": (InvertibleConv1x1(2).to(dtype), 2, None),
        "coupling_channels": (randomise(AffineCoupling(2, 8, 3, flip=True).to(dtype)), 2, cond),
        "coupling_checkerboard": (randomise(AffineCoupling(1, 8, 0, flip=False).to(dtype)), 1, None),
        "level_flow": (
            randomise(
                LevelFlow(channels=3, latent_channels=3, layers=2, hidden=8, image_channels=1, cond_channels=3).to(
                    dtype
                ),
                scale=0.1,
            ),
            3,
            torch.randn(1, 1, 4, 4, dtype=dtype),
        ),
    }


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("name", ["actnorm", "conv1x1", "coupling_channels", "coupling_checkerboard", "level_flow"])
def test_every_layer_inverts_its_forward(name, dtype, tolerance):
    layer, channels, cond = layers_under_test(dtype)[name]
    x = torch.randn(3, channels, 4, 4, dtype=dtype)
    cond = None if cond is None else cond.expand(3, *cond.shape[1:])
    y, _ = layer(x, cond)
    assert not torch.allclose(y, x)
    assert (layer.inverse(y, cond) - x).abs().max() < tolerance


@pytest.mark.parametrize("name", ["actnorm", "conv1x1", "coupling_channels", "coupling_checkerboard", "level_flow"])
def test_every_layer_log_determinant_is_the_brute_force_jacobians(name):
    layer, channels, cond = layers_under_test(torch.float64)[name]
    x = torch.randn(1, channels, 4, 4, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer(v, cond)[0], x).reshape(x.numel(), x.numel())
    torch.testing.assert_close(layer(x, cond)[1][0], torch.linalg.slogdet(jacobian)[1], atol=1e-9, rtol=1e-9)


def test_the_whole_network_log_determinant_is_the_brute_force_jacobians():
    """1x4x4 images, levels 4, 2, 1: the Jacobian of x -> z has log|det| = sum of the levels' log-determinants."""
    net = randomise(tiny_network(dtype=torch.float64))
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: net(v, torch.zeros(1))[0], x).reshape(16, 16)
    torch.testing.assert_close(net(x, torch.zeros(1))[1].sum(), torch.linalg.slogdet(jacobian)[1], atol=1e-9, rtol=0)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("resolutions, latent", [((8, 4, 2), (0,)), ((16, 4), (120, 8)), ((8, 4, 1), (24, 0, 0))])
def test_the_whole_network_inverts_on_random_weights_and_after_training(resolutions, latent, dtype, tolerance):
    net = tiny_network(resolutions, channels=2, latent=latent, dtype=dtype)
    x = torch.rand(4, 2, resolutions[0], resolutions[0], dtype=dtype) - 0.5
    net.initialize(x)
    randomise(net, scale=0.03)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(3):
        z, logdet = net(x, torch.zeros(4))
        assert z.shape == x.shape and (net.inverse(z) - x).abs().max() < tolerance, step
        optimizer.zero_grad()
        (0.5 * z.pow(2).flatten(1).sum(1) - logdet.sum(1)).mean().backward()
        optimizer.step()


def test_haar_split_is_orthonormal_with_jacobian_one():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    for m in (1, 2, 3):
        coarse, detail = haar.split(x, m)
        assert coarse.shape == (2, 3, 8 // 2**m, 8 // 2**m) and detail.shape[1] == 3 * (4**m - 1)
        torch.testing.assert_close(coarse.pow(2).sum() + detail.pow(2).sum(), x.pow(2).sum(), atol=1e-10, rtol=0)
        torch.testing.assert_close(haar.merge(coarse, detail, m), x, atol=1e-12, rtol=0)
    flat = lambda v: torch.cat([part.flatten() for part in haar.split(v, 2)])
    jacobian = torch.autograd.functional.jacobian(flat, torch.randn(1, 1, 4, 4, dtype=torch.float64)).reshape(16, 16)
    torch.testing.assert_close(jacobian @ jacobian.T, torch.eye(16, dtype=torch.float64), atol=1e-12, rtol=0)
    assert abs(abs(torch.linalg.det(jacobian).item()) - 1) < 1e-12


def test_the_coarse_image_is_twice_the_block_mean_per_halving():
    x = torch.rand(1, 1, 28, 28)
    coarse, _ = haar.split(x, 2)
    torch.testing.assert_close(coarse, 4 * torch.nn.functional.avg_pool2d(x, 4), atol=1e-6, rtol=0)


def test_odd_and_uneven_resolutions_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"3 is not 7 halved"):
        haar.halvings((28, 14, 7, 3))
    with pytest.raises(ValueError, match=r"the first must be the image height 28"):
        haar.pyramid_sizes(28, 28, (32, 16))


def test_actnorm_initialisation_gives_zero_mean_and_unit_variance_per_channel():
    layer = ActNorm(3)
    x = (
        torch.randn(64, 3, 5, 5) * torch.tensor([0.1, 2.0, 7.0])[:, None, None]
        + torch.tensor([3.0, -1.0, 0.5])[:, None, None]
    )
    assert torch.equal(layer(x)[0], x) and not layer.initialized
    layer.initialize_from(x)
    y = layer(x)[0]
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    assert bool(layer.initialized)


@pytest.mark.parametrize("std", [1.0, 0.3])
def test_an_identity_initialised_flow_gives_the_exact_gaussian_nll(std):
    """Couplings start at the identity, ActNorm before its initialisation too, the 1x1 convolutions are rotations
    and the pyramid orthonormal: on data x ~ N(0, s^2 I), with prior stds s, -log p(x) = |x|^2/(2 s^2) +
    (D/2) log(2 pi s^2) exactly."""
    from tests.helpers import make_process

    process = make_process("hflow", "haar_pyramid", 3, 8, hflow_resolutions=(8, 4, 2), hflow_prior_stds=(std,))
    net = tiny_network((8, 4, 2), channels=2, dtype=torch.float64)
    with torch.no_grad():  # rotations to float64 precision (they are drawn in float32)
        for module in net.modules():
            if isinstance(module, InvertibleConv1x1):
                module.weight.copy_(torch.linalg.qr(module.weight)[0])
    x = std * torch.randn(5, 2, 8, 8, dtype=torch.float64)
    expected = 0.5 * x.pow(2).flatten(1).sum(1) / std**2 + 0.5 * x[0].numel() * math.log(2 * math.pi * std**2)
    torch.testing.assert_close(process.nll(net, x).sum(1).double(), expected, atol=1e-9, rtol=1e-12)


def test_bits_per_dim_by_hand():
    """1000 nats over D = 784 dims of data in [-0.5, 0.5]: 1000 / (784 ln 2) bits/dim of the density, plus
    log2(256 / 1) = 8 for 8-bit bins of width 1/256."""
    means = {
        "prior": torch.tensor(0.0, dtype=torch.float64),
        "transitions": torch.tensor([300.0, 200.0], dtype=torch.float64),
        "reconstruction": torch.tensor(500.0, dtype=torch.float64),
    }
    result = summarise(means, dim=784, data_range=(-0.5, 0.5), count=1, passes=1)
    assert result["nats_per_image"] == 1000.0
    assert abs(result["bits_per_dim"] - 1000 / (784 * 0.6931471805599453)) < 1e-12
    assert abs(result["discrete_bits_per_dim"] - (1.8401722 + 8)) < 1e-6  # 1000 / 543.4274 = 1.8401722
