"""Cold Diffusion's degradations (cold_blur, mask, pixelate, desaturate) against direct computations:
repeated convolutions, products of closed-form Gaussian masks, pooling and upsampling, Cold's per-step
decolor kernels; and each bad parameter refused in one line naming it."""

import json
import math
import os

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import make_operator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = (7, 10)  # rectangular, odd and even sides


def images(channels, size, seed=0):
    return torch.randn(3, channels, *size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def at_every_level(op, x):
    """A_k x for k = 0..K, each of the batch at level k: [K+1, B, C, H, W]."""
    return torch.stack([op(x.float(), torch.full((x.shape[0],), k)) for k in range(op.K + 1)]).double()


# --- cold_blur


def direct_blur(x, stds, kernel_size, padding):
    """Apply a depthwise conv2d with a normalised Gaussian kernel of each std in turn; every intermediate."""
    half = kernel_size // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    outputs = [x]
    for std in stds:
        taps = torch.exp(-(offsets**2) / (2 * std**2))
        kernel = torch.outer(taps, taps) / torch.outer(taps, taps).sum()
        weight = kernel.expand(x.shape[1], 1, kernel_size, kernel_size)
        x = F.conv2d(F.pad(x, (half, half, half, half), mode=padding), weight, groups=x.shape[1])
        outputs.append(x)
    return torch.stack(outputs)


BLUR_STDS = {  # s_i, i = 0..K-1, for kernel_std = 0.3, kernel_std_step = 0.2
    "constant": lambda i: 0.3,
    "incremental": lambda i: 0.3 * (i + 1),
    "exponential": lambda i: math.exp(0.3 * i),
    "linear": lambda i: 0.3 + 0.2 * i,
}


@pytest.mark.parametrize("padding", ["circular", "reflect"])
@pytest.mark.parametrize("routine", sorted(BLUR_STDS))
def test_cold_blur_is_k_repeated_convolutions(routine, padding):
    K, kernel_size = 4, 5
    op = make_operator(
        "cold_blur",
        K,
        SIZE,
        kernel_size=kernel_size,
        kernel_std=0.3,
        kernel_std_step=0.2,
        blur_routine=routine,
        blur_padding=padding,
    )
    x = images(2, SIZE)
    expected = direct_blur(x, [BLUR_STDS[routine](i) for i in range(K)], kernel_size, padding)
    torch.testing.assert_close(at_every_level(op, x), expected, atol=2e-5, rtol=0)
    assert not torch.allclose(expected[K], expected[K - 1], atol=1e-3)  # every step blurs further


def test_cold_blur_of_cold_cifar10_keeps_the_mean_and_blurs():
    """The defaults, Cold's CIFAR-10 routine (linear 0.35 + 0.01 i, 11 taps, reflect), on 16 x 12 at K = 20 smooth
    the image (smaller neighbour differences); with circular padding each channel keeps its mean exactly."""
    x = images(3, (16, 12), seed=1)
    circular = make_operator("cold_blur", 20, (16, 12), blur_padding="circular")(x.float(), torch.full((3,), 20))
    torch.testing.assert_close(circular.double().mean((2, 3)), x.mean((2, 3)), atol=1e-5, rtol=0)
    reflect = make_operator("cold_blur", 20, (16, 12))(x.float(), torch.full((3,), 20))
    assert reflect.diff(dim=-1).abs().mean() < 0.3 * x.diff(dim=-1).abs().mean()


# --- mask


def direct_mask(stds, centre, size):
    """prod_i (1 - exp(-|p - c|^2 / (2 s_i^2))) pixel by pixel, for every prefix of stds: [K+1, H, W]."""
    masks = [torch.ones(size, dtype=torch.float64)]
    for std in stds:
        mask = torch.ones(size, dtype=torch.float64)
        for row in range(size[0]):
            for col in range(size[1]):
                distance_squared = (row - centre[0]) ** 2 + (col - centre[1]) ** 2
                mask[row, col] = 1 - math.exp(-distance_squared / (2 * std**2))
        masks.append(masks[-1] * mask)
    return torch.stack(masks)


@pytest.mark.parametrize("routine", ["incremental", "constant"])
@pytest.mark.parametrize("centre", ["centre", "seeded"])
def test_mask_is_a_product_of_gaussian_masks(routine, centre):
    K = 4
    op = make_operator(
        "mask", K, SIZE, mask_std=0.8, mask_initial=2.0, mask_routine=routine, mask_centre=centre, operator_seed=3
    )
    if centre == "centre":
        expected_centre = ((SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2)
    else:
        expected_centre = tuple(op.centre.tolist())
        assert all(c == int(c) and 0 <= c < side for c, side in zip(expected_centre, SIZE))
    torch.testing.assert_close(op.centre, torch.tensor(expected_centre))
    stds = [0.8 * (i + 2.0) if routine == "incremental" else 0.8 for i in range(K)]
    masks = direct_mask(stds, expected_centre, SIZE)
    x = images(3, SIZE)
    torch.testing.assert_close(at_every_level(op, x), masks[:, None, None] * x, atol=1e-6, rtol=0)
    assert op.spectrum(torch.arange(K + 1)).shape == (K + 1, 1, *SIZE)


def test_mask_seeded_centres_differ_by_seed_and_a_zero_initial_std_masks_the_centre_pixel_alone():
    centres = {
        tuple(make_operator("mask", 2, SIZE, mask_centre="seeded", operator_seed=s).centre.tolist()) for s in range(6)
    }
    assert len(centres) > 1
    op = make_operator("mask", 1, SIZE, mask_initial=0.0, mask_centre="seeded", operator_seed=3)
    row, col = (int(c) for c in op.centre.tolist())
    expected = torch.ones(SIZE)
    expected[row, col] = 0.0
    torch.testing.assert_close(op.spectrum(torch.tensor([1]))[0, 0], expected)


# --- pixelate


def direct_pixelate(x, factor):
    height, width = x.shape[-2:]
    pooled = F.avg_pool2d(x, factor)
    return F.interpolate(pooled, size=(height, width), mode="nearest")


@pytest.mark.parametrize(
    "size, K, every, factors",
    [((32, 32), 3, 1, [1, 2, 4, 8]), ((8, 12), 2, 1, [1, 2, 4]), ((8, 12), 4, 2, [1, 2, 2, 4, 4])],
)
def test_pixelate_is_pooling_then_nearest_upsampling(size, K, every, factors):
    op = make_operator("pixelate", K, size, pixelate_every=every)
    x = images(2, size)
    expected = torch.stack([direct_pixelate(x, f) for f in factors])
    torch.testing.assert_close(at_every_level(op, x), expected, atol=1e-6, rtol=0)


def test_pixelate_levels_are_nested_projections():
    op = make_operator("pixelate", 4, (8, 12), pixelate_every=2)
    x = images(2, (8, 12)).float()
    for j in range(op.K + 1):
        for k in range(op.K + 1):
            twice = op(op(x, torch.full((3,), k)), torch.full((3,), j))
            torch.testing.assert_close(twice, op(x, torch.full((3,), max(j, k))), atol=1e-6, rtol=0)


# --- desaturate


def cold_decolor_factors(K, routine, factor):
    """Cold's per-step factors f_i (step i: f_i I + (1 - f_i) (1/C) 1 1^T), as its DeColorization builds them."""
    if routine == "constant":
        return [factor] * K
    factors, start = [], 1.0
    for _ in range(K):
        step = 1 - (1.0 / K) / start
        start *= step
        factors.append(step)
    return factors


@pytest.mark.parametrize("routine", ["linear", "constant"])
def test_desaturate_is_colds_per_step_decolor_kernels(routine):
    K, channels = 5, 3
    op = make_operator("desaturate", K, SIZE, desaturate_routine=routine, desaturate_factor=0.7)
    x = images(channels, SIZE)
    grey = torch.full((channels, channels), 1 / channels, dtype=torch.float64)
    outputs = [x]
    for f in cold_decolor_factors(K, routine, 0.7):
        kernel = f * torch.eye(channels, dtype=torch.float64) + (1 - f) * grey
        outputs.append(torch.einsum("dc,bchw->bdhw", kernel, outputs[-1]))
    torch.testing.assert_close(at_every_level(op, x), torch.stack(outputs), atol=1e-5, rtol=0)
    if routine == "linear":  # grey at K: every channel holds the channel mean
        final = at_every_level(op, x)[K]
        torch.testing.assert_close(final, x.mean(1, keepdim=True).expand_as(x), atol=1e-6, rtol=0)


def test_desaturate_of_one_channel_is_the_identity():
    op = make_operator("desaturate", 4, SIZE, desaturate_routine="linear")
    x = images(1, SIZE)
    torch.testing.assert_close(at_every_level(op, x), x.expand(5, *x.shape), atol=1e-6, rtol=0)


# --- bad parameters


@pytest.mark.parametrize(
    "name, overrides, named",
    [
        ("cold_blur", dict(kernel_size=4), "kernel_size=4"),
        ("cold_blur", dict(kernel_size=0), "kernel_size=0"),
        ("cold_blur", dict(kernel_size=9), "kernel_size=9: an odd integer in 1..7"),
        ("cold_blur", dict(kernel_std=-1.0), "kernel_std=-1.0"),
        ("cold_blur", dict(kernel_std=float("nan")), "kernel_std=nan"),
        ("cold_blur", dict(kernel_std_step=-0.1), "kernel_std_step=-0.1"),
        ("cold_blur", dict(blur_routine="Special_6_routine"), "blur_routine='Special_6_routine'"),
        ("cold_blur", dict(blur_padding="zeros"), "blur_padding='zeros'"),
        ("mask", dict(mask_std=-1.0), "mask_std=-1.0: a finite number > 0"),
        ("mask", dict(mask_std=0.0), "mask_std=0.0"),
        ("mask", dict(mask_std=float("inf")), "mask_std=inf"),
        ("mask", dict(mask_initial=-1.0), "mask_initial=-1.0"),
        ("mask", dict(mask_routine="Random_Incremental"), "mask_routine='Random_Incremental'"),
        ("mask", dict(mask_centre="random"), "mask_centre='random'"),
        ("pixelate", dict(pixelate_every=0), "pixelate_every=0"),
        ("pixelate", dict(K=1, pixelate_every=1), "level 1 asks for 7/2 = 3.5 pixels"),
        ("desaturate", dict(desaturate_factor=0.0), "desaturate_factor=0.0"),
        ("desaturate", dict(desaturate_factor=1.5), "desaturate_factor=1.5"),
        ("desaturate", dict(desaturate_routine="lab"), "desaturate_routine='lab'"),
    ],
)
def test_a_bad_parameter_is_refused_in_one_line_naming_it(name, overrides, named):
    overrides = {"kernel_size": 3, **overrides} if name == "cold_blur" else dict(overrides)  # 11 taps exceed SIZE
    K = overrides.pop("K", 3)
    with pytest.raises(ValueError) as error:
        make_operator(name, K, SIZE, **overrides)
    message = str(error.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize(
    "size, K, named",
    [((28, 28), 3, "level 3 asks for 28/8 = 3.5 pixels"), ((4, 8), 3, "level 3 asks for 4/8 = 0.5 pixels")],
)
def test_pixelate_refuses_a_schedule_finer_than_the_image_divides(size, K, named):
    with pytest.raises(ValueError, match=named):
        make_operator("pixelate", K, size, pixelate_every=1)


def test_a_run_stored_before_these_operators_loads_with_their_defaults():
    from configs.default import get_default_configs
    from scripts.config.validate import validate_config
    from scripts.runs.rundir import COLD_KEYS, config_from_dict

    with open(os.path.join(ROOT, "pretrained", "quickstart", "config.json")) as file:
        stored = json.load(file)
    assert not set(COLD_KEYS) & set(stored["model"])  # the shipped run predates the keys
    loaded = config_from_dict(stored)
    validate_config(loaded)
    defaults = get_default_configs().model
    assert {key: loaded.model[key] for key in COLD_KEYS} == {key: defaults[key] for key in COLD_KEYS}
