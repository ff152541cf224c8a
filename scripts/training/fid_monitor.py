"""FID while training: every ``training.fid_freq`` steps, FID of ``training.fid_num_gen`` EMA samples (image i
from seed i with ``eval.seed``, the same images each time) against the run's reference statistics of the training
split, logged to TensorBoard as ``fid/<feature network>`` (``fid/fast_random_conv`` only when asked for by name)."""

from __future__ import annotations

import ml_collections
import torch

from scripts.evaluation.features import build_feature_net
from scripts.evaluation.fid import fid_from_generator
from scripts.evaluation.reference_stats import run_reference


class TrainingFID:
    """The feature network and reference statistics, built once per training run."""

    def __init__(self, config: ml_collections.ConfigDict, data, process, device: torch.device):
        if data.kind != "image":
            raise ValueError(f"training.fid_freq={config.training.fid_freq} needs an image dataset, not {data.kind}")
        self.config = config
        self.device = device
        self.feature_net = build_feature_net(config.training.fid_feature_net, device)
        self.reference = run_reference(
            config,
            lambda: data,
            dataset=config.data.dataset,
            split="train",
            feature_net=self.feature_net,
            stats_dir=config.training.fid_stats_dir,
            batch_size=config.eval.batch_size,
        )

    def log(self, writer, step: int, process, ema_net: torch.nn.Module, prior, shape) -> float:
        """FID of the EMA network ``ema_net`` at ``step``, written to ``writer`` (None: not the main process) as
        ``fid/<network>``; every process must call it."""
        from scripts.sampling.imaging import to_unit
        from scripts.sampling.sampler import generate_range

        seed = self.config.eval.seed

        def generate(start: int, count: int) -> torch.Tensor:
            samples, _ = generate_range(
                process, ema_net, prior, start=start, count=count, seed=seed, shape=shape, device=self.device
            )
            return to_unit(samples, process.data_range)

        num_gen, batch_size = self.config.training.fid_num_gen, self.config.eval.batch_size
        with torch.no_grad():
            value = fid_from_generator(generate, num_gen, batch_size, self.feature_net, self.reference, progress=False)
        if writer is not None:  # every process generates its share; the main one logs
            writer.add_scalar(f"fid/{self.feature_net.name}", value, step)
        return value
