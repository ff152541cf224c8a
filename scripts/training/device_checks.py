"""The device self-check: every path training takes on a GPU, run through the trainer's own functions.

``scripts.check_device`` is the command around it. Each check is a function of a ``Subject`` (the config's
process and network on the device, a few clean images) returning a verdict ``{"status": "pass" | "fail",
"detail": ..., "values": {...}}``; ``run_check`` adds its name, turns an exception into a failure and skips a
check the device cannot run (``{"status": "skipped", "detail": "CUDA is absent"}`` for a CUDA-only check on a
machine without CUDA). On a CPU the CPU subset runs: autocast is checked in bfloat16 on the CPU, Adam's kernels,
device-resident batches, a one-process gloo group, channels-last and a short training of the config.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import resource
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import ml_collections
import torch
import torch.distributed as dist

from model_code.precision import DTYPES, AutocastNetwork
from model_code.randomness import ExampleRandomness
from scripts.config import build
from scripts.data.batches import EpochBatches, batch_loader, training_batches
from scripts.data.datasets import TensorImages
from scripts.training.throughput import (
    BareLoop,
    FrameworkLoop,
    matmul_peaks,
    network_precision,
    synthetic_data,
    time_steps,
    training_flops_per_image,
    variant,
)
from scripts.training.trainer import adam_kernel_flags, set_tf32_convolutions

CUDA_ABSENT = "CUDA is absent"
CHECK_BATCH = 4  # images the checks other than training run on
LOSS_TOLERANCE = {"bf16": 5e-2, "fp16": 1e-2}  # relative difference of the mean loss from its float32 value
ADAM_STEPS = 3
ADAM_TOLERANCE = 1e-3  # largest weight difference from the for_loop kernel, relative to the largest update
CHANNELS_LAST_TOLERANCE = 1e-4  # largest output difference, relative to the largest output
COMPILE_TOLERANCE = 1e-3  # the same, for the output and the weight gradients
IEEE_MATMUL_TOLERANCE = 1e-5  # error of a float32 product against float64, relative to its largest entry; TF32 ~1e-4
WARMUP_STEPS = 3  # untimed training steps before timing
SMALL = {  # the config on a CPU: a few seconds of training instead of minutes a step
    "data__image_size": 16,
    "model__model_channels": 16,
    "model__channel_mult": (1, 2),
    "model__num_res_blocks": 1,
    "model__attention_levels": (1,),
    "training__batch_size": 16,
}


@dataclass
class Subject:
    """What the checks run on: the config, the device, the config's process and network there (in eval mode,
    every weight non-zero, so that the network's output depends on its precision) and clean images x0
    [CHECK_BATCH, C, H, W] in the process's data range."""

    config: ml_collections.ConfigDict
    device: torch.device
    process: torch.nn.Module
    net: torch.nn.Module
    x0: torch.Tensor

    def time_input(self) -> torch.Tensor:
        """Levels 1..K as the network's float time input [CHECK_BATCH]."""
        generator = torch.Generator().manual_seed(1)
        return torch.randint(1, self.config.model.K + 1, (CHECK_BATCH,), generator=generator).float().to(self.device)


def make_subject(config: ml_collections.ConfigDict, device: torch.device) -> Subject:
    """The ``Subject`` of ``config`` (an image config) on ``device``, seeded by config.seed."""
    torch.manual_seed(config.seed)
    process = build.build_process(config).to(device)
    net = build.build_network(config).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            if not parameter.any():  # the zero-initialised output layer would hide the network's precision
                parameter.normal_(0.0, 0.02)
    low, high = process.data_range
    shape = (CHECK_BATCH, *build.data_shape(config))
    x0 = low + (high - low) * torch.rand(shape, generator=torch.Generator().manual_seed(0))
    return Subject(config, device, process, net.to(device), x0.to(device))


def small_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` shrunk to ``SMALL``: 16x16 images, a two-level U-Net of 16 channels, batch 16."""
    return variant(config, **SMALL)


def verdict(ok: bool, detail: str, **values) -> dict:
    return {"status": "pass" if ok else "fail", "detail": detail, **({"values": values} if values else {})}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (max |a - b| where b vanishes)."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale else (a - b).abs().max().item()


@contextlib.contextmanager
def float32_precision(tf32: bool):
    """The trainer's float32 setting (``set_tf32_convolutions(tf32)``) inside, the previous one restored after."""
    settings = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    previous = [setting.fp32_precision for setting in settings]
    set_tf32_convolutions(tf32)
    try:
        yield
    finally:
        for setting, value in zip(settings, previous):
            setting.fp32_precision = value


OPERATOR_METHODS = ("forward", "to_basis", "from_basis")


@contextlib.contextmanager
def recorded_operator_outputs(operator: torch.nn.Module):
    """Every tensor ``operator``'s forward, to_basis and from_basis return inside, in call order."""
    outputs: List[torch.Tensor] = []
    shadowed = {name: operator.__dict__[name] for name in OPERATOR_METHODS if name in operator.__dict__}

    def recording(method):
        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            outputs.append(out.detach().clone())
            return out

        return call

    for name in OPERATOR_METHODS:
        if hasattr(operator, name):
            setattr(operator, name, recording(getattr(operator, name)))
    try:
        yield outputs
    finally:
        for name in OPERATOR_METHODS:
            operator.__dict__.pop(name, None)
        operator.__dict__.update(shadowed)


def traced_loss(subject: Subject, mode: str) -> Dict[str, object]:
    """The process's per-example losses with the network wrapped as the trainer wraps it, under autocast in
    ``DTYPES[mode]`` on the subject's device: {'losses', 'operator_outputs', 'network_dtype'}."""
    network_dtypes = []
    hook = subject.net.register_forward_hook(lambda module, args, out: network_dtypes.append(out.dtype))
    network = AutocastNetwork(subject.net, subject.device.type, DTYPES[mode])
    randomness = ExampleRandomness(subject.config.seed, 0, CHECK_BATCH, device=subject.device)
    try:
        with torch.no_grad(), recorded_operator_outputs(subject.process.operator) as outputs:
            losses, _ = subject.process.loss(network, subject.x0, randomness)
    finally:
        hook.remove()
    return {"losses": losses, "operator_outputs": outputs, "network_dtype": network_dtypes[0]}


def autocast_check(subject: Subject, mode: str) -> dict:
    """training.mixed_precision=``mode`` reaches the network only: under autocast the network computes in its
    dtype, while every operator output equals the float32 run's bit for bit and the loss is float32 within
    LOSS_TOLERANCE of the float32 loss."""
    reference, reduced = traced_loss(subject, "no"), traced_loss(subject, mode)
    outputs = reduced["operator_outputs"]
    operator_dtypes = sorted({str(out.dtype) for out in outputs})
    same_outputs = len(outputs) == len(reference["operator_outputs"]) and all(
        torch.equal(a, b) for a, b in zip(outputs, reference["operator_outputs"])
    )
    losses = reduced["losses"]
    difference = abs(losses.mean().item() / reference["losses"].mean().item() - 1)
    ok = (
        reduced["network_dtype"] == DTYPES[mode]
        and operator_dtypes == ["torch.float32"]
        and same_outputs
        and losses.dtype == torch.float32
        and difference <= LOSS_TOLERANCE[mode]
    )
    detail = (
        f"network in {reduced['network_dtype']}; {len(outputs)} operator outputs {', '.join(operator_dtypes)}, "
        f"{'equal to' if same_outputs else 'different from'} float32; loss {losses.dtype}, "
        f"{difference:.1e} from float32 (allowed {LOSS_TOLERANCE[mode]:g})"
    )
    return verdict(ok, detail, loss_relative_difference=difference)


def adam_weights(subject: Subject, implementation: str, gradients: List[torch.Tensor]) -> List[torch.Tensor]:
    """The network's weights after ADAM_STEPS steps of Adam on ``gradients``, the kernels chosen by
    ``adam_kernel_flags(implementation)`` and the hyperparameters by config.optim, as the trainer builds it."""
    optim = subject.config.optim
    weights = [p.detach().clone().requires_grad_() for p in subject.net.parameters()]
    optimizer = torch.optim.Adam(
        weights,
        lr=optim.lr,
        betas=(optim.beta1, optim.beta2),
        eps=optim.eps,
        weight_decay=optim.weight_decay,
        **adam_kernel_flags(implementation, subject.device),
    )
    for _ in range(ADAM_STEPS):
        for weight, gradient in zip(weights, gradients):
            weight.grad = gradient.clone()
        optimizer.step()
    return [weight.detach() for weight in weights]


def adam_check(subject: Subject, implementation: str) -> dict:
    """ADAM_STEPS steps of Adam's ``implementation`` kernels reach the weights of its for_loop kernel within
    ADAM_TOLERANCE of the largest update."""
    generator = torch.Generator().manual_seed(2)
    start = [p.detach() for p in subject.net.parameters()]
    gradients = [torch.randn(p.shape, generator=generator).to(subject.device) for p in start]
    tested = adam_weights(subject, implementation, gradients)
    reference = adam_weights(subject, "for_loop", gradients)
    update = max((b - a).abs().max().item() for a, b in zip(start, reference))
    difference = max((a - b).abs().max().item() for a, b in zip(tested, reference)) / update
    detail = (
        f"{ADAM_STEPS} steps on {len(start)} tensors: {difference:.1e} of the largest update ({update:.1e}) "
        f"from the for_loop kernel (allowed {ADAM_TOLERANCE:g})"
    )
    return verdict(difference <= ADAM_TOLERANCE, detail, relative_difference=difference)


def synthetic_images(subject: Subject, count: int = 64) -> torch.Tensor:
    """Random uint8 images [count, C, H, W] of the config's shape, on the host."""
    shape = (count, *build.data_shape(subject.config))
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


def batches_match(subject: Subject, resident: bool, steps: int = 5) -> bool:
    """Whether ``training_batches`` (device-resident or through the DataLoader) give, on the device, the host
    gather of the step-keyed order for ``steps`` steps (across an epoch boundary)."""
    images = synthetic_images(subject)
    order = EpochBatches(len(images), CHECK_BATCH * 4, seed=5)
    batches = training_batches(TensorImages(images), order, 0, subject.device, resident=resident)
    expected = iter(EpochBatches(len(images), CHECK_BATCH * 4, seed=5))
    return all(
        (batch := next(batches).items).device.type == subject.device.type
        and torch.equal(batch.cpu(), images[next(expected)])
        for _ in range(steps)
    )


def resident_data_check(subject: Subject) -> dict:
    """In-memory images moved to the device once and batched there by an on-device gather, in the step-keyed
    order, as training batches them."""
    ok = batches_match(subject, resident=True)
    where = f"on {subject.device.type}"
    return verdict(ok, f"5 batches gathered {where} {'equal' if ok else 'differ from'} the host gather")


def pinned_copies_check(subject: Subject) -> dict:
    """The DataLoader path on CUDA: batches come in pinned host memory and reach the device by non-blocking
    copies equal to the host gather."""
    images = synthetic_images(subject)
    loader = batch_loader(TensorImages(images), EpochBatches(len(images), CHECK_BATCH, seed=5), 0, pin_memory=True)
    pinned = next(iter(loader)).is_pinned()
    same = batches_match(subject, resident=False)
    detail = f"host batches {'pinned' if pinned else 'not pinned'}; device copies {'equal' if same else 'differ'}"
    return verdict(pinned and same, detail)


def process_group_check(subject: Subject, backend: str) -> dict:
    """A one-process ``backend`` group (NCCL on CUDA; gloo on CPU and for the control flags of a CUDA run, as
    ``scripts.runtime.distributed`` creates them) sums a tensor on its device over its one rank."""
    device = subject.device if backend == "nccl" else torch.device("cpu")
    with tempfile.TemporaryDirectory() as folder:
        dist.init_process_group(
            backend,
            init_method=f"file://{os.path.join(folder, 'store')}",
            rank=0,
            world_size=1,
            timeout=datetime.timedelta(minutes=2),
        )
        try:
            tensor = torch.arange(4.0, device=device)
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            dist.barrier()
            ok = torch.equal(tensor.cpu(), torch.arange(4.0))
        finally:
            dist.destroy_process_group()
    return verdict(ok, f"all_reduce on {device.type} over 1 rank {'kept' if ok else 'changed'} the tensor")


def channels_last_check(subject: Subject) -> dict:
    """training.channels_last: the network converted as the trainer converts it and given channels-last input
    (``AutocastNetwork(channels_last=True)``) gives the contiguous network's output within
    CHANNELS_LAST_TOLERANCE (float32, IEEE convolutions)."""
    converted = copy.deepcopy(subject.net).to(memory_format=torch.channels_last)
    kernels = [p for p in converted.parameters() if p.dim() == 4]
    stored = all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    time_input = subject.time_input()
    with torch.no_grad(), float32_precision(tf32=False):
        plain = AutocastNetwork(subject.net, subject.device.type, None)(subject.x0, time_input)
        last = AutocastNetwork(converted, subject.device.type, None, channels_last=True)(subject.x0, time_input)
    difference = relative(last, plain)
    ok = stored and difference <= CHANNELS_LAST_TOLERANCE
    detail = (
        f"{len(kernels)} kernels {'in' if stored else 'not in'} channels-last order; output {difference:.1e} "
        f"from the contiguous network's (allowed {CHANNELS_LAST_TOLERANCE:g})"
    )
    return verdict(ok, detail, relative_difference=difference)


def tf32_check(subject: Subject) -> dict:
    """training.tf32 as the trainer sets it: cuDNN convolutions may use TF32 while matrix products (the
    operators' blur and DCT) stay IEEE float32, within IEEE_MATMUL_TOLERANCE of float64."""
    generator = torch.Generator().manual_seed(4)
    a, b = (torch.randn(1024, 1024, generator=generator) for _ in range(2))
    exact = a.double() @ b.double()
    image, kernel = b[None, :, :, None], a[:, :, None, None]  # conv2d(image, kernel)[0, :, :, 0] = a @ b
    with float32_precision(tf32=True):
        settings = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
        product = (a.to(subject.device) @ b.to(subject.device)).cpu().double()
        convolution = torch.nn.functional.conv2d(image.to(subject.device), kernel.to(subject.device))
    matmul_error, conv_error = relative(product, exact), relative(convolution[0, :, :, 0].cpu().double(), exact)
    ok = settings == ("tf32", "ieee") and matmul_error <= IEEE_MATMUL_TOLERANCE
    detail = (
        f"convolutions {settings[0]}, matrix products {settings[1]}; 1024^2 product {matmul_error:.1e} from "
        f"float64 (allowed {IEEE_MATMUL_TOLERANCE:g}), the same product as a convolution {conv_error:.1e}"
    )
    return verdict(ok, detail, matmul_error=matmul_error, convolution_error=conv_error)


def output_and_gradients(network: Callable, subject: Subject) -> List[torch.Tensor]:
    """[output, every weight's gradient flattened into one vector] of mean(network(x0, time)^2) on the subject's
    network (one vector: the gradients that vanish in exact arithmetic, such as biases before a normalisation,
    are rounding noise on their own scale)."""
    subject.net.zero_grad(set_to_none=True)
    out = network(subject.x0, subject.time_input())
    out.pow(2).mean().backward()
    gradients = torch.cat([p.grad.detach().flatten() for p in subject.net.parameters()])
    subject.net.zero_grad(set_to_none=True)
    return [out.detach(), gradients]


def compile_check(subject: Subject) -> dict:
    """training.compile: ``torch.compile`` of the network, wrapped as the trainer wraps it, gives the eager
    output and weight gradients within COMPILE_TOLERANCE (float32, IEEE convolutions)."""
    device_type = subject.device.type
    with float32_precision(tf32=False):
        eager = output_and_gradients(AutocastNetwork(subject.net, device_type, None), subject)
        compiled = output_and_gradients(AutocastNetwork(torch.compile(subject.net), device_type, None), subject)
    output, gradients = (relative(a, b) for a, b in zip(compiled, eager))
    detail = f"output {output:.1e} and weight gradients {gradients:.1e} from eager (allowed {COMPILE_TOLERANCE:g})"
    ok = max(output, gradients) <= COMPILE_TOLERANCE
    return verdict(ok, detail, output_difference=output, gradient_difference=gradients)


def peak_memory(device: torch.device) -> Dict[str, object]:
    """The process's peak memory: torch.cuda.max_memory_allocated on CUDA, the resident set's peak on a CPU."""
    if device.type == "cuda":
        return {"peak_memory_bytes": torch.cuda.max_memory_allocated(device), "memory": "max_memory_allocated"}
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux, bytes on macOS
    return {"peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "memory": "ru_maxrss"}


def throughput(loop: FrameworkLoop, seconds: float) -> Dict[str, object]:
    """images/s of ``loop``'s config at ``seconds`` per step, its model FLOPs per training image and the MFU
    against the matmul peak of the network's precision measured here, as ``scripts.benchmark_train`` counts them."""
    config, device = loop.trainer.config, loop.trainer.device
    bare = BareLoop(loop.trainer)
    flops = training_flops_per_image(bare.network, bare.x, bare.time)
    precision = network_precision(config, device)
    peaks = matmul_peaks(device, bf16=precision == "bfloat16")
    achieved = flops * config.training.batch_size / seconds
    return {
        "images_per_second": config.training.batch_size / seconds,
        "flops_per_image": flops,
        "achieved_flops": achieved,
        "matmul_peaks": peaks,
        "precision": precision,
        "mfu": achieved / peaks[precision],
    }


def training_check(subject: Subject, steps: int) -> dict:
    """The trainer's own step and loss logging (``FrameworkLoop``) on synthetic uint8 images of the config's
    shape, held on the device: ``steps`` timed steps after WARMUP_STEPS; images/s, MFU, the peak memory and the
    loss of the trained weights on the next batch. Fails where the trainer would refuse to save them (a
    non-finite loss or EMA)."""
    config, device = subject.config, subject.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loop = FrameworkLoop(config, device, synthetic_data(config, build.build_process(config)))
    time_steps(loop.step, WARMUP_STEPS, device)
    seconds = time_steps(loop.step, steps, device)
    memory = peak_memory(device)
    batch = next(loop.batches)
    loop.trainer.check_saveable(batch)
    values = {
        "image_shape": list(build.data_shape(config)),
        "steps": steps,
        "batch_size": config.training.batch_size,
        **throughput(loop, seconds),
        "loss": loop.trainer.probe_loss(batch).item(),
        **memory,
    }
    detail = (
        f"{steps} steps at batch {values['batch_size']}: {values['images_per_second']:.1f} images/s, MFU "
        f"{100 * values['mfu']:.1f}% of the measured {values['precision']} peak "
        f"{values['matmul_peaks'][values['precision']] / 1e12:.3f} TFLOP/s, peak memory "
        f"{memory['peak_memory_bytes'] / 2**20:.0f} MiB ({memory['memory']}), loss {values['loss']:.4g}"
    )
    return verdict(True, detail, **values)


def needs_cuda(device: torch.device) -> Optional[str]:
    """Why a CUDA-only check is skipped on ``device`` (None: it runs)."""
    if device.type == "cuda":
        return None
    return CUDA_ABSENT if not torch.cuda.is_available() else "--device=cpu"


@dataclass(frozen=True)
class Check:
    """A named check: ``run(subject)`` gives its verdict unless ``skip(device)`` gives a reason not to run."""

    name: str
    run: Callable[[Subject], dict]
    skip: Callable[[torch.device], Optional[str]] = lambda device: None


def device_checks(steps: int, compile_on_cpu: bool) -> List[Check]:
    """Every check, in the order they run (training last: the longest)."""

    def compile_skip(device: torch.device) -> Optional[str]:
        slow = device.type == "cpu" and not compile_on_cpu
        return "slow on a CPU (minutes); --compile_on_cpu runs it" if slow else None

    return [
        Check("autocast_bf16", lambda subject: autocast_check(subject, "bf16")),
        Check("autocast_fp16", lambda subject: autocast_check(subject, "fp16"), needs_cuda),
        Check("adam_foreach", lambda subject: adam_check(subject, "foreach")),
        Check("adam_fused", lambda subject: adam_check(subject, "fused")),
        Check("tf32_convolutions_only", tf32_check, needs_cuda),
        Check("resident_data", resident_data_check),
        Check("pinned_copies", pinned_copies_check, needs_cuda),
        Check("gloo_group", lambda subject: process_group_check(subject, "gloo")),
        Check("nccl_group", lambda subject: process_group_check(subject, "nccl"), needs_cuda),
        Check("channels_last", channels_last_check),
        Check("compile", compile_check, compile_skip),
        Check("training", lambda subject: training_check(subject, steps)),
    ]


def run_check(check: Check, subject: Subject) -> dict:
    """``check``'s named verdict: skipped where its device cannot run it, failed where it raises."""
    reason = check.skip(subject.device)
    if reason is not None:
        return {"name": check.name, "status": "skipped", "detail": reason}
    try:
        return {"name": check.name, **check.run(subject)}
    except Exception as error:  # a failing path is a verdict, whatever it raises
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {"name": check.name, "status": "fail", "detail": f"raised {type(error).__name__}: {message}"}
