"""Loading a trained model (process, EMA network, prior) from a run directory's checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import ml_collections
import torch

from scripts.cli.errors import CheckpointError
from scripts.config import build
from scripts.runs.checkpoints import EXPORTED, load_checkpoint, load_module_state
from scripts.runs.exported import verify_export
from scripts.runs.runconfig import run_config
from scripts.runs.rundir import RunDir


@dataclass
class TrainedModel:
    config: ml_collections.ConfigDict  # the config the model was rebuilt from
    process: torch.nn.Module
    net: torch.nn.Module
    prior: torch.nn.Module
    shape: tuple
    checkpoint_path: str
    step: int


def load_trained(
    workdir: str,
    checkpoint: int,
    device: torch.device,
    config: Optional[ml_collections.ConfigDict] = None,
    process_settings: Optional[Mapping[str, Any]] = None,
) -> TrainedModel:
    """Rebuild process, EMA network and prior from checkpoint number ``checkpoint`` of ``workdir``.

    The checkpoint's own config is used unless ``config`` (the command line's) is given, which must
    agree with it on every model-changing key (``validate.KEYS``). Loading is strict:
    a missing, damaged or misfitting checkpoint is an error naming the file, and so is an exported model
    folder whose files do not match its SHA256SUMS. ``process_settings`` replace process parameters of the
    config (``build.with_process_settings``: ihdm's reverse-step noise ``delta``, which its prior and ELBO
    share, from a command line's --delta).
    """
    run_dir = RunDir(workdir)
    path = run_dir.checkpoint_path(checkpoint)
    state = load_checkpoint(path, device, sampling_only=True)
    if state.get(EXPORTED):
        verify_export(workdir)
    config = run_config(state, path, run_dir, config)
    if process_settings:
        config = build.with_process_settings(config, process_settings)
    try:
        process = build.build_process(config).to(device)
        net = build.build_network(config).to(device)
    except (MemoryError, RuntimeError) as error:
        if not allocation_failed(error):
            raise
        raise CheckpointError(
            f"the model of checkpoint {path} (image_size={config.data.image_size}, K={config.model.K}) does not fit "
            f"in memory: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}"
        ) from None
    load_module_state(process, state["process"], "process buffers", path)
    load_module_state(net, state["ema"], "EMA weights", path)
    prior = build.build_prior(config, process, lambda: build.build_data(config, "train", process)).to(device)
    load_module_state(prior, state["prior"], "prior state", path)
    return TrainedModel(config, process, net.eval(), prior, build.data_shape(config), path, int(state["step"]))


def allocation_failed(error: BaseException) -> bool:
    """Whether ``error`` is a failed memory allocation (host or device), not another runtime error."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
