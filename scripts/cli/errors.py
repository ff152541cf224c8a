"""Errors caused by the user's input or environment, reported by ``run_cli`` as one line."""

from __future__ import annotations

import sys
from typing import Callable


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model; the message names the file."""


class DatasetUnavailable(RuntimeError):
    """A dataset that is not on disk and cannot be fetched; the message says what to do."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is untouched."""


class ConfigMismatch(ValueError):
    """A --config that contradicts the run's own config on keys that change the model, process or data shape."""


class RunDirError(RuntimeError):
    """A run directory that cannot be used: in use by another run, unwritable, or a folder where a file
    belongs; the message names the path."""


USER_ERRORS = (
    ValueError,
    CheckpointError,
    DatasetUnavailable,
    NotImplementedError,
    FileNotFoundError,
    TrainingDiverged,
    RunDirError,
)


def run_cli(main: Callable[[], None]) -> None:
    """Run ``main``; an error caused by the user's input prints one line and exits with status 1."""
    try:
        main()
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
