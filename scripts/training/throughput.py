"""Measuring the training step: the framework's loop against a bare loop, phases, FLOPs and the matmul peak.

``scripts.benchmark_train`` is the command around it; see its docstring for what is reported.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import ml_collections
import torch
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from model_code.precision import AutocastNetwork
from scripts.config import build
from scripts.data.datasets import TensorImages, wrap_dataset
from scripts.training.phases import PhaseTimer, TimedNetwork
from scripts.training.trainer import LogAccumulator, Trainer, adam_kernel_flags

SYNTHETIC_IMAGES = 2048


class FrameworkLoop:
    """The trainer's step and loss logging on the trainer's own batches."""

    def __init__(self, config: ml_collections.ConfigDict, device: torch.device, data, resident: bool = True):
        self.workdir = tempfile.TemporaryDirectory()
        self.trainer = Trainer(config, self.workdir.name, device, data=data)
        self.trainer.state.net.train()
        self.batches = self.trainer.training_batches(resident=resident)
        self.log = LogAccumulator(device)
        self.writer = SummaryWriter(self.workdir.name)
        self.bar = tqdm(disable=True)
        self.timer = self.trainer.timer

    def step(self) -> None:
        trainer, training = self.trainer, self.trainer.config.training
        with self.timer.phase("data to device"):
            batch = next(self.batches)
        out = trainer.train_step(batch)
        with self.timer.phase("logging"):
            self.log.add(out)
            if trainer.state.step % training.log_freq == 0:
                self.log.flush(self.writer, self.bar, trainer.state.step, 0.0, training.batch_size)

    def time_phases(self, steps: int) -> Dict[str, float]:
        """Seconds per step by phase over ``steps`` instrumented steps, and their wall-clock total ('wall')."""
        timer = PhaseTimer(self.trainer.device)
        network, previous = self.trainer.network, self.timer
        self.timer = self.trainer.timer = timer
        self.trainer.network = TimedNetwork(network, timer)
        try:
            wall = time_steps(self.step, steps, self.trainer.device)
        finally:
            self.timer = self.trainer.timer = previous
            self.trainer.network = network
        return {**{name: s / steps for name, s in timer.seconds.items()}, "wall": wall}


class BareLoop:
    """Forward, squared error, backward and Adam step of a copy of the network on fixed device tensors."""

    def __init__(self, trainer: Trainer):
        config, device = trainer.config, trainer.device
        self.net = copy.deepcopy(trainer.state.net).train()
        optim = config.optim
        self.optimizer = torch.optim.Adam(
            self.net.parameters(),
            lr=optim.lr,
            betas=(optim.beta1, optim.beta2),
            eps=optim.eps,
            **adam_kernel_flags(optim.implementation, device),
        )
        self.network = AutocastNetwork(
            torch.compile(self.net) if config.training.compile else self.net,
            device.type,
            trainer.network_dtype,
            channels_last=config.training.channels_last,
        )
        shape = (config.training.batch_size, *build.data_shape(config))
        generator = torch.Generator(device).manual_seed(0)
        self.x = torch.randn(shape, device=device, generator=generator)
        self.target = torch.randn(shape, device=device, generator=generator)
        self.time = torch.randint(1, config.model.K + 1, shape[:1], device=device, generator=generator).float()

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        (self.network(self.x, self.time) - self.target).pow(2).mean().backward()
        self.optimizer.step()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Wall-clock seconds per step over ``steps`` steps (device synchronised at both ends)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def interleaved_seconds(loops: Dict[str, Callable[[], None]], steps: int, warmup: int, rounds: int, device):
    """Median seconds per step of each loop, the loops taking turns round by round."""
    for step in loops.values():
        time_steps(step, warmup, device)
    samples: Dict[str, List[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, step in loops.items():
            samples[name].append(time_steps(step, steps, device))
    return {name: statistics.median(values) for name, values in samples.items()}


def training_flops_per_image(network: Callable, x: torch.Tensor, time_input: torch.Tensor) -> float:
    """FLOPs of one forward and backward pass of ``network(x, time)`` per example (x [B, ...]),
    as counted by torch.utils.flop_counter (matrix products and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        network(x, time_input).float().pow(2).sum().backward()
    return counter.get_total_flops() / x.shape[0]


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5, tf32: bool = False) -> float:
    """Dense matrix-product FLOP/s: 2 n^3 / the best time of an n x n by n x n product in ``dtype``.

    The product runs both as a BLAS matmul and as the same product written as a 1x1 convolution
    (oneDNN on CPU, cuDNN on CUDA); the faster library sets the peak (on this project's AMD CPU
    oneDNN outruns MKL's sgemm, and the network's convolutions run on oneDNN). ``tf32``: CUDA float32
    products in TF32.
    """
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    image, kernel = b[None, :, :, None], a[:, :, None, None]  # conv2d(image, kernel)[0, :, :, 0] = a @ b
    products = [lambda: a @ b, lambda: torch.nn.functional.conv2d(image, kernel)]
    settings = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    previous = [setting.fp32_precision for setting in settings]
    for setting in settings:
        setting.fp32_precision = "tf32" if tf32 else "ieee"
    try:
        best = min(time_steps(product, 1, device) for _ in range(repeats + 1) for product in products)
    finally:
        for setting, value in zip(settings, previous):
            setting.fp32_precision = value
    return 2 * size**3 / best


def matmul_peaks(device: torch.device, bf16: bool) -> Dict[str, float]:
    """The peaks MFU is measured against: float32 (and with ``bf16`` bfloat16) on CPU; bfloat16, TF32 and
    float32 on CUDA."""
    if device.type == "cpu":
        dtypes = {"float32": torch.float32, **({"bfloat16": torch.bfloat16} if bf16 else {})}
        return {name: max(matmul_peak(device, dtype, n) for n in (1024, 2048)) for name, dtype in dtypes.items()}
    return {
        "bfloat16": matmul_peak(device, torch.bfloat16, 8192),
        "tf32": matmul_peak(device, torch.float32, 8192, tf32=True),
        "float32": matmul_peak(device, torch.float32, 8192),
    }


def network_precision(config: ml_collections.ConfigDict, device: torch.device) -> str:
    """Which matmul peak the network's arithmetic is measured against."""
    dtype = build.network_dtype(config, device)
    if dtype is not None:
        return {torch.bfloat16: "bfloat16", torch.float16: "bfloat16"}[dtype]  # fp16 and bf16 peaks are equal
    return "tf32" if device.type == "cuda" and config.training.tf32 else "float32"


def variant(config: ml_collections.ConfigDict, **changes) -> ml_collections.ConfigDict:
    """A copy of ``config`` with ``group.key`` values changed (keys given as group__key)."""
    changed = copy.deepcopy(config)
    for dotted, value in changes.items():
        group, key = dotted.split("__")
        changed[group][key] = value
    return changed


def option_variants(config: ml_collections.ConfigDict, option: str, device: torch.device) -> Dict[str, dict]:
    """For one option, the settings to compare: {label: {'config': ..., 'resident': ...}}."""
    training = config.training
    if option in ("channels_last", "compile", "tf32"):
        if option == "tf32" and device.type != "cuda":
            raise ValueError("--options=tf32 needs --device=cuda")
        label = f"{option} {'off' if training[option] else 'on'}"
        return {label: {"config": variant(config, **{f"training__{option}": not training[option]})}}
    if option == "adam":
        kinds = ["for_loop", "foreach", "fused"]
        return {f"Adam {k}": {"config": variant(config, optim__implementation=k)} for k in kinds}
    if option == "bf16":  # the config's precision on this device against the other one
        other = "no" if build.network_dtype(config, device) is not None else "bf16"
        return {f"mixed_precision {other}": {"config": variant(config, training__mixed_precision=other)}}
    if option == "resident_data":
        return {"DataLoader instead of device-resident data": {"config": config, "resident": False}}
    raise ValueError(f"unknown option {option!r}; allowed: {', '.join(OPTIONS)}")


OPTIONS = ("channels_last", "compile", "adam", "tf32", "bf16", "resident_data")


def synthetic_data(config: ml_collections.ConfigDict, process, count: int = SYNTHETIC_IMAGES):
    """Random uint8 images [count, C, H, W] of the config's shape, wrapped like the real training set."""
    shape = build.data_shape(config)
    images = torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return wrap_dataset(
        TensorImages(images),
        kind="image",
        data_range=process.data_range,
        random_flip=config.data.random_flip,
        uniform_dequantization=config.data.uniform_dequantization,
    )


def benchmark(
    config: ml_collections.ConfigDict,
    device: torch.device,
    *,
    steps: int,
    warmup: int,
    rounds: int,
    options: List[str],
    synthetic: bool,
) -> Dict[str, object]:
    """Everything the command prints, as numbers (see the module docstring)."""
    data = synthetic_data(config, build.build_process(config)) if synthetic else None
    framework = FrameworkLoop(config, device, data)
    trainer = framework.trainer
    bare = BareLoop(trainer)
    loops: Dict[str, Callable[[], None]] = {"framework": framework.step, "bare": bare.step}
    for option in options:
        for label, setting in option_variants(config, option, device).items():
            loops[label] = FrameworkLoop(setting["config"], device, data, setting.get("resident", True)).step
    seconds = interleaved_seconds(loops, steps, warmup, rounds, device)
    batch = config.training.batch_size
    phases = framework.time_phases(steps)
    flops = training_flops_per_image(copy.deepcopy(bare.network), bare.x, bare.time)
    precision = network_precision(config, device)
    peaks = matmul_peaks(device, bf16=precision == "bfloat16" or "bf16" in options)
    achieved = flops * batch / seconds["framework"]
    return {
        "images_per_second": {name: batch / s for name, s in seconds.items()},
        "overhead": seconds["framework"] / seconds["bare"] - 1,
        "phases_seconds": phases,
        "flops_per_image": flops,
        "achieved_flops": achieved,
        "matmul_peaks": peaks,
        "precision": precision,
        "mfu": achieved / peaks[precision],
        "bare_mfu": flops * batch / seconds["bare"] / peaks[precision],
    }


def report(result: Dict[str, object], config, device: torch.device) -> str:
    rates = result["images_per_second"]
    lines = [
        f"{config.data.dataset} {build.data_shape(config)}, batch {config.training.batch_size}, {device_name(device)}",
        f"framework step  {rates['framework']:9.1f} images/s",
        f"bare loop       {rates['bare']:9.1f} images/s   framework overhead {100 * result['overhead']:+.1f}%",
        "time by phase (ms per step, device synchronised at every phase edge):",
    ]
    phases = dict(result["phases_seconds"])
    wall = phases.pop("wall")
    for name, seconds in phases.items():
        lines.append(f"  {name:22s} {1000 * seconds:8.2f}  {100 * seconds / wall:5.1f}%")
    lines.append(
        f"  {'sum of phases':22s} {1000 * sum(phases.values()):8.2f}  (instrumented step {1000 * wall:.2f} ms)"
    )
    peaks = ", ".join(f"{k} {v / 1e12:.3f} TFLOP/s" for k, v in result["matmul_peaks"].items())
    lines += [
        f"model FLOPs per training image (forward + backward): {result['flops_per_image'] / 1e9:.3f} GFLOP",
        f"achieved {result['achieved_flops'] / 1e12:.4f} TFLOP/s; measured matmul peak {peaks}",
        f"MFU ({result['precision']}): framework {100 * result['mfu']:.1f}%, bare loop {100 * result['bare_mfu']:.1f}%",
    ]
    options = {k: v for k, v in rates.items() if k not in ("framework", "bare")}
    if options:
        lines.append("speed options (framework step; the config's setting is 'framework'):")
        for name, rate in options.items():
            lines.append(f"  {name:44s} {rate:9.1f} images/s  ({100 * (rate / rates['framework'] - 1):+.1f}%)")
    return "\n".join(lines)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
