"""Draws keyed by (seed, step, example) do not depend on how a batch is split."""

import math

import pytest
import torch

from model_code.randomness import (
    NOISE_STREAM,
    ExampleRandomness,
    GeneratorRandomness,
    as_randomness,
    seed_from,
    seeded_generators,
)


def draws(randomness, count):
    return [randomness.randint(1, 10, (count,)), randomness.randn((count, 2, 3)), randomness.rand((count,))]


@pytest.mark.parametrize("parts", [[8], [4, 4], [3, 5], [2, 2, 2, 2], [1, 7]])
def test_any_split_of_the_batch_sees_the_same_draws_per_example(parts):
    whole = draws(ExampleRandomness(seed=5, step=11, total=8), 8)
    start, pieces = 0, []
    for count in parts:
        pieces.append(draws(ExampleRandomness(seed=5, step=11, total=8, start=start, count=count), count))
        start += count
    for index, full in enumerate(whole):
        assert torch.equal(torch.cat([piece[index] for piece in pieces]), full)


def test_draws_differ_between_steps_seeds_and_successive_calls():
    a = ExampleRandomness(seed=0, step=1, total=4).randn((4, 5))
    assert not torch.equal(a, ExampleRandomness(seed=0, step=2, total=4).randn((4, 5)))
    assert not torch.equal(a, ExampleRandomness(seed=1, step=1, total=4).randn((4, 5)))
    randomness = ExampleRandomness(seed=0, step=1, total=4)
    first, second = randomness.randn((4, 5)), randomness.randn((4, 5))
    assert torch.equal(first, a) and not torch.equal(first, second)


def test_wrong_part_sizes_are_refused():
    with pytest.raises(ValueError, match="outside a batch of 4"):
        ExampleRandomness(seed=0, step=0, total=4, start=3, count=2)
    with pytest.raises(ValueError, match="has 2 examples; asked for 3"):
        ExampleRandomness(seed=0, step=0, total=4, start=0, count=2).randn((3,))


def test_generator_randomness_is_the_generator_itself():
    ours = GeneratorRandomness(torch.Generator().manual_seed(3))
    reference = torch.Generator().manual_seed(3)
    assert torch.equal(ours.randn((2, 3)), torch.randn((2, 3), generator=reference))
    assert torch.equal(ours.randint(0, 9, (4,)), torch.randint(0, 9, (4,), generator=reference))
    assert isinstance(as_randomness(torch.Generator()), GeneratorRandomness)
    assert as_randomness(ours) is ours


def test_per_image_generators_keep_their_seeds():
    """Image i's generator is seeded with seed_from(seed, stream, i), the values every sample so far was drawn
    with (the shipped model's pictures among them): pinned, so that a change of the mixing shows here."""
    generators = seeded_generators(7, NOISE_STREAM, [0, 5])
    assert [g.initial_seed() for g in generators] == [1587299620702512783, 2328663603746666670]
    assert [g.initial_seed() for g in generators] == [seed_from(7, 1, 0), seed_from(7, 1, 5)]
    first = torch.randn(3, generator=generators[0])
    assert first.tolist() == [-1.1605689525604248, 0.18193919956684113, -0.5718525648117065]


def _process(name):
    from tests.helpers import make_process

    if name == "ihdm":
        return make_process("ihdm", "heat", 5, 8, sigma=0.01)
    if name == "gaussian_logistic":
        return make_process("gaussian", "identity", 5, 8, logsnr_sampling="logistic")
    return make_process("gaussian", "blur", 5, 8, continuous_time=True)


@pytest.mark.parametrize("name", ["ihdm", "gaussian", "gaussian_logistic"])
def test_process_losses_of_a_split_batch_equal_the_whole_batch(name):
    """Levels, noise and log SNRs of example j depend on (seed, step, j) only, so parts reproduce the whole."""
    process = _process(name)
    net = lambda x, time: 0.1 * x * (1 + time.view(-1, 1, 1, 1) / 1000)  # per-example, exact in float32
    x0 = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    whole, levels = process.loss(net, x0, ExampleRandomness(seed=2, step=7, total=6))
    parts = [process.loss(net, x0[s : s + c], ExampleRandomness(2, 7, 6, s, c)) for s, c in [(0, 1), (1, 3), (4, 2)]]
    assert torch.equal(torch.cat([p[0] for p in parts]), whole)
    assert torch.equal(torch.cat([p[1] for p in parts]), levels)
    assert len(set(levels.tolist())) > 1  # the examples really drew different levels


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8), (2, 1, 1), (1, 5, 5), (3, 7, 6)])
def test_per_row_normals_drawn_in_blocks_are_the_step_by_step_draws(shape):
    """PerRowNormals takes several steps' noise from a generator at once where that leaves the numbers as they
    are (a multiple of 16 values), and one step at a time otherwise; either way draw i of row b is the i-th
    draw of generator b, across refills of the block."""
    from model_code.priors import randn_per_generator
    from model_code.randomness import PerRowNormals

    blocked = PerRowNormals([torch.Generator().manual_seed(i) for i in range(3)], shape, "cpu", limit=7)
    stepwise = [torch.Generator().manual_seed(i) for i in range(3)]
    assert blocked.block == (7 if math.prod(shape) % 16 == 0 else 1)
    for _ in range(17):
        assert torch.equal(blocked(), randn_per_generator(stepwise, shape, "cpu"))
