"""The contract every registered process keeps, with every operator it accepts: a name, a per-example loss
that is seeded, finite, differentiable and pure, forward draws and prior components of the data's shape,
sampling from the prior with its default sampler, its state saved and restored; where its denoiser has an
ancestral step (``AncestralDenoiser``), exact latents that decode to the image and ELBO terms of the declared
shapes, and otherwise a one-line refusal of the ELBO.

A new process declares its small config (model.* keys over configs/default.py) in ``DECLARED``; it is then
tried with every registered operator, and the pairs it refuses at build time are left out."""

import pytest
import torch

from model_code.latents import decode, encode
from model_code.operators import OPERATORS
from model_code.processes import PROCESSES
from model_code.randomness import seeded_generators
from model_code.samplers.spec import SamplingSpec
from scripts.sampling.sampler import reverse_process
from tests.contracts import check_declared, state_round_trip
from tests.helpers import make_process, tiny_hflow, tiny_unet

K = 4
SIZE = 8
BATCH = 3

DECLARED = {
    "gaussian": dict(continuous_time=False),
    "ihdm": dict(sigma=0.02),
    "cold": {},
    "hflow": dict(hflow_resolutions=(8, 4, 2, 1)),
}
NETWORKS = {"hflow": tiny_hflow}  # a process whose network is its own (a flow) declares its builder; else tiny_unet


def network(process_name):
    return NETWORKS.get(process_name, lambda **_: tiny_unet())(
        resolutions=DECLARED[process_name].get("hflow_resolutions")
    )


def test_every_registered_process_declares_its_contract_config():
    check_declared(PROCESSES, DECLARED, __name__)


def build(process_name, operator_name):
    return make_process(process_name, operator_name, K, SIZE, **DECLARED[process_name])


def accepts(process_name, operator_name):
    try:
        build(process_name, operator_name)
    except ValueError:
        return False
    return True


PAIRS = [(p, o) for p in sorted(DECLARED) for o in OPERATORS.names() if accepts(p, o)]
ANCESTRAL_PAIRS = [pair for pair in PAIRS if "ancestral" in build(*pair).denoiser(None).provides]


def test_every_process_accepts_an_operator():
    assert {p for p, _ in PAIRS} == set(DECLARED)


def data(process, seed=0):
    low, high = process.data_range
    unit = torch.rand(BATCH, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    return low + (high - low) * unit


def seeded(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=PAIRS, ids=[f"{p}-{o}" for p, o in PAIRS])
def pair(request):
    return request.param


class TestProcessContract:
    def test_name_and_build_spec(self, pair):
        process = build(*pair)
        assert process.name == pair[0] and process.operator.name == pair[1] and process.K == K
        low, high = process.data_range
        assert low < high

    def test_loss_is_per_example_seeded_finite_differentiable_and_pure(self, pair):
        process, net = build(*pair), network(pair[0])
        x0 = data(process)
        x_copy = x0.clone()
        losses, t = process.loss(net, x0, seeded(0))
        again, _ = process.loss(net, x0, seeded(0))
        assert losses.shape == (BATCH,) and t.shape == (BATCH,) and torch.isfinite(losses).all()
        assert torch.equal(losses, again), "the same generator seed must give the same loss"
        assert ((t > 0) & (t <= 1)).all()
        losses.mean().backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
        assert torch.equal(x0, x_copy), "the loss must not modify the data"

    def test_forward_draws_and_prior_components_have_the_data_shape(self, pair):
        process = build(*pair)
        x0 = data(process)
        eps = torch.randn(x0.shape, generator=seeded(1))
        levels = torch.tensor([1, K // 2, K])
        u = process.diffuse(x0, levels, eps)
        assert u.shape == x0.shape and torch.isfinite(u).all()
        assert torch.equal(process.diffuse(x0, levels, eps), u)
        for mean, std in (process.prior_component(x0), process.forward_marginal_at_K(x0)):
            assert mean.shape == x0.shape and torch.isfinite(mean).all() and std >= 0
        assert process.prior_component(x0)[1] > 0
        assert process.prior_component_std() > 0 and isinstance(process.sampling_settings(), dict)

    def test_default_sampler_from_the_prior_is_finite_and_seeded(self, pair):
        process, net = build(*pair), network(pair[0]).eval()
        levels = process.sampling_levels()
        assert levels[0] == K and levels == sorted(levels, reverse=True) and levels[-1] >= 1
        mean, std = process.prior_component(data(process))
        spec = SamplingSpec().for_process(process)

        def run(seed):
            noise = seeded(seed)
            u = mean + std * torch.randn(mean.shape, generator=noise)
            return reverse_process(process, net, u, [noise] * BATCH, spec)[0]

        u0 = run(2)
        assert u0.shape == mean.shape and torch.isfinite(u0).all()
        assert torch.equal(run(2), u0) and not torch.equal(run(3), u0)

    @pytest.mark.parametrize("ancestral", ANCESTRAL_PAIRS, ids=[f"{p}-{o}" for p, o in ANCESTRAL_PAIRS])
    def test_exact_latents_decode_to_the_image(self, ancestral):
        pair = ancestral
        process, net = build(*pair), network(pair[0]).eval()
        torch.manual_seed(0)
        x0 = data(process, seed=4)
        prior_state, noise = encode(process, net, x0, seeded_generators(0, 2, range(BATCH)))
        assert prior_state.shape == x0.shape
        assert noise.shape == (BATCH, len(process.sampling_levels()), *x0.shape[1:]) and torch.isfinite(noise).all()
        assert (decode(process, net, (prior_state, noise)) - x0).abs().max().item() < 1e-5

    def test_elbo_terms_have_one_transition_per_level_above_one(self, pair):
        process, net = build(*pair), network(pair[0]).eval()
        if pair not in ANCESTRAL_PAIRS:
            with pytest.raises(ValueError, match="has no likelihood"):
                process.elbo_terms(net, data(process), seeded(5))
            return
        with torch.no_grad():
            terms = process.elbo_terms(net, data(process), seeded(5))
        assert terms["transitions"].shape == (BATCH, K - 1) and terms["reconstruction"].shape == (BATCH,)
        assert torch.isfinite(terms["transitions"]).all() and torch.isfinite(terms["reconstruction"]).all()

    def test_state_survives_a_checkpoint(self, pair):
        process, net = build(*pair), network(pair[0])
        restored = state_round_trip(process, make_process(*pair, K, SIZE, **DECLARED[pair[0]], operator_seed=2))
        x0 = data(process)
        torch.testing.assert_close(restored.loss(net, x0, seeded(6))[0], process.loss(net, x0, seeded(6))[0])
