"""Checkpoint files: atomic saves and strict loads whose errors name the file."""

from __future__ import annotations

import os
from typing import Any, Dict

import torch

from scripts.cli.errors import CheckpointError
from scripts.runs.files import write_atomic


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
