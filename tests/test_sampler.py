"""Sampling modes and per-image seeds, checked with a network whose reverse steps are known."""

import torch

from model_code.priors.kde import KernelDensityPrior
from model_code.randomness import NOISE_STREAM, seeded_generators
from scripts.sampling.sampler import first_images, generate_range, sample, sample_chunks
from tests.helpers import make_process


class Zero(torch.nn.Module):
    def forward(self, u, time):
        return torch.zeros_like(u)


def setup(K=4):
    process = make_process("ihdm", "heat", K, 8, blur_sigma_min=0.5, blur_sigma_max=3.0, sigma=0.05)
    images = torch.rand(10, 1, 8, 8)
    prior = KernelDensityPrior(process=process, load_data=lambda: (10, lambda idx: images[idx]))
    return process, prior, images


def run(mode, count=4, seed=0):
    process, prior, _ = setup()
    return sample(process, Zero(), prior, mode=mode, count=count, seed=seed, shape=(1, 8, 8), device="cpu", record=True)


def test_prior_draws_are_training_images_at_level_K_plus_delta_noise():
    process, prior, images = setup()
    out = run("random", count=6)
    blurred = process.operator(images, torch.full((10,), 4))
    distances = torch.cdist(out["initial"].flatten(1), blurred.flatten(1))
    nearest = distances.min(dim=1).values / 8  # per-pixel RMS distance to the nearest component
    assert (nearest < 3 * process.delta).all()


def test_zero_network_reverse_process_adds_delta_noise_at_each_but_the_last_step():
    out = run("random")
    steps = torch.stack(out["trajectory"])
    increments = steps[1:-1] - steps[:-2]  # K - 1 noisy steps, then the mean
    assert abs(increments.std().item() - 0.0625) < 0.01  # delta = 1.25 * 0.05
    torch.testing.assert_close(steps[-1], steps[-2])


def test_same_init_shares_the_start_share_noise_shares_the_steps():
    same_init = run("same_init")
    assert torch.equal(same_init["initial"][0], same_init["initial"][3])
    assert not torch.equal(same_init["samples"][0], same_init["samples"][3])
    shared = run("share_noise")
    assert not torch.equal(shared["initial"][0], shared["initial"][1])
    moved = shared["samples"] - shared["initial"]  # with f = 0 this is the sum of the step noises
    torch.testing.assert_close(moved[0], moved[2])
    random = run("random")
    moved_random = random["samples"] - random["initial"]
    assert not torch.allclose(moved_random[0], moved_random[2])


def test_interpolation_is_linear_between_two_prior_draws():
    out = run("interpolate_shared_noise", count=5)
    initial = out["initial"]
    torch.testing.assert_close(initial[2], 0.5 * (initial[0] + initial[4]))
    moved = out["samples"] - initial
    torch.testing.assert_close(moved[0], moved[4])


def test_interpolation_moves_the_noise_spherically_between_two_streams():
    """With f = 0 an image moves by delta times the sum of its K - 1 noisy steps' noise. The ends get the noise
    of seeds 0 and 1; the midpoint gets slerp(a, b; 1/2) = (a + b) / (2 cos(theta / 2)) at every step."""
    process, prior, _ = setup()
    request = dict(mode="interpolate", count=5, seed=0, shape=(1, 8, 8), device="cpu")
    out = sample(process, Zero(), prior, **request)
    moved = (out["samples"] - out["initial"]) / process.delta
    streams = seeded_generators(0, NOISE_STREAM, [0, 1])
    ends = torch.stack([torch.stack([torch.randn(1, 8, 8, generator=g) for g in streams]) for _ in range(3)])
    torch.testing.assert_close(moved[0], ends[:, 0].sum(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[4], ends[:, 1].sum(0), atol=1e-5, rtol=0)
    theta = torch.stack(
        [torch.arccos(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), 0)) for a, b in ends]
    )
    midpoint = ((ends[:, 0] + ends[:, 1]) / (2 * torch.cos(theta / 2)).view(-1, 1, 1, 1)).sum(0)
    torch.testing.assert_close(moved[2], midpoint, atol=1e-5, rtol=0)
    batched = first_images(sample_chunks(process, Zero(), prior, **request, chunk_size=2), 5)
    assert torch.equal(batched["samples"], out["samples"])  # the same streams in every chunk


def test_samples_do_not_depend_on_the_batch():
    process, prior, _ = setup()
    everything, _ = generate_range(process, Zero(), prior, start=0, count=5, seed=3, shape=(1, 8, 8), device="cpu")
    tail, _ = generate_range(process, Zero(), prior, start=3, count=2, seed=3, shape=(1, 8, 8), device="cpu")
    torch.testing.assert_close(everything[3:], tail)
    other_seed, _ = generate_range(process, Zero(), prior, start=3, count=2, seed=4, shape=(1, 8, 8), device="cpu")
    assert not torch.allclose(tail, other_seed)


def test_recorded_trajectory_is_bounded_and_keeps_both_ends():
    process, prior, _ = setup(K=300)
    out = sample(process, Zero(), prior, mode="random", count=2, seed=0, shape=(1, 8, 8), device="cpu", record=True)
    assert len(out["trajectory"]) == 100
    assert torch.equal(out["trajectory"][0], out["initial"]) and torch.equal(out["trajectory"][-1], out["samples"])
