"""The Python API on a tiny trained run: sampling, temperature, images, exact latents, interpolation, ELBO."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from model_code.priors import PRIORS
from scripts.api import Model, spherical
from scripts.sampling.sampler import INIT_STREAM, seeded_generators
from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.test_readme import README


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("api_run"))
    config = tiny.get_config()
    config.training.n_iters = 2
    Trainer(config, folder, torch.device("cpu")).run()
    return folder


@pytest.fixture(scope="module")
def model(workdir):
    return Model.from_run(workdir, checkpoint=0, device="cpu")


@pytest.fixture(scope="module")
def images(model, tmp_path_factory):
    """Two PNGs of other sizes and aspect ratios, loaded into the model's shape and data range."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(20, 30), (11, 7)]):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(paths[-1])
    return model.load_images(paths)


def test_samples_do_not_depend_on_how_many_are_drawn(model):
    four = model.sample(4, seed=3)
    assert four.shape == (4, *model.shape)
    torch.testing.assert_close(model.sample(2, seed=3), four[:2], atol=1e-5, rtol=0)  # conv sums per batch


def test_temperature_scales_the_spread_around_the_prior_mean(model):
    def draw(temperature):
        return model.prior.sample(seeded_generators(0, INIT_STREAM, [0, 1]), model.shape, "cpu", temperature)

    mean, half, full = draw(0.0), draw(0.5), draw(1.0)
    # T = 0 is the drawn component's mean A_K x_n (kde: n is the generator's first draw)
    _, fetch = model.prior.data()
    num_items = model.prior.data()[0]
    indices = torch.stack(
        [torch.randint(num_items, (), generator=g) for g in seeded_generators(0, INIT_STREAM, [0, 1])]
    )
    torch.testing.assert_close(mean, model.process.prior_component(fetch(indices))[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(half - mean, 0.5 * (full - mean), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="temperature -1 is negative"):
        model.sample(1, temperature=-1)


def test_standard_normal_prior_at_temperature_zero_is_zero(model):
    prior = PRIORS.build("standard_normal", process=model.process)
    draws = prior.sample(seeded_generators(0, INIT_STREAM, [0, 1]), model.shape, "cpu", temperature=0.0)
    assert torch.equal(draws, torch.zeros_like(draws))


def test_load_images_crops_resizes_into_the_data_range(model, images):
    low, high = model.process.data_range
    assert images.shape == (2, *model.shape)
    assert images.min() >= low and images.max() <= high and images.std() > 0.1 * (high - low)
    with pytest.raises(ValueError, match="'nowhere.png' cannot be read"):
        model.load_images(["nowhere.png"])


def test_decode_of_encode_and_interpolation_ends_are_the_images(model, images):
    latent = model.encode(images)
    assert (model.decode(latent) - images).abs().max() < 1e-5
    path = model.interpolate(images[0], images[1], num_points=5)
    assert path.shape == (5, *model.shape)
    assert (path[0] - images[0]).abs().max() < 1e-5 and (path[-1] - images[1]).abs().max() < 1e-5


def test_spherical_interpolation_keeps_the_norm_of_equal_norm_ends():
    a, b = torch.randn(2, 1000).unbind()
    b = b * a.norm() / b.norm()
    path = spherical(a, b, torch.linspace(0, 1, 7))
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(7), rtol=1e-5, atol=0)
    torch.testing.assert_close(path[0], a) and torch.testing.assert_close(path[-1], b)


def test_elbo_is_finite_per_image_and_seeded(model, images):
    elbo = model.elbo(images, seed=1)
    assert elbo.shape == (2,) and torch.isfinite(elbo).all() and (elbo > 0).all()
    assert torch.equal(elbo, model.elbo(images, seed=1))


def test_the_readme_api_example_runs(workdir):
    section = README.split("\n## Python API\n", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section, re.S)[1].replace('"runs/quickstart"', repr(workdir))
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["samples"].shape == (4, 1, 8, 8)
    assert (namespace["reconstruction"] - namespace["x"]).abs().max() < 1e-5
