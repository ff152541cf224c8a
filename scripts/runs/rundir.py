"""The layout of a run directory and its saved config.

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

from scripts.cli.errors import CheckpointError
from scripts.runs.files import write_atomic


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
            raise CheckpointError(
                f"checkpoint {path} does not exist (numbered snapshots available: {available}); "
                "train first or pick another --checkpoint"
            )
        return path

    def results_folder(self, experiment: str) -> str:
        """WORKDIR/evaluation_results/EXPERIMENT/, created if needed."""
        folder = self.path("evaluation_results", experiment)
        os.makedirs(folder, exist_ok=True)
        return folder

    def save_config(self, config: ml_collections.ConfigDict) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        write_atomic(self.config_path, json.dumps(config.to_dict(), indent=2, sort_keys=True).encode())

    def load_config(self) -> ml_collections.ConfigDict:
        if not os.path.isfile(self.config_path):
            raise CheckpointError(
                f"{self.config_path} does not exist: pass --config, or point --workdir at a training run"
            )
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
