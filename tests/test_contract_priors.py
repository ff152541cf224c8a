"""The contract every registered prior keeps: a name, draws of the data's shape where draw i depends on
generator i alone, a temperature that scales the spread around the mean linearly, a KL bound that is a
non-negative number per image, a log density that agrees with it (Monte Carlo), and its state (what ``fit``
estimates) saved and restored.

A new prior declares its small config (the process and operator it is tried on) in ``DECLARED``."""

import pytest
import torch

from configs.default import get_default_configs
from model_code.priors import PRIORS
from model_code.randomness import seeded_generators
from scripts.config import build
from tests.contracts import check_declared, state_round_trip
from tests.helpers import make_process

K = 3
SIZE = 4
SHAPE = (2, SIZE, SIZE)
TRAINING_IMAGES = 12

# exact_kl: kl_bound is the KL itself (else an upper bound of it)
DECLARED = {
    "gmm": dict(process="ihdm", operator="heat", exact_kl=True),  # one component (the default): exact
    "fitted_gaussian": dict(process="ihdm", operator="heat", exact_kl=True),
    "kde": dict(process="ihdm", operator="heat", exact_kl=False),
    "standard_normal": dict(process="gaussian", operator="identity", exact_kl=True),
}


def test_every_registered_prior_declares_its_contract_config():
    check_declared(PRIORS, DECLARED, __name__)


class TrainingImages:
    """The two calls a prior makes of the training data: its length and ``fetch(indices)``."""

    def __init__(self, process):
        low, high = process.data_range
        self.images = low + (high - low) * torch.rand(
            TRAINING_IMAGES, *SHAPE, generator=torch.Generator().manual_seed(0)
        )

    def __len__(self):
        return len(self.images)

    def fetch(self, indices):
        return self.images[indices]


def build_prior(name, fit=True):
    declared = DECLARED[name]
    process = make_process(declared["process"], declared["operator"], K, SIZE, sigma=0.05, blur_sigma_max=2.0)
    config = get_default_configs()
    config.model.prior = name
    config.data.num_channels, config.data.image_size = SHAPE[0], SIZE
    prior = build.build_prior(config, process, lambda: TrainingImages(process))
    if fit:
        prior.fit("cpu")
    return prior


def draw(prior, seeds, temperature=1.0):
    return prior.sample(seeded_generators(0, 0, seeds), SHAPE, "cpu", temperature)


@pytest.fixture(params=sorted(DECLARED))
def name(request):
    return request.param


class TestPriorContract:
    def test_name(self, name):
        assert build_prior(name).name == name

    def test_draw_i_depends_on_generator_i_alone(self, name):
        prior = build_prior(name)
        together = draw(prior, [0, 1, 2])
        assert together.shape == (3, *SHAPE) and torch.isfinite(together).all()
        torch.testing.assert_close(draw(prior, [1]), together[1:2], atol=0, rtol=0)
        assert not torch.equal(together[0], together[2])

    def test_temperature_scales_the_spread_around_the_mean_linearly(self, name):
        prior = build_prior(name)
        mean, full, half = (draw(prior, [0, 1], temperature) for temperature in (0.0, 1.0, 0.5))
        torch.testing.assert_close(half - mean, 0.5 * (full - mean), atol=1e-6, rtol=1e-5)
        assert (full - mean).abs().max() > 0

    def test_kl_bound_is_non_negative_per_image(self, name):
        prior = build_prior(name)
        q_mean, q_std = prior.process.forward_marginal_at_K(TrainingImages(prior.process).images[:5])
        kl = prior.kl_bound(q_mean, q_std)
        assert kl.shape == (5,) and torch.isfinite(kl).all() and (kl >= -1e-4).all()

    def test_log_density_agrees_with_the_kl_bound(self, name):
        """KL(q || p) = E_q[log q(u) - log p(u)], by Monte Carlo with ``log_density`` as log p: equal to
        ``kl_bound`` (within 4 standard errors) where it is exact, below it where it is a bound."""
        prior, draws = build_prior(name), 4000
        q_mean, q_std = prior.process.forward_marginal_at_K(TrainingImages(prior.process).images[:3])
        u = q_mean + q_std * torch.randn(draws, *q_mean.shape, generator=torch.Generator().manual_seed(1))
        log_q = torch.distributions.Normal(q_mean, q_std).log_prob(u).flatten(2).sum(2)  # [draws, 3]
        log_p = prior.log_density(u.flatten(0, 1)).view(draws, 3)
        estimate, stderr = (log_q - log_p).mean(0), (log_q - log_p).std(0) / draws**0.5
        bound = prior.kl_bound(q_mean, q_std)
        assert (estimate <= bound + 4 * stderr + 1e-4).all(), (estimate, stderr, bound)
        if DECLARED[name]["exact_kl"]:
            assert ((estimate - bound).abs() <= 4 * stderr + 1e-4).all(), (estimate, stderr, bound)

    def test_state_survives_a_checkpoint(self, name):
        prior = build_prior(name)
        fresh = build_prior(name, fit=False)  # what fit estimates must come from the checkpoint
        torch.testing.assert_close(draw(state_round_trip(prior, fresh), [0, 1]), draw(prior, [0, 1]), atol=0, rtol=0)
