"""Loading a trained model (process, EMA network, prior) from a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import ml_collections
import torch

from scripts.config import build
from scripts.runs.checkpoints import load_checkpoint, load_module_state
from scripts.runs.rundir import RunDir


@dataclass
class TrainedModel:
    process: torch.nn.Module
    net: torch.nn.Module
    prior: torch.nn.Module
    shape: tuple
    checkpoint_path: str
    step: int


def load_trained(
    config: ml_collections.ConfigDict,
    workdir: str,
    checkpoint: int,
    device: torch.device,
    delta: Optional[float] = None,
) -> TrainedModel:
    """Rebuild process, EMA network and prior from a checkpoint (strict; a missing file is an error)."""
    path = RunDir(workdir).checkpoint_path(checkpoint)
    state = load_checkpoint(path, device)
    process = build.build_process(config, delta=delta).to(device)
    load_module_state(process, state["process"], "process buffers", path)
    net = build.build_network(config).to(device)
    load_module_state(net, state["ema"], "EMA weights", path)
    prior = build.build_prior(config, process, lambda: build.build_data(config, "train", process)).to(device)
    load_module_state(prior, state["prior"], "prior", path)
    return TrainedModel(process, net.eval(), prior, build.data_shape(config), path, int(state["step"]))
