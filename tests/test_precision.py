"""Mixed precision reaches the network only: operators, network inputs and targets stay float32."""

import pytest
import torch

from model_code.networks import UNet
from model_code.precision import AutocastNetwork
from tests.helpers import make_process

SIZE, K = 16, 20
CASES = [  # every process with the heat and blur operators (the gaussian process takes blur only)
    ("ihdm", "heat", {}),
    ("ihdm", "blur", {}),
    ("gaussian", "blur", {"continuous_time": False}),
    ("gaussian", "blur", {"continuous_time": True}),
    ("gaussian", "identity", {"logsnr_sampling": "logistic"}),
]


def build(process_name, operator_name, options):
    settings = dict(sigma=0.01) if process_name == "ihdm" else options
    return make_process(process_name, operator_name, K, SIZE, blur_sigma_max=8.0, blurring_sigma_max=8.0, **settings)


class RecordingNet(torch.nn.Module):
    """Records what it is given and predicts zero, so the loss is a function of input and target alone."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x, time):
        self.inputs.append((x.detach().clone(), time.detach().clone()))
        return torch.zeros_like(x)


def run_loss(process, x0, autocast: bool):
    net, operator_outputs = RecordingNet(), []
    hook = process.operator.register_forward_hook(
        lambda module, args, out: operator_outputs.append(out.detach().clone())
    )
    generator = torch.Generator().manual_seed(3)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            losses, levels = process.loss(net, x0, generator)
    finally:
        hook.remove()
    return net.inputs, operator_outputs, losses


@pytest.mark.parametrize("process_name, operator_name, options", CASES)
def test_loss_under_bf16_autocast_sees_the_float32_inputs_and_targets(process_name, operator_name, options):
    process = build(process_name, operator_name, options)
    x0 = torch.rand(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    x0 = x0 * 2 - 1 if process.data_range[0] < 0 else x0
    inputs32, operator32, losses32 = run_loss(process, x0, autocast=False)
    inputs16, operator16, losses16 = run_loss(process, x0, autocast=True)
    assert len(inputs16) == len(inputs32) == 1
    for (x_a, t_a), (x_b, t_b) in zip(inputs16, inputs32):
        assert x_a.dtype == torch.float32 and torch.equal(x_a, x_b)
        assert torch.equal(t_a, t_b)
    assert len(operator16) == len(operator32)  # the ihdm target A_{k-1} x0 and the degraded A_k x0
    for a, b in zip(operator16, operator32):
        assert a.dtype == torch.float32 and torch.equal(a, b)
    assert losses16.dtype == torch.float32 and torch.equal(losses16, losses32)


def test_autocast_network_runs_the_network_in_bf16_and_returns_float32():
    net = UNet(
        in_channels=3,
        out_channels=3,
        model_channels=8,
        channel_mult=(1,),
        num_res_blocks=1,
        attention_levels=(),
        dropout=0.0,
    )
    torch.nn.init.normal_(net.output[-1].weight)  # the zero-initialised output layer would hide the precision
    x, time = torch.randn(2, 3, 8, 8), torch.tensor([1.0, 5.0])
    wrapped = AutocastNetwork(net, "cpu", torch.bfloat16)
    out = wrapped(x, time)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = net(x, time)
    assert out.dtype == torch.float32 and reference.dtype == torch.bfloat16
    assert torch.equal(out, reference.float())
    assert not torch.equal(out, net(x, time))  # it really ran in reduced precision
    assert AutocastNetwork(net, "cpu", None)(x, time).dtype == torch.float32


def test_autocast_network_leaves_the_process_maths_in_float32():
    process = build("ihdm", "heat", {})
    x0 = torch.rand(4, 3, SIZE, SIZE)
    net = RecordingNet()
    with torch.autocast("cpu", enabled=False):
        plain = process.loss(net, x0, torch.Generator().manual_seed(1))[0]
    wrapped = process.loss(AutocastNetwork(net, "cpu", torch.bfloat16), x0, torch.Generator().manual_seed(1))[0]
    assert torch.equal(plain, wrapped)
    assert torch.equal(net.inputs[0][0], net.inputs[1][0])
