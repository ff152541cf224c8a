"""Training throughput machinery: FLOP counting, phase timing, the benchmark, the device-resident
data path and a training step that never reads a value back to the host."""

import math
import re
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from scripts.data.batches import EpochBatches, training_batches
from scripts.data.datasets import TensorImages
from scripts.training.phases import PhaseTimer
from scripts.training.throughput import FrameworkLoop, benchmark, matmul_peak, training_flops_per_image
from tests.configs import tiny
from tests.helpers import make_operator

CPU = torch.device("cpu")


class TwoConvolutions(torch.nn.Module):
    """conv 3x3 (1 -> 4 channels), conv 3x3 (4 -> 2), 'same' padding; ignores time."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.second = torch.nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x, time):
        return self.second(self.first(x))


def test_flops_per_training_image_match_a_hand_count():
    x = torch.randn(3, 1, 8, 8)
    first = 2 * 4 * 1 * 9 * 64  # multiply-adds of a 3x3 convolution at every one of 8x8 outputs
    second = 2 * 2 * 4 * 9 * 64
    # backward: the second layer needs the gradients of its input and its weights (2x forward each),
    # the first only of its weights (the images need no gradient)
    expected = (first + second) + 2 * second + first
    assert training_flops_per_image(TwoConvolutions(), x, torch.zeros(3)) == expected


def test_phase_timer_keeps_exclusive_times():
    timer = PhaseTimer(CPU)
    with timer.phase("outer"):
        time.sleep(0.02)
        with timer.phase("inner"):
            time.sleep(0.03)
    assert timer.seconds["inner"] == pytest.approx(0.03, abs=0.015)
    assert timer.seconds["outer"] == pytest.approx(0.02, abs=0.015)


def test_phases_of_the_framework_step_sum_to_its_time():
    loop = FrameworkLoop(tiny.get_config(), CPU, data=None)
    loop.time_phases(2)  # warm-up
    phases = loop.time_phases(4)
    wall = phases.pop("wall")
    expected = {"data to device", "operator and target", "network forward", "network backward", "optimiser", "EMA"}
    assert expected <= set(phases) and all(seconds > 0 for seconds in phases.values())
    assert sum(phases.values()) == pytest.approx(wall, rel=0.05)
    assert loop.trainer.state.step == 6


def test_benchmark_reports_consistent_numbers():
    config = tiny.get_config()
    result = benchmark(config, CPU, steps=2, warmup=1, rounds=1, options=["adam"], synthetic=True)
    rates = result["images_per_second"]
    assert set(rates) == {"framework", "bare", "Adam for_loop", "Adam foreach", "Adam fused"}
    assert all(rate > 0 for rate in rates.values())
    assert result["overhead"] == pytest.approx(rates["bare"] / rates["framework"] - 1)
    assert result["achieved_flops"] == pytest.approx(result["flops_per_image"] * rates["framework"])
    assert 0 < result["mfu"] < 1 and result["precision"] == "float32"


def test_matmul_peak_is_plausible():
    peak = matmul_peak(CPU, torch.float32, 256, repeats=2)
    assert 1e8 < peak < 1e14  # FLOP/s of any CPU


@pytest.mark.parametrize("start_step", [0, 3, 7])
def test_device_resident_batches_follow_the_step_keyed_order(start_step):
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    dataset = TensorImages(images)
    resident = training_batches(dataset, EpochBatches(50, 16, seed=3, start_step=start_step), 0, CPU)
    loaded = training_batches(dataset, EpochBatches(50, 16, seed=3, start_step=start_step), 0, CPU, resident=False)
    for step in range(start_step, start_step + 8):  # 3 batches per epoch: crosses epoch boundaries
        epoch, position = divmod(step, 3)
        order = torch.randperm(50, generator=torch.Generator().manual_seed(3 * 100003 + epoch))
        expected = images[order[16 * position : 16 * (position + 1)]]
        assert torch.equal(next(resident).items, expected) and torch.equal(next(loaded).items, expected)


HOST_READS = {
    torch.ops.aten._local_scalar_dense.default,
    torch.ops.aten.item.default,
    torch.ops.aten.is_nonzero.default,
}


class HostReadRecorder(TorchDispatchMode):
    """Records the ops that read a tensor's value back to the host (a device sync on a GPU)."""

    def __init__(self):
        super().__init__()
        self.reads = []
        self.paused = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS and not self.paused:
            self.reads.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("process", ["ihdm", "gaussian"])
def test_training_step_never_reads_back_to_the_host(process):
    config = tiny.get_config()
    config.data.random_flip = config.data.uniform_dequantization = True
    if process == "gaussian":
        config.model.process, config.model.forward, config.model.prior = "gaussian", "blur", "standard_normal"
    loop = FrameworkLoop(config, CPU, data=None)
    recorder = HostReadRecorder()
    optimizer_step = loop.trainer.state.optimizer.step

    def step_outside_the_recorder(*args, **kwargs):
        # torch's CPU Adam reads its step counters on the host; on CUDA the fused kernel keeps them on the device
        recorder.paused = True
        try:
            return optimizer_step(*args, **kwargs)
        finally:
            recorder.paused = False

    loop.trainer.state.optimizer.step = step_outside_the_recorder
    batches = loop.trainer.training_batches()
    with recorder:
        for _ in range(2):
            loop.trainer.train_step(next(batches))
    assert recorder.reads == []


def test_levels_outside_the_range_are_refused():
    op = make_operator("heat", K=5, image_size=8)
    x = torch.rand(2, 1, 8, 8)
    op(x, torch.tensor([0, 5]))
    for bad in ([0, 6], [-1, 2]):
        with pytest.raises(ValueError, match=re.escape("levels must lie in [0, 5]")):
            op(x, torch.tensor(bad))
    assert math.isfinite(op(x, torch.tensor([5, 5])).sum().item())
