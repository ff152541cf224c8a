"""The contract every registered sampler keeps, on every (process, operator) pair whose denoiser provides what
it needs: the data's shape out, finite, the initial state untouched, one callback per step ending at the output,
the same noise seeds giving the same samples, and, when its settings make it deterministic, no noise drawn and a
run backwards (rising levels) that encodes; on the pairs it cannot run, a refusal naming what they support.

A new sampler declares its small config (its settings) in ``DECLARED``."""

import pytest
import torch

from model_code.operators import OPERATORS
from model_code.processes import PROCESSES
from model_code.samplers import SAMPLERS, samplers_for
from model_code.samplers.spec import SamplingSpec
from tests.contracts import check_declared
from tests.helpers import make_process, tiny_hflow, tiny_unet

K = 6
SIZE = 8
STEPS = 3

DECLARED = {
    "ancestral": {},
    "cold_default": {},
    "ddim": dict(eta=0.5),
    "dpmpp_2m": {},
    "flow_inverse": dict(temperature=0.7),
    "heun": dict(churn=1.0),
    "x0_step_down": {},
}


def test_every_registered_sampler_declares_its_contract_config():
    check_declared(SAMPLERS, DECLARED, __name__)


# processes that need settings of their own: (K, model.* keys); hflow has one level per resolution of its pyramid
PROCESS_SETTINGS = {"ihdm": (K, dict(sigma=0.02)), "hflow": (4, dict(hflow_resolutions=(8, 4, 2, 1)))}
NETWORKS = {"hflow": lambda: tiny_hflow(resolutions=(8, 4, 2, 1))}  # a process whose network is its own


def build(process_name, operator_name):
    levels, settings = PROCESS_SETTINGS.get(process_name, (K, {}))
    return make_process(process_name, operator_name, levels, SIZE, **settings)


def can_skip_levels(process):
    try:
        process.sampling_levels(STEPS)
    except ValueError:
        return False
    return True


def pairs():
    found = []
    for process_name in PROCESSES.names():
        for operator_name in OPERATORS.names():
            try:
                build(process_name, operator_name)
            except ValueError:
                continue
            found.append((process_name, operator_name))
    return found


CASES = [(sampler, *pair) for sampler in sorted(DECLARED) for pair in pairs()]


def seeded_noise(seed, shape):
    generator = torch.Generator().manual_seed(seed)
    return lambda: torch.randn(shape, generator=generator)


@pytest.fixture(params=CASES, ids=["-".join(case) for case in CASES])
def case(request):
    sampler, process_name, operator_name = request.param
    process = build(process_name, operator_name)
    if process_name in NETWORKS:
        net = NETWORKS[process_name]().eval()
    else:
        net = tiny_unet().eval()
        torch.manual_seed(0)
        for parameter in net.parameters():  # a network whose output is not zero
            parameter.data.normal_(0, 0.05)
    spec = SamplingSpec(sampler=sampler, steps=STEPS if can_skip_levels(process) else None, **DECLARED[sampler])
    return sampler, process, net, spec


class TestSamplerContract:
    def test_runs_where_the_denoiser_provides_its_needs_and_refuses_elsewhere(self, case):
        sampler, process, net, spec = case
        denoiser = process.denoiser(net)
        if sampler not in samplers_for(denoiser):
            with pytest.raises(ValueError, match=f"allowed for this process: {', '.join(samplers_for(denoiser))}"):
                spec.levels(denoiser, process.name)
            return
        levels = spec.levels(denoiser, process.name)
        initial = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
        kept, steps = initial.clone(), []
        out = SAMPLERS.get(sampler)(
            denoiser,
            levels,
            initial,
            seeded_noise(2, initial.shape),
            lambda i, u: steps.append((i, u)),
            **spec.settings(),
        )
        assert out.shape == initial.shape and torch.isfinite(out).all()
        assert torch.equal(initial, kept), "a sampler must not modify its initial state"
        assert [i for i, _ in steps] == list(range(1, len(levels))) and torch.equal(steps[-1][1], out)
        again = SAMPLERS.get(sampler)(
            process.denoiser(net), levels, initial, seeded_noise(2, initial.shape), lambda i, u: None, **spec.settings()
        )
        assert torch.equal(again, out), "the same noise seeds must give the same samples"

    def test_deterministic_settings_draw_no_noise_and_run_backwards(self, case):
        sampler, process, net, spec = case
        denoiser = process.denoiser(net)
        deterministic = {key: 0.0 for key in spec.settings()}  # eta = 0, churn = 0
        if sampler not in samplers_for(denoiser) or not SAMPLERS.metadata(sampler)["deterministic"](deterministic):
            pytest.skip(f"{sampler} draws noise at every setting, or cannot run the {process.name} process")

        def no_noise():
            raise AssertionError("a deterministic sampler drew noise")

        levels = spec.levels(denoiser, process.name)
        x0 = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
        run = SAMPLERS.get(sampler)
        prior_state = run(denoiser, [0, *levels[-2::-1]], x0, no_noise, lambda i, u: None, **deterministic)
        decoded = run(denoiser, levels, prior_state, no_noise, lambda i, u: None, **deterministic)
        assert torch.isfinite(prior_state).all() and torch.isfinite(decoded).all()
