"""The contract every registered network keeps (``net(x, time, labels=None) -> tensor``, knowing nothing of the
process): a name, the data's shape out, exactly zero at initialisation, each example on its own, gradients into
every parameter once trained a few steps, and its weights saved and restored; built with ``num_classes``, the
same initial weights plus a label table, rows without a label equal to the unconditional call, labels refused
by an unconditional network.

A new network declares its small config (model.* keys over configs/default.py and the data shape it is
tried on) in ``DECLARED``."""

import collections

import pytest
import torch

from configs.default import get_default_configs
from model_code.networks import NETWORKS
from scripts.config import build
from tests.contracts import check_declared, state_round_trip

DECLARED = {
    "mlp": dict(shape=(2, 1, 1), model=dict(mlp_hidden=16, mlp_depth=2)),
    "unet": dict(
        shape=(2, 8, 8), model=dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
    ),
    "hflow": dict(
        shape=(2, 8, 8),
        model=dict(
            hflow_resolutions=(8, 4, 2),
            hflow_coupling_layers=(2,),
            hflow_coupling_channels=(8,),
            hflow_encoder_channels=(4,),
        ),
    ),
}
# a network with ``flow = True`` keeps the flow contract instead (TestFlowNetworkContract): forward(x, time) -> (z,
# log|det| [B, L]), exactly invertible, time not read, unconditional
FLOWS = sorted(name for name in DECLARED if getattr(NETWORKS.get(name), "flow", False))
DENOISERS = sorted(name for name in DECLARED if name not in FLOWS)


def test_every_registered_network_declares_its_contract_config():
    check_declared(NETWORKS, DECLARED, __name__)


def build_network(name, seed=0, num_classes=0):
    declared = DECLARED[name]
    config = get_default_configs()
    config.model.update(dict(declared["model"], network=name, dropout=0.0, num_classes=num_classes))
    config.data.num_channels, config.data.image_size = declared["shape"][:2]  # square images
    torch.manual_seed(seed)
    return build.build_network(config)


def inputs(name, batch=3):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch, *DECLARED[name]["shape"], generator=generator), torch.tensor([0.0, 3.5, 20.0])[:batch]


def train_briefly(net, x, time, steps=3, labels=None):
    """A few SGD steps on |net(x, time, labels) - 1|^2, so that no zero-initialised layer is zero any more."""
    for _ in range(steps):
        net.zero_grad()
        (net(x, time, labels) - 1).pow(2).mean().backward()
        with torch.no_grad():
            for parameter in net.parameters():
                parameter -= 0.1 * parameter.grad


@pytest.fixture(params=DENOISERS)
def name(request):
    return request.param


@pytest.fixture(params=FLOWS)
def flow_name(request):
    return request.param


class TestNetworkContract:
    def test_name_shape_and_zero_at_initialisation(self, name):
        net = build_network(name)
        x, time = inputs(name)
        out = net(x, time)
        assert net.name == name and out.shape == x.shape and torch.equal(out, torch.zeros_like(out))

    def test_gradients_reach_every_parameter_and_examples_stay_apart(self, name):
        net = build_network(name).eval()
        x, time = inputs(name)
        train_briefly(net, x, time)
        net.zero_grad()
        out = net(x, time)
        out.pow(2).sum().backward()
        missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, f"parameters without gradient: {missing}"
        torch.testing.assert_close(net(x[1:2], time[1:2]), out[1:2], atol=1e-5, rtol=1e-4)

    def test_time_reaches_the_output(self, name):
        """Beyond round-off: a GroupNorm of one channel per group erases an embedding added before it."""
        net = build_network(name).eval()
        x, _ = inputs(name)
        train_briefly(net, x, torch.tensor([0.0, 3.5, 20.0]), steps=6)
        early, late = net(x, torch.full((3,), 1.0)), net(x, torch.full((3,), 50.0))
        assert (early - late).abs().max() > 1e-3 * early.abs().max()

    def test_weights_survive_a_checkpoint(self, name):
        net, fresh = build_network(name).eval(), build_network(name, seed=1).eval()
        x, time = inputs(name)
        train_briefly(net, x, time)
        torch.testing.assert_close(state_round_trip(net, fresh)(x, time), net(x, time), atol=0, rtol=0)


class TestConditionalNetworkContract:
    LABELS = torch.tensor([2, 0, 1])

    def test_a_conditional_network_starts_as_the_unconditional_one_plus_a_zero_label_table(self, name):
        unconditional, conditional = build_network(name), build_network(name, num_classes=3)
        shared = unconditional.state_dict()
        extra = {key: value for key, value in conditional.state_dict().items() if key not in shared}
        assert list(extra) == ["label_embedding.weight"] and torch.equal(
            extra["label_embedding.weight"], torch.zeros(3, extra["label_embedding.weight"].shape[1])
        )
        for key, value in shared.items():
            assert torch.equal(conditional.state_dict()[key], value), key

    def test_labels_reach_the_output_and_rows_without_a_label_are_the_unconditional_call(self, name):
        from model_code.conditioning import NO_LABEL

        net = build_network(name, num_classes=3).eval()
        x, time = inputs(name)
        train_briefly(net, x, time, steps=6, labels=self.LABELS)  # zero-initialised layers: grads reach the table late
        net.zero_grad()
        out = net(x, time, self.LABELS)
        out.pow(2).sum().backward()
        assert net.label_embedding.weight.grad[:3].abs().sum() > 0
        assert not torch.equal(net(x, time, torch.tensor([1, 2, 0])), out)
        without = net(x, time, torch.full((3,), NO_LABEL))
        torch.testing.assert_close(without, net(x, time), atol=0, rtol=0)
        mixed = net(x, time, torch.tensor([2, NO_LABEL, 1]))
        torch.testing.assert_close(mixed[1], without[1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(mixed[0::2], out[0::2], atol=1e-6, rtol=1e-5)

    def test_labels_of_the_wrong_shape_and_labels_for_an_unconditional_network_are_refused(self, name):
        x, time = inputs(name)
        with pytest.raises(ValueError, match="labels must be int64 \\[3\\]"):
            build_network(name, num_classes=3)(x, time, torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="unconditional \\(num_classes=0\\)"):
            build_network(name)(x, time, self.LABELS)


def test_checkpointed_activations_give_the_same_outputs_and_gradients(monkeypatch):
    """model.checkpoint_activations recomputes each residual block in the backward pass (attention blocks always
    are): the outputs and every weight's gradient are those of the network that keeps its activations (dropout
    included: its random state is restored for the recomputation), and the recomputation really happens."""
    from model_code.networks import unet
    from tests.helpers import tiny_unet

    kept = tiny_unet(3, dropout=0.3)
    torch.nn.init.normal_(kept.output[-1].weight)  # the zero-initialised output layer would stop the gradients
    recomputed = tiny_unet(3, dropout=0.3, checkpoint_activations=True)
    recomputed.load_state_dict(kept.state_dict())
    x, time = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([1.0, 2.0, 3.0, 4.0])
    results = []
    for net in (kept, recomputed):
        calls = []
        for block in (unet.ResBlock, unet.AttentionBlock):

            def counted(self, *args, calls=calls, forward=block.forward):
                calls.append(type(self).__name__)
                return forward(self, *args)

            monkeypatch.setattr(block, "forward", counted)
        torch.manual_seed(5)
        out = net.train()(x, time)
        out.square().sum().backward()
        monkeypatch.undo()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()], collections.Counter(calls)))
    (out_kept, grads_kept, calls_kept), (out_recomputed, grads_recomputed, calls_recomputed) = results
    assert torch.equal(out_kept, out_recomputed)
    assert all(torch.equal(a, b) for a, b in zip(grads_kept, grads_recomputed))
    blocks = collections.Counter(type(m).__name__ for m in kept.modules() if isinstance(m, unet.ResBlock))
    attention = collections.Counter(type(m).__name__ for m in kept.modules() if isinstance(m, unet.AttentionBlock))
    assert calls_kept == blocks + attention + attention  # attention ran again in the backward pass
    assert calls_recomputed == blocks + blocks + attention + attention  # and with the option every block


def train_flow_briefly(net, x, steps=3):
    """A few SGD steps on the flow's Gaussian NLL, so that no zero-initialised coupling is the identity any more."""
    for _ in range(steps):
        net.zero_grad()
        z, logdet = net(x, torch.zeros(x.shape[0]))
        (0.5 * z.pow(2).flatten(1).sum(1) - logdet.sum(1)).mean().backward()
        with torch.no_grad():
            for parameter in net.parameters():
                parameter -= 0.002 * parameter.grad


class TestFlowNetworkContract:
    def test_name_shapes_and_identity_couplings_at_initialisation(self, flow_name):
        """z has the data's shape; at initialisation every coupling is the identity, so log|det| is that of the
        1x1 convolutions (rotations) alone: 0."""
        net = build_network(flow_name)
        x, time = inputs(flow_name)
        z, logdet = net(x, time)
        assert net.name == flow_name and z.shape == x.shape and logdet.shape[0] == 3
        torch.testing.assert_close(logdet, torch.zeros_like(logdet), atol=1e-4, rtol=0)

    def test_inverse_gradients_examples_apart_and_time_not_read(self, flow_name):
        net = build_network(flow_name)
        x, time = inputs(flow_name)
        net.initialize(x)
        train_flow_briefly(net, x)
        net.zero_grad()
        z, logdet = net(x, time)
        (z.pow(2).sum() - logdet.sum()).backward()
        missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, f"parameters without gradient: {missing}"
        assert (net.inverse(z) - x).abs().max() < 1e-5
        torch.testing.assert_close(net(x[1:2], time[1:2])[0], z[1:2], atol=1e-5, rtol=1e-4)
        assert torch.equal(net(x, torch.full((3,), 7.0))[0], z)

    def test_weights_and_initialisation_survive_a_checkpoint(self, flow_name):
        net, fresh = build_network(flow_name), build_network(flow_name, seed=1)
        x, time = inputs(flow_name)
        net.initialize(x)
        train_flow_briefly(net, x)
        torch.testing.assert_close(state_round_trip(net, fresh)(x, time), net(x, time), atol=0, rtol=0)

    def test_labels_are_refused(self, flow_name):
        x, time = inputs(flow_name)
        with pytest.raises(ValueError, match="unconditional"):
            build_network(flow_name, num_classes=3)
        with pytest.raises(ValueError, match="unconditional \\(num_classes=0\\)"):
            build_network(flow_name)(x, time, torch.tensor([0, 1, 2]))
