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


SAMPLING_CASES = [  # (process, operator, its options, sampler): each sampler family once
    ("ihdm", "heat", {}, "ancestral"),
    ("gaussian", "blur", {"continuous_time": True}, "dpmpp_2m"),
    ("gaussian", "blur", {"continuous_time": True}, "heun"),
    ("gaussian", "identity", {"continuous_time": False}, "ddim"),
    ("cold", "cold_blur", {}, "x0_step_down"),
]


def random_output_unet(channels: int) -> torch.nn.Module:
    net = UNet(
        in_channels=channels,
        out_channels=channels,
        model_channels=8,
        channel_mult=(1,),
        num_res_blocks=1,
        attention_levels=(),
        dropout=0.0,
    )
    torch.manual_seed(0)
    torch.nn.init.normal_(net.output[-1].weight, std=0.05)  # the zero-initialised output would hide the precision
    return net.eval()


def traced_sampling(process, net, initial, sampler, mixed_precision):
    """reverse_process's samples with what the network was given and computed in, and every operator output."""
    from model_code.samplers.spec import SamplingSpec
    from scripts.sampling.sampler import reverse_process

    inputs, network_dtypes, operator_outputs = [], [], []
    hooks = [
        net.register_forward_pre_hook(lambda module, args: inputs.append(args[0].clone())),
        net.register_forward_hook(lambda module, args, out: network_dtypes.append(out.dtype)),
        process.operator.register_forward_hook(lambda module, args, out: operator_outputs.append(out.dtype)),
    ]
    generators = [torch.Generator().manual_seed(i) for i in range(len(initial))]
    spec = SamplingSpec(sampler=sampler, mixed_precision=mixed_precision)
    try:
        samples, _, _ = reverse_process(process, net, initial, generators, spec)
    finally:
        for hook in hooks:
            hook.remove()
    return samples, inputs, network_dtypes, operator_outputs


@pytest.mark.parametrize("process_name, operator_name, options, sampler", SAMPLING_CASES)
def test_sampling_in_bf16_runs_the_network_only_in_bf16(process_name, operator_name, options, sampler):
    """--mixed_precision=bf16 while sampling: the network computes in bf16 from the float32 states the sampler
    hands it, every operator output and the samples stay float32, and the samples are the float32 ones up to
    bf16's rounding."""
    process = build(process_name, operator_name, options)
    net = random_output_unet(3)
    initial = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    exact, exact_inputs, exact_dtypes, _ = traced_sampling(process, net, initial, sampler, "no")
    reduced, inputs, dtypes, operator_dtypes = traced_sampling(process, net, initial, sampler, "bf16")
    assert set(exact_dtypes) == {torch.float32} and set(dtypes) == {torch.bfloat16}
    assert len(inputs) == len(exact_inputs) >= 4 and all(x.dtype == torch.float32 for x in inputs)
    assert torch.equal(inputs[0], exact_inputs[0])  # the first state is the sampler's, not rounded to bf16
    assert set(operator_dtypes) <= {torch.float32}
    assert reduced.dtype == torch.float32
    difference = (reduced - exact).norm() / exact.norm()
    assert 0 < difference < 0.1, difference  # measured 0.07% (cold) .. 7% (heun, 39 evaluations of a random net)


def test_auto_means_bf16_exactly_where_the_hardware_has_it(monkeypatch):
    from model_code import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert precision.network_dtype("auto", cpu) == torch.bfloat16
    assert precision.describe("auto", torch.bfloat16, cpu) == "bf16 autocast (auto: this CPU computes bf16 natively)"
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert precision.network_dtype("auto", cpu) is None
    assert precision.describe("auto", None, cpu) == "float32 (auto: this CPU has no native bf16)"
    assert precision.network_dtype("bf16", cpu) == torch.bfloat16  # asked for: emulated where not native
    assert precision.network_dtype("no", cpu) is None
    with pytest.raises(ValueError, match="'fp16' runs on CUDA only; on cpu allowed: 'auto', 'bf16' or 'no'"):
        precision.network_dtype("fp16", cpu)
    with pytest.raises(ValueError, match="mixed precision 'fp8'; allowed: one of auto, bf16, fp16, no"):
        precision.network_dtype("fp8", cpu)


def test_native_bf16_reads_what_pytorch_reports_of_the_cpu(monkeypatch):
    from model_code import precision

    for avx512_bf16, amx, expected in ((True, False, True), (False, True, True), (False, False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda value=avx512_bf16: value)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda value=amx: value)
        assert precision.native_bf16(torch.device("cpu")) is expected


TRAINED_IN = [("auto", True, "bf16"), ("auto", False, "float32"), ("no", True, "float32"), ("bf16", False, "bf16")]


@pytest.mark.parametrize("mode, native, trained_in", TRAINED_IN)
def test_the_trainer_says_and_records_the_precision_it_trained_in(
    tmp_path, monkeypatch, capsys, mode, native, trained_in
):
    from model_code import precision
    from scripts.runs.checkpoints import load_checkpoint
    from scripts.runs.rundir import RunDir
    from scripts.training.trainer import Trainer
    from tests.configs import tiny

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    config = tiny.get_config()
    config.training.mixed_precision, config.training.n_iters = mode, 1
    net_dtypes = []
    trainer = Trainer(config, str(tmp_path), torch.device("cpu"))
    trainer.state.net.register_forward_hook(lambda module, args, out: net_dtypes.append(out.dtype))
    trainer.run()
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("network precision: ")]
    assert said == [f"network precision: {precision.describe(mode, precision.DTYPES.get(trained_in), 'cpu')}"]
    state = load_checkpoint(RunDir(str(tmp_path)).meta_checkpoint, torch.device("cpu"))
    assert state["network_precision"] == trained_in
    assert set(net_dtypes) == {torch.bfloat16 if trained_in == "bf16" else torch.float32}


def test_fid_sampled_in_bf16_says_so_in_its_result(tmp_path):
    """evaluate.py --mode=fid --mixed_precision=bf16: the samples are drawn with the network in bf16, and the
    result records it (network_precision, and the headline's words)."""
    from scripts.evaluation.evaluator import EvaluationRequest, evaluate
    from tests.helpers import train_tiny_run

    workdir = train_tiny_run(str(tmp_path / "run"), n_iters=1)
    common = dict(
        config=None, workdir=workdir, mode="fid", num_gen=4, feature_net="fast_random_conv", stats_dir=str(tmp_path)
    )
    reduced = evaluate(EvaluationRequest(**common, sampling={"mixed_precision": "bf16"}, param_name="bf16"))
    exact = evaluate(EvaluationRequest(**common))
    assert reduced["network_precision"] == "bf16" and reduced["mixed_precision"] == "bf16"
    assert "network in bf16" in reduced["headline"]
    assert exact["network_precision"] == "float32" and "network in" not in exact["headline"]
    assert reduced["fid_fast_random_conv"] != exact["fid_fast_random_conv"]


def test_a_flow_network_computes_in_float32_whatever_the_hardware(monkeypatch):
    """hflow's exact inverse and log-determinants need float32: 'auto' is float32 even where bf16 is native, and
    bf16 or fp16 are refused in one line, for training and for sampling."""
    from configs.default import get_default_configs
    from model_code import precision
    from model_code.processes import PROCESSES
    from model_code.samplers.spec import SamplingSpec
    from scripts.config import build

    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    config, cpu, hflow = get_default_configs(), torch.device("cpu"), PROCESSES.get("hflow")
    config.model.process, config.training.mixed_precision = "hflow", "auto"
    assert (
        build.network_dtype(config, cpu) is None
        and SamplingSpec(mixed_precision="auto").network_dtype(cpu, hflow) is None
    )
    refusal = "mixed precision 'bf16' for a network that must compute in float32 .*; allowed: 'no' or 'auto'"
    config.training.mixed_precision = "bf16"
    with pytest.raises(ValueError, match=refusal):
        build.network_dtype(config, cpu)
    with pytest.raises(ValueError, match=refusal):
        SamplingSpec(mixed_precision="bf16").network_dtype(cpu, hflow)
    config.model.process = "ihdm"  # every other process keeps its bf16
    assert build.network_dtype(config, cpu) == torch.bfloat16
