"""The cold process and Cold Diffusion's two samplers: the loss on an oracle, exact restoration with the exact x0
predictor from any level for every operator, and Algorithm 2's smaller error under a fixed predictor error."""

import pytest
import torch

from model_code.operators import OPERATORS
from model_code.samplers import SAMPLERS
from model_code.samplers.spec import SamplingSpec
from tests.helpers import make_process
from tests.test_contract_operators import DECLARED as OPERATOR_CONFIGS
from tests.test_contract_operators import SIZES

K = 5
SIZE = (6, 5)
CHANNELS = 3


class FixedPrediction(torch.nn.Module):
    """R(u, k) = x0 + error whatever u and k: the exact x0 predictor (error 0), or one off by a fixed error."""

    def __init__(self, x0: torch.Tensor, error: torch.Tensor):
        super().__init__()
        self.prediction = x0 + error

    def forward(self, u: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return self.prediction


def cold(operator_name: str, **overrides):
    size = SIZES.get(operator_name, SIZE)
    return make_process("cold", operator_name, K, size, **{**OPERATOR_CONFIGS[operator_name], **overrides})


def images(seed: int, process=None) -> torch.Tensor:
    size = SIZE if process is None else (process.operator.height, process.operator.width)
    return torch.rand(2, CHANNELS, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def degraded(process, x0: torch.Tensor, level: int) -> torch.Tensor:
    return process.diffuse(x0, torch.full((x0.shape[0],), level), None)


def restore(process, net, x0: torch.Tensor, sampler: str, start: int, states=None) -> torch.Tensor:
    """Run ``sampler`` from u_start = A_start x0 through every level below it to level 0 (the states after each
    step appended to ``states``)."""
    levels = list(range(start, -1, -1))
    record = (lambda i, u: states.append(u)) if states is not None else (lambda i, u: None)
    return SAMPLERS.get(sampler)(process.denoiser(net), levels, degraded(process, x0, start), lambda: None, record)


@pytest.mark.parametrize("sampler", ["cold_default", "x0_step_down"])
@pytest.mark.parametrize("operator_name", sorted(OPERATORS.names()))
def test_the_exact_x0_predictor_restores_x0_from_every_level(operator_name, sampler):
    process = cold(operator_name)
    x0 = images(0, process)
    oracle = FixedPrediction(x0, torch.zeros_like(x0))
    for start in range(1, K + 1):
        states = []
        torch.testing.assert_close(restore(process, oracle, x0, sampler, start, states), x0, atol=1e-5, rtol=0)
        for level, u in zip(range(start - 1, -1, -1), states):  # each step lands on A_level x0
            torch.testing.assert_close(u, degraded(process, x0, level), atol=1e-5, rtol=0)


def test_algorithm_2_cancels_the_error_the_blur_keeps_and_algorithm_1_does_not():
    """With R = x0 + e, Algorithm 1 ends at x0 + e, and Algorithm 2's steps telescope to x0 + (I - A_K) e: the part
    of e that survives the degradation (the blur's low frequencies) cancels. Both closed forms, and the second
    error is the smaller for a blur, whose spectrum lies in (0, 1]."""
    process, x0 = cold("heat"), images(1)
    error = 0.02 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(2)) + 0.1  # mostly smooth
    predictor = FixedPrediction(x0, error)
    first, second = (restore(process, predictor, x0, name, K) for name in ("cold_default", "x0_step_down"))
    torch.testing.assert_close(first, x0 + error, atol=1e-6, rtol=0)
    surviving = degraded(process, error, K)
    torch.testing.assert_close(second, x0 + error - surviving, atol=1e-6, rtol=0)
    assert (second - x0).norm() < 0.5 * (first - x0).norm()


@pytest.mark.parametrize("loss_norm, power", [("l1", 1), ("l2", 2)])
def test_the_loss_is_the_mean_error_of_the_restoration(loss_norm, power):
    process, x0 = cold("heat", loss_norm=loss_norm), images(3)
    error = torch.linspace(-0.3, 0.3, x0.numel()).reshape(x0.shape)
    loss, t = process.loss(FixedPrediction(x0, error), x0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(loss, error.abs().pow(power).flatten(1).mean(1))
    assert ((t > 0) & (t <= 1)).all()


def test_the_cold_process_defaults_to_algorithm_2_and_refuses_the_ancestral_sampler():
    process = cold("heat")
    assert SamplingSpec().for_process(process).sampler == "x0_step_down"
    with pytest.raises(ValueError, match="sampler='ancestral': the 'cold' process cannot run it .* allowed for this "):
        SamplingSpec(sampler="ancestral").levels(process.denoiser(None), "cold")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(loss_norm="l3"), "loss_norm='l3'; allowed: l1, l2"),
        (dict(prior_noise=0.0), "prior_noise=0.0: a finite number > 0"),
    ],
)
def test_bad_cold_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ValueError, match=message):
        cold("heat", **overrides)
