"""Errors caused by the user's input or environment, reported by ``run_cli`` as one line."""

from __future__ import annotations

import sys
from typing import Callable, Optional


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
    OSError,  # permissions, a full disk, a file where a folder should be: the message names the path
    TrainingDiverged,
    RunDirError,
)


def run_cli(main: Callable[[], Optional[int]]) -> None:
    """Run ``main``; an error caused by the user's input, or the loss of another process of the run, prints one
    line and exits with status 1.

    A non-zero status returned by ``main`` becomes the exit status.
    """
    try:
        status = main()
    except USER_ERRORS as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        sys.exit(1)
    except RuntimeError as error:  # a collective broken by a peer that died: one line, no 30-line gloo traceback
        from scripts.runtime import distributed

        lost = distributed.peer_lost(error)
        if lost is None:
            raise
        print(f"error: {lost}", file=sys.stderr)
        sys.exit(1)
    finish_processes()
    if status:
        sys.exit(status)


def finish_processes() -> None:
    """After a command that ran under torchrun / mpiexec: wait for every rank (rank 0 may still be writing)
    and tear the process group down before the interpreter exits."""
    from scripts.runtime import distributed

    distributed.barrier()
    distributed.shutdown()


def describe(error: Exception) -> str:
    """The message of a user error; an operating-system error as 'PATH: reason'."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)
