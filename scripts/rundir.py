"""The layout of a run directory, its saved config, and atomic checkpoints.

    WORKDIR/config.json                    the resolved config of the run
    WORKDIR/checkpoints-meta/checkpoint.pth  the latest state (resume point; --checkpoint 0)
    WORKDIR/checkpoints/checkpoint_N.pth   numbered snapshots, N = step // snapshot_freq
    WORKDIR/samples/                       sample grids written during training
    WORKDIR/tensorboard/                   TensorBoard logs
    WORKDIR/sample_outputs/, WORKDIR/evaluation_results/   sample.py and evaluate.py outputs
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List

import ml_collections
import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model; the message names the file."""


class RunDir:
    def __init__(self, workdir: str):
        self.workdir = workdir

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    @property
    def config_path(self) -> str:
        return self.path("config.json")

    @property
    def meta_checkpoint(self) -> str:
        return self.path("checkpoints-meta", "checkpoint.pth")

    def snapshot(self, number: int) -> str:
        return self.path("checkpoints", f"checkpoint_{number}.pth")

    def snapshot_numbers(self) -> List[int]:
        folder = self.path("checkpoints")
        names = os.listdir(folder) if os.path.isdir(folder) else []
        return sorted(int(m.group(1)) for m in map(re.compile(r"checkpoint_(\d+)\.pth$").match, names) if m)

    def checkpoint_path(self, number: int) -> str:
        """--checkpoint 0 is the latest state (checkpoints-meta), N the numbered snapshot N."""
        if number < 0:
            raise CheckpointError(f"--checkpoint must be >= 0 (0 = latest), got {number}")
        path = self.meta_checkpoint if number == 0 else self.snapshot(number)
        if not os.path.isfile(path):
            available = ", ".join(map(str, self.snapshot_numbers())) or "none"
            raise CheckpointError(f"checkpoint {path} does not exist (numbered snapshots available: {available}); train first or pick another --checkpoint")
        return path

    def save_config(self, config: ml_collections.ConfigDict) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        write_atomic(self.config_path, json.dumps(config.to_dict(), indent=2, sort_keys=True).encode())

    def load_config(self) -> ml_collections.ConfigDict:
        if not os.path.isfile(self.config_path):
            raise CheckpointError(f"{self.config_path} does not exist: pass --config, or point --workdir at a training run")
        with open(self.config_path) as handle:
            return config_from_dict(json.load(handle))


def config_from_dict(values: Dict[str, Any]) -> ml_collections.ConfigDict:
    """Rebuild a (locked) ConfigDict from its JSON form; lists become tuples as in the config files."""

    def tuples(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        return tuple(value) if isinstance(value, list) else value

    config = ml_collections.ConfigDict(tuples(values))
    config.lock()
    return config


def write_atomic(path: str, payload: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    """torch.save ``state`` atomically: a crash mid-write leaves the previous file intact."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated files raise RuntimeError, pickle errors, EOFError, ...
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt ({type(error).__name__}: {error})") from None


def load_module_state(module: torch.nn.Module, state: Dict[str, Any], what: str, path: str) -> None:
    """Strict load_state_dict with an error that names the checkpoint."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).strip().splitlines()[1:3])[:300]
        raise CheckpointError(f"{what} in {path} does not fit the configured model: {detail}") from None
