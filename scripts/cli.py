"""Shared pieces of the entry points: one-line errors, config resolution, loading a trained model."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Optional

import ml_collections
import torch

from scripts import build
from scripts.datasets import DatasetUnavailable
from scripts.rundir import CheckpointError, RunDir, load_checkpoint, load_module_state

USER_ERRORS = (ValueError, CheckpointError, DatasetUnavailable, NotImplementedError)


def run_cli(main: Callable[[], None]) -> None:
    """Run ``main``; an error caused by the user's input prints one line and exits with status 1."""
    from scripts.trainer import TrainingDiverged

    try:
        main()
    except USER_ERRORS + (TrainingDiverged,) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def resolve_config(config: Optional[ml_collections.ConfigDict], workdir: str) -> ml_collections.ConfigDict:
    """The --config given on the command line, else the config saved in the run directory."""
    return config if config is not None else RunDir(workdir).load_config()


@dataclass
class TrainedModel:
    process: torch.nn.Module
    net: torch.nn.Module
    prior: torch.nn.Module
    data: object
    shape: tuple
    checkpoint_path: str
    step: int


def load_trained(config: ml_collections.ConfigDict, workdir: str, checkpoint: int, device: torch.device, delta: Optional[float] = None) -> TrainedModel:
    """Rebuild process, EMA network and prior from a checkpoint (strict; a missing file is an error)."""
    path = RunDir(workdir).checkpoint_path(checkpoint)
    state = load_checkpoint(path, device)
    process = build.build_process(config, delta=delta).to(device)
    load_module_state(process, state["process"], "process buffers", path)
    net = build.build_network(config).to(device)
    load_module_state(net, state["ema"], "EMA weights", path)
    data = build.build_data(config, "train", process)
    prior = build.build_prior(config, process, data).to(device)
    load_module_state(prior, state["prior"], "prior", path)
    return TrainedModel(process, net.eval(), prior, data, build.data_shape(config), path, int(state["step"]))
