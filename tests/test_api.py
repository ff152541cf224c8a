"""The Python API on a tiny trained run: sampling, temperature, images, exact latents, interpolation, ELBO."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from model_code.priors import PRIORS
from model_code.randomness import INIT_STREAM, seeded_generators
from model_code.samplers.spec import SamplingSpec
from scripts.api import Model, spherical
from scripts.sampling.sampler import reverse_process
from tests.helpers import train_tiny_run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return train_tiny_run(str(tmp_path_factory.mktemp("api_run")))


@pytest.fixture(scope="module")
def model(workdir):
    return Model.from_run(workdir, checkpoint=0, device="cpu")


@pytest.fixture(scope="module")
def picture_paths(tmp_path_factory):
    """Two PNGs of other sizes and aspect ratios than the model's."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(20, 30), (11, 7)]):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def images(model, picture_paths):
    """The two PNGs loaded into the model's shape and data range."""
    return model.load_images(picture_paths)


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
    with pytest.raises(ValueError, match="temperature=-1: a finite number >= 0"):
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


def run_sample(*args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "sample.py", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)


def test_sample_command_temperatures_match_the_api(workdir, model):
    result = run_sample(
        "--workdir", workdir, "--batch_size=3", "--seed=2", "--temperature=0.5", "--noise_temperature=0"
    )
    assert result.returncode == 0, result.stderr
    folder = os.path.join(workdir, "sample_outputs", f"random_n3_checkpoint0_step{model.step}_seed2_T0.5_noiseT0")
    saved = torch.from_numpy(np.load(os.path.join(folder, "samples.npz"))["samples"])
    initial = model.prior.sample(seeded_generators(2, INIT_STREAM, range(3)), model.shape, "cpu", 0.5)
    no_step_noise = SamplingSpec(noise_temperature=0)
    expected, _, _ = reverse_process(
        model.process, model.net, initial, seeded_generators(2, 1, range(3)), no_step_noise
    )
    torch.testing.assert_close(saved, expected, atol=1e-5, rtol=0)
    no_noise, _, _ = reverse_process(
        model.process, model.net, initial, seeded_generators(5, 1, range(3)), no_step_noise
    )
    torch.testing.assert_close(no_noise, expected, atol=1e-6, rtol=0)  # no step noise: the noise seed is irrelevant


@pytest.mark.parametrize("flag", ["--temperature=-1", "--noise_temperature=-0.5"])
def test_sample_command_refuses_negative_temperatures_in_one_line(workdir, flag):
    result = run_sample("--workdir", workdir, flag)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and lines[-1].startswith("error: ") and flag.split("=")[0] in lines[-1], lines
    assert "Traceback" not in result.stderr


def test_resampling_by_level_of_detail(model, images):
    original = model.decode(model.encode(images[:1]))[0]
    K = model.process.K
    for kept in (model.resample(images[0], 3, below=0), model.resample(images[0], 3, above=K)):
        assert (kept - original).abs().max() < 1e-5
    # redrawing everything (above level 0) is sampling from the prior: the same streams, a fresh draw per step
    torch.testing.assert_close(
        model.resample(images[0], 3, above=0, seed=4), model.sample(3, seed=4), atol=1e-5, rtol=0
    )
    fine = model.resample(images[0], 3, below=2)
    coarse = model.resample(images[0], 3, above=2)
    assert (fine[0] - fine[1]).abs().max() > 1e-4 and (coarse[0] - coarse[1]).abs().max() > 1e-4
    with pytest.raises(ValueError, match=f"level {K + 1} is outside 0..{K}"):
        model.resample(images[0], 2, below=K + 1)


def saved_samples(result):
    """The samples.npz the command printed last, as a tensor."""
    assert result.returncode == 0, result.stderr
    npz = result.stdout.strip().splitlines()[-1].strip()
    assert npz.endswith("samples.npz"), result.stdout
    return torch.from_numpy(np.load(npz)["samples"])


def test_interpolate_command_between_images_ends_at_both(workdir, model, picture_paths, images):
    a, b = picture_paths
    result = run_sample("--workdir", workdir, "--interpolate", f"--image_a={a}", f"--image_b={b}", "--num_points=5")
    samples = saved_samples(result)
    assert samples.shape == (5, *model.shape)
    assert (samples[0] - images[0]).abs().max() < 1e-5 and (samples[-1] - images[1]).abs().max() < 1e-5
    assert (samples[2] - images[0]).abs().max() > 1e-2 and (samples[2] - images[1]).abs().max() > 1e-2
    folder = os.path.dirname(result.stdout.strip().splitlines()[-1].strip())
    assert os.path.basename(folder).startswith(f"interpolate_images_n5_checkpoint0_step{model.step}_seed")
    assert {"interpolation.png", "interpolation.gif", "samples.npz"} <= set(os.listdir(folder))


def test_resample_command_below_level_zero_returns_the_decoded_image(workdir, model, picture_paths, images):
    result = run_sample("--workdir", workdir, f"--image={picture_paths[0]}", "--resample_below=0", "--batch_size=3")
    samples = saved_samples(result)
    original = model.decode(model.encode(images[:1], seed=model.config.eval.seed))
    assert samples.shape == (3, *model.shape)
    assert (samples - original).abs().max() < 1e-5
    folder = os.path.dirname(result.stdout.strip().splitlines()[-1].strip())
    assert "_below0_images-0-" in os.path.basename(folder) and "samples.png" in os.listdir(folder)
