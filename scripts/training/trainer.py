"""The one trainer: every process and operator is trained by this loop, on one or many processes.

Resuming is exact: the checkpoint holds the network, EMA, optimiser, loss scaler, step and the
global RNG of every process (dropout); the data order is a function of the step (``EpochBatches``)
and the levels, noise, flips and dequantisation of example j of step n are functions of
(seed, n, j) (``ExampleRandomness``). A run stopped at step n and resumed reaches bit-for-bit the
same weights on CPU as one that was never stopped.

Distributed: launched by torchrun or mpiexec (``scripts.runtime.distributed``), the network is
wrapped in DistributedDataParallel, ``training.batch_size`` stays the global batch and each process
trains on its rows of it (``BatchSplit``), optionally in accumulation rounds. 1 process, N processes
and accumulation train the same model up to float summation order. Rank 0 alone writes checkpoints,
TensorBoard and sample grids; a stop signal or a non-finite loss on any rank stops every rank.

Nothing good is overwritten: one process trains in a run directory at a time (``train.lock``); a
resume whose config contradicts the checkpoint's is refused before anything is written; weights
are saved only after a loss computed with them is finite (the step that blows the weights up can
still have a finite loss); a numbered snapshot is written before the resume point, so a kill
between the two is redone by the resumed run.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

import ml_collections
import torch
from tqdm import tqdm

from model_code.conditioning import conditioned, drop_labels
from model_code.ema import EMA
from model_code.precision import NAMES, AutocastNetwork, describe
from model_code.randomness import LABEL_DROPOUT_STREAM, ExampleRandomness, seed_from
from scripts.cli.errors import TrainingDiverged
from scripts.config import build
from scripts.data.batches import Batch, EpochBatches, training_batches
from scripts.runs.checkpoints import load_checkpoint, load_module_state, save_checkpoint
from scripts.runs.runconfig import run_config
from scripts.runs.rundir import RunDir
from scripts.runtime import distributed
from scripts.sampling.imaging import save_png, save_scatter, to_unit
from scripts.sampling.pictures import scatter_reference
from scripts.sampling.sampler import sample
from scripts.training.batch_split import BatchSplit
from scripts.training.fid_monitor import TrainingFID
from scripts.training.periods import MinutePeriods
from scripts.training.phases import NO_TIMER

LEVEL_BINS = 4  # the loss is also logged per quarter of the level range
GROWTH_WARNING = 1e3  # warn once when a logged mean loss exceeds this multiple of the lowest one so far


def adam_kernel_flags(implementation: str, device: torch.device) -> Dict[str, bool]:
    """torch.optim.Adam's ``fused`` / ``foreach`` flags for optim.implementation (checked by
    scripts/config/validate.py): both off is the for_loop kernel.

    'auto' picks fused kernels on CUDA (one launch for all parameters, no host sync) and foreach on CPU
    (the three were equal within noise on this project's CPU, scripts.benchmark_train); every choice is
    deterministic, so resume stays exact.
    """
    if implementation == "auto":
        implementation = "fused" if device.type == "cuda" else "foreach"
    return {"fused": implementation == "fused", "foreach": implementation == "foreach"}


def set_tf32_convolutions(enabled: bool) -> None:
    """TF32 for the network's float32 cuDNN convolutions (CUDA only). Matrix products stay IEEE float32:
    the operators' blur / DCT products must not be rounded to TF32's 10-bit mantissa."""
    torch.backends.cudnn.conv.fp32_precision = "tf32" if enabled else "ieee"
    torch.backends.cuda.matmul.fp32_precision = "ieee"


@dataclass
class TrainState:
    net: torch.nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    step: int = 0

    def state_dict(self) -> Dict[str, Any]:
        """The state to save; ``rng`` holds the global RNG of every process (collective: call on every rank)."""
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state(distributed.device())
        rng_by_rank = distributed.gather_objects(rng)
        return {
            "step": self.step,
            "net": self.net.state_dict(),
            "ema": self.ema.shadow.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_by_rank[0],
            "rng_by_rank": rng_by_rank,
        }

    def load_state_dict(self, state: Dict[str, Any], path: str) -> None:
        load_module_state(self.net, state["net"], "network weights", path)
        load_module_state(self.ema.shadow, state["ema"], "EMA weights", path)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        by_rank = state.get("rng_by_rank", [state["rng"]])
        if len(by_rank) == distributed.world_size():  # another process count continues with fresh dropout streams
            rng = by_rank[distributed.rank()]
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                cuda = rng["cuda"]  # older checkpoints hold one state per visible device
                torch.cuda.set_rng_state(cuda[0] if isinstance(cuda, (list, tuple)) else cuda, distributed.device())


def due(step: int, period: int) -> bool:
    """Whether a periodic action (every ``period`` steps; 0: never) falls on ``step``."""
    return period > 0 and step % period == 0


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.signal_name: Optional[str] = None

    def __enter__(self) -> "StopRequest":
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _handle(self, number, frame) -> None:
        self.signal_name = signal.Signals(number).name

    def agreed_signal(self) -> Optional[str]:
        """The stop signal received by any process (every rank stops at the same step), or None."""
        number = signal.Signals[self.signal_name].value if self.signal_name else 0
        agreed = distributed.max_over_ranks(number)
        return signal.Signals(agreed).name if agreed else None

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Trainer:
    """Builds everything from the config (one that passed ``validate_config``: the commands check it before
    they start), resumes from WORKDIR if it holds a checkpoint, trains."""

    def __init__(
        self, config: ml_collections.ConfigDict, workdir: str, device: Optional[torch.device] = None, data=None
    ):
        """``data`` (an ImageData) replaces the configured training set (the benchmark's synthetic images)."""
        self.config = config
        self.run_dir = RunDir(workdir)
        self.stopped_by: Optional[str] = None  # the signal that stopped run() early, if any
        context = distributed.init()
        self.device = device or context.device
        self.network_dtype = build.network_dtype(config, self.device)  # None: float32
        self.split = BatchSplit.of(
            config.training.batch_size, config.training.batch_per_device, context.world_size, context.rank
        )
        if self.device.type == "cpu":
            # Adam's second moments and the zero-initialised output layer produce subnormal floats,
            # which are ~10x slower on CPUs; flushing them to zero does not change training.
            torch.set_flush_denormal(True)
        torch.manual_seed(config.seed)
        self.process = build.build_process(config).to(self.device)
        self.data = data if data is not None else build.build_data(config, "train", self.process)
        self.labels = self.data.class_labels(config.model.num_classes)  # int64 [N]; None: unconditional
        self.label_dropout = config.model.label_dropout
        self.prior = build.build_prior(config, self.process, lambda: self.data).to(self.device)
        self.shape = build.data_shape(config)
        net = build.build_network(config).to(self.device)
        if config.training.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            set_tf32_convolutions(config.training.tf32)
        self.state = TrainState(
            net=net,
            ema=EMA(net, config.model.ema_rate, config.model.ema_rampup_ratio),
            optimizer=self._optimizer(net),
            scaler=torch.amp.GradScaler(
                "cuda", enabled=self.device.type == "cuda" and config.training.mixed_precision == "fp16"
            ),
        )
        if context.rank > 0:  # dropout streams differ between processes; rank 0 keeps the single-process one
            torch.manual_seed(seed_from(config.seed, context.rank))
        self.parallel_net = self._parallel(net)
        self.network = self._autocast(self.parallel_net)
        self.probe_network = self._autocast(net)
        self.timer = NO_TIMER  # scripts.benchmark_train swaps in a PhaseTimer to split the step by phase

    def _parallel(self, net: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel over the processes (the network itself for one process)."""
        if not distributed.active():
            return net
        device_ids = [self.device] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids)

    def _autocast(self, net: torch.nn.Module) -> AutocastNetwork:
        training = self.config.training
        return AutocastNetwork(
            torch.compile(net) if training.compile else net,
            self.device.type,
            self.network_dtype,
            channels_last=training.channels_last,
        )

    def _optimizer(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        """Adam over the network's parameters, in the groups it declares (``parameter_groups()``: [(parameters,
        learning-rate scale)], hflow's encoders and flows) or in one group; ``lr_scales`` keeps each group's
        scale, applied by ``optimiser_step``."""
        optim = self.config.optim  # optim.optimizer is 'Adam', the one scripts/config/validate.py allows
        groups = net.parameter_groups() if hasattr(net, "parameter_groups") else [(list(net.parameters()), 1.0)]
        self.lr_scales = [scale for _, scale in groups]
        return torch.optim.Adam(
            [{"params": parameters} for parameters, _ in groups] if len(groups) > 1 else groups[0][0],
            lr=optim.lr,
            betas=(optim.beta1, optim.beta2),
            eps=optim.eps,
            weight_decay=optim.weight_decay,
            **adam_kernel_flags(optim.implementation, self.device),
        )

    def resume_path(self) -> Optional[str]:
        """checkpoints-meta/checkpoint.pth; without it the newest numbered snapshot; None for a new run."""
        if os.path.isfile(self.run_dir.meta_checkpoint):
            return self.run_dir.meta_checkpoint
        numbers = self.run_dir.snapshot_numbers()
        return self.run_dir.snapshot(numbers[-1]) if numbers else None

    def resume(self, path: str) -> None:
        """Load the state at ``path``, refusing (before any change) a config that contradicts the run's."""
        checkpoint = load_checkpoint(path, self.device)
        run_config(checkpoint, path, self.run_dir, self.config)
        self.state.load_state_dict(checkpoint, path)
        load_module_state(self.process, checkpoint["process"], "process buffers", path)
        load_module_state(self.prior, checkpoint["prior"], "prior state", path)

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to optim.lr over optim.warmup steps (step counts from 1)."""
        optim = self.config.optim
        return optim.lr * min(1.0, step / optim.warmup) if optim.warmup > 0 else optim.lr

    def training_batches(self, resident: bool = True) -> Iterator[Batch]:
        """This process's rows of every global batch (with their labels for a conditional model), on the device,
        from the current step on."""
        batches = EpochBatches(
            len(self.data), self.split.global_batch, self.config.seed, self.state.step, self.split.rows
        )
        workers = self.config.training.num_workers
        return training_batches(self.data.dataset, batches, workers, self.device, resident, self.labels)

    def randomness(self, rows: range, stream: Optional[int] = None) -> ExampleRandomness:
        """The draws of global rows ``rows`` at the current step: functions of (seed, step, row); with ``stream``
        (LABEL_DROPOUT_STREAM) those of the stream's own seed."""
        seed = self.config.seed if stream is None else seed_from(self.config.seed, stream)
        total = self.split.global_batch
        return ExampleRandomness(seed, self.state.step, total, rows.start, len(rows), self.device)

    def conditioned_network(self, network, labels: Optional[torch.Tensor], rows: range):
        """``network`` with the labels of global rows ``rows`` bound, each dropped (trained unconditionally) with
        probability model.label_dropout by a draw of the row's own stream; the network itself when unconditional."""
        dropout = self.randomness(rows, LABEL_DROPOUT_STREAM)
        return conditioned(network, drop_labels(labels, self.label_dropout, dropout))

    def train_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        """One optimiser step on this process's rows of a global batch, already on the device.

        batch: uint8 images [B / W, C, H, W] (or points) and their labels, computed in ``split.rounds`` accumulation
        rounds; the gradient is that of the mean loss over the global batch (DDP averages over
        processes). Nothing reads a value back to the host, so on CUDA the host runs ahead of the device.
        Returns detached per-example losses [B / W], levels [B / W] and the gradient norm [].
        """
        state, timer, split = self.state, self.timer, self.split
        state.optimizer.zero_grad(set_to_none=True)
        losses, levels = [], []
        for index in range(split.rounds):
            last = index == split.rounds - 1
            with self.gradient_sync(last):
                round_losses, round_levels = self.round_loss(batch, index)
                with timer.phase("network backward"):
                    state.scaler.scale(round_losses.float().sum() / split.per_rank).backward()
            losses.append(round_losses.detach().float())
            levels.append(round_levels.detach())
        with timer.phase("optimiser"):
            grad_norm = self.optimiser_step()
        with timer.phase("EMA"):
            state.ema.update(state.net, state.step)
        state.step += 1
        return {"losses": torch.cat(losses), "levels": torch.cat(levels), "grad_norm": grad_norm.detach()}

    def round_loss(self, batch: torch.Tensor, index: int):
        """Per-example losses [b] and levels [b] of accumulation round ``index`` (b = split.per_device)."""
        rows = self.split.round_rows(index)
        offset = rows.start - self.split.rows.start
        randomness = self.randomness(rows)
        part = batch.rows(offset, offset + len(rows))
        with self.timer.phase("data to device"):
            x0 = self.data.prepare(part.items, randomness)
        with self.timer.phase("operator and target"):
            return self.process.loss(self.conditioned_network(self.network, part.labels, rows), x0, randomness)

    def gradient_sync(self, sync: bool):
        """DDP's all-reduce of gradients happens in the last accumulation round only."""
        if sync or not distributed.active():
            return contextlib.nullcontext()
        return self.parallel_net.no_sync()

    def optimiser_step(self) -> torch.Tensor:
        """Unscale, clip the global gradient norm to optim.grad_clip, set the warm-up rate, Adam step.
        Returns the gradient norm before clipping []."""
        state = self.state
        state.scaler.unscale_(state.optimizer)
        clip = self.config.optim.grad_clip if self.config.optim.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(state.net.parameters(), clip)
        for group, scale in zip(state.optimizer.param_groups, self.lr_scales):
            group["lr"] = self.learning_rate(state.step + 1) * scale
        state.scaler.step(state.optimizer)
        state.scaler.update()
        return grad_norm

    def due_snapshot(self) -> Optional[str]:
        """The numbered snapshot the current step should have, if any."""
        step, every = self.state.step, self.config.training.snapshot_freq
        return self.run_dir.snapshot(step // every) if step > 0 and due(step, every) else None

    def write_state(self, paths) -> None:
        """Gather the state (every rank), rank 0 writes it to ``paths``."""
        state = self.state.state_dict()
        state["process"] = self.process.state_dict()
        state["prior"] = self.prior.state_dict()
        state["network_precision"] = NAMES[self.network_dtype]  # what the network trained in: bf16, fp16, float32
        if distributed.is_main():
            save_checkpoint(paths, state, self.config)

    def probe_loss(self, batch: Batch) -> torch.Tensor:
        """Mean loss of the current weights on this process's ``batch`` (network in eval mode, no DDP),
        leaving every random state as it was: the run continues as if it had not been called."""
        randomness = self.randomness(self.split.rows)
        batch = batch.to(self.device)
        self.state.net.eval()
        with torch.no_grad():
            x0 = self.data.prepare(batch.items, randomness)
            network = self.conditioned_network(self.probe_network, batch.labels, self.split.rows)
            losses, _ = self.process.loss(network, x0, randomness)
        self.state.net.train()
        return losses.float().mean()

    def log_process_scalars(self, writer, batch: Batch, step: int) -> None:
        """The process's ``training_scalars`` of the current weights on this step's batch (as ``probe_loss``:
        eval mode, no DDP, random states untouched), averaged over the processes; rank 0 logs them."""
        randomness = self.randomness(self.split.rows)
        self.state.net.eval()
        with torch.no_grad():
            x0 = self.data.prepare(batch.items, randomness)
            scalars = self.process.training_scalars(self.probe_network, x0)
        self.state.net.train()
        if not scalars:
            return
        means = distributed.all_reduce_sum(torch.stack(list(scalars.values())).float()) / distributed.world_size()
        if writer is not None:
            for name, value in zip(scalars, means.tolist()):
                writer.add_scalar(name, value, step)

    def check_saveable(self, batch: Batch) -> None:
        """Raise TrainingDiverged (on every rank) unless the weights to be saved give a finite loss on every
        rank and the EMA is finite."""
        loss = self.probe_loss(batch)
        ema_finite = torch.stack([p.isfinite().all() for p in self.state.ema.shadow.parameters()]).all()
        if distributed.any_rank(not bool(loss.isfinite() & ema_finite)):
            raise TrainingDiverged(
                f"the weights of step {self.state.step} give a training loss of {loss.item()} (EMA finite: "
                f"{bool(ema_finite)}); stopped without saving them, the last checkpoint is intact "
                "(lower optim.lr or use bf16)"
            )

    def save(self, batch: Batch) -> None:
        """Write the due numbered snapshot, then the resume point, once ``check_saveable`` passes."""
        self.check_saveable(batch)
        snapshot = self.due_snapshot()
        self.write_state(([snapshot] if snapshot else []) + [self.run_dir.meta_checkpoint])

    def sample_grid(self, writer) -> None:
        """EMA samples with fixed seeds into samples/iter_STEP.png (a grid, or a scatter plot for 2D points).
        Rank 0 only."""
        count = self.config.training.num_samples
        out = sample(
            self.process,
            self.state.ema.shadow,
            self.prior,
            mode="random",
            count=count,
            seed=self.config.eval.seed,
            shape=self.shape,
            device=self.device,
        )
        path = self.run_dir.path("samples", f"iter_{self.state.step:07d}.png")
        if self.data.kind == "points":
            save_scatter(path, out["samples"].flatten(1), scatter_reference(self.data), f"step {self.state.step}")
        else:
            images = to_unit(out["samples"], self.process.data_range)
            save_png(path, images)
            writer.add_images("samples", images, self.state.step)
        tqdm.write(f"step {self.state.step}: samples in {path}")

    def start(self) -> None:
        """Check the run directory, resume from it or fit the prior, then record the config.

        A new run's network gets the process's data-dependent initialisation (``initialize_network``). Runs under
        the run's lock; a refused resume has written nothing. A snapshot due at the resumed
        step that is missing (a kill between the two writes of an older version) is written again.
        """
        if distributed.is_main():
            mode = self.config.training.mixed_precision
            print(f"network precision: {describe(mode, self.network_dtype, self.device)}")
        removed = distributed.on_main(self.run_dir.prepare_for_training)
        if removed:
            print(f"removed temporary files that interrupted writes left: {', '.join(removed)}")
        path = distributed.on_main(self.resume_path)
        if path is None:
            self.prior.fit(self.device)
            self.initialize_network()
        else:
            self.resume(path)
            if distributed.is_main():
                print(f"resuming from {path} at step {self.state.step}")
            snapshot = self.due_snapshot()
            if snapshot and distributed.on_main(lambda: not os.path.isfile(snapshot)):
                self.write_state([snapshot])
        distributed.on_main(lambda: self.run_dir.save_config(self.config))

    def initialize_network(self) -> None:
        """The process's data-dependent initialisation of a new run's network (``Process.initialize_network``,
        hflow's ActNorm) on the first global batch's rows, the same on every process, then the EMA copied from it."""
        rows = range(min(self.split.global_batch, len(self.data)))
        x0 = self.data.prepare(self.data.raw_batch(rows).to(self.device), self.randomness(rows))
        self.process.initialize_network(self.state.net, x0)
        self.state.ema.shadow.load_state_dict(self.state.net.state_dict())

    def run(self) -> TrainState:
        """Train to training.n_iters (or until SIGTERM / SIGINT); rank 0 holds the run directory's lock.

        A Ctrl-C stops every rank at the same step with the state saved, then reaches the caller as the
        KeyboardInterrupt Python would have raised (where Python's own handler was in place: a test runner stops,
        train.py exits 130 with one line), so the interrupt is never swallowed."""
        interrupt_handler = signal.getsignal(signal.SIGINT)
        with contextlib.ExitStack() as stack:
            distributed.on_main(lambda: stack.enter_context(self.run_dir.training_lock()) and None)
            self.start()
            state = self.train()
            distributed.barrier()  # every rank leaves once rank 0 has written its last checkpoint
        if self.stopped_by == "SIGINT" and interrupt_handler is signal.default_int_handler:
            raise KeyboardInterrupt
        return state

    def train(self) -> TrainState:
        from torch.utils.tensorboard import SummaryWriter

        training = self.config.training
        batches = self.training_batches()
        main = distributed.is_main()
        writer = SummaryWriter(self.run_dir.path("tensorboard")) if main else None
        log = LogAccumulator(self.device)
        bar = tqdm(
            total=training.n_iters, initial=self.state.step, desc="training", dynamic_ncols=True, disable=not main
        )
        self.state.net.train()
        saved_step, batch = self.state.step, None
        fid = (
            TrainingFID(self.config, self.data, self.process, self.device)
            if training.fid_freq or training.fid_minutes
            else None
        )
        timed = MinutePeriods(
            {
                "checkpoint": training.checkpoint_minutes,
                "sampling": training.sampling_minutes,
                "fid": training.fid_minutes,
            }
        )
        try:
            with StopRequest() as stop:
                while self.state.step < training.n_iters:
                    batch = next(batches)
                    log.add(self.train_step(batch))
                    step = self.state.step
                    bar.update(1)
                    stop_signal = stop.agreed_signal()
                    now = timed.due()
                    at_checkpoint = (
                        due(step, training.snapshot_freq_for_preemption)
                        or due(step, training.snapshot_freq)
                        or "checkpoint" in now
                    )
                    if due(step, training.log_freq) or at_checkpoint or stop_signal or step == training.n_iters:
                        log.flush(writer, bar, step, self.learning_rate(step), training.batch_size)
                        self.log_process_scalars(writer, batch, step)
                    if at_checkpoint:
                        self.save(batch)
                        saved_step = step
                    if (due(step, training.sampling_freq) or "sampling" in now) and main:
                        self.state.net.eval()
                        self.sample_grid(writer)
                        self.state.net.train()
                    if fid is not None and (due(step, training.fid_freq) or "fid" in now):
                        value = fid.log(writer, step, self.process, self.state.ema.shadow, self.prior, self.shape)
                        if main:
                            tqdm.write(
                                f"step {step}: FID ({fid.feature_net.name}, {training.fid_num_gen} EMA samples) "
                                f"{value:.4f}"
                            )
                    if stop_signal:
                        if saved_step != step:
                            self.save(batch)
                        self.stopped_by = stop_signal
                        bar.close()
                        if main:
                            print(
                                f"stopped by {stop_signal} at step {step}; state saved to "
                                f"{self.run_dir.meta_checkpoint}; run the same command to resume"
                            )
                        return self.state
                if saved_step != self.state.step:
                    self.save(batch)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.state


class LogAccumulator:
    """Sums losses on the device between logging steps (no per-step host sync) and checks finiteness."""

    def __init__(self, device: torch.device):
        self.device = device
        self.lowest_loss = math.inf
        self.warned_growth = False
        self.reset()

    def reset(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.bin_sums = torch.zeros(LEVEL_BINS, device=self.device)
        self.bin_counts = torch.zeros(LEVEL_BINS, device=self.device)
        self.grad_norm_sum = torch.zeros((), device=self.device)
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, out: Dict[str, torch.Tensor]) -> None:
        losses = out["losses"]
        bins = (out["levels"].float() * LEVEL_BINS).long().clamp(0, LEVEL_BINS - 1)
        self.loss_sum += losses.mean()
        self.bin_sums.index_add_(0, bins, losses)
        self.bin_counts.index_add_(0, bins, torch.ones_like(losses))
        self.grad_norm_sum += out["grad_norm"]
        self.steps += 1

    def flush(self, writer, bar, step: int, lr: float, batch_size: int) -> None:
        if self.steps == 0:
            return
        totals = distributed.all_reduce_sum(torch.stack([self.loss_sum, self.grad_norm_sum]))
        distributed.all_reduce_sum(self.bin_sums)
        distributed.all_reduce_sum(self.bin_counts)
        mean_loss, grad_norm = (totals / (self.steps * distributed.world_size())).tolist()
        if not math.isfinite(mean_loss):  # the gradient norm is inf on the steps fp16 loss scaling skips
            raise TrainingDiverged(
                f"the training loss became {mean_loss} (gradient norm {grad_norm}) between steps "
                f"{step - self.steps + 1} and {step}; stopped without saving, the last checkpoint is intact "
                "(lower optim.lr or use bf16)"
            )
        self.warn_if_growing(mean_loss, step)
        if writer is None:  # ranks other than 0 log nothing
            self.reset()
            return
        seconds = time.perf_counter() - self.started
        images_per_second = self.steps * batch_size / max(seconds, 1e-9)
        writer.add_scalar("loss", mean_loss, step)
        for index, (total, count) in enumerate(zip(self.bin_sums.tolist(), self.bin_counts.tolist())):
            if count:
                writer.add_scalar(
                    f"loss_by_level/{index / LEVEL_BINS:.2f}-{(index + 1) / LEVEL_BINS:.2f}", total / count, step
                )
        writer.add_scalar("learning_rate", lr, step)
        writer.add_scalar("grad_norm", grad_norm, step)
        writer.add_scalar("images_per_second", images_per_second, step)
        bar.set_postfix(loss=f"{mean_loss:.4g}", img_s=f"{images_per_second:.0f}")
        self.reset()

    def warn_if_growing(self, mean_loss: float, step: int) -> None:
        """One warning line when the logged loss exceeds GROWTH_WARNING times its lowest value so far."""
        grown = mean_loss > self.lowest_loss + (GROWTH_WARNING - 1) * abs(self.lowest_loss)  # a loss may be < 0 (NLL)
        if grown and not self.warned_growth and distributed.is_main():
            self.warned_growth = True
            tqdm.write(
                f"warning: the training loss grew from {self.lowest_loss:.4g} to {mean_loss:.4g} by step {step}; "
                "training may be diverging (lower optim.lr)",
                file=sys.stderr,
            )
        self.lowest_loss = min(self.lowest_loss, mean_loss)
